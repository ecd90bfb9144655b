"""The 2020 Python chat quickstart, run as written against the emulator.

Source: /work/shared/reference/seed/python-chat-quickstart-2020.zh-TW.md (ms.date 9/1/2020), which
was written for ``azure-communication-chat==1.0.0b2`` (Chat api-version ``2020-09-21-preview2``)
and its token prerequisite for ``azure-communication-administration==1.0.0b4`` (Identity
api-version ``2020-07-20-preview2``). The only changes from the quickstart are the endpoint (from
``ACS_CONNECTION_STRING``) and the token, which comes from the emulator's identity API.

Environment (nothing else; no code workarounds):
  ACS_CONNECTION_STRING  endpoint=https://127.0.0.1:PORT/;accesskey=BASE64
  REQUESTS_CA_BUNDLE     the emulator's CA (the sync clients use requests)

What is asserted is what the real service did for these SDKs: the generated code in the two wheels,
the spec and examples in /work/shared/reference/acs-specs/{Chat,Identity}/preview/, and recordings
of the real service taken with the JS SDK of the same era (2020-09/2021-01, api-version
2020-09-21-preview2). Where a step relies on an inference, the comment says so.
"""

import base64
import json
import os
import re
import time
from datetime import datetime, timedelta, timezone

import pytest
from azure.core.exceptions import ClientAuthenticationError, HttpResponseError

# The quickstart's imports (the prerequisite token comes from the administration package).
from azure.communication.administration import CommunicationIdentityClient
from azure.communication.chat import (
    ChatClient,
    ChatMessagePriority,
    ChatThreadMember,
    CommunicationUserCredential,
)

CONNECTION_STRING_ENV = "ACS_CONNECTION_STRING"

# Real shapes (spec examples and recordings): thread 19:<x>@thread.v2, user 8:acs:<resource>_<id>,
# message id = epoch milliseconds as a decimal string.
THREAD_ID_RE = re.compile(r"^19:.+@thread\.v2$")
ACS_USER_RE = re.compile(r"^8:acs:[^_]+_[^_]+$")
MESSAGE_ID_RE = re.compile(r"^[0-9]+$")

TEXT = "Text"
TOPIC_UPDATE = "ThreadActivity/TopicUpdate"
ADD_MEMBER = "ThreadActivity/AddMember"
DELETE_MEMBER = "ThreadActivity/DeleteMember"


# --------------------------------------------------------------------------- environment


def _connection_string():
    value = os.environ.get(CONNECTION_STRING_ENV)
    if not value:
        # Fail, never skip: a run without an emulator must not look green.
        pytest.fail(
            f"{CONNECTION_STRING_ENV} is not set (expected "
            "'endpoint=https://127.0.0.1:PORT/;accesskey=BASE64')",
            pytrace=False,
        )
    return value


def _endpoint(conn_str):
    """The endpoint as the SDKs' parse_connection_str reads it (trailing slash stripped)."""
    for part in conn_str.split(";"):
        key, sep, value = part.partition("=")
        if sep and key.strip().lower() == "endpoint":
            return value.strip().rstrip("/")
    pytest.fail(f"no endpoint in {CONNECTION_STRING_ENV}", pytrace=False)
    return None  # unreachable


@pytest.fixture(scope="session")
def connection_string():
    return _connection_string()


@pytest.fixture(autouse=True)
def _require_connection_string(connection_string):
    """Every test needs the emulator, so a missing connection string fails each of them."""
    return connection_string


@pytest.fixture(scope="session")
def endpoint(connection_string):
    return _endpoint(connection_string)


# --------------------------------------------------------------------------- helpers


def utcnow():
    return datetime.now(timezone.utc)


def aware(value):
    return value if value.tzinfo else value.replace(tzinfo=timezone.utc)


def assert_recent(value, what, slack=timedelta(minutes=5)):
    assert value is not None, f"{what} is missing"
    assert value.tzinfo is not None, f"{what} is not timezone-aware: {value!r}"
    now = utcnow()
    assert now - slack <= value <= now + slack, f"{what} {value} is not close to now ({now})"


def jwt_payload(token):
    """The payload as CommunicationUserCredential reads it (standard base64 + '==')."""
    parts = token.split(".")
    assert len(parts) == 3, f"token is not a JWT: {token[:40]}..."
    return json.loads(base64.b64decode(parts[1] + "==").decode("ascii"))


def status_of(excinfo):
    return excinfo.value.status_code


def wait_for(predicate, timeout=5.0, interval=0.1):
    """Receipts were eventually consistent on the real service (the SDK's own e2e test sleeps
    2 s before listing them); poll briefly instead of assuming immediacy."""
    deadline = time.monotonic() + timeout
    while True:
        result = predicate()
        if result or time.monotonic() >= deadline:
            return result
        time.sleep(interval)


def messages_by_id(chat_thread_client):
    return {m.id: m for m in chat_thread_client.list_messages()}


# --------------------------------------------------------------------------- the quickstart's cast


@pytest.fixture(scope="module")
def identity_client(connection_string):
    # Prerequisite "user access token": created with the administration package of the time.
    return CommunicationIdentityClient.from_connection_string(connection_string)


@pytest.fixture(scope="module")
def users(identity_client):
    """Every identity the module creates; deleted again at the end (best effort)."""
    created = []
    yield created
    for user in created:
        try:
            identity_client.delete_user(user)
        except Exception:  # pragma: no cover - best effort, may already be deleted
            pass


@pytest.fixture(scope="module")
def user(identity_client, users):
    """The quickstart's `user` (the token owner); its token has the scope "chat"."""
    user = identity_client.create_user()
    users.append(user)
    return user


@pytest.fixture(scope="module")
def token(identity_client, user):
    return identity_client.issue_token(user, scopes=["chat"]).token


@pytest.fixture(scope="module")
def chat_client(endpoint, token):
    # chat_client = ChatClient(endpoint, CommunicationUserCredential(<Access Token>))
    chat_client = ChatClient(endpoint, CommunicationUserCredential(token))
    yield chat_client
    chat_client.close()


@pytest.fixture
def new_user(identity_client, users):
    # new_user = identity_client.create_user()
    new_user = identity_client.create_user()
    users.append(new_user)
    return new_user


def start_thread(chat_client, user, topic="test topic"):
    """The quickstart's "start a chat thread" section, verbatim. Returns (client, the
    share_history_time that was sent)."""
    share_history_time = datetime.utcnow()
    thread_members = [ChatThreadMember(
        user=user,
        display_name='name',
        share_history_time=share_history_time
    )]
    chat_thread_client = chat_client.create_chat_thread(topic, thread_members)
    return chat_thread_client, aware(share_history_time)


@pytest.fixture
def thread(chat_client, user):
    chat_thread_client, _ = start_thread(chat_client, user)
    yield chat_thread_client
    chat_thread_client.close()


def send_quickstart_message(chat_thread_client, content='hello world'):
    """The quickstart's "send a message" section, verbatim."""
    priority = ChatMessagePriority.NORMAL
    sender_display_name = 'sender name'
    send_message_result = chat_thread_client.send_message(
        content, priority=priority, sender_display_name=sender_display_name)
    return send_message_result


# =========================================================================== prerequisites


def test_prerequisite_user_and_chat_token(identity_client, users):
    # POST /identities (no body) -> 200 {"id"}; POST /identities/{id}/token {"scopes":["chat"]}
    # -> 200 {"id","token","expiresOn"}.
    user = identity_client.create_user()
    users.append(user)
    assert ACS_USER_RE.match(user.identifier), user.identifier

    token_response = identity_client.issue_token(user, scopes=["chat"])
    assert token_response.id == user.identifier
    payload = jwt_payload(token_response.token)
    assert "exp" in payload
    # Real tokens of the time lived 24 h (recording: issued 01:15:28, expiresOn next day 01:15:28).
    expires_on = token_response.expires_on
    assert expires_on.tzinfo is not None
    assert timedelta(hours=23) < expires_on - utcnow() <= timedelta(hours=24, minutes=5)
    assert abs(datetime.fromtimestamp(payload["exp"], timezone.utc) - expires_on) < timedelta(seconds=2)

    # The quickstart's credential parses the token itself (exp from the payload).
    credential = CommunicationUserCredential(token_response.token)
    assert credential.get_token().token == token_response.token


def test_revoke_tokens_then_delete_user(identity_client, endpoint):
    # revoke_tokens(user) is PATCH /identities/{id} with body {} (merge-patch); the SDK sample
    # uses it exactly like this to revoke the user's tokens.
    user = identity_client.create_user()
    try:
        token = identity_client.issue_token(user, scopes=["chat"]).token
        with ChatClient(endpoint, CommunicationUserCredential(token)) as chat:
            assert list(chat.list_chat_threads()) == []
            identity_client.revoke_tokens(user)
            with pytest.raises(ClientAuthenticationError) as excinfo:
                list(chat.list_chat_threads())
            assert status_of(excinfo) == 401

        # A token issued after the revocation works.
        token = identity_client.issue_token(user, scopes=["chat"]).token
        with ChatClient(endpoint, CommunicationUserCredential(token)) as chat:
            assert list(chat.list_chat_threads()) == []
            # DELETE /identities/{id} -> 204, and "revoke all tokens of the identity".
            identity_client.delete_user(user)
            with pytest.raises(ClientAuthenticationError) as excinfo:
                list(chat.list_chat_threads())
            assert status_of(excinfo) == 401
    finally:
        try:
            identity_client.delete_user(user)
        except Exception:  # pragma: no cover - already deleted above
            pass


# =========================================================================== start a chat thread


def test_create_chat_thread_returns_a_thread_client(chat_client, user):
    chat_thread_client, share_history_time = start_thread(chat_client, user)
    # The SDK took the id from the 207 multipleStatus entry with "type": "Thread".
    thread_id = chat_thread_client.thread_id
    assert THREAD_ID_RE.match(thread_id), thread_id

    chat_thread = chat_client.get_chat_thread(thread_id)
    assert chat_thread.id == thread_id
    assert chat_thread.topic == "test topic"
    assert_recent(chat_thread.created_on, "createdOn")
    assert chat_thread.created_by.identifier == user.identifier  # createdBy is a plain id string
    members = {m.user.identifier: m for m in chat_thread.members}
    assert list(members) == [user.identifier]
    assert members[user.identifier].display_name == 'name'
    got = members[user.identifier].share_history_time
    assert got is not None and abs(got - share_history_time) < timedelta(seconds=1), got


def test_get_chat_thread_client(chat_client, thread):
    # thread_id = 'id'; chat_thread_client = chat_client.get_chat_thread_client(thread_id)
    thread_id = thread.thread_id
    chat_thread_client = chat_client.get_chat_thread_client(thread_id)
    assert chat_thread_client.thread_id == thread_id
    assert send_quickstart_message(chat_thread_client).id


def test_list_chat_threads_pages(chat_client, user):
    ids = {start_thread(chat_client, user)[0].thread_id for _ in range(2)}

    infos = list(chat_client.list_chat_threads())
    by_id = {info.id: info for info in infos}
    assert ids <= set(by_id), f"created threads missing from the list: {ids - set(by_id)}"
    for thread_id in ids:
        info = by_id[thread_id]
        assert info.topic == "test topic"
        assert info.is_deleted is False
        # Recorded: lastMessageReceivedOn is set even when only system messages exist.
        assert_recent(info.last_message_received_on, "lastMessageReceivedOn")

    # SDK README: list_chat_threads(results_per_page=5, start_time=utcnow() - 2 days).
    recent = {info.id for info in chat_client.list_chat_threads(
        results_per_page=5, start_time=utcnow() - timedelta(days=2))}
    assert ids <= recent

    # maxPageSize=1: one thread per page, the rest reached through nextLink (used verbatim).
    pages = [list(page) for page in chat_client.list_chat_threads(results_per_page=1).by_page()]
    assert all(len(page) <= 1 for page in pages), [len(p) for p in pages]
    paged_ids = [info.id for page in pages for info in page]
    assert len(paged_ids) == len(set(paged_ids)), "a thread appeared on two pages"
    assert ids <= set(paged_ids)


def test_update_thread_topic(chat_client, thread):
    thread.update_thread(topic="updated topic")  # PATCH -> 200 in this api-version
    assert chat_client.get_chat_thread(thread.thread_id).topic == "updated topic"
    topic_updates = [m for m in thread.list_messages() if m.type == TOPIC_UPDATE]
    assert any("updated topic" in (m.content or "") for m in topic_updates), [
        m.content for m in topic_updates]


def test_delete_chat_thread(chat_client, user):
    chat_thread_client, _ = start_thread(chat_client, user)
    thread_id = chat_thread_client.thread_id
    assert chat_client.delete_chat_thread(thread_id) is None  # 204

    # Inferred (design decision 8): a deleted thread is gone for GET, and stays listed as
    # soft-deleted (ChatThreadInfo.isDeleted: "Flag if a chat thread is soft deleted").
    with pytest.raises(HttpResponseError) as excinfo:
        chat_client.get_chat_thread(thread_id)
    assert status_of(excinfo) == 404
    listed = [info for info in chat_client.list_chat_threads() if info.id == thread_id]
    assert [info.is_deleted for info in listed] == [True]


# =========================================================================== messages


def test_send_and_get_message(thread, user):
    send_message_result = send_quickstart_message(thread)
    message_id = send_message_result.id
    assert MESSAGE_ID_RE.match(message_id), message_id

    message = thread.get_message(message_id)
    assert message.id == message_id
    assert message.type == TEXT
    assert message.priority == ChatMessagePriority.NORMAL == "Normal"
    assert message.content == 'hello world'
    assert message.sender_display_name == 'sender name'
    assert message.sender.identifier == user.identifier
    assert message.version == message_id  # version = id until the first edit
    assert_recent(message.created_on, "createdOn")
    assert message.deleted_on is None and message.edited_on is None

    high = thread.send_message("urgent", priority=ChatMessagePriority.HIGH)
    assert thread.get_message(high.id).priority == "High"
    assert int(high.id) > int(message_id)

    # SDK README: without priority "'Normal' will be set", without sender_display_name "empty
    # name will be set" (recorded: "senderDisplayName": "").
    plain = thread.get_message(thread.send_message("plain").id)
    assert plain.priority == "Normal"
    assert plain.sender_display_name == ""


def test_list_messages_newest_first_with_system_messages_and_paging(thread, user):
    thread_id = thread.thread_id
    sent = [send_quickstart_message(thread, f"message {i}").id for i in range(3)]

    # chat_messages = chat_thread_client.list_messages()
    chat_messages = list(thread.list_messages())
    ids = [m.id for m in chat_messages]
    assert set(sent) <= set(ids)
    assert ids == sorted(ids, key=int, reverse=True), "messages are not newest first"

    types = {m.type for m in chat_messages}
    assert {TEXT, ADD_MEMBER, TOPIC_UPDATE} <= types, types
    for m in chat_messages:
        assert m.created_on is not None and m.version
        if m.type == TEXT:
            assert m.sender.identifier == user.identifier
            assert m.sender_display_name == 'sender name'
        else:
            # Recorded: system messages are sent by the thread itself, content is XML.
            assert m.sender.identifier == thread_id, (m.type, m.sender.identifier)
    (add_member,) = [m for m in chat_messages if m.type == ADD_MEMBER]
    assert add_member.content.startswith("<addmember>")
    assert f"<target>{user.identifier}</target>" in add_member.content
    assert f"<initiator>{user.identifier}</initiator>" in add_member.content
    (topic_update,) = [m for m in chat_messages if m.type == TOPIC_UPDATE]
    assert topic_update.content.startswith("<topicupdate>")
    assert "<value>test topic</value>" in topic_update.content

    # SDK README: list_messages(results_per_page=1, start_time=utcnow() - 1 day) lists recent ones.
    start_time = utcnow() - timedelta(days=1)
    assert [m.id for m in thread.list_messages(start_time=start_time)] == ids

    # maxPageSize=2: the same messages, two per page, through nextLink.
    pages = [list(page) for page in thread.list_messages(results_per_page=2).by_page()]
    assert len(pages) >= 3 and all(len(page) <= 2 for page in pages), [len(p) for p in pages]
    assert [m.id for page in pages for m in page] == ids


def test_update_and_delete_message_show_in_list_messages(thread):
    kept = send_quickstart_message(thread, "kept").id
    edited = send_quickstart_message(thread, "before edit").id
    deleted = send_quickstart_message(thread, "to be deleted").id

    assert thread.update_message(edited, content="after edit") is None  # PATCH -> 200
    assert thread.delete_message(deleted) is None  # DELETE -> 204

    message = thread.get_message(edited)
    assert message.content == "after edit"
    assert_recent(message.edited_on, "editedOn")
    assert message.version != edited and int(message.version) > int(edited)

    # "list_messages returns the latest version of each message, including edits and deletions"
    by_id = messages_by_id(thread)
    assert by_id[kept].content == "kept"
    assert by_id[kept].edited_on is None and by_id[kept].deleted_on is None
    assert by_id[edited].content == "after edit"
    assert by_id[edited].edited_on is not None
    assert deleted in by_id, "a deleted message must still be listed, with deleted_on"
    assert_recent(by_id[deleted].deleted_on, "deletedOn")
    # created_on is the original creation time, used for ordering.
    assert by_id[edited].created_on <= by_id[deleted].created_on


# =========================================================================== members


def test_add_list_and_remove_members(identity_client, endpoint, chat_client, thread, user, new_user):
    thread_id = thread.thread_id
    before = send_quickstart_message(thread, "before the new member joined").id
    time.sleep(1.1)  # so that the new member's share_history_time is clearly after it

    # The quickstart's "add a user as member" section, verbatim (returns None on 207).
    member = ChatThreadMember(
        user=new_user,
        display_name='name',
        share_history_time=datetime.utcnow())
    thread_members = [member]
    assert thread.add_members(thread_members) is None

    members = {m.user.identifier: m for m in thread.list_members()}
    assert set(members) == {user.identifier, new_user.identifier}
    assert members[new_user.identifier].display_name == 'name'
    assert members[new_user.identifier].share_history_time is not None
    assert {m.user.identifier for m in chat_client.get_chat_thread(thread_id).members} == set(members)

    add_members = [m for m in thread.list_messages() if m.type == ADD_MEMBER]
    assert any(f"<target>{new_user.identifier}</target>" in m.content for m in add_members)

    # "Adding users also gives them access": the new member uses the thread with their own token.
    new_token = identity_client.issue_token(new_user, scopes=["chat"]).token
    with ChatClient(endpoint, CommunicationUserCredential(new_token)) as new_chat:
        new_thread = new_chat.get_chat_thread_client(thread_id)
        own = new_thread.send_message("hi, I'm new", sender_display_name='name').id
        visible = messages_by_id(new_thread)
        assert own in visible
        # share_history_time = now: earlier history is not shared with them.
        assert before not in visible
        assert thread.get_message(own).sender.identifier == new_user.identifier

        # The quickstart's "remove a user" section: chat_thread_client.remove_member(user),
        # here for the member it added (DELETE .../members/{id} -> 204).
        assert thread.remove_member(new_user) is None
        assert {m.user.identifier for m in thread.list_members()} == {user.identifier}
        delete_members = [m for m in thread.list_messages() if m.type == DELETE_MEMBER]
        assert any(new_user.identifier in (m.content or "") for m in delete_members), [
            m.content for m in delete_members]

        # A removed member can no longer send.
        with pytest.raises(HttpResponseError) as excinfo:
            new_thread.send_message("am I still here?")
        assert status_of(excinfo) == 403


def test_non_member_is_forbidden(identity_client, endpoint, thread, users):
    stranger = identity_client.create_user()
    users.append(stranger)
    token = identity_client.issue_token(stranger, scopes=["chat"]).token
    with ChatClient(endpoint, CommunicationUserCredential(token)) as chat:
        with pytest.raises(HttpResponseError) as excinfo:
            chat.get_chat_thread(thread.thread_id)
        assert status_of(excinfo) == 403


# =========================================================================== typing, read receipts


def test_send_typing_notification(thread):
    assert thread.send_typing_notification() is None  # POST .../typing, no body -> 200


def test_send_and_list_read_receipts(thread, user):
    message_id = send_quickstart_message(thread).id
    assert thread.send_read_receipt(message_id) is None  # POST .../readreceipts -> 201

    def receipts():
        return [r for r in thread.list_read_receipts() if r.chat_message_id == message_id]

    found = wait_for(receipts)
    assert len(found) == 1, found
    assert found[0].sender.identifier == user.identifier
    assert_recent(found[0].read_on, "readOn")
