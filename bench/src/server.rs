//! The server processes the benchmark starts and stops: the emulator (release build), the bare
//! axum comparator (this binary, `baseline-server`) and Prism. Each is a child process on
//! loopback, so its CPU time and memory can be read from `/proc` apart from the load generator.

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::time::{Duration, Instant};

use anyhow::{Context, bail};
use base64::Engine;
use tokio::io::{AsyncBufReadExt, BufReader};
use tokio::process::{Child, Command};

use crate::http::{Endpoint, Req};

/// A running child process that is stopped (SIGTERM, then SIGKILL) by [`Server::stop`].
pub struct Server {
    pub name: String,
    pub pid: u32,
    child: Child,
}

impl Server {
    /// Asks the process to exit (SIGTERM) and waits up to `grace`; kills it after that.
    pub async fn stop(mut self, grace: Duration) -> anyhow::Result<()> {
        // tokio's kill() is SIGKILL; a clean stop (database closed, WAL checkpointed) needs TERM.
        let _ = std::process::Command::new("kill")
            .arg("-TERM")
            .arg(self.pid.to_string())
            .status();
        match tokio::time::timeout(grace, self.child.wait()).await {
            Ok(status) => {
                status?;
            }
            Err(_) => {
                eprintln!("  {} did not stop within {grace:?}; killing it", self.name);
                self.child.kill().await?;
            }
        }
        Ok(())
    }
}

/// A started emulator and what its banner said.
pub struct Emulator {
    pub server: Server,
    pub https: SocketAddr,
    pub http: SocketAddr,
    /// The decoded access key from the printed connection string.
    pub access_key: Vec<u8>,
    /// `<data-dir>/ca.pem`.
    pub ca_pem: Vec<u8>,
    /// From spawn to the first 200 of `/_emulator/health`.
    pub startup_to_healthy: Duration,
    /// The banner's first line (`acs-chat-emulator 0.1.0 is ready`).
    pub banner: String,
}

/// Starts `binary` with a data dir, both ports picked by the OS, on loopback, and waits until it
/// is healthy. Its logs (one access-log line per request at the default level, still formatted
/// and written) go to `log_file`, or to /dev/null so a long run does not fill the disk.
pub async fn start_emulator(
    binary: &Path,
    data_dir: &Path,
    log_file: Option<&Path>,
) -> anyhow::Result<Emulator> {
    let log = match log_file {
        Some(path) => Stdio::from(
            std::fs::File::create(path).with_context(|| format!("creating {}", path.display()))?,
        ),
        None => Stdio::null(),
    };
    let started = Instant::now();
    let mut child = Command::new(binary)
        .arg("--data-dir")
        .arg(data_dir)
        .args([
            "--https-port",
            "0",
            "--http-port",
            "0",
            "--bind",
            "127.0.0.1",
        ])
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(log)
        .kill_on_drop(true)
        .spawn()
        .with_context(|| format!("starting {}", binary.display()))?;
    let pid = child.id().context("the emulator exited at once")?;
    let stdout = child.stdout.take().context("no stdout")?;
    let mut lines = BufReader::new(stdout).lines();
    let (mut https, mut http, mut key, mut first) = (None, None, None, None);
    let banner = async {
        while let Some(line) = lines.next_line().await? {
            let line = line.trim();
            if first.is_none() {
                first = Some(line.trim_end_matches(" is ready").to_owned());
            }
            if let Some(rest) = line.strip_prefix("endpoint:") {
                https = Some(host_port(rest)?);
            } else if let Some(rest) = line.strip_prefix("plain http:") {
                http = Some(host_port(rest)?);
            } else if let Some(rest) = line.strip_prefix("connection string:") {
                key = rest
                    .split(';')
                    .find_map(|part| part.trim().strip_prefix("accesskey="))
                    .map(str::to_owned);
            }
            if https.is_some() && http.is_some() && key.is_some() {
                return anyhow::Ok(());
            }
        }
        bail!("the emulator's stdout ended before its banner was complete")
    };
    tokio::time::timeout(Duration::from_secs(300), banner)
        .await
        .context("no banner within 300 s")??;
    // Keep reading stdout so the emulator never blocks on a full pipe.
    tokio::spawn(async move { while let Ok(Some(_)) = lines.next_line().await {} });
    let (https, http) = (https.context("endpoint")?, http.context("plain http")?);
    let access_key = base64::engine::general_purpose::STANDARD
        .decode(key.context("access key")?)
        .context("decoding the access key")?;
    wait_healthy(http, "/_emulator/health", Duration::from_secs(60)).await?;
    let startup_to_healthy = started.elapsed();
    let ca_pem = std::fs::read(data_dir.join("ca.pem")).context("reading ca.pem")?;
    Ok(Emulator {
        server: Server {
            name: "emulator".to_owned(),
            pid,
            child,
        },
        https,
        http,
        access_key,
        ca_pem,
        startup_to_healthy,
        banner: first.unwrap_or_default(),
    })
}

/// `https://127.0.0.1:1234/` → the socket address.
fn host_port(url: &str) -> anyhow::Result<SocketAddr> {
    let url = url.trim();
    let rest = url
        .strip_prefix("https://")
        .or_else(|| url.strip_prefix("http://"))
        .unwrap_or(url);
    let rest = rest.trim_end_matches('/');
    rest.parse()
        .with_context(|| format!("not a loopback address in the banner: {url}"))
}

/// Polls `GET path` over plain HTTP every 2 ms until it answers 200.
pub async fn wait_healthy(addr: SocketAddr, path: &str, limit: Duration) -> anyhow::Result<()> {
    let deadline = Instant::now() + limit;
    let endpoint = Endpoint::http(addr);
    loop {
        if let Ok(mut conn) = endpoint.connect().await
            && let Ok(resp) = conn.send(&Req::get(path.to_owned())).await
            && resp.status.is_success()
        {
            return Ok(());
        }
        if Instant::now() > deadline {
            bail!("{addr}{path} not healthy within {limit:?}");
        }
        tokio::time::sleep(Duration::from_millis(2)).await;
    }
}

/// The bare axum comparator: this binary's `baseline-server` subcommand, with the response
/// sizes measured on the emulator.
pub struct Baseline {
    pub server: Server,
    pub https: SocketAddr,
    pub http: SocketAddr,
    pub ca_pem: Vec<u8>,
}

/// Starts `baseline-server` from the running executable.
pub async fn start_baseline(shapes_file: &Path, dir: &Path) -> anyhow::Result<Baseline> {
    let exe = std::env::current_exe()?;
    let mut child = Command::new(exe)
        .arg("baseline-server")
        .arg("--shapes")
        .arg(shapes_file)
        .arg("--dir")
        .arg(dir)
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::inherit())
        .kill_on_drop(true)
        .spawn()?;
    let pid = child.id().context("baseline exited at once")?;
    let stdout = child.stdout.take().context("no stdout")?;
    let mut lines = BufReader::new(stdout).lines();
    let line = tokio::time::timeout(Duration::from_secs(30), lines.next_line())
        .await
        .context("baseline-server printed nothing")??
        .context("baseline-server ended")?;
    // "listening https=127.0.0.1:1 http=127.0.0.1:2"
    let mut https = None;
    let mut http = None;
    for word in line.split_whitespace() {
        if let Some(v) = word.strip_prefix("https=") {
            https = Some(v.parse()?);
        } else if let Some(v) = word.strip_prefix("http=") {
            http = Some(v.parse()?);
        }
    }
    tokio::spawn(async move { while let Ok(Some(_)) = lines.next_line().await {} });
    let ca_pem = std::fs::read(dir.join("baseline-ca.pem"))?;
    Ok(Baseline {
        server: Server {
            name: "axum baseline".to_owned(),
            pid,
            child,
        },
        https: https.context("https=")?,
        http: http.context("http=")?,
        ca_pem,
    })
}

/// A started Prism mock.
pub struct Prism {
    pub server: Server,
    pub http: SocketAddr,
}

/// `<prism_dir>/node_modules/.bin/prism`, there once `npm ci` has run in `bench/prism`.
pub fn prism_binary(prism_dir: &Path) -> PathBuf {
    prism_dir.join("node_modules/.bin/prism")
}

/// Starts `prism mock SPEC` on a free loopback port (HTTP only: Prism has no TLS option) with
/// its per-request logging off (`-v silent`), its fastest setting.
pub async fn start_prism(binary: &Path, spec: &Path, log_file: &Path) -> anyhow::Result<Prism> {
    let port = free_port()?;
    let log = std::fs::File::create(log_file)?;
    let log2 = log.try_clone()?;
    let child = Command::new(binary)
        .arg("mock")
        .arg(spec)
        .args(["-h", "127.0.0.1", "-p", &port.to_string(), "-v", "silent"])
        .stdin(Stdio::null())
        .stdout(log)
        .stderr(log2)
        .kill_on_drop(true)
        .spawn()
        .with_context(|| format!("starting {}", binary.display()))?;
    let pid = child.id().context("prism exited at once")?;
    let http: SocketAddr = ([127, 0, 0, 1], port).into();
    // Prism has no health route; any answer (even a 401 for a missing token) means it is up.
    let deadline = Instant::now() + Duration::from_secs(120);
    let endpoint = Endpoint::http(http);
    loop {
        if let Ok(mut conn) = endpoint.connect().await
            && conn
                .send(&Req::get("/chat/threads".to_owned()))
                .await
                .is_ok()
        {
            break;
        }
        if Instant::now() > deadline {
            bail!(
                "prism did not answer within 120 s (see {})",
                log_file.display()
            );
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    Ok(Prism {
        server: Server {
            name: "prism".to_owned(),
            pid,
            child,
        },
        http,
    })
}

/// A loopback port that was free a moment ago.
fn free_port() -> anyhow::Result<u16> {
    let listener = std::net::TcpListener::bind("127.0.0.1:0")?;
    Ok(listener.local_addr()?.port())
}
