"""A local stand-in for a Microsoft Entra ID token source, for live runs without Azure.

In live mode the identity suite builds ``DefaultAzureCredential()`` for its
"from_token_credential" tests; in Azure's CI that finds a service principal. Offline there is
none, so this session fixture serves tokens the way an App Service managed-identity endpoint
does (``GET $IDENTITY_ENDPOINT?api-version=2019-08-01&resource=…`` with header
``X-IDENTITY-HEADER``) and points ``DefaultAzureCredential`` at it through the environment
(``IDENTITY_ENDPOINT``, ``IDENTITY_HEADER``, ``AZURE_TOKEN_CREDENTIALS=managedidentitycredential``).

The tokens are JWT-shaped like Entra v1 access tokens (``aud`` = the requested resource,
``iss``, ``tid``, ``oid``, ``appid``, ``iat``/``nbf``/``exp``) with a random signature: nobody can
verify them, so whether they are accepted is up to the server under test.

It does nothing when not live, or when the caller already configured a credential
(``AZURE_TOKEN_CREDENTIALS``, ``IDENTITY_ENDPOINT``, ``MSI_ENDPOINT`` or ``AZURE_CLIENT_ID`` set),
or when ``E2E_ENTRA_STUB=off``.
"""

import base64
import json
import os
import secrets
import threading
import time
import uuid
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from urllib.parse import parse_qs, urlparse

import pytest

TENANT_ID = "00000000-0000-4000-8000-00000000e2e0"
APP_ID = "00000000-0000-4000-8000-00000000e2e1"
OBJECT_ID = "00000000-0000-4000-8000-00000000e2e2"
LIFETIME_SECONDS = 3600


def _b64url(data):
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode("ascii")


def mint_token(resource):
    now = int(time.time())
    header = {"typ": "JWT", "alg": "RS256", "kid": "acs-chat-emulator-e2e"}
    claims = {
        "aud": resource,
        "iss": f"https://sts.windows.net/{TENANT_ID}/",
        "iat": now,
        "nbf": now,
        "exp": now + LIFETIME_SECONDS,
        "appid": APP_ID,
        "idtyp": "app",
        "oid": OBJECT_ID,
        "sub": OBJECT_ID,
        "tid": TENANT_ID,
        "uti": uuid.uuid4().hex,
        "ver": "1.0",
    }
    parts = [json.dumps(header).encode(), json.dumps(claims).encode(), secrets.token_bytes(256)]
    return ".".join(_b64url(p) for p in parts), now + LIFETIME_SECONDS


class _Handler(BaseHTTPRequestHandler):
    secret = ""

    def do_GET(self):  # noqa: N802 (http.server naming)
        url = urlparse(self.path)
        resource = (parse_qs(url.query).get("resource") or [""])[0]
        if self.headers.get("X-IDENTITY-HEADER") != self.secret:
            return self._reply(401, {"statusCode": 401, "message": "X-IDENTITY-HEADER mismatch"})
        if not resource:
            return self._reply(400, {"statusCode": 400, "message": "resource is required"})
        token, expires_on = mint_token(resource)
        self._reply(
            200,
            {
                "access_token": token,
                "expires_on": str(expires_on),
                "resource": resource,
                "token_type": "Bearer",
                "client_id": APP_ID,
            },
        )

    def _reply(self, status, body):
        data = json.dumps(body).encode()
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)

    def log_message(self, *_args):
        pass


def _caller_configured_a_credential():
    names = ("AZURE_TOKEN_CREDENTIALS", "IDENTITY_ENDPOINT", "MSI_ENDPOINT", "AZURE_CLIENT_ID")
    return any(os.environ.get(n) for n in names)


@pytest.fixture(scope="session", autouse=True)
def entra_token_source():
    from . import is_live

    if (
        not is_live()
        or os.environ.get("E2E_ENTRA_STUB", "").lower() == "off"
        or _caller_configured_a_credential()
    ):
        yield None
        return

    handler = type("EntraHandler", (_Handler,), {"secret": secrets.token_hex(16)})
    server = ThreadingHTTPServer(("127.0.0.1", 0), handler)
    thread = threading.Thread(target=server.serve_forever, name="entra-stub", daemon=True)
    thread.start()
    endpoint = f"http://127.0.0.1:{server.server_address[1]}/msi/token"
    patch = {
        "IDENTITY_ENDPOINT": endpoint,
        "IDENTITY_HEADER": handler.secret,
        "AZURE_TOKEN_CREDENTIALS": "managedidentitycredential",
    }
    os.environ.update(patch)
    try:
        yield endpoint
    finally:
        for name in patch:
            os.environ.pop(name, None)
        server.shutdown()
        server.server_close()
