//! Bounded resources: bodies are capped per route and answered 413 with the ACS body before
//! more than the cap is read (over HTTP/1.1 and HTTP/2), unauthenticated bodies are refused
//! before they are read, and connections are bounded in time and number.

use std::io::{Read, Write};
use std::net::TcpStream;
use std::time::Duration;

use futures_util::stream;
use reqwest::{Client, Method};
use serde_json::json;

use crate::helpers::{Reply, TestApp, enc};

/// More than every cap but the state import's: 8 MiB, the size that broke the connection.
const OVERSIZED: usize = 8 * 1024 * 1024;

/// A body that never ends: the client keeps streaming until the server answers or closes. The
/// server cannot have read it all, so an answer proves it refused before reading to the end.
fn endless_body() -> reqwest::Body {
    let chunk = bytes_of(64 * 1024);
    reqwest::Body::wrap_stream(stream::repeat_with(move || {
        Ok::<_, std::io::Error>(chunk.clone())
    }))
}

fn bytes_of(n: usize) -> Vec<u8> {
    vec![b'x'; n]
}

async fn reply_of(response: reqwest::Response) -> Reply {
    let status = response.status();
    let headers = response.headers().clone();
    let text = response.text().await.expect("body read");
    Reply {
        status,
        headers,
        text,
    }
}

fn assert_too_large(reply: &Reply, case: &str) {
    assert_eq!(reply.status.as_u16(), 413, "{case}: {}", reply.text);
    reply.assert_error(413, "RequestEntityTooLarge");
    assert_eq!(reply.header("x-ms-error-response"), Some("true"), "{case}");
}

/// An HTTP/2 client (prior knowledge: h2c on the plain listener).
fn h2_client() -> Client {
    Client::builder()
        .http2_prior_knowledge()
        .build()
        .expect("client builds")
}

async fn thread_with_user(app: &TestApp) -> (String, String) {
    let (id, token) = app.create_user().await;
    let thread = app.create_thread(&token, "limits", &[&id]).await;
    (thread, token)
}

#[tokio::test]
async fn an_oversized_chat_body_is_413_with_the_acs_body_over_http1_and_http2() {
    let app = TestApp::builder().spawn().await;
    let (thread, token) = thread_with_user(&app).await;
    let url = app.chat_url(&format!("/chat/threads/{}/messages", enc(&thread)));
    for (name, client) in [("HTTP/1.1", Client::new()), ("HTTP/2", h2_client())] {
        // Declared length over the cap: refused before a byte of the body is read.
        let response = client
            .post(&url)
            .bearer_auth(&token)
            .header("content-type", "application/json")
            .body(bytes_of(OVERSIZED))
            .send()
            .await
            .unwrap_or_else(|e| panic!("{name}: an answer, not a broken connection: {e}"));
        assert_too_large(&reply_of(response).await, name);
        // No declared length (a stream): refused once the cap is passed.
        let response = client
            .post(&url)
            .bearer_auth(&token)
            .header("content-type", "application/json")
            .body(endless_body())
            .send()
            .await
            .unwrap_or_else(|e| panic!("{name} streamed: an answer: {e}"));
        assert_too_large(&reply_of(response).await, &format!("{name} streamed"));
    }
    // A body under the cap is still served.
    app.send_message(&token, &thread, "still fine").await;
    app.stop().await;
}

#[tokio::test]
async fn an_oversized_identity_body_is_413_when_signed() {
    let app = TestApp::builder().spawn().await;
    let path = "/identities?api-version=2023-10-01";
    let body = "x".repeat(OVERSIZED);
    let headers = app.sign("POST", path, &body, &crate::helpers::default_key());
    let reply = app.raw(Method::POST, path, &headers, Some(&body)).await;
    assert_too_large(&reply, "signed identity body");
    app.stop().await;
}

#[tokio::test]
async fn unauthenticated_admin_bodies_are_refused_before_they_are_read() {
    let app = TestApp::builder().spawn().await;
    let client = Client::new();
    let routes = [
        (Method::PUT, "/_emulator/state"),
        (Method::POST, "/_emulator/reset"),
        (Method::POST, "/_emulator/faults"),
        (Method::POST, "/identities?api-version=2023-10-01"),
    ];
    let credentials: [(&str, Option<String>); 3] = [
        ("no key", None),
        (
            "wrong bearer key",
            Some("Bearer bm90IHRoZSBrZXk=".to_owned()),
        ),
        (
            "garbled signature",
            Some("HMAC-SHA256 SignedHeaders=nonsense".to_owned()),
        ),
    ];
    for (method, path) in routes {
        for (case, authorization) in &credentials {
            let mut request = client
                .request(method.clone(), format!("{}{path}", app.http_base))
                .header("content-type", "application/json")
                .body(endless_body());
            if let Some(value) = authorization {
                request = request.header("authorization", value);
            }
            let response = request
                .send()
                .await
                .unwrap_or_else(|e| panic!("{method} {path}, {case}: an answer: {e}"));
            reply_of(response).await.assert_error(401, "Unauthorized");
        }
    }
    // A stale signature is refused from its headers too, however long the body.
    let stale = crate::helpers::httpdate(time::OffsetDateTime::now_utc() - time::Duration::days(1));
    let headers = app.sign_dated(
        "PUT",
        "/_emulator/state",
        "",
        &crate::helpers::default_key(),
        &stale,
    );
    let mut request = client
        .put(format!("{}/_emulator/state", app.http_base))
        .body(endless_body());
    for (name, value) in headers {
        request = request.header(name, value);
    }
    let response = request
        .send()
        .await
        .expect("an answer to a stale signature");
    reply_of(response).await.assert_error(401, "Unauthorized");
    app.stop().await;
}

#[tokio::test]
async fn admin_bodies_other_than_a_state_import_have_a_small_cap() {
    let app = TestApp::builder().spawn().await;
    let body = "x".repeat(OVERSIZED);
    let headers = app.sign(
        "POST",
        "/_emulator/faults",
        &body,
        &crate::helpers::default_key(),
    );
    let reply = app
        .raw(Method::POST, "/_emulator/faults", &headers, Some(&body))
        .await;
    assert_too_large(&reply, "signed fault rule");
    let reply = app
        .admin(
            Method::POST,
            "/_emulator/faults",
            Some(json!({ "x": body })),
        )
        .await;
    assert_too_large(&reply, "bearer-keyed fault rule");
    app.stop().await;
}

/// Reads until the server closes the connection; `true` for a close (EOF or reset). The read
/// timeout only catches a hang: it is far longer than any timeout under test.
fn closed_by_server(stream: &mut TcpStream) -> bool {
    stream
        .set_read_timeout(Some(Duration::from_secs(30)))
        .expect("read timeout");
    let mut buf = [0_u8; 1024];
    loop {
        match stream.read(&mut buf) {
            Ok(0) => return true,
            Ok(_) => {}
            Err(e) if e.kind() == std::io::ErrorKind::ConnectionReset => return true,
            Err(e) => panic!("the server did not close the connection: {e}"),
        }
    }
}

fn addr_of(base: &str) -> String {
    base.trim_start_matches("http://")
        .trim_start_matches("https://")
        .to_owned()
}

#[tokio::test(flavor = "multi_thread")]
async fn a_half_sent_request_header_is_closed_after_the_header_read_timeout() {
    let app = TestApp::builder()
        .config(|c| c.header_read_timeout_secs = 1)
        .spawn()
        .await;
    let addr = addr_of(&app.http_base);
    let closed = tokio::task::spawn_blocking(move || {
        let mut stream = TcpStream::connect(addr).expect("connects");
        stream
            .write_all(b"GET /_emulator/health HTTP/1.1\r\nHost: x\r\n")
            .expect("half a header");
        closed_by_server(&mut stream)
    })
    .await
    .expect("reader");
    assert!(closed);
    app.stop().await;
}

#[tokio::test(flavor = "multi_thread")]
async fn a_connection_that_sends_nothing_is_closed_after_the_header_read_timeout() {
    // Nothing after the TCP handshake: the first-request timeout (the header read timeout,
    // which axum-server starts after a TLS handshake too) closes it.
    let app = TestApp::builder()
        .config(|c| c.header_read_timeout_secs = 1)
        .spawn()
        .await;
    let addr = addr_of(&app.http_base);
    let closed = tokio::task::spawn_blocking(move || {
        let mut stream = TcpStream::connect(addr).expect("connects");
        closed_by_server(&mut stream)
    })
    .await
    .expect("reader");
    assert!(closed);
    app.stop().await;
}

#[tokio::test(flavor = "multi_thread")]
async fn connections_over_the_cap_are_closed_while_the_held_ones_keep_serving() {
    let app = TestApp::builder()
        .config(|c| c.max_connections = 2)
        .spawn()
        .await;
    let addr = addr_of(&app.http_base);
    let served = tokio::task::spawn_blocking(move || {
        // Each held connection is served once, so it is known to hold its place before the
        // third connects (the accept tasks may otherwise run in any order).
        let mut held: Vec<TcpStream> = (0..2)
            .map(|_| TcpStream::connect(&addr).expect("connects"))
            .collect();
        for stream in &mut held {
            assert!(health_over(stream).starts_with("HTTP/1.1 200"));
        }
        // The kernel accepts the third; the emulator closes it without an answer.
        let mut third = TcpStream::connect(&addr).expect("connects");
        let _ = third.write_all(b"GET /_emulator/health HTTP/1.1\r\nHost: x\r\n\r\n");
        assert!(closed_by_server(&mut third), "the third is closed");
        // The held ones still get answers.
        health_over(&mut held[0])
    })
    .await
    .expect("client");
    assert!(served.starts_with("HTTP/1.1 200"), "{served}");
    app.stop().await;
}

/// A keep-alive health request on `stream`; the answer up to the end of its JSON body.
fn health_over(stream: &mut TcpStream) -> String {
    stream
        .write_all(b"GET /_emulator/health HTTP/1.1\r\nHost: x\r\n\r\n")
        .expect("request");
    stream
        .set_read_timeout(Some(Duration::from_secs(30)))
        .expect("read timeout");
    let mut answer = Vec::new();
    let mut byte = [0_u8; 1];
    while !answer.ends_with(b"}") {
        match stream.read(&mut byte) {
            Ok(1) => answer.push(byte[0]),
            other => panic!(
                "no whole answer ({other:?}): {}",
                String::from_utf8_lossy(&answer)
            ),
        }
    }
    String::from_utf8_lossy(&answer).into_owned()
}
