//! Results: the probe that records one real emulator response per route (for the axum
//! comparator), the report document (JSON), its Markdown form, the checks against the issue's
//! targets, and `BENCHMARKS.md`.

use std::path::Path;

use serde::Serialize;

use crate::acs::{self, Fixture};
use crate::baseline::{Shape, Shapes};
use crate::http::{Endpoint, Req};
use crate::load::{CellResult, MIX, Op};
use crate::scale::{EmptyStartup, ScaleResult};
use crate::{Settings, procfs};

/// Sends each measured request once to the emulator and keeps its response.
pub async fn probe(endpoint: &Endpoint, fixture: &Fixture) -> anyhow::Result<Shapes> {
    let mut conn = endpoint.connect().await?;
    let seat = &fixture.seats[0];
    let t = &seat.thread_enc;
    let mut shape = async |req: Req| -> anyhow::Result<Shape> {
        let resp = conn.send(&req).await?;
        anyhow::ensure!(
            resp.status.is_success(),
            "probe {} {}: {} {}",
            req.method,
            req.path,
            resp.status,
            String::from_utf8_lossy(&resp.body)
        );
        Ok(Shape {
            status: resp.status.as_u16(),
            body: String::from_utf8_lossy(&resp.body).into_owned(),
            location: resp
                .headers
                .get("location")
                .and_then(|v| v.to_str().ok())
                .map(str::to_owned),
        })
    };
    let create_thread = shape(acs::create_thread_req(
        &seat.token,
        "bench topic",
        std::slice::from_ref(&seat.peer),
    ))
    .await?;
    let created: serde_json::Value = serde_json::from_str(&create_thread.body)?;
    let new_thread = acs::encode(created["chatThread"]["id"].as_str().unwrap_or_default());
    Ok(Shapes {
        get_thread: shape(acs::get_thread_req(&seat.token, t)).await?,
        send_message: shape(acs::send_message_req(&seat.token, t, 0)).await?,
        list_messages: shape(acs::list_messages_req(&seat.token, t)).await?,
        get_message: shape(acs::get_message_req(&seat.token, t, &seat.message)).await?,
        add_participant: shape(acs::add_participant_req(
            &seat.token,
            &new_thread,
            &fixture.addable[0],
        ))
        .await?,
        read_receipt: shape(acs::read_receipt_req(&seat.token, t, &seat.message)).await?,
        create_thread,
    })
}

impl Shapes {
    /// Response body sizes, for the report.
    pub fn sizes(&self) -> serde_json::Value {
        serde_json::json!({
            "createThread": self.create_thread.body.len(),
            "getThread": self.get_thread.body.len(),
            "sendMessage": self.send_message.body.len(),
            "listMessages": self.list_messages.body.len(),
            "getMessage": self.get_message.body.len(),
            "addParticipant": self.add_participant.body.len(),
            "readReceipt": self.read_receipt.body.len(),
        })
    }
}

/// One load cell and the server it ran against.
#[derive(Debug, Clone, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct TargetCell {
    pub server: String,
    pub scheme: String,
    #[serde(flatten)]
    pub cell: CellResult,
}

/// The load part.
#[derive(Debug, Clone, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct LoadReport {
    /// The emulator's banner (name and version).
    pub emulator: String,
    pub startup_to_healthy_ms: f64,
    pub emulator_idle_rss_mb: Option<f64>,
    pub emulator_last_peak_rss_mb: Option<f64>,
    pub response_bytes: serde_json::Value,
    pub prism_error: Option<String>,
    pub cells: Vec<TargetCell>,
    pub half_peak: Vec<CellResult>,
}

/// The scale part.
#[derive(Debug, Clone, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct ScaleReport {
    pub empty: EmptyStartup,
    pub sizes: Vec<ScaleResult>,
}

/// One of the issue's targets and whether this run met it.
#[derive(Debug, Clone, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct TargetCheck {
    pub target: String,
    pub measured: String,
    /// `None` when this run did not measure it.
    pub met: Option<bool>,
}

/// Everything one run found.
#[derive(Debug, Clone, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Report {
    pub date: String,
    pub command: String,
    pub machine: serde_json::Value,
    pub load_average_at_end: String,
    pub emulator_binary: String,
    pub emulator_version: String,
    pub emulator_commit: String,
    pub mode: String,
    pub duration_s: f64,
    pub warmup_s: f64,
    pub conns: Vec<usize>,
    pub mix: Vec<(String, u32)>,
    pub load: Option<LoadReport>,
    pub scale: Option<ScaleReport>,
    pub targets: Vec<TargetCheck>,
}

fn output(cmd: &str, args: &[&str], dir: &Path) -> String {
    std::process::Command::new(cmd)
        .args(args)
        .current_dir(dir)
        .output()
        .ok()
        .filter(|o| o.status.success())
        .map(|o| String::from_utf8_lossy(&o.stdout).trim().to_owned())
        .unwrap_or_default()
}

impl Report {
    /// A report with the run's context and no results yet.
    /// `label` names the emulator's source when it is not the repository's work tree (a binary
    /// given with `--emulator`).
    pub fn new(
        command: &str,
        emulator: &Path,
        repo: &Path,
        label: Option<&str>,
        settings: &Settings,
    ) -> Self {
        let version = output(&emulator.to_string_lossy(), &["--version"], repo);
        let commit = match label {
            Some(label) => label.to_owned(),
            None => {
                let mut commit = format!(
                    "commit {}",
                    output("git", &["rev-parse", "--short", "HEAD"], repo)
                );
                let dirty = [
                    "status",
                    "--porcelain",
                    "--",
                    "src",
                    "migrations",
                    "Cargo.toml",
                    "Cargo.lock",
                ];
                if !output("git", &dirty, repo).is_empty() {
                    commit.push_str(" with uncommitted changes");
                }
                commit
            }
        };
        Report {
            date: time::OffsetDateTime::now_utc()
                .format(&time::format_description::well_known::Rfc3339)
                .unwrap_or_default(),
            command: command.to_owned(),
            machine: procfs::machine(),
            load_average_at_end: String::new(),
            emulator_binary: emulator.display().to_string(),
            emulator_version: version,
            emulator_commit: commit,
            mode: if settings.quick { "quick" } else { "full" }.to_owned(),
            duration_s: settings.duration.as_secs_f64(),
            warmup_s: settings.warmup.as_secs_f64(),
            conns: settings.conns.clone(),
            mix: MIX
                .iter()
                .map(|(op, w)| (op.key().to_owned(), *w))
                .collect(),
            load: None,
            scale: None,
            targets: Vec::new(),
        }
    }

    /// Computes the target checks once all results are in.
    pub fn finish(&mut self) {
        self.load_average_at_end = procfs::machine()["loadAverageAtStart"]
            .as_str()
            .unwrap_or_default()
            .to_owned();
        self.targets = self.check_targets();
    }

    fn cell(&self, server: &str, scheme: &str, op: Op, conns: usize) -> Option<&CellResult> {
        self.load.as_ref()?.cells.iter().find_map(|c| {
            (c.server == server && c.scheme == scheme && c.cell.op == op && c.cell.conns == conns)
                .then_some(&c.cell)
        })
    }

    fn peak(&self, server: &str, scheme: &str, op: Op) -> Option<f64> {
        self.load
            .as_ref()?
            .cells
            .iter()
            .filter(|c| c.server == server && c.scheme == scheme && c.cell.op == op)
            .map(|c| c.cell.rps)
            .reduce(f64::max)
    }

    fn check_targets(&self) -> Vec<TargetCheck> {
        let mut checks = Vec::new();
        for (op, need) in [(Op::SendMessage, 0.5), (Op::Mixed, 0.6)] {
            let (e, a) = (
                self.cell("emulator", "https", op, 32),
                self.cell("axum", "https", op, 32),
            );
            let ratio = e.zip(a).map(|(e, a)| e.rps / a.rps);
            let http = self
                .cell("emulator", "http", op, 32)
                .zip(self.cell("axum", "http", op, 32))
                .map(|(e, a)| e.rps / a.rps);
            checks.push(TargetCheck {
                target: format!(
                    "{} at 32 connections ≥ {:.0}% of bare axum (HTTPS)",
                    op.name(),
                    need * 100.0
                ),
                measured: match (e, a, ratio) {
                    (Some(e), Some(a), Some(r)) => format!(
                        "{:.0} vs {:.0} req/s = {:.0}% (HTTP: {})",
                        e.rps,
                        a.rps,
                        r * 100.0,
                        http.map_or("-".to_owned(), |h| format!("{:.0}%", h * 100.0))
                    ),
                    _ => "not measured".to_owned(),
                },
                met: ratio.map(|r| r >= need),
            });
        }
        if let Some(load) = &self.load
            && !load.half_peak.is_empty()
        {
            let worst = load.half_peak.iter().map(|c| c.p99_ms).fold(0.0, f64::max);
            let failing: Vec<String> = load
                .half_peak
                .iter()
                .filter(|c| c.p99_ms >= 5.0)
                .map(|c| format!("{} {:.1} ms", c.op.name(), c.p99_ms))
                .collect();
            checks.push(TargetCheck {
                target: "p99 < 5 ms for every operation at half of its peak rate (HTTPS)"
                    .to_owned(),
                measured: if failing.is_empty() {
                    format!("worst p99 {worst:.2} ms")
                } else {
                    format!("over: {}", failing.join(", "))
                },
                met: Some(failing.is_empty()),
            });
        }
        if let Some(scale) = &self.scale {
            let small = scale.sizes.iter().min_by_key(|s| s.size.messages_in_thread);
            let big = scale.sizes.iter().max_by_key(|s| s.size.messages_in_thread);
            if let (Some(small), Some(big)) = (small, big)
                && big.size.messages_in_thread > small.size.messages_in_thread
            {
                for op in [Op::ListMessages, Op::SendMessage] {
                    // The worst over the connection counts; below 1 means better than small.
                    let mut worst_rps: f64 = 0.0;
                    let mut worst_p50: f64 = 0.0;
                    let mut worst_p99: f64 = 0.0;
                    for c in big.cells.iter().filter(|c| c.op == op) {
                        if let Some(s) = small
                            .cells
                            .iter()
                            .find(|s| s.op == op && s.conns == c.conns)
                        {
                            worst_rps = worst_rps.max(s.rps / c.rps);
                            worst_p50 = worst_p50.max(c.p50_ms / s.p50_ms);
                            worst_p99 = worst_p99.max(c.p99_ms / s.p99_ms);
                        }
                    }
                    checks.push(TargetCheck {
                            target: format!(
                                "{} within 2× of its {} figures at {} messages",
                                op.name(),
                                count(small.size.messages_in_thread),
                                count(big.size.messages_in_thread)
                            ),
                            measured: format!(
                                "throughput ÷{worst_rps:.2}, p50 ×{worst_p50:.2} (p99 ×{worst_p99:.2}, not judged: noisy)"
                            ),
                            met: Some(worst_rps <= 2.0 && worst_p50 <= 2.0),
                        });
                }
            }
            let first = median(&scale.empty.first_start_ms);
            checks.push(TargetCheck {
                target: "startup to healthy < 150 ms, empty database".to_owned(),
                measured: format!(
                    "{first:.0} ms first start (new data dir, median), {:.0} ms restart",
                    median(&scale.empty.restart_ms)
                ),
                met: Some(first < 150.0 && median(&scale.empty.restart_ms) < 150.0),
            });
            if let Some(big) = scale
                .sizes
                .iter()
                .find(|s| s.size.messages_in_thread >= 1_000_000)
            {
                let m = median(&big.startup_ms);
                checks.push(TargetCheck {
                    target: "startup to healthy < 500 ms with 1M messages".to_owned(),
                    measured: format!(
                        "{m:.0} ms (median of {}; first after import {:.0} ms)",
                        big.startup_ms.len(),
                        big.startup_ms.first().copied().unwrap_or(f64::NAN)
                    ),
                    met: Some(m < 500.0),
                });
            }
            if let Some(idle) = scale.empty.idle_rss_mb {
                checks.push(TargetCheck {
                    target: "idle RSS < 30 MB".to_owned(),
                    measured: format!("{idle:.1} MB (empty database)"),
                    met: Some(idle < 30.0),
                });
            }
        }
        if self
            .load
            .as_ref()
            .is_some_and(|l| l.cells.iter().any(|c| c.server == "prism"))
        {
            let mut worst: Option<(f64, Op)> = None;
            let mut worst_https: Option<(f64, Op)> = None;
            for op in Op::ALL {
                if let Some(p) = self.peak("prism", "http", op) {
                    if let Some(e) = self.peak("emulator", "http", op) {
                        let r = e / p;
                        if worst.is_none_or(|(w, _)| r < w) {
                            worst = Some((r, op));
                        }
                    }
                    if let Some(e) = self.peak("emulator", "https", op) {
                        let r = e / p;
                        if worst_https.is_none_or(|(w, _)| r < w) {
                            worst_https = Some((r, op));
                        }
                    }
                }
            }
            checks.push(TargetCheck {
                target:
                    "≥ 10× Prism's throughput on every route both serve (peak req/s, HTTP vs HTTP)"
                        .to_owned(),
                measured: match (worst, worst_https) {
                    (Some((r, op)), Some((rs, ops))) => format!(
                        "lowest {r:.1}× ({}); emulator HTTPS vs Prism HTTP lowest {rs:.1}× ({})",
                        op.name(),
                        ops.name()
                    ),
                    _ => "not measured".to_owned(),
                },
                met: worst.map(|(r, _)| r >= 10.0),
            });
        } else if let Some(reason) = self.load.as_ref().and_then(|l| l.prism_error.clone()) {
            checks.push(TargetCheck {
                target: "≥ 10× Prism's throughput on every route both serve".to_owned(),
                measured: format!("Prism not run: {reason}"),
                met: None,
            });
        }
        checks
    }

    /// The report as Markdown.
    pub fn markdown(&self) -> String {
        let mut md = String::new();
        let m = &self.machine;
        md.push_str(&format!(
            "Date: {}  \nMachine: {} × {}, {} GiB RAM, Linux {}; load average {} at start, {} at end  \n\
             Command: `{}` ({} mode: {} s per cell after {} s warm-up)  \nEmulator: {} ({})\n\n",
            self.date,
            m["cpus"],
            m["cpuModel"].as_str().unwrap_or("?"),
            m["memoryGiB"],
            m["kernel"].as_str().unwrap_or("?"),
            m["loadAverageAtStart"].as_str().unwrap_or("?"),
            self.load_average_at_end,
            self.command,
            self.mode,
            self.duration_s,
            self.warmup_s,
            self.emulator_version,
            self.emulator_commit,
        ));
        md.push_str("### Targets\n\n| target | measured | met |\n|---|---|---|\n");
        for t in &self.targets {
            md.push_str(&format!(
                "| {} | {} | {} |\n",
                t.target,
                t.measured,
                match t.met {
                    Some(true) => "yes",
                    Some(false) => "**no**",
                    None => "-",
                }
            ));
        }
        md.push('\n');
        if let Some(load) = &self.load {
            self.load_markdown(load, &mut md);
        }
        if let Some(scale) = &self.scale {
            scale_markdown(scale, &mut md);
        }
        md
    }

    fn load_markdown(&self, load: &LoadReport, md: &mut String) {
        let prism = load.cells.iter().any(|c| c.server == "prism");
        md.push_str("### Load: throughput and latency\n\n");
        md.push_str(
            "Closed loop: each of N keep-alive connections sends its next request when the last is \
             answered. Servers: **emulator** (release build, fresh data dir, default flags, logs to \
             /dev/null), **axum** (the limit: same routes, the emulator's own response bodies served \
             as fixed bytes, same axum-server + rustls/ring setup), **Prism** (`prism mock` of the \
             2025-03-15 chat spec, stateless, HTTP only: Prism has no TLS). Ratios are emulator ÷ \
             comparator for the same scheme; Prism is compared over HTTP, and the emulator's HTTPS \
             rows are divided by Prism's HTTP figures. For req/s higher is better; for latency, CPU \
             and RSS lower is better. CPU s/1k = server CPU seconds (user + system) per 1,000 \
             requests; RSS = server peak RSS during the cell.\n\n",
        );
        md.push_str(&format!(
            "Fixture: {} users, each with its own thread ({} messages to start) shared with one \
             other user; every connection acts as one of them. Mixed workload: {}. Add participant \
             adds one existing identity per request and, every {} adds, opens a new thread (untimed). \
             Response bodies (bytes): {}.\n\n",
            self.conns.iter().max().unwrap_or(&0),
            acs::MESSAGES_PER_THREAD,
            self.mix
                .iter()
                .map(|(k, w)| format!("{k} {w}%"))
                .collect::<Vec<_>>()
                .join(", "),
            acs::ADDABLE,
            load.response_bytes
        ));
        // Summary: 32 connections.
        md.push_str("#### Summary at 32 connections\n\n");
        md.push_str("| operation | emulator https req/s | axum https | ratio | emulator http | axum http | ratio |");
        if prism {
            md.push_str(" Prism http | emu http ÷ Prism | emu https ÷ Prism |");
        }
        md.push_str(" emulator https p99 ms | CPU s/1k |\n|---|---|---|---|---|---|---|");
        if prism {
            md.push_str("---|---|---|");
        }
        md.push_str("---|---|\n");
        for op in Op::ALL {
            let e = self.cell("emulator", "https", op, 32);
            let Some(e) = e else { continue };
            let a = self.cell("axum", "https", op, 32);
            let eh = self.cell("emulator", "http", op, 32);
            let ah = self.cell("axum", "http", op, 32);
            let p = self.cell("prism", "http", op, 32);
            md.push_str(&format!(
                "| {} | {} | {} | {} | {} | {} | {} |",
                op.name(),
                int(e.rps),
                a.map_or("-".into(), |a| int(a.rps)),
                ratio(Some(e.rps), a.map(|a| a.rps)),
                eh.map_or("-".into(), |c| int(c.rps)),
                ah.map_or("-".into(), |c| int(c.rps)),
                ratio(eh.map(|c| c.rps), ah.map(|c| c.rps)),
            ));
            if prism {
                md.push_str(&format!(
                    " {} | {} | {} |",
                    p.map_or("-".into(), |c| int(c.rps)),
                    ratio(eh.map(|c| c.rps), p.map(|c| c.rps)),
                    ratio(Some(e.rps), p.map(|c| c.rps)),
                ));
            }
            md.push_str(&format!(
                " {:.2} | {} |\n",
                e.p99_ms,
                opt(e.server_cpu_s_per_1k, 3)
            ));
        }
        md.push('\n');
        md.push_str("#### Every cell\n\n");
        md.push_str(
            "Emulator rows carry their ratios in brackets: `(×A a, ×P p)` = emulator ÷ axum, \
             emulator ÷ Prism.\n\n",
        );
        for op in Op::ALL {
            if !load.cells.iter().any(|c| c.cell.op == op) {
                continue;
            }
            md.push_str(&format!("**{}**\n\n", op.name()));
            md.push_str("| conns | server | req/s | p50 ms | p99 ms | p99.9 ms | errors | CPU s/1k | peak RSS MB |\n|---|---|---|---|---|---|---|---|---|\n");
            for &conns in &self.conns {
                for c in load
                    .cells
                    .iter()
                    .filter(|c| c.cell.op == op && c.cell.conns == conns)
                {
                    let x = &c.cell;
                    if c.server == "emulator" {
                        let a = self.cell("axum", &c.scheme, op, conns);
                        let p = self.cell("prism", "http", op, conns);
                        let both = |f: &dyn Fn(&CellResult) -> Option<f64>, text: String| {
                            let ra = ratio(f(x), a.and_then(f));
                            let rp = ratio(f(x), p.and_then(f));
                            if p.is_some() {
                                format!("{text} (×A {ra}, ×P {rp})")
                            } else {
                                format!("{text} (×A {ra})")
                            }
                        };
                        md.push_str(&format!(
                            "| {conns} | emulator {} | {} | {} | {} | {} | {} | {} | {} |\n",
                            c.scheme,
                            both(&|c| Some(c.rps), int(x.rps)),
                            both(&|c| Some(c.p50_ms), format!("{:.2}", x.p50_ms)),
                            both(&|c| Some(c.p99_ms), format!("{:.2}", x.p99_ms)),
                            both(&|c| Some(c.p999_ms), format!("{:.2}", x.p999_ms)),
                            x.errors,
                            both(&|c| c.server_cpu_s_per_1k, opt(x.server_cpu_s_per_1k, 3)),
                            both(&|c| c.peak_rss_mb, opt(x.peak_rss_mb, 1)),
                        ));
                    } else {
                        md.push_str(&format!(
                            "| {conns} | {} {} | {} | {:.2} | {:.2} | {:.2} | {} | {} | {} |\n",
                            c.server,
                            c.scheme,
                            int(x.rps),
                            x.p50_ms,
                            x.p99_ms,
                            x.p999_ms,
                            x.errors,
                            opt(x.server_cpu_s_per_1k, 3),
                            opt(x.peak_rss_mb, 1),
                        ));
                    }
                }
            }
            md.push('\n');
        }
        let samples: Vec<String> = load
            .cells
            .iter()
            .filter(|c| c.cell.errors > 0)
            .map(|c| {
                format!(
                    "- {} {} {} c={}: {} errors, e.g. `{}`",
                    c.server,
                    c.scheme,
                    c.cell.op.name(),
                    c.cell.conns,
                    c.cell.errors,
                    c.cell
                        .error_samples
                        .first()
                        .map_or("", String::as_str)
                        .replace('|', "/")
                )
            })
            .collect();
        if !samples.is_empty() {
            md.push_str("Errors:\n\n");
            md.push_str(&samples.join("\n"));
            md.push_str("\n\n");
        }
        if let Some(reason) = &load.prism_error {
            md.push_str(&format!("Prism was not run: {reason}\n\n"));
        }
        if !load.half_peak.is_empty() {
            md.push_str("### Latency at half of the peak rate\n\n");
            md.push_str(
                "Open loop over HTTPS: the requests are sent on a fixed schedule at half of the \
                 best closed-loop req/s above, spread over the connections; latency counts from \
                 the scheduled time, so a server that falls behind is charged for the wait.\n\n\
                 | operation | conns | offered req/s | achieved | p50 ms | p99 ms | p99.9 ms | errors | p99 < 5 ms |\n\
                 |---|---|---|---|---|---|---|---|---|\n",
            );
            for c in &load.half_peak {
                md.push_str(&format!(
                    "| {} | {} | {} | {} | {:.2} | {:.2} | {:.2} | {} | {} |\n",
                    c.op.name(),
                    c.conns,
                    c.target_rps.map_or("-".into(), int),
                    int(c.rps),
                    c.p50_ms,
                    c.p99_ms,
                    c.p999_ms,
                    c.errors,
                    if c.p99_ms < 5.0 { "yes" } else { "**no**" }
                ));
            }
            md.push('\n');
        }
        md.push_str(&format!(
            "Emulator of the load run: startup to healthy {:.0} ms, RSS {} MB after the fixture was built.\n\n",
            load.startup_to_healthy_ms,
            opt(load.emulator_idle_rss_mb, 1)
        ));
    }
}

fn scale_markdown(scale: &ScaleReport, md: &mut String) {
    md.push_str("### Scale\n\n");
    md.push_str(&format!(
        "Empty database: startup to healthy {} ms on a new data dir (creates the CA, the database, \
         runs the migrations; median of {}: {}), {} ms on restart (median of {}); idle RSS {} MB.\n\n",
        int(median(&scale.empty.first_start_ms)),
        scale.empty.first_start_ms.len(),
        scale
            .empty
            .first_start_ms
            .iter()
            .map(|v| format!("{v:.0}"))
            .collect::<Vec<_>>()
            .join(", "),
        int(median(&scale.empty.restart_ms)),
        scale.empty.restart_ms.len(),
        opt(scale.empty.idle_rss_mb, 1)
    ));
    md.push_str(
        "Each database: one big thread with 32 participants and N messages, plus many two-person \
         threads with one message each; written as a state document and loaded with \
         `acs-chat-emulator import` (startup is then measured on the imported data dir, the first \
         start right after the import, page cache warm).\n\n\
         | messages in the thread | other threads | document MB | import s | database MB | startup ms (each start) | idle RSS MB | peak RSS MB |\n\
         |---|---|---|---|---|---|---|---|\n",
    );
    for s in &scale.sizes {
        md.push_str(&format!(
            "| {} | {} | {:.0} | {:.1} | {:.0} | {} | {} | {} |\n",
            count(s.size.messages_in_thread),
            count(s.size.other_threads),
            s.document_mb,
            s.import_s,
            s.db_mb,
            s.startup_ms
                .iter()
                .map(|v| format!("{v:.0}"))
                .collect::<Vec<_>>()
                .join(", "),
            opt(s.idle_rss_mb, 1),
            opt(s.peak_rss_mb, 1),
        ));
    }
    md.push('\n');
    let small = scale.sizes.iter().min_by_key(|s| s.size.messages_in_thread);
    let big = scale.sizes.iter().max_by_key(|s| s.size.messages_in_thread);
    if let (Some(small), Some(big)) = (small, big) {
        let dm = big
            .size
            .messages_in_thread
            .saturating_sub(small.size.messages_in_thread);
        if dm > 0 {
            md.push_str(&format!(
                "Database size per million messages: {:.0} MB (difference between the {} and {} databases).\n\n",
                (big.db_mb - small.db_mb) / dm as f64 * 1_000_000.0,
                count(big.size.messages_in_thread),
                count(small.size.messages_in_thread)
            ));
        }
        md.push_str(
            "Send and list (newest page of 50) in the big thread, closed loop over HTTPS; ratios \
             are to the smallest database.\n\n\
             | messages | operation | conns | req/s | p50 ms | p99 ms | p99.9 ms | errors | req/s ÷ smallest | p50 × smallest | p99 × smallest |\n\
             |---|---|---|---|---|---|---|---|---|---|---|\n",
        );
        for s in &scale.sizes {
            for c in &s.cells {
                let base = small
                    .cells
                    .iter()
                    .find(|b| b.op == c.op && b.conns == c.conns);
                md.push_str(&format!(
                    "| {} | {} | {} | {} | {:.2} | {:.2} | {:.2} | {} | {} | {} | {} |\n",
                    count(s.size.messages_in_thread),
                    c.op.name(),
                    c.conns,
                    int(c.rps),
                    c.p50_ms,
                    c.p99_ms,
                    c.p999_ms,
                    c.errors,
                    ratio(Some(c.rps), base.map(|b| b.rps)),
                    ratio(Some(c.p50_ms), base.map(|b| b.p50_ms)),
                    ratio(Some(c.p99_ms), base.map(|b| b.p99_ms)),
                ));
            }
        }
        md.push('\n');
    }
}

fn median(values: &[f64]) -> f64 {
    let mut v = values.to_vec();
    v.sort_by(f64::total_cmp);
    match v.len() {
        0 => f64::NAN,
        n if n % 2 == 1 => v[n / 2],
        n => (v[n / 2 - 1] + v[n / 2]) / 2.0,
    }
}

fn int(v: f64) -> String {
    format!("{:.0}", v.round())
}

fn opt(v: Option<f64>, digits: usize) -> String {
    v.map_or("-".to_owned(), |v| format!("{v:.digits$}"))
}

fn ratio(a: Option<f64>, b: Option<f64>) -> String {
    match (a, b) {
        (Some(a), Some(b)) if b > 0.0 => {
            let r = a / b;
            if r >= 10.0 {
                format!("{r:.0}")
            } else {
                format!("{r:.2}")
            }
        }
        _ => "-".to_owned(),
    }
}

fn count(n: u64) -> String {
    match n {
        n if n >= 1_000_000 && n % 1_000_000 == 0 => format!("{}M", n / 1_000_000),
        n if n >= 1_000 && n % 1_000 == 0 => format!("{}k", n / 1_000),
        n => n.to_string(),
    }
}

/// `BENCHMARKS.md`: how to run, what is measured, and the latest results.
pub fn benchmarks_md(results: &str) -> String {
    format!(
        "# Benchmarks\n\n\
         How fast the emulator is, measured on one machine by `bench/` (a separate crate; it never \
         runs as a test). It starts the emulator's release build on loopback with a fresh data dir, \
         creates users and tokens through the API, and drives it with N concurrent keep-alive \
         connections over HTTPS and plain HTTP; in the same run it drives a bare axum server with \
         the same routes and response bodies (the limit) and Prism (`@stoplight/prism-cli`, pinned \
         in `bench/prism/package.json`) mocking the 2025-03-15 chat spec. Then it loads databases \
         with 1k, 100k and 1M messages in one thread beside 100k other threads (through \
         `acs-chat-emulator import`) and measures startup, size, memory and send/list latency.\n\n\
         ```sh\n\
         cargo run --release --manifest-path bench/Cargo.toml -- --quick   # about 8 minutes\n\
         cargo run --release --manifest-path bench/Cargo.toml              # full run, about 25 minutes\n\
         ```\n\n\
         It builds the emulator with `cargo build --release` first (`--emulator PATH` to use another \
         binary), installs Prism with `npm ci` in `bench/prism/` when needed (`--no-prism` to skip), \
         writes `bench/results/latest.{{md,json}}` (`latest-quick.*` for `--quick`) and rewrites this \
         file. `--help` lists the rest (`--conns`, `--ops`, `--duration`, `--no-scale`, …). Client and \
         servers share the machine's CPUs, as they would in a CI job; numbers from a busy machine \
         are lower and noisier (the load average is printed).\n\n\
         ## Latest results\n\n{results}"
    )
}
