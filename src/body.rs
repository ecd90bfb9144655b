//! Reading a request body within the cap of its route: the declared `Content-Length` is checked
//! before any byte is read, and the body is read to at most the cap, so a client cannot make the
//! emulator buffer more than the route accepts. Over the cap is a 413 (`ApiError::PayloadTooLarge`).
//! Nothing here decides a cap; the route table (`api::routes`) and `state` do.

use axum::body::{Body, Bytes};
use axum::http::HeaderMap;
use axum::http::header::CONTENT_LENGTH;
use futures_util::StreamExt;

use crate::error::{ApiError, ApiResult};

/// The 413 for a body the declared `Content-Length` already puts over `cap`, before anything is
/// read; `Ok` when no length is declared (chunked, HTTP/2 without one) or it fits.
pub fn check_declared_length(headers: &HeaderMap, cap: usize) -> ApiResult<()> {
    let declared = headers
        .get(CONTENT_LENGTH)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.trim().parse::<u64>().ok());
    match declared {
        Some(length) if length > cap as u64 => {
            tracing::debug!(length, cap, "declared body over the route's cap");
            Err(ApiError::PayloadTooLarge { limit_bytes: cap })
        }
        _ => Ok(()),
    }
}

/// Reads the whole body, refusing with a 413 as soon as more than `cap` bytes have arrived (at
/// most one frame beyond the cap is ever held) and with a 400 when the body breaks off.
pub async fn read_capped(headers: &HeaderMap, body: Body, cap: usize) -> ApiResult<Bytes> {
    check_declared_length(headers, cap)?;
    let mut stream = body.into_data_stream();
    let mut collected: Vec<u8> = Vec::new();
    while let Some(frame) = stream.next().await {
        let chunk = frame.map_err(|error| {
            tracing::debug!(%error, "request body broke off");
            ApiError::bad_request("The request body could not be read (interrupted).")
        })?;
        if collected.len() + chunk.len() > cap {
            tracing::debug!(cap, "body over the route's cap");
            return Err(ApiError::PayloadTooLarge { limit_bytes: cap });
        }
        collected.extend_from_slice(&chunk);
    }
    Ok(Bytes::from(collected))
}
