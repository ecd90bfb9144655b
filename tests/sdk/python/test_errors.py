"""Error paths a real app meets.

References: api-contract.md §1 (exact status codes; 401 -> ClientAuthenticationError,
404 -> ResourceNotFoundError, else HttpResponseError), §5 ("Only participants may
read/send/add/remove", non-participant -> 403), §7.1 (the service validates its
own tokens' signatures); sdk-clients.md §4 (real 404 "The specified thread id was
not found.", 403 "The initiator doesn't have the permission ..."), and the
real-service recordings in ../shared/reference/recordings/android-chat-2021-09-07
(cannot*WithInvalidId / *WithInvalidUser / cannotDeleteChatThreadWithInvalidThreadId:
all 400 BadRequest).
"""

import base64
import json
import time

import pytest
from azure.communication.chat import (
    ChatClient,
    ChatParticipant,
    CommunicationTokenCredential,
    CommunicationUserIdentifier,
)
from azure.core.exceptions import (
    ClientAuthenticationError,
    HttpResponseError,
    ResourceNotFoundError,
)

from sdk_helpers import UNKNOWN_THREAD_ID


def test_non_participant_is_forbidden(make_person):
    alice, mallory = make_person(), make_person()
    thread_id = alice.chat.create_chat_thread("Private").chat_thread.id
    alice.thread(thread_id).send_message("secret")
    intruder = mallory.thread(thread_id)

    with pytest.raises(HttpResponseError) as ex:
        intruder.get_properties()
    assert ex.value.status_code == 403
    assert not isinstance(ex.value, ResourceNotFoundError)

    with pytest.raises(HttpResponseError) as ex:
        list(intruder.list_messages())
    assert ex.value.status_code == 403

    with pytest.raises(HttpResponseError) as ex:
        intruder.send_message("let me in")
    assert ex.value.status_code == 403

    # Not listed among the intruder's threads either.
    assert thread_id not in {t.id for t in mallory.chat.list_chat_threads()}


def test_unknown_thread_is_not_found(make_person):
    alice = make_person()
    thread = alice.thread(UNKNOWN_THREAD_ID)
    with pytest.raises(ResourceNotFoundError) as ex:
        thread.get_properties()
    assert ex.value.status_code == 404


def test_get_unknown_message_is_not_found(make_person):
    alice = make_person()
    thread = alice.thread(alice.chat.create_chat_thread("No such message").chat_thread.id)
    real = thread.send_message("exists").id
    missing = str(int(real) + 987654)  # well-formed epoch-ms id that was never used
    with pytest.raises(ResourceNotFoundError) as ex:
        thread.get_message(missing)
    assert ex.value.status_code == 404


def _b64_no_url_chars(raw: bytes) -> str:
    return base64.b64encode(raw).decode("ascii").rstrip("=")


def test_forged_token_is_rejected(make_person, endpoint):
    """The SDK never checks signatures; the service must (401)."""
    alice, bob = make_person(), make_person()

    # 1) Alice's header+payload with Bob's signature.
    a_header, a_payload, _ = alice.token.token.split(".")
    b_signature = bob.token.token.split(".")[2]
    spliced = f"{a_header}.{a_payload}.{b_signature}"

    # 2) A hand-made token for Alice, signed with nothing useful.
    now = int(time.time())
    claims = {
        "skypeid": alice.raw_id[len("8:"):],
        "scp": 1792,
        "csi": str(now),
        "exp": now + 3600,
        "acsScope": "chat",
        "iat": now,
    }
    pad = ""
    while True:  # keep the payload free of base64url-only/ambiguous characters
        payload = _b64_no_url_chars(json.dumps({**claims, "pad": pad}).encode("ascii"))
        if not any(c in payload for c in "+/-_"):
            break
        pad += "x"
    header = _b64_no_url_chars(json.dumps({"alg": "HS256", "typ": "JWT"}).encode("ascii"))
    forged = f"{header}.{payload}.{_b64_no_url_chars(b'not-a-signature')}"

    for bad in (spliced, forged):
        with ChatClient(endpoint, CommunicationTokenCredential(bad)) as chat:
            with pytest.raises(ClientAuthenticationError) as ex:
                chat.create_chat_thread("forged")
            assert ex.value.status_code == 401


# --- malformed ids: recorded real-service answers are 400, not 404 -----------------

INVALID_USER = CommunicationUserIdentifier("8:acs:invalidUserId")
INVALID_MESSAGE_ID = "invalid_chat_message_id"


def _assert_400(call):
    with pytest.raises(HttpResponseError) as ex:
        call()
    assert ex.value.status_code == 400, ex.value
    return ex.value


@pytest.mark.parametrize("operation", ["get", "update", "delete"])
def test_malformed_message_id_is_400(make_person, operation):
    # recordings: cannot{Get,Update,Delete}MessageWithInvalidId -> 400
    # "Value for MessageId (invalid_chat_message_id) is not valid."
    alice = make_person()
    thread = alice.thread(alice.chat.create_chat_thread("Bad ids").chat_thread.id)
    call = {
        "get": lambda: thread.get_message(INVALID_MESSAGE_ID),
        "update": lambda: thread.update_message(INVALID_MESSAGE_ID, content="x"),
        "delete": lambda: thread.delete_message(INVALID_MESSAGE_ID),
    }[operation]
    _assert_400(call)


def test_malformed_thread_id_delete_is_400(make_person):
    # recording: cannotDeleteChatThreadWithInvalidThreadId -> 400 BadRequest
    alice = make_person()
    _assert_400(lambda: alice.chat.delete_chat_thread("invalid_chat_thread_id"))


def test_invalid_user_identifier_is_400(make_person):
    # recordings: cannotCreateThreadWithInvalidUser, cannotAddParticipantsWithInvalidUser,
    # cannotRemoveParticipantWithInvalidUser -> 400
    # "Identifier format is invalid (8:acs:invalidUserId)."
    alice = make_person()
    bad = ChatParticipant(identifier=INVALID_USER, display_name="Nobody")
    _assert_400(lambda: alice.chat.create_chat_thread("Invalid user", thread_participants=[bad]))

    thread = alice.thread(alice.chat.create_chat_thread("Valid").chat_thread.id)
    _assert_400(lambda: thread.add_participants([bad]))
    _assert_400(lambda: thread.remove_participant(INVALID_USER))
