"""The async (aiohttp) clients: identity, create/list/delete threads, send/list messages.

aiohttp trusts the emulator's CA through SSL_CERT_FILE (sdk-clients.md §1.2);
the requests-based sync tests use REQUESTS_CA_BUNDLE.  The async identity client
signs the yarl-normalised URL (sdk-clients.md §1.5), so it is exercised here too.
References for behaviour: sdk-clients.md §3.3 (async twins of the official
tests: fresh user + one thread + results_per_page=1 -> exactly 1 item; same id
for the same idempotency token; delete twice; list_messages total > 0).
"""

import asyncio
import time
import uuid

import pytest
import pytest_asyncio
from azure.communication.chat import ChatMessageType, ChatParticipant
from azure.communication.chat.aio import ChatClient, CommunicationTokenCredential
from azure.communication.identity import CommunicationTokenScope
from azure.communication.identity.aio import (
    CommunicationIdentityClient as AsyncIdentityClient,
)
from azure.core.exceptions import ResourceNotFoundError

from sdk_helpers import ACS_USER_RE, THREAD_ID_RE

pytestmark = pytest.mark.asyncio

CHAT = [CommunicationTokenScope.CHAT]


class _AsyncUsers:
    def __init__(self, connection_string):
        self.identity = AsyncIdentityClient.from_connection_string(connection_string)
        self.users = []

    async def new(self):
        user, token = await self.identity.create_user_and_token(scopes=CHAT)
        self.users.append(user)
        return user, token.token

    async def close(self):
        for user in self.users:
            try:
                await self.identity.delete_user(user)
            except Exception:  # pragma: no cover - best effort
                pass
        await self.identity.close()


@pytest_asyncio.fixture
async def users(connection_string):
    holder = _AsyncUsers(connection_string)
    yield holder
    await holder.close()


async def test_async_identity(users, endpoint):
    user, token = await users.new()
    assert ACS_USER_RE.match(user.raw_id)
    fresh = await users.identity.get_token(user, scopes=CHAT)
    async with ChatClient(endpoint, CommunicationTokenCredential(fresh.token)) as chat:
        assert [t async for t in chat.list_chat_threads()] == []


async def test_async_create_list_delete_thread(users, endpoint):
    user, token = await users.new()
    async with ChatClient(endpoint, CommunicationTokenCredential(token)) as chat:
        result = await chat.create_chat_thread("Async topic")
        thread = result.chat_thread
        assert not result.errors
        assert THREAD_ID_RE.match(thread.id)
        assert thread.topic == "Async topic"
        assert thread.created_by.raw_id == user.raw_id

        items = []
        async for page in chat.list_chat_threads(results_per_page=1).by_page():
            page_items = [t async for t in page]
            assert len(page_items) <= 1
            items.extend(page_items)
        assert [t.id for t in items] == [thread.id]

        thread_client = chat.get_chat_thread_client(thread.id)
        async with thread_client:
            props = await thread_client.get_properties()
            assert props.id == thread.id

            await chat.delete_chat_thread(thread.id)
            await chat.delete_chat_thread(thread.id)
            with pytest.raises(ResourceNotFoundError):
                await thread_client.get_properties()


async def test_async_repeatability(users, endpoint):
    _, token = await users.new()
    idem = str(uuid.uuid4())
    async with ChatClient(endpoint, CommunicationTokenCredential(token)) as chat:
        first = await chat.create_chat_thread("Again", idempotency_token=idem)
        second = await chat.create_chat_thread("Again", idempotency_token=idem)
        assert first.chat_thread.id == second.chat_thread.id


async def test_async_send_and_list_messages(users, endpoint):
    alice, alice_token = await users.new()
    bob, bob_token = await users.new()
    async with ChatClient(endpoint, CommunicationTokenCredential(alice_token)) as chat:
        thread_id = (
            await chat.create_chat_thread(
                "Async messages",
                thread_participants=[ChatParticipant(identifier=bob, display_name="Bob")],
            )
        ).chat_thread.id
        async with chat.get_chat_thread_client(thread_id) as thread:
            sent = [
                (await thread.send_message(f"async {i}", sender_display_name="Alice")).id
                for i in range(3)
            ]
            msg = await thread.get_message(sent[0])
            assert msg.content.message == "async 0"
            assert msg.sender.raw_id == alice.raw_id
            await thread.send_typing_notification(sender_display_name="Alice")
            await thread.send_read_receipt(sent[-1])

            items = []
            async for page in thread.list_messages(results_per_page=2).by_page():
                page_items = [m async for m in page]
                assert len(page_items) <= 2
                items.extend(page_items)
            seqs = [int(m.sequence_id) for m in items]
            assert seqs == sorted(seqs, reverse=True)
            texts = [m.id for m in items if m.type == ChatMessageType.TEXT]
            assert texts == list(reversed(sent))
            assert {ChatMessageType.PARTICIPANT_ADDED, ChatMessageType.TOPIC_UPDATED} <= {
                m.type for m in items
            }

    async with ChatClient(endpoint, CommunicationTokenCredential(bob_token)) as chat:
        async with chat.get_chat_thread_client(thread_id) as thread:
            expected = [(alice.raw_id, sent[-1])]
            deadline = time.monotonic() + 5  # receipts are eventually consistent
            while True:
                receipts = [
                    (r.sender.raw_id, r.chat_message_id)
                    async for r in thread.list_read_receipts()
                ]
                if receipts == expected or time.monotonic() > deadline:
                    break
                await asyncio.sleep(0.1)
            assert receipts == expected
