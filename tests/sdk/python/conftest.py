"""Shared fixtures for the official-Python-SDK end-to-end tests.

The suite talks to a running emulator exactly like production code talks to the
real Azure Communication Services resource: the only input is the connection
string in ``ACS_CONNECTION_STRING``.  TLS trust comes from the environment
(``REQUESTS_CA_BUNDLE`` for requests, ``SSL_CERT_FILE`` for aiohttp); nothing in
here disables verification or https enforcement.

Every assertion encodes what the real service does (see
/work/shared/docs/api-contract.md and sdk-clients.md), not what the emulator
happens to return.
"""

import os

import pytest

pytest.register_assert_rewrite("sdk_helpers")

from azure.communication.identity import (
    CommunicationIdentityClient,
    CommunicationTokenScope,
)

from sdk_helpers import Person  # noqa: E402

CONNECTION_STRING_ENV = "ACS_CONNECTION_STRING"


def _connection_string():
    value = os.environ.get(CONNECTION_STRING_ENV)
    if not value:
        # Fail, never skip: a CI run without an emulator must not look green.
        pytest.fail(
            f"{CONNECTION_STRING_ENV} is not set (expected "
            "'endpoint=https://127.0.0.1:PORT/;accesskey=BASE64')",
            pytrace=False,
        )
    return value


def _endpoint_from_connection_string(conn_str):
    """The endpoint as the SDK's own parse_connection_str reads it:
    `;`-separated, case-insensitive keys, trailing slash stripped."""
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
    """Every test depends on the connection string, so a missing one fails all."""
    return connection_string


@pytest.fixture(scope="session")
def endpoint(connection_string):
    return _endpoint_from_connection_string(connection_string)


@pytest.fixture(scope="session")
def identity_client(connection_string):
    # The sync identity client (1.5.0) has neither close() nor a context manager.
    return CommunicationIdentityClient.from_connection_string(connection_string)


@pytest.fixture
def make_person(identity_client, endpoint):
    """Factory: a fresh identity with a chat token and a ChatClient.
    Users are deleted again at teardown (as the official e2e tests do)."""
    created = []

    def _make():
        user, token = identity_client.create_user_and_token(
            scopes=[CommunicationTokenScope.CHAT]
        )
        person = Person(endpoint, user, token)
        created.append(person)
        return person

    yield _make

    for person in created:
        try:
            person.chat.close()
        except Exception:  # pragma: no cover - best effort
            pass
        try:
            identity_client.delete_user(person.user)
        except Exception:  # pragma: no cover - best effort (may be deleted by the test)
            pass


