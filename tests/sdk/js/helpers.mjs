// Shared set-up for the JS SDK end-to-end tests.
//
// Everything here is what a production app would write: the clients are built from the
// connection string alone. There is no TLS or transport workaround; the caller trusts the
// emulator's CA through NODE_EXTRA_CA_CERTS, exactly as for any private CA.
//
// The assertions in the tests follow the REAL service (see shared/docs/api-contract.md and
// sdk-clients.md), not whatever the emulator happens to do.

import assert from "node:assert/strict";

import { ChatClient } from "@azure/communication-chat";
import { AzureCommunicationTokenCredential } from "@azure/communication-common";
import { CommunicationIdentityClient } from "@azure/communication-identity";

/** The connection string of the emulator under test; a missing one fails the test (never skips). */
export function connectionString() {
  const value = process.env.ACS_CONNECTION_STRING;
  if (!value || !value.trim()) {
    throw new Error(
      "ACS_CONNECTION_STRING is not set. Start the emulator and export " +
        "ACS_CONNECTION_STRING='endpoint=https://127.0.0.1:PORT/;accesskey=BASE64' and " +
        "NODE_EXTRA_CA_CERTS=<data-dir>/ca.pem (tests/sdk/js/run.sh does not start it).",
    );
  }
  return value.trim();
}

/** The resource endpoint from the connection string, without a trailing slash (as in the ACS quickstarts). */
export function endpoint() {
  const match = /endpoint=(.*?);accesskey=/i.exec(connectionString());
  if (!match) {
    throw new Error(`ACS_CONNECTION_STRING is not of the form endpoint=...;accesskey=...`);
  }
  return match[1].replace(/\/+$/, "");
}

let identity;
/** One identity client for the whole test file (HMAC with the access key). */
export function identityClient() {
  identity ??= new CommunicationIdentityClient(connectionString());
  return identity;
}

/** A chat client acting as the holder of `token`. */
export function chatClientFor(token) {
  return new ChatClient(endpoint(), new AzureCommunicationTokenCredential(token));
}

/**
 * A new ACS user with a chat token and a ChatClient of their own.
 * @returns {{ user: {communicationUserId: string}, id: string, token: string, expiresOn: Date, chat: ChatClient, name: string }}
 */
export async function newChatUser(name = "user") {
  const { user, token, expiresOn } = await identityClient().createUserAndToken(["chat"]);
  return { user, id: user.communicationUserId, token, expiresOn, chat: chatClientFor(token), name };
}

/** Creates a thread as `owner` with the given other users as participants and returns its id. */
export async function newThread(owner, others = [], topic = "a topic", options = {}) {
  const result = await owner.chat.createChatThread(
    { topic },
    {
      participants: others.map((u) => ({ id: u.user, displayName: u.name })),
      ...options,
    },
  );
  assert.ok(result.chatThread, "createChatThread returned no chatThread");
  return result.chatThread.id;
}

/** The thread client of `user` for thread `threadId`. */
export function threadClient(user, threadId) {
  return user.chat.getChatThreadClient(threadId);
}

/** Every item of a paged iterator, iterated one by one. */
export async function collect(iterable) {
  const items = [];
  for await (const item of iterable) items.push(item);
  return items;
}

/** Every page of a paged iterator, as an array of arrays. */
export async function collectPages(pagedIterator, settings = {}) {
  const pages = [];
  for await (const page of pagedIterator.byPage(settings)) pages.push(page);
  return pages;
}

/** The communicationUserId of an SDK identifier (CommunicationIdentifierKind). */
export function userIdOf(identifier) {
  assert.ok(identifier, "identifier is missing");
  assert.equal(identifier.kind, "communicationUser", `unexpected identifier ${JSON.stringify(identifier)}`);
  return identifier.communicationUserId;
}

/**
 * The ACS error code of a RestError's body. The spec's shape is {"error":{"code",...}}; the real
 * service has also been seen answering {"CommunicationError":{"Code",...}} (sdk-clients.md §1.6),
 * so both are read.
 */
export function acsErrorCode(err) {
  const text = err?.response?.bodyAsText;
  if (!text) return undefined;
  let body;
  try {
    body = JSON.parse(text);
  } catch {
    return undefined;
  }
  return body?.error?.code ?? body?.CommunicationError?.Code;
}

/**
 * Awaits `action()` and asserts that it rejects with an SDK RestError of HTTP `status` (and, if
 * given, ACS error `code`). Returns the error.
 */
export async function assertRestError(action, status, code) {
  let error;
  try {
    await action();
  } catch (e) {
    error = e;
  }
  assert.ok(error, `expected a RestError with status ${status}, but the call succeeded`);
  const detail = `${error.name}: ${error.message} (status ${error.statusCode}, body ${error.response?.bodyAsText})`;
  assert.equal(error.name, "RestError", `expected a RestError, got ${detail}`);
  assert.equal(error.statusCode, status, `expected status ${status}, got ${detail}`);
  if (code !== undefined) {
    assert.equal(acsErrorCode(error), code, `expected ACS error code ${code}, got ${detail}`);
  }
  return error;
}

/** Asserts that `date` is a Date within `toleranceMs` of `expectedMs`. */
export function assertNear(date, expectedMs, toleranceMs, what) {
  assert.ok(date instanceof Date && !Number.isNaN(date.getTime()), `${what}: not a valid Date (${date})`);
  const delta = date.getTime() - expectedMs;
  assert.ok(
    Math.abs(delta) <= toleranceMs,
    `${what}: ${date.toISOString()} is ${Math.round(delta / 1000)} s away from ${new Date(expectedMs).toISOString()}`,
  );
}

/** Polls `read` until `done(value)` holds or `timeoutMs` passes; returns the last value read. */
export async function eventually(read, done, timeoutMs = 5000, intervalMs = 200) {
  const deadline = Date.now() + timeoutMs;
  let value = await read();
  while (!done(value) && Date.now() < deadline) {
    await new Promise((resolve) => setTimeout(resolve, intervalMs));
    value = await read();
  }
  return value;
}

/** Waits long enough for a later call to carry a later millisecond (and second) timestamp. */
export function tick(ms = 5) {
  return new Promise((resolve) => setTimeout(resolve, ms));
}

export const MINUTE = 60 * 1000;
export const HOUR = 60 * MINUTE;
