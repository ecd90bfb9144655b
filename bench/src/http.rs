//! The load generator's HTTP client: one keep-alive HTTP/1.1 connection per task, over plain
//! TCP or rustls, built directly on hyper's connection API so the client adds as little work
//! as possible to the shared CPUs (no pool, no redirects, no decompression).

use std::net::SocketAddr;
use std::sync::Arc;

use anyhow::Context;
use bytes::Bytes;
use http_body_util::{BodyExt, Full};
use hyper::client::conn::http1::SendRequest;
use hyper::{Method, Request, StatusCode};
use hyper_util::rt::TokioIo;
use rustls_pki_types::pem::PemObject;
use rustls_pki_types::{CertificateDer, ServerName};
use tokio::io::{AsyncRead, AsyncWrite};
use tokio::net::TcpStream;
use tokio_rustls::TlsConnector;

/// Where to send requests: an address, and a TLS connector when the scheme is https.
#[derive(Clone)]
pub struct Endpoint {
    pub addr: SocketAddr,
    pub tls: Option<TlsConnector>,
    /// `Host` header value (`127.0.0.1:port`), also what HMAC signatures cover.
    pub host: String,
}

impl Endpoint {
    /// A plain HTTP endpoint.
    pub fn http(addr: SocketAddr) -> Self {
        Endpoint {
            addr,
            tls: None,
            host: addr.to_string(),
        }
    }

    /// An HTTPS endpoint whose certificate chains to the PEM roots in `ca_pem`.
    pub fn https(addr: SocketAddr, ca_pem: &[u8]) -> anyhow::Result<Self> {
        let mut roots = rustls::RootCertStore::empty();
        for cert in CertificateDer::pem_slice_iter(ca_pem) {
            roots
                .add(cert.context("reading the CA PEM")?)
                .context("adding the CA")?;
        }
        let provider = Arc::new(rustls::crypto::ring::default_provider());
        let config = rustls::ClientConfig::builder_with_provider(provider)
            .with_safe_default_protocol_versions()
            .context("TLS versions")?
            .with_root_certificates(roots)
            .with_no_client_auth();
        Ok(Endpoint {
            addr,
            tls: Some(TlsConnector::from(Arc::new(config))),
            host: addr.to_string(),
        })
    }

    /// `https` or `http`.
    pub fn scheme(&self) -> &'static str {
        if self.tls.is_some() { "https" } else { "http" }
    }

    /// Opens one keep-alive connection (TCP, then the TLS handshake when https).
    pub async fn connect(&self) -> anyhow::Result<Conn> {
        let tcp = TcpStream::connect(self.addr)
            .await
            .with_context(|| format!("connecting to {}", self.addr))?;
        tcp.set_nodelay(true)?;
        let io: Box<dyn Io> = match &self.tls {
            None => Box::new(tcp),
            Some(connector) => {
                let name = ServerName::IpAddress(self.addr.ip().into());
                Box::new(
                    connector
                        .connect(name, tcp)
                        .await
                        .context("TLS handshake")?,
                )
            }
        };
        let (sender, connection) = hyper::client::conn::http1::handshake(TokioIo::new(io))
            .await
            .context("HTTP/1.1 handshake")?;
        tokio::spawn(async move {
            // Ends when the sender is dropped or the server closes; errors show up on send.
            let _ = connection.await;
        });
        Ok(Conn {
            sender,
            host: self.host.clone(),
        })
    }
}

trait Io: AsyncRead + AsyncWrite + Send + Unpin {}
impl<T: AsyncRead + AsyncWrite + Send + Unpin> Io for T {}

/// One open connection.
pub struct Conn {
    sender: SendRequest<Full<Bytes>>,
    host: String,
}

/// A request the workloads build: everything but the `Host` header.
#[derive(Debug, Clone)]
pub struct Req {
    pub method: Method,
    pub path: String,
    pub headers: Vec<(&'static str, String)>,
    pub body: Option<Bytes>,
}

impl Req {
    /// A GET of `path`.
    pub fn get(path: String) -> Self {
        Req {
            method: Method::GET,
            path,
            headers: Vec::new(),
            body: None,
        }
    }

    /// A POST of a JSON body to `path`.
    pub fn post_json(path: String, body: String) -> Self {
        Req {
            method: Method::POST,
            path,
            headers: vec![("content-type", "application/json".to_owned())],
            body: Some(Bytes::from(body)),
        }
    }

    /// Adds a header.
    pub fn header(mut self, name: &'static str, value: String) -> Self {
        self.headers.push((name, value));
        self
    }

    /// Adds `Authorization: Bearer <token>`.
    pub fn bearer(self, token: &str) -> Self {
        self.header("authorization", format!("Bearer {token}"))
    }
}

/// A response: status and the whole body.
#[derive(Debug)]
pub struct Resp {
    pub status: StatusCode,
    pub headers: hyper::HeaderMap,
    pub body: Bytes,
}

impl Resp {
    /// The body parsed as JSON (`Null` when it is not JSON).
    pub fn json(&self) -> serde_json::Value {
        serde_json::from_slice(&self.body).unwrap_or(serde_json::Value::Null)
    }
}

impl Conn {
    /// Sends one request and reads the whole response body.
    pub async fn send(&mut self, req: &Req) -> anyhow::Result<Resp> {
        let mut builder = Request::builder()
            .method(req.method.clone())
            .uri(req.path.as_str())
            .header("host", self.host.as_str());
        for (name, value) in &req.headers {
            builder = builder.header(*name, value.as_str());
        }
        let body = req.body.clone().unwrap_or_default();
        if req.body.is_some() || req.method == Method::POST {
            builder = builder.header("content-length", body.len());
        }
        let request = builder.body(Full::new(body))?;
        self.sender.ready().await?;
        let response = self.sender.send_request(request).await?;
        let (parts, body) = response.into_parts();
        let body = body.collect().await?.to_bytes();
        Ok(Resp {
            status: parts.status,
            headers: parts.headers,
            body,
        })
    }
}
