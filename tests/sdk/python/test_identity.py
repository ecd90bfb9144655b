"""Identity: users, tokens, custom expiry, revocation, deletion.

References: api-contract.md §7 (Identity ops, expiresInMinutes 60..1440, default
1440), sdk-clients.md §1.4/§1.5 and §3.3 (identity 1.5.0 e2e tests: 1 h / 24 h
accepted within 5 % deviation, 59 / 1441 min -> 400 with a message).
"""

from datetime import timedelta

import pytest
from azure.communication.chat import ChatClient, CommunicationTokenCredential
from azure.communication.identity import CommunicationTokenScope
from azure.core.exceptions import ClientAuthenticationError, HttpResponseError

from sdk_helpers import ACS_USER_RE, as_aware, utcnow

CHAT = [CommunicationTokenScope.CHAT]


def _expires_in_seconds(access_token):
    expires_on = access_token.expires_on
    if isinstance(expires_on, (int, float)):
        return expires_on - utcnow().timestamp()
    return (as_aware(expires_on) - utcnow()).total_seconds()


def _assert_expiry_close(access_token, expected, deviation=0.05):
    # Same rule as the SDK's own live tests (tests/utils.py, 5 %).
    actual = _expires_in_seconds(access_token)
    allowed = expected.total_seconds() * deviation
    assert abs(actual - expected.total_seconds()) < allowed, (
        f"token expires in {actual:.0f}s, expected ~{expected.total_seconds():.0f}s"
    )


def _chat_works(endpoint, token):
    """A cheap authenticated chat call; raises on auth failure."""
    with ChatClient(endpoint, CommunicationTokenCredential(token)) as chat:
        return list(chat.list_chat_threads())


def test_create_user(identity_client):
    user = identity_client.create_user()
    try:
        assert user.properties["id"] == user.raw_id
        assert ACS_USER_RE.match(user.raw_id), user.raw_id
    finally:
        identity_client.delete_user(user)


def test_create_user_and_token_default_expiry(identity_client, endpoint):
    user, token = identity_client.create_user_and_token(scopes=CHAT)
    try:
        assert ACS_USER_RE.match(user.raw_id), user.raw_id
        assert token.token.count(".") == 2  # JWT: header.payload.signature
        _assert_expiry_close(token, timedelta(hours=24))  # default 1440 min
        # The chat credential parses the JWT `exp`; it must agree with expiresOn.
        parsed = CommunicationTokenCredential(token.token).get_token()
        assert parsed.token == token.token
        assert abs(parsed.expires_on - utcnow().timestamp() - _expires_in_seconds(token)) < 2
        assert _chat_works(endpoint, token.token) == []  # a new user has no threads
    finally:
        identity_client.delete_user(user)


def test_get_token_for_existing_user(identity_client, endpoint):
    user = identity_client.create_user()
    try:
        token = identity_client.get_token(user, scopes=CHAT)
        _assert_expiry_close(token, timedelta(hours=24))
        with ChatClient(endpoint, CommunicationTokenCredential(token.token)) as chat:
            result = chat.create_chat_thread("token from get_token")
            assert result.chat_thread.created_by.raw_id == user.raw_id
    finally:
        identity_client.delete_user(user)


@pytest.mark.parametrize("expires_in", [timedelta(hours=1), timedelta(hours=24)], ids=["1h", "24h"])
def test_custom_token_expiry_accepted(identity_client, endpoint, expires_in):
    user, token = identity_client.create_user_and_token(scopes=CHAT, token_expires_in=expires_in)
    try:
        _assert_expiry_close(token, expires_in)
        token2 = identity_client.get_token(user, scopes=CHAT, token_expires_in=expires_in)
        _assert_expiry_close(token2, expires_in)
        _chat_works(endpoint, token2.token)
    finally:
        identity_client.delete_user(user)


@pytest.mark.parametrize("minutes", [59, 1441])
def test_custom_token_expiry_out_of_range_is_400(identity_client, minutes):
    expires_in = timedelta(minutes=minutes)
    with pytest.raises(HttpResponseError) as ex:
        identity_client.create_user_and_token(scopes=CHAT, token_expires_in=expires_in)
    assert ex.value.status_code == 400
    assert ex.value.message

    user = identity_client.create_user()
    try:
        with pytest.raises(HttpResponseError) as ex:
            identity_client.get_token(user, scopes=CHAT, token_expires_in=expires_in)
        assert ex.value.status_code == 400
        assert ex.value.message
    finally:
        identity_client.delete_user(user)


def test_revoke_tokens(identity_client, endpoint):
    user, token = identity_client.create_user_and_token(scopes=CHAT)
    try:
        _chat_works(endpoint, token.token)
        identity_client.revoke_tokens(user)

        with pytest.raises(ClientAuthenticationError) as ex:
            _chat_works(endpoint, token.token)
        assert ex.value.status_code == 401

        # Revocation is for tokens issued so far; a freshly issued one works.
        fresh = identity_client.get_token(user, scopes=CHAT)
        assert _chat_works(endpoint, fresh.token) == []
    finally:
        identity_client.delete_user(user)


def test_delete_user_invalidates_tokens(identity_client, endpoint):
    user, token = identity_client.create_user_and_token(scopes=CHAT)
    _chat_works(endpoint, token.token)
    identity_client.delete_user(user)

    with ChatClient(endpoint, CommunicationTokenCredential(token.token)) as chat:
        with pytest.raises(ClientAuthenticationError) as ex:
            chat.create_chat_thread("after delete")
        assert ex.value.status_code == 401
