// Read receipts (latest per participant) and typing notifications.
// Real-service facts: api-contract.md §2.4; sdk-clients.md §2.6 (typing is client-throttled and
// returns true/false), §3.3 (test_list_read_receipts: exactly one receipt per participant) and §4.

import assert from "node:assert/strict";
import { before, describe, test } from "node:test";

import {
  MINUTE,
  assertNear,
  collect,
  collectPages,
  eventually,
  newChatUser,
  newThread,
  threadClient,
  tick,
  userIdOf,
} from "./helpers.mjs";

describe("read receipts and typing", () => {
  let alice;
  let bob;

  before(async () => {
    [alice, bob] = await Promise.all([newChatUser("Alice"), newChatUser("Bob")]);
  });

  test("listReadReceipts keeps the latest receipt of each participant", async () => {
    const threadId = await newThread(alice, [bob], "Receipts");
    const aliceThread = threadClient(alice, threadId);
    const bobThread = threadClient(bob, threadId);
    const started = Date.now();

    const first = (await aliceThread.sendMessage({ content: "first" })).id;
    await tick();
    const second = (await aliceThread.sendMessage({ content: "second" })).id;

    await bobThread.sendReadReceipt({ chatMessageId: first });
    await bobThread.sendReadReceipt({ chatMessageId: second });
    await aliceThread.sendReadReceipt({ chatMessageId: second });

    // The service applies receipts asynchronously; the SDK's own tests poll too.
    const expected = [
      [alice.id, second],
      [bob.id, second],
    ].sort();
    const summary = (receipts) => receipts.map((r) => [userIdOf(r.sender), r.chatMessageId]).sort();
    const receipts = await eventually(
      () => collect(aliceThread.listReadReceipts()),
      (value) => JSON.stringify(summary(value)) === JSON.stringify(expected),
    );
    assert.deepEqual(summary(receipts), expected);
    for (const receipt of receipts) assertNear(receipt.readOn, started, 5 * MINUTE, "readOn");

    // Bob sees the same receipts; paging with maxPageSize 1 gives them one per page.
    assert.deepEqual(summary(await collect(bobThread.listReadReceipts())), expected);
    const pages = await collectPages(bobThread.listReadReceipts({ maxPageSize: 1 }), { maxPageSize: 1 });
    for (const page of pages) assert.ok(page.length <= 1, `a page has ${page.length} items`);
    assert.deepEqual(summary(pages.flat()), expected);
  });

  test("sendTypingNotification returns true, then false while the client throttles", async () => {
    const threadId = await newThread(alice, [bob], "Typing");
    const aliceThread = threadClient(alice, threadId);

    assert.equal(await aliceThread.sendTypingNotification(), true);
    // The SDK itself suppresses a second notification within 8 s (no request is sent).
    assert.equal(await aliceThread.sendTypingNotification(), false);

    // Another participant, with a display name.
    assert.equal(await threadClient(bob, threadId).sendTypingNotification({ senderDisplayName: "Bob" }), true);
  });
});
