//! The chat service's rules, one function per operation: who may read, write, edit and delete;
//! what a participant may see; the documented limits; how requested participants are taken
//! in; the one delete-thread decision. Both HTTP surfaces (today's api-versions and the
//! 2020-09-21-preview2 one) call these, and so will the inspector and the event producers.
//!
//! An operation takes the caller and plain inputs and returns plain results (store rows) or
//! an `ApiError`. It knows no axum, no wire DTOs and no api-version (the adapters in
//! `src/api/` drop what a version does not have before calling), and no SQL: it composes the
//! store's typed `View` reads and `Tx` writes. Every check that guards a write runs inside
//! that write's closure, in the same transaction: a participant removed, or a thread deleted,
//! between a check and its write cannot slip through (a separate read-then-write could).
//!
//! Where a check's order matters (the SDK suites expect a 404 or 403 before a 400), inputs
//! whose parsing can fail arrive as `ApiResult`s and are unwrapped at the point the service
//! checks them.

mod access;
mod events;
mod images;
mod limits;
mod messages;
mod participants;
mod receipts;
mod threads;

use std::sync::Arc;

pub use access::thread_not_found;
pub use events::{EVENT_TYPE_PREFIX, EventSignal, Signalled};
pub use images::ImageUpload;
pub use limits::{MAX_PARTICIPANTS, MetadataPatch};
/// The rules the seed loader applies to what it builds without going through an operation.
pub(crate) use limits::{check_content_size, check_metadata_size};
pub(crate) use messages::user_message_kind;
pub use messages::{AttachmentRequest, MessageChange, MessageDraft};
pub use participants::{ParticipantRequest, RejectedParticipant};
pub use threads::{RetentionRequest, ThreadChange, ThreadDraft};

use crate::clock::Clock;
use crate::error::{ApiError, ApiResult};
use crate::store::Store;

/// What an ACS user token allows in chat (Identity spec, `CommunicationIdentityTokenScope`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ChatScope {
    /// `chat`: everything.
    Full,
    /// `chat.join`: no creating, deleting or updating threads.
    Join,
    /// `chat.join.limited`: as `chat.join`, and no adding or removing participants.
    JoinLimited,
}

impl ChatScope {
    /// Fails with 403 unless the scope may create, delete or update threads.
    pub fn require_thread_admin(self) -> Result<(), ApiError> {
        match self {
            ChatScope::Full => Ok(()),
            _ => Err(ApiError::Forbidden(
                "The token's scope does not allow creating, deleting or updating chat threads."
                    .to_owned(),
            )),
        }
    }

    /// Fails with 403 unless the scope may add or remove participants.
    pub fn require_participant_admin(self) -> Result<(), ApiError> {
        match self {
            ChatScope::JoinLimited => Err(ApiError::Forbidden(
                "The token's scope does not allow adding or removing participants.".to_owned(),
            )),
            _ => Ok(()),
        }
    }
}

/// The ACS user an operation acts for (from a verified bearer token, or chosen by the
/// emulator's own tools).
#[derive(Debug, Clone)]
pub struct Caller {
    /// The identity id, `8:acs:…`.
    pub id: String,
    pub scope: ChatScope,
}

/// The chat operations, over one store; cheap to clone.
#[derive(Clone)]
pub struct Chat {
    store: Store,
    clock: Arc<dyn Clock>,
    resource: Arc<Resource>,
    signal: EventSignal,
}

/// Facts about the emulated resource that the rules and the events need.
#[derive(Debug, Clone)]
pub struct Resource {
    /// Its GUID: users of other resources cannot join its threads.
    pub id: String,
    /// Its ARM id: the `topic` of its events.
    pub arm_id: String,
    /// `--auth strict`: participants must be identities this emulator created.
    pub known_identities_only: bool,
}

impl Chat {
    /// The operations over `store`, with time from `clock`.
    pub fn new(store: Store, clock: Arc<dyn Clock>, resource: Resource) -> Self {
        Chat {
            store,
            clock,
            resource: Arc::new(resource),
            signal: EventSignal::default(),
        }
    }

    /// What wakes the event dispatchers.
    pub fn events(&self) -> &EventSignal {
        &self.signal
    }

    fn now(&self) -> i64 {
        self.clock.now_micros()
    }

    /// `Store::write`, then a wake-up for the dispatchers once it has committed (the write may
    /// have appended events; a wake-up for none costs one empty read).
    async fn write<R, F>(&self, work: F) -> ApiResult<R>
    where
        R: Send + 'static,
        F: FnOnce(&crate::store::Tx<'_>, &Resource) -> ApiResult<R> + Send + 'static,
    {
        let resource = Arc::clone(&self.resource);
        let outcome = self.store.write(move |tx| work(tx, &resource)).await;
        if outcome.is_ok() {
            self.signal.notify();
        }
        outcome
    }
}

#[cfg(test)]
mod tests {
    //! Interleavings forced on the writer: a write held in its transaction while the
    //! operations under test queue behind it, so they run in one known order with no timing.

    use std::future::Future;
    use std::path::Path;

    use futures_util::FutureExt;

    use super::*;
    use crate::clock::SystemClock;
    use crate::config::DEFAULT_RESOURCE_ID;

    fn user(name: &str) -> Caller {
        Caller {
            id: format!("8:acs:{DEFAULT_RESOURCE_ID}_{name}"),
            scope: ChatScope::Full,
        }
    }

    async fn chat_with_thread(alice: &Caller, bob: &Caller) -> anyhow::Result<(Chat, String)> {
        let store = Store::connect(Path::new("unused"), true).await?;
        let resource = Resource {
            id: DEFAULT_RESOURCE_ID.to_owned(),
            arm_id: crate::config::DEFAULT_RESOURCE_ARM_ID.to_owned(),
            known_identities_only: false,
        };
        let chat = Chat::new(store, Arc::new(SystemClock), resource);
        let draft = ThreadDraft {
            topic: Some("t".to_owned()),
            participants: vec![ParticipantRequest {
                id: Ok(bob.id.clone()),
                display_name: None,
                share_history_time: Ok(0),
                metadata: Default::default(),
            }],
            metadata: Default::default(),
            retention_policy: None,
        };
        let thread = chat
            .create_thread(alice, Ok(draft), None, |_, _| String::new())
            .await?;
        Ok((chat, thread.thread_id))
    }

    /// Holds the writer until the returned sender is used or dropped; the writes queued
    /// meanwhile then run in the order they were queued.
    fn hold_writer(chat: &Chat) -> (std::sync::mpsc::Sender<()>, impl Future<Output = ()>) {
        let (release, held) = std::sync::mpsc::channel::<()>();
        let mut blocker = Box::pin(chat.store.write(move |_| {
            let _ = held.recv();
            Ok::<_, ApiError>(())
        }));
        assert!((&mut blocker).now_or_never().is_none(), "queued, held");
        (release, async move {
            let _ = blocker.await;
        })
    }

    fn message(text: &str) -> MessageDraft {
        MessageDraft {
            content: Some(text.to_owned()),
            ..MessageDraft::default()
        }
    }

    #[tokio::test]
    async fn a_send_queued_behind_its_threads_deletion_is_refused() -> anyhow::Result<()> {
        // With the membership check on a read before the write, the send would have passed
        // its check here (the thread still existed) and been stored after the deletion.
        let (alice, bob) = (user("alice"), user("bob"));
        let (chat, thread) = chat_with_thread(&alice, &bob).await?;
        let (release, blocker) = hold_writer(&chat);
        let mut delete = Box::pin(chat.delete_thread(&alice, &thread));
        assert!((&mut delete).now_or_never().is_none(), "queued");
        let mut send = Box::pin(chat.send_message(&bob, &thread, message("late")));
        assert!(
            (&mut send).now_or_never().is_none(),
            "queued after the deletion"
        );
        release.send(())?;
        blocker.await;
        delete.await?;
        let refused = send.await.expect_err("the thread was deleted first");
        assert_eq!(refused.status(), axum::http::StatusCode::NOT_FOUND);
        Ok(())
    }

    #[tokio::test]
    async fn a_send_queued_behind_the_senders_removal_is_refused() -> anyhow::Result<()> {
        let (alice, bob) = (user("alice"), user("bob"));
        let (chat, thread) = chat_with_thread(&alice, &bob).await?;
        let (release, blocker) = hold_writer(&chat);
        let mut remove = Box::pin(chat.remove_participant(&alice, &thread, Ok(bob.id.clone())));
        assert!((&mut remove).now_or_never().is_none(), "queued");
        let mut send = Box::pin(chat.send_message(&bob, &thread, message("late")));
        assert!(
            (&mut send).now_or_never().is_none(),
            "queued after the removal"
        );
        release.send(())?;
        blocker.await;
        remove.await?;
        let refused = send.await.expect_err("bob was removed first");
        assert_eq!(refused.status(), axum::http::StatusCode::FORBIDDEN);
        // And the thread holds no message of his after the removal.
        let page = chat.list_messages(&alice, &thread, None, None, 50).await?;
        assert!(
            page.messages
                .iter()
                .all(|m| m.sender_id.as_deref() != Some(bob.id.as_str())),
            "no message of bob's was stored"
        );
        Ok(())
    }
}
