//! Who may reach what: participants only, messages from their history share time on, edits
//! and deletions by the sender only. The service's recorded wording for each refusal.

use super::Caller;
use crate::error::{ApiError, ApiResult};
use crate::identifier::{check_thread_id, parse_message_id};
use crate::store::{MessageRow, ParticipantRow, ThreadRow, View};

/// The thread and the caller's participant row, or the service's 400 (not a thread id), 404
/// (no such thread, or deleted) or 403 (not a participant).
pub(super) fn participant(
    view: &View<'_>,
    thread_id: &str,
    caller: &Caller,
) -> ApiResult<(ThreadRow, ParticipantRow)> {
    check_thread_id(thread_id)?;
    match view.thread_and_participant(thread_id, &caller.id)? {
        None => Err(thread_not_found()),
        Some((thread, _)) if thread.deleted_at.is_some() => Err(thread_not_found()),
        Some((_, None)) => Err(not_permitted()),
        Some((thread, Some(participant))) => Ok((thread, participant)),
    }
}

/// A message `me` may see: it exists and was created at or after their history share time.
pub(super) fn visible_message(
    view: &View<'_>,
    thread_id: &str,
    me: &ParticipantRow,
    message_id: &str,
) -> ApiResult<MessageRow> {
    let id = parse_message_id(message_id)?;
    view.message(thread_id, id)?
        .filter(|m| m.created_at >= me.share_history_time)
        .ok_or_else(message_not_found)
}

/// A message of the caller's that they may see, for an edit (`editing`: a deleted message is
/// not found, checked before the sender) or a deletion (deleting twice is allowed).
pub(super) fn own_message(
    view: &View<'_>,
    thread_id: &str,
    caller: &Caller,
    message_id: &str,
    editing: bool,
) -> ApiResult<MessageRow> {
    let (_, me) = participant(view, thread_id, caller)?;
    let message = visible_message(view, thread_id, &me, message_id)?;
    if editing && message.deleted_at.is_some() {
        return Err(message_not_found());
    }
    require_sender(&message, caller)?;
    Ok(message)
}

/// "Only the sender may update or delete their message; others get an error" (docs).
pub(super) fn require_sender(message: &MessageRow, caller: &Caller) -> ApiResult<()> {
    if message.sender_id.as_deref() == Some(caller.id.as_str()) {
        Ok(())
    } else {
        Err(ApiError::Forbidden(
            "Only the sender of a message can update or delete it.".to_owned(),
        ))
    }
}

/// The service's 404 for threads (recorded wording).
pub fn thread_not_found() -> ApiError {
    ApiError::NotFound("The specified thread id was not found.".to_owned())
}

/// The service's 404 for messages.
pub fn message_not_found() -> ApiError {
    ApiError::NotFound("The specified message id was not found.".to_owned())
}

/// The service's 403 for callers that may not act (recorded wording).
pub fn not_permitted() -> ApiError {
    ApiError::Forbidden(
        "The initiator doesn't have the permission to perform the requested operation.".to_owned(),
    )
}
