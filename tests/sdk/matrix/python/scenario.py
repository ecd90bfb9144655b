"""The version-matrix scenario for ONE installed azure-communication-chat version.

run.sh runs it once per version, each time with that version's venv:

    .venv-matrix/<version>/bin/python tests/sdk/matrix/python/scenario.py

Environment (set by run.sh or by hand):
    ACS_CONNECTION_STRING        endpoint=https://127.0.0.1:PORT/;accesskey=BASE64
    REQUESTS_CA_BUNDLE           the emulator's CA (the sync clients use requests)
    MATRIX_CHAT_API_VERSION      the api-version this chat version is expected to send
    MATRIX_IDENTITY_API_VERSION  the api-version the paired identity version is expected to send

The steps are the same for every version and for the JS matrix (../js/scenario.test.mjs). What
is asserted is what the real service does (shared/docs/api-contract.md, sdk-clients.md §3.3, §4,
and the recordings in shared/reference/recordings), and only what the version's api-version and
the SDK's models can carry: message metadata and the typing display name exist from 2021-09-07,
content.attachments from 2023-11-07.

Every request is also observed on the wire (requests' HTTPAdapter.send is wrapped, nothing is
changed): each chat and identity request must carry the expected api-version, including the
requests that follow nextLinks. The last line printed is
    observed chat-api-version=<v> identity-api-version=<v>
and the exit status is 0 only if every step passed.
"""

import os
import re
import sys
import time
import traceback
from datetime import datetime, timedelta, timezone
from urllib.parse import parse_qs, urlsplit

import requests.adapters

# --- wire observation (read-only) ------------------------------------------------------------

WIRE = []  # (method, url) of every HTTP request the SDKs send
_original_send = requests.adapters.HTTPAdapter.send


def _observing_send(self, request, *args, **kwargs):
    WIRE.append((request.method, request.url))
    return _original_send(self, request, *args, **kwargs)


requests.adapters.HTTPAdapter.send = _observing_send

from azure.core.exceptions import HttpResponseError  # noqa: E402  (after the wire hook)
from azure.communication.chat import (  # noqa: E402
    ChatClient,
    ChatParticipant,
    CommunicationTokenCredential,
)
from azure.communication.identity import CommunicationIdentityClient  # noqa: E402

# --- facts ------------------------------------------------------------------------------------

THREAD_ID_RE = re.compile(r"^19:.+@thread\.v2$")
ACS_USER_RE = re.compile(r"^8:acs:[^_]+_[^_]+$")  # exactly one underscore (api-contract.md §4)
EPOCH = datetime(1970, 1, 1, tzinfo=timezone.utc)  # shareHistoryTime when none was given (recordings)
SYSTEM_TYPES = {"participantAdded", "participantRemoved", "topicUpdated"}
MINUTE = timedelta(minutes=1)


def require_env(name):
    value = os.environ.get(name, "").strip()
    if not value:
        sys.exit(f"scenario.py: {name} is not set")
    return value


CONNECTION_STRING = require_env("ACS_CONNECTION_STRING")
CHAT_API = require_env("MATRIX_CHAT_API_VERSION")
IDENTITY_API = require_env("MATRIX_IDENTITY_API_VERSION")

# Wire features by api-version (api-contract.md §9). ISO dates compare as strings.
HAS_MESSAGE_METADATA = CHAT_API >= "2021-09-07"
HAS_TYPING_DISPLAY_NAME = CHAT_API >= "2021-09-07"
HAS_ATTACHMENTS = CHAT_API >= "2023-11-07"

match = re.search(r"endpoint=(.*?);accesskey=", CONNECTION_STRING, re.IGNORECASE)
if not match:
    sys.exit("scenario.py: ACS_CONNECTION_STRING is not endpoint=...;accesskey=...")
ENDPOINT = match.group(1).rstrip("/")


# --- helpers ----------------------------------------------------------------------------------


def utcnow():
    return datetime.now(timezone.utc)


def aware(value):
    """A tz-aware datetime from a datetime, an ISO-8601 string or epoch seconds."""
    if isinstance(value, (int, float)):
        return datetime.fromtimestamp(value, timezone.utc)
    if isinstance(value, str):
        value = datetime.fromisoformat(re.sub(r"(\.\d{6})\d+", r"\1", value.replace("Z", "+00:00")))
    if value.tzinfo is None:
        value = value.replace(tzinfo=timezone.utc)
    return value


def assert_near(value, expected, tolerance, what):
    value = aware(value)
    assert abs(value - expected) <= tolerance, f"{what}: {value.isoformat()} is not within {tolerance} of {expected.isoformat()}"


def user_id(identifier):
    """The id of a CommunicationUserIdentifier (chat or identity package, any version)."""
    assert identifier is not None, "identifier is missing"
    return identifier.properties["id"]


def pages_of(paged, size):
    pages = [list(page) for page in paged.by_page()]
    for page in pages:
        assert len(page) <= size, f"a page has {len(page)} items, more than {size}"
    return pages


def eventually(read, done, timeout=5.0, interval=0.2):
    """The service applies read receipts asynchronously; its own SDK tests poll."""
    deadline = time.monotonic() + timeout
    value = read()
    while not done(value) and time.monotonic() < deadline:
        time.sleep(interval)
        value = read()
    return value


def expect_http_error(action, statuses, what):
    try:
        action()
    except HttpResponseError as error:
        assert error.status_code in statuses, f"{what}: HTTP {error.status_code}, expected one of {statuses}: {error}"
        return error
    raise AssertionError(f"{what}: succeeded, expected HTTP {statuses}")


# --- the scenario -----------------------------------------------------------------------------

state = {}


def step_identity():
    identity = CommunicationIdentityClient.from_connection_string(CONNECTION_STRING)
    started = utcnow()
    people = {}
    for name in ("alice", "bob"):
        user, token = identity.create_user_and_token(["chat"])
        uid = user_id(user)
        assert ACS_USER_RE.match(uid), f"{name}: user id {uid!r} is not 8:acs:<resource>_<id>"
        assert len(token.token.split(".")) == 3, f"{name}: token is not a JWT"
        # Tokens live 24 hours unless asked otherwise (identity docs; sdk e2e tests).
        assert_near(token.expires_on, started + timedelta(hours=24), 5 * MINUTE, f"{name}: token expires_on")
        people[name] = {"user": user, "id": uid, "chat": ChatClient(ENDPOINT, CommunicationTokenCredential(token.token))}
    carol = identity.create_user()  # a user with no token: only added to and removed from the thread
    assert ACS_USER_RE.match(user_id(carol)), f"carol: user id {user_id(carol)!r}"
    assert len({people["alice"]["id"], people["bob"]["id"], user_id(carol)}) == 3, "user ids are not unique"
    state.update(people, carol={"user": carol, "id": user_id(carol)}, started=started)


def step_create_thread():
    alice, bob = state["alice"], state["bob"]
    result = alice["chat"].create_chat_thread(
        "Matrix", thread_participants=[ChatParticipant(identifier=bob["user"], display_name="Bob")]
    )
    thread = result.chat_thread
    assert thread is not None, "no chat_thread in the result"
    assert THREAD_ID_RE.match(thread.id), f"thread id {thread.id!r}"
    assert thread.topic == "Matrix", thread.topic
    assert user_id(thread.created_by) == alice["id"], "created_by is not the creator"
    assert_near(thread.created_on, state["started"], 5 * MINUTE, "created_on")
    assert not result.errors, f"unexpected invalid participants {result.errors}"
    state["thread_id"] = thread.id
    state["a"] = alice["chat"].get_chat_thread_client(thread.id)
    state["b"] = bob["chat"].get_chat_thread_client(thread.id)


def step_get_properties():
    for who in ("a", "b"):
        props = state[who].get_properties()
        assert props.id == state["thread_id"], f"{who}: id {props.id}"
        assert props.topic == "Matrix", f"{who}: topic {props.topic}"
        assert user_id(props.created_by) == state["alice"]["id"], f"{who}: created_by"
        assert_near(props.created_on, state["started"], 5 * MINUTE, f"{who}: created_on")
        assert getattr(props, "deleted_on", None) is None, f"{who}: deleted_on on a live thread"


def step_update_topic():
    state["a"].update_topic("Matrix (renamed)")
    assert state["a"].get_properties().topic == "Matrix (renamed)"
    assert state["b"].get_properties().topic == "Matrix (renamed)"


def step_send_message():
    kwargs = {"sender_display_name": "Alice"}
    if HAS_MESSAGE_METADATA:
        kwargs["metadata"] = {"tags": "x"}
    result = state["a"].send_message("hello", **kwargs)
    # 1.0.0 returns the id; later versions a SendChatMessageResult.
    message_id = result if isinstance(result, str) else result.id
    assert re.fullmatch(r"\d+", message_id), f"message id {message_id!r} is not epoch milliseconds"
    state["hello"] = message_id
    time.sleep(0.005)
    result = state["b"].send_message("hi Alice")  # no display name: the service reports ""
    state["hi"] = result if isinstance(result, str) else result.id
    assert int(state["hi"]) > int(state["hello"]), "message ids are not increasing"


def check_text(message, text, sender, display_name):
    assert message.type == "text", f"type {message.type}"
    assert message.content.message == text, f"content {message.content.message!r}"
    assert user_id(message.sender) == sender, "sender"
    assert message.sender_display_name == display_name, f"sender_display_name {message.sender_display_name!r}"
    assert re.fullmatch(r"\d+", message.sequence_id), f"sequence_id {message.sequence_id!r}"
    if HAS_ATTACHMENTS and hasattr(message.content, "attachments"):
        # 2023-11-07+: ACS-only threads carry no attachments (recordings: "attachments": []).
        assert not message.content.attachments, f"attachments {message.content.attachments!r}"


def step_get_message():
    for who in ("a", "b"):
        message = state[who].get_message(state["hello"])
        assert message.id == state["hello"]
        check_text(message, "hello", state["alice"]["id"], "Alice")
        assert message.version == message.id, "a new message's version is its id"
        assert_near(message.created_on, state["started"], 5 * MINUTE, "created_on")
        assert message.edited_on is None and message.deleted_on is None, "edited_on/deleted_on on a new message"
        if HAS_MESSAGE_METADATA:
            assert message.metadata == {"tags": "x"}, f"metadata {message.metadata!r}"
    state["hello_version"] = message.version
    state["hello_seq"] = message.sequence_id


def step_list_messages():
    pages = pages_of(state["a"].list_messages(results_per_page=2), 2)
    messages = [m for page in pages for m in page]
    # participantAdded (create), topicUpdated (create), topicUpdated (rename), hello, hi.
    types = [m.type for m in messages]
    assert types == ["text", "text", "topicUpdated", "topicUpdated", "participantAdded"], f"types, newest first: {types}"
    assert len(pages) == 3, f"{len(pages)} pages of 2 for 5 messages (no empty trailing page)"
    assert [m.sequence_id for m in messages] == ["5", "4", "3", "2", "1"], [m.sequence_id for m in messages]
    assert [m.id for m in messages[:2]] == [state["hi"], state["hello"]]
    check_text(messages[0], "hi Alice", state["bob"]["id"], "")
    check_text(messages[1], "hello", state["alice"]["id"], "Alice")
    assert [m.content.topic for m in messages[2:4]] == ["Matrix (renamed)", "Matrix"]
    added = messages[4]
    ids = sorted(user_id(p.identifier) for p in added.content.participants)
    assert ids == sorted([state["alice"]["id"], state["bob"]["id"]]), f"participantAdded lists {ids}"
    for p in added.content.participants:
        assert aware(p.share_history_time) == EPOCH, f"share_history_time {p.share_history_time}"
    for m in messages[2:]:
        assert user_id(m.content.initiator) == state["alice"]["id"], f"{m.type}: initiator"
        assert m.sender is None, f"{m.type} has a sender"
    # One by one gives the same, and so does Bob's view.
    assert [m.id for m in state["a"].list_messages()] == [m.id for m in messages]
    assert [m.id for m in state["b"].list_messages(results_per_page=2)] == [m.id for m in messages]


def step_update_message():
    time.sleep(0.02)
    kwargs = {"content": "hello (edited)"}
    if HAS_MESSAGE_METADATA:
        kwargs["metadata"] = {"tags": "y"}
    state["a"].update_message(state["hello"], **kwargs)
    message = state["b"].get_message(state["hello"])
    check_text(message, "hello (edited)", state["alice"]["id"], "Alice")
    assert message.edited_on is not None, "edited_on is not set after an edit"
    assert_near(message.edited_on, utcnow(), 5 * MINUTE, "edited_on")
    assert message.version != state["hello_version"], "version unchanged by an edit"
    assert message.sequence_id == state["hello_seq"], "sequence_id changed by an edit"
    if HAS_MESSAGE_METADATA:
        assert message.metadata == {"tags": "y"}, f"metadata {message.metadata!r}"


def participants_of(client, page_size=None):
    paged = client.list_participants(results_per_page=page_size) if page_size else client.list_participants()
    if page_size:
        return [p for page in pages_of(paged, page_size) for p in page]
    return list(paged)


def step_add_participant():
    failed = state["a"].add_participants([ChatParticipant(identifier=state["carol"]["user"], display_name="Carol")])
    assert not failed, f"add_participants reported failures {failed}"


def step_list_participants():
    participants = participants_of(state["a"], 2)
    by_id = {user_id(p.identifier): p for p in participants}
    expected = sorted([state["alice"]["id"], state["bob"]["id"], state["carol"]["id"]])
    assert sorted(by_id) == expected and len(participants) == 3, f"participants {sorted(by_id)}"
    assert by_id[state["bob"]["id"]].display_name == "Bob"
    assert by_id[state["carol"]["id"]].display_name == "Carol"
    for uid in (state["bob"]["id"], state["carol"]["id"]):
        assert aware(by_id[uid].share_history_time) == EPOCH, f"share_history_time {by_id[uid].share_history_time}"
    newest = next(iter(state["a"].list_messages()))
    assert newest.type == "participantAdded", f"newest message is {newest.type}"
    assert [user_id(p.identifier) for p in newest.content.participants] == [state["carol"]["id"]]
    assert user_id(newest.content.initiator) == state["alice"]["id"]


def step_read_receipts():
    state["b"].send_read_receipt(state["hello"])
    state["a"].send_read_receipt(state["hi"])
    expected = sorted([(state["alice"]["id"], state["hi"]), (state["bob"]["id"], state["hello"])])

    def read():
        return [r for page in pages_of(state["a"].list_read_receipts(results_per_page=2), 2) for r in page]

    def summary(receipts):
        return sorted((user_id(r.sender), r.chat_message_id) for r in receipts)

    receipts = eventually(read, lambda value: summary(value) == expected)
    assert summary(receipts) == expected, f"read receipts {summary(receipts)}"
    for receipt in receipts:
        assert_near(receipt.read_on, utcnow(), 5 * MINUTE, "read_on")


def step_typing():
    assert state["a"].send_typing_notification() is None
    if HAS_TYPING_DISPLAY_NAME:
        state["b"].send_typing_notification(sender_display_name="Bob")
    else:
        state["b"].send_typing_notification()


def step_remove_participant():
    state["a"].remove_participant(state["carol"]["user"])
    ids = sorted(user_id(p.identifier) for p in participants_of(state["a"]))
    assert ids == sorted([state["alice"]["id"], state["bob"]["id"]]), f"participants after removal {ids}"
    newest = next(iter(state["a"].list_messages()))
    assert newest.type == "participantRemoved", f"newest message is {newest.type}"
    assert [user_id(p.identifier) for p in newest.content.participants] == [state["carol"]["id"]]
    assert user_id(newest.content.initiator) == state["alice"]["id"]


def step_delete_message():
    state["a"].delete_message(state["hello"])
    # Whether the service still returns a deleted message is not documented; if it does, it
    # must be marked deleted (ChatMessage.deletedOn).
    try:
        message = state["b"].get_message(state["hello"])
    except HttpResponseError as error:
        assert error.status_code == 404, f"get_message after delete: HTTP {error.status_code}"
    else:
        assert message.deleted_on is not None, "a deleted message is returned without deleted_on"
    for message in state["b"].list_messages():
        if message.id == state["hello"]:
            assert message.deleted_on is not None, "a deleted message is listed without deleted_on"
    assert state["b"].get_message(state["hi"]).deleted_on is None, "the other message was deleted too"


def step_delete_thread():
    chat = state["alice"]["chat"]
    chat.delete_chat_thread(state["thread_id"])
    chat.delete_chat_thread(state["thread_id"])  # 204 again (the SDK's e2e teardown deletes twice)
    expect_http_error(lambda: state["a"].get_properties(), {403, 404}, "get_properties after delete")


STEPS = [
    ("create users + chat tokens (identity)", step_identity),
    ("create thread with a participant", step_create_thread),
    ("get properties", step_get_properties),
    ("update topic", step_update_topic),
    ("send message", step_send_message),
    ("get message", step_get_message),
    ("list messages, pages of 2, with system messages", step_list_messages),
    ("update message", step_update_message),
    ("add participant", step_add_participant),
    ("list participants", step_list_participants),
    ("send + list read receipts", step_read_receipts),
    ("typing notification", step_typing),
    ("remove participant", step_remove_participant),
    ("delete message", step_delete_message),
    ("delete thread", step_delete_thread),
]


def check_wire():
    """Every request carried the expected api-version (nextLink requests included)."""
    seen = {"chat": set(), "identity": set()}
    missing = []
    for method, url in WIRE:
        parts = urlsplit(url)
        kind = "identity" if parts.path.startswith("/identities") else "chat" if parts.path.startswith("/chat") else None
        if kind is None:
            continue
        versions = parse_qs(parts.query).get("api-version", [])
        if not versions:
            missing.append(f"{method} {url}")
        seen[kind].update(versions)
    return seen, missing


def main():
    failed = False
    for name, step in STEPS:
        try:
            step()
        except Exception as error:  # noqa: BLE001 - report every failure kind the same way
            failed = True
            print(f"FAIL {name}: {type(error).__name__}: {error}")
            if not isinstance(error, AssertionError):
                traceback.print_exc(limit=4, file=sys.stdout)
            break
        print(f"ok   {name}")

    seen, missing = check_wire()
    for kind, expected in (("chat", CHAT_API), ("identity", IDENTITY_API)):
        if seen[kind] and seen[kind] != {expected}:
            failed = True
            print(f"FAIL {kind} api-version: sent {sorted(seen[kind])}, expected {expected}")
    if missing:
        failed = True
        print(f"FAIL requests without api-version: {missing[:3]}")
    chat_seen = ",".join(sorted(seen["chat"])) or "none"
    identity_seen = ",".join(sorted(seen["identity"])) or "none"
    print(f"observed chat-api-version={chat_seen} identity-api-version={identity_seen}")
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
