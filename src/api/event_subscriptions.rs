//! `/_emulator/eventSubscriptions`: Event Grid webhook subscriptions in the ARM
//! `Microsoft.EventGrid/eventSubscriptions` shape (events.md §7). A PUT validates the body,
//! runs the endpoint's validation handshake (§6; `?skipValidation=true` skips it, an emulator
//! extension) and stores the subscription; the dispatcher (`src/eventgrid/`) delivers to it.
//! Subscriptions are configuration: they survive restarts and `/_emulator/reset`.

use axum::extract::{Query, State};
use axum::http::StatusCode;
use axum::response::Response;
use serde::Deserialize;
use serde_json::Value;

use super::extract::{AcsJson, AcsPath};
use super::json_response;
use crate::error::{ApiError, ApiResult};
use crate::eventgrid::{Origin, Subscription, valid_name};
use crate::state::AppState;

/// Query of the PUT.
#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct PutQuery {
    /// Store the subscription without the validation handshake (emulator extension).
    #[serde(default)]
    pub skip_validation: Option<String>,
}

fn subscription_not_found(name: &str) -> ApiError {
    ApiError::NotFound(format!("The event subscription {name} does not exist."))
}

fn checked_name(name: &str) -> ApiResult<()> {
    if valid_name(name) {
        Ok(())
    } else {
        Err(ApiError::BadRequest {
            code: "InvalidRequestContent",
            message: format!(
                "name: {name:?} is not a valid event subscription name (3 to 64 letters, digits and hyphens)."
            ),
        })
    }
}

/// Emulator_PutEventSubscription: PUT /_emulator/eventSubscriptions/{name}. 201 when created,
/// 200 when replaced; a bad body or a failed handshake is a 400 and stores nothing.
pub async fn put_event_subscription(
    State(state): State<AppState>,
    AcsPath(name): AcsPath<String>,
    query: Result<Query<PutQuery>, axum::extract::rejection::QueryRejection>,
    AcsJson(body): AcsJson<Value>,
) -> ApiResult<Response> {
    let Query(query) = query?;
    checked_name(&name)?;
    let skip = match query.skip_validation.as_deref() {
        None => false,
        Some(v) if v.eq_ignore_ascii_case("true") => true,
        Some(v) if v.eq_ignore_ascii_case("false") => false,
        Some(other) => {
            return Err(ApiError::bad_request(format!(
                "skipValidation={other} is not valid; use true or false."
            )));
        }
    };
    let subscription = Subscription::from_arm(&body)?;
    if !skip {
        // Event Grid validates on create and on update (webhook doc).
        state
            .eventgrid
            .validate(&name, &subscription)
            .await
            .map_err(|reason| ApiError::BadRequest {
                code: "WebhookValidationFailed",
                message: format!(
                    "Webhook validation handshake failed for {}: {reason}.",
                    subscription
                        .endpoint_url
                        .split('?')
                        .next()
                        .unwrap_or_default()
                ),
            })?;
    }
    let created = state
        .eventgrid
        .put(&name, &subscription, Origin::Api)
        .await?;
    let status = if created {
        StatusCode::CREATED
    } else {
        StatusCode::OK
    };
    Ok(json_response(
        status,
        &subscription.to_arm(&name, state.eventgrid.topic()),
    ))
}

/// Emulator_GetEventSubscription: GET /_emulator/eventSubscriptions/{name}.
pub async fn get_event_subscription(
    State(state): State<AppState>,
    AcsPath(name): AcsPath<String>,
) -> ApiResult<Response> {
    let subscription = state
        .eventgrid
        .get(&name)?
        .ok_or_else(|| subscription_not_found(&name))?;
    Ok(json_response(
        StatusCode::OK,
        &subscription.to_arm(&name, state.eventgrid.topic()),
    ))
}

/// Emulator_ListEventSubscriptions: GET /_emulator/eventSubscriptions. `{"value": [...]}`.
pub async fn list_event_subscriptions(State(state): State<AppState>) -> ApiResult<Response> {
    let topic = state.eventgrid.topic().to_owned();
    let value: Vec<Value> = state
        .eventgrid
        .list()?
        .iter()
        .map(|(name, s)| s.to_arm(name, &topic))
        .collect();
    Ok(json_response(
        StatusCode::OK,
        &serde_json::json!({ "value": value }),
    ))
}

/// Emulator_DeleteEventSubscription: DELETE /_emulator/eventSubscriptions/{name}. 200, or 204
/// when there was nothing to delete (ARM's answers); its pending deliveries go with it.
pub async fn delete_event_subscription(
    State(state): State<AppState>,
    AcsPath(name): AcsPath<String>,
) -> ApiResult<StatusCode> {
    if state.eventgrid.delete(&name).await? {
        Ok(StatusCode::OK)
    } else {
        Ok(StatusCode::NO_CONTENT)
    }
}
