//! Event Grid webhooks (events.md): subscriptions under `/_emulator/eventSubscriptions` (§7),
//! the validation handshakes (§6), deliveries with their envelopes and headers (§4, §5),
//! retries, dead-lettering, filters, batching, CloudEvents, the event log's delivery states,
//! `--event-webhook`, and a delivery that survives a restart.
//!
//! Each test runs its own receiver on 127.0.0.1 port 0 that answers the handshakes and records
//! every request. Deliveries are awaited by watching the receiver's records (a generous
//! deadline only catches hangs); retries run at `--event-retry-scale 0.001`.

use std::collections::VecDeque;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use acs_chat_emulator::config::DEFAULT_RESOURCE_ARM_ID;
use axum::body::Bytes;
use axum::http::{HeaderMap, Method as AxumMethod, StatusCode as AxumStatus};
use axum::response::{IntoResponse, Response};
use reqwest::Method;
use serde_json::{Value, json};
use tokio::sync::watch;

use crate::helpers::{Reply, TestApp};

/// How long a test waits for something the emulator does in milliseconds: only a hang fails it.
const DEADLINE: Duration = Duration::from_secs(30);

/// How the receiver answers a delivery.
#[derive(Clone, Copy, Debug)]
enum Answer {
    Status(u16),
    /// Never answers.
    Hang,
}

/// How the receiver answers a handshake.
#[derive(Clone, Copy, Debug, PartialEq)]
enum Handshake {
    /// Echoes the validation code / allows the origin.
    Pass,
    /// Answers 200 without the code / without `WebHook-Allowed-Origin`.
    Refuse,
}

/// One request the receiver got.
#[derive(Clone, Debug)]
struct Recorded {
    method: String,
    headers: HeaderMap,
    body: String,
}

impl Recorded {
    fn header(&self, name: &str) -> &str {
        self.headers
            .get(name)
            .and_then(|v| v.to_str().ok())
            .unwrap_or("")
    }

    fn json(&self) -> Value {
        serde_json::from_str(&self.body).unwrap_or(Value::Null)
    }

    fn is_notification(&self) -> bool {
        self.method == "POST" && self.header("aeg-event-type") == "Notification"
    }

    /// The events of a delivery (one CloudEvent object counts as one).
    fn events(&self) -> Vec<Value> {
        match self.json() {
            Value::Array(events) => events,
            Value::Null => Vec::new(),
            one => vec![one],
        }
    }
}

struct ReceiverState {
    records: Mutex<Vec<Recorded>>,
    count: watch::Sender<usize>,
    /// Answers to the next deliveries, in order; then `default`.
    script: Mutex<VecDeque<Answer>>,
    default: Mutex<Answer>,
    handshake: Handshake,
}

/// A webhook receiver on loopback.
struct Receiver {
    url: String,
    state: Arc<ReceiverState>,
}

impl Receiver {
    async fn start(handshake: Handshake) -> Self {
        let state = Arc::new(ReceiverState {
            records: Mutex::new(Vec::new()),
            count: watch::Sender::new(0),
            script: Mutex::new(VecDeque::new()),
            default: Mutex::new(Answer::Status(200)),
            handshake,
        });
        let shared = Arc::clone(&state);
        let router = axum::Router::new().fallback(
            move |method: AxumMethod, headers: HeaderMap, body: Bytes| {
                let state = Arc::clone(&shared);
                async move { receive(state, method, headers, body).await }
            },
        );
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
            .await
            .expect("receiver binds");
        let url = format!(
            "http://{}/hook?code=abc",
            listener.local_addr().expect("addr")
        );
        tokio::spawn(async move { axum::serve(listener, router).await });
        Receiver { url, state }
    }

    /// Answers the next deliveries with these, then with 200.
    fn script(&self, answers: &[Answer]) {
        self.state
            .script
            .lock()
            .expect("lock")
            .extend(answers.iter().copied());
    }

    /// Answers every delivery after the script with `answer`.
    fn always(&self, answer: Answer) {
        *self.state.default.lock().expect("lock") = answer;
    }

    fn records(&self) -> Vec<Recorded> {
        self.state.records.lock().expect("lock").clone()
    }

    fn notifications(&self) -> Vec<Recorded> {
        self.records()
            .into_iter()
            .filter(Recorded::is_notification)
            .collect()
    }

    /// Waits until `done` holds for the deliveries received so far; fails only on a hang.
    async fn wait_for(&self, what: &str, done: impl Fn(&[Recorded]) -> bool) -> Vec<Recorded> {
        let mut count = self.state.count.subscribe();
        let waited = tokio::time::timeout(DEADLINE, async {
            loop {
                let deliveries = self.notifications();
                if done(&deliveries) {
                    return deliveries;
                }
                count.changed().await.expect("receiver alive");
            }
        })
        .await;
        waited.unwrap_or_else(|_| panic!("no {what} within {DEADLINE:?}: {:#?}", self.records()))
    }

    /// Waits for `n` deliveries.
    async fn wait_for_deliveries(&self, n: usize) -> Vec<Recorded> {
        self.wait_for(&format!("{n} deliveries"), |d| d.len() >= n)
            .await
    }
}

async fn receive(
    state: Arc<ReceiverState>,
    method: AxumMethod,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    let recorded = Recorded {
        method: method.to_string(),
        headers: headers.clone(),
        body: String::from_utf8_lossy(&body).into_owned(),
    };
    state.records.lock().expect("lock").push(recorded.clone());
    state.count.send_modify(|n| *n += 1);
    if method == AxumMethod::OPTIONS {
        return if state.handshake == Handshake::Pass {
            (
                [
                    ("WebHook-Allowed-Origin", "eventgrid.azure.net"),
                    ("Allow", "POST"),
                ],
                "",
            )
                .into_response()
        } else {
            AxumStatus::OK.into_response()
        };
    }
    if recorded.header("aeg-event-type") == "SubscriptionValidation" {
        let code = recorded.json()[0]["data"]["validationCode"].clone();
        return if state.handshake == Handshake::Pass {
            axum::Json(json!({ "validationResponse": code })).into_response()
        } else {
            AxumStatus::OK.into_response()
        };
    }
    let answer = state
        .script
        .lock()
        .expect("lock")
        .pop_front()
        .unwrap_or_else(|| *state.default.lock().expect("lock"));
    match answer {
        Answer::Status(status) => AxumStatus::from_u16(status)
            .expect("status")
            .into_response(),
        Answer::Hang => std::future::pending().await,
    }
}

/// A subscription body for `url` with `properties` merged in.
fn subscription(url: &str, properties: Value) -> Value {
    let mut body = json!({ "properties": { "destination": { "endpointType": "WebHook",
        "properties": { "endpointUrl": url } } } });
    let p = body["properties"].as_object_mut().expect("object");
    for (key, value) in properties.as_object().expect("object") {
        if key == "destination" {
            let d = p["destination"]["properties"]
                .as_object_mut()
                .expect("object");
            d.extend(value.as_object().expect("object").clone());
        } else {
            p.insert(key.clone(), value.clone());
        }
    }
    body
}

async fn put(app: &TestApp, name: &str, body: Value, skip_validation: bool) -> Reply {
    let query = if skip_validation {
        "?skipValidation=true"
    } else {
        ""
    };
    app.admin(
        Method::PUT,
        &format!("/_emulator/eventSubscriptions/{name}{query}"),
        Some(body),
    )
    .await
}

async fn fast_app() -> TestApp {
    TestApp::builder()
        .config(|c| c.event_retry_scale = 0.001)
        .spawn()
        .await
}

/// alice, bob and carol in a thread created after the subscription; returns (thread, alice's
/// id and token, bob, carol).
async fn three_users(app: &TestApp) -> (String, (String, String), String, String) {
    let alice = app.create_user().await;
    let (bob, _) = app.create_user().await;
    let (carol, _) = app.create_user().await;
    let thread = app.create_thread(&alice.1, "events", &[&bob, &carol]).await;
    (thread, alice, bob, carol)
}

/// The deliveries of the event log entry whose event has `event_type`, polled until `done`.
async fn log_deliveries(app: &TestApp, event_type: &str, done: impl Fn(&Value) -> bool) -> Value {
    let waited = tokio::time::timeout(DEADLINE, async {
        loop {
            let log = app
                .raw(
                    Method::GET,
                    &format!("/_emulator/events?type={event_type}"),
                    &[],
                    None,
                )
                .await;
            assert_eq!(log.status, 200, "{}", log.text);
            let deliveries = log.json()["value"][0]["deliveries"].clone();
            if done(&deliveries) {
                return deliveries;
            }
            // Polling the log: the interval only spaces the reads, no verdict depends on it.
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    })
    .await;
    waited.unwrap_or_else(|_| panic!("the log's deliveries of {event_type} did not settle"))
}

#[tokio::test]
async fn an_event_grid_handshake_that_echoes_the_code_creates_the_subscription_in_arm_shape() {
    let app = fast_app().await;
    let receiver = Receiver::start(Handshake::Pass).await;
    let created = put(
        &app,
        "orders",
        subscription(&receiver.url, json!({})),
        false,
    )
    .await;
    assert_eq!(created.status, 201, "{}", created.text);
    let body = created.json();
    assert_eq!(body["name"], "orders");
    assert_eq!(body["type"], "Microsoft.EventGrid/eventSubscriptions");
    assert_eq!(
        body["id"],
        format!(
            "{DEFAULT_RESOURCE_ARM_ID}/providers/Microsoft.EventGrid/eventSubscriptions/orders"
        )
    );
    assert_eq!(body["properties"]["topic"], DEFAULT_RESOURCE_ARM_ID);
    assert_eq!(body["properties"]["provisioningState"], "Succeeded");
    assert_eq!(body["properties"]["eventDeliverySchema"], "EventGridSchema");
    let destination = &body["properties"]["destination"]["properties"];
    assert_eq!(destination["maxEventsPerBatch"], 1);
    assert_eq!(destination["preferredBatchSizeInKilobytes"], 64);
    assert!(
        destination["endpointBaseUrl"]
            .as_str()
            .is_some_and(|u| !u.contains('?'))
    );
    assert_eq!(body["properties"]["retryPolicy"]["maxDeliveryAttempts"], 30);
    assert_eq!(
        body["properties"]["retryPolicy"]["eventTimeToLiveInMinutes"],
        1440
    );

    let handshake = &receiver.records()[0];
    assert_eq!(handshake.method, "POST");
    assert_eq!(handshake.header("aeg-event-type"), "SubscriptionValidation");
    assert_eq!(handshake.header("aeg-subscription-name"), "ORDERS");
    let event = &handshake.json()[0];
    assert_eq!(
        event["eventType"],
        "Microsoft.EventGrid.SubscriptionValidationEvent"
    );
    assert_eq!(event["subject"], "");
    assert_eq!(event["dataVersion"], "1");
    assert_eq!(event["metadataVersion"], "1");
    assert!(event["data"]["validationCode"].is_string());

    let replaced = put(
        &app,
        "orders",
        subscription(&receiver.url, json!({})),
        false,
    )
    .await;
    assert_eq!(replaced.status, 200, "{}", replaced.text);
    let got = app
        .admin(Method::GET, "/_emulator/eventSubscriptions/orders", None)
        .await;
    assert_eq!(got.status, 200);
    assert_eq!(got.json()["name"], "orders");
    let list = app
        .admin(Method::GET, "/_emulator/eventSubscriptions", None)
        .await;
    assert_eq!(list.json()["value"].as_array().map(Vec::len), Some(1));
    let deleted = app
        .admin(Method::DELETE, "/_emulator/eventSubscriptions/orders", None)
        .await;
    assert_eq!(deleted.status, 200);
    let again = app
        .admin(Method::DELETE, "/_emulator/eventSubscriptions/orders", None)
        .await;
    assert_eq!(again.status, 204);
    app.admin(Method::GET, "/_emulator/eventSubscriptions/orders", None)
        .await
        .assert_error(404, "NotFound");
}

#[tokio::test]
async fn a_failed_handshake_is_a_400_with_the_reason_and_stores_nothing() {
    let app = fast_app().await;
    let receiver = Receiver::start(Handshake::Refuse).await;
    for schema in ["EventGridSchema", "CloudEventSchemaV1_0"] {
        let reply = put(
            &app,
            "refused",
            subscription(&receiver.url, json!({ "eventDeliverySchema": schema })),
            false,
        )
        .await;
        reply.assert_error(400, "WebhookValidationFailed");
        assert!(reply.text.contains("validation") || reply.text.contains("OPTIONS"));
    }
    app.admin(Method::GET, "/_emulator/eventSubscriptions/refused", None)
        .await
        .assert_error(404, "NotFound");
    // Nobody listening fails too.
    let reply = put(
        &app,
        "nobody",
        subscription("http://127.0.0.1:9/hook", json!({})),
        false,
    )
    .await;
    reply.assert_error(400, "WebhookValidationFailed");
}

#[tokio::test]
async fn a_cloud_events_handshake_is_an_options_request_answered_with_the_allowed_origin() {
    let app = fast_app().await;
    let receiver = Receiver::start(Handshake::Pass).await;
    let reply = put(
        &app,
        "cloud",
        subscription(
            &receiver.url,
            json!({ "eventDeliverySchema": "CloudEventSchemaV1_0" }),
        ),
        false,
    )
    .await;
    assert_eq!(reply.status, 201, "{}", reply.text);
    let handshake = &receiver.records()[0];
    assert_eq!(handshake.method, "OPTIONS");
    assert_eq!(
        handshake.header("webhook-request-origin"),
        "eventgrid.azure.net"
    );
}

#[tokio::test]
async fn bad_bodies_are_400s_naming_the_field_and_the_key_is_required() {
    let app = fast_app().await;
    let url = "http://127.0.0.1:9/hook";
    for (body, field) in [
        (
            json!({ "properties": { "destination": { "endpointType": "EventHub", "properties": {} } } }),
            "endpointType",
        ),
        (subscription("not a url", json!({})), "endpointUrl"),
        (
            subscription(url, json!({ "destination": { "maxEventsPerBatch": 5001 } })),
            "maxEventsPerBatch",
        ),
        (
            subscription(
                url,
                json!({ "destination": { "preferredBatchSizeInKilobytes": 0 } }),
            ),
            "preferredBatchSizeInKilobytes",
        ),
        (
            subscription(url, json!({ "retryPolicy": { "maxDeliveryAttempts": 0 } })),
            "maxDeliveryAttempts",
        ),
        (
            subscription(
                url,
                json!({ "retryPolicy": { "eventTimeToLiveInMinutes": 1441 } }),
            ),
            "eventTimeToLiveInMinutes",
        ),
        (
            subscription(
                url,
                json!({ "filter": { "includedEventTypes": ["Microsoft.Communication.SMSReceived"] } }),
            ),
            "includedEventTypes",
        ),
        (
            subscription(url, json!({ "eventDeliverySchema": "CustomInputSchema" })),
            "eventDeliverySchema",
        ),
    ] {
        let reply = put(&app, "bad", body, true).await;
        assert_eq!(reply.status, 400, "{field}: {}", reply.text);
        assert!(reply.text.contains(field), "{field}: {}", reply.text);
    }
    let list = app
        .admin(Method::GET, "/_emulator/eventSubscriptions", None)
        .await;
    assert_eq!(list.json()["value"], json!([]));
    let anonymous = app
        .raw(Method::GET, "/_emulator/eventSubscriptions", &[], None)
        .await;
    assert_eq!(anonymous.status, 401);
}

#[tokio::test]
async fn a_sent_message_reaches_the_webhook_as_thread_and_user_events_with_the_documented_headers()
{
    let app = fast_app().await;
    let receiver = Receiver::start(Handshake::Pass).await;
    let body = subscription(
        &receiver.url,
        json!({
            "destination": { "deliveryAttributeMappings": [
                { "name": "X-Key", "type": "Static", "properties": { "value": "abc", "isSecret": true } } ] },
            "filter": { "includedEventTypes": [
                "Microsoft.Communication.ChatMessageReceivedInThread",
                "Microsoft.Communication.ChatMessageReceived" ] } }),
    );
    let created = put(&app, "messages", body, false).await;
    assert_eq!(created.status, 201, "{}", created.text);
    // A secret header value is not shown back (ARM).
    assert!(!created.text.contains("\"abc\""), "{}", created.text);
    let (thread, alice, bob, carol) = three_users(&app).await;
    let message_id = app.send_message(&alice.1, &thread, "hello").await;

    let deliveries = receiver.wait_for_deliveries(3).await;
    assert_eq!(deliveries.len(), 3, "one event per request by default");
    let mut recipients = Vec::new();
    for (i, delivery) in deliveries.iter().enumerate() {
        assert_eq!(
            delivery.header("content-type"),
            "application/json; charset=utf-8"
        );
        assert_eq!(delivery.header("aeg-subscription-name"), "MESSAGES");
        assert_eq!(delivery.header("aeg-delivery-count"), "0");
        assert_eq!(delivery.header("aeg-data-version"), "1.0");
        assert_eq!(delivery.header("aeg-metadata-version"), "1");
        assert_eq!(delivery.header("x-key"), "abc");
        let events = delivery.events();
        assert!(
            delivery.json().is_array(),
            "the Event Grid schema is an array"
        );
        assert_eq!(events.len(), 1);
        let event = &events[0];
        assert_eq!(event["topic"], DEFAULT_RESOURCE_ARM_ID);
        assert_eq!(event["dataVersion"], "1.0");
        assert_eq!(event["metadataVersion"], "1");
        assert_eq!(event["data"]["messageId"], message_id);
        assert_eq!(event["data"]["messageBody"], "hello");
        assert_eq!(event["data"]["threadId"], thread);
        // In commit order: the thread-level event first.
        if i == 0 {
            assert_eq!(
                event["eventType"],
                "Microsoft.Communication.ChatMessageReceivedInThread"
            );
            assert_eq!(
                event["subject"],
                format!("thread/{thread}/sender/{}", alice.0)
            );
        } else {
            assert_eq!(
                event["eventType"],
                "Microsoft.Communication.ChatMessageReceived"
            );
            recipients.push(
                event["data"]["recipientCommunicationIdentifier"]["rawId"]
                    .as_str()
                    .expect("recipient")
                    .to_owned(),
            );
        }
    }
    recipients.sort();
    let mut expected = vec![bob, carol];
    expected.sort();
    assert_eq!(recipients, expected);
    // The thread's creation was filtered out.
    assert!(
        receiver
            .notifications()
            .iter()
            .all(|d| !d.body.contains("ChatThreadCreated"))
    );
}

#[tokio::test]
async fn a_webhook_answering_500_then_200_gets_the_event_again_with_delivery_count_1() {
    let app = fast_app().await;
    let receiver = Receiver::start(Handshake::Pass).await;
    receiver.script(&[Answer::Status(500)]);
    let body = subscription(
        &receiver.url,
        json!({ "filter": { "includedEventTypes": ["Microsoft.Communication.ChatMessageReceivedInThread"] } }),
    );
    assert_eq!(put(&app, "retry", body, true).await.status, 201);
    let (thread, alice, _, _) = three_users(&app).await;
    app.send_message(&alice.1, &thread, "again").await;
    let deliveries = receiver.wait_for_deliveries(2).await;
    assert_eq!(deliveries[0].header("aeg-delivery-count"), "0");
    assert_eq!(deliveries[1].header("aeg-delivery-count"), "1");
    assert_eq!(
        deliveries[0].events()[0]["id"],
        deliveries[1].events()[0]["id"],
        "a retry repeats the event"
    );
    let log = log_deliveries(&app, "ChatMessageReceivedInThread", |d| {
        d[0]["state"] == "delivered"
    })
    .await;
    assert_eq!(log[0]["subscription"], "retry");
    let attempts = log[0]["attempts"].as_array().expect("attempts");
    assert_eq!(attempts.len(), 2);
    assert_eq!(attempts[0]["status"], 500);
    assert_eq!(attempts[1]["status"], 200);
    assert!(attempts[0]["at"].is_string());
}

#[tokio::test]
async fn a_400_is_not_retried_and_the_event_is_dead_lettered_at_once() {
    let app = fast_app().await;
    let receiver = Receiver::start(Handshake::Pass).await;
    receiver.always(Answer::Status(400));
    let body = subscription(
        &receiver.url,
        json!({ "filter": { "includedEventTypes": ["Microsoft.Communication.ChatMessageReceivedInThread"] } }),
    );
    assert_eq!(put(&app, "refuses", body, true).await.status, 201);
    let (thread, alice, _, _) = three_users(&app).await;
    app.send_message(&alice.1, &thread, "no").await;
    let log = log_deliveries(&app, "ChatMessageReceivedInThread", |d| {
        d[0]["state"] == "deadLettered"
    })
    .await;
    assert_eq!(log[0]["attempts"].as_array().map(Vec::len), Some(1));
    // Dead-lettered is final: the one request is all the receiver ever gets.
    assert_eq!(receiver.notifications().len(), 1);
}

#[tokio::test]
async fn failures_end_in_dead_letter_after_max_delivery_attempts() {
    let app = fast_app().await;
    let receiver = Receiver::start(Handshake::Pass).await;
    receiver.always(Answer::Status(500));
    let body = subscription(
        &receiver.url,
        json!({ "filter": { "includedEventTypes": ["Microsoft.Communication.ChatMessageReceivedInThread"] },
                "retryPolicy": { "maxDeliveryAttempts": 3 } }),
    );
    assert_eq!(put(&app, "failing", body, true).await.status, 201);
    let (thread, alice, _, _) = three_users(&app).await;
    app.send_message(&alice.1, &thread, "lost").await;
    let log = log_deliveries(&app, "ChatMessageReceivedInThread", |d| {
        d[0]["state"] == "deadLettered"
    })
    .await;
    assert_eq!(log[0]["attempts"].as_array().map(Vec::len), Some(3));
    let counts: Vec<String> = receiver
        .notifications()
        .iter()
        .map(|d| d.header("aeg-delivery-count").to_owned())
        .collect();
    assert_eq!(counts, ["0", "1", "2"]);
}

#[tokio::test]
async fn filters_select_events_by_type_and_subject_case_insensitively() {
    let app = fast_app().await;
    let alice = app.create_user().await;
    let (bob, _) = app.create_user().await;
    let by_subject = Receiver::start(Handshake::Pass).await;
    let sensitive = Receiver::start(Handshake::Pass).await;
    // Bob's user-level events only, by subject suffix, written in the wrong case.
    let body = subscription(
        &by_subject.url,
        json!({ "filter": { "subjectEndsWith": format!("/recipient/{}", bob.to_uppercase()) } }),
    );
    assert_eq!(put(&app, "bob-only", body, true).await.status, 201);
    let body = subscription(
        &sensitive.url,
        json!({ "filter": { "subjectEndsWith": format!("/recipient/{}", bob.to_uppercase()),
                            "isSubjectCaseSensitive": true } }),
    );
    assert_eq!(put(&app, "a-case-sensitive", body, true).await.status, 201);
    let thread = app.create_thread(&alice.1, "filters", &[&bob]).await;
    app.send_message(&alice.1, &thread, "to bob").await;
    let deliveries = by_subject.wait_for_deliveries(2).await;
    let types: Vec<Value> = deliveries
        .iter()
        .map(|d| d.events()[0]["eventType"].clone())
        .collect();
    assert_eq!(
        types,
        [
            "Microsoft.Communication.ChatThreadCreatedWithUser",
            "Microsoft.Communication.ChatMessageReceived"
        ]
    );
    // Both subscriptions saw both events: the case-sensitive one matched none of them.
    log_deliveries(&app, "ChatMessageReceived", |d| {
        d.as_array().is_some_and(|a| a.len() == 1)
    })
    .await;
    assert!(sensitive.notifications().is_empty());
}

#[tokio::test]
async fn typing_events_go_only_to_subscriptions_that_name_them() {
    let app = fast_app().await;
    let everything = Receiver::start(Handshake::Pass).await;
    let typing = Receiver::start(Handshake::Pass).await;
    assert_eq!(
        put(
            &app,
            "everything",
            subscription(&everything.url, json!({})),
            true
        )
        .await
        .status,
        201
    );
    let body = subscription(
        &typing.url,
        json!({ "filter": { "includedEventTypes": ["Microsoft.Communication.ChatTypingIndicatorReceivedInThread"] } }),
    );
    assert_eq!(put(&app, "typing", body, true).await.status, 201);
    let alice = app.create_user().await;
    let thread = app.create_thread(&alice.1, "typing", &[]).await;
    let reply = app
        .chat(
            Method::POST,
            &format!("/chat/threads/{}/typing", crate::helpers::enc(&thread)),
            &alice.1,
            Some(json!({})),
        )
        .await;
    assert_eq!(reply.status, 200, "{}", reply.text);
    app.send_message(&alice.1, &thread, "after typing").await;
    let typed = typing.wait_for_deliveries(1).await;
    assert_eq!(
        typed[0].events()[0]["eventType"],
        "Microsoft.Communication.ChatTypingIndicatorReceivedInThread"
    );
    // The catch-all one gets the creation and the message, in order, and no typing event.
    let all = everything.wait_for_deliveries(2).await;
    assert!(all.iter().all(|d| !d.body.contains("TypingIndicator")));
    assert!(all[1].body.contains("ChatMessageReceivedInThread"));
}

#[tokio::test]
async fn a_batch_holds_what_is_pending_up_to_max_events_per_batch() {
    let app = fast_app().await;
    let receiver = Receiver::start(Handshake::Pass).await;
    let body = subscription(
        &receiver.url,
        json!({ "destination": { "maxEventsPerBatch": 5 } }),
    );
    assert_eq!(put(&app, "batched", body, true).await.status, 201);
    let alice = app.create_user().await;
    let mut others = Vec::new();
    for _ in 0..5 {
        others.push(app.create_user().await.0);
    }
    let ids: Vec<&str> = others.iter().map(String::as_str).collect();
    // One commit: ChatThreadCreated and five ChatThreadCreatedWithUser.
    app.create_thread(&alice.1, "batch", &ids).await;
    let deliveries = receiver
        .wait_for("six events", |d| {
            d.iter().map(|r| r.events().len()).sum::<usize>() >= 6
        })
        .await;
    let sizes: Vec<usize> = deliveries.iter().map(|d| d.events().len()).collect();
    assert_eq!(sizes, [5, 1], "{sizes:?}");
    assert_eq!(
        deliveries[0].events()[0]["eventType"],
        "Microsoft.Communication.ChatThreadCreated"
    );
}

#[tokio::test]
async fn a_cloud_events_subscription_gets_structured_cloud_events() {
    let app = fast_app().await;
    let single = Receiver::start(Handshake::Pass).await;
    let batched = Receiver::start(Handshake::Pass).await;
    let schema = json!({ "eventDeliverySchema": "CloudEventSchemaV1_0" });
    assert_eq!(
        put(
            &app,
            "cloud-one",
            subscription(&single.url, schema.clone()),
            false
        )
        .await
        .status,
        201
    );
    let mut batch = schema.clone();
    batch["destination"] = json!({ "maxEventsPerBatch": 10 });
    assert_eq!(
        put(
            &app,
            "cloud-batch",
            subscription(&batched.url, batch),
            false
        )
        .await
        .status,
        201
    );
    let (_, alice, _, _) = three_users(&app).await;
    let one = single.wait_for_deliveries(1).await;
    assert_eq!(
        one[0].header("content-type"),
        "application/cloudevents+json; charset=utf-8"
    );
    assert_eq!(one[0].header("aeg-event-type"), "Notification");
    let event = one[0].json();
    assert!(event.is_object());
    assert_eq!(event["specversion"], "1.0");
    assert_eq!(event["source"], DEFAULT_RESOURCE_ARM_ID);
    assert_eq!(event["type"], "Microsoft.Communication.ChatThreadCreated");
    assert_eq!(event["datacontenttype"], "application/json");
    assert!(
        event["subject"]
            .as_str()
            .is_some_and(|s| s.contains(&alice.0))
    );
    assert!(event["time"].is_string() && event["id"].is_string());
    assert!(event["data"]["threadId"].is_string());
    let many = batched.wait_for_deliveries(1).await;
    assert_eq!(
        many[0].header("content-type"),
        "application/cloudevents-batch+json; charset=utf-8"
    );
    assert_eq!(many[0].json().as_array().map(Vec::len), Some(3));
    // The same event, the same id, in both subscriptions.
    assert_eq!(many[0].json()[0]["id"], event["id"]);
}

#[tokio::test]
async fn a_hanging_webhook_leaves_the_chat_api_answering() {
    let app = fast_app().await;
    let receiver = Receiver::start(Handshake::Pass).await;
    receiver.always(Answer::Hang);
    assert_eq!(
        put(&app, "hangs", subscription(&receiver.url, json!({})), true)
            .await
            .status,
        201
    );
    let (thread, alice, _, _) = three_users(&app).await;
    receiver.wait_for_deliveries(1).await;
    // The webhook holds its request; sends still commit and answer.
    for i in 0..3 {
        app.send_message(&alice.1, &thread, &format!("still here {i}"))
            .await;
    }
    let messages = app
        .chat(
            Method::GET,
            &format!("/chat/threads/{}/messages", crate::helpers::enc(&thread)),
            &alice.1,
            None,
        )
        .await;
    assert_eq!(messages.status, 200);
}

#[tokio::test]
async fn a_new_subscription_gets_only_events_committed_after_it() {
    let app = fast_app().await;
    let receiver = Receiver::start(Handshake::Pass).await;
    let alice = app.create_user().await;
    let thread = app.create_thread(&alice.1, "before", &[]).await;
    assert_eq!(
        put(&app, "late", subscription(&receiver.url, json!({})), true)
            .await
            .status,
        201
    );
    let message_id = app.send_message(&alice.1, &thread, "after").await;
    let deliveries = receiver.wait_for_deliveries(1).await;
    assert_eq!(deliveries[0].events()[0]["data"]["messageId"], message_id);
}

#[tokio::test]
async fn subscriptions_survive_reset_and_restart_and_a_pending_delivery_is_sent_after_restart() {
    let dir = tempfile::tempdir().expect("temp dir");
    let receiver = Receiver::start(Handshake::Pass).await;
    receiver.script(&[Answer::Hang]);
    // Unscaled, so the hanging attempt cannot time out (30 s) before the stop.
    let app = TestApp::builder()
        .file_backed()
        .data_dir(dir.path())
        .spawn()
        .await;
    let body = subscription(
        &receiver.url,
        json!({ "filter": { "includedEventTypes": ["Microsoft.Communication.ChatMessageReceivedInThread"] } }),
    );
    assert_eq!(put(&app, "durable", body, true).await.status, 201);
    let reset = app.admin(Method::POST, "/_emulator/reset", None).await;
    assert_eq!(reset.status, 204);
    let (thread, alice, _, _) = three_users(&app).await;
    let message_id = app.send_message(&alice.1, &thread, "survives").await;
    // The first attempt hangs; the emulator stops with it in flight.
    receiver.wait_for_deliveries(1).await;
    app.stop().await;

    let app = TestApp::builder()
        .file_backed()
        .data_dir(dir.path())
        .config(|c| c.event_retry_scale = 0.001)
        .spawn()
        .await;
    let got = app
        .admin(Method::GET, "/_emulator/eventSubscriptions/durable", None)
        .await;
    assert_eq!(got.status, 200, "{}", got.text);
    let deliveries = receiver.wait_for_deliveries(2).await;
    assert_eq!(deliveries[1].events()[0]["data"]["messageId"], message_id);
    // The attempt cut short by the stop was never answered, so it does not count.
    assert_eq!(deliveries[1].header("aeg-delivery-count"), "0");
    log_deliveries(&app, "ChatMessageReceivedInThread", |d| {
        d[0]["state"] == "delivered"
    })
    .await;
    app.stop().await;
}

#[tokio::test]
async fn event_webhook_flags_subscribe_their_urls_to_every_chat_event() {
    let receiver = Receiver::start(Handshake::Pass).await;
    let url = receiver.url.clone();
    let app = TestApp::builder()
        .config(move |c| {
            c.event_retry_scale = 0.001;
            c.event_webhooks = vec![url];
        })
        .spawn()
        .await;
    assert_eq!(
        receiver.records()[0].header("aeg-event-type"),
        "SubscriptionValidation"
    );
    let got = app
        .admin(Method::GET, "/_emulator/eventSubscriptions/webhook-1", None)
        .await;
    assert_eq!(got.status, 200, "{}", got.text);
    assert_eq!(
        got.json()["properties"]["eventDeliverySchema"],
        "EventGridSchema"
    );
    let (thread, alice, _, _) = three_users(&app).await;
    app.send_message(&alice.1, &thread, "flagged").await;
    // Created (1 + 2 recipients) and received (1 + 2).
    let deliveries = receiver.wait_for_deliveries(6).await;
    assert_eq!(deliveries[0].header("aeg-subscription-name"), "WEBHOOK-1");
}

#[tokio::test]
async fn an_event_webhook_that_fails_its_handshake_stops_the_start() {
    let receiver = Receiver::start(Handshake::Refuse).await;
    let dir = tempfile::tempdir().expect("temp dir");
    let mut config = acs_chat_emulator::config::Config::for_tests(dir.path().to_path_buf());
    config.in_memory = true;
    config.event_webhooks = vec![receiver.url.clone()];
    let built =
        acs_chat_emulator::build_app(config, Arc::new(acs_chat_emulator::clock::SystemClock)).await;
    let error = built.err().expect("the start fails");
    assert!(error.to_string().contains("--event-webhook"), "{error}");
}
