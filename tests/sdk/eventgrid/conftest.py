"""Fixtures of the Event Grid suite: the emulator's connection string, the reference swagger,
a loopback receiver with two subscriptions, and one chat scenario whose deliveries every test
judges (events.md §2, §4, §5, §8).

Only input: ACS_CONNECTION_STRING, with TLS trust from REQUESTS_CA_BUNDLE (as tests/sdk/python).
The swagger comes from ACS_REFERENCE_DIR, else ../shared/reference beside the repository root
(as tests/conformance/run.sh finds it).
"""

import json
import os
import uuid
from dataclasses import dataclass, field

import pytest
import requests

pytest.register_assert_rewrite("swagger_check")

from azure.communication.chat import (  # noqa: E402
    ChatClient,
    ChatParticipant,
    CommunicationTokenCredential,
)
from azure.communication.identity import (  # noqa: E402
    CommunicationIdentityClient,
    CommunicationTokenScope,
)

from receiver import Receiver  # noqa: E402
from swagger_check import Swagger  # noqa: E402

CT = "Microsoft.Communication."
# events.md §1: every chat type, the typing indicator and the (out-of-scope) bot command included.
CHAT_TYPES = [
    CT + t
    for t in (
        "ChatThreadCreated",
        "ChatThreadCreatedWithUser",
        "ChatMessageReceivedInThread",
        "ChatMessageReceived",
        "ChatMessageEditedInThread",
        "ChatMessageEdited",
        "ChatMessageDeletedInThread",
        "ChatMessageDeleted",
        "ChatThreadPropertiesUpdated",
        "ChatThreadPropertiesUpdatedPerUser",
        "ChatThreadParticipantAdded",
        "ChatParticipantAddedToThreadWithUser",
        "ChatThreadParticipantRemoved",
        "ChatParticipantRemovedFromThreadWithUser",
        "ChatThreadDeleted",
        "ChatThreadWithUserDeleted",
        "ChatTypingIndicatorReceivedInThread",
        "ChatAzureBotCommandReceivedInThread",
    )
]

# Only catches a hang: deliveries are awaited on the receiver's records, never slept for.
DEADLINE_SECONDS = 120

repo_root = os.path.abspath(os.path.join(os.path.dirname(__file__), "..", "..", ".."))


def _connection_string():
    value = os.environ.get("ACS_CONNECTION_STRING")
    if not value:
        # Fail, never skip: a CI run without an emulator must not look green.
        pytest.fail("ACS_CONNECTION_STRING is not set", pytrace=False)
    return value


def _parts(conn_str):
    parts = {}
    for part in conn_str.split(";"):
        key, sep, value = part.partition("=")
        if sep:
            parts[key.strip().lower()] = value.strip()
    return parts["endpoint"].rstrip("/"), parts["accesskey"]


@pytest.fixture(scope="session")
def connection_string():
    return _connection_string()


@pytest.fixture(scope="session")
def endpoint(connection_string):
    return _parts(connection_string)[0]


@pytest.fixture(scope="session")
def admin(connection_string):
    """requests to the emulator's /_emulator routes with the access key."""
    base, key = _parts(connection_string)

    def call(method, path, body=None):
        response = requests.request(
            method,
            f"{base}{path}",
            json=body,
            headers={"Authorization": f"Bearer {key}"},
            timeout=60,
        )
        return response

    return call


@pytest.fixture(scope="session")
def arm_resource_id(admin):
    info = admin("GET", "/_emulator/info")
    assert info.status_code == 200, info.text
    return info.json()["armResourceId"]


@pytest.fixture(scope="session")
def swagger():
    reference = os.environ.get("ACS_REFERENCE_DIR") or os.path.join(
        repo_root, "..", "shared", "reference"
    )
    eventgrid = os.path.join(reference, "eventgrid")
    if not os.path.isdir(eventgrid):
        message = f"the Event Grid swagger is not at {eventgrid} (set ACS_REFERENCE_DIR)"
        if os.environ.get("CI") == "true":
            pytest.fail(message, pytrace=False)
        pytest.skip(f"NOT RUN: {message}")
    return Swagger(eventgrid)


@dataclass
class User:
    user: object
    raw_id: str
    chat: ChatClient
    name: str


@dataclass
class Scenario:
    """What the test did and what the receiver got."""

    arm_resource_id: str
    thread_id: str
    users: dict  # name -> User
    eg_name: str
    ce_name: str
    records: list = field(default_factory=list)
    message_id: str = ""
    message_body: str = ""
    edited_body: str = ""
    sent_version: int = 0
    edited_version: int = 0
    topic: str = ""
    new_topic: str = ""

    def notifications(self, path):
        return [r for r in self.records if r.is_notification and r.path == path]

    def events(self, path):
        return [e for r in self.notifications(path) for e in r.events()]


EG_PATH = "/eventgrid?code=eg"
CE_PATH = "/cloudevents?code=ce"


def expected_counts(with_typing):
    """events.md §2 for this scenario: alice creates a thread with bob and carol, sends, edits and
    deletes a message, updates the topic, adds dave, removes carol, types, deletes the thread."""
    counts = {
        "ChatThreadCreated": 1,
        "ChatThreadCreatedWithUser": 2,  # bob, carol
        "ChatMessageReceivedInThread": 1,
        "ChatMessageReceived": 2,
        "ChatMessageEditedInThread": 1,
        "ChatMessageEdited": 2,
        "ChatMessageDeletedInThread": 1,
        "ChatMessageDeleted": 2,
        "ChatThreadPropertiesUpdated": 1,
        "ChatThreadPropertiesUpdatedPerUser": 2,
        "ChatThreadParticipantAdded": 1,
        "ChatParticipantAddedToThreadWithUser": 3,  # bob, carol, dave (the added one included)
        "ChatThreadParticipantRemoved": 1,
        "ChatParticipantRemovedFromThreadWithUser": 3,  # bob, carol (the removed one), dave
        "ChatThreadDeleted": 1,
        "ChatThreadWithUserDeleted": 2,  # bob, dave
    }
    if with_typing:
        counts["ChatTypingIndicatorReceivedInThread"] = 1
    return {CT + k: v for k, v in counts.items()}


@pytest.fixture(scope="session")
def recorded_bodies_file():
    """Where the deliveries' raw bodies go for the JS parser check (run.sh sets it)."""
    return os.environ.get("EVENTGRID_BODIES_FILE")


@pytest.fixture(scope="session")
def scenario(connection_string, endpoint, admin, arm_resource_id, recorded_bodies_file):
    receiver = Receiver()
    suffix = uuid.uuid4().hex[:8]
    eg_name, ce_name = f"parsers-eg-{suffix}", f"parsers-ce-{suffix}"
    subscriptions = {
        eg_name: {
            "properties": {
                "destination": {
                    "endpointType": "WebHook",
                    "properties": {"endpointUrl": receiver.url(EG_PATH), "maxEventsPerBatch": 1},
                },
                "filter": {"includedEventTypes": CHAT_TYPES},
                "eventDeliverySchema": "EventGridSchema",
            }
        },
        # No filter: every type but the typing indicator, which needs naming (events.md §10).
        # Batches of up to 5 exercise both CloudEvents shapes (object, array).
        ce_name: {
            "properties": {
                "destination": {
                    "endpointType": "WebHook",
                    "properties": {"endpointUrl": receiver.url(CE_PATH), "maxEventsPerBatch": 5},
                },
                "eventDeliverySchema": "CloudEventSchemaV1_0",
            }
        },
    }
    try:
        for name, body in subscriptions.items():
            # No skipValidation: the receiver answers the real handshake (events.md §6).
            reply = admin("PUT", f"/_emulator/eventSubscriptions/{name}", body)
            assert reply.status_code in (200, 201), reply.text

        identity = CommunicationIdentityClient.from_connection_string(connection_string)
        users = {}
        for name in ("alice", "bob", "carol", "dave"):
            user, token = identity.create_user_and_token(scopes=[CommunicationTokenScope.CHAT])
            chat = ChatClient(endpoint, CommunicationTokenCredential(token.token))
            users[name] = User(user, user.raw_id, chat, name.capitalize())

        def participant(name):
            return ChatParticipant(identifier=users[name].user, display_name=users[name].name)

        alice = users["alice"].chat
        topic = "parsers"
        created = alice.create_chat_thread(
            topic, thread_participants=[participant(n) for n in ("alice", "bob", "carol")]
        )
        assert not created.errors, created.errors
        thread_id = created.chat_thread.id
        thread = alice.get_chat_thread_client(thread_id)
        s = Scenario(arm_resource_id, thread_id, users, eg_name, ce_name, topic=topic)

        s.message_body = "hello from the parsers suite"
        s.message_id = thread.send_message(s.message_body, sender_display_name="Alice").id
        s.sent_version = int(thread.get_message(s.message_id).version)
        s.edited_body = "hello, edited"
        thread.update_message(s.message_id, content=s.edited_body)
        s.edited_version = int(thread.get_message(s.message_id).version)
        thread.delete_message(s.message_id)
        s.new_topic = "parsers, renamed"
        thread.update_topic(s.new_topic)
        result = thread.add_participants([participant("dave")])
        assert not result, result
        thread.remove_participant(users["carol"].user)
        thread.send_typing_notification(sender_display_name="Alice")
        alice.delete_chat_thread(thread_id)

        eg_expected = sum(expected_counts(True).values())
        ce_expected = sum(expected_counts(False).values())

        def done(records):
            s.records = records
            return len(s.events(EG_PATH)) >= eg_expected and len(s.events(CE_PATH)) >= ce_expected

        arrived = receiver.wait_until(done, DEADLINE_SECONDS)
        s.records = receiver.snapshot()
        assert arrived, (
            f"after {DEADLINE_SECONDS}s: {len(s.events(EG_PATH))} of {eg_expected} Event Grid "
            f"and {len(s.events(CE_PATH))} of {ce_expected} CloudEvents events"
        )
        if recorded_bodies_file:
            dump = [
                {
                    "schema": "EventGridSchema" if r.path == EG_PATH else "CloudEventSchemaV1_0",
                    "contentType": r.header("content-type"),
                    "body": r.body,
                }
                for r in s.records
                if r.is_notification
            ]
            with open(recorded_bodies_file, "w", encoding="utf-8") as f:
                json.dump(dump, f, indent=1)
        for u in users.values():
            u.chat.close()
        yield s
    finally:
        # Subscriptions are configuration and outlive the run's other suites: remove them, so
        # later suites' events do not pile up as retries to a receiver that is gone.
        for name in subscriptions:
            admin("DELETE", f"/_emulator/eventSubscriptions/{name}")
        receiver.close()
