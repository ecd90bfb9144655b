//! An Event Grid subscription in the ARM `Microsoft.EventGrid/eventSubscriptions` shape
//! (api-version 2022-06-15, events.md §7): validation of a PUT body into a `Subscription`, its
//! filter, and the ARM answer. Pure: no HTTP, no SQL.

use serde::{Deserialize, Serialize};
use serde_json::{Value, json};

use crate::chat::EVENT_TYPE_PREFIX;
use crate::error::{ApiError, ApiResult};

/// The chat event types a filter may name (events.md §1).
pub const CHAT_EVENT_TYPES: &[&str] = &[
    "ChatThreadCreated",
    "ChatThreadCreatedWithUser",
    "ChatMessageReceivedInThread",
    "ChatMessageReceived",
    "ChatMessageEditedInThread",
    "ChatMessageEdited",
    "ChatMessageDeletedInThread",
    "ChatMessageDeleted",
    "ChatThreadPropertiesUpdated",
    "ChatThreadPropertiesUpdatedPerUser",
    "ChatThreadParticipantAdded",
    "ChatParticipantAddedToThreadWithUser",
    "ChatThreadParticipantRemoved",
    "ChatParticipantRemovedFromThreadWithUser",
    "ChatThreadDeleted",
    "ChatThreadWithUserDeleted",
    "ChatTypingIndicatorReceivedInThread",
    "ChatAzureBotCommandReceivedInThread",
];

/// Typing indicators go only to subscriptions whose `includedEventTypes` names them (the
/// issue; events.md §2): a typing user would otherwise flood every webhook.
const OPT_IN_TYPES: &[&str] = &["ChatTypingIndicatorReceivedInThread"];

/// The two delivery schemas of events.md §4.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum DeliverySchema {
    EventGridSchema,
    CloudEventSchemaV1_0,
}

impl DeliverySchema {
    fn parse(text: &str) -> Option<Self> {
        // ARM compares enum values case-insensitively.
        [Self::EventGridSchema, Self::CloudEventSchemaV1_0]
            .into_iter()
            .find(|s| s.name().eq_ignore_ascii_case(text))
    }

    /// The ARM name.
    pub fn name(self) -> &'static str {
        match self {
            Self::EventGridSchema => "EventGridSchema",
            Self::CloudEventSchemaV1_0 => "CloudEventSchemaV1_0",
        }
    }
}

/// A `Static` delivery attribute mapping: a header on every delivery (headers doc).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct StaticHeader {
    pub name: String,
    pub value: String,
    pub is_secret: bool,
}

/// A validated subscription: what the dispatcher needs, stored as JSON.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Subscription {
    pub endpoint_url: String,
    pub max_events_per_batch: u32,
    pub preferred_batch_size_in_kilobytes: u32,
    pub headers: Vec<StaticHeader>,
    /// Full type names (`Microsoft.Communication.…`); `None`: every type but the opt-in ones.
    pub included_event_types: Option<Vec<String>>,
    pub subject_begins_with: String,
    pub subject_ends_with: String,
    pub is_subject_case_sensitive: bool,
    pub schema: DeliverySchema,
    pub max_delivery_attempts: u32,
    pub event_time_to_live_in_minutes: u32,
}

/// Whether `name` is a valid subscription name: ARM's 3-64 letters, digits and hyphens.
pub fn valid_name(name: &str) -> bool {
    (3..=64).contains(&name.len()) && name.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-')
}

fn field_error(field: &str, problem: impl std::fmt::Display) -> ApiError {
    ApiError::BadRequest {
        code: "InvalidRequestContent",
        message: format!("{field}: {problem}"),
    }
}

/// `value` at `path` (absent and `null` alike are `None`).
fn at<'v>(value: &'v Value, path: &[&str]) -> Option<&'v Value> {
    path.iter()
        .try_fold(value, |v, key| v.get(key))
        .filter(|v| !v.is_null())
}

fn string(body: &Value, path: &[&str]) -> ApiResult<Option<String>> {
    match at(body, path) {
        None => Ok(None),
        Some(Value::String(s)) => Ok(Some(s.clone())),
        Some(_) => Err(field_error(&path.join("."), "must be a string")),
    }
}

fn number(body: &Value, path: &[&str], range: (u32, u32), default: u32) -> ApiResult<u32> {
    let name = path.join(".");
    match at(body, path) {
        None => Ok(default),
        Some(v) => v
            .as_u64()
            .and_then(|n| u32::try_from(n).ok())
            .filter(|n| (range.0..=range.1).contains(n))
            .ok_or_else(|| {
                field_error(
                    &name,
                    format!("must be a whole number from {} to {}", range.0, range.1),
                )
            }),
    }
}

fn boolean(body: &Value, path: &[&str]) -> ApiResult<bool> {
    match at(body, path) {
        None => Ok(false),
        Some(Value::Bool(b)) => Ok(*b),
        Some(_) => Err(field_error(&path.join("."), "must be true or false")),
    }
}

/// The canonical full name of a chat event type, matched case-insensitively (ARM does).
fn chat_event_type(name: &str) -> Option<String> {
    let suffix = name
        .get(..EVENT_TYPE_PREFIX.len())
        .filter(|p| p.eq_ignore_ascii_case(EVENT_TYPE_PREFIX))
        .map(|_| &name[EVENT_TYPE_PREFIX.len()..])?;
    CHAT_EVENT_TYPES
        .iter()
        .find(|t| t.eq_ignore_ascii_case(suffix))
        .map(|t| format!("{EVENT_TYPE_PREFIX}{t}"))
}

impl Subscription {
    /// A subscription of `url` to every chat event in the Event Grid schema, with the defaults
    /// (`--event-webhook`).
    pub fn webhook(url: &str) -> ApiResult<Self> {
        Self::from_arm(&json!({ "properties": { "destination": {
            "endpointType": "WebHook", "properties": { "endpointUrl": url } } } }))
    }

    /// Validates an ARM `EventSubscription` body; the error names the field at fault.
    pub fn from_arm(body: &Value) -> ApiResult<Self> {
        if !body.is_object() {
            return Err(field_error("body", "must be a JSON object"));
        }
        let p =
            at(body, &["properties"]).ok_or_else(|| field_error("properties", "is required"))?;
        let destination = at(p, &["destination"])
            .ok_or_else(|| field_error("properties.destination", "is required"))?;
        match string(destination, &["endpointType"])? {
            Some(t) if t.eq_ignore_ascii_case("WebHook") => {}
            Some(other) => {
                return Err(field_error(
                    "properties.destination.endpointType",
                    format!("{other:?} is not supported; the emulator delivers to WebHook only"),
                ));
            }
            None => {
                return Err(field_error(
                    "properties.destination.endpointType",
                    "is required (WebHook)",
                ));
            }
        }
        let endpoint = "properties.destination.properties.endpointUrl";
        let endpoint_url = string(destination, &["properties", "endpointUrl"])?
            .ok_or_else(|| field_error(endpoint, "is required"))?;
        check_url(&endpoint_url).map_err(|problem| field_error(endpoint, problem))?;
        let max_events_per_batch = number(
            destination,
            &["properties", "maxEventsPerBatch"],
            (1, 5000),
            1,
        )
        .map_err(|e| prefixed(e, "properties.destination."))?;
        let preferred_batch_size_in_kilobytes = number(
            destination,
            &["properties", "preferredBatchSizeInKilobytes"],
            (1, 1024),
            64,
        )
        .map_err(|e| prefixed(e, "properties.destination."))?;
        let headers = mappings(at(
            destination,
            &["properties", "deliveryAttributeMappings"],
        ))?;

        let filter = at(p, &["filter"]).cloned().unwrap_or(json!({}));
        let included_event_types = match at(&filter, &["includedEventTypes"]) {
            None => None,
            Some(Value::Array(items)) => Some(
                items
                    .iter()
                    .enumerate()
                    .map(|(i, item)| {
                        let field = format!("properties.filter.includedEventTypes[{i}]");
                        let name = item
                            .as_str()
                            .ok_or_else(|| field_error(&field, "must be a string"))?;
                        chat_event_type(name).ok_or_else(|| {
                            field_error(
                                &field,
                                format!(
                                    "{name:?} is not a chat event type of Microsoft.Communication"
                                ),
                            )
                        })
                    })
                    .collect::<ApiResult<Vec<_>>>()?,
            ),
            Some(_) => {
                return Err(field_error(
                    "properties.filter.includedEventTypes",
                    "must be an array of event types",
                ));
            }
        };
        let subject = |key: &str| -> ApiResult<String> {
            Ok(string(&filter, &[key])
                .map_err(|e| prefixed(e, "properties.filter."))?
                .unwrap_or_default())
        };
        let subject_begins_with = subject("subjectBeginsWith")?;
        let subject_ends_with = subject("subjectEndsWith")?;
        let is_subject_case_sensitive = boolean(&filter, &["isSubjectCaseSensitive"])
            .map_err(|e| prefixed(e, "properties.filter."))?;

        let schema =
            match string(p, &["eventDeliverySchema"]).map_err(|e| prefixed(e, "properties."))? {
                None => DeliverySchema::EventGridSchema,
                Some(name) => DeliverySchema::parse(&name).ok_or_else(|| {
                    field_error(
                        "properties.eventDeliverySchema",
                        format!(
                            "{name:?} is not supported; use EventGridSchema or CloudEventSchemaV1_0"
                        ),
                    )
                })?,
            };
        let max_delivery_attempts = number(p, &["retryPolicy", "maxDeliveryAttempts"], (1, 30), 30)
            .map_err(|e| prefixed(e, "properties."))?;
        let event_time_to_live_in_minutes = number(
            p,
            &["retryPolicy", "eventTimeToLiveInMinutes"],
            (1, 1440),
            1440,
        )
        .map_err(|e| prefixed(e, "properties."))?;
        Ok(Subscription {
            endpoint_url,
            max_events_per_batch,
            preferred_batch_size_in_kilobytes,
            headers,
            included_event_types,
            subject_begins_with,
            subject_ends_with,
            is_subject_case_sensitive,
            schema,
            max_delivery_attempts,
            event_time_to_live_in_minutes,
        })
    }

    /// Whether an event of `event_type` about `subject` goes to this subscription.
    pub fn matches(&self, event_type: &str, subject: &str) -> bool {
        let type_ok = match &self.included_event_types {
            Some(types) => types.iter().any(|t| t == event_type),
            None => !OPT_IN_TYPES
                .iter()
                .any(|t| event_type.strip_prefix(EVENT_TYPE_PREFIX) == Some(t)),
        };
        if !type_ok {
            return false;
        }
        if self.is_subject_case_sensitive {
            subject.starts_with(&self.subject_begins_with)
                && subject.ends_with(&self.subject_ends_with)
        } else {
            let subject = subject.to_lowercase();
            subject.starts_with(&self.subject_begins_with.to_lowercase())
                && subject.ends_with(&self.subject_ends_with.to_lowercase())
        }
    }

    /// The ARM resource answer: `endpointUrl` is write-only in ARM (answers show
    /// `endpointBaseUrl`, the URL without its query), and secret header values are not shown.
    pub fn to_arm(&self, name: &str, topic: &str) -> Value {
        let base_url = self
            .endpoint_url
            .split(['?', '#'])
            .next()
            .unwrap_or_default();
        let mappings: Vec<Value> = self
            .headers
            .iter()
            .map(|h| {
                let mut properties = json!({ "isSecret": h.is_secret });
                if !h.is_secret {
                    properties["value"] = json!(h.value);
                }
                json!({ "name": h.name, "type": "Static", "properties": properties })
            })
            .collect();
        let mut filter = json!({
            "subjectBeginsWith": self.subject_begins_with,
            "subjectEndsWith": self.subject_ends_with,
            "isSubjectCaseSensitive": self.is_subject_case_sensitive,
        });
        if let Some(types) = &self.included_event_types {
            filter["includedEventTypes"] = json!(types);
        }
        json!({
            "id": format!("{topic}/providers/Microsoft.EventGrid/eventSubscriptions/{name}"),
            "name": name,
            "type": "Microsoft.EventGrid/eventSubscriptions",
            "properties": {
                "topic": topic,
                "provisioningState": "Succeeded",
                "destination": {
                    "endpointType": "WebHook",
                    "properties": {
                        "endpointBaseUrl": base_url,
                        "maxEventsPerBatch": self.max_events_per_batch,
                        "preferredBatchSizeInKilobytes": self.preferred_batch_size_in_kilobytes,
                        "deliveryAttributeMappings": mappings,
                    }
                },
                "filter": filter,
                "eventDeliverySchema": self.schema.name(),
                "retryPolicy": {
                    "maxDeliveryAttempts": self.max_delivery_attempts,
                    "eventTimeToLiveInMinutes": self.event_time_to_live_in_minutes,
                }
            }
        })
    }
}

/// Puts `prefix` before the field name of a field error.
fn prefixed(error: ApiError, prefix: &str) -> ApiError {
    match error {
        ApiError::BadRequest { code, message } => ApiError::BadRequest {
            code,
            message: format!("{prefix}{message}"),
        },
        other => other,
    }
}

/// An absolute http(s) URL with a host. Event Grid takes only https; locally, plain http is
/// what receivers (Azure Functions on 7071, a test server) listen on, so both are accepted.
fn check_url(url: &str) -> Result<(), String> {
    let rest = url
        .strip_prefix("http://")
        .or_else(|| url.strip_prefix("https://"))
        .ok_or("must be an absolute http:// or https:// URL")?;
    let authority = rest.split(['/', '?', '#']).next().unwrap_or_default();
    if authority.is_empty() || authority.contains(char::is_whitespace) || url.contains(' ') {
        return Err("must name a host".to_owned());
    }
    if url.parse::<axum::http::Uri>().is_err() {
        return Err("is not a valid URL".to_owned());
    }
    Ok(())
}

/// `deliveryAttributeMappings`: `Static` ones only (the emulator has no event to read a
/// `Dynamic` one from), at most 10 (headers doc).
fn mappings(value: Option<&Value>) -> ApiResult<Vec<StaticHeader>> {
    let field = "properties.destination.properties.deliveryAttributeMappings";
    let Some(value) = value else {
        return Ok(Vec::new());
    };
    let items = value
        .as_array()
        .ok_or_else(|| field_error(field, "must be an array"))?;
    if items.len() > 10 {
        return Err(field_error(field, "takes at most 10 mappings"));
    }
    items
        .iter()
        .enumerate()
        .map(|(i, item)| {
            let here = format!("{field}[{i}]");
            let name = string(item, &["name"])?
                .filter(|n| axum::http::HeaderName::from_bytes(n.as_bytes()).is_ok())
                .ok_or_else(|| field_error(&format!("{here}.name"), "must be a header name"))?;
            match string(item, &["type"])? {
                Some(t) if t.eq_ignore_ascii_case("Static") => {}
                _ => {
                    return Err(field_error(
                        &format!("{here}.type"),
                        "must be Static (Dynamic mappings are not supported)",
                    ));
                }
            }
            let value = string(item, &["properties", "value"])?
                .filter(|v| axum::http::HeaderValue::from_str(v).is_ok())
                .ok_or_else(|| {
                    field_error(
                        &format!("{here}.properties.value"),
                        "must be a header value",
                    )
                })?;
            let is_secret = boolean(item, &["properties", "isSecret"])
                .map_err(|e| prefixed(e, &format!("{here}.")))?;
            Ok(StaticHeader {
                name,
                value,
                is_secret,
            })
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn body(extra: Value) -> Value {
        let mut body = json!({ "properties": { "destination": { "endpointType": "WebHook",
            "properties": { "endpointUrl": "http://127.0.0.1:9/hook" } } } });
        if let (Some(p), Some(extra)) = (body["properties"].as_object_mut(), extra.as_object()) {
            p.extend(extra.clone());
        }
        body
    }

    #[test]
    fn a_minimal_body_takes_the_arm_defaults() {
        let s = Subscription::from_arm(&body(json!({}))).expect("valid");
        assert_eq!(s.max_events_per_batch, 1);
        assert_eq!(s.preferred_batch_size_in_kilobytes, 64);
        assert_eq!(s.max_delivery_attempts, 30);
        assert_eq!(s.event_time_to_live_in_minutes, 1440);
        assert_eq!(s.schema, DeliverySchema::EventGridSchema);
    }

    #[test]
    fn typing_events_reach_only_subscriptions_that_name_them() {
        let all = Subscription::from_arm(&body(json!({}))).expect("valid");
        let typing = "Microsoft.Communication.ChatTypingIndicatorReceivedInThread";
        assert!(!all.matches(typing, "thread/x/sender/y"));
        assert!(all.matches("Microsoft.Communication.ChatMessageReceived", "s"));
        let named = Subscription::from_arm(&body(json!({ "filter": {
            "includedEventTypes": ["microsoft.communication.chattypingindicatorreceivedinthread"] } })))
        .expect("valid");
        assert!(named.matches(typing, "thread/x/sender/y"));
    }

    #[test]
    fn subjects_compare_case_insensitively_unless_asked() {
        let filter = |sensitive: bool| {
            Subscription::from_arm(&body(json!({ "filter": {
                "subjectBeginsWith": "Thread/19:A", "subjectEndsWith": "B",
                "isSubjectCaseSensitive": sensitive } })))
            .expect("valid")
        };
        let t = "Microsoft.Communication.ChatMessageReceived";
        assert!(filter(false).matches(t, "thread/19:a…/b"));
        assert!(!filter(true).matches(t, "thread/19:a…/b"));
        assert!(filter(true).matches(t, "Thread/19:A…/B"));
    }

    #[test]
    fn bad_fields_are_named_in_the_error() {
        for (extra, field) in [
            (
                json!({ "eventDeliverySchema": "CustomInputSchema" }),
                "properties.eventDeliverySchema",
            ),
            (
                json!({ "retryPolicy": { "maxDeliveryAttempts": 31 } }),
                "properties.retryPolicy.maxDeliveryAttempts",
            ),
            (
                json!({ "retryPolicy": { "eventTimeToLiveInMinutes": 0 } }),
                "properties.retryPolicy.eventTimeToLiveInMinutes",
            ),
            (
                json!({ "filter": { "includedEventTypes": ["Microsoft.Storage.BlobCreated"] } }),
                "properties.filter.includedEventTypes[0]",
            ),
        ] {
            let error = Subscription::from_arm(&body(extra)).expect_err("invalid");
            assert!(
                error.to_string().starts_with(field),
                "{error} should name {field}"
            );
        }
        let mut bad_url = body(json!({}));
        bad_url["properties"]["destination"]["properties"]["endpointUrl"] = json!("ftp://x");
        let error = Subscription::from_arm(&bad_url).expect_err("invalid");
        assert!(error.to_string().contains("endpointUrl"), "{error}");
    }
}
