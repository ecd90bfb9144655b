//! Participants: taking requested users in (create thread, add), listing, adding within the
//! thread's limit, and removing.

use super::access::participant;
use super::events::{ChangeEvents, others};
use super::limits::{MAX_PARTICIPANTS, check_metadata_size, check_participant_batch};
use super::{Caller, Chat, Resource};
use crate::error::{ApiError, ApiResult};
use crate::identifier::{UserIdKind, classify_user_id};
use crate::store::{Metadata, NewParticipant, ParticipantRow, ParticipantSnapshot, View};

/// A participant as a request names it. Parts whose wire form did not parse carry that
/// error, raised where the service checks them (after access, in request order).
#[derive(Debug)]
pub struct ParticipantRequest {
    /// The raw id of an ACS user.
    pub id: ApiResult<String>,
    pub display_name: Option<String>,
    /// Messages before this instant stay hidden from them; 0 shares all history.
    pub share_history_time: ApiResult<i64>,
    /// Empty where the api-version has no participant metadata.
    pub metadata: Metadata,
}

/// A requested user that was not added, as the service reports it in `invalidParticipants`:
/// the HTTP status as a string code and a short reason (spec examples).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RejectedParticipant {
    pub id: String,
    pub status: u16,
    pub reason: &'static str,
}

/// Splits requested participants into those to add and those the service would refuse. A
/// malformed identifier fails the whole request (400, as recorded); another resource's users
/// are "403 Permissions check failed"; with `known_only`, identities this emulator does not
/// have (or deleted ones) are "404 Not found".
pub(super) fn intake(
    view: &View<'_>,
    requested: Vec<ParticipantRequest>,
    resource: &Resource,
) -> ApiResult<(Vec<NewParticipant>, Vec<RejectedParticipant>)> {
    let mut accepted = Vec::with_capacity(requested.len());
    let mut rejected = Vec::new();
    for p in requested {
        let id = p.id?;
        let share_history_time = p.share_history_time?;
        check_metadata_size(&p.metadata)?;
        let refusal = match classify_user_id(&id, &resource.id)? {
            UserIdKind::OtherResource => Some((403, "Permissions check failed")),
            UserIdKind::OwnResource if resource.known_identities_only => {
                let known = view.identity(&id)?.is_some_and(|i| i.deleted_at.is_none());
                (!known).then_some((404, "Not found"))
            }
            UserIdKind::OwnResource => None,
        };
        match refusal {
            Some((status, reason)) => rejected.push(RejectedParticipant { id, status, reason }),
            None => accepted.push(NewParticipant {
                user_id: id,
                display_name: p.display_name,
                share_history_time,
                metadata: p.metadata,
            }),
        }
    }
    Ok((accepted, rejected))
}

impl Chat {
    /// A page of a thread's participants in joining order; and whether more remain.
    pub async fn list_participants(
        &self,
        caller: &Caller,
        thread_id: &str,
        skip: u32,
        limit: u32,
    ) -> ApiResult<(Vec<ParticipantRow>, bool)> {
        self.store.read(|view| {
            participant(&view, thread_id, caller)?;
            Ok(view.participants_page(thread_id, skip, limit)?)
        })
    }

    /// Adds participants; returns the ones refused. Those already in the thread are left as
    /// they are ("If participants already exist, no change occurs"); a thread never grows past
    /// `MAX_PARTICIPANTS` (400, nothing added).
    pub async fn add_participants(
        &self,
        caller: &Caller,
        thread_id: &str,
        requested: ApiResult<Vec<ParticipantRequest>>,
    ) -> ApiResult<Vec<RejectedParticipant>> {
        let (caller, thread_id, now) = (caller.clone(), thread_id.to_owned(), self.now());
        self.write(move |tx, resource| {
            let (thread, _) = participant(tx, &thread_id, &caller)?;
            caller.scope.require_participant_admin()?;
            let requested = requested?;
            if requested.is_empty() {
                return Err(ApiError::bad_request(
                    "At least one participant is required.",
                ));
            }
            check_participant_batch(requested.len())?;
            let (accepted, rejected) = intake(tx, requested, resource)?;
            let mut fresh: Vec<NewParticipant> = Vec::with_capacity(accepted.len());
            for p in accepted {
                if !tx.is_participant(&thread_id, &p.user_id)?
                    && !fresh.iter().any(|f| f.user_id == p.user_id)
                {
                    fresh.push(p);
                }
            }
            if fresh.is_empty() {
                return Ok(rejected);
            }
            if tx.participant_count(&thread_id)? + fresh.len() > MAX_PARTICIPANTS {
                return Err(ApiError::bad_request(format!(
                    "A thread can have at most {MAX_PARTICIPANTS} participants."
                )));
            }
            tx.add_participants(&thread_id, &fresh, &caller.id, now)?;
            let after = tx.participants(&thread_id)?;
            let events = ChangeEvents::new(tx, &resource.arm_id, &thread_id, now);
            for added in &fresh {
                events.participant_added(
                    &thread,
                    &ParticipantSnapshot::from(added),
                    &caller.id,
                    &others(&after, &caller.id),
                )?;
            }
            Ok(rejected)
        })
        .await
    }

    /// Removes a participant. Removing someone who is not (or no longer) a participant
    /// changes nothing and succeeds.
    pub async fn remove_participant(
        &self,
        caller: &Caller,
        thread_id: &str,
        target: ApiResult<String>,
    ) -> ApiResult<()> {
        let (caller, thread_id, now) = (caller.clone(), thread_id.to_owned(), self.now());
        self.write(move |tx, resource| {
            let (thread, _) = participant(tx, &thread_id, &caller)?;
            caller.scope.require_participant_admin()?;
            let target = target?;
            classify_user_id(&target, &resource.id)?;
            let before = tx.participants(&thread_id)?;
            if let Some(removed) = tx.remove_participant(&thread_id, &target, &caller.id, now)? {
                ChangeEvents::new(tx, &resource.arm_id, &thread_id, now).participant_removed(
                    &thread,
                    &ParticipantSnapshot::from(&removed),
                    &caller.id,
                    &others(&before, &caller.id),
                )?;
            }
            Ok(())
        })
        .await
    }
}
