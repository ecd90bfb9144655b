//! The HTTPS listener: its certificate chains to the emulator CA for 127.0.0.1, the CA is served
//! over plain HTTP, and absolute URLs in responses (`Location`, `nextLink`) use the scheme of the
//! listener the request came in on (design.md decisions 3 and 4).

use base64::Engine;
use base64::engine::general_purpose::STANDARD;
use hmac::{Hmac, Mac};
use reqwest::{Client, Method};
use serde_json::{Value, json};
use sha2::{Digest, Sha256};

use crate::helpers::{CHAT_VERSION, IDENTITY_VERSION, Reply, TestApp, default_key};

/// A client that trusts only `ca_pem`. Built after the emulator, which installs the rustls
/// crypto provider that reqwest (`rustls-no-provider`) needs.
fn client_trusting(ca_pem: &str) -> Client {
    let ca = reqwest::Certificate::from_pem(ca_pem.as_bytes()).expect("CA PEM parses");
    Client::builder()
        .tls_certs_only([ca])
        .build()
        .expect("client builds")
}

async fn fetch(
    client: &Client,
    method: Method,
    url: &str,
    headers: &[(&str, String)],
    body: Option<String>,
) -> Reply {
    let mut request = client.request(method, url);
    for (name, value) in headers {
        request = request.header(*name, value);
    }
    if let Some(body) = body {
        request = request
            .header("content-type", "application/json")
            .body(body);
    }
    let response = request.send().await.expect("request sent");
    let status = response.status();
    let headers = response.headers().clone();
    let text = response.text().await.expect("body read");
    Reply {
        status,
        headers,
        text,
    }
}

/// HMAC headers for the HTTPS listener (the host part of the string to sign is its authority).
fn sign_https(
    app: &TestApp,
    method: &str,
    path_and_query: &str,
    body: &str,
) -> Vec<(&'static str, String)> {
    let host = app.https_base.trim_start_matches("https://");
    let date = time::OffsetDateTime::now_utc()
        .format(&time::macros::format_description!(
            "[weekday repr:short], [day] [month repr:short] [year] [hour]:[minute]:[second] GMT"
        ))
        .expect("date formats");
    let hash = STANDARD.encode(Sha256::digest(body.as_bytes()));
    let mut mac = <Hmac<Sha256> as Mac>::new_from_slice(&default_key()).expect("any key");
    mac.update(format!("{method}\n{path_and_query}\n{date};{host};{hash}").as_bytes());
    let signature = STANDARD.encode(mac.finalize().into_bytes());
    vec![
        ("x-ms-date", date),
        ("x-ms-content-sha256", hash),
        (
            "authorization",
            format!(
                "HMAC-SHA256 SignedHeaders=x-ms-date;host;x-ms-content-sha256&Signature={signature}"
            ),
        ),
    ]
}

#[tokio::test]
async fn https_health_verifies_against_the_emulator_ca() {
    let app = TestApp::builder().spawn().await;
    let client = client_trusting(&app.ca_pem);
    assert!(
        app.https_base.starts_with("https://127.0.0.1:"),
        "{}",
        app.https_base
    );
    let reply = fetch(
        &client,
        Method::GET,
        &format!("{}/_emulator/health", app.https_base),
        &[],
        None,
    )
    .await;
    assert_eq!(reply.status, 200, "{}", reply.text);
    assert_eq!(reply.json()["status"], "healthy");
    app.stop().await;
}

#[tokio::test]
async fn a_client_trusting_another_ca_is_refused() {
    let app = TestApp::builder().spawn().await;
    let other = TestApp::builder().spawn().await;
    assert_ne!(app.ca_pem, other.ca_pem, "each data dir has its own CA");
    let client = client_trusting(&other.ca_pem);
    let result = client
        .get(format!("{}/_emulator/health", app.https_base))
        .send()
        .await;
    assert!(
        result.is_err(),
        "the certificate must not verify against another CA: {result:?}"
    );
    other.stop().await;
    app.stop().await;
}

#[tokio::test]
async fn the_ca_is_served_over_http() {
    let app = TestApp::builder().spawn().await;
    let reply = app.raw(Method::GET, "/_emulator/ca.pem", &[], None).await;
    assert_eq!(reply.status, 200);
    assert_eq!(reply.text, app.ca_pem);
    assert!(
        app.ca_pem.starts_with("-----BEGIN CERTIFICATE-----"),
        "{}",
        app.ca_pem
    );
    app.stop().await;
}

#[tokio::test]
async fn links_use_https_when_the_request_came_over_https() {
    let app = TestApp::builder().spawn().await;
    let client = client_trusting(&app.ca_pem);

    // Identity over HTTPS, signed for the HTTPS authority, as the SDKs do.
    let path = format!("/identities?api-version={IDENTITY_VERSION}");
    let body = r#"{"createTokenWithScopes":["chat"]}"#;
    let headers = sign_https(&app, "POST", &path, body);
    let reply = fetch(
        &client,
        Method::POST,
        &format!("{}{path}", app.https_base),
        &headers,
        Some(body.to_owned()),
    )
    .await;
    assert_eq!(reply.status, 201, "{}", reply.text);
    let token = reply.json()["accessToken"]["token"]
        .as_str()
        .expect("token")
        .to_owned();
    let auth = [("authorization", format!("Bearer {token}"))];

    let threads_url = format!("{}/chat/threads?api-version={CHAT_VERSION}", app.https_base);
    let mut thread = String::new();
    for topic in ["a", "b"] {
        let reply = fetch(
            &client,
            Method::POST,
            &threads_url,
            &auth,
            Some(json!({ "topic": topic }).to_string()),
        )
        .await;
        assert_eq!(reply.status, 201, "{}", reply.text);
        let location = reply.header("location").expect("Location");
        assert!(
            location.starts_with(&format!("{}/chat/threads/19%3A", app.https_base)),
            "{location}"
        );
        thread = reply.json()["chatThread"]["id"]
            .as_str()
            .expect("id")
            .to_owned();
    }

    let messages_url = format!(
        "{}/chat/threads/{}/messages?api-version={CHAT_VERSION}",
        app.https_base,
        thread.replace(':', "%3A")
    );
    let reply = fetch(
        &client,
        Method::POST,
        &messages_url,
        &auth,
        Some(json!({ "content": "hi" }).to_string()),
    )
    .await;
    assert_eq!(reply.status, 201, "{}", reply.text);
    let location = reply.header("location").expect("Location");
    assert!(
        location.starts_with(&format!("{}/chat/threads/", app.https_base)),
        "{location}"
    );

    let reply = fetch(
        &client,
        Method::GET,
        &format!("{threads_url}&maxPageSize=1"),
        &auth,
        None,
    )
    .await;
    assert_eq!(reply.status, 200, "{}", reply.text);
    let next = reply.json()["nextLink"]
        .as_str()
        .expect("nextLink")
        .to_owned();
    assert!(
        next.starts_with(&format!("{}/chat/threads?", app.https_base)),
        "{next}"
    );
    let reply = fetch(&client, Method::GET, &next, &auth, None).await;
    assert_eq!(
        reply.status, 200,
        "the https nextLink is followable: {}",
        reply.text
    );
    assert_eq!(reply.json()["value"].as_array().map(Vec::len), Some(1));

    let reply = fetch(
        &client,
        Method::GET,
        &format!("{messages_url}&maxPageSize=1"),
        &auth,
        None,
    )
    .await;
    let next = reply.json()["nextLink"]
        .as_str()
        .map(str::to_owned)
        .unwrap_or_default();
    assert!(
        next.starts_with(&format!("{}/chat/threads/", app.https_base)),
        "{next}"
    );

    // The same calls over plain HTTP link to the HTTP listener.
    let reply = app
        .chat(Method::GET, "/chat/threads?maxPageSize=1", &token, None)
        .await;
    let next = reply.json()["nextLink"]
        .as_str()
        .map(str::to_owned)
        .unwrap_or_default();
    assert!(
        next.starts_with(&format!("{}/chat/threads?", app.http_base)),
        "{next}"
    );
    let _: Value = reply.json();
    app.stop().await;
}
