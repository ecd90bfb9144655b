//! Store rows → wire JSON for a given Chat api-version. Fields a version does not have are left
//! out here and only here.

use serde_json::{Map, Value, json};

use crate::clock::to_wire;
use crate::identifier::identifier_json;
use crate::store::{
    MessageRow, ParticipantSnapshot, ReadReceiptRow, ThreadRow, metadata_from_text,
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

/// `ChatParticipant`. An unset share time reads as the epoch, as the service reports it.
pub fn participant(p: &ParticipantSnapshot, version: &ChatVersion) -> Value {
    let mut out = Map::new();
    out.insert("communicationIdentifier".into(), identifier_json(&p.id));
    if let Some(name) = &p.display_name {
        out.insert("displayName".into(), json!(name));
    }
    out.insert(
        "shareHistoryTime".into(),
        json!(to_wire(p.share_history_time)),
    );
    if version.thread_metadata && !p.metadata.is_empty() {
        out.insert("metadata".into(), json!(p.metadata));
    }
    Value::Object(out)
}

/// `ChatMessage`.
///
/// `thread_url` is the absolute URL of the message's thread; attachment links are built on it.
pub fn message(m: &MessageRow, version: &ChatVersion, thread_url: &str) -> Value {
    let stored = m.content();
    let mut content = Map::new();
    match m.kind.as_str() {
        "text" | "html" => {
            content.insert("message".into(), json!(stored.message.unwrap_or_default()));
            if version.attachments {
                // ACS messages without images carry an empty list (recorded 2024 responses:
                // `"content":{"message":"…","attachments":[]}`); images uploaded with
                // 2024-03-15-preview are linked to the emulator's image view route.
                let attachments: Vec<Value> = stored
                    .attachments
                    .iter()
                    .map(|a| {
                        let view = |kind: &str| {
                            format!(
                                "{thread_url}/images/{}/view/{kind}?api-version=2024-03-15-preview",
                                a.id
                            )
                        };
                        let mut out = json!({
                            "id": a.id,
                            "attachmentType": a.attachment_type,
                            "url": view("original"),
                            "previewUrl": view("small"),
                        });
                        if let Some(name) = &a.name {
                            out["name"] = json!(name);
                        }
                        out
                    })
                    .collect();
                content.insert("attachments".into(), json!(attachments));
            }
        }
        "topicUpdated" => {
            content.insert("topic".into(), json!(stored.topic.unwrap_or_default()));
        }
        _ => {
            let participants: Vec<Value> = stored
                .participants
                .unwrap_or_default()
                .iter()
                .map(|p| participant(p, version))
                .collect();
            content.insert("participants".into(), json!(participants));
        }
    }
    if let Some(initiator) = &stored.initiator {
        content.insert(
            "initiatorCommunicationIdentifier".into(),
            identifier_json(initiator),
        );
    }

    let mut out = Map::new();
    out.insert("id".into(), json!(m.id.to_string()));
    out.insert("type".into(), json!(m.kind));
    out.insert("sequenceId".into(), json!(m.sequence_id.to_string()));
    out.insert("version".into(), json!(m.version.to_string()));
    out.insert("content".into(), Value::Object(content));
    if let Some(sender) = &m.sender_id {
        // The service sends "" for a user message sent without a display name.
        out.insert(
            "senderDisplayName".into(),
            json!(m.sender_display_name.clone().unwrap_or_default()),
        );
        out.insert(
            "senderCommunicationIdentifier".into(),
            identifier_json(sender),
        );
    }
    out.insert("createdOn".into(), json!(to_wire(m.created_at)));
    if let Some(deleted) = m.deleted_at {
        out.insert("deletedOn".into(), json!(to_wire(deleted)));
    }
    if let Some(edited) = m.edited_at {
        out.insert("editedOn".into(), json!(to_wire(edited)));
    }
    if version.message_metadata && m.sender_id.is_some() {
        let metadata = metadata_from_text(&m.metadata);
        if !metadata.is_empty() {
            out.insert("metadata".into(), json!(metadata));
        }
    }
    Value::Object(out)
}

/// `ChatMessageReadReceipt`.
pub fn read_receipt(r: &ReadReceiptRow) -> Value {
    json!({
        "senderCommunicationIdentifier": identifier_json(&r.user_id),
        "chatMessageId": r.message_id.to_string(),
        "readOn": to_wire(r.read_at),
    })
}
