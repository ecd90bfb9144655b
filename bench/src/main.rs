//! `acs-chat-bench`: starts the emulator's release build on loopback, drives it with keep-alive
//! clients over HTTPS and HTTP, does the same to a bare axum server and to Prism for
//! comparison, runs the scale cases, and writes the results as Markdown and JSON.
//!
//! A benchmark that prints numbers, never a timed test: it fails only when it cannot run.

mod acs;
mod baseline;
mod http;
mod load;
mod procfs;
mod report;
mod scale;
mod server;

use std::path::{Path, PathBuf};
use std::time::Duration;

use anyhow::{Context, bail};
use clap::{Parser, Subcommand};

use crate::http::Endpoint;
use crate::load::{CellResult, CellSpec, Op};
use crate::report::{LoadReport, Report, ScaleReport, TargetCell};

/// Load and scale benchmark of acs-chat-emulator.
#[derive(Debug, Parser)]
#[command(version, about)]
struct Cli {
    #[command(subcommand)]
    command: Option<Command>,
    #[command(flatten)]
    run: RunArgs,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Run the benchmark (the default).
    Run(RunArgs),
    /// Internal: the bare axum comparator, started by `run`.
    #[command(hide = true)]
    BaselineServer(baseline::BaselineArgs),
}

#[derive(Debug, Clone, clap::Args)]
struct RunArgs {
    /// About 8 minutes in all: 1 s load cells, 2 s scale cells, 3 startups (the same database
    /// sizes). The default is the full run (about 25 minutes).
    #[arg(long)]
    quick: bool,
    /// Seconds measured per load cell (default 5; 1 with --quick).
    #[arg(long)]
    duration: Option<f64>,
    /// Seconds of warm-up before each cell (default 1; 0.3 with --quick).
    #[arg(long)]
    warmup: Option<f64>,
    /// Connection counts of the load cells.
    #[arg(long, value_delimiter = ',', default_value = "1,8,32,128")]
    conns: Vec<usize>,
    /// Operations to run (send, list, get-message, get-thread, create-thread,
    /// add-participant, read-receipt, mixed); all by default.
    #[arg(long, value_delimiter = ',')]
    ops: Vec<String>,
    /// The emulator binary; default `<repo>/target/release/acs-chat-emulator`, built first
    /// with `cargo build --release` unless --no-build.
    #[arg(long)]
    emulator: Option<PathBuf>,
    /// What the report says the `--emulator` binary was built from (default: the
    /// repository's commit).
    #[arg(long)]
    emulator_source: Option<String>,
    /// Do not run `cargo build --release` for the emulator.
    #[arg(long)]
    no_build: bool,
    /// Skip the load cells.
    #[arg(long)]
    no_load: bool,
    /// Skip the scale runs.
    #[arg(long)]
    no_scale: bool,
    /// Skip Prism.
    #[arg(long)]
    no_prism: bool,
    /// Messages in the big thread of each scale run (default 1000,100000,1000000).
    #[arg(long, value_delimiter = ',')]
    scale_messages: Vec<u64>,
    /// Other threads in each scale database (default 100000).
    #[arg(long)]
    scale_threads: Option<u64>,
    /// Where results go (default `bench/results`).
    #[arg(long)]
    out: Option<PathBuf>,
    /// Do not rewrite `BENCHMARKS.md` at the repository root.
    #[arg(long)]
    no_benchmarks_md: bool,
    /// Scratch directory for data dirs and documents (default: a new one under the system temp
    /// dir, removed at the end).
    #[arg(long)]
    work_dir: Option<PathBuf>,
}

/// Settings after defaults.
#[derive(Debug, Clone)]
pub struct Settings {
    pub quick: bool,
    pub duration: Duration,
    pub warmup: Duration,
    pub conns: Vec<usize>,
    pub ops: Vec<Op>,
    pub scale_messages: Vec<u64>,
    pub scale_threads: u64,
    pub scale_conns: Vec<usize>,
    pub scale_duration: Duration,
    pub starts: usize,
}

fn main() -> anyhow::Result<()> {
    let cli = Cli::parse();
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()?;
    match cli.command {
        Some(Command::BaselineServer(args)) => runtime.block_on(baseline::serve(args)),
        Some(Command::Run(args)) => runtime.block_on(run(args)),
        None => runtime.block_on(run(cli.run)),
    }
}

fn bench_dir() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

fn repo_dir() -> PathBuf {
    bench_dir()
        .parent()
        .map_or_else(|| PathBuf::from(".."), Path::to_path_buf)
}

fn settings(args: &RunArgs) -> anyhow::Result<Settings> {
    let quick = args.quick;
    let secs = |v: Option<f64>, full: f64, q: f64| {
        Duration::from_secs_f64(v.unwrap_or(if quick { q } else { full }))
    };
    let ops = if args.ops.is_empty() {
        Op::ALL.to_vec()
    } else {
        let mut ops = Vec::new();
        for key in &args.ops {
            match Op::ALL.iter().find(|o| o.key() == key) {
                Some(op) => ops.push(*op),
                None => bail!("unknown --ops entry {key}"),
            }
        }
        ops
    };
    Ok(Settings {
        quick,
        duration: secs(args.duration, 5.0, 1.0),
        warmup: secs(args.warmup, 1.0, 0.3),
        conns: args.conns.clone(),
        ops,
        scale_messages: if args.scale_messages.is_empty() {
            vec![1_000, 100_000, 1_000_000]
        } else {
            args.scale_messages.clone()
        },
        scale_threads: args.scale_threads.unwrap_or(100_000),
        scale_conns: vec![1, 32],
        scale_duration: secs(args.duration, 5.0, 2.0),
        starts: if quick { 3 } else { 5 },
    })
}

async fn run(args: RunArgs) -> anyhow::Result<()> {
    let _ = rustls::crypto::ring::default_provider().install_default();
    let settings = settings(&args)?;
    let command = std::env::args()
        .map(|a| if a.contains(' ') { format!("'{a}'") } else { a })
        .collect::<Vec<_>>()
        .join(" ");
    let emulator = match &args.emulator {
        Some(path) => path.clone(),
        None => {
            if !args.no_build {
                build_emulator()?;
            }
            repo_dir().join("target/release/acs-chat-emulator")
        }
    };
    let emulator = std::path::absolute(&emulator)?;
    anyhow::ensure!(
        emulator.exists(),
        "{} does not exist (cargo build --release, or --emulator PATH)",
        emulator.display()
    );
    let work_owned = args.work_dir.is_none();
    let work = match &args.work_dir {
        Some(dir) => dir.clone(),
        None => std::env::temp_dir().join(format!("acs-chat-bench-{}", std::process::id())),
    };
    std::fs::create_dir_all(&work)?;
    let ticks = procfs::clock_ticks();
    let mut report = Report::new(
        &command,
        &emulator,
        &repo_dir(),
        args.emulator_source.as_deref(),
        &settings,
    );
    eprintln!(
        "acs-chat-bench: emulator {} ({}), work dir {}",
        emulator.display(),
        report.emulator_version,
        work.display()
    );

    let outcome = async {
        if !args.no_load {
            let load = load_phase(&settings, &emulator, &work, ticks, !args.no_prism).await?;
            if report.emulator_version.is_empty() {
                report.emulator_version = load.emulator.clone();
            }
            report.load = Some(load);
        }
        if !args.no_scale {
            report.scale = Some(scale_phase(&settings, &emulator, &work, ticks).await?);
        }
        anyhow::Ok(())
    }
    .await;
    if work_owned {
        std::fs::remove_dir_all(&work).ok();
    }
    outcome?;
    report.finish();

    let out = args
        .out
        .clone()
        .unwrap_or_else(|| bench_dir().join("results"));
    std::fs::create_dir_all(&out)?;
    let markdown = report.markdown();
    let json = serde_json::to_string_pretty(&report)?;
    let stem = if settings.quick {
        "latest-quick"
    } else {
        "latest"
    };
    std::fs::write(out.join(format!("{stem}.md")), &markdown)?;
    std::fs::write(out.join(format!("{stem}.json")), json + "\n")?;
    if !args.no_benchmarks_md {
        let path = repo_dir().join("BENCHMARKS.md");
        std::fs::write(&path, report::benchmarks_md(&markdown))?;
        eprintln!("wrote {}", path.display());
    }
    println!("{markdown}");
    eprintln!("results: {}", out.join(format!("{stem}.md")).display());
    Ok(())
}

/// `cargo build --release --bin acs-chat-emulator` in the repository.
fn build_emulator() -> anyhow::Result<()> {
    eprintln!("building the emulator (cargo build --release)…");
    let status =
        std::process::Command::new(std::env::var("CARGO").unwrap_or_else(|_| "cargo".to_owned()))
            .args(["build", "--release", "--bin", "acs-chat-emulator"])
            .current_dir(repo_dir())
            // The bench's own target dir must not leak into the emulator's build.
            .env_remove("CARGO_TARGET_DIR")
            .status()
            .context("running cargo")?;
    anyhow::ensure!(status.success(), "cargo build --release failed");
    Ok(())
}

/// A server the load cells can target.
struct Target {
    server: &'static str,
    endpoint: Endpoint,
    pid: u32,
}

async fn load_phase(
    settings: &Settings,
    emulator_bin: &Path,
    work: &Path,
    ticks: f64,
    with_prism: bool,
) -> anyhow::Result<LoadReport> {
    eprintln!("load: starting the emulator");
    let emu = server::start_emulator(emulator_bin, &work.join("load-data"), None).await?;
    let https = Endpoint::https(emu.https, &emu.ca_pem)?;
    let http = Endpoint::http(emu.http);
    let max_conns = settings.conns.iter().copied().max().unwrap_or(1);
    let started = std::time::Instant::now();
    let fixture = acs::build_fixture(&https, &emu.access_key, max_conns, 8).await?;
    eprintln!(
        "load: fixture of {} users/threads ({} messages each) in {:.1} s",
        fixture.seats.len(),
        acs::MESSAGES_PER_THREAD,
        started.elapsed().as_secs_f64()
    );
    let shapes = report::probe(&https, &fixture).await?;
    let shapes_file = work.join("shapes.json");
    std::fs::write(&shapes_file, serde_json::to_vec(&shapes)?)?;
    let base = server::start_baseline(&shapes_file, work).await?;
    let prism_dir = bench_dir().join("prism");
    let (prism, prism_error) = if with_prism {
        match start_prism(&prism_dir, work).await {
            Ok(p) => (Some(p), None),
            Err(e) => {
                eprintln!("load: Prism is skipped: {e:#}");
                (None, Some(format!("{e:#}")))
            }
        }
    } else {
        (None, Some("skipped (--no-prism)".to_owned()))
    };
    let mut targets = vec![
        Target {
            server: "emulator",
            endpoint: https.clone(),
            pid: emu.server.pid,
        },
        Target {
            server: "emulator",
            endpoint: http.clone(),
            pid: emu.server.pid,
        },
        Target {
            server: "axum",
            endpoint: Endpoint::https(base.https, &base.ca_pem)?,
            pid: base.server.pid,
        },
        Target {
            server: "axum",
            endpoint: Endpoint::http(base.http),
            pid: base.server.pid,
        },
    ];
    if let Some(p) = &prism {
        targets.push(Target {
            server: "prism",
            endpoint: Endpoint::http(p.http),
            pid: p.server.pid,
        });
    }
    let emulator_idle_rss_mb = procfs::rss_bytes(emu.server.pid).map(|b| b as f64 / 1048576.0);
    let result = async {
        let mut cells = Vec::new();
        for &op in &settings.ops {
            for &conns in &settings.conns {
                // The servers take turns on each cell, so drift in background load hits all alike.
                for t in &targets {
                    let spec = CellSpec {
                        op,
                        conns,
                        warmup: settings.warmup,
                        duration: settings.duration,
                        rate: None,
                    };
                    let cell =
                        load::run_cell(&t.endpoint, &fixture, spec, Some(t.pid), ticks).await?;
                    print_cell(t.server, t.endpoint.scheme(), &cell);
                    cells.push(TargetCell {
                        server: t.server.to_owned(),
                        scheme: t.endpoint.scheme().to_owned(),
                        cell,
                    });
                }
            }
        }
        // Latency at half of each operation's peak rate, open loop, over HTTPS.
        let mut half_peak = Vec::new();
        for &op in &settings.ops {
            let peak = cells
                .iter()
                .filter(|c| c.server == "emulator" && c.scheme == "https" && c.cell.op == op)
                .map(|c| c.cell.rps)
                .fold(0.0, f64::max);
            if peak <= 0.0 {
                continue;
            }
            let conns = 32.min(max_conns).max(1);
            let spec = CellSpec {
                op,
                conns,
                warmup: settings.warmup,
                duration: settings.duration.max(Duration::from_secs(2)),
                rate: Some(peak / 2.0),
            };
            let cell = load::run_cell(&https, &fixture, spec, Some(emu.server.pid), ticks).await?;
            print_cell("emulator ½ peak", "https", &cell);
            half_peak.push(cell);
        }
        anyhow::Ok((cells, half_peak))
    }
    .await;
    let emulator_peak_rss_mb = procfs::peak_rss_bytes(emu.server.pid).map(|b| b as f64 / 1048576.0);
    emu.server.stop(Duration::from_secs(30)).await?;
    base.server.stop(Duration::from_secs(10)).await?;
    if let Some(p) = prism {
        p.server.stop(Duration::from_secs(10)).await?;
    }
    let (cells, half_peak) = result?;
    Ok(LoadReport {
        emulator: emu.banner.clone(),
        startup_to_healthy_ms: emu.startup_to_healthy.as_secs_f64() * 1000.0,
        emulator_idle_rss_mb,
        emulator_last_peak_rss_mb: emulator_peak_rss_mb,
        response_bytes: shapes.sizes(),
        prism_error,
        cells,
        half_peak,
    })
}

/// Installs Prism from `bench/prism/package-lock.json` when needed, then starts it.
async fn start_prism(prism_dir: &Path, work: &Path) -> anyhow::Result<server::Prism> {
    let binary = server::prism_binary(prism_dir);
    if !binary.exists() {
        eprintln!("load: installing Prism (npm ci in {})", prism_dir.display());
        let status = tokio::process::Command::new("npm")
            .args(["ci", "--no-audit", "--no-fund"])
            .current_dir(prism_dir)
            .status()
            .await
            .context("running npm (is Node.js installed?)")?;
        anyhow::ensure!(status.success(), "npm ci failed in {}", prism_dir.display());
    }
    // The official spec is read where the project keeps its reference material (shared/,
    // beside the repository), not copied into the repository.
    let reference = std::env::var_os("ACS_REFERENCE_DIR")
        .map(std::path::PathBuf::from)
        .unwrap_or_else(|| prism_dir.join("../../../shared/reference"));
    let spec = reference.join("acs-specs/Chat/stable/2025-03-15/communicationserviceschat.json");
    anyhow::ensure!(spec.exists(), "the chat spec is not at {} (set ACS_REFERENCE_DIR)", spec.display());
    server::start_prism(&binary, &spec, &work.join("prism.log")).await
}

fn print_cell(server: &str, scheme: &str, c: &CellResult) {
    eprintln!(
        "  {:<20} c={:<3} {:<16} {:<5} {:>8.0} req/s  p50 {:>7.2}  p99 {:>7.2}  p99.9 {:>7.2} ms  err {:>4}  cpu/1k {:>5.2} s  rss {:>6.1} MB{}",
        c.op.name(),
        c.conns,
        server,
        scheme,
        c.rps,
        c.p50_ms,
        c.p99_ms,
        c.p999_ms,
        c.errors,
        c.server_cpu_s_per_1k.unwrap_or(f64::NAN),
        c.peak_rss_mb.unwrap_or(f64::NAN),
        c.error_samples
            .first()
            .map(|s| format!("  e.g. {s}"))
            .unwrap_or_default()
    );
}

async fn scale_phase(
    settings: &Settings,
    emulator: &Path,
    work: &Path,
    ticks: f64,
) -> anyhow::Result<ScaleReport> {
    eprintln!("scale: startup of empty databases");
    let empty = scale::empty_startup(emulator, work, settings.starts).await?;
    let mut sizes = Vec::new();
    for &messages in &settings.scale_messages {
        eprintln!(
            "scale: {messages} messages in one thread, {} other threads",
            settings.scale_threads
        );
        let result = scale::run(scale::ScaleRun {
            emulator,
            work,
            size: scale::ScaleSize {
                messages_in_thread: messages,
                other_threads: settings.scale_threads,
            },
            starts: 3,
            conns: &settings.scale_conns,
            warmup: settings.warmup,
            duration: settings.scale_duration,
            ticks,
        })
        .await?;
        eprintln!(
            "  startup {:?} ms, idle RSS {:.1} MB, peak RSS {:.1} MB",
            result
                .startup_ms
                .iter()
                .map(|m| m.round())
                .collect::<Vec<_>>(),
            result.idle_rss_mb.unwrap_or(f64::NAN),
            result.peak_rss_mb.unwrap_or(f64::NAN)
        );
        sizes.push(result);
    }
    Ok(ScaleReport { empty, sizes })
}
