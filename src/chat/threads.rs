//! Threads: create (idempotent on the caller's repeatability id), list, get, update
//! properties, and the one delete decision.

use serde_json::json;

use super::access::{not_permitted, participant};
use super::events::{ChangeEvents, others};
use super::limits::{MetadataPatch, check_metadata_size, check_participant_batch, merged_metadata};
use super::participants::{ParticipantRequest, RejectedParticipant, intake};
use super::{Caller, Chat};
use crate::error::{ApiError, ApiResult};
use crate::identifier::{check_thread_id, new_thread_id};
use crate::store::{
    IdempotencyKey, Metadata, NewThread, ThreadRow, ThreadUpdate, metadata_from_text,
    metadata_to_text,
};

/// A thread as a create request asks for it.
#[derive(Debug)]
pub struct ThreadDraft {
    pub topic: Option<String>,
    pub participants: Vec<ParticipantRequest>,
    /// Empty where the api-version has no thread metadata.
    pub metadata: Metadata,
    pub retention_policy: Option<RetentionRequest>,
}

/// A `ChatRetentionPolicy` as requested.
#[derive(Debug, Clone)]
pub struct RetentionRequest {
    /// `threadCreationDate` or `none` (the empty string when the request had none).
    pub kind: String,
    /// `deleteThreadAfterDays`, when it is a whole number.
    pub delete_thread_after_days: Option<i64>,
    /// Whether the request's api-version has the `none` kind (2025-03-15; the
    /// 2024-03-15-preview spec's enum is `threadCreationDate` only).
    pub none_allowed: bool,
}

/// What a thread update asks for (merge patch: absent fields stay as they are).
#[derive(Debug, Default)]
pub struct ThreadChange {
    pub topic: Option<String>,
    pub metadata: Option<MetadataPatch>,
    /// `Some(None)` removes the policy (recorded: a PATCH with `"retentionPolicy": null` then
    /// reads back as `{"kind":"none"}`).
    pub retention_policy: Option<Option<RetentionRequest>>,
}

/// A created (or replayed) thread.
#[derive(Debug)]
pub struct CreatedThread {
    pub thread_id: String,
    /// The response body: rendered now, or the first create's for a repeat.
    pub body: String,
    /// Requested participants that were not added (none for a repeat).
    pub rejected: Vec<RejectedParticipant>,
}

/// The policy as stored (JSON), after the documented range of 30 to 90 days.
fn retention_policy(policy: &RetentionRequest) -> ApiResult<String> {
    match policy.kind.as_str() {
        "none" if policy.none_allowed => Ok(json!({"kind": "none"}).to_string()),
        "threadCreationDate" => match policy.delete_thread_after_days {
            Some(days @ 30..=90) => Ok(json!({
                "kind": "threadCreationDate",
                "deleteThreadAfterDays": days
            })
            .to_string()),
            _ => Err(ApiError::bad_request(
                "deleteThreadAfterDays must be a whole number of days from 30 to 90.",
            )),
        },
        other => Err(ApiError::bad_request(format!(
            "Retention policy kind '{other}' is not valid; use {}.",
            if policy.none_allowed {
                "'threadCreationDate' or 'none'"
            } else {
                "'threadCreationDate'"
            }
        ))),
    }
}

impl Chat {
    /// Creates a thread with the caller and the accepted participants. `render` makes the
    /// response body from the new thread; with a repeatability key seen before, the first
    /// body is returned instead and nothing is created (the SDK e2e test
    /// `test_create_chat_thread_w_repeatability_request_id`, which passes against the service,
    /// retries with a new `shareHistoryTime` and expects the same thread).
    pub async fn create_thread(
        &self,
        caller: &Caller,
        draft: ApiResult<ThreadDraft>,
        repeatability: Option<IdempotencyKey>,
        render: impl FnOnce(&ThreadRow, &[RejectedParticipant]) -> String + Send + 'static,
    ) -> ApiResult<CreatedThread> {
        caller.scope.require_thread_admin()?;
        let (creator, now) = (caller.id.clone(), self.now());
        self.write(move |tx, resource| {
            let draft = draft?;
            let topic = draft
                .topic
                .ok_or_else(|| ApiError::bad_request("The topic field is required."))?;
            check_participant_batch(draft.participants.len())?;
            let (participants, rejected) = intake(tx, draft.participants, resource)?;
            check_metadata_size(&draft.metadata)?;
            let retention_policy = draft
                .retention_policy
                .as_ref()
                .map(retention_policy)
                .transpose()?;
            if let Some(key) = &repeatability
                && let Some((thread_id, body)) = tx.repeated_create(key)?
            {
                return Ok(CreatedThread {
                    thread_id,
                    body,
                    rejected: Vec::new(),
                });
            }
            let thread = NewThread {
                id: new_thread_id(),
                topic,
                creator,
                metadata: draft.metadata,
                retention_policy,
                participants,
            };
            let row = ThreadRow {
                id: thread.id.clone(),
                topic: thread.topic.clone(),
                created_at: now,
                created_by: thread.creator.clone(),
                deleted_at: None,
                metadata: metadata_to_text(&thread.metadata),
                retention_policy: thread.retention_policy.clone(),
                last_message_at: now,
            };
            let body = render(&row, &rejected);
            let everyone = tx.create_thread(&thread, now)?;
            if let Some(key) = &repeatability {
                tx.record_create(key, &thread.id, &body, now)?;
            }
            ChangeEvents::new(tx, &resource.arm_id, &thread.id, now)
                .thread_created(&row, &everyone)?;
            Ok(CreatedThread {
                thread_id: thread.id,
                body,
                rejected,
            })
        })
        .await
    }

    /// A page of the caller's threads, most recent activity first (deleted ones included,
    /// with `deletedOn`), with activity at or after `start_time`, continuing after
    /// `(last_message_at, id)`; and whether more remain.
    pub async fn list_threads(
        &self,
        caller: &Caller,
        start_time: Option<i64>,
        after: Option<(i64, String)>,
        limit: u32,
    ) -> ApiResult<(Vec<ThreadRow>, bool)> {
        self.store
            .read(|view| Ok(view.threads_page(&caller.id, start_time, after, limit)?))
    }

    /// A thread the caller takes part in.
    pub async fn get_thread(&self, caller: &Caller, thread_id: &str) -> ApiResult<ThreadRow> {
        self.store
            .read(|view| Ok(participant(&view, thread_id, caller)?.0))
    }

    /// Changes a thread's topic, metadata (merge patch, within the 1 KB limit after merging)
    /// or retention policy; a new topic also posts a `topicUpdated` system message.
    pub async fn update_thread(
        &self,
        caller: &Caller,
        thread_id: &str,
        change: ThreadChange,
    ) -> ApiResult<()> {
        let (caller, thread_id, now) = (caller.clone(), thread_id.to_owned(), self.now());
        self.write(move |tx, resource| {
            let (thread, _) = participant(tx, &thread_id, &caller)?;
            caller.scope.require_thread_admin()?;
            let metadata = change
                .metadata
                .map(|patch| merged_metadata(metadata_from_text(&thread.metadata), &patch))
                .transpose()?;
            let retention_policy = match &change.retention_policy {
                None => None,
                Some(None) => Some(json!({"kind": "none"}).to_string()),
                Some(Some(policy)) => Some(retention_policy(policy)?),
            };
            let update = ThreadUpdate {
                topic: change.topic,
                metadata,
                retention_policy,
                initiator: caller.id.clone(),
            };
            tx.update_thread(&thread_id, &update, now)?;
            let (updated, _) = participant(tx, &thread_id, &caller)?;
            let participants = tx.participants(&thread_id)?;
            ChangeEvents::new(tx, &resource.arm_id, &thread_id, now).properties_updated(
                &updated,
                &caller.id,
                &others(&participants, &caller.id),
            )
        })
        .await
    }

    /// Deletes a thread (soft: it stays listed with `deletedOn`). The one decision for every
    /// surface: a token that may not delete threads is refused first (403, whether or not the
    /// thread exists); a thread that never existed, or is deleted already, answers success
    /// again (the SDK e2e teardowns delete threads their tests already deleted); a thread the
    /// caller is not in is a 403.
    pub async fn delete_thread(&self, caller: &Caller, thread_id: &str) -> ApiResult<()> {
        check_thread_id(thread_id)?;
        caller.scope.require_thread_admin()?;
        let (caller, thread_id, now) = (caller.clone(), thread_id.to_owned(), self.now());
        self.write(move |tx, resource| {
            match tx.thread_and_participant(&thread_id, &caller.id)? {
                None => Ok(()),
                Some((_, None)) => Err(not_permitted()),
                // Deleted already: nothing changes, no event.
                Some((thread, Some(_))) if thread.deleted_at.is_some() => Ok(()),
                Some((thread, Some(_))) => {
                    let participants = tx.participants(&thread_id)?;
                    tx.delete_thread(&thread_id, now)?;
                    ChangeEvents::new(tx, &resource.arm_id, &thread_id, now).thread_deleted(
                        &thread,
                        &caller.id,
                        &others(&participants, &caller.id),
                    )
                }
            }
        })
        .await
    }
}
