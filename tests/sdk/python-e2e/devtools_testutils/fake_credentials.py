"""Credentials for playback code paths: they hand out a constant token and call nothing."""

import time

from azure.core.credentials import AccessToken

FAKE_TOKEN = "fake_token"


class FakeTokenCredential:
    """Sync ``TokenCredential`` returning a constant token valid for an hour."""

    def get_token(self, *scopes, **kwargs):
        return AccessToken(FAKE_TOKEN, int(time.time()) + 3600)
