// Messages: send, get, list (one by one and by page), edit, delete, and who may edit.
// Real-service facts: api-contract.md §2.2, §2.5, §3 (ChatMessage), §5; sdk-clients.md §3.3
// ("lists messages one-by-one and by page") and §4 (recordings: system messages, newest first,
// editedOn + new version).

import assert from "node:assert/strict";
import { before, describe, test } from "node:test";

import {
  MINUTE,
  assertNear,
  assertRestError,
  collect,
  collectPages,
  endpoint,
  newChatUser,
  newThread,
  threadClient,
  tick,
  userIdOf,
} from "./helpers.mjs";

const SYSTEM_TYPES = new Set(["participantAdded", "participantRemoved", "topicUpdated"]);

describe("messages", () => {
  let alice;
  let bob;

  before(async () => {
    [alice, bob] = await Promise.all([newChatUser("Alice"), newChatUser("Bob")]);
  });

  test("sendMessage then getMessage returns the text message with sender and metadata", async () => {
    const threadId = await newThread(alice, [bob], "Hello");
    const client = threadClient(alice, threadId);
    const started = Date.now();

    let raw;
    const { id } = await client.sendMessage(
      { content: "hello world" },
      { senderDisplayName: "Alice A.", metadata: { tags: "x" }, onResponse: (response) => (raw = response) },
    );
    // Message ids are epoch milliseconds as a decimal string (api-contract.md §1).
    assert.match(id, /^\d+$/);
    // 201 with the absolute message URL in Location (api-contract.md §2.2).
    assert.equal(raw.status, 201);
    const location = raw.headers.get("location");
    assert.ok(location, "no Location header");
    assert.equal(decodeURIComponent(location), `${endpoint()}/chat/threads/${threadId}/messages/${id}`);
    assertNear(new Date(Number(id)), started, 5 * MINUTE, "message id as a time");

    for (const reader of [alice, bob]) {
      const message = await threadClient(reader, threadId).getMessage(id);
      assert.equal(message.id, id);
      assert.equal(message.type, "text");
      assert.equal(message.content?.message, "hello world");
      assert.equal(message.senderDisplayName, "Alice A.");
      assert.equal(userIdOf(message.sender), alice.id);
      assert.deepEqual(message.metadata, { tags: "x" });
      assert.match(message.sequenceId, /^\d+$/);
      assert.equal(message.version, id, "a new message's version is its id");
      assertNear(message.createdOn, started, 5 * MINUTE, "createdOn");
      assert.equal(message.editedOn, undefined);
      assert.equal(message.deletedOn, undefined);
    }
  });

  test("listMessages one by one and by page (maxPageSize 2) agree, newest first, with system messages", async () => {
    const threadId = await newThread(alice, [bob], "Lunch");
    const aliceThread = threadClient(alice, threadId);
    const bobThread = threadClient(bob, threadId);

    const sent = [];
    sent.push((await aliceThread.sendMessage({ content: "one" })).id);
    await tick();
    sent.push((await bobThread.sendMessage({ content: "two" }, { senderDisplayName: "Bob" })).id);
    await tick();
    await aliceThread.updateTopic("Dinner");
    await tick();
    sent.push((await aliceThread.sendMessage({ content: "three" })).id);

    const oneByOne = await collect(aliceThread.listMessages());
    const pages = await collectPages(aliceThread.listMessages({ maxPageSize: 2 }), { maxPageSize: 2 });
    const paged = pages.flat();

    // Same items in the same order, every page within the size, no empty trailing page.
    assert.deepEqual(
      paged.map((m) => m.id),
      oneByOne.map((m) => m.id),
    );
    for (const page of pages) assert.ok(page.length <= 2, `a page has ${page.length} items`);
    assert.equal(pages.length, Math.ceil(oneByOne.length / 2), "number of pages");

    // 3 texts + participantAdded + topicUpdated (create) + topicUpdated (rename).
    assert.equal(oneByOne.length, 6, `messages: ${oneByOne.map((m) => m.type).join(", ")}`);

    // Newest first: sequence ids strictly decreasing, ids not increasing.
    for (let i = 1; i < oneByOne.length; i++) {
      assert.ok(
        Number(oneByOne[i - 1].sequenceId) > Number(oneByOne[i].sequenceId),
        `sequenceId ${oneByOne[i - 1].sequenceId} listed before ${oneByOne[i].sequenceId}`,
      );
      assert.ok(Number(oneByOne[i - 1].id) >= Number(oneByOne[i].id), "ids not newest first");
    }
    const texts = oneByOne.filter((m) => m.type === "text");
    assert.deepEqual(
      texts.map((m) => m.content?.message),
      ["three", "two", "one"],
    );
    assert.deepEqual(
      texts.map((m) => m.id),
      [...sent].reverse(),
    );
    assert.equal(userIdOf(texts[1].sender), bob.id);
    assert.equal(texts[1].senderDisplayName, "Bob");

    // The thread's history starts with participantAdded, then topicUpdated (api-contract.md §2.1).
    const oldest = oneByOne.at(-1);
    assert.equal(oldest.type, "participantAdded");
    assert.equal(oldest.sequenceId, "1");
    const added = (oldest.content?.participants ?? []).map((p) => userIdOf(p.id));
    assert.ok(added.includes(bob.id), `participantAdded lists ${JSON.stringify(added)}, not Bob`);
    for (const id of added) assert.ok([alice.id, bob.id].includes(id), `participantAdded lists a stranger ${id}`);
    assert.equal(userIdOf(oldest.content?.initiator), alice.id);

    const topics = oneByOne.filter((m) => m.type === "topicUpdated");
    assert.deepEqual(
      topics.map((m) => m.content?.topic),
      ["Dinner", "Lunch"],
    );
    assert.equal(oneByOne.at(-2).type, "topicUpdated");
    assert.equal(oneByOne.at(-2).content?.topic, "Lunch");
    for (const m of topics) assert.equal(userIdOf(m.content?.initiator), alice.id);

    // System messages carry no sender (api-contract.md §3, examples).
    for (const m of oneByOne.filter((x) => SYSTEM_TYPES.has(x.type))) {
      assert.equal(m.sender, undefined, `${m.type} message has a sender`);
    }

    // Bob sees the same history.
    const bobView = await collect(bobThread.listMessages());
    assert.deepEqual(
      bobView.map((m) => m.id),
      oneByOne.map((m) => m.id),
    );
  });

  test("updateMessage changes the content and sets editedOn and a new version", async () => {
    const threadId = await newThread(alice, [bob], "Edits");
    const client = threadClient(alice, threadId);
    const { id } = await client.sendMessage({ content: "first draft" }, { metadata: { tags: "x" } });
    const original = await client.getMessage(id);
    await tick(20);

    await client.updateMessage(id, { content: "final text", metadata: { tags: "y" } });

    const edited = await client.getMessage(id);
    assert.equal(edited.content?.message, "final text");
    assert.equal(edited.metadata?.tags, "y");
    assert.ok(edited.editedOn instanceof Date, "editedOn is not set after an edit");
    assert.ok(edited.editedOn.getTime() >= original.createdOn.getTime() - 1000, "editedOn before createdOn");
    assert.notEqual(edited.version, original.version, "version unchanged by an edit");
    assert.equal(edited.id, id);
    assert.equal(edited.sequenceId, original.sequenceId);
    assert.equal(edited.deletedOn, undefined);
  });

  test("deleteMessage marks the message deleted", async () => {
    const threadId = await newThread(alice, [bob], "Deletes");
    const client = threadClient(alice, threadId);
    const { id } = await client.sendMessage({ content: "oops" });

    await client.deleteMessage(id);

    const deleted = await client.getMessage(id);
    assert.equal(deleted.id, id);
    assert.ok(deleted.deletedOn instanceof Date, "deletedOn is not set after a delete");
  });

  test("only the sender may edit or delete a message: others get 403", async () => {
    const threadId = await newThread(alice, [bob], "Mine");
    const { id } = await threadClient(alice, threadId).sendMessage({ content: "Alice's words" });
    const bobThread = threadClient(bob, threadId);

    await assertRestError(() => bobThread.updateMessage(id, { content: "Bob's words" }), 403);
    await assertRestError(() => bobThread.deleteMessage(id), 403);

    const message = await bobThread.getMessage(id);
    assert.equal(message.content?.message, "Alice's words");
    assert.equal(message.editedOn, undefined);
    assert.equal(message.deletedOn, undefined);
  });
});
