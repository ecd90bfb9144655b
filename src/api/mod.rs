//! The HTTP surface: one file per resource, the router that joins them, and what handlers share
//! (response and paging helpers). Chat handlers are adapters: wire DTO → `chat` operation (which
//! holds every rule) → render for the api-version. No rules and no SQL here.

pub(crate) mod chaos;
pub(crate) mod emulator;
pub(crate) mod event_subscriptions;
pub(crate) mod events;
pub(crate) mod extract;
pub(crate) mod identity;
pub(crate) mod images;
pub(crate) mod messages;
pub(crate) mod participants;
pub(crate) mod preview2;
pub(crate) mod read_receipts;
pub(crate) mod render;
pub(crate) mod threads;

use std::sync::Arc;

use axum::Extension;
use axum::Router;
use axum::http::header::{CONTENT_TYPE, LOCATION};
use axum::http::{HeaderValue, StatusCode};
use axum::middleware;
use axum::response::{IntoResponse, Response};
use axum::routing::{MethodRouter, delete, get, post, put};
use serde::{Deserialize, Deserializer};

use tower_http::set_header::SetResponseHeaderLayer;

use crate::auth::{require_access_key, require_admin_key};
use crate::error::{ApiError, ApiResult};
use crate::request::BodyCap;
use crate::state::{AppState, MAX_SMALL_BODY_BYTES, MAX_STATE_BYTES};
use crate::versions;

/// One (method, path) the emulator serves, in OpenAPI path syntax with literal action segments
/// (`/chat/threads/{chat_thread_id}/participants/:add`). The router records these as it is
/// built, so the OpenAPI document can be checked against what is really served.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord)]
pub struct ServedRoute {
    pub method: &'static str,
    pub path: String,
    /// The spec's operationId (`Emulator_*` for the emulator's own routes).
    pub operation: &'static str,
}

impl ServedRoute {
    /// Whether a concrete, decoded path is this route's path (`{…}` matches one segment).
    pub fn matches(&self, method: &str, path: &str) -> bool {
        if !self.method.eq_ignore_ascii_case(method) {
            return false;
        }
        let mut template = self.path.split('/');
        let mut actual = path.split('/');
        loop {
            match (template.next(), actual.next()) {
                (None, None) => return true,
                (Some(t), Some(a)) if t.starts_with('{') || t == a => {}
                _ => return false,
            }
        }
    }
}

/// The operationId of a request, from the route table.
pub fn operation_of(routes: &[ServedRoute], method: &str, path: &str) -> Option<&'static str> {
    routes
        .iter()
        .find(|r| r.matches(method, path))
        .map(|r| r.operation)
}

/// Builds a router and the list of what it serves side by side.
pub(crate) struct Routes {
    router: Router<AppState>,
    served: Vec<ServedRoute>,
}

impl Routes {
    pub(crate) fn new() -> Self {
        Routes {
            router: Router::new(),
            served: Vec::new(),
        }
    }

    /// Adds `path` with a method router serving exactly these (method, operationId) pairs.
    pub(crate) fn add(
        mut self,
        path: &'static str,
        operations: &[(&'static str, &'static str)],
        handler: MethodRouter<AppState>,
    ) -> Self {
        for (method, operation) in operations {
            self.served.push(ServedRoute {
                method,
                path: path.to_owned(),
                operation,
            });
        }
        self.router = self.router.route(path, handler);
        self
    }

    /// Adds a path ending in an `{action}` capture that serves the literal (action,
    /// operationId) pairs with POST (axum 0.8 reserves a leading `:` in route syntax, so `:add`
    /// cannot be a literal route segment).
    pub(crate) fn add_actions(
        mut self,
        path: &'static str,
        actions: &[(&str, &'static str)],
        handler: MethodRouter<AppState>,
    ) -> Self {
        let prefix = path.trim_end_matches("{action}");
        for (action, operation) in actions {
            self.served.push(ServedRoute {
                method: "POST",
                path: format!("{prefix}{action}"),
                operation,
            });
        }
        self.router = self.router.route(path, handler);
        self
    }
}

/// Every route of the emulator and the list of (method, path) it serves. Chat routes take a
/// bearer user token, identity routes the access-key signature, `/_emulator` routes nothing.
pub fn routes(state: AppState) -> (Router, Vec<ServedRoute>) {
    let chat = Routes::new()
        .add(
            "/chat/threads",
            &[
                ("POST", "Chat_CreateChatThread"),
                ("GET", "Chat_ListChatThreads"),
            ],
            post(threads::create_chat_thread).get(threads::list_chat_threads),
        )
        .add(
            "/chat/threads/{chat_thread_id}",
            &[
                ("GET", "ChatThread_GetChatThreadProperties"),
                ("PATCH", "ChatThread_UpdateChatThreadProperties"),
                ("DELETE", "Chat_DeleteChatThread"),
            ],
            get(threads::get_chat_thread_properties)
                .patch(threads::update_chat_thread_properties)
                .delete(threads::delete_chat_thread),
        )
        .add(
            "/chat/threads/{chat_thread_id}/messages",
            &[
                ("POST", "ChatThread_SendChatMessage"),
                ("GET", "ChatThread_ListChatMessages"),
            ],
            post(messages::send_chat_message).get(messages::list_chat_messages),
        )
        .add(
            "/chat/threads/{chat_thread_id}/messages/{chat_message_id}",
            &[
                ("GET", "ChatThread_GetChatMessage"),
                ("PATCH", "ChatThread_UpdateChatMessage"),
                ("DELETE", "ChatThread_DeleteChatMessage"),
            ],
            get(messages::get_chat_message)
                .patch(messages::update_chat_message)
                .delete(messages::delete_chat_message),
        )
        .add(
            "/chat/threads/{chat_thread_id}/participants",
            &[("GET", "ChatThread_ListChatParticipants")],
            get(participants::list_chat_participants),
        )
        .add_actions(
            "/chat/threads/{chat_thread_id}/participants/{action}",
            &[
                (":add", "ChatThread_AddChatParticipants"),
                (":remove", "ChatThread_RemoveChatParticipant"),
            ],
            post(participants::participants_action),
        )
        .add(
            "/chat/threads/{chat_thread_id}/readReceipts",
            &[
                ("POST", "ChatThread_SendChatReadReceipt"),
                ("GET", "ChatThread_ListChatReadReceipts"),
            ],
            post(read_receipts::send_chat_read_receipt).get(read_receipts::list_chat_read_receipts),
        )
        .add(
            "/chat/threads/{chat_thread_id}/images",
            &[("POST", "ChatThread_UploadChatImage")],
            post(images::upload_chat_image).layer(Extension(BodyCap(images::MAX_IMAGE_BYTES))),
        )
        .add(
            "/chat/threads/{chat_thread_id}/images/{image_id}",
            &[("DELETE", "ChatThread_DeleteChatImage")],
            delete(images::delete_chat_image),
        )
        .add(
            "/chat/threads/{chat_thread_id}/images/{image_id}/view/{image_view_type}",
            &[("GET", "ChatThread_GetChatImage")],
            get(images::get_chat_image),
        )
        .add(
            "/chat/threads/{chat_thread_id}/typing",
            &[("POST", "ChatThread_SendTypingNotification")],
            post(read_receipts::send_typing_notification),
        );

    let identity = Routes::new()
        .add(
            "/identities",
            &[("POST", "IdentityOperations_Create")],
            post(identity::create),
        )
        .add(
            "/identities/{id}",
            &[
                ("GET", "IdentityOperations_Get"),
                ("DELETE", "IdentityOperations_Delete"),
                // 2020-07-20-preview2 only.
                ("PATCH", "CommunicationIdentity_Update"),
            ],
            get(identity::get)
                .delete(identity::delete)
                .patch(identity::update),
        )
        .add_actions(
            "/identities/{id}/{action}",
            &[
                (":issueAccessToken", "IdentityOperations_IssueAccessToken"),
                (
                    ":revokeAccessTokens",
                    "IdentityOperations_RevokeAccessTokens",
                ),
                // 2020-07-20-preview2 only.
                ("token", "CommunicationIdentity_IssueToken"),
            ],
            post(identity::identity_action),
        );

    let emulator = Routes::new()
        .add(
            "/_emulator/health",
            &[("GET", "Emulator_Health")],
            get(emulator::health),
        )
        .add(
            "/_emulator/info",
            &[("GET", "Emulator_Info")],
            get(emulator::info),
        )
        .add(
            "/_emulator/ca.pem",
            &[("GET", "Emulator_CaCertificate")],
            get(emulator::ca_pem),
        )
        .add(
            "/_emulator/identities",
            &[("GET", "Emulator_ListIdentities")],
            get(emulator::list_identities),
        )
        .add(
            "/_emulator/threads",
            &[("GET", "Emulator_ListThreads")],
            get(emulator::list_threads),
        )
        .add(
            "/_emulator/threads/{chat_thread_id}",
            &[("GET", "Emulator_GetThread")],
            get(emulator::get_thread),
        )
        .add(
            "/_emulator/state",
            &[("GET", "Emulator_ExportState")],
            get(emulator::export_state),
        )
        .add(
            "/_emulator/events",
            &[("GET", "Emulator_ListEvents")],
            get(events::list_events),
        )
        .add(
            "/_emulator/events/stream",
            &[("GET", "Emulator_StreamEvents")],
            get(events::stream_events),
        )
        .add(
            "/_emulator/faults",
            &[("GET", "Emulator_ListFaults")],
            get(chaos::list_faults),
        );
    // Destructive: the access key is required. The key check may read the body (a signature
    // covers it), so each group's cap goes to that check: state imports are large, the rest small.
    let import = Routes::new().add(
        "/_emulator/state",
        &[("PUT", "Emulator_ImportState")],
        put(emulator::import_state).layer(Extension(BodyCap(MAX_STATE_BYTES))),
    );
    let admin = Routes::new()
        .add(
            "/_emulator/reset",
            &[("POST", "Emulator_Reset")],
            post(emulator::reset),
        )
        .add(
            "/_emulator/faults",
            &[
                ("POST", "Emulator_AddFault"),
                ("DELETE", "Emulator_ClearFaults"),
            ],
            post(chaos::add_fault).delete(chaos::clear_faults),
        )
        .add(
            "/_emulator/faults/{id}",
            &[("DELETE", "Emulator_DeleteFault")],
            delete(chaos::delete_fault),
        )
        .add(
            "/_emulator/eventSubscriptions",
            &[("GET", "Emulator_ListEventSubscriptions")],
            get(event_subscriptions::list_event_subscriptions),
        )
        .add(
            "/_emulator/eventSubscriptions/{name}",
            &[
                ("PUT", "Emulator_PutEventSubscription"),
                ("GET", "Emulator_GetEventSubscription"),
                ("DELETE", "Emulator_DeleteEventSubscription"),
            ],
            put(event_subscriptions::put_event_subscription)
                .get(event_subscriptions::get_event_subscription)
                .delete(event_subscriptions::delete_event_subscription),
        );

    // The 2020 preview is a different surface on partly the same paths: requests for it go to
    // its own router before today's routes see them.
    let (legacy_router, legacy_served) = preview2::routes(state.clone());
    // Faults and rate limits apply to the service routes, inside the api-supported-versions
    // layer (so injected errors carry it too) and outside authentication.
    let chaos_state = chaos::ChaosState {
        app: state.clone(),
        routes: Arc::new(
            [
                chat.served.clone(),
                legacy_served.clone(),
                identity.served.clone(),
            ]
            .concat(),
        ),
    };
    let chaos_layer = || middleware::from_fn_with_state(chaos_state.clone(), chaos::chaos);
    let legacy_router = legacy_router
        .layer(chaos_layer())
        .layer(supported_versions(
            versions::CHAT_VERSIONS.iter().map(|v| v.name),
        ))
        .layer(middleware::map_response(preview2::flatten_error));

    let router = Router::new()
        .merge(chat.router.layer(chaos_layer()).layer(supported_versions(
            versions::CHAT_VERSIONS.iter().map(|v| v.name),
        )))
        .merge(
            identity
                .router
                .layer(middleware::from_fn_with_state(
                    state.clone(),
                    require_access_key,
                ))
                .layer(Extension(BodyCap(MAX_SMALL_BODY_BYTES)))
                .layer(chaos_layer())
                .layer(supported_versions(
                    versions::IDENTITY_VERSIONS.iter().map(|v| v.name),
                )),
        )
        .merge(emulator.router)
        .merge(
            admin
                .router
                .layer(Extension(BodyCap(MAX_SMALL_BODY_BYTES)))
                .route_layer(middleware::from_fn_with_state(
                    (state.clone(), BodyCap(MAX_SMALL_BODY_BYTES)),
                    require_admin_key,
                )),
        )
        .merge(import.router.route_layer(middleware::from_fn_with_state(
            (state.clone(), BodyCap(MAX_STATE_BYTES)),
            require_admin_key,
        )))
        .fallback(not_found)
        .method_not_allowed_fallback(method_not_allowed)
        .with_state(state);
    // Choose the surface before any routing, so each router sees the request as sent.
    let dispatch = tower::service_fn(move |request: axum::extract::Request| {
        let (legacy, today) = (legacy_router.clone(), router.clone());
        async move {
            use tower::ServiceExt;
            if preview2::wants(&request) {
                legacy.oneshot(request).await
            } else {
                today.oneshot(request).await
            }
        }
    });
    let router = Router::new().fallback_service(dispatch);
    let served = [
        chat.served,
        legacy_served,
        identity.served,
        emulator.served,
        import.served,
        admin.served,
    ]
    .concat();
    (router, served)
}

/// Every route of the emulator.
pub fn router(state: AppState) -> Router {
    routes(state).0
}

fn supported_versions(
    names: impl Iterator<Item = &'static str>,
) -> SetResponseHeaderLayer<HeaderValue> {
    let value = HeaderValue::from_str(&versions::supported_header(names))
        .unwrap_or_else(|_| HeaderValue::from_static(""));
    SetResponseHeaderLayer::overriding(
        axum::http::HeaderName::from_static("api-supported-versions"),
        value,
    )
}

pub(crate) async fn not_found(method: axum::http::Method, uri: axum::http::Uri) -> ApiError {
    no_route(method.as_str(), uri.path())
}

/// The 404 for a request that no route serves.
pub fn no_route(method: &str, path: &str) -> ApiError {
    ApiError::NotFound(format!("No route matches {method} {path}."))
}

pub(crate) async fn method_not_allowed() -> ApiError {
    ApiError::MethodNotAllowed
}

/// A JSON response with the service's content type.
pub fn json_response<T: serde::Serialize + ?Sized>(status: StatusCode, body: &T) -> Response {
    // Serialising our own types cannot fail (string map keys only); an empty object is the
    // least wrong body if it ever did.
    let text = serde_json::to_string(body).unwrap_or_else(|_| "{}".to_owned());
    let mut response = (status, text).into_response();
    response.headers_mut().insert(
        CONTENT_TYPE,
        HeaderValue::from_static("application/json; charset=utf-8"),
    );
    response
}

/// A 200 list page: `{"value": [...], "nextLink": …}`, `nextLink` only when more remain.
pub fn page_response<T: serde::Serialize>(value: Vec<T>, next_link: Option<String>) -> Response {
    #[derive(serde::Serialize)]
    #[serde(rename_all = "camelCase")]
    struct Page<T> {
        #[serde(skip_serializing_if = "Option::is_none")]
        next_link: Option<String>,
        value: Vec<T>,
    }
    json_response(StatusCode::OK, &Page { next_link, value })
}

/// The nextLink of a skip-paged list (participants, read receipts): the next `skip`.
pub fn skip_next_link(
    base: &extract::BaseUrl,
    path: &str,
    page: &extract::PageQuery,
    version: &str,
) -> String {
    let mut params = vec![("skip", (page.skip + page.max_page_size).to_string())];
    if page.explicit_page_size {
        params.push(("maxPageSize", page.max_page_size.to_string()));
    }
    extract::next_link(base, path, &params, version)
}

/// The nextLink of a cursor-paged list (threads, messages): the opaque `syncState`, and the
/// page size and `startTime` the client asked for.
pub fn sync_next_link(
    base: &extract::BaseUrl,
    path: &str,
    sync_state: String,
    page: &extract::PageQuery,
    version: &str,
    default_start_time: Option<&str>,
) -> String {
    let mut params = vec![("syncState", sync_state)];
    if page.explicit_page_size {
        params.push(("maxPageSize", page.max_page_size.to_string()));
    }
    if let Some(start) = page.start_time_text.as_deref().or(default_start_time) {
        params.push(("startTime", start.to_owned()));
    }
    extract::next_link(base, path, &params, version)
}

/// A 201 JSON response with a `Location` header.
pub fn created(location: &str, body: String) -> Response {
    let mut response = (StatusCode::CREATED, body).into_response();
    let headers = response.headers_mut();
    headers.insert(
        CONTENT_TYPE,
        HeaderValue::from_static("application/json; charset=utf-8"),
    );
    if let Ok(value) = HeaderValue::from_str(location) {
        headers.insert(LOCATION, value);
    }
    response
}

/// A thread id as it appears in a `Location` path: `:` escaped, `@` kept (recorded:
/// `/chat/threads/19%3AZT-RMB6…@thread.v2`).
pub fn thread_path_segment(thread_id: &str) -> String {
    thread_id.replace(':', "%3A")
}

/// Parses a JSON value into a request DTO, with the ACS 400 for a body that does not fit.
pub fn from_json_value<T: serde::de::DeserializeOwned>(value: serde_json::Value) -> ApiResult<T> {
    serde_json::from_value(value).map_err(ApiError::invalid_body)
}

/// A 204 with no body.
pub fn no_content() -> Response {
    StatusCode::NO_CONTENT.into_response()
}

/// Deserializes a field that distinguishes "absent" (`None`) from `null` (`Some(None)`).
pub fn double_option<'de, D, T>(deserializer: D) -> Result<Option<Option<T>>, D::Error>
where
    D: Deserializer<'de>,
    T: Deserialize<'de>,
{
    Option::<T>::deserialize(deserializer).map(Some)
}
