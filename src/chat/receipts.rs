//! Read receipts (the latest per participant) and typing notifications.

use super::access::{participant, visible_message};
use super::events::ChangeEvents;
use super::{Caller, Chat};
use crate::error::{ApiError, ApiResult};
use crate::store::ReadReceiptRow;

impl Chat {
    /// Records that the caller read up to a message they may see.
    pub async fn send_read_receipt(
        &self,
        caller: &Caller,
        thread_id: &str,
        message_id: Option<String>,
    ) -> ApiResult<()> {
        let (caller, thread_id, now) = (caller.clone(), thread_id.to_owned(), self.now());
        self.store
            .write(move |tx| {
                let (_, me) = participant(tx, &thread_id, &caller)?;
                let message_id = message_id
                    .ok_or_else(|| ApiError::bad_request("The chatMessageId field is required."))?;
                let message = visible_message(tx, &thread_id, &me, &message_id)?;
                tx.upsert_read_receipt(&thread_id, &caller.id, message.id, now)?;
                Ok(())
            })
            .await
    }

    /// A page of the thread's read receipts, in the order participants first sent one; and
    /// whether more remain.
    pub async fn list_read_receipts(
        &self,
        caller: &Caller,
        thread_id: &str,
        skip: u32,
        limit: u32,
    ) -> ApiResult<(Vec<ReadReceiptRow>, bool)> {
        self.store.read(|view| {
            participant(&view, thread_id, caller)?;
            Ok(view.read_receipts_page(thread_id, skip, limit)?)
        })
    }

    /// A typing notification from a participant. It changes no chat state; it reaches
    /// others only as its event (`ChatTypingIndicatorReceivedInThread`).
    pub async fn send_typing(
        &self,
        caller: &Caller,
        thread_id: &str,
        sender_display_name: Option<String>,
    ) -> ApiResult<()> {
        let (caller, thread_id, now) = (caller.clone(), thread_id.to_owned(), self.now());
        self.write(move |tx, resource| {
            participant(tx, &thread_id, &caller)?;
            ChangeEvents::new(tx, &resource.arm_id, &thread_id, now)
                .typing(&caller.id, sender_display_name.as_deref())
        })
        .await
    }
}
