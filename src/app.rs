//! Assembly: the shared `AppState`, the two listeners (HTTPS and HTTP) with their layers, and
//! serving until shutdown. `main` and the integration tests start the emulator the same way.

use std::net::{SocketAddr, TcpListener};
use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::Context;
use axum::Router;
use axum::extract::{DefaultBodyLimit, Request};
use axum::http::{HeaderName, HeaderValue};
use axum::middleware::{self, Next};
use axum::response::Response;
use axum_server::Handle;
use axum_server::tls_rustls::RustlsConfig;
use tower_http::request_id::{MakeRequestUuid, PropagateRequestIdLayer, SetRequestIdLayer};

use crate::api::chaos::Operation;
use crate::api::extract::ListenerScheme;
use crate::auth::Keys;
use crate::clock::Clock;
use crate::config::Config;
use crate::faults::FaultRules;
use crate::store::Store;
use crate::throttle::Throttle;
use crate::tls::{self, TlsMaterial};

/// Largest request body accepted by the service routes (a 28 KB message fits with room to spare).
pub const MAX_BODY_BYTES: usize = 1024 * 1024;
/// Largest state document `PUT /_emulator/state` accepts.
pub const MAX_STATE_BYTES: usize = 512 * 1024 * 1024;

/// Everything handlers share; cheap to clone.
#[derive(Clone)]
pub struct AppState {
    pub store: Store,
    pub keys: Arc<Keys>,
    pub clock: Arc<dyn Clock>,
    pub config: Arc<Config>,
    /// PEM that clients should trust (served at `/_emulator/ca.pem`).
    pub trust_pem: Arc<String>,
    /// Facts about this run, for `/_emulator/info`.
    pub runtime: Arc<Runtime>,
    /// Installed fault rules (`/_emulator/faults`).
    pub faults: Arc<FaultRules>,
    /// The service's rate limits, with `--throttle`.
    pub throttle: Option<Arc<Throttle>>,
}

/// Facts about the running process.
#[derive(Debug)]
pub struct Runtime {
    pub started: Instant,
    pub https_addr: SocketAddr,
    pub http_addr: SocketAddr,
}

/// A built emulator: state, bound listeners and TLS material, ready to serve.
pub struct App {
    pub state: AppState,
    pub https_addr: SocketAddr,
    pub http_addr: SocketAddr,
    pub tls: TlsMaterial,
    /// Tokens minted for `--seed` identities: (identity id, token).
    pub seed_tokens: Vec<(String, String)>,
    https_listener: TcpListener,
    http_listener: TcpListener,
}

/// Opens the store, prepares TLS and binds both listeners (port 0 picks a free port).
pub async fn build_app(config: Config, clock: Arc<dyn Clock>) -> anyhow::Result<App> {
    // rustls may see more than one crypto backend through feature unification; choose ring.
    let _ = rustls::crypto::ring::default_provider().install_default();
    anyhow::ensure!(
        uuid::Uuid::parse_str(&config.resource_id).is_ok(),
        "--resource-id must be a GUID (it becomes part of every user id and token)"
    );
    let keys = Keys::from_access_key(&config.access_key).context("--access-key")?;
    let tls = tls::load_or_generate(
        &config.data_dir,
        &config.hostnames,
        config.tls_cert.as_deref(),
        config.tls_key.as_deref(),
    )?;
    let store = Store::connect(&config.data_dir, config.in_memory)
        .await
        .context("opening the database")?;
    let seed_tokens = load_initial_state(&store, &config, &keys).await?;
    let https_listener = bind(config.bind, config.https_port).context("binding the HTTPS port")?;
    let http_listener = bind(config.bind, config.http_port).context("binding the HTTP port")?;
    let config_throttle = config.throttle;
    let runtime = Runtime {
        started: Instant::now(),
        https_addr: https_listener.local_addr()?,
        http_addr: http_listener.local_addr()?,
    };
    let state = AppState {
        store,
        keys: Arc::new(keys),
        clock,
        trust_pem: Arc::new(tls.trust_pem.clone()),
        config: Arc::new(config),
        runtime: Arc::new(runtime),
        faults: Arc::new(FaultRules::default()),
        throttle: config_throttle.then(|| Arc::new(Throttle::default())),
    };
    Ok(App {
        https_addr: state.runtime.https_addr,
        http_addr: state.runtime.http_addr,
        state,
        tls,
        seed_tokens,
        https_listener,
        http_listener,
    })
}

/// `--import` / `--seed`: loads the file into an empty database (a first start, or
/// `--in-memory`) and leaves existing state alone. Seeded tokens are minted on every start
/// (they are deterministic) and also written to `<data-dir>/seed-tokens.json`.
async fn load_initial_state(
    store: &Store,
    config: &Config,
    keys: &Keys,
) -> anyhow::Result<Vec<(String, String)>> {
    let (document, to_mint) = if let Some(path) = &config.import_file {
        (crate::commands::read_state_document(path)?, Vec::new())
    } else if let Some(path) = &config.seed {
        let text = std::fs::read_to_string(path)
            .with_context(|| format!("reading --seed {}", path.display()))?;
        let seed =
            crate::seed::parse(&text).map_err(|e| anyhow::anyhow!("{}: {e}", path.display()))?;
        seed.to_state(&config.resource_id)
            .map_err(|e| anyhow::anyhow!("{}: {e}", path.display()))?
    } else {
        return Ok(Vec::new());
    };
    if store.is_empty().await? {
        let (identities, threads) = (document.identities.len(), document.threads.len());
        store
            .import_state(document)
            .await
            .context("loading the initial state")?;
        tracing::info!(identities, threads, "initial state loaded");
    } else {
        tracing::info!("the database already has state; --import/--seed left it as it is");
    }
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

fn bind(ip: std::net::IpAddr, port: u16) -> std::io::Result<TcpListener> {
    let listener = TcpListener::bind(SocketAddr::new(ip, port))?;
    listener.set_nonblocking(true)?;
    Ok(listener)
}

/// The full router for one listener, with the service's cross-cutting behaviour as layers.
pub fn router(state: AppState, scheme: &'static str) -> Router {
    let client_request_id = HeaderName::from_static("x-ms-client-request-id");
    crate::api::router(state)
        .layer(DefaultBodyLimit::max(MAX_BODY_BYTES))
        .layer(middleware::from_fn(service_headers))
        .layer(axum::Extension(ListenerScheme(scheme)))
        // Echo the SDK's x-ms-client-request-id (or make one), as the service does.
        .layer(PropagateRequestIdLayer::new(client_request_id.clone()))
        .layer(middleware::from_fn(access_log))
        .layer(SetRequestIdLayer::new(client_request_id, MakeRequestUuid))
}

/// One log line per request: method, path, operation, status, latency, caller, request id.
/// Never the Authorization header or a token: the caller is the identity id the bearer token
/// names (`8:acs:…`), `access-key` for signed calls, or `-`.
async fn access_log(mut request: Request, next: Next) -> Response {
    let started = Instant::now();
    let method = request.method().clone();
    let path = request.uri().path().to_owned();
    let request_id = request
        .headers()
        .get("x-ms-client-request-id")
        .and_then(|v| v.to_str().ok())
        .unwrap_or("-")
        .to_owned();
    let signed = request
        .headers()
        .get(axum::http::header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|auth| auth.starts_with("HMAC-SHA256"));
    let claimed = crate::auth::claimed_identity(request.headers());
    let caller = match &claimed {
        Some(identity) => identity.clone(),
        None if signed => "access-key".to_owned(),
        None if crate::auth::bearer_token(request.headers()).is_some() => "bearer".to_owned(),
        None => "-".to_owned(),
    };
    request
        .extensions_mut()
        .insert(crate::auth::ClaimedIdentity(claimed));
    let response = next.run(request).await;
    let operation = response
        .extensions()
        .get::<Operation>()
        .map_or("-", |o| o.0);
    tracing::info!(
        target: "acs_chat_emulator::access",
        method = %method,
        path = %path,
        operation,
        status = response.status().as_u16(),
        latency_ms = started.elapsed().as_secs_f64() * 1000.0,
        caller = %caller,
        request_id = %request_id,
        "request"
    );
    response
}

/// The request path exactly as the client sent it, before `collapse_slashes` (the access-key
/// signature covers the path as sent).
#[derive(Debug, Clone)]
pub struct RawPathAndQuery(pub String);

/// The router behind a path normaliser. SDKs given an endpoint with a trailing slash send
/// `//chat/threads` (recorded against the real service, which accepts it), so repeated slashes
/// are collapsed before routing.
pub fn service(state: AppState, scheme: &'static str) -> Router {
    let inner = router(state, scheme);
    Router::new().fallback_service(
        tower::ServiceBuilder::new()
            .map_request(collapse_slashes)
            .service(inner),
    )
}

fn collapse_slashes(mut request: Request) -> Request {
    let uri = request.uri();
    if !uri.path().contains("//") {
        return request;
    }
    let raw = uri
        .path_and_query()
        .map(|p| p.as_str().to_owned())
        .unwrap_or_default();
    let mut path = String::with_capacity(uri.path().len());
    for c in uri.path().chars() {
        if !(c == '/' && path.ends_with('/')) {
            path.push(c);
        }
    }
    let rebuilt = match uri.query() {
        Some(query) => format!("{path}?{query}"),
        None => path,
    };
    let mut parts = uri.clone().into_parts();
    if let Ok(path_and_query) = rebuilt.parse() {
        parts.path_and_query = Some(path_and_query);
        if let Ok(new_uri) = axum::http::Uri::from_parts(parts) {
            *request.uri_mut() = new_uri;
            request.extensions_mut().insert(RawPathAndQuery(raw));
        }
    }
    request
}

/// Adds the service's response headers: `MS-CV` (correlation vector) and `X-Processing-Time`.
async fn service_headers(request: Request, next: Next) -> Response {
    let started = Instant::now();
    let mut response = next.run(request).await;
    let cv = base64::Engine::encode(
        &base64::engine::general_purpose::STANDARD,
        uuid::Uuid::new_v4().as_bytes(),
    );
    let headers = response.headers_mut();
    if let Ok(v) = HeaderValue::from_str(&format!("{}.0", &cv[..22])) {
        headers.insert("ms-cv", v);
    }
    if let Ok(v) = HeaderValue::from_str(&format!("{}ms", started.elapsed().as_millis())) {
        headers.insert("x-processing-time", v);
    }
    response
}

impl App {
    /// Serves both listeners until `shutdown` resolves, then lets in-flight requests finish
    /// (up to 10 s) and closes the database.
    pub async fn serve(
        self,
        shutdown: impl std::future::Future<Output = ()> + Send + 'static,
    ) -> anyhow::Result<()> {
        let tls_config = RustlsConfig::from_pem(
            self.tls.cert_chain_pem.clone().into_bytes(),
            self.tls.key_pem.clone().into_bytes(),
        )
        .await
        .context("loading the TLS certificate and key")?;
        let handle: Handle<SocketAddr> = Handle::new();
        let https = axum_server::from_tcp_rustls(self.https_listener, tls_config)?
            .handle(handle.clone())
            .serve(service(self.state.clone(), "https").into_make_service());
        let http = axum_server::from_tcp(self.http_listener)?
            .handle(handle.clone())
            .serve(service(self.state.clone(), "http").into_make_service());
        let stopper = handle.clone();
        tokio::spawn(async move {
            shutdown.await;
            tracing::info!("shutting down: finishing in-flight requests");
            stopper.graceful_shutdown(Some(Duration::from_secs(10)));
        });
        let (https_result, http_result) = tokio::join!(https, http);
        https_result.context("HTTPS listener")?;
        http_result.context("HTTP listener")?;
        self.state.store.close().await;
        Ok(())
    }
}
