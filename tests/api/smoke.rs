//! The shortest path through the API: a user, a thread, a message.

use reqwest::Method;

use crate::helpers::{TestApp, enc};

#[tokio::test]
async fn user_thread_message() {
    let app = TestApp::builder().spawn().await;
    let (alice, token) = app.create_user().await;
    let thread = app.create_thread(&token, "lunch", &[]).await;
    let id = app.send_message(&token, &thread, "hello").await;
    let reply = app
        .chat(
            Method::GET,
            &format!("/chat/threads/{}/messages/{id}", enc(&thread)),
            &token,
            None,
        )
        .await;
    assert_eq!(reply.status, 200, "{}", reply.text);
    let body = reply.json();
    assert_eq!(body["content"]["message"], "hello");
    assert_eq!(
        body["senderCommunicationIdentifier"]["rawId"],
        alice.as_str()
    );
    app.stop().await;
}
