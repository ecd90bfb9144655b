"""Helpers shared by the SDK end-to-end tests (no fixtures here)."""

import re
import time
from datetime import datetime, timezone

from azure.communication.chat import (
    ChatClient,
    ChatParticipant,
    CommunicationTokenCredential,
)

# Real shapes (api-contract.md §1, §4; design.md decision 7).
THREAD_ID_RE = re.compile(r"^19:.+@thread\.v2$")
ACS_USER_RE = re.compile(r"^8:acs:[^_]+_[^_]+$")

# shareHistoryTime the service reports when none was given (recordings).
EPOCH = datetime(1970, 1, 1, tzinfo=timezone.utc)

# A well-formed thread id that no thread has.
UNKNOWN_THREAD_ID = "19:00000000000000000000000000000000@thread.v2"


class Person:
    """A user of the app: identity, token and their own ChatClient."""

    def __init__(self, endpoint, user, token):
        self.user = user
        self.token = token  # AccessToken
        self.raw_id = user.raw_id
        self.chat = ChatClient(endpoint, CommunicationTokenCredential(token.token))

    def thread(self, thread_id):
        return self.chat.get_chat_thread_client(thread_id)

    def participant(self, display_name=None, share_history_time=None):
        return ChatParticipant(
            identifier=self.user,
            display_name=display_name,
            share_history_time=share_history_time,
        )


def utcnow():
    return datetime.now(timezone.utc)


def as_aware(value):
    """A tz-aware datetime. Chat models give datetimes; the identity client's
    AccessToken.expires_on is the raw ISO-8601 string from the wire."""
    if isinstance(value, str):
        value = datetime.fromisoformat(value.replace("Z", "+00:00"))
    if value.tzinfo is None:
        return value.replace(tzinfo=timezone.utc)
    return value


def collect_pages(paged, max_page_size):
    """Walk an ItemPaged by page; every page must respect max_page_size.
    Returns (pages, items)."""
    pages = []
    for page in paged.by_page():
        items = list(page)
        assert len(items) <= max_page_size, (
            f"page of {len(items)} items exceeds results_per_page={max_page_size}"
        )
        pages.append(items)
    return pages, [item for page in pages for item in page]


def wait_for(predicate, timeout=5.0, interval=0.1):
    """The real service is eventually consistent for some reads (the official
    read-receipt test polls); poll briefly instead of assuming immediacy."""
    deadline = time.monotonic() + timeout
    while True:
        result = predicate()
        if result or time.monotonic() >= deadline:
            return result
        time.sleep(interval)
