//! The 2020 preview surface over raw HTTP: what the SDK test cannot see (error body shape,
//! routing without an api-version) and that both surfaces share one state.

use reqwest::Method;
use serde_json::json;

use crate::helpers::{TestApp, enc};

const V: &str = "api-version=2020-09-21-preview2";

#[tokio::test]
async fn preview2_threads_are_todays_threads_and_errors_are_bare() {
    let app = TestApp::builder().spawn().await;
    let (alice, token) = app.create_user().await;
    let (bob, bob_token) = app.create_user().await;
    let created = app
        .chat(
            Method::POST,
            &format!("/chat/threads?{V}"),
            &token,
            Some(json!({"topic": "old", "members": [{"id": alice}, {"id": bob}]})),
        )
        .await;
    assert_eq!(created.status, 207, "{}", created.text);
    let statuses = created.json()["multipleStatus"]
        .as_array()
        .expect("statuses")
        .clone();
    let thread = statuses
        .iter()
        .find(|s| s["type"] == "Thread")
        .expect("thread entry");
    assert_eq!(thread["statusCode"], 201);
    let thread_id = thread["id"].as_str().expect("id").to_owned();
    assert_eq!(
        statuses
            .iter()
            .filter(|s| s["type"] == "ThreadMember" && s["statusCode"] == 201)
            .count(),
        2
    );

    // The same thread through today's API.
    let today = app
        .chat(
            Method::GET,
            &format!("/chat/threads/{}", enc(&thread_id)),
            &bob_token,
            None,
        )
        .await;
    assert_eq!(today.status, 200);
    assert_eq!(today.json()["topic"], "old");

    // Errors of this surface are the bare Error model.
    let (_, outsider) = app.create_user().await;
    let refused = app
        .chat(
            Method::GET,
            &format!("/chat/threads/{}?{V}", enc(&thread_id)),
            &outsider,
            None,
        )
        .await;
    assert_eq!(refused.status, 403);
    assert_eq!(refused.json()["code"], "Forbidden");
    assert!(refused.json().get("error").is_none(), "{}", refused.text);

    // A path only this surface has, without an api-version: that route's 400.
    let no_version = app
        .send(
            Method::GET,
            &format!("{}/chat/threads/{}/members", app.http_base, enc(&thread_id)),
            &[("authorization", format!("Bearer {token}"))],
            None,
        )
        .await;
    assert_eq!(no_version.status, 400);
    assert_eq!(no_version.json()["code"], "MissingApiVersionParameter");
    // Today's versions do not have `members`.
    let wrong_version = app
        .chat(
            Method::GET,
            &format!(
                "/chat/threads/{}/members?api-version=2025-03-15",
                enc(&thread_id)
            ),
            &token,
            None,
        )
        .await;
    assert_eq!(wrong_version.status, 404);
    app.stop().await;
}
