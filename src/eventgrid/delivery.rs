//! One webhook request: the body in the subscription's schema, the `aeg-*` headers, the
//! validation handshakes, and what an answer means for the retry schedule (events.md §4-§6).
//! No SQL and no scheduling: the dispatcher (`mod.rs`) decides when and records the outcome.

use std::time::Duration;

use reqwest::header::{CONTENT_TYPE, HeaderValue};
use serde_json::{Value, json};

use super::subscription::{DeliverySchema, Subscription};

/// Event Grid's retry schedule (delivery doc): after the nth failure the next attempt waits
/// the nth entry, and 12 h after the last one.
const RETRY_SCHEDULE_SECS: &[u64] = &[
    10,
    30,
    60,
    5 * 60,
    10 * 60,
    30 * 60,
    3600,
    3 * 3600,
    6 * 3600,
    12 * 3600,
];

/// How long Event Grid waits for an answer (delivery doc, webhook doc).
pub const RESPONSE_TIMEOUT_SECS: f64 = 30.0;

/// What came back from one attempt.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Answer {
    Status(u16),
    /// No answer: refused, reset or timed out.
    Failed(String),
}

impl Answer {
    /// Success is 200-204 and nothing else (delivery doc).
    pub fn delivered(&self) -> bool {
        matches!(self, Answer::Status(200..=204))
    }

    /// 400, 401, 403 and 413 are not retried for a webhook: the event is dead-lettered at once
    /// (the current delivery doc; older revisions list fewer).
    pub fn final_failure(&self) -> bool {
        matches!(self, Answer::Status(400 | 401 | 403 | 413))
    }

    /// The shortest wait after this failure (delivery doc, by status).
    fn minimum_wait_secs(&self) -> u64 {
        match self {
            Answer::Status(400 | 401 | 403 | 404) => 5 * 60,
            Answer::Status(408) => 2 * 60,
            Answer::Status(503) => 30,
            _ => 10,
        }
    }

    /// The wait before the next attempt after `failures` failed ones, unscaled.
    pub fn retry_wait_secs(&self, failures: u32) -> u64 {
        let index = (failures.max(1) as usize - 1).min(RETRY_SCHEDULE_SECS.len() - 1);
        RETRY_SCHEDULE_SECS[index].max(self.minimum_wait_secs())
    }

    /// The attempt as the event log shows it.
    pub fn to_log(&self, at: &str) -> Value {
        match self {
            Answer::Status(status) => json!({ "at": at, "status": status }),
            Answer::Failed(error) => json!({ "at": at, "error": error }),
        }
    }
}

/// An envelope in the CloudEvents 1.0 structured mode (events.md §4, §10): the same id, subject,
/// time and data; the topic becomes `source`.
pub fn to_cloud_event(event: &Value) -> Value {
    json!({
        "specversion": "1.0",
        "id": event["id"],
        "source": event["topic"],
        "type": event["eventType"],
        "subject": event["subject"],
        "time": event["eventTime"],
        "datacontenttype": "application/json",
        "data": event["data"],
    })
}

/// The body and content type of a delivery of `envelopes` (Event Grid schema JSON texts).
pub fn body(schema: DeliverySchema, envelopes: &[&str]) -> (String, &'static str) {
    match schema {
        // Always an array, also for one event (events.md §4); the stored text goes out as is.
        DeliverySchema::EventGridSchema => (
            format!("[{}]", envelopes.join(",")),
            "application/json; charset=utf-8",
        ),
        DeliverySchema::CloudEventSchemaV1_0 => {
            let events: Vec<Value> = envelopes
                .iter()
                .map(|text| to_cloud_event(&serde_json::from_str(text).unwrap_or(Value::Null)))
                .collect();
            match events.as_slice() {
                [one] => (
                    one.to_string(),
                    "application/cloudevents+json; charset=utf-8",
                ),
                _ => (
                    Value::Array(events).to_string(),
                    "application/cloudevents-batch+json; charset=utf-8",
                ),
            }
        }
    }
}

/// Sends one delivery: `aeg-*` headers (events.md §5) and the static delivery attributes.
pub async fn send(
    client: &reqwest::Client,
    timeout: Duration,
    name: &str,
    subscription: &Subscription,
    envelopes: &[&str],
    delivery_count: u32,
) -> Answer {
    let (body, content_type) = body(subscription.schema, envelopes);
    let mut request = client
        .post(&subscription.endpoint_url)
        .timeout(timeout)
        .header(CONTENT_TYPE, HeaderValue::from_static(content_type))
        .header("aeg-event-type", "Notification")
        .header("aeg-subscription-name", name.to_uppercase())
        .header("aeg-delivery-count", delivery_count.to_string())
        // Every chat event is dataVersion 1.0, metadataVersion 1 (events.md §4).
        .header("aeg-data-version", "1.0")
        .header("aeg-metadata-version", "1");
    for header in &subscription.headers {
        request = request.header(&header.name, &header.value);
    }
    answer(request.body(body).send().await)
}

fn answer(result: reqwest::Result<reqwest::Response>) -> Answer {
    match result {
        Ok(response) => Answer::Status(response.status().as_u16()),
        Err(error) if error.is_timeout() => Answer::Failed("no answer in time".to_owned()),
        Err(error) => Answer::Failed(failure_text(&error)),
    }
}

/// An error and its causes, for the log (reqwest's own text omits the cause).
fn failure_text(error: &reqwest::Error) -> String {
    let mut text = error.to_string();
    let mut source = std::error::Error::source(error);
    while let Some(cause) = source {
        text.push_str(": ");
        text.push_str(&cause.to_string());
        source = cause.source();
    }
    text
}

/// The validation handshake of events.md §6 for `subscription`; `Err` says why it failed.
pub async fn handshake(
    client: &reqwest::Client,
    timeout: Duration,
    name: &str,
    subscription: &Subscription,
    topic: &str,
    now: &str,
) -> Result<(), String> {
    let url = &subscription.endpoint_url;
    match subscription.schema {
        DeliverySchema::EventGridSchema => {
            let code = uuid::Uuid::new_v4().to_string().to_uppercase();
            // The asynchronous flow (validationUrl) is not offered, so the event carries no
            // validationUrl: an endpoint must answer with the code.
            let event = json!([{
                "id": uuid::Uuid::new_v4().to_string(),
                "topic": topic,
                "subject": "",
                "data": { "validationCode": code },
                "eventType": "Microsoft.EventGrid.SubscriptionValidationEvent",
                "eventTime": now,
                "metadataVersion": "1",
                "dataVersion": "1",
            }]);
            let response = client
                .post(url)
                .timeout(timeout)
                .header(CONTENT_TYPE, "application/json; charset=utf-8")
                .header("aeg-event-type", "SubscriptionValidation")
                .header("aeg-subscription-name", name.to_uppercase())
                .header("aeg-delivery-count", "0")
                .header("aeg-data-version", "1")
                .header("aeg-metadata-version", "1")
                .body(event.to_string())
                .send()
                .await
                .map_err(|e| {
                    format!(
                        "the endpoint did not answer the validation event: {}",
                        failure_text(&e)
                    )
                })?;
            let status = response.status().as_u16();
            // Only a 200 carrying the code validates synchronously; a 202 does not count.
            if status != 200 {
                return Err(format!(
                    "the endpoint answered the validation event with {status}, not 200"
                ));
            }
            let text = response.text().await.unwrap_or_default();
            let echoed = serde_json::from_str::<Value>(&text).ok().and_then(|v| {
                v.get("validationResponse")
                    .and_then(Value::as_str)
                    .map(str::to_owned)
            });
            match echoed {
                Some(echoed) if echoed.eq_ignore_ascii_case(&code) => Ok(()),
                Some(_) => Err("the endpoint answered a validationResponse other than the validationCode".to_owned()),
                None => Err("the endpoint's answer has no validationResponse (the asynchronous validationUrl flow is not supported)".to_owned()),
            }
        }
        DeliverySchema::CloudEventSchemaV1_0 => {
            let response = client
                .request(reqwest::Method::OPTIONS, url)
                .timeout(timeout)
                .header("WebHook-Request-Origin", "eventgrid.azure.net")
                .send()
                .await
                .map_err(|e| {
                    format!(
                        "the endpoint did not answer the OPTIONS handshake: {}",
                        failure_text(&e)
                    )
                })?;
            let status = response.status().as_u16();
            let allowed = response
                .headers()
                .get("webhook-allowed-origin")
                .and_then(|v| v.to_str().ok())
                .map(str::trim);
            match allowed {
                _ if !(200..300).contains(&status) => Err(format!(
                    "the endpoint answered the OPTIONS handshake with {status}"
                )),
                Some("*") => Ok(()),
                Some(origin) if origin.eq_ignore_ascii_case("eventgrid.azure.net") => Ok(()),
                // The status code alone is no consent (CloudEvents webhook spec §4).
                _ => Err("the endpoint's answer to the OPTIONS handshake has no WebHook-Allowed-Origin: eventgrid.azure.net (or *)".to_owned()),
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn retry_waits_follow_the_schedule_and_the_per_status_minimums() {
        let other = Answer::Status(500);
        assert_eq!(other.retry_wait_secs(1), 10);
        assert_eq!(other.retry_wait_secs(2), 30);
        assert_eq!(other.retry_wait_secs(3), 60);
        assert_eq!(other.retry_wait_secs(10), 12 * 3600);
        assert_eq!(other.retry_wait_secs(29), 12 * 3600);
        assert_eq!(Answer::Status(404).retry_wait_secs(1), 5 * 60);
        assert_eq!(Answer::Status(408).retry_wait_secs(1), 2 * 60);
        assert_eq!(Answer::Status(503).retry_wait_secs(1), 30);
        assert_eq!(Answer::Failed("timeout".into()).retry_wait_secs(1), 10);
    }

    #[test]
    fn only_200_to_204_count_as_delivered_and_400_401_403_413_are_final() {
        assert!(Answer::Status(204).delivered());
        assert!(!Answer::Status(205).delivered());
        for status in [400, 401, 403, 413] {
            assert!(Answer::Status(status).final_failure(), "{status}");
        }
        assert!(!Answer::Status(404).final_failure());
        assert!(!Answer::Status(500).final_failure());
    }

    #[test]
    fn one_cloud_event_is_an_object_and_a_batch_an_array() {
        let event = r#"{"id":"1","topic":"/t","subject":"s","eventType":"Microsoft.Communication.ChatMessageReceived","eventTime":"2024-01-01T00:00:00Z","data":{"a":1},"dataVersion":"1.0","metadataVersion":"1"}"#;
        let (one, content_type) = body(DeliverySchema::CloudEventSchemaV1_0, &[event]);
        assert_eq!(content_type, "application/cloudevents+json; charset=utf-8");
        let one: Value = serde_json::from_str(&one).expect("json");
        assert_eq!(one["specversion"], "1.0");
        assert_eq!(one["source"], "/t");
        assert_eq!(one["type"], "Microsoft.Communication.ChatMessageReceived");
        let (two, content_type) = body(DeliverySchema::CloudEventSchemaV1_0, &[event, event]);
        assert_eq!(
            content_type,
            "application/cloudevents-batch+json; charset=utf-8"
        );
        assert!(
            serde_json::from_str::<Value>(&two)
                .expect("json")
                .is_array()
        );
        let (grid, _) = body(DeliverySchema::EventGridSchema, &[event]);
        assert!(
            serde_json::from_str::<Value>(&grid)
                .expect("json")
                .is_array()
        );
    }
}
