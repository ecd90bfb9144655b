"""Fault rules and --throttle as the official Python SDK sees them.

Fault rules are installed through the emulator's own API (/_emulator/faults, with the access key
as a bearer token, as curl users would). Each rule matches only this test's thread or user, and
is removed at teardown.
"""

import os
import re
import subprocess
import tempfile

import pytest
import requests
from azure.communication.chat import ChatClient, ChatThreadClient, CommunicationTokenCredential
from azure.communication.identity import CommunicationIdentityClient, CommunicationTokenScope
from azure.core.exceptions import HttpResponseError, ResourceNotFoundError


def _access_key(connection_string):
    for part in connection_string.split(";"):
        key, _, value = part.partition("=")
        if key.strip().lower() == "accesskey":
            return value.strip()
    pytest.fail("no accesskey in the connection string")


@pytest.fixture
def faults(endpoint, connection_string):
    """Installs rules; removes them afterwards."""
    headers = {"Authorization": f"Bearer {_access_key(connection_string)}"}
    installed = []

    def install(rule):
        response = requests.post(f"{endpoint}/_emulator/faults", json=rule, headers=headers, timeout=10)
        assert response.status_code == 201, response.text
        installed.append(response.json()["id"])
        return response.json()["id"]

    def rule(rule_id):
        listed = requests.get(f"{endpoint}/_emulator/faults", timeout=10).json()["value"]
        return next((r for r in listed if r["id"] == rule_id), None)

    install.rule = rule
    yield install
    for rule_id in installed:
        requests.delete(f"{endpoint}/_emulator/faults/{rule_id}", headers=headers, timeout=10)


def test_injected_403_is_an_http_response_error(make_person, faults):
    alice = make_person()
    thread_id = alice.chat.create_chat_thread("faults").chat_thread.id
    faults({"match": {"operation": "ChatThread_SendChatMessage", "threadId": thread_id}, "effect": {"status": 403}})
    with pytest.raises(HttpResponseError) as raised:
        alice.thread(thread_id).send_message("blocked")
    assert raised.value.status_code == 403
    assert raised.value.error.code == "Forbidden"


def test_injected_404_is_resource_not_found(make_person, faults):
    alice = make_person()
    thread_id = alice.chat.create_chat_thread("faults").chat_thread.id
    faults({"match": {"operation": "ChatThread_GetChatThreadProperties", "userId": alice.raw_id}, "effect": {"status": 404}})
    with pytest.raises(ResourceNotFoundError):
        alice.thread(thread_id).get_properties()


def test_one_transient_503_is_retried_by_the_sdk(make_person, faults):
    alice = make_person()
    thread_id = alice.chat.create_chat_thread("faults").chat_thread.id
    rule_id = faults(
        {
            "match": {"operation": "ChatThread_SendChatMessage", "threadId": thread_id},
            "effect": {"status": 503, "retryAfterSeconds": 0},
            "count": 1,
        }
    )
    # azure-core's RetryPolicy retries 503: the call succeeds, and the rule was used up.
    result = alice.thread(thread_id).send_message("after one retry")
    assert result.id
    assert faults.rule(rule_id) is None


def test_dropped_connection_surfaces_as_an_error_without_retries(make_person, faults):
    alice = make_person()
    faults({"match": {"operation": "Chat_ListChatThreads", "userId": alice.raw_id}, "effect": {"dropConnection": True}})
    client = ChatClient(alice.chat._endpoint, CommunicationTokenCredential(alice.token.token), retry_total=0)
    with pytest.raises(Exception) as raised:
        list(client.list_chat_threads())
    assert "connection" in repr(raised.value).lower() or "response" in repr(raised.value).lower()


@pytest.fixture
def throttled_endpoint():
    """A second emulator, with --throttle, trusting the same CA (same data dir, in memory)."""
    binary = os.environ.get("EMULATOR_BIN")
    data_dir = os.environ.get("EMULATOR_DATA_DIR")
    if not binary or not data_dir:
        pytest.fail("EMULATOR_BIN and EMULATOR_DATA_DIR must be set (tests/run-all.sh sets them)")
    with tempfile.TemporaryFile("w+") as log:
        process = subprocess.Popen(
            [binary, "--in-memory", "--throttle", "--https-port", "0", "--http-port", "0", "--data-dir", data_dir],
            stdout=subprocess.PIPE,
            stderr=log,
            text=True,
        )
        try:
            endpoint = None
            for line in process.stdout:
                match = re.search(r"connection string:\s*(\S+)", line)
                if match:
                    endpoint = match.group(1)
                    break
            assert endpoint, "the throttled emulator printed no connection string"
            yield endpoint
        finally:
            process.terminate()
            process.wait(timeout=10)


def test_throttling_is_a_429_with_retry_after(throttled_endpoint):
    identity = CommunicationIdentityClient.from_connection_string(throttled_endpoint)
    user, token = identity.create_user_and_token(scopes=[CommunicationTokenScope.CHAT])
    endpoint = throttled_endpoint.split(";")[0].split("=", 1)[1].rstrip("/")
    credential = CommunicationTokenCredential(token.token)
    thread_id = ChatClient(endpoint, credential).create_chat_thread("busy").chat_thread.id
    # No retries, so the 429 reaches the caller instead of being waited out (get_chat_thread_client
    # would not pass retry_total on, so the thread client is built directly).
    thread = ChatThreadClient(endpoint, credential, thread_id, retry_total=0)
    for _ in range(5):  # the service allows 5 typing notifications per 10 s per user and thread
        thread.send_typing_notification()
    with pytest.raises(HttpResponseError) as raised:
        thread.send_typing_notification()
    assert raised.value.status_code == 429
    assert raised.value.error.code == "TooManyRequests"
    assert 1 <= int(raised.value.response.headers["Retry-After"]) <= 10
