//! Store rows → wire JSON for a given Chat api-version. Fields a version does not have are left
//! out here and only here.

use serde::Serialize;
use serde_json::{Map, Value, json};

use crate::clock::to_wire;
use crate::identifier::{UserIdentifier, identifier_json};
use crate::store::{
    MessageKind, MessageRow, Metadata, ParticipantSnapshot, ReadReceiptRow, ThreadRow,
    metadata_from_text,
};
use crate::versions::ChatVersion;

/// `ChatThreadProperties`.
pub fn thread_properties(thread: &ThreadRow, version: &ChatVersion) -> Value {
    let mut out = Map::new();
    out.insert("id".into(), json!(thread.id));
    out.insert("topic".into(), json!(thread.topic));
    out.insert("createdOn".into(), json!(to_wire(thread.created_at)));
    out.insert(
        "createdByCommunicationIdentifier".into(),
        identifier_json(&thread.created_by),
    );
    if let Some(deleted) = thread.deleted_at {
        out.insert("deletedOn".into(), json!(to_wire(deleted)));
    }
    if version.thread_metadata {
        let metadata = metadata_from_text(&thread.metadata);
        if !metadata.is_empty() {
            out.insert("metadata".into(), json!(metadata));
        }
        if let Some(policy) = thread
            .retention_policy
            .as_deref()
            .and_then(|p| serde_json::from_str::<Value>(p).ok())
            // 2024-03-15-preview has no `none` kind: there, a removed policy is no policy.
            .filter(|p| version.retention_none || p["kind"] != "none")
        {
            out.insert("retentionPolicy".into(), policy);
        }
    }
    Value::Object(out)
}

/// `ChatThreadItem` (list entry): no creator, metadata or policy.
pub fn thread_item(thread: &ThreadRow) -> Value {
    let mut out = Map::new();
    out.insert("id".into(), json!(thread.id));
    out.insert("topic".into(), json!(thread.topic));
    if let Some(deleted) = thread.deleted_at {
        out.insert("deletedOn".into(), json!(to_wire(deleted)));
    }
    out.insert(
        "lastMessageReceivedOn".into(),
        json!(to_wire(thread.last_message_at)),
    );
    Value::Object(out)
}

// The wire structs below list their fields in the alphabetical order of their JSON names: the
// order `serde_json::Value` maps (sorted) gave before they replaced them, so responses stay
// byte-for-byte the same. Typed rendering is about three times cheaper than building maps (a
// list page renders 50 messages; `perf` showed the maps as the largest cost of listing).

/// `ChatParticipant`. An unset share time reads as the epoch, as the service reports it.
#[derive(Debug, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct ChatParticipant<'a> {
    communication_identifier: UserIdentifier<&'a str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    display_name: Option<&'a str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    metadata: Option<&'a Metadata>,
    share_history_time: String,
}

/// `ChatParticipant` of a participant.
pub fn participant<'a>(p: &'a ParticipantSnapshot, version: &ChatVersion) -> ChatParticipant<'a> {
    participant_with(p, version.thread_metadata)
}

/// `ChatParticipant`, with its metadata if the api-version has participant metadata.
fn participant_with(p: &ParticipantSnapshot, with_metadata: bool) -> ChatParticipant<'_> {
    ChatParticipant {
        communication_identifier: UserIdentifier(&p.id),
        display_name: p.display_name.as_deref(),
        metadata: (with_metadata && !p.metadata.is_empty()).then_some(&p.metadata),
        share_history_time: to_wire(p.share_history_time),
    }
}

/// `ChatMessage`.
#[derive(Debug, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct ChatMessage {
    content: ChatMessageContent,
    created_on: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    deleted_on: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    edited_on: Option<String>,
    id: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    metadata: Option<Metadata>,
    #[serde(skip_serializing_if = "Option::is_none")]
    sender_communication_identifier: Option<UserIdentifier<String>>,
    #[serde(skip_serializing_if = "Option::is_none")]
    sender_display_name: Option<String>,
    sequence_id: String,
    #[serde(rename = "type")]
    kind: &'static str,
    version: String,
}

/// `ChatMessageContent`: the fields a message of its type has.
#[derive(Debug, Serialize)]
#[serde(rename_all = "camelCase")]
struct ChatMessageContent {
    #[serde(skip_serializing_if = "Option::is_none")]
    attachments: Option<Vec<ChatAttachment>>,
    #[serde(skip_serializing_if = "Option::is_none")]
    initiator_communication_identifier: Option<UserIdentifier<String>>,
    #[serde(skip_serializing_if = "Option::is_none")]
    message: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    participants: Option<Vec<OwnedParticipant>>,
    #[serde(skip_serializing_if = "Option::is_none")]
    topic: Option<String>,
}

/// `ChatAttachment` (image attachments, 2024-03-15-preview).
#[derive(Debug, Serialize)]
#[serde(rename_all = "camelCase")]
struct ChatAttachment {
    attachment_type: String,
    id: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    name: Option<String>,
    preview_url: String,
    url: String,
}

/// A participant decoded from a system message, rendered as `ChatParticipant`.
#[derive(Debug)]
struct OwnedParticipant {
    snapshot: ParticipantSnapshot,
    metadata: bool,
}

impl Serialize for OwnedParticipant {
    fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        participant_with(&self.snapshot, self.metadata).serialize(serializer)
    }
}

/// `ChatMessage` of a stored message.
///
/// `thread_url` is the absolute URL of the message's thread; attachment links are built on it.
pub fn message(m: &MessageRow, version: &ChatVersion, thread_url: &str) -> ChatMessage {
    let stored = m.content();
    let mut content = ChatMessageContent {
        attachments: None,
        initiator_communication_identifier: stored.initiator.map(UserIdentifier),
        message: None,
        participants: None,
        topic: None,
    };
    match m.kind {
        MessageKind::Text | MessageKind::Html => {
            content.message = Some(stored.message.unwrap_or_default());
            if version.attachments {
                // ACS messages without images carry an empty list (recorded 2024 responses:
                // `"content":{"message":"…","attachments":[]}`); images uploaded with
                // 2024-03-15-preview are linked to the emulator's image view route.
                let view = |id: &str, kind: &str| {
                    format!("{thread_url}/images/{id}/view/{kind}?api-version=2024-03-15-preview")
                };
                content.attachments = Some(
                    stored
                        .attachments
                        .into_iter()
                        .map(|a| ChatAttachment {
                            url: view(&a.id, "original"),
                            preview_url: view(&a.id, "small"),
                            attachment_type: a.attachment_type,
                            id: a.id,
                            name: a.name,
                        })
                        .collect(),
                );
            }
        }
        MessageKind::TopicUpdated => {
            content.topic = Some(stored.topic.unwrap_or_default());
        }
        MessageKind::ParticipantAdded | MessageKind::ParticipantRemoved => {
            content.participants = Some(
                stored
                    .participants
                    .unwrap_or_default()
                    .into_iter()
                    .map(|snapshot| OwnedParticipant {
                        snapshot,
                        metadata: version.thread_metadata,
                    })
                    .collect(),
            );
        }
    }
    let metadata = if version.message_metadata && m.sender_id.is_some() {
        Some(metadata_from_text(&m.metadata)).filter(|metadata| !metadata.is_empty())
    } else {
        None
    };
    ChatMessage {
        content,
        created_on: to_wire(m.created_at),
        deleted_on: m.deleted_at.map(to_wire),
        edited_on: m.edited_at.map(to_wire),
        id: m.id.to_string(),
        metadata,
        sender_communication_identifier: m.sender_id.clone().map(UserIdentifier),
        // The service sends "" for a user message sent without a display name.
        sender_display_name: m
            .sender_id
            .as_ref()
            .map(|_| m.sender_display_name.clone().unwrap_or_default()),
        sequence_id: m.sequence_id.to_string(),
        kind: m.kind.as_str(),
        version: m.version.to_string(),
    }
}

/// `ChatMessageReadReceipt`.
pub fn read_receipt(r: &ReadReceiptRow) -> Value {
    json!({
        "senderCommunicationIdentifier": identifier_json(&r.user_id),
        "chatMessageId": r.message_id.to_string(),
        "readOn": to_wire(r.read_at),
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::store::{MessageContent, StoredAttachment};

    fn row(kind: MessageKind, content: &MessageContent, sender: Option<&str>) -> MessageRow {
        MessageRow {
            id: 1_700_000_000_123,
            sequence_id: 7,
            kind,
            sender_id: sender.map(str::to_owned),
            sender_display_name: None,
            content: serde_json::to_string(content).expect("content"),
            metadata: r#"{"b":"2","a":"1"}"#.to_owned(),
            created_at: 1_700_000_000_123_000,
            version: 1_700_000_000_123,
            edited_at: Some(1_700_000_001_000_000),
            deleted_at: None,
        }
    }

    #[test]
    fn messages_render_as_the_wire_shape_with_sorted_keys() {
        let version = crate::versions::chat_version("2025-03-15").expect("served");
        let text = row(
            MessageKind::Text,
            &MessageContent {
                message: Some("hi".to_owned()),
                attachments: vec![StoredAttachment {
                    id: "img".to_owned(),
                    attachment_type: "image".to_owned(),
                    name: None,
                }],
                ..MessageContent::default()
            },
            Some("8:acs:r_u"),
        );
        let rendered = message(&text, version, "https://h/chat/threads/t");
        let value = serde_json::to_value(&rendered).expect("serialises");
        let user = json!({"communicationUser": {"id": "8:acs:r_u"}, "rawId": "8:acs:r_u"});
        assert_eq!(
            value,
            json!({
                "id": "1700000000123",
                "type": "text",
                "sequenceId": "7",
                "version": "1700000000123",
                "content": {"message": "hi", "attachments": [{
                    "id": "img",
                    "attachmentType": "image",
                    "url": "https://h/chat/threads/t/images/img/view/original?api-version=2024-03-15-preview",
                    "previewUrl": "https://h/chat/threads/t/images/img/view/small?api-version=2024-03-15-preview",
                }]},
                "senderDisplayName": "",
                "senderCommunicationIdentifier": user,
                "createdOn": "2023-11-14T22:13:20Z",
                "editedOn": "2023-11-14T22:13:21Z",
                "metadata": {"a": "1", "b": "2"},
            })
        );
        // Field order is the sorted order `Value` maps gave: the bytes did not change.
        assert_eq!(
            serde_json::to_string(&rendered).expect("serialises"),
            value.to_string()
        );

        let added = row(
            MessageKind::ParticipantAdded,
            &MessageContent {
                participants: Some(vec![ParticipantSnapshot {
                    id: "8:acs:r_v".to_owned(),
                    display_name: Some("V".to_owned()),
                    share_history_time: 0,
                    metadata: [("k".to_owned(), "v".to_owned())].into(),
                }]),
                initiator: Some("8:acs:r_u".to_owned()),
                ..MessageContent::default()
            },
            None,
        );
        let rendered = message(&added, version, "https://h/chat/threads/t");
        let value = serde_json::to_value(&rendered).expect("serialises");
        assert_eq!(
            value["content"],
            json!({
                "participants": [{
                    "communicationIdentifier": {"communicationUser": {"id": "8:acs:r_v"}, "rawId": "8:acs:r_v"},
                    "displayName": "V",
                    "shareHistoryTime": "1970-01-01T00:00:00Z",
                    "metadata": {"k": "v"},
                }],
                "initiatorCommunicationIdentifier": user,
            })
        );
        assert!(value.get("senderDisplayName").is_none() && value.get("metadata").is_none());
        assert_eq!(
            serde_json::to_string(&rendered).expect("serialises"),
            value.to_string()
        );
    }
}
