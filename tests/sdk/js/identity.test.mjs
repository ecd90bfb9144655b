// Identity: users and tokens with CommunicationIdentityClient(connectionString), and what the
// chat service then does with those tokens. Real-service facts: api-contract.md §7, sdk-clients.md
// §1.5 / §3.3 (identity tests), §2.3 (token parsing).

import assert from "node:assert/strict";
import { describe, test } from "node:test";

import { AzureCommunicationTokenCredential } from "@azure/communication-common";

import {
  HOUR,
  MINUTE,
  assertNear,
  assertRestError,
  chatClientFor,
  collect,
  identityClient,
} from "./helpers.mjs";

// ACS user ids: 8:acs:<resource id>_<uuid-like>, exactly one underscore (api-contract.md §4).
const ACS_USER_ID = /^8:acs:[^_]+_[^_]+$/;

/** The exp claim of a token as the SDK reads it (ms since epoch). */
async function sdkExpiry(token) {
  const accessToken = await new AzureCommunicationTokenCredential(token).getToken();
  return accessToken.expiresOnTimestamp;
}

describe("identity", () => {
  test("createUser returns an ACS user id", async () => {
    const user = await identityClient().createUser();
    assert.match(user.communicationUserId, ACS_USER_ID);
    const other = await identityClient().createUser();
    assert.notEqual(other.communicationUserId, user.communicationUserId, "two users got the same id");
  });

  test("createUserAndToken(['chat']) issues a 24-hour chat token by default that the chat service accepts", async () => {
    const before = Date.now();
    const { user, token, expiresOn } = await identityClient().createUserAndToken(["chat"]);
    assert.match(user.communicationUserId, ACS_USER_ID);
    assert.equal(typeof token, "string");
    assert.ok(token.split(".").length >= 3, "the token is not a JWT");
    // Default lifetime 1440 minutes (Identity spec, expiresInMinutes default).
    assertNear(expiresOn, before + 24 * HOUR, 5 * MINUTE, "expiresOn");
    // The JWT exp claim (what the SDK refreshes on) agrees with expiresOn.
    assertNear(new Date(await sdkExpiry(token)), expiresOn.getTime(), MINUTE, "JWT exp");

    // A brand-new user belongs to no thread.
    const threads = await collect(chatClientFor(token).listChatThreads());
    assert.deepEqual(threads, []);
  });

  test("getToken issues a fresh chat token for an existing user", async () => {
    const client = identityClient();
    const user = await client.createUser();
    const before = Date.now();
    const { token, expiresOn } = await client.getToken(user, ["chat"]);
    assertNear(expiresOn, before + 24 * HOUR, 5 * MINUTE, "expiresOn");

    const chat = chatClientFor(token);
    const { chatThread } = await chat.createChatThread({ topic: "token check" });
    assert.equal(chatThread.createdBy.communicationUserId, user.communicationUserId);
  });

  test("tokenExpiresInMinutes 60 and 1440 are accepted and honoured", async () => {
    const client = identityClient();
    let before = Date.now();
    const created = await client.createUserAndToken(["chat"], { tokenExpiresInMinutes: 60 });
    assertNear(created.expiresOn, before + HOUR, 2 * MINUTE, "createUserAndToken expiresOn (60 min)");
    assertNear(new Date(await sdkExpiry(created.token)), created.expiresOn.getTime(), MINUTE, "JWT exp (60 min)");

    before = Date.now();
    const oneHour = await client.getToken(created.user, ["chat"], { tokenExpiresInMinutes: 60 });
    assertNear(oneHour.expiresOn, before + HOUR, 2 * MINUTE, "getToken expiresOn (60 min)");

    before = Date.now();
    const oneDay = await client.getToken(created.user, ["chat"], { tokenExpiresInMinutes: 1440 });
    assertNear(oneDay.expiresOn, before + 24 * HOUR, 2 * MINUTE, "getToken expiresOn (1440 min)");

    // The short-lived token works for chat.
    await collect(chatClientFor(oneHour.token).listChatThreads());
  });

  test("tokenExpiresInMinutes outside 60..1440 is rejected with 400", async () => {
    const client = identityClient();
    const user = await client.createUser();
    await assertRestError(() => client.getToken(user, ["chat"], { tokenExpiresInMinutes: 59 }), 400);
    await assertRestError(() => client.getToken(user, ["chat"], { tokenExpiresInMinutes: 1441 }), 400);
    await assertRestError(() => client.createUserAndToken(["chat"], { tokenExpiresInMinutes: 59 }), 400);
  });

  test("revokeTokens makes earlier tokens fail with 401; a token issued afterwards works", async () => {
    const client = identityClient();
    const { user, token } = await client.createUserAndToken(["chat"]);
    const chat = chatClientFor(token);
    const { chatThread } = await chat.createChatThread({ topic: "before revocation" });
    await chat.getChatThreadClient(chatThread.id).getProperties();

    await client.revokeTokens(user);

    await assertRestError(() => chat.getChatThreadClient(chatThread.id).getProperties(), 401);
    await assertRestError(() => collect(chat.listChatThreads()), 401);

    // Revocation is about tokens issued before it, not about the user.
    const fresh = await client.getToken(user, ["chat"]);
    const properties = await chatClientFor(fresh.token).getChatThreadClient(chatThread.id).getProperties();
    assert.equal(properties.id, chatThread.id);
  });

  test("deleteUser makes that user's token fail with 401", async () => {
    const client = identityClient();
    const { user, token } = await client.createUserAndToken(["chat"]);
    const chat = chatClientFor(token);
    await collect(chat.listChatThreads());

    await client.deleteUser(user);

    await assertRestError(() => collect(chat.listChatThreads()), 401);
    await assertRestError(() => chat.createChatThread({ topic: "after deletion" }), 401);
  });
});
