//! `openapi/openapi.json` describes exactly what the emulator serves: every (method, path) in the
//! document is routed, every routed (method, path) is in the document, and a running emulator
//! answers each of them (not with its "no route" 404 or a 405), and answers 405 to the methods a
//! path does not serve.

use std::collections::BTreeSet;
use std::sync::Arc;

use acs_chat_emulator::clock::SystemClock;
use acs_chat_emulator::config::Config;
use serde_json::Value;

const METHODS: &[&str] = &["GET", "POST", "PUT", "PATCH", "DELETE"];

/// `/chat/threads/{chatThreadId}` and `/chat/threads/{chat_thread_id}` → `/chat/threads/{}`.
fn normalise(path: &str) -> String {
    let mut out = String::new();
    let mut in_param = false;
    for c in path.chars() {
        match c {
            '{' => {
                in_param = true;
                out.push_str("{}");
            }
            '}' => in_param = false,
            _ if in_param => {}
            _ => out.push(c),
        }
    }
    out
}

/// A concrete request path for a template: placeholders become plausible ids.
fn concrete(path: &str) -> String {
    normalise(path)
        .replacen("/chat/threads/{}", "/chat/threads/19%3Aabc%40thread.v2", 1)
        .replacen("/messages/{}", "/messages/1700000000000", 1)
        .replacen(
            "/identities/{}",
            "/identities/8%3Aacs%3Aa1b2c3d4-0000-4000-8000-00000000ac5e_x",
            1,
        )
}

/// (method, normalised path) → operationId, from the document.
fn documented() -> BTreeSet<(String, String, String)> {
    let text =
        std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/openapi/openapi.json"))
            .expect("openapi/openapi.json exists");
    let doc: Value = serde_json::from_str(&text).expect("openapi.json is JSON");
    assert!(
        doc["openapi"].as_str().is_some_and(|v| v.starts_with("3.")),
        "an OpenAPI 3 document"
    );
    let mut out = BTreeSet::new();
    for (path, item) in doc["paths"].as_object().expect("paths object") {
        for method in METHODS {
            if let Some(operation) = item.get(method.to_ascii_lowercase()) {
                let id = operation["operationId"]
                    .as_str()
                    .unwrap_or("<none>")
                    .to_owned();
                out.insert((method.to_string(), normalise(path), id));
            }
        }
    }
    out
}

#[tokio::test]
async fn document_and_router_agree() {
    let dir = tempfile::tempdir().expect("temp dir");
    let app = acs_chat_emulator::build_app(
        Config::for_tests(dir.path().to_path_buf()),
        Arc::new(SystemClock),
    )
    .await
    .expect("emulator builds");
    let (_, served) = acs_chat_emulator::api::routes(app.state.clone());
    // The operationIds must agree too: fault rules and the access log use the router's.
    let routed: BTreeSet<(String, String, String)> = served
        .iter()
        .map(|r| {
            (
                r.method.to_owned(),
                normalise(&r.path),
                r.operation.to_owned(),
            )
        })
        .collect();
    let documented = documented();
    let undocumented: Vec<_> = routed.difference(&documented).collect();
    let unrouted: Vec<_> = documented.difference(&routed).collect();
    assert!(
        undocumented.is_empty(),
        "routes missing from openapi.json: {undocumented:?}"
    );
    assert!(
        unrouted.is_empty(),
        "openapi.json paths the emulator does not serve: {unrouted:?}"
    );

    // The recorded list must match the real router: probe a running server.
    let base = format!("http://{}", app.http_addr);
    let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
    let server = tokio::spawn(app.serve(async {
        let _ = stopped.await;
    }));
    let client = reqwest::Client::new();
    let paths: BTreeSet<String> = routed.iter().map(|(_, p, _)| p.clone()).collect();
    for path in &paths {
        for method in METHODS {
            let url = format!("{base}{}", concrete(path));
            let response = client
                .request(method.parse().expect("method"), &url)
                .send()
                .await
                .expect("request sent");
            let status = response.status().as_u16();
            // An event stream never ends by itself: its status is the answer.
            let streaming = response
                .headers()
                .get("content-type")
                .is_some_and(|v| v.as_bytes().starts_with(b"text/event-stream"));
            let body = if streaming {
                String::new()
            } else {
                response.text().await.unwrap_or_default()
            };
            if routed.iter().any(|(m, p, _)| m == method && p == path) {
                assert_ne!(status, 405, "{method} {path} is documented but not routed");
                assert!(
                    !body.contains("No route matches"),
                    "{method} {path} is documented but not routed: {body}"
                );
            } else {
                assert_eq!(
                    status, 405,
                    "{method} {path} is served but not documented ({body})"
                );
            }
        }
    }
    let _ = stop.send(());
    server.await.expect("server task").expect("clean stop");
}

#[test]
fn documented_api_versions_are_the_served_ones() {
    let text =
        std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/openapi/openapi.json"))
            .expect("exists");
    let doc: Value = serde_json::from_str(&text).expect("JSON");
    let listed = |name: &str| -> Vec<String> {
        doc["components"]["parameters"][name]["schema"]["enum"]
            .as_array()
            .expect("enum")
            .iter()
            .filter_map(|v| v.as_str().map(str::to_owned))
            .collect()
    };
    let chat: Vec<String> = acs_chat_emulator::versions::CHAT_VERSIONS
        .iter()
        .map(|v| v.name.to_owned())
        .collect();
    let identity: Vec<String> = acs_chat_emulator::versions::IDENTITY_VERSIONS
        .iter()
        .map(|v| v.name.to_owned())
        .collect();
    assert_eq!(listed("ChatApiVersion"), chat);
    assert_eq!(listed("IdentityApiVersion"), identity);
}
