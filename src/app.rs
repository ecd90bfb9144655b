//! Assembly: building the `AppState`, the two listeners (HTTPS and HTTP) with their layers in
//! order, and serving until shutdown. `main` and the integration tests start the emulator the
//! same way.

use std::net::{SocketAddr, TcpListener};
use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::Context;
use axum::Router;
use axum::extract::DefaultBodyLimit;
use axum::http::HeaderName;
use axum::middleware::from_fn;
use axum_server::Handle;
use axum_server::tls_rustls::{RustlsAcceptor, RustlsConfig};
use tower_http::request_id::{MakeRequestUuid, PropagateRequestIdLayer, SetRequestIdLayer};

use crate::auth::Keys;
use crate::chat::{Chat, Resource};
use crate::clock::Clock;
use crate::config::{AuthMode, Config};
use crate::connections::Bounded;
use crate::eventgrid::EventGrid;
use crate::faults::FaultRules;
use crate::lock::DataDirLock;
use crate::middleware;
use crate::request::ListenerScheme;
use crate::state::{AppState, MAX_BODY_BYTES, Runtime};
use crate::store::{StateDocument, Store};
use crate::throttle::Throttle;
use crate::tls::{self, TlsMaterial};

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
    /// The data dir's lock, held until `serve` has closed the store; `None` in memory.
    _lock: Option<DataDirLock>,
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
    // In memory, the data dir holds only the TLS files, which a second emulator may share on
    // purpose (tests/run-all.sh starts an --in-memory one on the first one's CA): nothing in it
    // can go stale between the two, so only a file-backed store takes the lock. It is taken
    // before anything in the dir is opened or written.
    let lock = if config.in_memory {
        None
    } else {
        Some(DataDirLock::acquire(&config.data_dir)?)
    };
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
    let chat = Chat::new(
        store.clone(),
        Arc::clone(&clock),
        Resource {
            id: config.resource_id.clone(),
            arm_id: config.resource_arm_id.clone(),
            known_identities_only: config.auth == AuthMode::Strict,
        },
    );
    let eventgrid = EventGrid::new(
        store.clone(),
        Arc::clone(&clock),
        config.resource_arm_id.clone(),
        config.event_retry_scale,
        chat.events().clone(),
    )?;
    eventgrid.configure_webhooks(&config.event_webhooks).await?;
    let state = AppState {
        chat,
        eventgrid,
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
        _lock: lock,
    })
}

/// `--import` / `--seed`: loads the file into an empty database (a first start, or
/// `--in-memory`) and leaves existing state alone. Returns the seed's tokens.
async fn load_initial_state(
    store: &Store,
    config: &Config,
    keys: &Keys,
) -> anyhow::Result<Vec<(String, String)>> {
    let (document, to_mint) = if let Some(path) = &config.import_file {
        (StateDocument::read_file(path)?, Vec::new())
    } else if let Some(path) = &config.seed {
        crate::seed::load(path, &config.resource_id)?
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
    crate::seed::mint_tokens(to_mint, config, keys)
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
        .layer(from_fn(middleware::service_headers))
        .layer(axum::Extension(ListenerScheme(scheme)))
        // Echo the SDK's x-ms-client-request-id (or make one), as the service does.
        .layer(PropagateRequestIdLayer::new(client_request_id.clone()))
        .layer(from_fn(middleware::access_log))
        .layer(SetRequestIdLayer::new(client_request_id, MakeRequestUuid))
}

/// The router behind a path normaliser (`middleware::collapse_slashes`): a `Router::layer`
/// runs after routing, so the path must be fixed before the router sees it.
pub fn service(state: AppState, scheme: &'static str) -> Router {
    let inner = router(state, scheme);
    Router::new().fallback_service(
        tower::ServiceBuilder::new()
            .map_request(middleware::collapse_slashes)
            .service(inner),
    )
}

/// Time limits on reading requests. hyper's HTTP/1.1 header-read timer runs from the moment the
/// connection waits for a request head, so it also closes keep-alive connections idle for that
/// long; the first-request timeout also covers hyper's untimed HTTP/1-or-2 detection and an
/// HTTP/2 client that never sends a request (axum-server starts it after the TLS handshake).
fn bound_requests<A: axum_server::Address, Acc>(
    mut server: axum_server::Server<A, Acc>,
    header_read_timeout: Duration,
) -> axum_server::Server<A, Acc> {
    server
        .http_builder()
        .http1()
        .header_read_timeout(header_read_timeout);
    server.first_request_timeout(header_read_timeout)
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
        let config = &self.state.config;
        // Both listeners count against one cap: it bounds the process's sockets, whichever
        // port they came in on.
        let bounded = Bounded::new(
            config.max_connections,
            Duration::from_secs(config.idle_timeout_secs),
        );
        let header_read_timeout = Duration::from_secs(config.header_read_timeout_secs);
        let tls_acceptor = RustlsAcceptor::new(tls_config)
            .handshake_timeout(Duration::from_secs(config.tls_handshake_timeout_secs))
            .acceptor(bounded.clone());
        let https = axum_server::from_tcp(self.https_listener)?
            .acceptor(tls_acceptor)
            .handle(handle.clone());
        let https = bound_requests(https, header_read_timeout)
            .serve(service(self.state.clone(), "https").into_make_service());
        let http = axum_server::from_tcp(self.http_listener)?
            .acceptor(bounded)
            .handle(handle.clone());
        let http = bound_requests(http, header_read_timeout)
            .serve(service(self.state.clone(), "http").into_make_service());
        let stopper = handle.clone();
        // Deliveries start with serving; the dispatcher stops when the event signal closes.
        let dispatcher = self.state.eventgrid.spawn();
        let events = self.state.chat.events().clone();
        tokio::spawn(async move {
            shutdown.await;
            tracing::info!("shutting down: finishing in-flight requests");
            // Event streams never end by themselves; they must not hold the shutdown open.
            events.close();
            stopper.graceful_shutdown(Some(Duration::from_secs(10)));
        });
        let (https_result, http_result) = tokio::join!(https, http);
        https_result.context("HTTPS listener")?;
        http_result.context("HTTP listener")?;
        // The listeners end only after the shutdown signal closed the event signal, which stops
        // the dispatcher; it must be done writing before the store closes.
        let _ = dispatcher.await;
        self.state.store.close().await;
        // The lock goes last: another emulator may open the database once it is closed.
        drop(self._lock);
        Ok(())
    }
}
