//! The Event Grid dispatcher (design.md decision 12, events.md): webhook subscriptions and the
//! delivery of committed chat events to them. It reads the outbox (`events`) after each commit,
//! queues a delivery per matching (event, subscription) in the store, and runs one worker per
//! subscription that sends them in commit order, one request at a time, with Event Grid's
//! retries and dead-lettering. Never on the request path: a slow or hanging webhook delays only
//! its own deliveries. Owns no HTTP routes (`src/api/event_subscriptions.rs`) and no SQL.

mod delivery;
mod subscription;

use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;

use serde::Deserialize;
use tokio::sync::{Notify, watch};
use tokio::task::JoinHandle;

use crate::chat::{EventSignal, Signalled};
use crate::clock::{Clock, Micros, to_wire_precise};
use crate::error::{ApiError, ApiResult};
use crate::store::{self, DeliveryAttempt, DueDeliveryRow, Store};
pub use subscription::{Subscription, valid_name};

/// Events the dispatcher reads from the outbox at a time.
const FAN_OUT_BATCH: u32 = 512;
/// The longest a worker sleeps before looking again (a moved clock, a missed wake-up).
const MAX_IDLE: Duration = Duration::from_secs(60);

/// Where a subscription came from.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Origin {
    /// `PUT /_emulator/eventSubscriptions/{name}`.
    Api,
    /// `--event-webhook`: replaced at each start.
    Flag,
}

impl Origin {
    fn name(self) -> &'static str {
        match self {
            Origin::Api => "api",
            Origin::Flag => "flag",
        }
    }
}

/// Handle to the dispatcher; cheap to clone.
#[derive(Clone)]
pub struct EventGrid(Arc<Inner>);

struct Inner {
    store: Store,
    clock: Arc<dyn Clock>,
    /// The ARM id: `topic` of the events and of the subscriptions.
    topic: String,
    /// `--event-retry-scale`.
    scale: f64,
    client: reqwest::Client,
    /// Subscriptions were added, replaced or deleted.
    changed: Notify,
    signal: EventSignal,
}

impl EventGrid {
    /// A dispatcher over `store`, woken by `signal`; `scale` multiplies every retry wait, the
    /// time to live and the response timeout.
    pub fn new(
        store: Store,
        clock: Arc<dyn Clock>,
        topic: String,
        scale: f64,
        signal: EventSignal,
    ) -> anyhow::Result<Self> {
        let client = reqwest::Client::builder()
            // Deliveries go to the configured URL and nowhere else: no redirects, no proxy
            // from the environment (HTTP_PROXY would send loopback traffic elsewhere).
            .redirect(reqwest::redirect::Policy::none())
            .no_proxy()
            .build()?;
        Ok(EventGrid(Arc::new(Inner {
            store,
            clock,
            topic,
            scale,
            client,
            changed: Notify::new(),
            signal,
        })))
    }

    /// The response timeout: Event Grid's 30 s, scaled, never below 1 s (events.md §10: a
    /// loopback receiver must not time out at 30 ms).
    fn timeout(&self) -> Duration {
        Duration::from_secs_f64((delivery::RESPONSE_TIMEOUT_SECS * self.0.scale).max(1.0))
    }

    fn scaled_micros(&self, secs: f64) -> Micros {
        (secs * self.0.scale * 1e6).round() as Micros
    }

    /// The topic (ARM id) subscriptions name.
    pub fn topic(&self) -> &str {
        &self.0.topic
    }

    /// Runs the validation handshake of `subscription` (events.md §6); `Err` says why it failed.
    pub async fn validate(&self, name: &str, subscription: &Subscription) -> Result<(), String> {
        let now = to_wire_precise(self.0.clock.now_micros());
        delivery::handshake(
            &self.0.client,
            self.timeout(),
            name,
            subscription,
            &self.0.topic,
            &now,
        )
        .await
    }

    /// Stores `subscription` under `name`; true when it was created. Workers notice at once.
    pub async fn put(
        &self,
        name: &str,
        subscription: &Subscription,
        origin: Origin,
    ) -> ApiResult<bool> {
        let definition = serde_json::to_string(subscription).map_err(anyhow::Error::from)?;
        let (name, now) = (name.to_owned(), self.0.clock.now_micros());
        let created = self
            .0
            .store
            .write(move |tx| {
                tx.upsert_event_subscription(&name, &definition, origin.name(), now)
                    .map_err(ApiError::from)
            })
            .await?;
        self.0.changed.notify_one();
        Ok(created)
    }

    /// Deletes a subscription and its deliveries; true when there was one.
    pub async fn delete(&self, name: &str) -> ApiResult<bool> {
        let name = name.to_owned();
        let deleted = self
            .0
            .store
            .write(move |tx| tx.delete_event_subscription(&name).map_err(ApiError::from))
            .await?;
        self.0.changed.notify_one();
        Ok(deleted)
    }

    /// One subscription.
    pub fn get(&self, name: &str) -> ApiResult<Option<Subscription>> {
        let row = self
            .0
            .store
            .read(|view| view.get_event_subscription(name))?;
        row.map(|row| definition(&row.definition))
            .transpose()
            .map_err(ApiError::from)
    }

    /// Every subscription, by name.
    pub fn list(&self) -> ApiResult<Vec<(String, Subscription)>> {
        let rows = self.0.store.read(|view| view.list_event_subscriptions())?;
        rows.into_iter()
            .map(|row| Ok((row.name, definition(&row.definition)?)))
            .collect::<anyhow::Result<_>>()
            .map_err(ApiError::from)
    }

    /// `--event-webhook`: subscribes each URL (`webhook-1`, `webhook-2`, …) to every chat event
    /// in the Event Grid schema after its handshake, and drops the ones of an earlier run that
    /// are no longer given.
    pub async fn configure_webhooks(&self, urls: &[String]) -> anyhow::Result<()> {
        let mut names = Vec::new();
        for (i, url) in urls.iter().enumerate() {
            let name = format!("webhook-{}", i + 1);
            let subscription = Subscription::webhook(url)
                .map_err(|e| anyhow::anyhow!("--event-webhook {url}: {e}"))?;
            self.validate(&name, &subscription)
                .await
                .map_err(|reason| anyhow::anyhow!("--event-webhook {url}: {reason}"))?;
            self.put(&name, &subscription, Origin::Flag)
                .await
                .map_err(|e| anyhow::anyhow!("--event-webhook {url}: {e}"))?;
            names.push(name);
        }
        self.0
            .store
            .write(move |tx| tx.delete_flag_subscriptions_except(&names))
            .await?;
        Ok(())
    }

    /// Starts dispatching; the task ends when the event signal closes (shutdown), after its
    /// workers. A delivery in flight then is dropped and stays pending: it is sent again after
    /// the next start (at least once, events.md §5).
    pub fn spawn(&self) -> JoinHandle<()> {
        let grid = self.clone();
        tokio::spawn(async move { grid.run().await })
    }

    async fn run(self) {
        let mut signal = self.0.signal.subscribe();
        let mut workers: HashMap<String, (Arc<Notify>, JoinHandle<()>)> = HashMap::new();
        loop {
            let changed = self.0.changed.notified();
            tokio::pin!(changed);
            changed.as_mut().enable();
            if signal.borrow_and_update().closed {
                break;
            }
            match self.fan_out().await {
                Ok(names) => {
                    workers.retain(|name, (_, task)| names.contains(name) || !task.is_finished());
                    for name in names {
                        let (notify, _) = workers.entry(name.clone()).or_insert_with(|| {
                            let notify = Arc::new(Notify::new());
                            let task = tokio::spawn(self.clone().work(
                                name,
                                Arc::clone(&notify),
                                self.0.signal.subscribe(),
                            ));
                            (notify, task)
                        });
                        notify.notify_one();
                    }
                }
                Err(error) => tracing::warn!(%error, "event delivery: reading events failed"),
            }
            tokio::select! {
                changed = signal.changed() => if changed.is_err() { break },
                () = &mut changed => {}
            }
        }
        for (_, (_, task)) in workers {
            let _ = task.await;
        }
    }

    /// Queues the deliveries of the events committed since each subscription's position;
    /// returns the names of the subscriptions.
    async fn fan_out(&self) -> Result<Vec<String>, store::Error> {
        let rows = self.0.store.read(|view| view.list_event_subscriptions())?;
        let mut names = Vec::with_capacity(rows.len());
        for row in rows {
            let Ok(subscription) = definition(&row.definition) else {
                tracing::warn!(
                    subscription = row.name,
                    "event delivery: unreadable definition"
                );
                continue;
            };
            let mut position = row.position;
            loop {
                let events = self
                    .0
                    .store
                    .read(|view| view.events_after(position, FAN_OUT_BATCH))?;
                let Some(last) = events.last().map(|e| e.sequence) else {
                    break;
                };
                let matching: Vec<i64> = events
                    .iter()
                    .filter(|e| subscription.matches(&e.event_type, &subject(&e.envelope)))
                    .map(|e| e.sequence)
                    .collect();
                let (name, now) = (row.name.clone(), self.0.clock.now_micros());
                self.0
                    .store
                    .write(move |tx| tx.queue_deliveries(&name, position, last, &matching, now))
                    .await?;
                position = last;
                if events.len() < FAN_OUT_BATCH as usize {
                    break;
                }
            }
            names.push(row.name);
        }
        Ok(names)
    }

    /// One subscription's deliveries, in commit order, one request at a time, until the
    /// subscription is deleted or the emulator shuts down.
    async fn work(self, name: String, wake: Arc<Notify>, mut signal: watch::Receiver<Signalled>) {
        loop {
            let woken = wake.notified();
            tokio::pin!(woken);
            woken.as_mut().enable();
            if signal.borrow().closed {
                return;
            }
            let idle = match self.deliver_next(&name, &mut signal).await {
                Ok(Step::Sent) => continue,
                Ok(Step::Gone) | Ok(Step::Stopped) => return,
                Ok(Step::Idle(next_due)) => next_due,
                Err(error) => {
                    tracing::warn!(%error, subscription = name, "event delivery: store failed");
                    Some(self.0.clock.now_micros() + 1_000_000)
                }
            };
            let wait = idle
                .map(|due| {
                    let micros = (due - self.0.clock.now_micros()).max(0);
                    Duration::from_micros(u64::try_from(micros).unwrap_or(0)).min(MAX_IDLE)
                })
                .unwrap_or(MAX_IDLE);
            tokio::select! {
                () = &mut woken => {}
                () = tokio::time::sleep(wait) => {}
                _ = signal.wait_for(|s| s.closed) => return,
            }
        }
    }

    /// Sends the next batch of `name` if one is due.
    async fn deliver_next(
        &self,
        name: &str,
        signal: &mut watch::Receiver<Signalled>,
    ) -> Result<Step, store::Error> {
        let Some(row) = self
            .0
            .store
            .read(|view| view.get_event_subscription(name))?
        else {
            return Ok(Step::Gone);
        };
        let Ok(subscription) = definition(&row.definition) else {
            return Ok(Step::Gone);
        };
        let now = self.0.clock.now_micros();
        let due = self
            .0
            .store
            .read(|view| view.due_deliveries(name, now, subscription.max_events_per_batch))?;
        if due.is_empty() {
            let next = self.0.store.read(|view| view.next_delivery_due(name))?;
            return Ok(Step::Idle(next));
        }
        let ttl_micros =
            self.scaled_micros(f64::from(subscription.event_time_to_live_in_minutes) * 60.0);
        // Events whose time to live ran out before an attempt are dead-lettered unsent.
        let (expired, live): (Vec<&DueDeliveryRow>, Vec<&DueDeliveryRow>) =
            due.iter().partition(|d| d.queued_at + ttl_micros < now);
        if !expired.is_empty() {
            let sequences: Vec<i64> = expired.iter().map(|d| d.sequence).collect();
            let name = name.to_owned();
            self.0
                .store
                .write(move |tx| tx.expire_deliveries(&name, &sequences))
                .await?;
            return Ok(Step::Sent);
        }
        let batch = batch(&live, &subscription);
        let envelopes: Vec<&str> = batch.iter().map(|d| d.envelope.as_str()).collect();
        let delivery_count = batch[0].attempt_count;
        let answer = tokio::select! {
            answer = delivery::send(
                &self.0.client,
                self.timeout(),
                name,
                &subscription,
                &envelopes,
                delivery_count,
            ) => answer,
            _ = signal.wait_for(|s| s.closed) => return Ok(Step::Stopped),
        };
        let after = self.0.clock.now_micros();
        let failures = delivery_count + 1;
        let (state, next_attempt_at) = if answer.delivered() {
            ("delivered", after)
        } else {
            let next = after + self.scaled_micros(answer.retry_wait_secs(failures) as f64);
            let expires = batch.iter().map(|d| d.queued_at).min().unwrap_or(after) + ttl_micros;
            if answer.final_failure()
                || failures >= subscription.max_delivery_attempts
                || next > expires
            {
                ("deadLettered", after)
            } else {
                ("retrying", next)
            }
        };
        match state {
            "delivered" => tracing::debug!(
                subscription = name,
                events = batch.len(),
                "events delivered"
            ),
            "deadLettered" => tracing::warn!(
                subscription = name,
                events = batch.len(),
                ?answer,
                attempts = failures,
                "events dead-lettered"
            ),
            _ => tracing::info!(
                subscription = name,
                events = batch.len(),
                ?answer,
                attempts = failures,
                "event delivery failed; will retry"
            ),
        }
        let attempt = DeliveryAttempt {
            attempt: answer.to_log(&to_wire_precise(after)).to_string(),
            state,
            next_attempt_at,
        };
        let sequences: Vec<i64> = batch.iter().map(|d| d.sequence).collect();
        let name = name.to_owned();
        self.0
            .store
            .write(move |tx| tx.record_delivery_attempt(&name, &sequences, &attempt))
            .await?;
        Ok(Step::Sent)
    }
}

/// What a worker did.
enum Step {
    /// A batch went out (or expired): look again at once.
    Sent,
    /// Nothing due; the next delivery is due then (if any).
    Idle(Option<Micros>),
    /// The subscription is deleted.
    Gone,
    /// The emulator is shutting down.
    Stopped,
}

/// The next batch: the first due delivery, and the due ones after it with the same delivery
/// count (one `aeg-delivery-count` per request), within `maxEventsPerBatch` and, except for a
/// first event that is larger alone, `preferredBatchSizeInKilobytes` (delivery doc). What is
/// due now goes; nothing waits to fill a batch.
fn batch<'d>(due: &[&'d DueDeliveryRow], subscription: &Subscription) -> Vec<&'d DueDeliveryRow> {
    let limit_bytes = subscription.preferred_batch_size_in_kilobytes as usize * 1024;
    let mut out: Vec<&DueDeliveryRow> = Vec::new();
    let mut bytes = 0;
    for delivery in due {
        if out.len() >= subscription.max_events_per_batch as usize {
            break;
        }
        if let Some(first) = out.first()
            && (first.attempt_count != delivery.attempt_count
                || bytes + delivery.envelope.len() > limit_bytes)
        {
            break;
        }
        bytes += delivery.envelope.len();
        out.push(delivery);
    }
    out
}

fn definition(text: &str) -> anyhow::Result<Subscription> {
    Ok(serde_json::from_str(text)?)
}

/// The `subject` of an envelope.
fn subject(envelope: &str) -> String {
    #[derive(Deserialize)]
    struct Head {
        subject: String,
    }
    serde_json::from_str::<Head>(envelope)
        .map(|h| h.subject)
        .unwrap_or_default()
}
