// Errors the SDK surfaces as RestError: strangers (403 Forbidden), unknown threads (404), bad
// tokens (401). Real-service facts: api-contract.md §5 (only participants reach a thread), §6
// (error body; 403 code "Forbidden"), sdk-clients.md §4 (404 "NotFound" for an unknown thread).

import assert from "node:assert/strict";
import { before, describe, test } from "node:test";

import {
  assertRestError,
  chatClientFor,
  collect,
  newChatUser,
  newThread,
  threadClient,
} from "./helpers.mjs";

// A thread id of the real shape that no thread has.
const UNKNOWN_THREAD = "19:0123456789abcdef0123456789abcdef@thread.v2";

describe("errors", () => {
  let alice;
  let bob;
  let eve;
  let threadId;
  let messageId;

  before(async () => {
    [alice, bob, eve] = await Promise.all([newChatUser("Alice"), newChatUser("Bob"), newChatUser("Eve")]);
    threadId = await newThread(alice, [bob], "Private");
    messageId = (await threadClient(alice, threadId).sendMessage({ content: "secret" })).id;
  });

  test("a non-participant gets 403 Forbidden on every thread operation", async () => {
    const stranger = threadClient(eve, threadId);
    await assertRestError(() => stranger.getProperties(), 403, "Forbidden");
    await assertRestError(() => stranger.sendMessage({ content: "let me in" }), 403, "Forbidden");
    await assertRestError(() => stranger.getMessage(messageId), 403, "Forbidden");
    await assertRestError(() => collect(stranger.listMessages()), 403, "Forbidden");
    await assertRestError(() => collect(stranger.listParticipants()), 403, "Forbidden");
    await assertRestError(() => stranger.updateTopic("mine now"), 403, "Forbidden");
    await assertRestError(() => stranger.updateMessage(messageId, { content: "edited" }), 403, "Forbidden");
    await assertRestError(() => stranger.sendReadReceipt({ chatMessageId: messageId }), 403, "Forbidden");
    await assertRestError(() => collect(stranger.listReadReceipts()), 403, "Forbidden");

    // Nothing leaked or changed.
    const properties = await threadClient(alice, threadId).getProperties();
    assert.equal(properties.topic, "Private");
    const threads = (await collect(eve.chat.listChatThreads())).map((t) => t.id);
    assert.ok(!threads.includes(threadId), "the thread shows in a stranger's thread list");
  });

  test("an unknown thread is 404 NotFound", async () => {
    await assertRestError(() => threadClient(alice, UNKNOWN_THREAD).getProperties(), 404, "NotFound");
  });

  test("a token the service did not sign is 401", async () => {
    // Well-formed JWT (exp in an hour, real claim names) with a made-up signature.
    const b64url = (value) => Buffer.from(JSON.stringify(value)).toString("base64url");
    const now = Math.floor(Date.now() / 1000);
    const forged = [
      b64url({ alg: "HS256", typ: "JWT" }),
      b64url({ skypeid: alice.id.slice(2), scp: 1792, csi: String(now), iat: now, exp: now + 3600, acsScope: "chat" }),
      "c2lnbmF0dXJl",
    ].join(".");
    const chat = chatClientFor(forged);
    await assertRestError(() => chat.getChatThreadClient(threadId).getProperties(), 401);
    await assertRestError(() => collect(chat.listChatThreads()), 401);
  });
});
