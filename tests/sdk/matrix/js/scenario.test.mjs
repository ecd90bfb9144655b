// The version-matrix scenario, shared by every @azure/communication-chat version in this folder.
//
// run.sh runs it once per version folder (<version>/ holds package.json + package-lock.json):
//
//   MATRIX_SDK_DIR=tests/sdk/matrix/js/1.4.0 node --test tests/sdk/matrix/js/scenario.test.mjs
//
// The SDK packages are loaded from MATRIX_SDK_DIR's node_modules (createRequire), so one file
// serves every version. Environment:
//   ACS_CONNECTION_STRING        endpoint=https://127.0.0.1:PORT/;accesskey=BASE64
//   NODE_EXTRA_CA_CERTS          the emulator's CA
//   MATRIX_SDK_DIR               the version folder
//   MATRIX_CHAT_API_VERSION      the api-version this chat version is expected to send
//   MATRIX_IDENTITY_API_VERSION  the api-version the paired identity version is expected to send
//   MATRIX_OBSERVED_FILE         optional: where to write "chat-api-version=<v> identity-api-version=<v>"
//
// The steps are the same as ../python/scenario.py. What is asserted is what the real service does
// (shared/docs/api-contract.md, sdk-clients.md §3.3 and §4, shared/reference/recordings), and only
// what the api-version carries: message metadata and the typing display name from 2021-09-07,
// content.attachments from 2023-11-07. Every HTTP request is observed through Node's
// http.client.request.start diagnostics channel (read-only) to check the api-version on the wire,
// nextLink requests included. After the first failing step the later ones are skipped.

import assert from "node:assert/strict";
import diagnosticsChannel from "node:diagnostics_channel";
import { writeFileSync } from "node:fs";
import { createRequire } from "node:module";
import path from "node:path";
import { after, describe, test } from "node:test";

function requireEnv(name) {
  const value = process.env[name]?.trim();
  if (!value) throw new Error(`${name} is not set (see the header of scenario.test.mjs)`);
  return value;
}

const CONNECTION_STRING = requireEnv("ACS_CONNECTION_STRING");
const CHAT_API = requireEnv("MATRIX_CHAT_API_VERSION");
const IDENTITY_API = requireEnv("MATRIX_IDENTITY_API_VERSION");
const SDK_DIR = path.resolve(requireEnv("MATRIX_SDK_DIR"));

// Wire features by api-version (api-contract.md §9); ISO dates compare as strings.
const HAS_MESSAGE_METADATA = CHAT_API >= "2021-09-07";
const HAS_TYPING_DISPLAY_NAME = CHAT_API >= "2021-09-07";
const HAS_ATTACHMENTS = CHAT_API >= "2023-11-07";

const ENDPOINT = (() => {
  const match = /endpoint=(.*?);accesskey=/i.exec(CONNECTION_STRING);
  if (!match) throw new Error("ACS_CONNECTION_STRING is not endpoint=...;accesskey=...");
  return match[1].replace(/\/+$/, "");
})();

// --- wire observation --------------------------------------------------------------------------
const wire = []; // "METHOD path?query" of every HTTP request
diagnosticsChannel.subscribe("http.client.request.start", ({ request }) => {
  wire.push(`${request.method} ${request.path}`);
});

// --- the SDK of MATRIX_SDK_DIR -----------------------------------------------------------------
const sdkRequire = createRequire(path.join(SDK_DIR, "package.json"));
const { ChatClient } = sdkRequire("@azure/communication-chat");
const { AzureCommunicationTokenCredential } = sdkRequire("@azure/communication-common");
const { CommunicationIdentityClient } = sdkRequire("@azure/communication-identity");

// --- facts and helpers -------------------------------------------------------------------------
const THREAD_ID = /^19:.+@thread\.v2$/;
const ACS_USER = /^8:acs:[^_]+_[^_]+$/; // exactly one underscore (api-contract.md §4)
const MINUTE = 60_000;
const HOUR = 60 * MINUTE;

const sleep = (ms) => new Promise((resolve) => setTimeout(resolve, ms));

function userIdOf(identifier) {
  assert.ok(identifier, "identifier is missing");
  assert.equal(identifier.kind, "communicationUser", `unexpected identifier ${JSON.stringify(identifier)}`);
  return identifier.communicationUserId;
}

function assertNear(date, expectedMs, toleranceMs, what) {
  assert.ok(date instanceof Date && !Number.isNaN(date.getTime()), `${what}: not a valid Date (${date})`);
  const delta = date.getTime() - expectedMs;
  assert.ok(Math.abs(delta) <= toleranceMs, `${what}: ${date.toISOString()} is ${Math.round(delta / 1000)} s off`);
}

async function pagesOf(paged, size) {
  const pages = [];
  for await (const page of paged.byPage({ maxPageSize: size })) pages.push(page);
  for (const page of pages) assert.ok(page.length <= size, `a page has ${page.length} items, more than ${size}`);
  return pages;
}

async function all(iterable) {
  const items = [];
  for await (const item of iterable) items.push(item);
  return items;
}

async function eventually(read, done, timeoutMs = 5000, intervalMs = 200) {
  const deadline = Date.now() + timeoutMs;
  let value = await read();
  while (!done(value) && Date.now() < deadline) {
    await sleep(intervalMs);
    value = await read();
  }
  return value;
}

async function expectRestError(action, statuses, what) {
  let error;
  try {
    await action();
  } catch (e) {
    error = e;
  }
  assert.ok(error, `${what}: succeeded, expected HTTP ${statuses.join("/")}`);
  assert.ok(
    statuses.includes(error.statusCode),
    `${what}: ${error.name} ${error.statusCode} ${error.message}, expected HTTP ${statuses.join("/")}`,
  );
  return error;
}

function checkText(message, text, senderId, displayName) {
  assert.equal(message.type, "text");
  assert.equal(message.content?.message, text);
  assert.equal(userIdOf(message.sender), senderId, "sender");
  assert.equal(message.senderDisplayName, displayName, "senderDisplayName");
  assert.match(message.sequenceId, /^\d+$/);
  if (HAS_ATTACHMENTS && message.content && "attachments" in message.content) {
    // 2023-11-07+: ACS-only threads carry no attachments (recordings: "attachments": []).
    assert.ok(
      message.content.attachments === undefined || message.content.attachments.length === 0,
      `attachments ${JSON.stringify(message.content.attachments)}`,
    );
  }
}

// --- the scenario ------------------------------------------------------------------------------
const s = {}; // state shared by the steps
let broken = false;

function step(name, body) {
  test(name, async (t) => {
    if (broken) {
      t.skip("an earlier step failed");
      return;
    }
    try {
      await body();
    } catch (error) {
      broken = true;
      throw error;
    }
  });
}

describe(`@azure/communication-chat in ${path.basename(SDK_DIR)} (api-version ${CHAT_API})`, () => {
  step("create users + chat tokens (identity)", async () => {
    const identity = new CommunicationIdentityClient(CONNECTION_STRING);
    s.started = Date.now();
    for (const name of ["alice", "bob"]) {
      const { user, token, expiresOn } = await identity.createUserAndToken(["chat"]);
      assert.match(user.communicationUserId, ACS_USER, `${name}: user id`);
      assert.equal(token.split(".").length, 3, `${name}: token is not a JWT`);
      // Tokens live 24 hours unless asked otherwise.
      assertNear(expiresOn, s.started + 24 * HOUR, 5 * MINUTE, `${name}: expiresOn`);
      s[name] = {
        user,
        id: user.communicationUserId,
        chat: new ChatClient(ENDPOINT, new AzureCommunicationTokenCredential(token)),
      };
    }
    const carol = await identity.createUser(); // no token: only added to and removed from the thread
    assert.match(carol.communicationUserId, ACS_USER, "carol: user id");
    s.carol = { user: carol, id: carol.communicationUserId };
    assert.equal(new Set([s.alice.id, s.bob.id, s.carol.id]).size, 3, "user ids are not unique");
  });

  step("create thread with a participant", async () => {
    const result = await s.alice.chat.createChatThread(
      { topic: "Matrix" },
      { participants: [{ id: s.bob.user, displayName: "Bob" }] },
    );
    const thread = result.chatThread;
    assert.ok(thread, "no chatThread in the result");
    assert.match(thread.id, THREAD_ID);
    assert.equal(thread.topic, "Matrix");
    assert.equal(userIdOf(thread.createdBy), s.alice.id, "createdBy");
    assertNear(thread.createdOn, s.started, 5 * MINUTE, "createdOn");
    assert.ok(
      result.invalidParticipants === undefined || result.invalidParticipants.length === 0,
      `unexpected invalidParticipants ${JSON.stringify(result.invalidParticipants)}`,
    );
    s.threadId = thread.id;
    s.a = s.alice.chat.getChatThreadClient(thread.id);
    s.b = s.bob.chat.getChatThreadClient(thread.id);
  });

  step("get properties", async () => {
    for (const client of [s.a, s.b]) {
      const props = await client.getProperties();
      assert.equal(props.id, s.threadId);
      assert.equal(props.topic, "Matrix");
      assert.equal(userIdOf(props.createdBy), s.alice.id, "createdBy");
      assertNear(props.createdOn, s.started, 5 * MINUTE, "createdOn");
      assert.equal(props.deletedOn, undefined, "deletedOn on a live thread");
    }
  });

  step("update topic", async () => {
    await s.a.updateTopic("Matrix (renamed)");
    assert.equal((await s.a.getProperties()).topic, "Matrix (renamed)");
    assert.equal((await s.b.getProperties()).topic, "Matrix (renamed)");
  });

  step("send message", async () => {
    const options = { senderDisplayName: "Alice" };
    if (HAS_MESSAGE_METADATA) options.metadata = { tags: "x" };
    s.hello = (await s.a.sendMessage({ content: "hello" }, options)).id;
    assert.match(s.hello, /^\d+$/, "message id is not epoch milliseconds");
    await sleep(5);
    s.hi = (await s.b.sendMessage({ content: "hi Alice" })).id; // no display name: the service reports ""
    assert.ok(Number(s.hi) > Number(s.hello), "message ids are not increasing");
  });

  step("get message", async () => {
    for (const client of [s.a, s.b]) {
      const message = await client.getMessage(s.hello);
      assert.equal(message.id, s.hello);
      checkText(message, "hello", s.alice.id, "Alice");
      assert.equal(message.version, message.id, "a new message's version is its id");
      assertNear(message.createdOn, s.started, 5 * MINUTE, "createdOn");
      assert.equal(message.editedOn, undefined);
      assert.equal(message.deletedOn, undefined);
      if (HAS_MESSAGE_METADATA) assert.deepEqual(message.metadata, { tags: "x" });
      s.helloVersion = message.version;
      s.helloSeq = message.sequenceId;
    }
  });

  step("list messages, pages of 2, with system messages", async () => {
    const pages = await pagesOf(s.a.listMessages({ maxPageSize: 2 }), 2);
    const messages = pages.flat();
    // participantAdded (create), topicUpdated (create), topicUpdated (rename), hello, hi.
    assert.deepEqual(
      messages.map((m) => m.type),
      ["text", "text", "topicUpdated", "topicUpdated", "participantAdded"],
      "types, newest first",
    );
    assert.equal(pages.length, 3, "3 pages of 2 for 5 messages (no empty trailing page)");
    assert.deepEqual(
      messages.map((m) => m.sequenceId),
      ["5", "4", "3", "2", "1"],
    );
    assert.deepEqual(
      messages.slice(0, 2).map((m) => m.id),
      [s.hi, s.hello],
    );
    checkText(messages[0], "hi Alice", s.bob.id, "");
    checkText(messages[1], "hello", s.alice.id, "Alice");
    assert.deepEqual(
      messages.slice(2, 4).map((m) => m.content?.topic),
      ["Matrix (renamed)", "Matrix"],
    );
    const added = messages[4];
    assert.deepEqual(
      added.content.participants.map((p) => userIdOf(p.id)).sort(),
      [s.alice.id, s.bob.id].sort(),
      "participantAdded lists the creator and Bob",
    );
    for (const p of added.content.participants) {
      assert.equal(p.shareHistoryTime?.getTime(), 0, "shareHistoryTime is the epoch when none was given");
    }
    for (const m of messages.slice(2)) {
      assert.equal(userIdOf(m.content?.initiator), s.alice.id, `${m.type}: initiator`);
      assert.equal(m.sender, undefined, `${m.type} has a sender`);
    }
    // One by one gives the same, and so does Bob's paged view.
    assert.deepEqual(
      (await all(s.a.listMessages())).map((m) => m.id),
      messages.map((m) => m.id),
    );
    assert.deepEqual(
      (await pagesOf(s.b.listMessages({ maxPageSize: 2 }), 2)).flat().map((m) => m.id),
      messages.map((m) => m.id),
    );
  });

  step("update message", async () => {
    await sleep(20);
    const options = { content: "hello (edited)" };
    if (HAS_MESSAGE_METADATA) options.metadata = { tags: "y" };
    await s.a.updateMessage(s.hello, options);
    const message = await s.b.getMessage(s.hello);
    checkText(message, "hello (edited)", s.alice.id, "Alice");
    assertNear(message.editedOn, Date.now(), 5 * MINUTE, "editedOn");
    assert.notEqual(message.version, s.helloVersion, "version unchanged by an edit");
    assert.equal(message.sequenceId, s.helloSeq, "sequenceId changed by an edit");
    if (HAS_MESSAGE_METADATA) assert.deepEqual(message.metadata, { tags: "y" });
  });

  step("add participant", async () => {
    const result = await s.a.addParticipants({ participants: [{ id: s.carol.user, displayName: "Carol" }] });
    assert.ok(
      result.invalidParticipants === undefined || result.invalidParticipants.length === 0,
      `unexpected invalidParticipants ${JSON.stringify(result.invalidParticipants)}`,
    );
  });

  step("list participants", async () => {
    const participants = (await pagesOf(s.a.listParticipants({ maxPageSize: 2 }), 2)).flat();
    const byId = new Map(participants.map((p) => [userIdOf(p.id), p]));
    assert.equal(participants.length, 3);
    assert.deepEqual([...byId.keys()].sort(), [s.alice.id, s.bob.id, s.carol.id].sort());
    assert.equal(byId.get(s.bob.id).displayName, "Bob");
    assert.equal(byId.get(s.carol.id).displayName, "Carol");
    for (const id of [s.bob.id, s.carol.id]) {
      assert.equal(byId.get(id).shareHistoryTime?.getTime(), 0, "shareHistoryTime is the epoch when none was given");
    }
    const [newest] = await all(s.a.listMessages());
    assert.equal(newest.type, "participantAdded", "the newest message");
    assert.deepEqual(
      newest.content.participants.map((p) => userIdOf(p.id)),
      [s.carol.id],
    );
    assert.equal(userIdOf(newest.content.initiator), s.alice.id);
  });

  step("send + list read receipts", async () => {
    await s.b.sendReadReceipt({ chatMessageId: s.hello });
    await s.a.sendReadReceipt({ chatMessageId: s.hi });
    const expected = JSON.stringify(
      [
        [s.alice.id, s.hi],
        [s.bob.id, s.hello],
      ].sort(),
    );
    const summary = (receipts) => JSON.stringify(receipts.map((r) => [userIdOf(r.sender), r.chatMessageId]).sort());
    const receipts = await eventually(
      async () => (await pagesOf(s.a.listReadReceipts({ maxPageSize: 2 }), 2)).flat(),
      (value) => summary(value) === expected,
    );
    assert.equal(summary(receipts), expected);
    for (const receipt of receipts) assertNear(receipt.readOn, Date.now(), 5 * MINUTE, "readOn");
  });

  step("typing notification", async () => {
    assert.equal(await s.a.sendTypingNotification(), true);
    const options = HAS_TYPING_DISPLAY_NAME ? { senderDisplayName: "Bob" } : {};
    assert.equal(await s.b.sendTypingNotification(options), true);
  });

  step("remove participant", async () => {
    await s.a.removeParticipant(s.carol.user);
    const ids = (await all(s.a.listParticipants())).map((p) => userIdOf(p.id)).sort();
    assert.deepEqual(ids, [s.alice.id, s.bob.id].sort());
    const [newest] = await all(s.a.listMessages());
    assert.equal(newest.type, "participantRemoved", "the newest message");
    assert.deepEqual(
      newest.content.participants.map((p) => userIdOf(p.id)),
      [s.carol.id],
    );
    assert.equal(userIdOf(newest.content.initiator), s.alice.id);
  });

  step("delete message", async () => {
    await s.a.deleteMessage(s.hello);
    // Whether the service still returns a deleted message is not documented; if it does, it
    // must be marked deleted (ChatMessage.deletedOn).
    let message;
    try {
      message = await s.b.getMessage(s.hello);
    } catch (error) {
      assert.equal(error.statusCode, 404, `getMessage after delete: ${error.statusCode} ${error.message}`);
    }
    if (message) assert.ok(message.deletedOn instanceof Date, "a deleted message is returned without deletedOn");
    for (const m of await all(s.b.listMessages())) {
      if (m.id === s.hello) assert.ok(m.deletedOn instanceof Date, "a deleted message is listed without deletedOn");
    }
    assert.equal((await s.b.getMessage(s.hi)).deletedOn, undefined, "the other message was deleted too");
  });

  step("delete thread", async () => {
    await s.alice.chat.deleteChatThread(s.threadId);
    await s.alice.chat.deleteChatThread(s.threadId); // 204 again
    await expectRestError(() => s.a.getProperties(), [403, 404], "getProperties after delete");
  });

  // Runs even after a failure: whatever was sent must carry the expected api-version.
  test("api-version on the wire", () => {
    const seen = { chat: new Set(), identity: new Set() };
    const missing = [];
    for (const line of wire) {
      const [method, target] = line.split(" ");
      const url = new URL(target, "https://x");
      const kind = url.pathname.startsWith("/identities")
        ? "identity"
        : url.pathname.startsWith("/chat")
          ? "chat"
          : undefined;
      if (!kind) continue;
      const versions = url.searchParams.getAll("api-version");
      if (versions.length === 0) missing.push(`${method} ${target}`);
      for (const v of versions) seen[kind].add(v);
    }
    assert.deepEqual(missing, [], "requests without api-version");
    if (!broken || seen.chat.size) assert.deepEqual([...seen.chat], [CHAT_API], "chat api-versions sent");
    if (!broken || seen.identity.size) {
      assert.deepEqual([...seen.identity], [IDENTITY_API], "identity api-versions sent");
    }
  });
});

after(() => {
  const observed = { chat: new Set(), identity: new Set() };
  for (const line of wire) {
    const url = new URL(line.split(" ")[1], "https://x");
    const kind = url.pathname.startsWith("/identities") ? "identity" : url.pathname.startsWith("/chat") ? "chat" : "";
    if (kind) for (const v of url.searchParams.getAll("api-version")) observed[kind].add(v);
  }
  const text = `chat-api-version=${[...observed.chat].sort().join(",") || "none"} identity-api-version=${
    [...observed.identity].sort().join(",") || "none"
  }`;
  if (process.env.MATRIX_OBSERVED_FILE) writeFileSync(process.env.MATRIX_OBSERVED_FILE, `${text}\n`);
});
