//! The ACS wire details the benchmark needs: HMAC-signed identity calls (api-contract.md §8),
//! bearer-token chat calls, percent-encoded thread ids, and the fixture every load cell uses
//! (users with tokens, one thread per connection with messages in it, users to add).

use std::sync::Arc;

use anyhow::{Context, bail};
use base64::Engine;
use base64::engine::general_purpose::STANDARD;
use hmac::{Hmac, Mac};
use hyper::StatusCode;
use percent_encoding::{AsciiSet, NON_ALPHANUMERIC, utf8_percent_encode};
use serde_json::json;
use sha2::{Digest, Sha256};

use crate::http::{Conn, Endpoint, Req};

/// Chat api-version of every chat call.
pub const CHAT_VERSION: &str = "2025-03-15";
/// Identity api-version.
pub const IDENTITY_VERSION: &str = "2025-06-30";

/// Everything but unreserved characters is encoded, as the SDKs do for path segments.
const SEGMENT: &AsciiSet = &NON_ALPHANUMERIC
    .remove(b'-')
    .remove(b'.')
    .remove(b'_')
    .remove(b'~');

/// A path segment, percent-encoded (`19:x@thread.v2` → `19%3Ax%40thread.v2`).
pub fn encode(segment: &str) -> String {
    utf8_percent_encode(segment, SEGMENT).to_string()
}

/// Headers of an HMAC-SHA256 access-key signature over `method`, the path as sent, `host` and
/// the body.
pub fn sign(
    key: &[u8],
    host: &str,
    method: &str,
    path_and_query: &str,
    body: &str,
) -> Vec<(&'static str, String)> {
    let date = httpdate::fmt_http_date(std::time::SystemTime::now());
    let hash = STANDARD.encode(Sha256::digest(body.as_bytes()));
    let to_sign = format!("{method}\n{path_and_query}\n{date};{host};{hash}");
    let mut mac = <Hmac<Sha256> as Mac>::new_from_slice(key).expect("BUG: HMAC takes any key");
    mac.update(to_sign.as_bytes());
    let signature = STANDARD.encode(mac.finalize().into_bytes());
    vec![
        ("x-ms-date", date),
        ("x-ms-content-sha256", hash),
        (
            "authorization",
            format!(
                "HMAC-SHA256 SignedHeaders=x-ms-date;host;x-ms-content-sha256&Signature={signature}"
            ),
        ),
    ]
}

/// A client of one emulator over one connection, for setup calls (not timed).
pub struct Admin {
    pub conn: Conn,
    pub host: String,
    pub key: Vec<u8>,
}

impl Admin {
    /// Connects to `endpoint`, signing identity calls with `key`.
    pub async fn connect(endpoint: &Endpoint, key: &[u8]) -> anyhow::Result<Self> {
        Ok(Admin {
            conn: endpoint.connect().await?,
            host: endpoint.host.clone(),
            key: key.to_vec(),
        })
    }

    async fn signed_post(&mut self, path: &str, body: &str) -> anyhow::Result<serde_json::Value> {
        let mut req = Req::post_json(path.to_owned(), body.to_owned());
        req.headers
            .extend(sign(&self.key, &self.host, "POST", path, body));
        let resp = self.conn.send(&req).await?;
        if !resp.status.is_success() {
            bail!(
                "POST {path}: {} {}",
                resp.status,
                String::from_utf8_lossy(&resp.body)
            );
        }
        Ok(resp.json())
    }

    /// Creates an identity; with `token`, also a `chat` token. Returns (id, token or "").
    pub async fn create_user(&mut self, token: bool) -> anyhow::Result<(String, String)> {
        let path = format!("/identities?api-version={IDENTITY_VERSION}");
        let body = if token {
            json!({ "createTokenWithScopes": ["chat"] }).to_string()
        } else {
            "{}".to_owned()
        };
        let v = self.signed_post(&path, &body).await?;
        let id = v["identity"]["id"]
            .as_str()
            .context("identity.id")?
            .to_owned();
        let token = v["accessToken"]["token"].as_str().unwrap_or("").to_owned();
        Ok((id, token))
    }

    /// Issues a `chat` token for an existing identity (one imported from a state document).
    pub async fn issue_token(&mut self, id: &str) -> anyhow::Result<String> {
        let path = format!(
            "/identities/{}/:issueAccessToken?api-version={IDENTITY_VERSION}",
            encode(id)
        );
        let v = self
            .signed_post(&path, &json!({ "scopes": ["chat"] }).to_string())
            .await?;
        Ok(v["token"].as_str().context("token")?.to_owned())
    }

    /// Creates a thread as `token`'s user with `peers` as participants; returns its id.
    pub async fn create_thread(
        &mut self,
        token: &str,
        topic: &str,
        peers: &[String],
    ) -> anyhow::Result<String> {
        let resp = self
            .conn
            .send(&create_thread_req(token, topic, peers))
            .await?;
        if resp.status != StatusCode::CREATED {
            bail!(
                "create thread: {} {}",
                resp.status,
                String::from_utf8_lossy(&resp.body)
            );
        }
        Ok(resp.json()["chatThread"]["id"]
            .as_str()
            .context("chatThread.id")?
            .to_owned())
    }

    /// Sends a text message; returns its id.
    pub async fn send_message(
        &mut self,
        token: &str,
        thread: &str,
        n: u64,
    ) -> anyhow::Result<String> {
        let resp = self
            .conn
            .send(&send_message_req(token, &encode(thread), n))
            .await?;
        if resp.status != StatusCode::CREATED {
            bail!(
                "send message: {} {}",
                resp.status,
                String::from_utf8_lossy(&resp.body)
            );
        }
        Ok(resp.json()["id"].as_str().context("id")?.to_owned())
    }
}

/// A `communicationIdentifier` of an ACS user, as the SDKs send it.
pub fn identifier(id: &str) -> serde_json::Value {
    json!({ "rawId": id, "communicationUser": { "id": id } })
}

/// `POST /chat/threads` with a fresh `repeatability-request-id` (the SDKs always send one).
pub fn create_thread_req(token: &str, topic: &str, peers: &[String]) -> Req {
    let participants: Vec<serde_json::Value> = peers
        .iter()
        .map(|p| json!({ "communicationIdentifier": identifier(p), "displayName": "Peer" }))
        .collect();
    let body = json!({ "topic": topic, "participants": participants }).to_string();
    Req::post_json(format!("/chat/threads?api-version={CHAT_VERSION}"), body)
        .bearer(token)
        .header("repeatability-request-id", uuid::Uuid::new_v4().to_string())
}

/// The text of message `n`: about the length of a short chat line.
pub fn message_text(n: u64) -> String {
    format!("Message {n:08}: are we still on for lunch at noon? I can book a table.")
}

/// `POST /chat/threads/{t}/messages`.
pub fn send_message_req(token: &str, thread_enc: &str, n: u64) -> Req {
    let body = json!({
        "content": message_text(n),
        "senderDisplayName": "Bench User",
        "type": "text",
    })
    .to_string();
    Req::post_json(
        format!("/chat/threads/{thread_enc}/messages?api-version={CHAT_VERSION}"),
        body,
    )
    .bearer(token)
}

/// `GET /chat/threads/{t}/messages?maxPageSize=50`: the newest page of 50.
pub fn list_messages_req(token: &str, thread_enc: &str) -> Req {
    Req::get(format!(
        "/chat/threads/{thread_enc}/messages?maxPageSize=50&api-version={CHAT_VERSION}"
    ))
    .bearer(token)
}

/// `GET /chat/threads/{t}/messages/{m}`.
pub fn get_message_req(token: &str, thread_enc: &str, message: &str) -> Req {
    Req::get(format!(
        "/chat/threads/{thread_enc}/messages/{message}?api-version={CHAT_VERSION}"
    ))
    .bearer(token)
}

/// `GET /chat/threads/{t}`.
pub fn get_thread_req(token: &str, thread_enc: &str) -> Req {
    Req::get(format!(
        "/chat/threads/{thread_enc}?api-version={CHAT_VERSION}"
    ))
    .bearer(token)
}

/// `POST /chat/threads/{t}/participants/:add` with one user.
pub fn add_participant_req(token: &str, thread_enc: &str, user: &str) -> Req {
    let body = json!({ "participants": [{
        "communicationIdentifier": identifier(user),
        "displayName": "Added",
        "shareHistoryTime": "1970-01-01T00:00:00Z",
    }]})
    .to_string();
    Req::post_json(
        format!("/chat/threads/{thread_enc}/participants/:add?api-version={CHAT_VERSION}"),
        body,
    )
    .bearer(token)
}

/// `POST /chat/threads/{t}/readReceipts`.
pub fn read_receipt_req(token: &str, thread_enc: &str, message: &str) -> Req {
    Req::post_json(
        format!("/chat/threads/{thread_enc}/readReceipts?api-version={CHAT_VERSION}"),
        json!({ "chatMessageId": message }).to_string(),
    )
    .bearer(token)
}

/// What one load connection acts as: a user, the thread it chats in and a message in it.
#[derive(Debug, Clone)]
pub struct Seat {
    pub token: String,
    pub thread: String,
    pub thread_enc: String,
    pub message: String,
    /// Another user, invited to the threads this seat creates.
    pub peer: String,
}

/// Users and threads the load cells run against; built once per emulator through its API.
#[derive(Debug, Clone)]
pub struct Fixture {
    pub seats: Arc<Vec<Seat>>,
    /// Identities without tokens that `add participant` adds (one thread holds up to 250).
    pub addable: Arc<Vec<String>>,
}

/// Messages put into each seat's thread before the cells, so the first list is a full page.
pub const MESSAGES_PER_THREAD: u64 = 60;
/// Identities `add participant` cycles through before it starts a new thread.
pub const ADDABLE: usize = 240;

/// Creates `seats` users, each with a thread (the next user is invited) holding
/// [`MESSAGES_PER_THREAD`] messages, and [`ADDABLE`] identities to add; `parallel` connections.
pub async fn build_fixture(
    endpoint: &Endpoint,
    key: &[u8],
    seats: usize,
    parallel: usize,
) -> anyhow::Result<Fixture> {
    let mut admin = Admin::connect(endpoint, key).await?;
    let mut users = Vec::with_capacity(seats);
    for _ in 0..seats {
        users.push(admin.create_user(true).await?);
    }
    let mut addable = Vec::with_capacity(ADDABLE);
    for _ in 0..ADDABLE {
        addable.push(admin.create_user(false).await?.0);
    }
    let users = Arc::new(users);
    let mut tasks = Vec::new();
    for worker in 0..parallel.min(seats) {
        let users = users.clone();
        let endpoint = endpoint.clone();
        let key = key.to_vec();
        tasks.push(tokio::spawn(async move {
            let mut admin = Admin::connect(&endpoint, &key).await?;
            let mut seats = Vec::new();
            for i in (worker..users.len()).step_by(parallel) {
                let token = users[i].1.clone();
                let peer = users[(i + 1) % users.len()].0.clone();
                let thread = admin
                    .create_thread(
                        &token,
                        &format!("bench seat {i}"),
                        std::slice::from_ref(&peer),
                    )
                    .await?;
                let mut message = String::new();
                for n in 0..MESSAGES_PER_THREAD {
                    message = admin.send_message(&token, &thread, n).await?;
                }
                seats.push((
                    i,
                    Seat {
                        token,
                        thread_enc: encode(&thread),
                        thread,
                        message,
                        peer,
                    },
                ));
            }
            anyhow::Ok(seats)
        }));
    }
    let mut all = Vec::with_capacity(seats);
    for task in tasks {
        all.extend(task.await??);
    }
    all.sort_by_key(|(i, _)| *i);
    Ok(Fixture {
        seats: Arc::new(all.into_iter().map(|(_, s)| s).collect()),
        addable: Arc::new(addable),
    })
}
