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
        "--accept-entra-tokens",
    ] {
        assert!(text.contains(flag), "--help lists {flag}");
    }
    assert!(
        text.contains("ACS_EMULATOR_ACCEPT_ENTRA_TOKENS"),
        "--help names the env twin of --accept-entra-tokens"
    );
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

/// One raw HTTP/1.1 GET; returns the status line.
fn http_get(port: &str, path: &str, authorization: &str) -> String {
    http_get_full(port, path, authorization)
        .lines()
        .next()
        .unwrap_or_default()
        .to_owned()
}

/// Sends one raw HTTP/1.1 request (`Connection: close`) to the emulator; returns the whole answer.
fn http_exchange(port: &str, request: &str) -> String {
    use std::io::{Read, Write};
    let mut stream = std::net::TcpStream::connect(format!("127.0.0.1:{port}")).expect("connect");
    stream.write_all(request.as_bytes()).expect("write");
    let mut answer = String::new();
    stream.read_to_string(&mut answer).expect("read");
    answer
}

/// One raw HTTP/1.1 GET; returns the whole answer.
fn http_get_full(port: &str, path: &str, authorization: &str) -> String {
    http_exchange(
        port,
        &format!(
            "GET {path} HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\nAuthorization: {authorization}\r\nx-ms-client-request-id: req-42\r\nConnection: close\r\n\r\n"
        ),
    )
}

#[test]
fn json_access_log_has_one_line_per_request_and_no_secrets() {
    use base64::Engine;
    let dir = tempfile::tempdir().expect("temp dir");
    let log_path = dir.path().join("stderr.log");
    let log = std::fs::File::create(&log_path).expect("log file");
    let mut child = Command::new(BIN)
        .args([
            "--https-port",
            "0",
            "--http-port",
            "0",
            "--in-memory",
            "--log-format",
            "json",
            "--data-dir",
        ])
        .arg(dir.path())
        .env_remove("RUST_LOG")
        .stdout(Stdio::piped())
        .stderr(log)
        .spawn()
        .expect("binary starts");
    let stdout = child.stdout.take().expect("stdout");
    let banner: Vec<String> = BufReader::new(stdout)
        .lines()
        .map_while(Result::ok)
        .take_while(|l| !l.contains("NODE_EXTRA_CA_CERTS"))
        .collect();
    let running = Running { child, banner };
    let port = running.http_port();

    // A well-formed token the emulator did not sign: refused, but the log names its identity.
    let claims = serde_json::json!({
        "skypeid": "acs:a1b2c3d4-0000-4000-8000-00000000ac5e_someone", "scp": 1792, "csi": "1",
        "exp": 4_102_444_800_i64, "acsScope": "chat", "resourceId": "a1b2c3d4-0000-4000-8000-00000000ac5e",
        "resourceLocation": "unitedstates", "iat": 1
    });
    let b64 = |v: &serde_json::Value| {
        base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(v.to_string())
    };
    let token = format!(
        "{}.{}.c2lnbmF0dXJl",
        b64(&serde_json::json!({"alg": "HS256"})),
        b64(&claims)
    );
    let status = http_get(
        &port,
        "/chat/threads?api-version=2025-03-15",
        &format!("Bearer {token}"),
    );
    assert!(status.contains("401"), "{status}");
    let status = http_get(&port, "/_emulator/health", "none");
    assert!(status.contains("200"), "{status}");
    assert_eq!(running.terminate().code(), Some(0));

    let text = std::fs::read_to_string(&log_path).expect("log");
    assert!(
        !text.contains(&token) && !text.contains("c2lnbmF0dXJl"),
        "tokens are never logged"
    );
    let access: Vec<serde_json::Value> = text
        .lines()
        .filter_map(|l| serde_json::from_str::<serde_json::Value>(l).ok())
        .filter(|v| v["target"] == "acs_chat_emulator::access")
        .collect();
    assert_eq!(access.len(), 2, "one line per request: {text}");
    let chat = &access[0]["fields"];
    assert_eq!(chat["operation"], "Chat_ListChatThreads");
    assert_eq!(chat["status"], 401);
    assert_eq!(
        chat["caller"],
        "8:acs:a1b2c3d4-0000-4000-8000-00000000ac5e_someone"
    );
    assert_eq!(chat["request_id"], "req-42");
    assert_eq!(chat["path"], "/chat/threads");
    assert!(chat["latency_ms"].as_f64().is_some());
    assert_eq!(access[1]["fields"]["path"], "/_emulator/health");
}

fn run(args: &[&str], data_dir: &std::path::Path) -> std::process::Output {
    Command::new(BIN)
        .args(args)
        .arg("--data-dir")
        .arg(data_dir)
        .output()
        .expect("runs")
}

#[test]
fn seed_then_export_reset_import_through_the_cli() {
    let dir = tempfile::tempdir().expect("temp dir");
    let seed = dir.path().join("seed.yaml");
    std::fs::write(
        &seed,
        "identities:\n  - id: alice\n    tokens: [{scopes: [chat]}]\n  - id: bob\nthreads:\n  - topic: General\n    createdBy: alice\n    participants: [{id: bob, displayName: Bob}]\n    messages:\n      - {from: alice, content: Welcome}\n",
    )
    .expect("seed written");
    let data = dir.path().join("data");
    let seed_arg = seed.display().to_string();
    let running = Running::start(&data, &["--seed", &seed_arg]);
    let seeded = running.field("seeded token:");
    let (identity, token) = seeded.split_once(' ').expect("id and token");
    assert!(identity.ends_with("_alice"), "{identity}");
    let answer = http_get_full(
        &running.http_port(),
        "/chat/threads?api-version=2025-03-15",
        &format!("Bearer {token}"),
    );
    assert!(answer.starts_with("HTTP/1.1 200"), "{answer}");
    assert!(answer.contains("19:general@thread.v2"), "{answer}");
    assert_eq!(running.terminate().code(), Some(0));

    // A restart keeps state and prints the same (deterministic) token.
    let again = Running::start(&data, &["--seed", &seed_arg]);
    assert_eq!(again.field("seeded token:"), seeded);
    assert_eq!(again.terminate().code(), Some(0));

    let exported = run(&["export"], &data);
    assert_eq!(exported.status.code(), Some(0));
    let before: serde_json::Value = serde_json::from_slice(&exported.stdout).expect("JSON state");
    assert_eq!(
        before["threads"][0]["messages"].as_array().map(Vec::len),
        Some(3)
    );
    let file = dir.path().join("state.json");
    std::fs::write(&file, &exported.stdout).expect("saved");

    assert_eq!(run(&["reset"], &data).status.code(), Some(0));
    let empty: serde_json::Value =
        serde_json::from_slice(&run(&["export"], &data).stdout).expect("JSON");
    assert_eq!(empty["threads"], serde_json::json!([]));
    let import = Command::new(BIN)
        .args(["import"])
        .arg(&file)
        .arg("--data-dir")
        .arg(&data)
        .output()
        .expect("runs");
    assert_eq!(
        import.status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&import.stderr)
    );
    let after: serde_json::Value =
        serde_json::from_slice(&run(&["export"], &data).stdout).expect("JSON");
    assert_eq!(after, before);

    // Bad input: a clear message and exit 1, nothing changed.
    std::fs::write(&file, "{\"format\": \"nope\"}").expect("written");
    let bad = Command::new(BIN)
        .args(["import"])
        .arg(&file)
        .arg("--data-dir")
        .arg(&data)
        .output()
        .expect("runs");
    assert_eq!(bad.status.code(), Some(1));
    let unchanged: serde_json::Value =
        serde_json::from_slice(&run(&["export"], &data).stdout).expect("JSON");
    assert_eq!(unchanged, before);
    let missing = run(&["export"], &dir.path().join("nowhere"));
    assert_eq!(missing.status.code(), Some(1));
    let bad_seed = dir.path().join("bad.yaml");
    std::fs::write(&bad_seed, "threads: [{topic: t, createdBy: nobody}]").expect("written");
    let refused = Command::new(BIN)
        .args([
            "--https-port",
            "0",
            "--http-port",
            "0",
            "--in-memory",
            "--seed",
        ])
        .arg(&bad_seed)
        .arg("--data-dir")
        .arg(dir.path())
        .output()
        .expect("runs");
    assert_eq!(refused.status.code(), Some(1));
    assert!(String::from_utf8_lossy(&refused.stderr).contains("nobody"));
}

/// One raw HTTP/1.1 POST of a JSON body; returns the whole answer.
fn http_post(port: &str, path: &str, authorization: &str, body: &str) -> String {
    http_exchange(
        port,
        &format!(
            "POST {path} HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\nAuthorization: {authorization}\r\nContent-Type: application/json\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}",
            body.len()
        ),
    )
}

#[test]
fn acknowledged_messages_survive_a_kill() {
    // SIGKILL gives the emulator no chance to flush or checkpoint: whatever was answered 201
    // must already be in the database files.
    let dir = tempfile::tempdir().expect("temp dir");
    let seed = dir.path().join("seed.yaml");
    std::fs::write(
        &seed,
        "identities:\n  - id: alice\n    tokens: [{scopes: [chat]}]\nthreads:\n  - topic: Crash\n    createdBy: alice\n",
    )
    .expect("seed written");
    let data = dir.path().join("data");
    let mut running = Running::start(&data, &["--seed", &seed.display().to_string()]);
    let seeded = running.field("seeded token:");
    let (_, token) = seeded.split_once(' ').expect("id and token");
    let port = running.http_port();
    let sent = 200;
    for n in 0..sent {
        let answer = http_post(
            &port,
            "/chat/threads/19:crash@thread.v2/messages?api-version=2025-03-15",
            &format!("Bearer {token}"),
            &format!(r#"{{"content":"acknowledged {n}"}}"#),
        );
        assert!(answer.starts_with("HTTP/1.1 201"), "{answer}");
    }
    running.child.kill().expect("SIGKILL");
    running.child.wait().expect("reaped");

    let exported = run(&["export"], &data);
    assert_eq!(exported.status.code(), Some(0), "{exported:?}");
    let state: serde_json::Value = serde_json::from_slice(&exported.stdout).expect("JSON state");
    let contents: Vec<&str> = state["threads"][0]["messages"]
        .as_array()
        .expect("messages")
        .iter()
        .filter_map(|m| m["content"]["message"].as_str())
        .collect();
    for n in 0..sent {
        let text = format!("acknowledged {n}");
        assert!(
            contents.contains(&text.as_str()),
            "{text} lost after SIGKILL"
        );
    }

    // Each acknowledged message's event was committed with it (the outbox): all are there
    // after a restart.
    let restarted = Running::start(&data, &[]);
    let answer = http_get_full(
        &restarted.http_port(),
        "/_emulator/events?type=ChatMessageReceivedInThread&limit=1000",
        "",
    );
    let body = answer.split_once("\r\n\r\n").map_or("", |(_, b)| b);
    let log: serde_json::Value = serde_json::from_str(body).expect("JSON log");
    let bodies: Vec<&str> = log["value"]
        .as_array()
        .expect("events")
        .iter()
        .filter_map(|e| e["event"]["data"]["messageBody"].as_str())
        .collect();
    for n in 0..sent {
        let text = format!("acknowledged {n}");
        assert!(
            bodies.contains(&text.as_str()),
            "the event of {text} lost after SIGKILL"
        );
    }
    assert_eq!(restarted.terminate().code(), Some(0));
}

#[test]
fn a_second_emulator_on_the_same_data_dir_exits_1_naming_the_first_which_keeps_serving() {
    let dir = tempfile::tempdir().expect("temp dir");
    let first = Running::start(dir.path(), &[]);
    let port = first.http_port();
    let second = Command::new(BIN)
        .args(["--https-port", "0", "--http-port", "0", "--data-dir"])
        .arg(dir.path())
        .env_remove("RUST_LOG")
        .output()
        .expect("runs");
    assert_eq!(second.status.code(), Some(1), "a locked data dir exits 1");
    let stderr = String::from_utf8_lossy(&second.stderr);
    assert!(
        stderr.contains("in use by another emulator")
            && stderr.contains(&format!("pid {}", first.child.id())),
        "names the holder: {stderr}"
    );
    assert_eq!(healthcheck(&port), 0, "the first one keeps serving");
    // --in-memory shares only the TLS files, so it may start beside a file-backed one.
    let beside = Running::start(dir.path(), &["--in-memory"]);
    assert_eq!(healthcheck(&beside.http_port()), 0);
    assert_eq!(beside.terminate().code(), Some(0));
    assert_eq!(first.terminate().code(), Some(0));
}
