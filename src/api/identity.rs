//! Identity operations: create an identity (optionally with a token), issue a token, revoke
//! tokens, delete, and (2025-06-30) get. Access-key signed; see `auth::require_access_key`.

use axum::extract::State;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use serde::Deserialize;
use serde_json::{Value, json};

use super::extract::{AcsBytes, AcsPath, IdentityApi, OptionalJson};
use super::json_response;
use crate::auth::token::{self, Claims};
use crate::clock::to_wire_precise;
use crate::error::{ApiError, ApiResult};
use crate::identifier::{UserIdKind, classify_user_id, new_user_id};
use crate::state::AppState;
use crate::versions::IdentityVersion;

/// Token lifetime bounds and default, in minutes (Identity spec: 60..1440, default 1440).
const MIN_TOKEN_MINUTES: i64 = 60;
const MAX_TOKEN_MINUTES: i64 = 1440;

/// Token scopes; versions without the join scopes have only `chat` and `voip`.
const SCOPES: &[&str] = &[
    "chat",
    "voip",
    "chat.join",
    "chat.join.limited",
    "voip.join",
];
const SCOPES_WITHOUT_JOIN: &[&str] = &["chat", "voip"];

/// `CommunicationIdentityCreateRequest`.
#[derive(Debug, Default, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct CommunicationIdentityCreateRequest {
    pub create_token_with_scopes: Option<Vec<String>>,
    pub expires_in_minutes: Option<i64>,
    /// 2025-06-30: the caller's own id; creating again with it returns the same identity.
    pub custom_id: Option<String>,
}

/// `CommunicationIdentityAccessTokenRequest`.
#[derive(Debug, Default, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct CommunicationIdentityAccessTokenRequest {
    pub scopes: Option<Vec<String>>,
    pub expires_in_minutes: Option<i64>,
}

fn check_scopes(scopes: &[String], version: &IdentityVersion) -> ApiResult<()> {
    let allowed = if !version.join_scopes {
        SCOPES_WITHOUT_JOIN
    } else {
        SCOPES
    };
    for scope in scopes {
        if !allowed.contains(&scope.as_str()) {
            return Err(ApiError::BadRequest {
                code: "BadRequest",
                message: format!(
                    "Scope '{scope}' is not valid; valid scopes are: {}.",
                    allowed.join(", ")
                ),
            });
        }
    }
    Ok(())
}

fn check_minutes(minutes: Option<i64>) -> ApiResult<i64> {
    let minutes = minutes.unwrap_or(MAX_TOKEN_MINUTES);
    if !(MIN_TOKEN_MINUTES..=MAX_TOKEN_MINUTES).contains(&minutes) {
        return Err(ApiError::BadRequest {
            code: "BadRequest",
            message: format!(
                "The expiresInMinutes value ({minutes}) is out of range: it must be between {MIN_TOKEN_MINUTES} and {MAX_TOKEN_MINUTES} minutes."
            ),
        });
    }
    Ok(minutes)
}

/// Mints a token for an existing identity. The issue time is pushed past the last revocation,
/// so that a token issued in the same second as a revoke is still valid; validity is
/// `iat > tokens_revoked_at` (see `auth::AcsUser`).
async fn issue_token(
    state: &AppState,
    id: &str,
    scopes: &[String],
    minutes: i64,
) -> ApiResult<Value> {
    let identity = state
        .store
        .get_identity(id)
        .await?
        .filter(|i| i.deleted_at.is_none())
        .ok_or_else(identity_not_found)?;
    let now = state.clock.now_micros();
    let iat = (now / 1_000_000).max(identity.tokens_revoked_at / 1_000_000 + 1);
    let exp = iat + minutes * 60;
    let scope_refs: Vec<&str> = scopes.iter().map(String::as_str).collect();
    let claims = Claims::new(id, &scope_refs, &state.config.resource_id, iat, exp);
    let token = token::mint(&claims, &state.keys)?;
    if !state.store.record_token_issued(id, now).await? {
        return Err(identity_not_found());
    }
    Ok(json!({ "token": token, "expiresOn": to_wire_precise(exp * 1_000_000) }))
}

fn identity_not_found() -> ApiError {
    ApiError::NotFound("The specified identity was not found.".to_owned())
}

/// Checks that a path id is an identity of this resource. The service answers an id of another
/// resource with 401, not 404: the JS identity SDK's error cases
/// (`communication-identity/test/public/communicationIdentityClient.spec.ts`: issue, revoke and
/// delete of `8:acs:00000000-…_00000000-…`) expect status 401, and their recordings show
/// `{"code":"IdentityNotOwned","message":"Provided identity doesn't belong to the resource."}`.
/// Every operation on an id answers so. The message is the service's; the code stays
/// `Unauthorized`, the one code `ApiError` gives a 401.
fn check_identity_id(state: &AppState, id: &str) -> ApiResult<()> {
    match classify_user_id(id, &state.config.resource_id)? {
        UserIdKind::OwnResource => Ok(()),
        UserIdKind::OtherResource => Err(ApiError::Unauthorized(
            "Provided identity doesn't belong to the resource.".to_owned(),
        )),
    }
}

/// IdentityOperations_Create: POST /identities
pub async fn create(
    State(state): State<AppState>,
    IdentityApi(version): IdentityApi,
    OptionalJson(request): OptionalJson<CommunicationIdentityCreateRequest>,
) -> ApiResult<Response> {
    if version.legacy {
        // 2020-07-20-preview2 (administration 1.0.0b4): no body, 200 `{"id"}`.
        let id = new_user_id(&state.config.resource_id);
        state
            .store
            .insert_identity(&id, state.clock.now_micros())
            .await?;
        return Ok(json_response(StatusCode::OK, &json!({ "id": id })));
    }
    let scopes = request.create_token_with_scopes.unwrap_or_default();
    check_scopes(&scopes, version)?;
    let minutes = check_minutes(request.expires_in_minutes)?;
    let now = state.clock.now_micros();
    // customId arrived with GET /identities/{id} in 2025-06-30; older versions ignore it.
    let id = match request.custom_id.filter(|_| version.get_identity) {
        Some(custom_id) if custom_id.trim().is_empty() || custom_id.len() > 256 => {
            return Err(ApiError::bad_request(
                "customId must be 1 to 256 characters.",
            ));
        }
        Some(custom_id) => {
            let fresh = new_user_id(&state.config.resource_id);
            state
                .store
                .insert_identity_with_custom_id(&fresh, &custom_id, now)
                .await?
                .0
        }
        None => {
            let id = new_user_id(&state.config.resource_id);
            state.store.insert_identity(&id, now).await?;
            id
        }
    };
    let mut body = json!({ "identity": { "id": id } });
    if !scopes.is_empty() {
        body["accessToken"] = issue_token(&state, &id, &scopes, minutes).await?;
    }
    Ok(json_response(StatusCode::CREATED, &body))
}

/// Body of the 2020 preview's `PATCH /identities/{id}`.
#[derive(Debug, Default, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct CommunicationIdentityUpdateRequest {
    /// "All tokens that are issued prior to this time will be revoked"; absent means now.
    pub tokens_valid_from: Option<String>,
}

/// CommunicationIdentity_Update: PATCH /identities/{id} (2020-07-20-preview2 only): revokes the
/// identity's tokens issued before `tokensValidFrom` (default: now). 204.
pub async fn update(
    State(state): State<AppState>,
    IdentityApi(version): IdentityApi,
    AcsPath(id): AcsPath<String>,
    OptionalJson(request): OptionalJson<CommunicationIdentityUpdateRequest>,
) -> ApiResult<StatusCode> {
    if !version.legacy {
        return Err(not_in_version("PATCH /identities/{id}", version));
    }
    check_identity_id(&state, &id)?;
    let valid_from = match request.tokens_valid_from.as_deref() {
        None => state.clock.now_micros(),
        Some(text) => crate::clock::parse_wire(text).ok_or_else(|| {
            ApiError::bad_request(format!("Value for tokensValidFrom ({text}) is not valid."))
        })?,
    };
    if !state.store.revoke_tokens(&id, valid_from).await? {
        return Err(identity_not_found());
    }
    Ok(StatusCode::NO_CONTENT)
}

fn not_in_version(operation: &str, version: &IdentityVersion) -> ApiError {
    ApiError::NotFound(format!(
        "{operation} is not part of api-version {}.",
        version.name
    ))
}

/// IdentityOperations_Get: GET /identities/{id} (2025-06-30 and later).
pub async fn get(
    State(state): State<AppState>,
    IdentityApi(version): IdentityApi,
    AcsPath(id): AcsPath<String>,
) -> ApiResult<Response> {
    if !version.get_identity {
        return Err(not_in_version("GET /identities/{id}", version));
    }
    check_identity_id(&state, &id)?;
    let identity = state
        .store
        .get_identity(&id)
        .await?
        .filter(|i| i.deleted_at.is_none())
        .ok_or_else(identity_not_found)?;
    let mut body = json!({ "id": identity.id });
    if let Some(custom_id) = &identity.custom_id {
        body["customId"] = json!(custom_id);
    }
    if let Some(at) = identity.last_token_issued_at {
        body["lastTokenIssuedAt"] = json!(to_wire_precise(at));
    }
    Ok(json_response(StatusCode::OK, &body))
}

/// IdentityOperations_Delete: DELETE /identities/{id}. Deleting twice answers 204 twice.
pub async fn delete(
    State(state): State<AppState>,
    IdentityApi(_): IdentityApi,
    AcsPath(id): AcsPath<String>,
) -> ApiResult<StatusCode> {
    check_identity_id(&state, &id)?;
    if !state
        .store
        .delete_identity(&id, state.clock.now_micros())
        .await?
    {
        return Err(identity_not_found());
    }
    Ok(StatusCode::NO_CONTENT)
}

/// POST /identities/{id}/{action}: dispatches the literal `:issueAccessToken` and
/// `:revokeAccessTokens` segments.
pub async fn identity_action(
    State(state): State<AppState>,
    IdentityApi(version): IdentityApi,
    AcsPath((id, action)): AcsPath<(String, String)>,
    AcsBytes(body): AcsBytes,
) -> ApiResult<Response> {
    match action.as_str() {
        // 2020-07-20-preview2: `POST /identities/{id}/token` → 200 `{id, token, expiresOn}`, 24 h.
        "token" if version.legacy => {
            check_identity_id(&state, &id)?;
            let request: CommunicationIdentityAccessTokenRequest = serde_json::from_slice(&body)
                .map_err(|e| {
                    ApiError::bad_request(format!("The request body is not valid: {e}."))
                })?;
            let scopes = request.scopes.unwrap_or_default();
            if scopes.is_empty() {
                return Err(ApiError::bad_request("At least one scope is required."));
            }
            check_scopes(&scopes, version)?;
            let mut token = issue_token(&state, &id, &scopes, MAX_TOKEN_MINUTES).await?;
            token["id"] = json!(id);
            Ok(json_response(StatusCode::OK, &token))
        }
        // IdentityOperations_IssueAccessToken
        ":issueAccessToken" if !version.legacy => {
            check_identity_id(&state, &id)?;
            let request: CommunicationIdentityAccessTokenRequest = serde_json::from_slice(&body)
                .map_err(|e| {
                    ApiError::bad_request(format!("The request body is not valid: {e}."))
                })?;
            let scopes = request.scopes.unwrap_or_default();
            if scopes.is_empty() {
                // The service's answer to `{"scopes": []}`, as the JS SDK's test
                // "throws an error when attempting to issue a token without any scopes" asserts
                // it and its recording shows it (which also has `"target":"scopes"`).
                return Err(ApiError::BadRequest {
                    code: "ValidationError",
                    message: "Invalid scopes - Scopes field is required.".to_owned(),
                });
            }
            check_scopes(&scopes, version)?;
            let minutes = check_minutes(request.expires_in_minutes)?;
            let token = issue_token(&state, &id, &scopes, minutes).await?;
            Ok(json_response(StatusCode::OK, &token))
        }
        // IdentityOperations_RevokeAccessTokens: no request body.
        ":revokeAccessTokens" if !version.legacy => {
            check_identity_id(&state, &id)?;
            if !state
                .store
                .revoke_tokens(&id, state.clock.now_micros())
                .await?
            {
                return Err(identity_not_found());
            }
            Ok(StatusCode::NO_CONTENT.into_response())
        }
        _ => Err(super::no_route(
            "POST",
            &format!("/identities/{id}/{action}"),
        )),
    }
}
