//! The load cells: N keep-alive connections, one task each, driving one operation (or the mixed
//! workload) for a fixed time after a warm-up, closed-loop (each connection sends its next
//! request when the last one is answered) or paced at a fixed total rate. Latency goes into
//! an HDR histogram in microseconds; server CPU and peak RSS come from `/proc`.

use std::time::{Duration, Instant};

use hdrhistogram::Histogram;
use serde::Serialize;

use crate::acs::{self, Fixture, Seat};
use crate::http::{Conn, Endpoint, Req};
use crate::procfs;

/// The operations the benchmark drives.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, PartialOrd, Ord)]
#[serde(rename_all = "camelCase")]
pub enum Op {
    SendMessage,
    ListMessages,
    GetMessage,
    GetThread,
    CreateThread,
    AddParticipant,
    SendReadReceipt,
    Mixed,
}

impl Op {
    /// Every operation, in report order.
    pub const ALL: [Op; 8] = [
        Op::SendMessage,
        Op::ListMessages,
        Op::GetMessage,
        Op::GetThread,
        Op::CreateThread,
        Op::AddParticipant,
        Op::SendReadReceipt,
        Op::Mixed,
    ];

    /// Name in tables, JSON and `--ops`.
    pub fn name(self) -> &'static str {
        match self {
            Op::SendMessage => "send message",
            Op::ListMessages => "list messages (50)",
            Op::GetMessage => "get message",
            Op::GetThread => "get thread",
            Op::CreateThread => "create thread",
            Op::AddParticipant => "add participant",
            Op::SendReadReceipt => "send read receipt",
            Op::Mixed => "mixed",
        }
    }

    /// Short key for `--ops` and JSON.
    pub fn key(self) -> &'static str {
        match self {
            Op::SendMessage => "send",
            Op::ListMessages => "list",
            Op::GetMessage => "get-message",
            Op::GetThread => "get-thread",
            Op::CreateThread => "create-thread",
            Op::AddParticipant => "add-participant",
            Op::SendReadReceipt => "read-receipt",
            Op::Mixed => "mixed",
        }
    }

    /// The success status the service documents.
    fn expected(self) -> u16 {
        match self {
            Op::SendMessage | Op::CreateThread | Op::AddParticipant => 201,
            _ => 200,
        }
    }
}

/// The mixed workload, weighted like a chat client: mostly reading the newest page and
/// sending, with receipts and point reads; creating threads and adding people are rare.
pub const MIX: [(Op, u32); 7] = [
    (Op::ListMessages, 35),
    (Op::SendMessage, 25),
    (Op::SendReadReceipt, 15),
    (Op::GetMessage, 10),
    (Op::GetThread, 10),
    (Op::CreateThread, 3),
    (Op::AddParticipant, 2),
];

/// What one cell runs.
#[derive(Debug, Clone, Copy)]
pub struct CellSpec {
    pub op: Op,
    pub conns: usize,
    pub warmup: Duration,
    pub duration: Duration,
    /// Total requests per second across all connections (open loop), or `None` (closed loop).
    pub rate: Option<f64>,
}

/// What one cell measured.
#[derive(Debug, Clone, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct CellResult {
    pub op: Op,
    pub conns: usize,
    /// Requests started in the measured window.
    pub requests: u64,
    pub errors: u64,
    pub rps: f64,
    pub target_rps: Option<f64>,
    pub p50_ms: f64,
    pub p99_ms: f64,
    pub p999_ms: f64,
    pub max_ms: f64,
    pub server_cpu_s: Option<f64>,
    pub server_cpu_s_per_1k: Option<f64>,
    pub client_cpu_s: Option<f64>,
    pub peak_rss_mb: Option<f64>,
    pub error_samples: Vec<String>,
}

/// Per-connection state: which seat it acts as and what it has created.
struct Worker {
    seat: Seat,
    fixture: Fixture,
    /// The thread `add participant` fills, and the next identity to add to it.
    add_thread: Option<String>,
    add_next: usize,
    counter: u64,
    rng: u64,
}

impl Worker {
    fn new(index: usize, fixture: &Fixture) -> Self {
        Worker {
            seat: fixture.seats[index % fixture.seats.len()].clone(),
            fixture: fixture.clone(),
            add_thread: None,
            add_next: 0,
            counter: (index as u64) << 32,
            rng: 0x9E37_79B9_7F4A_7C15 ^ (index as u64 + 1).wrapping_mul(0xBF58_476D_1CE4_E5B9),
        }
    }

    fn next_random(&mut self) -> u64 {
        // xorshift64*: cheap, and deterministic per connection.
        self.rng ^= self.rng >> 12;
        self.rng ^= self.rng << 25;
        self.rng ^= self.rng >> 27;
        self.rng.wrapping_mul(0x2545_F491_4F6C_DD1D)
    }

    fn pick_mixed(&mut self) -> Op {
        let total: u32 = MIX.iter().map(|(_, w)| w).sum();
        let mut r = (self.next_random() % u64::from(total)) as u32;
        for (op, weight) in MIX {
            if r < weight {
                return op;
            }
            r -= weight;
        }
        Op::ListMessages
    }

    /// Makes sure there is a thread with room for another added participant. Creating one is
    /// setup, not the measured operation: once per [`acs::ADDABLE`] adds, untimed.
    async fn prepare_add(&mut self, conn: &mut Conn) -> anyhow::Result<()> {
        if self.add_thread.is_some() && self.add_next < self.fixture.addable.len() {
            return Ok(());
        }
        let req = acs::create_thread_req(&self.seat.token, "bench add participant", &[]);
        let resp = conn.send(&req).await?;
        // Against the comparators any id will do; they do not look at it.
        let id = resp.json()["chatThread"]["id"]
            .as_str()
            .map_or_else(|| self.seat.thread.clone(), str::to_owned);
        self.add_thread = Some(acs::encode(&id));
        self.add_next = 0;
        Ok(())
    }

    /// The request for `op` (after [`Worker::prepare_add`] for adds).
    fn request(&mut self, op: Op) -> Req {
        let s = &self.seat;
        match op {
            Op::SendMessage => {
                self.counter += 1;
                acs::send_message_req(&s.token, &s.thread_enc, self.counter)
            }
            Op::ListMessages => acs::list_messages_req(&s.token, &s.thread_enc),
            Op::GetMessage => acs::get_message_req(&s.token, &s.thread_enc, &s.message),
            Op::GetThread => acs::get_thread_req(&s.token, &s.thread_enc),
            Op::CreateThread => {
                acs::create_thread_req(&s.token, "bench topic", std::slice::from_ref(&s.peer))
            }
            Op::AddParticipant => {
                let user = &self.fixture.addable[self.add_next];
                self.add_next += 1;
                let thread = self.add_thread.as_deref().unwrap_or(&s.thread_enc);
                acs::add_participant_req(&s.token, thread, user)
            }
            Op::SendReadReceipt => acs::read_receipt_req(&s.token, &s.thread_enc, &s.message),
            Op::Mixed => unreachable!("BUG: mixed is resolved to a concrete op first"),
        }
    }
}

#[derive(Default)]
struct Tally {
    requests: u64,
    errors: u64,
    samples: Vec<String>,
}

impl Tally {
    fn error(&mut self, text: String) {
        self.errors += 1;
        if self.samples.len() < 3 {
            self.samples.push(text);
        }
    }
}

fn new_histogram() -> Histogram<u64> {
    Histogram::new_with_bounds(1, 120_000_000, 3).expect("BUG: valid histogram bounds")
}

/// Runs one cell against `endpoint`; `server_pid` is measured when given.
pub async fn run_cell(
    endpoint: &Endpoint,
    fixture: &Fixture,
    spec: CellSpec,
    server_pid: Option<u32>,
    ticks: f64,
) -> anyhow::Result<CellResult> {
    // Connect first, so TLS handshakes are outside the warm-up and the measurement.
    let mut conns = Vec::with_capacity(spec.conns);
    for _ in 0..spec.conns {
        conns.push(endpoint.connect().await?);
    }
    let base = Instant::now() + Duration::from_millis(20);
    let measure_start = base + spec.warmup;
    let end = measure_start + spec.duration;
    let mut tasks = Vec::with_capacity(spec.conns);
    for (index, conn) in conns.into_iter().enumerate() {
        let mut worker = Worker::new(index, fixture);
        let endpoint = endpoint.clone();
        tasks.push(tokio::spawn(async move {
            let mut conn = conn;
            let mut hist = new_histogram();
            let mut tally = Tally::default();
            tokio::time::sleep_until(base.into()).await;
            let interval = spec.rate.map(|r| spec.conns as f64 / r);
            let mut k: u64 = 0;
            loop {
                // Open loop: request k of this connection is due at a fixed time, and its latency
                // counts from then (no coordinated omission when the server falls behind).
                let (due, record) = match interval {
                    Some(iv) => {
                        let offset = (k as f64 + index as f64 / spec.conns as f64) * iv;
                        let due = base + Duration::from_secs_f64(offset);
                        // A server that fell far behind does not get to stretch the cell.
                        if due >= end || Instant::now() >= end + Duration::from_secs(2) {
                            break;
                        }
                        tokio::time::sleep_until(due.into()).await;
                        (due, due >= measure_start)
                    }
                    None => {
                        let now = Instant::now();
                        if now >= end {
                            break;
                        }
                        (now, now >= measure_start)
                    }
                };
                k += 1;
                let op = if spec.op == Op::Mixed {
                    worker.pick_mixed()
                } else {
                    spec.op
                };
                if op == Op::AddParticipant
                    && let Err(e) = worker.prepare_add(&mut conn).await
                {
                    tally.error(format!("creating a thread to add to: {e:#}"));
                    reconnect(&endpoint, &mut conn, end).await;
                    continue;
                }
                let req = worker.request(op);
                let due = if interval.is_some() {
                    due
                } else {
                    Instant::now()
                };
                let outcome = conn.send(&req).await;
                let elapsed = due.elapsed();
                if !record {
                    if outcome.is_err() {
                        reconnect(&endpoint, &mut conn, end).await;
                    }
                    continue;
                }
                tally.requests += 1;
                let _ = hist.record((elapsed.as_micros() as u64).max(1));
                match outcome {
                    Ok(resp) if resp.status.as_u16() == op.expected() => {}
                    Ok(resp) => tally.error(format!(
                        "{} → {} {}",
                        op.key(),
                        resp.status,
                        String::from_utf8_lossy(&resp.body[..resp.body.len().min(200)])
                    )),
                    Err(e) => {
                        tally.error(format!("{}: {e:#}", op.key()));
                        reconnect(&endpoint, &mut conn, end).await;
                    }
                }
            }
            (hist, tally)
        }));
    }
    tokio::time::sleep_until(measure_start.into()).await;
    let cpu0 = server_pid.and_then(|p| procfs::cpu_seconds(p, ticks));
    let client0 = procfs::cpu_seconds(std::process::id(), ticks);
    // Where the peak cannot be reset it covers the whole life of the process.
    if let Some(pid) = server_pid {
        procfs::reset_peak(pid);
    }
    tokio::time::sleep_until(end.into()).await;
    let cpu1 = server_pid.and_then(|p| procfs::cpu_seconds(p, ticks));
    let client1 = procfs::cpu_seconds(std::process::id(), ticks);
    let peak = server_pid.and_then(procfs::peak_rss_bytes);
    let mut hist = new_histogram();
    let mut tally = Tally::default();
    for task in tasks {
        let (h, t) = task.await?;
        hist.add(&h).expect("BUG: same histogram bounds");
        tally.requests += t.requests;
        tally.errors += t.errors;
        for s in t.samples {
            if tally.samples.len() < 3 {
                tally.samples.push(s);
            }
        }
    }
    let secs = spec.duration.as_secs_f64();
    let ms = |q: f64| hist.value_at_quantile(q) as f64 / 1000.0;
    let server_cpu = match (cpu0, cpu1) {
        (Some(a), Some(b)) => Some(b - a),
        _ => None,
    };
    Ok(CellResult {
        op: spec.op,
        conns: spec.conns,
        requests: tally.requests,
        errors: tally.errors,
        rps: tally.requests as f64 / secs,
        target_rps: spec.rate,
        p50_ms: ms(0.5),
        p99_ms: ms(0.99),
        p999_ms: ms(0.999),
        max_ms: hist.max() as f64 / 1000.0,
        server_cpu_s: server_cpu,
        server_cpu_s_per_1k: server_cpu
            .filter(|_| tally.requests > 0)
            .map(|c| c * 1000.0 / tally.requests as f64),
        client_cpu_s: match (client0, client1) {
            (Some(a), Some(b)) => Some(b - a),
            _ => None,
        },
        peak_rss_mb: peak.map(|b| b as f64 / 1024.0 / 1024.0),
        error_samples: tally.samples,
    })
}

/// Replaces a broken connection, retrying until `end`.
async fn reconnect(endpoint: &Endpoint, conn: &mut Conn, end: Instant) {
    while Instant::now() < end {
        match endpoint.connect().await {
            Ok(c) => {
                *conn = c;
                return;
            }
            Err(_) => tokio::time::sleep(Duration::from_millis(10)).await,
        }
    }
}
