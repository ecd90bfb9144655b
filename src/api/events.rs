//! The event log under `/_emulator/events`: every committed chat event, newest first, with
//! its deliveries; and `/_emulator/events/stream`, the same events as Server-Sent Events as
//! they commit, so test code can await "the ChatMessageReceived for message X" instead of
//! sleeping. Reads only; no credentials, like the other `/_emulator` inspection routes.

use std::collections::VecDeque;
use std::convert::Infallible;

use axum::extract::{Query, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::sse::{Event, KeepAlive, Sse};
use axum::response::{IntoResponse, Response};
use futures_util::Stream;
use serde::{Deserialize, Serialize};
use serde_json::value::RawValue;

use super::extract::BaseUrl;
use super::json_response;
use crate::chat::EVENT_TYPE_PREFIX;
use crate::error::{ApiError, ApiResult};
use crate::state::AppState;
use crate::store::{EventFilter, EventRow, Store};

/// Events a log page holds unless `limit` says otherwise, and at most.
const DEFAULT_LIMIT: u32 = 100;
const MAX_LIMIT: u32 = 1000;
/// Events the stream reads from the store at a time.
const STREAM_BATCH: u32 = 256;

/// Query of `GET /_emulator/events`.
#[derive(Debug, Deserialize)]
pub struct EventLogQuery {
    /// `Microsoft.Communication.ChatMessageReceived`, or just `ChatMessageReceived`.
    #[serde(rename = "type")]
    pub event_type: Option<String>,
    #[serde(rename = "threadId")]
    pub thread_id: Option<String>,
    /// Only events with a larger sequence number.
    pub since: Option<i64>,
    pub limit: Option<u32>,
    /// Continuation of a nextLink: only events with a smaller sequence number.
    pub before: Option<i64>,
}

/// One entry of the log.
#[derive(Debug, Serialize)]
struct LogEntry<'a> {
    sequence: i64,
    /// The event in the Event Grid schema, as every subscription receives it.
    event: &'a RawValue,
    /// Webhook deliveries of the event (none while no subscription matched it).
    deliveries: Vec<Delivery<'a>>,
}

/// One (event, subscription) delivery in the log.
#[derive(Debug, Serialize)]
struct Delivery<'a> {
    subscription: &'a str,
    /// `pending`, `retrying`, `delivered` or `deadLettered`.
    state: &'a str,
    /// `[{"at", "status" | "error"}]`, oldest first.
    attempts: &'a RawValue,
}

fn full_type(name: &str) -> String {
    if name.starts_with(EVENT_TYPE_PREFIX) {
        name.to_owned()
    } else {
        format!("{EVENT_TYPE_PREFIX}{name}")
    }
}

/// Emulator_ListEvents: GET /_emulator/events. Newest first; `nextLink` continues to older ones.
pub async fn list_events(
    State(state): State<AppState>,
    base: BaseUrl,
    query: Result<Query<EventLogQuery>, axum::extract::rejection::QueryRejection>,
) -> ApiResult<Response> {
    let Query(query) = query?;
    let limit = match query.limit {
        None => DEFAULT_LIMIT,
        Some(n @ 1..=MAX_LIMIT) => n,
        Some(n) => {
            return Err(ApiError::bad_request(format!(
                "Value for limit ({n}) is not valid: use 1 to {MAX_LIMIT}."
            )));
        }
    };
    let filter = EventFilter {
        event_type: query.event_type.as_deref().map(full_type),
        thread_id: query.thread_id.clone(),
        since: query.since,
    };
    let (rows, more, deliveries) = state.store.read(|view| {
        let (rows, more) = view.events_page(&filter, query.before, limit)?;
        // The page is newest first: its deliveries lie between its last and first sequence.
        let deliveries = match (rows.last(), rows.first()) {
            (Some(low), Some(high)) => view.deliveries_between(low.sequence, high.sequence)?,
            _ => Vec::new(),
        };
        Ok::<_, ApiError>((rows, more, deliveries))
    })?;
    let entries: Vec<LogEntry<'_>> = rows
        .iter()
        .map(|row| {
            let of_event = deliveries
                .iter()
                .filter(|d| d.sequence == row.sequence)
                .map(|d| {
                    Ok(Delivery {
                        subscription: &d.subscription,
                        state: &d.state,
                        attempts: serde_json::from_str(&d.attempts).map_err(anyhow::Error::from)?,
                    })
                })
                .collect::<ApiResult<_>>()?;
            Ok(LogEntry {
                sequence: row.sequence,
                event: serde_json::from_str(&row.envelope).map_err(anyhow::Error::from)?,
                deliveries: of_event,
            })
        })
        .collect::<ApiResult<_>>()?;
    let next_link = rows.last().filter(|_| more).map(|last| {
        let mut params = vec![
            ("before", last.sequence.to_string()),
            ("limit", limit.to_string()),
        ];
        if let Some(t) = &filter.event_type {
            params.push(("type", t.clone()));
        }
        if let Some(t) = &filter.thread_id {
            params.push(("threadId", t.clone()));
        }
        if let Some(s) = filter.since {
            params.push(("since", s.to_string()));
        }
        let query = params
            .iter()
            .map(|(k, v)| format!("{k}={}", percent_encoding::utf8_percent_encode(v, QUERY)))
            .collect::<Vec<_>>()
            .join("&");
        format!("{}/_emulator/events?{query}", base.0)
    });
    #[derive(Serialize)]
    #[serde(rename_all = "camelCase")]
    struct Page<'a> {
        value: Vec<LogEntry<'a>>,
        #[serde(skip_serializing_if = "Option::is_none")]
        next_link: Option<String>,
    }
    Ok(json_response(
        StatusCode::OK,
        &Page {
            value: entries,
            next_link,
        },
    ))
}

/// Characters escaped in a query value of a nextLink.
const QUERY: &percent_encoding::AsciiSet = &percent_encoding::NON_ALPHANUMERIC
    .remove(b'-')
    .remove(b'_')
    .remove(b'.')
    .remove(b'~');

/// Query of the stream.
#[derive(Debug, Deserialize)]
pub struct StreamQuery {
    /// Start after this sequence number (as `Last-Event-ID` does).
    pub since: Option<i64>,
}

/// Emulator_StreamEvents: GET /_emulator/events/stream. `id:` is the sequence number,
/// `event:` the eventType, `data:` the event in the Event Grid schema. Resumes after
/// `Last-Event-ID` (or `?since=`); without either it starts with the next commit.
pub async fn stream_events(
    State(state): State<AppState>,
    headers: HeaderMap,
    query: Result<Query<StreamQuery>, axum::extract::rejection::QueryRejection>,
) -> ApiResult<Response> {
    let Query(query) = query?;
    let last_event_id = match headers.get("last-event-id") {
        None => None,
        Some(value) => Some(
            value
                .to_str()
                .ok()
                .and_then(|v| v.trim().parse::<i64>().ok())
                .ok_or_else(|| {
                    ApiError::bad_request("Last-Event-ID must be an event's sequence number.")
                })?,
        ),
    };
    // Subscribe before reading the position, so no commit between the two goes unseen.
    let signal = state.chat.events().subscribe();
    let start = match last_event_id.or(query.since) {
        Some(sequence) => sequence,
        None => state.store.read(|view| view.last_event_sequence())?,
    };
    let stream = committed_events(state.store.clone(), signal, start);
    Ok(Sse::new(stream)
        .keep_alive(KeepAlive::default())
        .into_response())
}

/// The events committed after `position`, as they commit, until the emulator shuts down.
fn committed_events(
    store: Store,
    signal: tokio::sync::watch::Receiver<crate::chat::Signalled>,
    position: i64,
) -> impl Stream<Item = Result<Event, Infallible>> {
    struct Cursor {
        store: Store,
        signal: tokio::sync::watch::Receiver<crate::chat::Signalled>,
        position: i64,
        pending: VecDeque<EventRow>,
    }
    let cursor = Cursor {
        store,
        signal,
        position,
        pending: VecDeque::new(),
    };
    futures_util::stream::unfold(cursor, |mut cursor| async move {
        loop {
            if let Some(row) = cursor.pending.pop_front() {
                cursor.position = row.sequence;
                let event = Event::default()
                    .id(row.sequence.to_string())
                    .event(row.event_type)
                    .data(row.envelope);
                return Some((Ok(event), cursor));
            }
            match cursor
                .store
                .read(|view| view.events_after(cursor.position, STREAM_BATCH))
            {
                Ok(rows) if !rows.is_empty() => {
                    cursor.pending.extend(rows);
                    continue;
                }
                Ok(_) => {}
                Err(error) => {
                    tracing::warn!(%error, "event stream ended: the store failed");
                    return None;
                }
            }
            if cursor.signal.changed().await.is_err() || cursor.signal.borrow().closed {
                return None;
            }
        }
    })
}
