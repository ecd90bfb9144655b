//! Image upload, view and delete, and image attachments (Chat 2024-03-15-preview).

use reqwest::Method;
use serde_json::json;

use crate::helpers::{TestApp, enc};

const PREVIEW: &str = "2024-03-15-preview";
/// The smallest PNG signature plus some bytes: what the emulator checks is the format.
const PNG: &[u8] = &[
    0x89, b'P', b'N', b'G', 0x0D, 0x0A, 0x1A, 0x0A, 0, 0, 0, 13, b'I', b'H', b'D', b'R',
];

async fn upload(
    app: &TestApp,
    token: &str,
    thread: &str,
    version: &str,
    body: &[u8],
) -> crate::helpers::Reply {
    let response = app
        .client
        .post(format!(
            "{}/chat/threads/{}/images?api-version={version}",
            app.http_base,
            enc(thread)
        ))
        .bearer_auth(token)
        .header("content-type", "application/octet-stream")
        .header("image-filename", "lunch.png")
        .body(body.to_vec())
        .send()
        .await
        .expect("sent");
    crate::helpers::Reply {
        status: response.status(),
        headers: response.headers().clone(),
        text: response.text().await.expect("body"),
    }
}

#[tokio::test]
async fn upload_attach_view_and_delete_an_image() {
    let app = TestApp::builder().spawn().await;
    let (_, alice) = app.create_user().await;
    let (bob_id, bob) = app.create_user().await;
    let thread = app.create_thread(&alice, "pictures", &[&bob_id]).await;

    let uploaded = upload(&app, &alice, &thread, PREVIEW, PNG).await;
    assert_eq!(uploaded.status, 201, "{}", uploaded.text);
    let body = uploaded.json();
    let image_id = body["id"].as_str().expect("id").to_owned();
    assert_eq!(body["attachmentType"], "image");
    assert_eq!(body["name"], "lunch.png");
    // Relative, as in the spec example.
    assert_eq!(
        uploaded.header("location"),
        Some(
            format!(
                "/chat/threads/{}/images/{image_id}",
                thread.replace(':', "%3A")
            )
            .as_str()
        )
    );

    let send = app
        .chat(
            Method::POST,
            &format!("/chat/threads/{}/messages?api-version={PREVIEW}", enc(&thread)),
            &alice,
            Some(json!({"content": "look", "attachments": [{"id": image_id, "attachmentType": "image"}]})),
        )
        .await;
    assert_eq!(send.status, 201, "{}", send.text);
    let message_id = send.json()["id"].as_str().expect("id").to_owned();
    let got = app
        .chat(
            Method::GET,
            &format!(
                "/chat/threads/{}/messages/{message_id}?api-version={PREVIEW}",
                enc(&thread)
            ),
            &bob,
            None,
        )
        .await;
    let attachment = got.json()["content"]["attachments"][0].clone();
    assert_eq!(attachment["id"], image_id.as_str());
    assert_eq!(attachment["name"], "lunch.png");
    let url = attachment["url"].as_str().expect("url").to_owned();
    assert!(
        attachment["previewUrl"]
            .as_str()
            .is_some_and(|u| u.contains("/view/small"))
    );

    // Another participant can view it through the link.
    let view = app
        .client
        .get(&url)
        .bearer_auth(&bob)
        .send()
        .await
        .expect("sent");
    assert_eq!(view.status(), 200);
    assert_eq!(view.headers()["content-type"], "image/png");
    assert_eq!(view.bytes().await.expect("bytes").as_ref(), PNG);

    // On 2024-03-07 the attachment list exists but the request field does not.
    let old = app
        .chat(
            Method::GET,
            &format!(
                "/chat/threads/{}/messages/{message_id}?api-version=2024-03-07",
                enc(&thread)
            ),
            &bob,
            None,
        )
        .await;
    assert_eq!(
        old.json()["content"]["attachments"][0]["id"],
        image_id.as_str()
    );

    let delete_path = format!(
        "/chat/threads/{}/images/{image_id}?api-version={PREVIEW}",
        enc(&thread)
    );
    assert_eq!(
        app.chat(Method::DELETE, &delete_path, &alice, None)
            .await
            .status,
        204
    );
    app.chat(Method::DELETE, &delete_path, &alice, None)
        .await
        .assert_error(404, "NotFound");
    let gone = app
        .client
        .get(&url)
        .bearer_auth(&bob)
        .send()
        .await
        .expect("sent");
    assert_eq!(gone.status(), 404);
    app.stop().await;
}

#[tokio::test]
async fn bad_uploads_and_other_versions_are_refused() {
    let app = TestApp::builder().spawn().await;
    let (_, alice) = app.create_user().await;
    let (_, outsider) = app.create_user().await;
    let thread = app.create_thread(&alice, "pictures", &[]).await;
    upload(&app, &alice, &thread, PREVIEW, b"%PDF-1.7 not an image")
        .await
        .assert_error(400, "BadRequest");
    upload(&app, &alice, &thread, PREVIEW, b"")
        .await
        .assert_error(400, "BadRequest");
    upload(&app, &alice, &thread, "2025-03-15", PNG)
        .await
        .assert_error(404, "NotFound");
    upload(&app, &outsider, &thread, PREVIEW, PNG)
        .await
        .assert_error(403, "Forbidden");
    let id = upload(&app, &alice, &thread, PREVIEW, PNG).await.json()["id"]
        .as_str()
        .expect("id")
        .to_owned();
    let bad_view = app
        .chat(
            Method::GET,
            &format!(
                "/chat/threads/{}/images/{id}/view/huge?api-version={PREVIEW}",
                enc(&thread)
            ),
            &alice,
            None,
        )
        .await;
    bad_view.assert_error(400, "BadRequest");
    let unknown = app
        .chat(
            Method::POST,
            &format!("/chat/threads/{}/messages?api-version={PREVIEW}", enc(&thread)),
            &alice,
            Some(json!({"content": "x", "attachments": [{"id": "0-emu-d1-nope", "attachmentType": "image"}]})),
        )
        .await;
    unknown.assert_error(400, "BadRequest");
    let file = app
        .chat(
            Method::POST,
            &format!(
                "/chat/threads/{}/messages?api-version={PREVIEW}",
                enc(&thread)
            ),
            &alice,
            Some(json!({"content": "x", "attachments": [{"id": id, "attachmentType": "file"}]})),
        )
        .await;
    file.assert_error(400, "BadRequest");
    // Images survive export → reset → import.
    let before = app.export().await;
    assert_eq!(
        before["threads"][0]["images"].as_array().map(Vec::len),
        Some(1)
    );
    assert_eq!(
        app.admin(Method::POST, "/_emulator/reset", None)
            .await
            .status,
        204
    );
    assert_eq!(
        app.admin(Method::PUT, "/_emulator/state", Some(before.clone()))
            .await
            .status,
        204
    );
    assert_eq!(app.export().await, before);
    app.stop().await;
}
