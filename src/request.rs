//! What the outer layers learn about a request and leave in its (or its response's)
//! extensions for the layers and handlers inside. Types only.

/// Which scheme the listener that accepted the request speaks; set per listener.
#[derive(Debug, Clone, Copy)]
pub struct ListenerScheme(pub &'static str);

/// The request path exactly as the client sent it, before repeated slashes were collapsed (the
/// access-key signature covers the path as sent).
#[derive(Debug, Clone)]
pub struct RawPathAndQuery(pub String);

/// The identity a bearer token names, decoded once (unverified) by the outermost layer (the
/// access log), for the logs and fault matching of the layers inside it; never for access
/// decisions.
#[derive(Debug, Clone)]
pub struct ClaimedIdentity(pub Option<String>);

/// The operationId a request was routed to, left on the response for the access log.
#[derive(Debug, Clone, Copy)]
pub struct Operation(pub &'static str);

/// The largest body the route accepts, in bytes; left by the route's layer for the body
/// extractors (`api::extract`), which fall back to `state::MAX_BODY_BYTES` without one.
#[derive(Debug, Clone, Copy)]
pub struct BodyCap(pub usize);
