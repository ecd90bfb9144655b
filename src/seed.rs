//! Declarative seed files (`--seed FILE`, YAML or JSON): identities with fixed ids and
//! deterministic tokens, threads with participants and messages. Turned into a state document
//! (`store::StateDocument`) that is imported when the database is empty, under the chat
//! layer's limits; and the seed's tokens, minted at every start.

use std::collections::BTreeMap;
use std::path::Path;

use anyhow::Context;
use serde::Deserialize;

use crate::clock::{Micros, parse_wire};
use crate::store::{
    IdentityState, MessageContent, MessageState, Metadata, ParticipantSnapshot, ParticipantState,
    STATE_FORMAT, StateDocument, ThreadState,
};

/// When seeded things happened, unless the file says: fixed, so ids and tokens are the same on
/// every start.
const DEFAULT_TIME: &str = "2024-01-01T00:00:00Z";
/// Default expiry of seeded tokens.
const DEFAULT_TOKEN_EXPIRY: &str = "2099-12-31T00:00:00Z";

/// A seed file.
#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct SeedFile {
    #[serde(default)]
    pub identities: Vec<SeedIdentity>,
    #[serde(default)]
    pub threads: Vec<SeedThread>,
}

/// An identity: `id` is a full `8:acs:<resourceId>_<x>` id or just `<x>` (a short name).
#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct SeedIdentity {
    pub id: String,
    /// Tokens to mint for it (deterministic: same claims, same key, same token).
    #[serde(default)]
    pub tokens: Vec<SeedToken>,
}

/// A token of a seeded identity.
#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct SeedToken {
    #[serde(default = "chat_scope")]
    pub scopes: Vec<String>,
    pub issued_at: Option<String>,
    pub expires_on: Option<String>,
}

fn chat_scope() -> Vec<String> {
    vec!["chat".to_owned()]
}

/// A thread; participants and message senders name seeded identities (short or full ids).
#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct SeedThread {
    /// Default: `19:<name>@thread.v2` from the topic's letters and digits.
    pub id: Option<String>,
    pub topic: String,
    pub created_by: String,
    pub created_at: Option<String>,
    #[serde(default)]
    pub metadata: Metadata,
    #[serde(default)]
    pub participants: Vec<SeedParticipant>,
    #[serde(default)]
    pub messages: Vec<SeedMessage>,
}

/// A participant.
#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct SeedParticipant {
    pub id: String,
    pub display_name: Option<String>,
    pub share_history_time: Option<String>,
}

/// A message, sent in file order one second apart unless `createdAt` says otherwise.
#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct SeedMessage {
    pub from: String,
    pub content: String,
    #[serde(rename = "type", default = "text")]
    pub kind: String,
    pub sender_display_name: Option<String>,
    pub created_at: Option<String>,
    #[serde(default)]
    pub metadata: Metadata,
}

fn text() -> String {
    "text".to_owned()
}

/// A token to mint once the key is known.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TokenToMint {
    pub identity: String,
    pub scopes: Vec<String>,
    /// Seconds.
    pub issued_at: i64,
    /// Seconds.
    pub expires_on: i64,
}

/// Reads a seed file: the state it describes and the tokens to mint for it.
pub fn load(path: &Path, resource_id: &str) -> anyhow::Result<(StateDocument, Vec<TokenToMint>)> {
    let text = std::fs::read_to_string(path)
        .with_context(|| format!("reading --seed {}", path.display()))?;
    let seed = parse(&text).map_err(|e| anyhow::anyhow!("{}: {e}", path.display()))?;
    seed.to_state(resource_id)
        .map_err(|e| anyhow::anyhow!("{}: {e}", path.display()))
}

/// Mints the seed's tokens (deterministic: the same on every start) and writes them to
/// `<data-dir>/seed-tokens.json` as well; returns (identity id, token) pairs.
pub fn mint_tokens(
    to_mint: Vec<TokenToMint>,
    config: &crate::config::Config,
    keys: &crate::auth::Keys,
) -> anyhow::Result<Vec<(String, String)>> {
    let mut tokens = Vec::new();
    for t in to_mint {
        let scopes: Vec<&str> = t.scopes.iter().map(String::as_str).collect();
        let claims = crate::auth::token::Claims::new(
            &t.identity,
            &scopes,
            &config.resource_id,
            t.issued_at,
            t.expires_on,
        );
        tokens.push((t.identity, crate::auth::token::mint(&claims, keys)?));
    }
    if !tokens.is_empty() {
        let file: Vec<serde_json::Value> = tokens
            .iter()
            .map(|(id, token)| serde_json::json!({ "id": id, "token": token }))
            .collect();
        let path = config.data_dir.join("seed-tokens.json");
        std::fs::write(&path, serde_json::to_string_pretty(&file)?)
            .with_context(|| format!("writing {}", path.display()))?;
    }
    Ok(tokens)
}

/// Parses a seed file: JSON if it looks like JSON, YAML otherwise.
pub fn parse(text: &str) -> Result<SeedFile, String> {
    if text.trim_start().starts_with('{') {
        serde_json::from_str(text).map_err(|e| format!("seed file (JSON): {e}"))
    } else {
        serde_norway::from_str(text).map_err(|e| format!("seed file (YAML): {e}"))
    }
}

fn time(text: Option<&str>, default: &str, what: &str) -> Result<Micros, String> {
    let text = text.unwrap_or(default);
    parse_wire(text).ok_or_else(|| format!("{what}: {text} is not an RFC 3339 time"))
}

/// Expands a short name to a full id of `resource_id`.
fn full_id(id: &str, resource_id: &str) -> String {
    if id.starts_with("8:") {
        id.to_owned()
    } else {
        format!("8:acs:{resource_id}_{id}")
    }
}

impl SeedFile {
    /// The state the seed describes, and the tokens to mint for it.
    pub fn to_state(&self, resource_id: &str) -> Result<(StateDocument, Vec<TokenToMint>), String> {
        let default_time = time(None, DEFAULT_TIME, "default")?;
        let mut identities = Vec::new();
        let mut tokens = Vec::new();
        let mut known = BTreeMap::new();
        for identity in &self.identities {
            let id = full_id(&identity.id, resource_id);
            crate::identifier::classify_user_id(&id, resource_id)
                .map_err(|e| format!("identity {}: {e}", identity.id))?;
            known.insert(id.clone(), ());
            identities.push(IdentityState {
                id: id.clone(),
                created_at: default_time,
                deleted_at: None,
                tokens_revoked_at: 0,
                last_token_issued_at: None,
                custom_id: None,
            });
            for token in &identity.tokens {
                let issued_at =
                    time(token.issued_at.as_deref(), DEFAULT_TIME, "issuedAt")? / 1_000_000;
                let expires_on = time(
                    token.expires_on.as_deref(),
                    DEFAULT_TOKEN_EXPIRY,
                    "expiresOn",
                )? / 1_000_000;
                if expires_on <= issued_at {
                    return Err(format!(
                        "identity {}: a token expires before it is issued",
                        identity.id
                    ));
                }
                tokens.push(TokenToMint {
                    identity: id.clone(),
                    scopes: token.scopes.clone(),
                    issued_at,
                    expires_on,
                });
            }
        }
        let resolve = |who: &str, context: &str| {
            let id = full_id(who, resource_id);
            if known.contains_key(&id) {
                Ok(id)
            } else {
                Err(format!("{context}: {who} is not a seeded identity"))
            }
        };

        let mut threads = Vec::new();
        for thread in &self.threads {
            let id = thread.id.clone().unwrap_or_else(|| {
                let name: String = thread
                    .topic
                    .chars()
                    .filter(char::is_ascii_alphanumeric)
                    .collect();
                format!("19:{}@thread.v2", name.to_ascii_lowercase())
            });
            let context = format!("thread {id}");
            let created_by = resolve(&thread.created_by, &context)?;
            let created_at = time(thread.created_at.as_deref(), DEFAULT_TIME, &context)?;
            // The creator is a participant, as with the service.
            let mut members: Vec<(String, Option<String>, Micros)> = Vec::new();
            if !thread
                .participants
                .iter()
                .any(|p| full_id(&p.id, resource_id) == created_by)
            {
                members.push((created_by.clone(), None, 0));
            }
            for p in &thread.participants {
                let share = match &p.share_history_time {
                    Some(t) => time(Some(t), DEFAULT_TIME, &context)?,
                    None => 0,
                };
                members.push((resolve(&p.id, &context)?, p.display_name.clone(), share));
            }
            if members.len() > crate::chat::MAX_PARTICIPANTS {
                return Err(format!(
                    "{context}: a thread can have at most {} participants",
                    crate::chat::MAX_PARTICIPANTS
                ));
            }
            crate::chat::check_metadata_size(&thread.metadata)
                .map_err(|e| format!("{context}: {e}"))?;
            let participants: Vec<ParticipantState> = members
                .iter()
                .enumerate()
                .map(|(i, (user_id, display_name, share))| ParticipantState {
                    user_id: user_id.clone(),
                    display_name: display_name.clone(),
                    share_history_time: *share,
                    metadata: Metadata::new(),
                    position: i as i64 + 1,
                })
                .collect();

            // The service's history of a new thread: participantAdded, then topicUpdated.
            let mut messages = Vec::new();
            let mut last_id = 0_i64;
            let mut push = |kind: &str,
                            sender: Option<String>,
                            name: Option<String>,
                            content: MessageContent,
                            metadata: Metadata,
                            at: Micros| {
                let message_id = (at / 1000).max(last_id + 1);
                last_id = message_id;
                let sequence_id = messages.len() as i64 + 1;
                messages.push(MessageState {
                    id: message_id,
                    sequence_id,
                    kind: kind.to_owned(),
                    sender_id: sender,
                    sender_display_name: name,
                    content,
                    metadata,
                    created_at: at,
                    version: message_id,
                    edited_at: None,
                    deleted_at: None,
                });
            };
            let snapshots = members
                .iter()
                .map(|(user_id, display_name, share)| ParticipantSnapshot {
                    id: user_id.clone(),
                    display_name: display_name.clone(),
                    share_history_time: *share,
                    metadata: Metadata::new(),
                })
                .collect();
            let system = |participants: Option<Vec<ParticipantSnapshot>>, topic: Option<String>| {
                MessageContent {
                    participants,
                    topic,
                    initiator: Some(created_by.clone()),
                    message: None,
                    attachments: Vec::new(),
                    priority: None,
                }
            };
            push(
                "participantAdded",
                None,
                None,
                system(Some(snapshots), None),
                Metadata::new(),
                created_at,
            );
            push(
                "topicUpdated",
                None,
                None,
                system(None, Some(thread.topic.clone())),
                Metadata::new(),
                created_at,
            );
            let mut at = created_at;
            for m in &thread.messages {
                let sender = resolve(&m.from, &context)?;
                if !members.iter().any(|(u, _, _)| *u == sender) {
                    return Err(format!(
                        "{context}: {} sends a message but is not a participant",
                        m.from
                    ));
                }
                // The chat layer's rules for what a user may send.
                let kind = crate::chat::user_message_kind(Some(&m.kind))
                    .and_then(|kind| {
                        crate::chat::check_content_size(&m.content)?;
                        crate::chat::check_metadata_size(&m.metadata)?;
                        Ok(kind)
                    })
                    .map_err(|e| format!("{context}: message from {}: {e}", m.from))?;
                at = match &m.created_at {
                    Some(t) => time(Some(t), DEFAULT_TIME, &context)?,
                    None => at + 1_000_000,
                };
                let content = MessageContent {
                    message: Some(m.content.clone()),
                    ..MessageContent::default()
                };
                push(
                    kind.as_str(),
                    Some(sender),
                    m.sender_display_name.clone(),
                    content,
                    m.metadata.clone(),
                    at,
                );
            }
            threads.push(ThreadState {
                id,
                topic: thread.topic.clone(),
                created_at,
                created_by,
                deleted_at: None,
                metadata: thread.metadata.clone(),
                retention_policy: None,
                last_message_at: messages.last().map_or(created_at, |m| m.created_at),
                last_sequence_id: messages.len() as i64,
                last_message_id: messages.last().map_or(0, |m| m.id),
                next_participant: participants.len() as i64,
                participants,
                messages,
                read_receipts: Vec::new(),
                images: Vec::new(),
            });
        }
        let document = StateDocument {
            format: STATE_FORMAT.to_owned(),
            identities,
            threads,
            repeatability: Vec::new(),
        };
        document.validate()?;
        Ok((document, tokens))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const RESOURCE: &str = "a1b2c3d4-0000-4000-8000-00000000ac5e";

    #[test]
    fn yaml_seed_becomes_a_valid_state() -> Result<(), String> {
        let seed = parse(
            "identities:\n  - id: alice\n    tokens: [{scopes: [chat]}]\n  - id: bob\nthreads:\n  - topic: General Chat\n    createdBy: alice\n    participants: [{id: bob, displayName: Bob}]\n    messages:\n      - {from: alice, content: hi}\n      - {from: bob, content: hello}\n",
        )?;
        let (state, tokens) = seed.to_state(RESOURCE)?;
        assert_eq!(state.identities[0].id, format!("8:acs:{RESOURCE}_alice"));
        assert_eq!(tokens.len(), 1);
        let thread = &state.threads[0];
        assert_eq!(thread.id, "19:generalchat@thread.v2");
        assert_eq!(thread.participants.len(), 2, "creator added");
        let kinds: Vec<&str> = thread.messages.iter().map(|m| m.kind.as_str()).collect();
        assert_eq!(kinds, ["participantAdded", "topicUpdated", "text", "text"]);
        assert!(thread.messages.windows(2).all(|w| w[0].id < w[1].id));
        Ok(())
    }

    #[test]
    fn mistakes_are_named() {
        let unknown = parse(
            r#"{"identities":[{"id":"alice"}],"threads":[{"topic":"t","createdBy":"carol"}]}"#,
        )
        .and_then(|s| s.to_state(RESOURCE).map(|_| ()));
        assert!(unknown.is_err_and(|e| e.contains("carol")));
        assert!(parse("identities: [{id: alice, extra: 1}]").is_err());
        let outsider = parse("identities: [{id: a}, {id: b}]\nthreads: [{topic: t, createdBy: a, messages: [{from: b, content: x}]}]")
            .and_then(|s| s.to_state(RESOURCE).map(|_| ()));
        assert!(outsider.is_err_and(|e| e.contains("not a participant")));
    }

    #[test]
    fn seeded_messages_keep_the_chat_limits() {
        // The same rules as a send: text or html, at most 28 KB, metadata at most 1 KB.
        let seed = |message: &str| {
            parse(&format!(
                r#"{{"identities":[{{"id":"a"}}],"threads":[{{"topic":"t","createdBy":"a","messages":[{message}]}}]}}"#
            ))
            .and_then(|s| s.to_state(RESOURCE).map(|_| ()))
        };
        assert!(seed(r#"{"from":"a","content":"hi","type":"html"}"#).is_ok());
        let long = "x".repeat(29 * 1024);
        assert!(
            seed(&format!(r#"{{"from":"a","content":"{long}"}}"#))
                .is_err_and(|e| e.contains("limit"))
        );
        assert!(seed(r#"{"from":"a","content":"x","type":"topicUpdated"}"#).is_err());
        let big = "v".repeat(1100);
        assert!(
            seed(&format!(
                r#"{{"from":"a","content":"x","metadata":{{"k":"{big}"}}}}"#
            ))
            .is_err_and(|e| e.contains("metadata"))
        );
    }
}
