//! Request extractors shared by the handlers: api-version, JSON bodies and path parameters with
//! ACS-shaped rejections, the public base URL, and paging query parameters.

use axum::extract::{FromRequest, FromRequestParts, Query, Request};
use axum::http::header::HOST;
use axum::http::request::Parts;
use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use serde::de::DeserializeOwned;
use serde::{Deserialize, Serialize};

use crate::clock::{Micros, parse_wire};
use crate::error::{ApiError, ApiResult};
use crate::request::{BodyCap, ListenerScheme};
use crate::state::{AppState, MAX_BODY_BYTES};
use crate::versions::{self, ChatVersion, IdentityVersion};

/// Largest page any list returns (the documented ListMessages maximum, used for all lists).
pub const MAX_PAGE_SIZE: u32 = 200;

/// Page size when the client gives none: the service answered a `maxPageSize`-less thread list
/// with 100 items and a nextLink (recorded, Android `canListChatThreads`).
pub const DEFAULT_PAGE_SIZE: u32 = 100;

/// The request's query string as pairs; a value that does not decode is a 400.
fn query_pairs(parts: &Parts) -> ApiResult<Vec<(String, String)>> {
    Query::<Vec<(String, String)>>::try_from_uri(&parts.uri)
        .map(|Query(pairs)| pairs)
        .map_err(ApiError::from)
}

/// The `api-version` query parameter (its name in any case, as the service takes it), decoded;
/// `None` when absent or when the query does not decode. The one reading of it: the surface
/// dispatch (`api::routes`) and the extractors agree on what a request asked for.
pub(crate) fn api_version_of(uri: &axum::http::Uri) -> Option<String> {
    Query::<Vec<(String, String)>>::try_from_uri(uri)
        .ok()?
        .0
        .into_iter()
        .find(|(k, _)| k.eq_ignore_ascii_case("api-version"))
        .map(|(_, v)| v)
}

fn api_version_param(parts: &Parts) -> ApiResult<String> {
    // A query that does not decode is a 400 of its own.
    query_pairs(parts)?;
    api_version_of(&parts.uri).ok_or_else(|| ApiError::BadRequest {
        code: "MissingApiVersionParameter",
        message: "The api-version query parameter (?api-version=) is required for all requests."
            .to_owned(),
    })
}

fn unsupported(version: &str, supported: &[&str]) -> ApiError {
    ApiError::BadRequest {
        code: "UnsupportedApiVersion",
        message: format!(
            "The api-version '{version}' is not supported. Supported versions: {}.",
            supported.join(", ")
        ),
    }
}

/// The Chat api-version of the request (required; unknown versions are a 400, or the newest
/// with `--loose`).
#[derive(Debug, Clone, Copy)]
pub struct ChatApi(pub &'static ChatVersion);

impl FromRequestParts<AppState> for ChatApi {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &AppState) -> Result<Self, ApiError> {
        let name = match api_version_param(parts) {
            Ok(name) => name,
            Err(_) if state.config.loose => return Ok(ChatApi(versions::newest_chat())),
            Err(e) => return Err(e),
        };
        match versions::chat_version(&name) {
            Some(version) => Ok(ChatApi(version)),
            // --loose: a version the emulator does not know is served as the newest.
            None if state.config.loose => Ok(ChatApi(versions::newest_chat())),
            None => {
                let names: Vec<&str> = versions::CHAT_VERSIONS.iter().map(|v| v.name).collect();
                Err(unsupported(&name, &names))
            }
        }
    }
}

/// The Chat api-version of an operation that only the 2020-09-21-preview2 surface has
/// (`members`, `readreceipts`): any other version is the 404 of an operation it lacks.
#[derive(Debug, Clone, Copy)]
pub struct Preview2Api;

impl FromRequestParts<AppState> for Preview2Api {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &AppState) -> Result<Self, ApiError> {
        let ChatApi(version) = ChatApi::from_request_parts(parts, state).await?;
        if version.legacy {
            Ok(Preview2Api)
        } else {
            Err(ApiError::NotFound(format!(
                "This operation exists only in api-version {}, not in {}.",
                versions::PREVIEW2,
                version.name
            )))
        }
    }
}

/// The Chat api-version of an image operation (upload, view, delete): only versions with
/// images have them, others get the 404 of an operation they lack.
#[derive(Debug, Clone, Copy)]
pub struct ImagesApi;

impl FromRequestParts<AppState> for ImagesApi {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &AppState) -> Result<Self, ApiError> {
        let ChatApi(version) = ChatApi::from_request_parts(parts, state).await?;
        if version.images {
            Ok(ImagesApi)
        } else {
            Err(ApiError::NotFound(format!(
                "Image operations are not part of api-version {}; use 2024-03-15-preview.",
                version.name
            )))
        }
    }
}

/// The Identity api-version of the request (required; unknown versions are a 400).
#[derive(Debug, Clone, Copy)]
pub struct IdentityApi(pub &'static IdentityVersion);

impl FromRequestParts<AppState> for IdentityApi {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &AppState) -> Result<Self, ApiError> {
        let name = match api_version_param(parts) {
            Ok(name) => name,
            Err(_) if state.config.loose => return Ok(IdentityApi(versions::newest_identity())),
            Err(e) => return Err(e),
        };
        match versions::identity_version(&name) {
            Some(version) => Ok(IdentityApi(version)),
            None if state.config.loose => Ok(IdentityApi(versions::newest_identity())),
            None => {
                let names: Vec<&str> = versions::IDENTITY_VERSIONS.iter().map(|v| v.name).collect();
                Err(unsupported(&name, &names))
            }
        }
    }
}

/// A path parameter, percent-decoded, with ACS-shaped rejections.
#[derive(Debug, axum::extract::FromRequestParts)]
#[from_request(via(axum::extract::Path), rejection(ApiError))]
pub struct AcsPath<T>(pub T);

/// A required JSON body. Content types are not policed (clients send `application/json` or
/// `application/merge-patch+json`); an empty or malformed body is a 400.
#[derive(Debug)]
pub struct AcsJson<T>(pub T);

impl<S: Send + Sync, T: DeserializeOwned> FromRequest<S> for AcsJson<T> {
    type Rejection = ApiError;

    async fn from_request(req: Request, state: &S) -> Result<Self, ApiError> {
        let bytes = read_body(req, state).await?;
        if bytes.iter().all(u8::is_ascii_whitespace) {
            return Err(ApiError::bad_request("The request body is required."));
        }
        parse_json(&bytes).map(AcsJson)
    }
}

/// An optional JSON body: empty means `T::default()` (identity create and typing may be sent
/// with no body at all).
#[derive(Debug)]
pub struct OptionalJson<T>(pub T);

impl<S: Send + Sync, T: DeserializeOwned + Default> FromRequest<S> for OptionalJson<T> {
    type Rejection = ApiError;

    async fn from_request(req: Request, state: &S) -> Result<Self, ApiError> {
        let bytes = read_body(req, state).await?;
        if bytes.iter().all(u8::is_ascii_whitespace) {
            return Ok(OptionalJson(T::default()));
        }
        parse_json(&bytes).map(OptionalJson)
    }
}

/// A raw body; a body over the route's cap is a 413, one broken off a 400, with the ACS body.
#[derive(Debug)]
pub struct AcsBytes(pub axum::body::Bytes);

impl<S: Send + Sync> FromRequest<S> for AcsBytes {
    type Rejection = ApiError;

    async fn from_request(req: Request, state: &S) -> Result<Self, ApiError> {
        read_body(req, state).await.map(AcsBytes)
    }
}

async fn read_body<S: Send + Sync>(req: Request, _: &S) -> ApiResult<axum::body::Bytes> {
    // The route's cap (a `BodyCap` layer in `api::routes`), else the service routes' one.
    let cap = req
        .extensions()
        .get::<BodyCap>()
        .map_or(MAX_BODY_BYTES, |cap| cap.0);
    let (parts, body) = req.into_parts();
    crate::body::read_capped(&parts.headers, body, cap).await
}

fn parse_json<T: DeserializeOwned>(bytes: &[u8]) -> ApiResult<T> {
    serde_json::from_slice(bytes).map_err(ApiError::invalid_body)
}

/// Scheme and authority that absolute URLs in responses (`Location`, `nextLink`) start with:
/// `--public-url`, or the scheme of the listener and the request's `Host`.
#[derive(Debug, Clone)]
pub struct BaseUrl(pub String);

impl FromRequestParts<AppState> for BaseUrl {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &AppState) -> Result<Self, ApiError> {
        if let Some(public) = &state.config.public_url {
            return Ok(BaseUrl(public.trim_end_matches('/').to_owned()));
        }
        let scheme = parts
            .extensions
            .get::<ListenerScheme>()
            .map_or("https", |s| s.0);
        let host = parts
            .headers
            .get(HOST)
            .and_then(|h| h.to_str().ok())
            .map(str::to_owned)
            .or_else(|| parts.uri.authority().map(|a| a.to_string()))
            .unwrap_or_else(|| "localhost".to_owned());
        Ok(BaseUrl(format!("{scheme}://{}", undouble_port(&host))))
    }
}

/// The JS SDK's identity client sends `Host: h:p:p`; links must use `h:p`.
fn undouble_port(host: &str) -> &str {
    if let Some((head, last)) = host.rsplit_once(':')
        && let Some((_, previous)) = head.rsplit_once(':')
        && previous == last
        && !head.contains(']')
    {
        return head;
    }
    host
}

/// Paging parameters of the list operations.
#[derive(Debug, Clone)]
pub struct PageQuery {
    pub max_page_size: u32,
    /// Whether the client gave `maxPageSize`: only then do nextLinks repeat it (the service's
    /// nextLink for a list without one carries only `syncState` and `api-version`).
    pub explicit_page_size: bool,
    pub start_time: Option<Micros>,
    /// `startTime` as the client wrote it, for nextLinks.
    pub start_time_text: Option<String>,
    pub skip: u32,
    pub sync_state: Option<String>,
}

impl<S: Send + Sync> FromRequestParts<S> for PageQuery {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, _: &S) -> Result<Self, ApiError> {
        let mut page = PageQuery {
            max_page_size: DEFAULT_PAGE_SIZE,
            explicit_page_size: false,
            start_time: None,
            start_time_text: None,
            skip: 0,
            sync_state: None,
        };
        for (key, value) in query_pairs(parts)? {
            match key.as_str() {
                "maxPageSize" => {
                    // int32 in the spec: anything larger is not a valid value.
                    let size: i32 = value
                        .parse()
                        .map_err(|_| invalid_param("maxPageSize", &value))?;
                    if size < 1 {
                        return Err(invalid_param("maxPageSize", &value));
                    }
                    // Larger requests are served at the documented maximum.
                    page.max_page_size = (size as u32).min(MAX_PAGE_SIZE);
                    page.explicit_page_size = true;
                }
                "startTime" => {
                    page.start_time =
                        Some(parse_wire(&value).ok_or_else(|| invalid_param("startTime", &value))?);
                    page.start_time_text = Some(value);
                }
                "skip" => {
                    page.skip = value.parse().map_err(|_| invalid_param("skip", &value))?;
                }
                "syncState" => page.sync_state = Some(value),
                _ => {}
            }
        }
        Ok(page)
    }
}

fn invalid_param(name: &str, value: &str) -> ApiError {
    ApiError::BadRequest {
        code: "BadRequest",
        message: format!("Value for {name} ({value}) is not valid."),
    }
}

/// Encodes a continuation position as the opaque `syncState` of a nextLink.
pub fn encode_cursor<T: Serialize>(cursor: &T) -> String {
    URL_SAFE_NO_PAD.encode(serde_json::to_vec(cursor).unwrap_or_default())
}

/// Decodes a `syncState`; anything the emulator did not write is a 400.
pub fn decode_cursor<T: for<'de> Deserialize<'de>>(text: &str) -> ApiResult<T> {
    URL_SAFE_NO_PAD
        .decode(text)
        .ok()
        .and_then(|bytes| serde_json::from_slice(&bytes).ok())
        .ok_or_else(|| invalid_param("syncState", text))
}

/// Builds an absolute nextLink: `base` + `path` + the paging parameters + `api-version`
/// (the JS SDK follows nextLinks verbatim, so the version must be in them).
pub fn next_link(
    base: &BaseUrl,
    path: &str,
    params: &[(&str, String)],
    api_version: &str,
) -> String {
    let mut query = String::new();
    for (key, value) in params {
        query.push_str(key);
        query.push('=');
        query.push_str(&percent_encoding::utf8_percent_encode(value, QUERY_VALUE).to_string());
        query.push('&');
    }
    format!("{}{path}?{query}api-version={api_version}", base.0)
}

/// Characters escaped in a query value.
const QUERY_VALUE: &percent_encoding::AsciiSet = &percent_encoding::NON_ALPHANUMERIC
    .remove(b'-')
    .remove(b'_')
    .remove(b'.')
    .remove(b'~')
    .remove(b':');

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cursor_round_trips_and_rejects_foreign_text() {
        let text = encode_cursor(&(5_i64, "19:x@thread.v2".to_owned()));
        let back: (i64, String) = decode_cursor(&text).expect("own cursor");
        assert_eq!(back, (5, "19:x@thread.v2".to_owned()));
        assert!(decode_cursor::<(i64, String)>("not-a-cursor").is_err());
    }

    #[test]
    fn next_link_is_absolute_and_carries_the_version() {
        let link = next_link(
            &BaseUrl("https://127.0.0.1:8443".to_owned()),
            "/chat/threads/19:a@thread.v2/messages",
            &[
                ("syncState", "abc".to_owned()),
                ("maxPageSize", "2".to_owned()),
                ("startTime", "2024-01-01T00:00:00+01:00".to_owned()),
            ],
            "2025-03-15",
        );
        assert_eq!(
            link,
            "https://127.0.0.1:8443/chat/threads/19:a@thread.v2/messages?syncState=abc&maxPageSize=2&startTime=2024-01-01T00:00:00%2B01:00&api-version=2025-03-15"
        );
    }

    #[test]
    fn doubled_ports_are_undone() {
        assert_eq!(undouble_port("127.0.0.1:8443:8443"), "127.0.0.1:8443");
        assert_eq!(undouble_port("localhost:8443"), "localhost:8443");
        assert_eq!(undouble_port("[::1]:8443"), "[::1]:8443");
    }
}
