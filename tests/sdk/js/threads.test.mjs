// Threads: create, read, update (topic, metadata, retention policy), list, delete.
// Real-service facts: api-contract.md §2, §2.1, §3, §5; sdk-clients.md §3.3 (JS chatClient.spec /
// chatThreadClient.spec) and §4 (recordings).

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
  userIdOf,
} from "./helpers.mjs";

const THREAD_ID = /^19:.+@thread\.v2$/;

describe("threads", () => {
  let alice;
  let bob;

  before(async () => {
    [alice, bob] = await Promise.all([newChatUser("Alice"), newChatUser("Bob")]);
  });

  test("createChatThread echoes topic, metadata and retention policy", async () => {
    const started = Date.now();
    let raw;
    const result = await alice.chat.createChatThread(
      { topic: "Team lunch" },
      {
        participants: [{ id: bob.user, displayName: "Bob" }],
        metadata: { threadType: "primary" },
        retentionPolicy: { kind: "threadCreationDate", deleteThreadAfterDays: 90 },
        onResponse: (response) => (raw = response),
      },
    );
    const thread = result.chatThread;
    assert.ok(thread, "no chatThread in the result");
    assert.match(thread.id, THREAD_ID);
    // 201 with the absolute thread URL in Location, id percent-encoded (api-contract.md §2.1).
    assert.equal(raw.status, 201);
    const location = raw.headers.get("location");
    assert.ok(location, "no Location header");
    assert.equal(decodeURIComponent(location), `${endpoint()}/chat/threads/${thread.id}`);
    assert.equal(thread.topic, "Team lunch");
    assert.deepEqual(thread.metadata, { threadType: "primary" });
    assert.deepEqual(thread.retentionPolicy, { kind: "threadCreationDate", deleteThreadAfterDays: 90 });
    assert.equal(userIdOf(thread.createdBy), alice.id);
    assertNear(thread.createdOn, started, 5 * MINUTE, "createdOn");
    assert.equal(thread.deletedOn, undefined);
    assert.ok(
      result.invalidParticipants === undefined || result.invalidParticipants.length === 0,
      `unexpected invalidParticipants ${JSON.stringify(result.invalidParticipants)}`,
    );
  });

  test("getProperties returns what was created, to every participant", async () => {
    const threadId = await newThread(alice, [bob], "Properties", {
      metadata: { threadType: "primary", secondaryThread: "none" },
      retentionPolicy: { kind: "threadCreationDate", deleteThreadAfterDays: 60 },
    });
    for (const who of [alice, bob]) {
      const properties = await threadClient(who, threadId).getProperties();
      assert.equal(properties.id, threadId);
      assert.equal(properties.topic, "Properties");
      assert.equal(userIdOf(properties.createdBy), alice.id);
      assert.ok(properties.createdOn instanceof Date);
      assert.deepEqual(properties.metadata, { threadType: "primary", secondaryThread: "none" });
      assert.deepEqual(properties.retentionPolicy, { kind: "threadCreationDate", deleteThreadAfterDays: 60 });
    }
  });

  test("the same idempotency token creates the thread only once", async () => {
    const idempotencyToken = crypto.randomUUID();
    const first = await alice.chat.createChatThread({ topic: "Once" }, { idempotencyToken });
    const second = await alice.chat.createChatThread({ topic: "Once" }, { idempotencyToken });
    assert.equal(second.chatThread.id, first.chatThread.id);
  });

  test("updateTopic changes the topic", async () => {
    const threadId = await newThread(alice, [bob], "Old topic");
    const client = threadClient(alice, threadId);
    await client.updateTopic("New topic");
    assert.equal((await client.getProperties()).topic, "New topic");
    assert.equal((await threadClient(bob, threadId).getProperties()).topic, "New topic");
  });

  test("updateProperties merges metadata and keeps the rest", async () => {
    const threadId = await newThread(alice, [bob], "Metadata", {
      metadata: { threadType: "primary" },
      retentionPolicy: { kind: "threadCreationDate", deleteThreadAfterDays: 90 },
    });
    const client = threadClient(alice, threadId);

    await client.updateProperties({ metadata: { secondaryThread: "test-id" } });
    let properties = await client.getProperties();
    assert.deepEqual(properties.metadata, { threadType: "primary", secondaryThread: "test-id" });

    await client.updateProperties({ metadata: { threadType: "secondary" } });
    properties = await client.getProperties();
    assert.deepEqual(properties.metadata, { threadType: "secondary", secondaryThread: "test-id" });
    assert.equal(properties.topic, "Metadata");
    assert.deepEqual(properties.retentionPolicy, { kind: "threadCreationDate", deleteThreadAfterDays: 90 });

    await client.updateProperties({ topic: "Metadata (renamed)" });
    properties = await client.getProperties();
    assert.equal(properties.topic, "Metadata (renamed)");
    assert.deepEqual(properties.metadata, { threadType: "secondary", secondaryThread: "test-id" });
  });

  test("retention policy can be switched to none and back", async () => {
    const threadId = await newThread(alice, [], "Retention", {
      retentionPolicy: { kind: "threadCreationDate", deleteThreadAfterDays: 60 },
    });
    const client = threadClient(alice, threadId);

    await client.updateProperties({ retentionPolicy: { kind: "none" } });
    let properties = await client.getProperties();
    assert.deepEqual(properties.retentionPolicy, { kind: "none" });

    await client.updateProperties({ metadata: { threadType: "secondary" } });
    properties = await client.getProperties();
    assert.deepEqual(properties.retentionPolicy, { kind: "none" }, "a metadata update changed the retention policy");

    await client.updateProperties({ retentionPolicy: { kind: "threadCreationDate", deleteThreadAfterDays: 30 } });
    properties = await client.getProperties();
    assert.deepEqual(properties.retentionPolicy, { kind: "threadCreationDate", deleteThreadAfterDays: 30 });

    // Setting null (merge-patch removal) reads back as none, as recorded from the service
    // (recordings/js-assets/...to_none_retention_plicy_by_setting_null.json).
    await client.updateProperties({ retentionPolicy: null });
    properties = await client.getProperties();
    assert.deepEqual(properties.retentionPolicy, { kind: "none" });
  });

  test("deleteThreadAfterDays outside 30..90 is rejected with 400", async () => {
    for (const days of [29, 91]) {
      await assertRestError(
        () =>
          alice.chat.createChatThread(
            { topic: `retention ${days}` },
            { retentionPolicy: { kind: "threadCreationDate", deleteThreadAfterDays: days } },
          ),
        400,
      );
    }
    const threadId = await newThread(alice, [], "Retention bounds");
    const client = threadClient(alice, threadId);
    await assertRestError(
      () => client.updateProperties({ retentionPolicy: { kind: "threadCreationDate", deleteThreadAfterDays: 91 } }),
      400,
    );
    // The rejected update left nothing behind.
    const properties = await client.getProperties();
    assert.ok(
      properties.retentionPolicy === undefined || properties.retentionPolicy.kind === "none",
      `retention policy changed by a rejected update: ${JSON.stringify(properties.retentionPolicy)}`,
    );
  });

  test("listChatThreads pages with maxPageSize 1 and lists only the caller's threads", async () => {
    const [carol, dave] = await Promise.all([newChatUser("Carol"), newChatUser("Dave")]);
    const ids = [];
    for (const topic of ["first", "second", "third"]) {
      ids.push(await newThread(carol, [], topic));
    }
    await newThread(dave, [], "not Carol's");

    const pages = await collectPages(carol.chat.listChatThreads({ maxPageSize: 1 }), { maxPageSize: 1 });
    for (const page of pages) assert.ok(page.length <= 1, `a page has ${page.length} items`);
    const paged = pages.flat();
    assert.deepEqual(paged.map((t) => t.id).sort(), [...ids].sort());
    const byId = new Map(paged.map((t) => [t.id, t]));
    assert.equal(byId.get(ids[0]).topic, "first");
    assert.equal(byId.get(ids[2]).topic, "third");

    const oneByOne = await collect(carol.chat.listChatThreads());
    assert.deepEqual(oneByOne.map((t) => t.id).sort(), [...ids].sort());
  });

  test("deleteChatThread twice succeeds; the thread is then gone", async () => {
    const threadId = await newThread(alice, [bob], "Doomed");
    await alice.chat.deleteChatThread(threadId);
    await alice.chat.deleteChatThread(threadId);

    await assertRestError(() => threadClient(alice, threadId).getProperties(), 404);
    await assertRestError(() => threadClient(bob, threadId).getProperties(), 404);

    // A deleted thread may still be listed, but then with deletedOn (api-contract.md §3).
    const listed = (await collect(alice.chat.listChatThreads())).find((t) => t.id === threadId);
    if (listed) assert.ok(listed.deletedOn instanceof Date, "a deleted thread is listed without deletedOn");
  });
});
