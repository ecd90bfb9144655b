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
mod images;
mod limits;
mod messages;
mod participants;
mod receipts;
mod threads;

use std::sync::Arc;

pub use access::thread_not_found;
pub use images::ImageUpload;
pub use limits::{MAX_PARTICIPANTS, MetadataPatch};
pub use messages::{AttachmentRequest, MessageChange, MessageDraft};
pub use participants::{ParticipantRequest, RejectedParticipant};
pub use threads::{RetentionRequest, ThreadChange, ThreadDraft};

use crate::clock::Clock;
use crate::error::ApiError;
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
    /// The emulated resource's GUID: users of other resources cannot join its threads.
    resource_id: Arc<str>,
    /// `--auth strict`: participants must be identities this emulator created.
    known_identities_only: bool,
}

impl Chat {
    /// The operations over `store`, with time from `clock`.
    pub fn new(
        store: Store,
        clock: Arc<dyn Clock>,
        resource_id: &str,
        known_identities_only: bool,
    ) -> Self {
        Chat {
            store,
            clock,
            resource_id: resource_id.into(),
            known_identities_only,
        }
    }

    fn now(&self) -> i64 {
        self.clock.now_micros()
    }
}
