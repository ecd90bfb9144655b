//! The events of a committed chat change (design.md decision 12): built by the operation inside
//! its own write transaction and appended to the store's outbox, so a rolled-back change has
//! none and a committed one always has them. One event model for every consumer: the Event Grid
//! dispatcher delivers these envelopes as they are, the event log shows them, and the realtime
//! push reads the same rows.
//!
//! Types, subjects, fan-out and `data` follow `events.md` (shared docs): thread-level events
//! once per change, user-level events once per recipient (every participant but the actor,
//! with the recipients of added/removed-participant events as in its §10), `data` with every
//! field the swagger (and the stricter TypeSpec) models for the type.

use serde_json::{Map, Value, json};

use crate::clock::to_wire;
use crate::error::ApiResult;
use crate::store::{
    MessageKind, Metadata, NewEvent, ParticipantRow, ParticipantSnapshot, ThreadRow, Tx,
    metadata_from_text,
};

/// The prefix of every chat event type.
pub const EVENT_TYPE_PREFIX: &str = "Microsoft.Communication.";

/// A user's `CommunicationIdentifierModel` as chat events carry it: `rawId` and
/// `communicationUser.id` (the same string), and `kind`.
fn identifier(raw_id: &str) -> Value {
    json!({ "rawId": raw_id, "kind": "communicationUser", "communicationUser": { "id": raw_id } })
}

/// `AcsChatThreadParticipantProperties`.
fn participant(p: &ParticipantSnapshot) -> Value {
    let mut out = json!({
        "participantCommunicationIdentifier": identifier(&p.id),
        "metadata": p.metadata,
    });
    if let Some(name) = &p.display_name {
        out["displayName"] = json!(name);
    }
    out
}

/// A message's `type` as the events name it (the service's names in the events doc's examples).
fn message_type(kind: MessageKind) -> &'static str {
    match kind {
        MessageKind::Html => "RichText/Html",
        _ => "Text",
    }
}

/// What the message events carry about their message.
pub(super) struct MessageFacts<'a> {
    pub id: i64,
    pub kind: MessageKind,
    pub sender: &'a str,
    pub sender_display_name: Option<&'a str>,
    pub created_at: i64,
    pub version: i64,
    pub body: &'a str,
    pub metadata: &'a Metadata,
}

impl MessageFacts<'_> {
    fn data(&self) -> Map<String, Value> {
        let mut data = Map::new();
        data.insert("messageId".into(), json!(self.id.to_string()));
        data.insert(
            "senderCommunicationIdentifier".into(),
            identifier(self.sender),
        );
        if let Some(name) = self.sender_display_name {
            data.insert("senderDisplayName".into(), json!(name));
        }
        data.insert("composeTime".into(), json!(to_wire(self.created_at)));
        data.insert("type".into(), json!(message_type(self.kind)));
        data.insert("version".into(), json!(self.version));
        data.insert("messageBody".into(), json!(self.body));
        data.insert("metadata".into(), json!(self.metadata));
        data
    }
}

/// The events of one change to one thread, written into its transaction.
pub(super) struct ChangeEvents<'t, 'c> {
    tx: &'t Tx<'c>,
    topic: &'t str,
    thread_id: &'t str,
    /// One correlation id for every event of the change.
    transaction_id: String,
    now: i64,
}

impl<'t, 'c> ChangeEvents<'t, 'c> {
    pub(super) fn new(tx: &'t Tx<'c>, topic: &'t str, thread_id: &'t str, now: i64) -> Self {
        let transaction_id = base64::Engine::encode(
            &base64::engine::general_purpose::URL_SAFE_NO_PAD,
            uuid::Uuid::new_v4().as_bytes(),
        );
        ChangeEvents {
            tx,
            topic,
            thread_id,
            transaction_id,
            now,
        }
    }

    /// Appends a thread-level event in the Event Grid schema; returns its sequence number.
    fn append(
        &self,
        suffix: &str,
        subject: String,
        mut data: Map<String, Value>,
    ) -> ApiResult<i64> {
        data.insert("transactionId".into(), json!(self.transaction_id));
        data.insert("threadId".into(), json!(self.thread_id));
        let event_type = format!("{EVENT_TYPE_PREFIX}{suffix}");
        let envelope = json!({
            "id": uuid::Uuid::new_v4().to_string(),
            "topic": self.topic,
            "subject": subject,
            "data": data,
            "eventType": event_type,
            "dataVersion": "1.0",
            "metadataVersion": "1",
            "eventTime": to_wire(self.now),
        });
        Ok(self.tx.append_event(&NewEvent {
            event_type,
            thread_id: self.thread_id.to_owned(),
            recipient: None,
            created_at: self.now,
            envelope: envelope.to_string(),
            origin: None,
        })?)
    }

    /// Appends the user-level event of `recipient` for the thread-level event `origin`: the
    /// same `data` plus `recipientCommunicationIdentifier`, its own id, type and subject. Only
    /// that difference is written; the store completes it from `origin` when it is read.
    fn append_for(
        &self,
        origin: i64,
        suffix: &str,
        subject: String,
        recipient: &str,
    ) -> ApiResult<()> {
        let event_type = format!("{EVENT_TYPE_PREFIX}{suffix}");
        let patch = json!({
            "id": uuid::Uuid::new_v4().to_string(),
            "subject": subject,
            "eventType": event_type,
            "data": { "recipientCommunicationIdentifier": identifier(recipient) },
        });
        self.tx.append_event(&NewEvent {
            event_type,
            thread_id: self.thread_id.to_owned(),
            recipient: Some(recipient.to_owned()),
            created_at: self.now,
            envelope: patch.to_string(),
            origin: Some(origin),
        })?;
        Ok(())
    }

    /// A thread-level event and its user-level twin for each recipient (subject + `/recipient/…`).
    fn fan_out(
        &self,
        thread_suffix: &str,
        user_suffix: &str,
        subject: String,
        recipients: &[&str],
        data: Map<String, Value>,
    ) -> ApiResult<()> {
        let origin = self.append(thread_suffix, subject.clone(), data)?;
        for recipient in recipients {
            self.append_for(
                origin,
                user_suffix,
                format!("{subject}/recipient/{recipient}"),
                recipient,
            )?;
        }
        Ok(())
    }

    fn thread_base(&self, thread: &ThreadRow) -> Map<String, Value> {
        let mut data = Map::new();
        data.insert("createTime".into(), json!(to_wire(thread.created_at)));
        // The thread's version: the time of the change in milliseconds (spec examples).
        data.insert("version".into(), json!(self.now / 1000));
        data
    }

    /// `ChatThreadCreated` and `ChatThreadCreatedWithUser` for every initial participant but
    /// the creator. No participant-added events: these list the participants.
    pub(super) fn thread_created(
        &self,
        thread: &ThreadRow,
        participants: &[ParticipantSnapshot],
    ) -> ApiResult<()> {
        let mut data = self.thread_base(thread);
        data.insert(
            "createdByCommunicationIdentifier".into(),
            identifier(&thread.created_by),
        );
        data.insert("properties".into(), json!({ "topic": thread.topic }));
        data.insert(
            "metadata".into(),
            json!(metadata_from_text(&thread.metadata)),
        );
        data.insert(
            "participants".into(),
            Value::Array(participants.iter().map(participant).collect()),
        );
        if let Some(policy) = thread
            .retention_policy
            .as_deref()
            .and_then(|p| serde_json::from_str::<Value>(p).ok())
        {
            data.insert("retentionPolicy".into(), policy);
        }
        let recipients: Vec<&str> = participants
            .iter()
            .map(|p| p.id.as_str())
            .filter(|id| *id != thread.created_by)
            .collect();
        self.fan_out(
            "ChatThreadCreated",
            "ChatThreadCreatedWithUser",
            format!("thread/{}/createdBy/{}", self.thread_id, thread.created_by),
            &recipients,
            data,
        )
    }

    /// `ChatThreadPropertiesUpdated` and `…PerUser`, with the properties after the change.
    pub(super) fn properties_updated(
        &self,
        thread: &ThreadRow,
        editor: &str,
        recipients: &[&str],
    ) -> ApiResult<()> {
        let mut data = self.thread_base(thread);
        data.insert("editedByCommunicationIdentifier".into(), identifier(editor));
        data.insert("editTime".into(), json!(to_wire(self.now)));
        data.insert("properties".into(), json!({ "topic": thread.topic }));
        data.insert(
            "metadata".into(),
            json!(metadata_from_text(&thread.metadata)),
        );
        if let Some(policy) = thread
            .retention_policy
            .as_deref()
            .and_then(|p| serde_json::from_str::<Value>(p).ok())
        {
            data.insert("retentionPolicy".into(), policy);
        }
        self.fan_out(
            "ChatThreadPropertiesUpdated",
            "ChatThreadPropertiesUpdatedPerUser",
            format!("thread/{}/editedBy/{editor}", self.thread_id),
            recipients,
            data,
        )
    }

    /// `ChatThreadDeleted` and `ChatThreadWithUserDeleted`.
    pub(super) fn thread_deleted(
        &self,
        thread: &ThreadRow,
        deleter: &str,
        recipients: &[&str],
    ) -> ApiResult<()> {
        let mut data = self.thread_base(thread);
        data.insert(
            "deletedByCommunicationIdentifier".into(),
            identifier(deleter),
        );
        data.insert("deleteTime".into(), json!(to_wire(self.now)));
        self.fan_out(
            "ChatThreadDeleted",
            "ChatThreadWithUserDeleted",
            format!("thread/{}/deletedBy/{deleter}", self.thread_id),
            recipients,
            data,
        )
    }

    /// `ChatMessageReceivedInThread` and `ChatMessageReceived`.
    pub(super) fn message_received(
        &self,
        message: &MessageFacts<'_>,
        recipients: &[&str],
    ) -> ApiResult<()> {
        self.fan_out(
            "ChatMessageReceivedInThread",
            "ChatMessageReceived",
            format!("thread/{}/sender/{}", self.thread_id, message.sender),
            recipients,
            message.data(),
        )
    }

    /// `ChatMessageEditedInThread` and `ChatMessageEdited`, with the message after the edit.
    pub(super) fn message_edited(
        &self,
        message: &MessageFacts<'_>,
        recipients: &[&str],
    ) -> ApiResult<()> {
        let mut data = message.data();
        data.insert("editTime".into(), json!(to_wire(self.now)));
        self.fan_out(
            "ChatMessageEditedInThread",
            "ChatMessageEdited",
            format!("thread/{}/sender/{}", self.thread_id, message.sender),
            recipients,
            data,
        )
    }

    /// `ChatMessageDeletedInThread` and `ChatMessageDeleted`.
    pub(super) fn message_deleted(
        &self,
        message: &MessageFacts<'_>,
        recipients: &[&str],
    ) -> ApiResult<()> {
        let mut data = message.data();
        data.insert("deleteTime".into(), json!(to_wire(self.now)));
        self.fan_out(
            "ChatMessageDeletedInThread",
            "ChatMessageDeleted",
            format!("thread/{}/sender/{}", self.thread_id, message.sender),
            recipients,
            data,
        )
    }

    /// `ChatThreadParticipantAdded` for one added participant and
    /// `ChatParticipantAddedToThreadWithUser` for each recipient (everyone after the add but
    /// the actor: the added ones included, events.md §10).
    pub(super) fn participant_added(
        &self,
        thread: &ThreadRow,
        added: &ParticipantSnapshot,
        actor: &str,
        recipients: &[&str],
    ) -> ApiResult<()> {
        self.participant_changed(thread, added, actor, recipients, true)
    }

    /// `ChatThreadParticipantRemoved` and `ChatParticipantRemovedFromThreadWithUser` for each
    /// recipient (everyone before the removal but the actor: the removed one included).
    pub(super) fn participant_removed(
        &self,
        thread: &ThreadRow,
        removed: &ParticipantSnapshot,
        actor: &str,
        recipients: &[&str],
    ) -> ApiResult<()> {
        self.participant_changed(thread, removed, actor, recipients, false)
    }

    fn participant_changed(
        &self,
        thread: &ThreadRow,
        who: &ParticipantSnapshot,
        actor: &str,
        recipients: &[&str],
        added: bool,
    ) -> ApiResult<()> {
        let (by, field, thread_suffix, user_suffix, thread_path, user_path) = if added {
            (
                "addedByCommunicationIdentifier",
                "participantAdded",
                "ChatThreadParticipantAdded",
                "ChatParticipantAddedToThreadWithUser",
                "participantadded",
                "participantAdded",
            )
        } else {
            (
                "removedByCommunicationIdentifier",
                "participantRemoved",
                "ChatThreadParticipantRemoved",
                "ChatParticipantRemovedFromThreadWithUser",
                "participantremoved",
                "participantRemoved",
            )
        };
        let mut data = self.thread_base(thread);
        data.insert("time".into(), json!(to_wire(self.now)));
        data.insert(by.into(), identifier(actor));
        data.insert(field.into(), participant(who));
        // The thread-level subject is lower-case (`participantadded`), the user-level one
        // camel-case (events.md §1).
        let origin = self.append(
            thread_suffix,
            format!("thread/{}/{thread_path}/{}", self.thread_id, who.id),
            data,
        )?;
        for recipient in recipients {
            self.append_for(
                origin,
                user_suffix,
                format!(
                    "thread/{}/{user_path}/{}/recipient/{recipient}",
                    self.thread_id, who.id
                ),
                recipient,
            )?;
        }
        Ok(())
    }

    /// `ChatTypingIndicatorReceivedInThread`, thread-level only; `data` fills every field its
    /// model requires (events.md §10).
    pub(super) fn typing(&self, sender: &str, sender_display_name: Option<&str>) -> ApiResult<()> {
        let metadata = Metadata::new();
        let facts = MessageFacts {
            id: 0,
            kind: MessageKind::Text,
            sender,
            sender_display_name,
            created_at: self.now,
            version: self.now / 1000,
            body: "",
            metadata: &metadata,
        };
        self.append(
            "ChatTypingIndicatorReceivedInThread",
            format!("thread/{}/sender/{sender}", self.thread_id),
            facts.data(),
        )?;
        Ok(())
    }
}

/// The raw ids of `participants` except `actor`.
pub(super) fn others<'p>(participants: &'p [ParticipantRow], actor: &str) -> Vec<&'p str> {
    participants
        .iter()
        .map(|p| p.user_id.as_str())
        .filter(|id| *id != actor)
        .collect()
}

/// What the event signal carries: how many commits it has seen, and whether the emulator is
/// shutting down (streams then end, so a graceful shutdown is not held open by them).
#[derive(Debug, Clone, Copy, Default)]
pub struct Signalled {
    pub commits: u64,
    pub closed: bool,
}

/// Wakes the dispatchers after a commit that may have added events. A watch channel holds a
/// counter, not the events: a dispatcher that misses a wake-up still sees the counter moved and
/// reads every committed event from its own position, so a wake-up can be late but never lost.
#[derive(Clone, Debug)]
pub struct EventSignal(std::sync::Arc<tokio::sync::watch::Sender<Signalled>>);

impl Default for EventSignal {
    fn default() -> Self {
        EventSignal(std::sync::Arc::new(tokio::sync::watch::Sender::new(
            Signalled::default(),
        )))
    }
}

impl EventSignal {
    /// Says that events were committed (called after the write returned, never inside it).
    pub fn notify(&self) {
        self.0
            .send_modify(|s| s.commits = s.commits.wrapping_add(1));
    }

    /// Tells every dispatcher and stream to stop (the emulator is shutting down).
    pub fn close(&self) {
        self.0.send_modify(|s| s.closed = true);
    }

    /// A receiver whose `changed()` resolves after the next commit with events, or the close.
    pub fn subscribe(&self) -> tokio::sync::watch::Receiver<Signalled> {
        self.0.subscribe()
    }
}
