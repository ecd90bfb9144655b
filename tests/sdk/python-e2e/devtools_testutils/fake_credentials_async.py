"""Async credential for playback code paths."""

import time

from azure.core.credentials import AccessToken

from .fake_credentials import FAKE_TOKEN


class AsyncFakeCredential:
    """Async ``AsyncTokenCredential`` returning a constant token valid for an hour."""

    async def get_token(self, *scopes, **kwargs):
        return AccessToken(FAKE_TOKEN, int(time.time()) + 3600)

    async def close(self):
        pass

    async def __aenter__(self):
        return self

    async def __aexit__(self, *exc_info):
        pass
