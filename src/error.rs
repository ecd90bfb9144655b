//! The one error type of the HTTP layer and its ACS-shaped body. Every failure a client can see,
//! framework rejections and unknown routes included, goes out through `ApiError::into_response`.

use axum::http::{HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use serde::Serialize;

use crate::store;

/// Result of a handler or of anything it calls.
pub type ApiResult<T> = Result<T, ApiError>;

/// An error with a fixed HTTP status and ACS error `code`.
#[derive(Debug, thiserror::Error)]
pub enum ApiError {
    /// 400: the request is malformed or breaks a documented limit.
    #[error("{message}")]
    BadRequest { code: &'static str, message: String },
    /// 401: missing, malformed, expired, revoked or wrongly signed credentials.
    #[error("{0}")]
    Unauthorized(String),
    /// 403: authenticated but not allowed (not a participant, not the sender, scope).
    #[error("{0}")]
    Forbidden(String),
    /// 404: the addressed thing does not exist.
    #[error("{0}")]
    NotFound(String),
    /// 405: the route exists with another method.
    #[error("method not allowed")]
    MethodNotAllowed,
    /// 413: the body is larger than the route accepts (`limit_bytes`); refused before more than
    /// that was read.
    #[error("The request body is larger than the {limit_bytes} bytes this operation accepts.")]
    PayloadTooLarge { limit_bytes: usize },
    /// 429: `--throttle`'s rate limits; the client may retry after `retry_after_secs`.
    #[error("Rate limit exceeded.")]
    TooManyRequests { retry_after_secs: u64 },
    /// A fault rule's answer (`/_emulator/faults`): any status, code and message the user chose.
    #[error("{message}")]
    Injected {
        status: StatusCode,
        code: String,
        message: String,
        retry_after_secs: Option<u64>,
    },
    /// 500: a fault of the emulator; details go to the log only.
    #[error(transparent)]
    Internal(#[from] anyhow::Error),
    /// 500: a database fault; details go to the log only.
    #[error(transparent)]
    Store(store::Error),
}

impl ApiError {
    /// 400 with the generic `BadRequest` code.
    pub fn bad_request(message: impl Into<String>) -> Self {
        ApiError::BadRequest {
            code: "BadRequest",
            message: message.into(),
        }
    }

    /// 400 for a body that is not the JSON the operation takes.
    pub fn invalid_body(detail: impl std::fmt::Display) -> Self {
        ApiError::bad_request(format!("The request body is not valid: {detail}."))
    }

    /// The HTTP status this error answers with.
    pub fn status(&self) -> StatusCode {
        match self {
            ApiError::BadRequest { .. } => StatusCode::BAD_REQUEST,
            ApiError::Unauthorized(_) => StatusCode::UNAUTHORIZED,
            ApiError::Forbidden(_) => StatusCode::FORBIDDEN,
            ApiError::NotFound(_) => StatusCode::NOT_FOUND,
            ApiError::MethodNotAllowed => StatusCode::METHOD_NOT_ALLOWED,
            ApiError::PayloadTooLarge { .. } => StatusCode::PAYLOAD_TOO_LARGE,
            ApiError::TooManyRequests { .. } => StatusCode::TOO_MANY_REQUESTS,
            ApiError::Injected { status, .. } => *status,
            ApiError::Internal(_) | ApiError::Store(_) => StatusCode::INTERNAL_SERVER_ERROR,
        }
    }

    fn code(&self) -> &str {
        // The codes of the spec examples (Unauthorized, Forbidden) and of recorded service
        // errors (NotFound); the service's 400s carry codes such as "BadRequest".
        match self {
            ApiError::BadRequest { code, .. } => code,
            ApiError::Unauthorized(_) => "Unauthorized",
            ApiError::Forbidden(_) => "Forbidden",
            ApiError::NotFound(_) => "NotFound",
            ApiError::MethodNotAllowed => "MethodNotAllowed",
            // No ACS spec, recording or SDK names a 413 code. The service's other codes are the
            // .NET `HttpStatusCode` names (Unauthorized, Forbidden, NotFound, TooManyRequests),
            // and 413's is RequestEntityTooLarge (the name Azure services answer 413 with).
            ApiError::PayloadTooLarge { .. } => "RequestEntityTooLarge",
            // The spec example of a throttled request.
            ApiError::TooManyRequests { .. } => "TooManyRequests",
            ApiError::Injected { code, .. } => code,
            ApiError::Internal(_) | ApiError::Store(_) => "InternalError",
        }
    }

    fn retry_after_secs(&self) -> Option<u64> {
        match self {
            ApiError::TooManyRequests { retry_after_secs } => Some(*retry_after_secs),
            ApiError::Injected {
                retry_after_secs, ..
            } => *retry_after_secs,
            _ => None,
        }
    }

    fn client_message(&self) -> String {
        match self {
            ApiError::Internal(_) | ApiError::Store(_) => "An internal error occurred.".to_owned(),
            ApiError::MethodNotAllowed => {
                "The requested method is not allowed on this resource.".to_owned()
            }
            other => other.to_string(),
        }
    }
}

/// `CommunicationErrorResponse` of the Common spec.
#[derive(Debug, Serialize)]
pub struct CommunicationErrorResponse {
    pub error: CommunicationError,
}

/// `CommunicationError` of the Common spec; also used for `invalidParticipants` entries.
#[derive(Debug, Clone, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct CommunicationError {
    pub code: String,
    pub message: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub target: Option<String>,
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let status = self.status();
        if matches!(self, ApiError::Internal(_) | ApiError::Store(_)) {
            tracing::error!(error = ?self, "internal error");
        } else {
            tracing::debug!(status = status.as_u16(), error = %self, "request refused");
        }
        let error = CommunicationError {
            code: self.code().to_owned(),
            message: self.client_message(),
            target: None,
        };
        let body = CommunicationErrorResponse {
            error: error.clone(),
        };
        let mut response = (status, axum::Json(body)).into_response();
        let headers = response.headers_mut();
        // Every error response of the spec is declared with this header.
        headers.insert("x-ms-error-response", HeaderValue::from_static("true"));
        if let Some(seconds) = self.retry_after_secs() {
            headers.insert("retry-after", HeaderValue::from(seconds));
        }
        // The error as a value, for layers that answer in another shape (the 2020 preview's
        // bare `{code, message}`), so none of them re-parses the body.
        response.extensions_mut().insert(error);
        response
    }
}

impl From<store::Error> for ApiError {
    /// A row that vanished between a check and a write (a concurrent delete or reset) is a
    /// 404, not a fault; a document that breaks a constraint is the client's 400.
    fn from(error: store::Error) -> Self {
        match error {
            store::Error::Vanished => {
                ApiError::NotFound("The specified resource was not found.".to_owned())
            }
            store::Error::Inconsistent(detail) => {
                ApiError::bad_request(format!("The state document is not consistent: {detail}."))
            }
            other => ApiError::Store(other),
        }
    }
}

impl From<axum::extract::rejection::QueryRejection> for ApiError {
    fn from(rejection: axum::extract::rejection::QueryRejection) -> Self {
        ApiError::bad_request(format!(
            "A query parameter is not valid: {}",
            rejection.body_text()
        ))
    }
}

impl From<axum::extract::rejection::PathRejection> for ApiError {
    fn from(rejection: axum::extract::rejection::PathRejection) -> Self {
        ApiError::bad_request(format!(
            "A path parameter is not valid: {}",
            rejection.body_text()
        ))
    }
}
