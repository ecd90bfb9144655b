//! The binary as users run it: banner, health check subcommand, exit codes, clean shutdown on
//! SIGTERM, and persistence of the data dir across runs.

use std::io::{BufRead, BufReader};
use std::process::{Child, Command, Stdio};

const BIN: &str = env!("CARGO_BIN_EXE_acs-chat-emulator");

/// A started emulator and the lines of its banner.
struct Running {
    child: Child,
    banner: Vec<String>,
}

impl Running {
    fn start(data_dir: &std::path::Path, extra: &[&str]) -> Running {
        let mut child = Command::new(BIN)
            .args(["--https-port", "0", "--http-port", "0", "--data-dir"])
            .arg(data_dir)
            .args(extra)
            .env_remove("RUST_LOG")
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .spawn()
            .expect("binary starts");
        let stdout = child.stdout.take().expect("stdout piped");
        let mut banner = Vec::new();
        for line in BufReader::new(stdout).lines() {
            let line = line.expect("banner line");
            let done = line.contains("NODE_EXTRA_CA_CERTS");
            banner.push(line);
            if done {
                break;
            }
        }
        Running { child, banner }
    }

    fn field(&self, name: &str) -> String {
        self.banner
            .iter()
            .find_map(|l| l.trim().strip_prefix(name).map(|v| v.trim().to_owned()))
            .unwrap_or_else(|| panic!("banner has no {name}: {:?}", self.banner))
    }

    fn http_port(&self) -> String {
        let url = self.field("plain http:");
        url.trim_end_matches('/')
            .rsplit(':')
            .next()
            .expect("port")
            .to_owned()
    }

    fn terminate(mut self) -> std::process::ExitStatus {
        let pid = self.child.id().to_string();
        let killed = Command::new("kill")
            .args(["-TERM", &pid])
            .status()
            .expect("kill runs");
        assert!(killed.success());
        self.child.wait().expect("emulator exits")
    }
}

fn healthcheck(port: &str) -> i32 {
    Command::new(BIN)
        .args(["healthcheck", "--http-port", port])
        .status()
        .expect("healthcheck runs")
        .code()
        .expect("exit code")
}

#[test]
fn banner_healthcheck_and_clean_shutdown() {
    let dir = tempfile::tempdir().expect("temp dir");
    let running = Running::start(dir.path(), &[]);
    let connection = running.field("connection string:");
    assert!(
        connection.starts_with("endpoint=https://127.0.0.1:"),
        "{connection}"
    );
    assert!(connection.contains(";accesskey="), "{connection}");
    let ca = dir.path().join("ca.pem");
    assert!(
        running
            .banner
            .iter()
            .any(|l| l.contains(&format!("REQUESTS_CA_BUNDLE={}", ca.display())))
    );
    assert!(
        std::fs::read_to_string(&ca)
            .expect("CA written")
            .contains("BEGIN CERTIFICATE")
    );

    let port = running.http_port();
    assert_eq!(healthcheck(&port), 0, "a running emulator is healthy");
    let status = running.terminate();
    assert_eq!(status.code(), Some(0), "SIGTERM is a clean shutdown");
    assert_eq!(healthcheck(&port), 1, "nothing answers after shutdown");
    assert!(
        dir.path().join("emulator.db").exists(),
        "state is on disk without --in-memory"
    );
}

#[test]
fn exit_codes_mean_something() {
    let help = Command::new(BIN).arg("--help").output().expect("runs");
    assert_eq!(help.status.code(), Some(0));
    let text = String::from_utf8_lossy(&help.stdout);
    for flag in [
        "--https-port",
        "--http-port",
        "--bind",
        "--data-dir",
        "--in-memory",
        "--access-key",
        "--hostname",
        "--public-url",
        "--auth",
        "--log-format",
        "--tls-cert",
        "--tls-key",
    ] {
        assert!(text.contains(flag), "--help lists {flag}");
    }
    let bad = Command::new(BIN)
        .arg("--no-such-flag")
        .output()
        .expect("runs");
    assert_eq!(bad.status.code(), Some(2), "bad arguments exit 2");
    let dir = tempfile::tempdir().expect("temp dir");
    let bad_key = Command::new(BIN)
        .args([
            "--https-port",
            "0",
            "--http-port",
            "0",
            "--access-key",
            "not base64!",
            "--data-dir",
        ])
        .arg(dir.path())
        .output()
        .expect("runs");
    assert_eq!(bad_key.status.code(), Some(1), "a start failure exits 1");
    assert!(String::from_utf8_lossy(&bad_key.stderr).contains("access key"));
}

#[test]
fn connection_string_subcommand() {
    let out = Command::new(BIN)
        .args([
            "connection-string",
            "--public-url",
            "https://chat-emulator:8443/",
            "--access-key",
            "a2V5",
        ])
        .output()
        .expect("runs");
    assert_eq!(out.status.code(), Some(0));
    assert_eq!(
        String::from_utf8_lossy(&out.stdout).trim(),
        "endpoint=https://chat-emulator:8443/;accesskey=a2V5"
    );
}
