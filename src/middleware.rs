//! The cross-cutting layers of every listener: the access log, repeated-slash collapsing and
//! the service's response headers. No chat rules.

use std::time::Instant;

use axum::extract::Request;
use axum::http::HeaderValue;
use axum::middleware::Next;
use axum::response::Response;

use crate::request::{ClaimedIdentity, Operation, RawPathAndQuery};

/// One log line per request: method, path, operation, status, latency, caller, request id.
/// Never the Authorization header or a token: the caller is the identity id the bearer token
/// names (`8:acs:…`), `access-key` for signed calls, or `-`.
pub(crate) async fn access_log(mut request: Request, next: Next) -> Response {
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
    request.extensions_mut().insert(ClaimedIdentity(claimed));
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

/// Collapses repeated slashes in the path. SDKs given an endpoint with a trailing slash send
/// `//chat/threads` (recorded against the real service, which accepts it); the path as sent
/// is kept as `RawPathAndQuery` for the signature check.
pub(crate) fn collapse_slashes(mut request: Request) -> Request {
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
pub(crate) async fn service_headers(request: Request, next: Next) -> Response {
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
