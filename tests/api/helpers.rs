//! `TestApp`: starts the emulator exactly as `main` does (same `build_app`), on free ports,
//! and offers signed identity calls and bearer chat calls. Built with [`TestApp::builder`]:
//!
//! ```ignore
//! let app = TestApp::builder().clock(clock.clone()).config(|c| c.loose = true).spawn().await;
//! ```
//!
//! Storage is file-backed by default, as users run the emulator: each app gets a temp data dir
//! of its own (`.data_dir(path)` gives one the caller owns, for restart tests). In-memory storage
//! is still a supported mode, so it gets a run of its own: with `ACS_TEST_STORE=memory` the
//! default becomes in-memory (`tests/run-all.sh` runs this suite a second time that way);
//! `ACS_TEST_STORE=file` or unset is file-backed. A test of one mode's behaviour says so with
//! `.in_memory()` or `.file_backed()`, which no environment overrides.

use std::path::{Path, PathBuf};
use std::sync::Arc;

use acs_chat_emulator::clock::{Clock, SystemClock};
use acs_chat_emulator::config::{Config, DEFAULT_ACCESS_KEY};
use base64::Engine;
use base64::engine::general_purpose::STANDARD;
use hmac::{Hmac, Mac};
use reqwest::{Method, StatusCode, header::HeaderMap};
use serde_json::{Value, json};
use sha2::{Digest, Sha256};
use tokio::sync::oneshot;
use tokio::task::JoinHandle;

/// Chat api-version the JS SDK 1.6.0 sends.
pub const CHAT_VERSION: &str = "2025-03-15";
/// Identity api-version both identity SDKs send.
pub const IDENTITY_VERSION: &str = "2023-10-01";

/// A running emulator.
pub struct TestApp {
    /// `http://127.0.0.1:<port>`.
    pub http_base: String,
    /// `https://127.0.0.1:<port>`.
    pub https_base: String,
    /// PEM of the CA to trust for `https_base`.
    pub ca_pem: String,
    /// The data dir: the app's own temp dir, or the caller's from `.data_dir(path)`.
    pub data_dir: PathBuf,
    /// Whether the store is in memory (`.in_memory()` or `ACS_TEST_STORE=memory`).
    pub in_memory: bool,
    pub client: reqwest::Client,
    access_key: Vec<u8>,
    stop: Option<oneshot::Sender<()>>,
    task: Option<JoinHandle<anyhow::Result<()>>>,
    /// The app's own data dir, removed when the app is dropped; `None` for a caller's dir.
    _temp: Option<tempfile::TempDir>,
}

/// Where a [`TestApp`] keeps its state.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Store {
    /// SQLite in `<data dir>/emulator.db`, what users get without `--in-memory`.
    File,
    /// `--in-memory`: nothing survives a restart.
    Memory,
}

impl Store {
    /// The store a test gets when it names none: `ACS_TEST_STORE` (`file` or `memory`), else
    /// file-backed. Anything else is a typo that would silently test the wrong mode, so it panics.
    fn from_env() -> Self {
        match std::env::var("ACS_TEST_STORE") {
            Err(std::env::VarError::NotPresent) => Store::File,
            Ok(value) if value.is_empty() || value == "file" => Store::File,
            Ok(value) if value == "memory" => Store::Memory,
            Ok(value) => panic!("ACS_TEST_STORE must be `file` or `memory`, not {value:?}"),
            Err(e) => panic!("ACS_TEST_STORE: {e}"),
        }
    }
}

/// A change to the test configuration, from [`TestAppBuilder::config`].
type ConfigEdit = Box<dyn FnOnce(&mut Config) + Send>;

/// Settings for a [`TestApp`], from [`TestApp::builder`]; [`TestAppBuilder::spawn`] starts it.
#[must_use = "nothing starts until `spawn().await`"]
pub struct TestAppBuilder {
    clock: Arc<dyn Clock>,
    adjust: Vec<ConfigEdit>,
    store: Option<Store>,
    data_dir: Option<PathBuf>,
}

impl TestAppBuilder {
    /// Reads "now" from `clock`, so that tests move time (token expiry, `startTime`,
    /// `shareHistoryTime`) with `FixedClock::advance_micros` instead of sleeping.
    pub fn clock(mut self, clock: Arc<dyn Clock>) -> Self {
        self.clock = clock;
        self
    }

    /// Adjusts the configuration (`Config::for_tests` plus the chosen store and data dir); runs
    /// last, in the order given.
    pub fn config(mut self, adjust: impl FnOnce(&mut Config) + Send + 'static) -> Self {
        self.adjust.push(Box::new(adjust));
        self
    }

    /// Keeps all state in memory (`--in-memory`), whatever `ACS_TEST_STORE` says.
    pub fn in_memory(mut self) -> Self {
        self.store = Some(Store::Memory);
        self
    }

    /// Keeps state in `<data dir>/emulator.db`, whatever `ACS_TEST_STORE` says (restart tests).
    pub fn file_backed(mut self) -> Self {
        self.store = Some(Store::File);
        self
    }

    /// Uses `data_dir`, which the caller owns and which outlives the app (so a second app can
    /// open it after a restart), instead of a temp dir of the app's own.
    pub fn data_dir(mut self, data_dir: &Path) -> Self {
        self.data_dir = Some(data_dir.to_path_buf());
        self
    }

    /// Builds the emulator with `build_app`, as `main` does, and serves it on a task; the
    /// listeners are bound when this returns.
    pub async fn spawn(self) -> TestApp {
        let (data_dir, temp) = match self.data_dir {
            Some(dir) => (dir, None),
            None => {
                let temp = tempfile::tempdir().expect("temp dir");
                (temp.path().to_path_buf(), Some(temp))
            }
        };
        let mut config = Config::for_tests(data_dir);
        config.in_memory = self.store.unwrap_or_else(Store::from_env) == Store::Memory;
        for adjust in self.adjust {
            adjust(&mut config);
        }
        let access_key = STANDARD
            .decode(&config.access_key)
            .expect("test key is base64");
        let data_dir = config.data_dir.clone();
        let in_memory = config.in_memory;
        let app = acs_chat_emulator::build_app(config, self.clock)
            .await
            .expect("emulator builds");
        let http_base = format!("http://{}", app.http_addr);
        let https_base = format!("https://{}", app.https_addr);
        let ca_pem = app.tls.trust_pem.clone();
        let (stop, stopped) = oneshot::channel::<()>();
        let task = tokio::spawn(app.serve(async {
            let _ = stopped.await;
        }));
        TestApp {
            http_base,
            https_base,
            ca_pem,
            data_dir,
            in_memory,
            client: reqwest::Client::new(),
            access_key,
            stop: Some(stop),
            task: Some(task),
            _temp: temp,
        }
    }
}

/// A response, read whole.
#[derive(Debug)]
pub struct Reply {
    pub status: StatusCode,
    pub headers: HeaderMap,
    pub text: String,
}

impl Reply {
    /// The body as JSON (`Null` when empty or not JSON).
    pub fn json(&self) -> Value {
        serde_json::from_str(&self.text).unwrap_or(Value::Null)
    }

    /// A header value as text.
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers.get(name).and_then(|v| v.to_str().ok())
    }

    /// Asserts the ACS error envelope with this status and code.
    pub fn assert_error(&self, status: u16, code: &str) {
        assert_eq!(self.status.as_u16(), status, "body: {}", self.text);
        let body = self.json();
        assert_eq!(body["error"]["code"], code, "body: {}", self.text);
        assert!(
            body["error"]["message"]
                .as_str()
                .is_some_and(|m| !m.is_empty()),
            "body: {}",
            self.text
        );
    }
}

impl TestApp {
    /// A builder for an emulator: `Config::for_tests` (file-backed, strict auth) in a temp dir
    /// of its own, on the system clock; in memory instead under `ACS_TEST_STORE=memory`.
    pub fn builder() -> TestAppBuilder {
        TestAppBuilder {
            clock: Arc::new(SystemClock),
            adjust: Vec::new(),
            store: None,
            data_dir: None,
        }
    }

    /// Stops the server gracefully and waits until it has closed the database.
    pub async fn stop(mut self) {
        if let Some(stop) = self.stop.take() {
            let _ = stop.send(());
        }
        if let Some(task) = self.task.take() {
            task.await
                .expect("server task")
                .expect("server stopped cleanly");
        }
    }

    /// Sends a request and reads the whole reply.
    pub async fn send(
        &self,
        method: Method,
        url: &str,
        headers: &[(&str, String)],
        body: Option<&str>,
    ) -> Reply {
        let mut request = self.client.request(method, url);
        for (name, value) in headers {
            request = request.header(*name, value);
        }
        if let Some(body) = body {
            request = request
                .header("content-type", "application/json")
                .body(body.to_owned());
        }
        let response = request.send().await.expect("request sent");
        let status = response.status();
        let headers = response.headers().clone();
        let text = response.text().await.expect("body read");
        Reply {
            status,
            headers,
            text,
        }
    }

    /// An identity call signed with the access key as the SDKs sign it. `path_and_query` must
    /// include `api-version`.
    pub async fn identity(
        &self,
        method: Method,
        path_and_query: &str,
        body: Option<Value>,
    ) -> Reply {
        let body_text = body.map(|b| b.to_string()).unwrap_or_default();
        let headers = self.sign(
            method.as_str(),
            path_and_query,
            &body_text,
            &self.access_key,
        );
        let url = format!("{}{path_and_query}", self.http_base);
        self.send(
            method,
            &url,
            &headers,
            Some(&body_text)
                .filter(|b| !b.is_empty())
                .map(|s| s.as_str()),
        )
        .await
    }

    /// HMAC headers for a request to the HTTP listener, signed with `key`.
    pub fn sign(
        &self,
        method: &str,
        path_and_query: &str,
        body: &str,
        key: &[u8],
    ) -> Vec<(&'static str, String)> {
        self.sign_dated(method, path_and_query, body, key, &httpdate_now())
    }

    /// As `sign`, with `date` as the signed `x-ms-date` (any text: stale, future or garbage).
    pub fn sign_dated(
        &self,
        method: &str,
        path_and_query: &str,
        body: &str,
        key: &[u8],
        date: &str,
    ) -> Vec<(&'static str, String)> {
        let host = self.http_base.trim_start_matches("http://").to_owned();
        let date = date.to_owned();
        let hash = STANDARD.encode(Sha256::digest(body.as_bytes()));
        let to_sign = format!("{method}\n{path_and_query}\n{date};{host};{hash}");
        let mut mac = <Hmac<Sha256> as Mac>::new_from_slice(key).expect("any key");
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

    /// Creates an identity with a `chat` token; returns `(id, token)`.
    pub async fn create_user(&self) -> (String, String) {
        self.create_user_with_scopes(&["chat"]).await
    }

    /// Creates an identity with a token of the given scopes; returns `(id, token)`.
    pub async fn create_user_with_scopes(&self, scopes: &[&str]) -> (String, String) {
        let reply = self
            .identity(
                Method::POST,
                &format!("/identities?api-version={IDENTITY_VERSION}"),
                Some(json!({ "createTokenWithScopes": scopes })),
            )
            .await;
        assert_eq!(reply.status, StatusCode::CREATED, "{}", reply.text);
        let body = reply.json();
        let id = body["identity"]["id"]
            .as_str()
            .expect("identity id")
            .to_owned();
        let token = body["accessToken"]["token"]
            .as_str()
            .expect("token")
            .to_owned();
        (id, token)
    }

    /// A chat call with a bearer token. `path` has no query or its own; `api-version` is added
    /// unless the path already has one.
    pub async fn chat(
        &self,
        method: Method,
        path: &str,
        token: &str,
        body: Option<Value>,
    ) -> Reply {
        let url = self.chat_url(path);
        let text = body.map(|b| b.to_string());
        self.send(
            method,
            &url,
            &[("authorization", format!("Bearer {token}"))],
            text.as_deref(),
        )
        .await
    }

    /// Absolute URL on the HTTP listener with the chat api-version added when missing.
    /// Checks the nextLink of a skip-paged list (participants, read receipts): absolute, on
    /// `/chat/threads/…/{collection}?`, continuing at `skip`, keeping maxPageSize and
    /// api-version.
    pub fn assert_skip_next_link(&self, next: &str, collection: &str, skip: usize, page_size: u32) {
        assert!(
            next.starts_with(&format!("{}/chat/threads/", self.http_base)),
            "absolute: {next}"
        );
        assert!(next.contains(&format!("/{collection}?")), "{next}");
        assert!(next.contains(&format!("skip={skip}")), "{next}");
        assert!(
            next.contains(&format!("maxPageSize={page_size}"))
                && next.contains(&format!("api-version={CHAT_VERSION}")),
            "{next}"
        );
    }

    pub fn chat_url(&self, path: &str) -> String {
        if path.starts_with("http") {
            return path.to_owned();
        }
        let separator = if path.contains('?') { '&' } else { '?' };
        if path.contains("api-version=") {
            format!("{}{path}", self.http_base)
        } else {
            format!(
                "{}{path}{separator}api-version={CHAT_VERSION}",
                self.http_base
            )
        }
    }

    /// Creates a thread with `topic` and the given participant ids; returns its id.
    pub async fn create_thread(&self, token: &str, topic: &str, participants: &[&str]) -> String {
        let participants: Vec<Value> = participants.iter().map(|id| participant(id)).collect();
        let reply = self
            .chat(
                Method::POST,
                "/chat/threads",
                token,
                Some(json!({ "topic": topic, "participants": participants })),
            )
            .await;
        assert_eq!(reply.status, StatusCode::CREATED, "{}", reply.text);
        reply.json()["chatThread"]["id"]
            .as_str()
            .expect("thread id")
            .to_owned()
    }

    /// Sends a text message; returns its id.
    pub async fn send_message(&self, token: &str, thread_id: &str, content: &str) -> String {
        let reply = self
            .chat(
                Method::POST,
                &format!("/chat/threads/{}/messages", enc(thread_id)),
                token,
                Some(json!({ "content": content })),
            )
            .await;
        assert_eq!(reply.status, StatusCode::CREATED, "{}", reply.text);
        reply.json()["id"].as_str().expect("message id").to_owned()
    }

    /// Follows `nextLink`s from `path` to the end; returns every page's `value`.
    pub async fn all_pages(&self, path: &str, token: &str) -> Vec<Vec<Value>> {
        let mut pages = Vec::new();
        let mut url = self.chat_url(path);
        loop {
            let reply = self.chat(Method::GET, &url, token, None).await;
            assert_eq!(reply.status, StatusCode::OK, "{}", reply.text);
            let body = reply.json();
            pages.push(body["value"].as_array().expect("value array").clone());
            match body.get("nextLink").and_then(Value::as_str) {
                Some(next) => url = next.to_owned(),
                None => return pages,
            }
            assert!(pages.len() < 1000, "paging does not end");
        }
    }
}

/// `ChatParticipant` JSON for an ACS user id, as the SDKs send it.
pub fn participant(id: &str) -> Value {
    json!({ "communicationIdentifier": { "rawId": id, "communicationUser": { "id": id } } })
}

/// Percent-encodes a thread id for a path, as the SDKs do (`:` and `@`).
pub fn enc(thread_id: &str) -> String {
    thread_id.replace(':', "%3A").replace('@', "%40")
}

fn httpdate_now() -> String {
    httpdate(time::OffsetDateTime::now_utc())
}

/// An instant as an HTTP date (IMF-fixdate), as the SDKs write `x-ms-date`.
pub fn httpdate(at: time::OffsetDateTime) -> String {
    let format = time::macros::format_description!(
        "[weekday repr:short], [day] [month repr:short] [year] [hour]:[minute]:[second] GMT"
    );
    at.to_offset(time::UtcOffset::UTC)
        .format(&format)
        .expect("date formats")
}

/// The well-known key, decoded.
pub fn default_key() -> Vec<u8> {
    STANDARD.decode(DEFAULT_ACCESS_KEY).expect("base64")
}

// ---------------------------------------------------------------------------------------------
// Additions for the per-area test files (identity, threads, messages, participants, receipts,
// errors, persistence, tls).

/// `/chat/threads/<encoded id>`, as the SDKs address a thread.
pub fn thread_path(thread_id: &str) -> String {
    format!("/chat/threads/{}", enc(thread_id))
}

/// An instant (microseconds since the epoch) as RFC 3339 with full precision, as the SDKs send
/// `startTime` and `shareHistoryTime`.
pub fn rfc3339(micros: i64) -> String {
    time::OffsetDateTime::from_unix_timestamp_nanos(i128::from(micros) * 1_000)
        .expect("instant in range")
        .format(&time::format_description::well_known::Rfc3339)
        .expect("formats")
}

/// Parses an RFC 3339 timestamp from a response into microseconds since the epoch.
pub fn parse_time(text: &str) -> i64 {
    let parsed = time::OffsetDateTime::parse(text, &time::format_description::well_known::Rfc3339)
        .unwrap_or_else(|e| panic!("{text} is not RFC 3339: {e}"));
    (parsed.unix_timestamp_nanos() / 1_000) as i64
}

/// The wall clock now, in microseconds since the epoch.
pub fn wall_now_micros() -> i64 {
    (time::OffsetDateTime::now_utc().unix_timestamp_nanos() / 1_000) as i64
}

impl TestApp {
    /// Creates an identity without a token; returns its id.
    pub async fn create_identity(&self) -> String {
        let reply = self
            .identity(
                Method::POST,
                &format!("/identities?api-version={IDENTITY_VERSION}"),
                None,
            )
            .await;
        assert_eq!(reply.status, StatusCode::CREATED, "{}", reply.text);
        reply.json()["identity"]["id"]
            .as_str()
            .expect("identity id")
            .to_owned()
    }

    /// Issues a token with `scopes` for an existing identity; returns the token.
    pub async fn issue_token(&self, id: &str, scopes: &[&str]) -> String {
        let reply = self
            .identity(
                Method::POST,
                &format!(
                    "/identities/{}/:issueAccessToken?api-version={IDENTITY_VERSION}",
                    enc(id)
                ),
                Some(json!({ "scopes": scopes })),
            )
            .await;
        assert_eq!(reply.status, StatusCode::OK, "{}", reply.text);
        reply.json()["token"].as_str().expect("token").to_owned()
    }

    /// Every item of a paged list, following `nextLink`s to the end.
    pub async fn items(&self, path: &str, token: &str) -> Vec<Value> {
        self.all_pages(path, token)
            .await
            .into_iter()
            .flatten()
            .collect()
    }

    /// `POST …/participants/:add` with the given ids.
    pub async fn add_participants(&self, token: &str, thread_id: &str, ids: &[&str]) -> Reply {
        let participants: Vec<Value> = ids.iter().map(|id| participant(id)).collect();
        self.chat(
            Method::POST,
            &format!("{}/participants/:add", thread_path(thread_id)),
            token,
            Some(json!({ "participants": participants })),
        )
        .await
    }

    /// A request to the HTTP listener with no credentials and a raw body.
    pub async fn raw(
        &self,
        method: Method,
        path_and_query: &str,
        headers: &[(&str, String)],
        body: Option<&str>,
    ) -> Reply {
        let url = format!("{}{path_and_query}", self.http_base);
        self.send(method, &url, headers, body).await
    }
}

impl TestApp {
    /// A call to an `/_emulator` route with `Authorization: Bearer <access key>`.
    pub async fn admin(&self, method: Method, path: &str, body: Option<Value>) -> Reply {
        let url = format!("{}{path}", self.http_base);
        let text = body.map(|b| b.to_string());
        let key = STANDARD.encode(&self.access_key);
        self.send(
            method,
            &url,
            &[("authorization", format!("Bearer {key}"))],
            text.as_deref(),
        )
        .await
    }

    /// The exported state document.
    pub async fn export(&self) -> Value {
        let reply = self
            .send(
                Method::GET,
                &format!("{}/_emulator/state", self.http_base),
                &[],
                None,
            )
            .await;
        assert_eq!(reply.status, StatusCode::OK, "{}", reply.text);
        reply.json()
    }
}
