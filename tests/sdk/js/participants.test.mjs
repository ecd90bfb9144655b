// Participants: the creator is one, add, list (paged, skip), re-add, remove, and what a removed
// user may no longer do. Real-service facts: api-contract.md §2.1 (creator added), §2.3, §5;
// sdk-clients.md §3.3 (list_participants with skip) and §4 (recordings: :add 201 {}, :remove 204).

import assert from "node:assert/strict";
import { before, describe, test } from "node:test";

import {
  assertRestError,
  collect,
  collectPages,
  newChatUser,
  newThread,
  threadClient,
  userIdOf,
} from "./helpers.mjs";

const ids = (participants) => participants.map((p) => userIdOf(p.id)).sort();

describe("participants", () => {
  let alice;
  let bob;
  let carol;

  before(async () => {
    [alice, bob, carol] = await Promise.all([newChatUser("Alice"), newChatUser("Bob"), newChatUser("Carol")]);
  });

  test("the creator is a participant of a thread created without participants", async () => {
    const threadId = await newThread(alice, [], "Alone");
    const participants = await collect(threadClient(alice, threadId).listParticipants());
    assert.deepEqual(ids(participants), [alice.id]);
  });

  test("addParticipants adds users that then see the thread and can post", async () => {
    const threadId = await newThread(alice, [], "Growing");
    const client = threadClient(alice, threadId);

    const result = await client.addParticipants({
      participants: [{ id: bob.user, displayName: "Bob" }, { id: carol.user }],
    });
    assert.ok(
      result.invalidParticipants === undefined || result.invalidParticipants.length === 0,
      `unexpected invalidParticipants ${JSON.stringify(result.invalidParticipants)}`,
    );

    const participants = await collect(client.listParticipants());
    assert.deepEqual(ids(participants), [alice.id, bob.id, carol.id].sort());
    const bobEntry = participants.find((p) => userIdOf(p.id) === bob.id);
    assert.equal(bobEntry.displayName, "Bob");

    // The addition is in the history as participantAdded, initiated by Alice.
    const messages = await collect(client.listMessages());
    const addition = messages.find(
      (m) => m.type === "participantAdded" && (m.content?.participants ?? []).some((p) => userIdOf(p.id) === carol.id),
    );
    assert.ok(addition, "no participantAdded message for the added users");
    assert.deepEqual(ids(addition.content.participants), [bob.id, carol.id].sort());
    assert.equal(userIdOf(addition.content?.initiator), alice.id);

    // The new participants can read and post.
    const properties = await threadClient(bob, threadId).getProperties();
    assert.equal(properties.topic, "Growing");
    await threadClient(carol, threadId).sendMessage({ content: "hi, I'm Carol" });
    const listedForBob = (await collect(bob.chat.listChatThreads())).map((t) => t.id);
    assert.ok(listedForBob.includes(threadId), "the thread is not in Bob's thread list");
  });

  test("adding an existing participant again changes nothing", async () => {
    const threadId = await newThread(alice, [bob], "Twice");
    const client = threadClient(alice, threadId);
    await client.addParticipants({ participants: [{ id: bob.user, displayName: "Bob" }] });
    const participants = await collect(client.listParticipants());
    assert.deepEqual(ids(participants), [alice.id, bob.id].sort());
  });

  test("listParticipants pages with maxPageSize 1 and honours skip", async () => {
    const threadId = await newThread(alice, [bob, carol], "Paging");
    const client = threadClient(alice, threadId);

    const pages = await collectPages(client.listParticipants({ maxPageSize: 1 }), { maxPageSize: 1 });
    for (const page of pages) assert.ok(page.length <= 1, `a page has ${page.length} items`);
    assert.deepEqual(ids(pages.flat()), [alice.id, bob.id, carol.id].sort());

    const skipped = await collect(client.listParticipants({ skip: 1 }));
    assert.equal(skipped.length, 2, `skip 1 of 3 gave ${skipped.length}`);
    const skippedPaged = await collectPages(client.listParticipants({ maxPageSize: 1, skip: 1 }));
    assert.equal(skippedPaged.flat().length, 2);
  });

  test("removeParticipant removes the user, who then can no longer post (403)", async () => {
    const threadId = await newThread(alice, [bob, carol], "Shrinking");
    const client = threadClient(alice, threadId);
    await threadClient(carol, threadId).sendMessage({ content: "before removal" });

    await client.removeParticipant(carol.user);

    const participants = await collect(client.listParticipants());
    assert.deepEqual(ids(participants), [alice.id, bob.id].sort());

    await assertRestError(() => threadClient(carol, threadId).sendMessage({ content: "after removal" }), 403);

    // The removal is in the history as participantRemoved, initiated by Alice.
    const messages = await collect(client.listMessages());
    const removal = messages.find((m) => m.type === "participantRemoved");
    assert.ok(removal, `no participantRemoved message in ${messages.map((m) => m.type).join(", ")}`);
    assert.deepEqual(ids(removal.content?.participants ?? []), [carol.id]);
    assert.equal(userIdOf(removal.content?.initiator), alice.id);
    assert.equal(messages[0].id, removal.id, "participantRemoved is not the newest message");
  });
});
