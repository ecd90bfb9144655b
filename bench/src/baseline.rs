//! The limit: a minimal axum server on the emulator's routes that answers every request with a
//! fixed response copied from the emulator (same status, same JSON body, same `Location`), over
//! the same stack: axum 0.8, axum-server with rustls (ring), a local CA and an ECDSA P-256 leaf.
//! It reads each request body and does nothing else.

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::time::Duration;

use anyhow::Context;
use axum::Router;
use axum::body::Bytes;
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::routing::{get, post};
use axum_server::Handle;
use axum_server::tls_rustls::RustlsConfig;
use rcgen::{
    BasicConstraints, CertificateParams, DnType, ExtendedKeyUsagePurpose, IsCa, Issuer, KeyPair,
    KeyUsagePurpose,
};
use serde::{Deserialize, Serialize};

/// One recorded emulator response.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Shape {
    pub status: u16,
    pub body: String,
    pub location: Option<String>,
}

/// The responses the baseline serves, one per route.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Shapes {
    pub create_thread: Shape,
    pub get_thread: Shape,
    pub send_message: Shape,
    pub list_messages: Shape,
    pub get_message: Shape,
    pub add_participant: Shape,
    pub read_receipt: Shape,
}

/// `baseline-server --shapes FILE --dir DIR`.
#[derive(Debug, clap::Args)]
pub struct BaselineArgs {
    /// JSON file of [`Shapes`].
    #[arg(long)]
    pub shapes: PathBuf,
    /// Where to write `baseline-ca.pem`.
    #[arg(long)]
    pub dir: PathBuf,
}

fn fixed(shape: &Shape) -> (StatusCode, HeaderMap, Bytes) {
    let mut headers = HeaderMap::new();
    if !shape.body.is_empty() {
        headers.insert(
            header::CONTENT_TYPE,
            HeaderValue::from_static("application/json; charset=utf-8"),
        );
    }
    if let Some(location) = &shape.location
        && let Ok(v) = HeaderValue::from_str(location)
    {
        headers.insert(header::LOCATION, v);
    }
    (
        StatusCode::from_u16(shape.status).unwrap_or(StatusCode::OK),
        headers,
        Bytes::from(shape.body.clone()),
    )
}

/// A handler that reads the request body and answers the fixed response.
macro_rules! answer {
    ($shape:expr) => {{
        let response = fixed(&$shape);
        move |_body: Bytes| {
            let response = response.clone();
            async move { response }
        }
    }};
}

fn router(shapes: &Shapes) -> Router {
    Router::new()
        .route("/chat/threads", post(answer!(shapes.create_thread)))
        .route("/chat/threads/{thread_id}", get(answer!(shapes.get_thread)))
        .route(
            "/chat/threads/{thread_id}/messages",
            post(answer!(shapes.send_message)).get(answer!(shapes.list_messages)),
        )
        .route(
            "/chat/threads/{thread_id}/messages/{message_id}",
            get(answer!(shapes.get_message)),
        )
        .route(
            "/chat/threads/{thread_id}/participants/{action}",
            post(answer!(shapes.add_participant)),
        )
        .route(
            "/chat/threads/{thread_id}/readReceipts",
            post(answer!(shapes.read_receipt)),
        )
}

/// A CA and a leaf for 127.0.0.1 signed by it, made the way the emulator makes its own.
fn tls_material() -> anyhow::Result<(String, String, String)> {
    let mut ca = CertificateParams::default();
    ca.distinguished_name
        .push(DnType::CommonName, "bench baseline CA");
    ca.is_ca = IsCa::Ca(BasicConstraints::Constrained(0));
    ca.key_usages = vec![
        KeyUsagePurpose::KeyCertSign,
        KeyUsagePurpose::CrlSign,
        KeyUsagePurpose::DigitalSignature,
    ];
    let ca_key = KeyPair::generate()?;
    let ca_cert = ca.self_signed(&ca_key)?;
    let issuer = Issuer::new(ca, ca_key);
    let mut leaf = CertificateParams::new(vec![
        "localhost".to_owned(),
        "127.0.0.1".to_owned(),
        "::1".to_owned(),
    ])?;
    leaf.distinguished_name
        .push(DnType::CommonName, "bench baseline");
    leaf.use_authority_key_identifier_extension = true;
    leaf.key_usages = vec![
        KeyUsagePurpose::DigitalSignature,
        KeyUsagePurpose::KeyEncipherment,
    ];
    leaf.extended_key_usages = vec![ExtendedKeyUsagePurpose::ServerAuth];
    let leaf_key = KeyPair::generate()?;
    let leaf_cert = leaf.signed_by(&leaf_key, &issuer)?;
    Ok((
        format!("{}{}", leaf_cert.pem(), ca_cert.pem()),
        leaf_key.serialize_pem(),
        ca_cert.pem(),
    ))
}

/// Serves until SIGTERM or SIGINT; prints `listening https=… http=…` once bound.
pub async fn serve(args: BaselineArgs) -> anyhow::Result<()> {
    let _ = rustls::crypto::ring::default_provider().install_default();
    let shapes: Shapes = serde_json::from_slice(
        &std::fs::read(&args.shapes)
            .with_context(|| format!("reading {}", args.shapes.display()))?,
    )?;
    let (chain, key, ca) = tls_material()?;
    write(&args.dir.join("baseline-ca.pem"), &ca)?;
    let tls = RustlsConfig::from_pem(chain.into_bytes(), key.into_bytes()).await?;
    let https_listener = std::net::TcpListener::bind("127.0.0.1:0")?;
    let http_listener = std::net::TcpListener::bind("127.0.0.1:0")?;
    https_listener.set_nonblocking(true)?;
    http_listener.set_nonblocking(true)?;
    let https_addr: SocketAddr = https_listener.local_addr()?;
    let http_addr: SocketAddr = http_listener.local_addr()?;
    let app = router(&shapes);
    let handle: Handle<SocketAddr> = Handle::new();
    let https = axum_server::from_tcp_rustls(https_listener, tls)?
        .handle(handle.clone())
        .serve(app.clone().into_make_service());
    let http = axum_server::from_tcp(http_listener)?
        .handle(handle.clone())
        .serve(app.into_make_service());
    println!("listening https={https_addr} http={http_addr}");
    let stopper = handle.clone();
    tokio::spawn(async move {
        let mut term = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate())
            .expect("BUG: SIGTERM handler");
        tokio::select! {
            _ = term.recv() => {},
            _ = tokio::signal::ctrl_c() => {},
        }
        stopper.graceful_shutdown(Some(Duration::from_secs(2)));
    });
    let (a, b) = tokio::join!(https, http);
    a?;
    b?;
    Ok(())
}

fn write(path: &Path, text: &str) -> anyhow::Result<()> {
    std::fs::write(path, text).with_context(|| format!("writing {}", path.display()))
}
