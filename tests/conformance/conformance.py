#!/usr/bin/env python3
"""Conformance check: replay recorded real-service exchanges and the specs' x-ms-examples
against a running emulator and compare what matters.

Inputs (read-only, never copied into the repo):
  $ACS_REFERENCE_DIR, else <repo>/../shared/reference
    recordings/android-chat-2021-09-07/*.json       azure-core-test networkCallRecords (no request bodies)
    recordings/ios-chat-2021-09-07/Recordings/*.json DVR interactions (full requests)
    recordings/ios-chat-2021-09-07/UtilRecordings/  one sanitized response body per operation
    recordings/js-assets/*.json                     test-proxy Entries (full requests)
    acs-specs/{Chat,Identity}/**/<swagger>.json      x-ms-examples (and example files nobody references)

Environment (as tests/sdk/python/run.sh):
  ACS_CONNECTION_STRING   endpoint=https://127.0.0.1:PORT/;accesskey=BASE64
  REQUESTS_CA_BUNDLE or SSL_CERT_FILE   the emulator's CA

Every exchange is replayed through the emulator's own API with state set up first (users, threads,
messages, receipts the recorded call refers to), recorded ids mapped to the emulator's, and
compared on: status code, Location (present, shaped like the recorded one), Content-Type, paging
nextLink (present, shaped like the recorded one), and the JSON shape (field names, types, nesting;
values only where they are structural: message `type`, `kind`, error `code`, ...).

Verdicts: match | diverges (deliberate: <reason>) | diverges | not replayable (<reason>).
Deliberate divergences are listed in deliberate.json beside this file.
Prints `conformance: N passed, M failed` (N = matches + deliberate, M = undocumented divergences)
and exits 1 when M > 0 (2 when the emulator cannot be reached or the inputs are missing).
"""

from __future__ import annotations

import argparse
import base64
import copy
import hashlib
import hmac
import json
import os
import re
import ssl
import sys
import tempfile
import time
import urllib.error
import urllib.parse
import urllib.request
import uuid
from dataclasses import dataclass, field
from email.utils import formatdate
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve().parent
REPO_ROOT = HERE.parent.parent

MISSING: Any = object()  # "not recorded" (as opposed to an empty body)

# Identity version used for setup calls (creating users); replaced by the newest served one if absent.
SETUP_IDENTITY_VERSION = "2023-10-01"

# ---------------------------------------------------------------------------------------------
# Operations
# ---------------------------------------------------------------------------------------------

T = r"(?P<thread>[^/]+)"
M = r"(?P<message>[^/]+)"
U = r"(?P<user>[^/]+)"

# (method, decoded-path regex, operation id). Operation ids are the emulator's (= spec 2021+ names).
ROUTES: list[tuple[str, str, str]] = [
    ("POST", r"/chat/threads", "Chat_CreateChatThread"),
    ("GET", r"/chat/threads", "Chat_ListChatThreads"),
    ("GET", rf"/chat/threads/{T}", "ChatThread_GetChatThreadProperties"),
    ("PATCH", rf"/chat/threads/{T}", "ChatThread_UpdateChatThreadProperties"),
    ("DELETE", rf"/chat/threads/{T}", "Chat_DeleteChatThread"),
    ("POST", rf"/chat/threads/{T}/messages", "ChatThread_SendChatMessage"),
    ("GET", rf"/chat/threads/{T}/messages", "ChatThread_ListChatMessages"),
    ("GET", rf"/chat/threads/{T}/messages/{M}", "ChatThread_GetChatMessage"),
    ("PATCH", rf"/chat/threads/{T}/messages/{M}", "ChatThread_UpdateChatMessage"),
    ("DELETE", rf"/chat/threads/{T}/messages/{M}", "ChatThread_DeleteChatMessage"),
    ("GET", rf"/chat/threads/{T}/participants", "ChatThread_ListChatParticipants"),
    ("POST", rf"/chat/threads/{T}/participants/:add", "ChatThread_AddChatParticipants"),
    ("POST", rf"/chat/threads/{T}/participants/:remove", "ChatThread_RemoveChatParticipant"),
    ("DELETE", rf"/chat/threads/{T}/participants/{U}", "ChatThread_RemoveChatParticipant(preview3)"),
    ("GET", rf"/chat/threads/{T}/readReceipts", "ChatThread_ListChatReadReceipts"),
    ("POST", rf"/chat/threads/{T}/readReceipts", "ChatThread_SendChatReadReceipt"),
    ("GET", rf"/chat/threads/{T}/readreceipts", "ChatThread_ListChatReadReceiptsPreview2"),
    ("POST", rf"/chat/threads/{T}/readreceipts", "ChatThread_SendChatReadReceiptPreview2"),
    ("POST", rf"/chat/threads/{T}/typing", "ChatThread_SendTypingNotification"),
    ("GET", rf"/chat/threads/{T}/members", "ChatThread_ListChatThreadMembers"),
    ("POST", rf"/chat/threads/{T}/members", "ChatThread_AddChatThreadMembers"),
    ("DELETE", rf"/chat/threads/{T}/members/{U}", "ChatThread_RemoveChatThreadMember"),
    ("POST", rf"/chat/threads/{T}/images", "ChatThread_UploadChatImage"),
    ("GET", rf"/chat/threads/{T}/images/(?P<image>[^/]+)/view/(?P<view>[^/]+)", "ChatThread_GetChatImage"),
    ("DELETE", rf"/chat/threads/{T}/images/(?P<image>[^/]+)", "ChatThread_DeleteChatImage"),
    ("POST", r"/identities", "IdentityOperations_Create"),
    ("GET", rf"/identities/{U}", "IdentityOperations_Get"),
    ("DELETE", rf"/identities/{U}", "IdentityOperations_Delete"),
    ("PATCH", rf"/identities/{U}", "CommunicationIdentity_Update"),
    ("POST", rf"/identities/{U}/:issueAccessToken", "IdentityOperations_IssueAccessToken"),
    ("POST", rf"/identities/{U}/token", "CommunicationIdentity_IssueToken"),
    ("POST", rf"/identities/{U}/:revokeAccessTokens", "IdentityOperations_RevokeAccessTokens"),
    ("POST", r"/teamsUser/:exchangeAccessToken", "TeamsUserOperations_ExchangeTeamsUserAccessToken"),
    ("POST", r"/access/teamsExtension/:exchangeAccessToken", "TeamsExtensionOperations_ExchangeToken"),
    ("GET", r"/access/teamsExtension/tenants/[^/]+/assignments/[^/]+", "TeamsExtensionOperations_GetAssignment"),
    ("PUT", r"/access/teamsExtension/tenants/[^/]+/assignments/[^/]+", "TeamsExtensionOperations_UpsertAssignment"),
    ("DELETE", r"/access/teamsExtension/tenants/[^/]+/assignments/[^/]+", "TeamsExtensionOperations_DeleteAssignment"),
]

# Operations this script knows how to set up and replay (intersected with the emulator's openapi).
REPLAY_OPS = {
    "Chat_CreateChatThread", "Chat_ListChatThreads", "ChatThread_GetChatThreadProperties",
    "ChatThread_UpdateChatThreadProperties", "Chat_DeleteChatThread", "ChatThread_SendChatMessage",
    "ChatThread_ListChatMessages", "ChatThread_GetChatMessage", "ChatThread_UpdateChatMessage",
    "ChatThread_DeleteChatMessage", "ChatThread_ListChatParticipants", "ChatThread_AddChatParticipants",
    "ChatThread_RemoveChatParticipant", "ChatThread_ListChatReadReceipts", "ChatThread_SendChatReadReceipt",
    "ChatThread_SendTypingNotification", "IdentityOperations_Create", "IdentityOperations_Get",
    "IdentityOperations_Delete", "IdentityOperations_IssueAccessToken", "IdentityOperations_RevokeAccessTokens",
    "ChatThread_UploadChatImage", "ChatThread_GetChatImage", "ChatThread_DeleteChatImage",
}
# Operations of the 2020 previews (Chat 2020-09-21-preview2, Identity 2020-07-20-preview2) that only
# those versions have; the emulator's openapi.json does not list them, they exist when the version is served.
PREVIEW2_OPS = {
    "ChatThread_ListChatThreadMembers", "ChatThread_AddChatThreadMembers", "ChatThread_RemoveChatThreadMember",
    "ChatThread_ListChatReadReceiptsPreview2", "ChatThread_SendChatReadReceiptPreview2",
    "CommunicationIdentity_Update", "CommunicationIdentity_IssueToken",
}
REPLAY_OPS |= PREVIEW2_OPS
IMAGE_VERSION = "2024-03-15-preview"  # the Chat version with image operations
IMAGE_OPS = {"ChatThread_UploadChatImage", "ChatThread_GetChatImage", "ChatThread_DeleteChatImage"}
# 1x1 PNG for image uploads whose recording has no image bytes
PNG_1X1 = base64.b64decode("iVBORw0KGgoAAAANSUhEUgAAAAEAAAABCAAAAAA6fptVAAAACklEQVQYV2P4DwABAQEAWk1v8QAAAABJRU5ErkJggg==")

# Why an operation cannot be replayed when the emulator does not have it.
NO_OP_REASON = {
    "TeamsUserOperations_ExchangeTeamsUserAccessToken": "Teams user token exchange needs Microsoft Entra; the emulator has no such operation",
    "TeamsExtensionOperations_ExchangeToken": "Teams Phone extension token exchange needs Microsoft Entra; the emulator has no such operation",
    "TeamsExtensionOperations_GetAssignment": "Teams Phone extension assignments are not emulated",
    "TeamsExtensionOperations_UpsertAssignment": "Teams Phone extension assignments are not emulated",
    "TeamsExtensionOperations_DeleteAssignment": "Teams Phone extension assignments are not emulated",
    "ChatThread_UploadChatImage": "the emulator's openapi.json has no chat image operations",
    "ChatThread_GetChatImage": "the emulator's openapi.json has no chat image operations",
    "ChatThread_DeleteChatImage": "the emulator's openapi.json has no chat image operations",
}

# Documented success status per operation (used where a recording has no status).
SUCCESS_STATUS = {
    "Chat_CreateChatThread": 201, "Chat_ListChatThreads": 200, "ChatThread_GetChatThreadProperties": 200,
    "ChatThread_UpdateChatThreadProperties": 204, "Chat_DeleteChatThread": 204, "ChatThread_SendChatMessage": 201,
    "ChatThread_ListChatMessages": 200, "ChatThread_GetChatMessage": 200, "ChatThread_UpdateChatMessage": 204,
    "ChatThread_DeleteChatMessage": 204, "ChatThread_ListChatParticipants": 200, "ChatThread_AddChatParticipants": 201,
    "ChatThread_RemoveChatParticipant": 204, "ChatThread_ListChatReadReceipts": 200,
    "ChatThread_SendChatReadReceipt": 200, "ChatThread_SendTypingNotification": 200,
    "ChatThread_UploadChatImage": 201, "ChatThread_GetChatImage": 200, "ChatThread_DeleteChatImage": 204,
}

LIST_OPS = {
    "Chat_ListChatThreads", "ChatThread_ListChatMessages", "ChatThread_ListChatParticipants",
    "ChatThread_ListChatReadReceipts", "ChatThread_ListChatThreadMembers", "ChatThread_ListChatReadReceiptsPreview2",
}
# 2020-09-21-preview2 message types -> today's
PREVIEW2_TYPES = {"Text": "text", "RichText/Html": "html", "ThreadActivity/TopicUpdate": "topicUpdated",
                  "ThreadActivity/AddMember": "participantAdded", "ThreadActivity/DeleteMember": "participantRemoved"}


def is_identity_op(op: str | None) -> bool:
    return bool(op) and (op.startswith("Identity") or op.startswith("CommunicationIdentity")
                         or op.startswith("Teams"))


def match_route(method: str, path: str) -> tuple[str | None, dict[str, str]]:
    for m, rx, op in ROUTES:
        if m != method.upper():
            continue
        mm = re.fullmatch(rx, path)
        if mm:
            return op, {k: urllib.parse.unquote(v) for k, v in mm.groupdict().items()}
    return None, {}


# ---------------------------------------------------------------------------------------------
# HTTP
# ---------------------------------------------------------------------------------------------


@dataclass
class Resp:
    status: int
    headers: dict[str, str]  # lower-case names
    raw: bytes
    url: str

    @property
    def text(self) -> str:
        return self.raw.decode("utf-8", "replace")

    @property
    def json(self) -> Any:
        if not self.raw.strip():
            return ""
        try:
            return json.loads(self.raw)
        except ValueError:
            return MISSING


class _NoRedirect(urllib.request.HTTPRedirectHandler):
    def redirect_request(self, req, fp, code, msg, headers, newurl):  # noqa: D401
        return None


class Http:
    def __init__(self, cafile: str | None):
        ctx = ssl.create_default_context(cafile=cafile) if cafile else ssl.create_default_context()
        self.opener = urllib.request.build_opener(urllib.request.HTTPSHandler(context=ctx), _NoRedirect())

    def send(self, method: str, url: str, headers: dict[str, str] | None = None,
             body: bytes | None = None) -> Resp:
        last: Exception | None = None
        for attempt in range(4):
            req = urllib.request.Request(url, data=body, method=method, headers=dict(headers or {}))
            try:
                with self.opener.open(req, timeout=60) as r:
                    return Resp(r.status, {k.lower(): v for k, v in r.headers.items()}, r.read(), url)
            except urllib.error.HTTPError as e:
                return Resp(e.code, {k.lower(): v for k, v in e.headers.items()}, e.read(), url)
            except (urllib.error.URLError, ConnectionError, TimeoutError) as e:
                last = e
                time.sleep(0.5 * (attempt + 1))
        raise ConnectionError(f"{method} {url}: {last}")


# ---------------------------------------------------------------------------------------------
# The emulator
# ---------------------------------------------------------------------------------------------


@dataclass
class User:
    id: str
    token: str | None


class Emulator:
    def __init__(self, connection_string: str, http: Http):
        parts = dict(p.split("=", 1) for p in connection_string.strip().strip(";").split(";") if "=" in p)
        parts = {k.lower(): v for k, v in parts.items()}
        self.endpoint = parts["endpoint"].rstrip("/")
        if "://" not in self.endpoint:
            self.endpoint = "https://" + self.endpoint
        self.key = parts["accesskey"]
        self.http = http
        self.netloc = urllib.parse.urlsplit(self.endpoint).netloc
        info = self.http.send("GET", self.endpoint + "/_emulator/info").json
        if not isinstance(info, dict):
            raise ConnectionError("GET /_emulator/info did not answer JSON")
        self.info = info
        self.chat_versions: list[str] = list(info.get("apiVersions", {}).get("chat", []))
        self.identity_versions: list[str] = list(info.get("apiVersions", {}).get("identity", []))
        self.resource_id: str = info.get("resourceId", "")
        # setup calls use the newest stable version (it has every field the setup may need)
        self.setup_chat_version = newest_stable(self.chat_versions)
        self.setup_identity_version = (SETUP_IDENTITY_VERSION if SETUP_IDENTITY_VERSION in self.identity_versions
                                       else self.identity_versions[-1])
        self.ops = self._operations()

    def _operations(self) -> set[str]:
        spec = REPO_ROOT / "openapi" / "openapi.json"
        ops: set[str] = set()
        try:
            doc = json.loads(spec.read_text())
            for item in doc.get("paths", {}).values():
                for o in item.values():
                    if isinstance(o, dict) and o.get("operationId"):
                        ops.add(o["operationId"])
        except (OSError, ValueError):
            ops = set(REPLAY_OPS)
        return ops

    def has(self, op: str, version: str | None) -> bool:
        """Whether the emulator has the operation (the 2020 previews' own operations exist when
        their version is served; openapi.json does not describe them)."""
        return op in self.ops or (op in PREVIEW2_OPS and self.served(op, version))

    def served(self, op: str | None, version: str | None) -> bool:
        if version is None:
            return False
        return version in (self.identity_versions if is_identity_op(op) else self.chat_versions)

    # -- signing ------------------------------------------------------------------------------

    def hmac_headers(self, method: str, url: str, body: bytes) -> dict[str, str]:
        u = urllib.parse.urlsplit(url)
        path_and_query = u.path + ("?" + u.query if u.query else "")
        date = formatdate(usegmt=True)
        content_hash = base64.b64encode(hashlib.sha256(body).digest()).decode()
        to_sign = f"{method.upper()}\n{path_and_query}\n{date};{u.netloc};{content_hash}"
        sig = base64.b64encode(hmac.new(base64.b64decode(self.key), to_sign.encode(), hashlib.sha256).digest()).decode()
        return {
            "x-ms-date": date,
            "x-ms-content-sha256": content_hash,
            "x-ms-return-client-request-id": "true",
            "Authorization": f"HMAC-SHA256 SignedHeaders=x-ms-date;host;x-ms-content-sha256&Signature={sig}",
        }

    # -- calls ---------------------------------------------------------------------------------

    def url(self, path_and_query: str) -> str:
        return self.endpoint + path_and_query

    def call(self, method: str, url: str, *, auth: str, token: str | None = None, body: Any = MISSING,
             headers: dict[str, str] | None = None, content_type: str = "application/json") -> Resp:
        """auth: 'hmac' | 'bearer' | 'key' (access key as bearer) | 'none'."""
        if isinstance(body, bytes):
            data = body
        else:
            data = b"" if body is MISSING or body is None else json.dumps(body).encode()
        h = {"Accept": "application/json", "x-ms-client-request-id": str(uuid.uuid4())}
        if body is not MISSING and body is not None:
            h["Content-Type"] = content_type
        if auth == "hmac":
            h.update(self.hmac_headers(method, url, data))
        elif auth == "bearer" and token is not None:
            h["Authorization"] = f"Bearer {token}"
        elif auth == "key":
            h["Authorization"] = f"Bearer {self.key}"
        h.update(headers or {})
        payload = data if (body is not MISSING and body is not None) else None
        for _ in range(6):
            r = self.http.send(method, url, h, payload)
            # an emulator started with --throttle: wait as told (fault rules set no Retry-After)
            if r.status != 429 or "retry-after" not in r.headers:
                return r
            time.sleep(min(float(r.headers["retry-after"] or 1), 10.0))
            if auth == "hmac":
                h.update(self.hmac_headers(method, url, data))
        return r

    def create_user(self, scopes: list[str] | None = None, custom_id: str | None = None) -> User:
        body: dict[str, Any] = {"createTokenWithScopes": scopes if scopes is not None else ["chat"]}
        if custom_id:
            body["customId"] = custom_id
        # customId exists from Identity 2025-06-30 on; older versions ignore it.
        version = "2025-06-30" if custom_id else self.setup_identity_version
        r = self.call("POST", self.url(f"/identities?api-version={version}"), auth="hmac", body=body)
        if r.status != 201 or not isinstance(r.json, dict):
            raise SetupError(f"create identity -> {r.status} {r.text[:200]}")
        tok = (r.json.get("accessToken") or {}).get("token")
        return User(r.json["identity"]["id"], tok)

    def add_fault(self, match: dict[str, Any], status: int) -> str | None:
        r = self.call("POST", self.url("/_emulator/faults"), auth="key",
                      body={"match": match, "effect": {"status": status}, "count": 1})
        if r.status not in (200, 201) or not isinstance(r.json, dict):
            raise SetupError(f"add fault rule -> {r.status} {r.text[:200]}")
        return r.json.get("id")

    def delete_fault(self, fault_id: str | None) -> None:
        if fault_id:
            self.call("DELETE", self.url(f"/_emulator/faults/{urllib.parse.quote(fault_id, safe='')}"), auth="key")


def newest_stable(versions: list[str]) -> str:
    stable = sorted(v for v in versions if "preview" not in v)
    return stable[-1] if stable else sorted(versions)[-1]


class SetupError(Exception):
    """State the replay needs could not be created through the emulator's API."""


# ---------------------------------------------------------------------------------------------
# Exchanges and scenarios
# ---------------------------------------------------------------------------------------------


@dataclass
class Diff:
    kind: str  # status | location | content-type | next-link | body | error-code | error-envelope | api-version-not-served | setup
    detail: str


@dataclass
class Exchange:
    id: str
    source: str
    method: str
    raw_path: str  # as recorded (percent-encoding kept), slashes collapsed
    query: dict[str, str]
    api_version: str | None
    op: str | None
    params: dict[str, str]
    status: int | None
    status_note: str = ""
    headers: dict[str, str] | None = None  # lower-case names; None: not recorded
    headers_complete: bool = False  # all response headers recorded (absence means absence)
    body: Any = MISSING  # parsed JSON, "" for empty, MISSING when not recorded
    req_body: Any = MISSING
    req_headers: dict[str, str] = field(default_factory=dict)
    host: str = ""
    mode: str = "normal"  # normal | unauthorized | forbidden | fault
    skip: str | None = None  # not replayable (reason)
    setup_error: str | None = None  # the emulator refused state this exchange needs
    # results
    sent: str = ""
    emu: Resp | None = None
    diffs: list[Diff] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)
    verdict: str = ""
    reason: str = ""

    @property
    def title(self) -> str:
        q = ("?" + "&".join(f"{k}={v}" for k, v in self.query.items())) if self.query else ""
        if len(q) > 70:
            q = q[:67] + "..."
        mode = "" if self.mode == "normal" else f" [{self.mode}]"
        return f"{self.method} {self.raw_path}{q}{mode}"


@dataclass
class Scenario:
    id: str
    source: str
    exchanges: list[Exchange]
    caller_hint: str | None = None  # recorded raw id of the caller, when known


def split_url(url: str) -> tuple[str, str, dict[str, str]]:
    u = urllib.parse.urlsplit(url)
    path = re.sub(r"/{2,}", "/", u.path) or "/"
    query = {k: v for k, v in urllib.parse.parse_qsl(u.query, keep_blank_values=True)}
    return u.netloc, path, query


def decoded(path: str) -> str:
    return "/".join(urllib.parse.unquote(s) for s in path.split("/"))


def parse_body(value: Any) -> Any:
    if value is None:
        return ""
    if isinstance(value, (dict, list)):
        return value
    if isinstance(value, str):
        if not value.strip():
            return ""
        try:
            return json.loads(value)
        except ValueError:
            return value
    return value


def make_exchange(xid: str, source: str, method: str, url: str, status: int | None, **kw: Any) -> Exchange:
    host, path, query = split_url(url)
    op, params = match_route(method, decoded(path))
    return Exchange(id=xid, source=source, method=method.upper(), raw_path=path, query=query,
                    api_version=query.get("api-version"), op=op, params=params, status=status, host=host, **kw)


# -- loaders ----------------------------------------------------------------------------------


def load_android(ref: Path) -> tuple[list[Scenario], list[str]]:
    scenarios, empty = [], []
    folder = ref / "recordings" / "android-chat-2021-09-07"
    for f in sorted(folder.glob("*.json")):
        recs = json.loads(f.read_text()).get("networkCallRecords", [])
        sid = f"android/{f.stem}"
        if not recs:
            empty.append(sid)
            continue
        exs = []
        for i, r in enumerate(recs, 1):
            resp = r.get("Response", {})
            headers = {k.lower(): str(v) for k, v in resp.items() if k not in ("StatusCode", "Body")}
            exs.append(make_exchange(f"{sid}#{i}", "android", r["Method"], r["Uri"], int(resp["StatusCode"]),
                                     headers=headers, headers_complete=True, body=parse_body(resp.get("Body"))))
        scenarios.append(Scenario(sid, "android", exs))
    return scenarios, empty


def load_ios(ref: Path) -> list[Scenario]:
    scenarios = []
    folder = ref / "recordings" / "ios-chat-2021-09-07" / "Recordings"
    for f in sorted(folder.glob("*.json")):
        d = json.loads(f.read_text())
        sid = f"ios/{f.stem}"
        exs = []
        for i, it in enumerate(d.get("interactions", []), 1):
            req, resp = it["request"], it["response"]
            url = resp.get("url") or req["url"]
            ex = make_exchange(f"{sid}#{i}", "ios", req["method"], url, int(resp["status"]),
                               headers={k.lower(): str(v) for k, v in resp.get("headers", {}).items()},
                               headers_complete=True, body=parse_body(resp.get("body")),
                               req_body=parse_body(req.get("body")) if req.get("body") not in (None, "") else MISSING,
                               req_headers={k.lower(): str(v) for k, v in req.get("headers", {}).items()})
            if "communication.azure.com" not in ex.host and ex.host not in ("endpoint",):
                ex.skip = f"push-notification registrar at {ex.host}, not part of the Chat REST API"
            exs.append(ex)
        scenarios.append(Scenario(sid, "ios", exs))
    return scenarios


IOS_UTIL = {
    "addParticipants": ("POST", "/chat/threads/sanitized/participants/:add"),
    "createThread": ("POST", "/chat/threads"),
    "deleteMessage": ("DELETE", "/chat/threads/sanitized/messages/sanitized"),
    "deleteThread": ("DELETE", "/chat/threads/sanitized"),
    "getThread": ("GET", "/chat/threads/sanitized"),
    "listMessages": ("GET", "/chat/threads/sanitized/messages"),
    "listParticipants": ("GET", "/chat/threads/sanitized/participants"),
    "listReadReceipts": ("GET", "/chat/threads/sanitized/readReceipts"),
    "listThreads": ("GET", "/chat/threads"),
    "removeParticipant": ("POST", "/chat/threads/sanitized/participants/:remove"),
    "sendMessage": ("POST", "/chat/threads/sanitized/messages"),
    "sendReadReceipt": ("POST", "/chat/threads/sanitized/readReceipts"),
    "sendTypingNotification": ("POST", "/chat/threads/sanitized/typing"),
    "updateMessage": ("PATCH", "/chat/threads/sanitized/messages/sanitized"),
    "updateTopic": ("PATCH", "/chat/threads/sanitized"),
}


def desanitize(body: Any, stem: str) -> Any:
    """The sanitized iOS bodies use "sanitized" for every id; give list entries distinct keys so
    that the setup creates as many threads/participants as the body shows."""
    if not isinstance(body, dict) or not isinstance(body.get("value"), list):
        return body
    body = copy.deepcopy(body)
    for i, item in enumerate(body["value"]):
        if stem == "listThreads" and item.get("id") == "sanitized":
            item["id"] = f"sanitized-thread-{i}"
        if stem == "listParticipants":
            ci = item.get("communicationIdentifier", {})
            if ci.get("rawId") == "sanitized" and i > 0:
                ci["rawId"] = f"sanitized-user-{i}"
                ci.get("communicationUser", {})["id"] = f"sanitized-user-{i}"
    return body


def load_ios_util(ref: Path) -> list[Scenario]:
    scenarios = []
    folder = ref / "recordings" / "ios-chat-2021-09-07" / "UtilRecordings"
    for f in sorted(folder.glob("*.json")):
        sid = f"ios-util/{f.stem}"
        text = f.read_text()
        if f.stem not in IOS_UTIL:
            ex = make_exchange(sid, "ios-util", "GET", "/unknown", None, body=parse_body(text))
            ex.skip = "unknown operation for this sanitized body"
            scenarios.append(Scenario(sid, "ios-util", [ex]))
            continue
        method, path = IOS_UTIL[f.stem]
        ex = make_exchange(sid, "ios-util", method, f"https://sanitized{path}?api-version=2021-09-07", None,
                           body=desanitize(parse_body(text), f.stem))
        ex.status = SUCCESS_STATUS.get(ex.op or "")
        ex.status_note = "status not recorded; the operation's documented success code"
        scenarios.append(Scenario(sid, "ios-util", [ex]))
    return scenarios


def load_js(ref: Path) -> list[Scenario]:
    scenarios = []
    folder = ref / "recordings" / "js-assets"
    for f in sorted(folder.glob("*.json")):
        d = json.loads(f.read_text())
        sid = f"js/{f.stem}"
        exs = []
        for i, e in enumerate(d.get("Entries", []), 1):
            rb = e.get("RequestBody")
            exs.append(make_exchange(f"{sid}#{i}", "js", e["RequestMethod"], e["RequestUri"], int(e["StatusCode"]),
                                     headers={k.lower(): str(v) for k, v in e.get("ResponseHeaders", {}).items()},
                                     headers_complete=True, body=parse_body(e.get("ResponseBody")),
                                     req_body=parse_body(rb) if rb not in (None, "") else MISSING,
                                     req_headers={k.lower(): str(v) for k, v in e.get("RequestHeaders", {}).items()}))
        scenarios.append(Scenario(sid, "js", exs))
    return scenarios


# -- spec examples ----------------------------------------------------------------------------

SPEC_FALLBACK = {  # example files no swagger copy references: stem -> (method, path template)
    "Images_UploadChatImage": ("POST", "/chat/threads/{chatThreadId}/images"),
    "Images_GetChatImage": ("GET", "/chat/threads/{chatThreadId}/images/{imageId}/view/{imageViewType}"),
    "Images_DeleteChatImage": ("DELETE", "/chat/threads/{chatThreadId}/images/{imageId}"),
    "CreateIdentity": ("POST", "/identities"),
    "GetIdentity": ("GET", "/identities/{id}"),
    "DeleteIdentity": ("DELETE", "/identities/{id}"),
    "IssueAccessToken": ("POST", "/identities/{id}/:issueAccessToken"),
    "RevokeAccessTokens": ("POST", "/identities/{id}/:revokeAccessTokens"),
    "CommunicationIdentity_IssueAccessToken": ("POST", "/identities/{id}/:issueAccessToken"),
    "CommunicationIdentity_RevokeAccessTokens": ("POST", "/identities/{id}/:revokeAccessTokens"),
    "CommunicationIdentity_ExchangeTeamsUserAccessToken": ("POST", "/teamsUser/:exchangeAccessToken"),
    "ExchangeTeamsUserAccessToken": ("POST", "/teamsUser/:exchangeAccessToken"),
    "ExchangeTeamsPhoneToken": ("POST", "/access/teamsExtension/:exchangeAccessToken"),
    "TeamsExtensionToken_Exchange": ("POST", "/access/teamsExtension/:exchangeAccessToken"),
    "CreateOrReplaceTeamsExtensionAssignment": ("PUT", "/access/teamsExtension/tenants/{tenantId}/assignments/{objectId}"),
    "TeamsExtensionAssignment_Upsert": ("PUT", "/access/teamsExtension/tenants/{tenantId}/assignments/{objectId}"),
    "GetTeamsExtensionAssignment": ("GET", "/access/teamsExtension/tenants/{tenantId}/assignments/{objectId}"),
    "DeleteTeamsExtensionAssignment": ("DELETE", "/access/teamsExtension/tenants/{tenantId}/assignments/{objectId}"),
    "TeamsExtensionAssignment_Delete": ("DELETE", "/access/teamsExtension/tenants/{tenantId}/assignments/{objectId}"),
}

BODY_PARAM_NAMES = {
    "body", "createChatThreadRequest", "sendChatMessageRequest", "updateChatMessageRequest",
    "updateChatThreadRequest", "addChatParticipantsRequest", "participantCommunicationIdentifier",
    "sendReadReceiptRequest", "sendTypingNotificationRequest", "chatImageFile",
}
QUERY_PARAM_NAMES = {"maxPageSize", "skip", "startTime"}


def spec_files(ref: Path) -> list[Path]:
    root = ref / "acs-specs"
    out = []
    for api in ("Chat", "Identity", "Common"):
        for f in sorted((root / api).glob("*/*/*.json")):
            out.append(f)
    return out


def load_spec(ref: Path) -> list[Scenario]:
    root = ref / "acs-specs"
    refs: dict[Path, tuple[str, str, dict[str, Any]]] = {}  # example file -> (method, path, operation)
    referenced_missing: list[tuple[Path, str, str]] = []
    for sw in spec_files(ref):
        try:
            doc = json.loads(sw.read_text())
        except ValueError:
            continue
        for path, item in (doc.get("paths") or {}).items():
            for method, o in item.items():
                if not isinstance(o, dict) or method == "parameters":
                    continue
                for ex in (o.get("x-ms-examples") or {}).values():
                    target = (sw.parent / ex["$ref"]).resolve()
                    if target.exists():
                        refs[target] = (method.upper(), path, o)
                    else:
                        referenced_missing.append((target, method.upper(), path))
    scenarios: list[Scenario] = []
    seen: set[Path] = set()
    example_files = sorted(set(list(refs) + [p.resolve() for p in root.glob("*/*/*/examples/*.json")]))
    for f in example_files:
        seen.add(f)
        rel = f.relative_to(root.resolve()).as_posix()
        sid = f"spec/{rel}"
        d = json.loads(f.read_text())
        if f in refs:
            method, template, _ = refs[f]
        elif f.stem in SPEC_FALLBACK:
            method, template = SPEC_FALLBACK[f.stem]
        else:
            ex = make_exchange(sid, "spec", "GET", "/unknown", None)
            ex.skip = "no swagger copy references this example and its operation is unknown"
            scenarios.append(Scenario(sid, "spec", [ex]))
            continue
        scenarios.append(spec_scenario(sid, d, method, template, referenced=f in refs))
    for target, method, path in referenced_missing:
        t = target
        try:
            rel = t.relative_to(root.resolve()).as_posix()
        except ValueError:
            rel = str(t)
        sid = f"spec/{rel}"
        if t in seen:
            continue
        seen.add(t)
        ex = make_exchange(sid, "spec", method, path, None)
        ex.skip = "referenced by x-ms-examples but the example file is not in the reference copy"
        scenarios.append(Scenario(sid, "spec", [ex]))
    return scenarios


def spec_scenario(sid: str, d: dict[str, Any], method: str, template: str, referenced: bool) -> Scenario:
    params = d.get("parameters", {})
    version = params.get("api-version")
    path = template
    for name in re.findall(r"{([^}]+)}", template):
        value = str(params.get(name, name))
        path = path.replace("{" + name + "}", urllib.parse.quote(value, safe="@:" if name != "id" else ""))
    query = {k: str(params[k]) for k in QUERY_PARAM_NAMES if k in params}
    qs = urllib.parse.urlencode({**query, "api-version": version or ""})
    body = MISSING
    for name in BODY_PARAM_NAMES:
        if name in params:
            body = params[name]
    req_headers = {}
    for hname in ("idempotency-token", "repeatability-request-id", "repeatability-Request-ID"):
        if hname in params:
            req_headers["repeatability-request-id"] = str(params[hname])
    if "image-filename" in params:
        req_headers["image-filename"] = str(params["image-filename"])
    if "content-type" in params and body is not MISSING:
        req_headers["content-type"] = str(params["content-type"])
    exs = []
    codes = list(d.get("responses", {}).keys())
    # error modes first (they need the same state and must not see the success call's effects)
    order = sorted(codes, key=lambda c: (c.startswith("2"), c))
    for code in order:
        r = d["responses"][code] or {}
        note = None
        if r and not set(r) & {"body", "headers"}:  # a hand-written example that forgot the "body" wrapper
            r, note = {"body": r}, "the example's response has no \"body\" wrapper; its content is taken as the body"
        ex = make_exchange(f"{sid}#{code}", "spec", method, f"https://example{path}?{qs}",
                           int(code) if code.isdigit() else None,
                           headers={k.lower(): str(v) for k, v in (r.get("headers") or {}).items()},
                           headers_complete=False, body=r["body"] if "body" in r else "",
                           req_body=body, req_headers=dict(req_headers))
        if not referenced:
            ex.notes.append("example file present upstream but not referenced by the swagger copy")
        if note:
            ex.notes.append(note)
        if code == "401":
            ex.mode = "unauthorized"
        elif code == "403":
            ex.mode = "forbidden"
        elif code in ("429", "503", "500"):
            ex.mode = "fault"
        elif not code.isdigit():
            ex.skip = f"response '{code}' has no status to provoke"
        exs.append(ex)
    return Scenario(sid, "spec", exs)


# ---------------------------------------------------------------------------------------------
# What a scenario's recorded responses say about the state behind them
# ---------------------------------------------------------------------------------------------

ACS_ID = re.compile(r"^8:acs:[0-9a-fA-F-]{36}_[0-9A-Za-z-]+$")
EPOCH = "1970-01-01T00:00:00Z"


def norm_user(raw: str | None) -> str | None:
    if raw is None:
        return None
    if re.fullmatch(r"[0-9a-fA-F-]{36}_[0-9A-Za-z-]+", raw):
        return "8:acs:" + raw  # one spec example drops the prefix
    return raw


def created_thread(body: Any) -> str | None:
    """The thread id a create answer names: chatThread.id, or the preview2 multi-status entry."""
    if not isinstance(body, dict):
        return None
    if isinstance(body.get("chatThread"), dict):
        return body["chatThread"].get("id")
    for e in body.get("multipleStatus", []) or []:
        if isinstance(e, dict) and (e.get("type") == "Thread" or str(e.get("id", "")).startswith("19:")):
            return e.get("id")
    return None


def ident(obj: Any) -> str | None:
    if isinstance(obj, str):  # 2020-09-21-preview2 identifiers are plain strings
        return norm_user(obj)
    if not isinstance(obj, dict):
        return None
    raw = obj.get("rawId") or (obj.get("communicationUser") or {}).get("id")
    return norm_user(raw)


@dataclass
class PInfo:
    user: str
    display_name: str | None = None
    share_history_time: str | None = None
    metadata: dict[str, str] | None = None


@dataclass
class MInfo:
    id: str
    thread: str
    type: str = "text"
    seq: int | None = None
    content: dict[str, Any] = field(default_factory=dict)
    sender: str | None = None
    sender_display_name: str | None = None
    metadata: dict[str, str] | None = None
    edited: bool = False
    deleted: bool = False


@dataclass
class TInfo:
    id: str
    topic: str | None = None
    creator: str | None = None
    initial: list[PInfo] | None = None  # participants at creation
    listed: list[PInfo] = field(default_factory=list)
    metadata: dict[str, str] | None = None
    retention: Any = None
    deleted: bool = False
    created_here: bool = False
    messages: dict[str, MInfo] = field(default_factory=dict)
    receipts: list[tuple[str, str]] = field(default_factory=list)  # (user, message id)
    pad: set[str] = field(default_factory=set)  # list ops whose last recorded page shows a nextLink


class Knowledge:
    def __init__(self, scen: Scenario):
        self.threads: dict[str, TInfo] = {}
        self.thread_order: list[str] = []  # as listed (newest first)
        self.users: dict[str, str] = {}  # user -> class: real | foreign | missing | literal
        self.custom_ids: dict[str, str] = {}
        self.sent_here: set[str] = set()
        self.receipts_here: set[str] = set()  # threads with a POST readReceipts in the scenario
        self.create_ids: dict[int, str] = {}  # exchange index -> recorded thread id (creates)
        self.pad_threads = False
        self.caller: str | None = scen.caller_hint
        exs = scen.exchanges
        for i, ex in enumerate(exs):
            if ex.skip:
                continue
            self._learn(i, ex, exs)
        for raw in list(self.users):
            if self.users[raw] == "real" and not (ACS_ID.match(raw) or raw.startswith("sanitized")):
                self.users[raw] = "literal"
        if self.caller is None:  # the creator of the first thread the scenario addresses
            for ex in exs:
                t = self.threads.get(ex.params.get("thread", ""))
                if t is not None and t.creator:
                    self.caller = t.creator
                    break

    def thread(self, tid: str) -> TInfo:
        if tid not in self.threads:
            self.threads[tid] = TInfo(tid)
        return self.threads[tid]

    def user(self, raw: str | None, cls: str = "real") -> str | None:
        raw = norm_user(raw)
        if raw is None:
            return None
        if raw not in self.users or cls != "real":
            self.users[raw] = cls if raw not in self.users or self.users[raw] == "real" else self.users[raw]
        return raw

    def participant(self, p: dict[str, Any]) -> PInfo:
        """A ChatParticipant, or a 2020-09-21-preview2 ChatThreadMember ({id, displayName, ...})."""
        raw = ident(p.get("communicationIdentifier")) if "communicationIdentifier" in p else ident(p.get("id"))
        return PInfo(self.user(raw) or "?", p.get("displayName"), p.get("shareHistoryTime"), p.get("metadata"))

    def message(self, tid: str, m: dict[str, Any]) -> MInfo:
        t = self.thread(tid)
        mid = str(m.get("id"))
        if mid == "sanitized":  # the sanitized iOS bodies give every message the same id
            mid = f"sanitized-{m.get('sequenceId')}"
        info = t.messages.get(mid) or MInfo(mid, tid)
        info.type = PREVIEW2_TYPES.get(m.get("type", ""), m.get("type", info.type))
        if str(m.get("sequenceId", "")).isdigit():
            info.seq = int(m["sequenceId"])
        content = m.get("content") or info.content
        info.content = content if isinstance(content, dict) else {"message": str(content)}
        sender = ident(m.get("senderCommunicationIdentifier")) or ident(m.get("senderId"))
        if sender and sender.startswith("19:"):  # preview2 system messages name the thread as sender
            sender = None
        info.sender = self.user(sender) or info.sender
        info.sender_display_name = m.get("senderDisplayName", info.sender_display_name)
        info.metadata = m.get("metadata", info.metadata)
        info.edited = info.edited or "editedOn" in m
        info.deleted = info.deleted or "deletedOn" in m
        for p in info.content.get("participants", []) or []:
            self.participant(p)
        self.user(ident(info.content.get("initiatorCommunicationIdentifier")))
        t.messages[mid] = info
        if info.type == "participantAdded" and info.seq == 1 and t.initial is None:
            t.initial = [self.participant(p) for p in info.content.get("participants", [])]
            t.creator = t.creator or self.user(ident(info.content.get("initiatorCommunicationIdentifier")))
        return info

    def _learn(self, i: int, ex: Exchange, exs: list[Exchange]) -> None:
        b = ex.body if isinstance(ex.body, dict) else {}
        req = ex.req_body if isinstance(ex.req_body, dict) else {}
        op, tid, ok = ex.op, ex.params.get("thread"), ex.status is not None and 200 <= ex.status < 300
        if ex.mode != "normal":
            ok = False
        for e in (b.get("invalidParticipants") or []):
            if isinstance(e, dict) and e.get("target"):
                self.user(e["target"], {"403": "foreign", "404": "missing"}.get(str(e.get("code")), "literal"))
        err = b.get("CommunicationError") or b.get("error") or b
        msg = str(err.get("Message") or err.get("message") or "")
        for raw in re.findall(r"\((8:[^)\s]+)\)", msg):
            self.user(raw, "literal")
        for e in (b.get("multipleStatus") or []):  # 2020-09-21-preview2 207 answers
            if isinstance(e, dict) and str(e.get("id", "")).startswith("8:") and e.get("statusCode") in (403, 404):
                self.user(e["id"], {403: "foreign", 404: "missing"}[e["statusCode"]])
        if op == "Chat_CreateChatThread":
            for p in (req.get("participants") or req.get("members") or []):
                self.participant(p)
            made = created_thread(b)
            if ok and made and not isinstance(b.get("chatThread"), dict):  # preview2: {multipleStatus}
                t = self.thread(made)
                t.created_here = True
                t.topic = req.get("topic", t.topic)
                if t.initial is None:
                    t.initial = [self.participant(p) for p in req.get("members", []) or []]
                self.create_ids[i] = made
            if ok and isinstance(b.get("chatThread"), dict):
                ct = b["chatThread"]
                t = self.thread(ct["id"])
                t.created_here = True
                t.topic = ct.get("topic", t.topic)
                t.creator = self.user(ident(ct.get("createdByCommunicationIdentifier"))) or t.creator
                t.metadata = ct.get("metadata", t.metadata)
                t.retention = ct.get("retentionPolicy", t.retention)
                if req.get("participants") is not None and t.initial is None:
                    t.initial = [self.participant(p) for p in req["participants"]]
                self.create_ids[i] = ct["id"]
                self.caller = self.caller or t.creator
        elif op == "ChatThread_GetChatThreadProperties" and ok and tid:
            t = self.thread(tid)
            t.topic = b.get("topic", t.topic)
            t.creator = t.creator or self.user(ident(b.get("createdByCommunicationIdentifier")) or ident(b.get("createdBy")))
            for p in b.get("members", []) or []:  # preview2
                pi = self.participant(p)
                if pi.user not in [q.user for q in t.listed]:
                    t.listed.append(pi)
            t.metadata = b.get("metadata", t.metadata)
            t.retention = b.get("retentionPolicy", t.retention)
            t.deleted = t.deleted or "deletedOn" in b
            self.caller = self.caller or t.creator
        elif op == "Chat_ListChatThreads" and ok:
            for item in b.get("value", []) or []:
                t = self.thread(item["id"])
                t.topic = t.topic or item.get("topic")
                t.deleted = t.deleted or "deletedOn" in item
                if item["id"] not in self.thread_order:
                    self.thread_order.append(item["id"])
            if b.get("nextLink") and not self._followed(i, exs):
                self.pad_threads = True
        elif op == "ChatThread_SendChatMessage" and tid:
            if ok and isinstance(b, dict) and b.get("id"):
                self.sent_here.add(str(b["id"]))
                info = self.thread(tid).messages.get(str(b["id"])) or MInfo(str(b["id"]), tid)
                if req:
                    info.content = {"message": req.get("content", "")}
                    info.type = req.get("type", "text")
                    info.sender_display_name = req.get("senderDisplayName")
                    info.metadata = req.get("metadata")
                self.thread(tid).messages[info.id] = info
        elif op in ("ChatThread_GetChatMessage",) and ok and tid:
            self.message(tid, b)
        elif op == "ChatThread_ListChatMessages" and ok and tid:
            for m in b.get("value", []) or []:
                self.message(tid, m)
        elif op in ("ChatThread_ListChatParticipants", "ChatThread_ListChatThreadMembers") and ok and tid:
            t = self.thread(tid)
            for p in b.get("value", []) or []:
                pi = self.participant(p)
                if pi.user not in [q.user for q in t.listed]:
                    t.listed.append(pi)
            if b.get("nextLink") and not self._followed(i, exs):
                t.pad.add(op)
        elif op in ("ChatThread_AddChatParticipants", "ChatThread_AddChatThreadMembers"):
            for p in (req.get("participants") or req.get("members") or []):
                self.participant(p)
        elif op == "ChatThread_RemoveChatParticipant":
            self.user(ident(ex.req_body) if isinstance(ex.req_body, dict) else None)
        elif op in ("ChatThread_ListChatReadReceipts", "ChatThread_ListChatReadReceiptsPreview2") and ok and tid:
            t = self.thread(tid)
            for r in b.get("value", []) or []:
                u = self.user(ident(r.get("senderCommunicationIdentifier")) or ident(r.get("senderId")))
                if u and (u, str(r.get("chatMessageId"))) not in t.receipts:
                    t.receipts.append((u, str(r.get("chatMessageId"))))
            if b.get("nextLink") and not self._followed(i, exs):
                t.pad.add(op)
        elif op in ("ChatThread_SendChatReadReceipt", "ChatThread_SendChatReadReceiptPreview2") and tid:
            self.receipts_here.add(tid)
        elif op == "IdentityOperations_Create" and ok:
            rid = (b.get("identity") or {}).get("id")
            if rid:
                self.user(rid)
        elif op in ("IdentityOperations_Get",) and ok and b.get("id"):
            self.user(b["id"])
            if b.get("customId"):
                self.custom_ids[b["id"]] = b["customId"]

    @staticmethod
    def _followed(i: int, exs: list[Exchange]) -> bool:
        """Whether a later exchange of the scenario fetches the next page of this listing."""
        ex = exs[i]
        for later in exs[i + 1:]:
            if later.op == ex.op and later.params.get("thread") == ex.params.get("thread") and later.mode == ex.mode:
                return any(k in later.query for k in ("syncState", "skip"))
        return False


# ---------------------------------------------------------------------------------------------
# Replaying a scenario
# ---------------------------------------------------------------------------------------------


class Replayer:
    def __init__(self, emu: Emulator, scen: Scenario, version_map: dict[str, str] | None = None):
        self.emu = emu
        self.scen = scen
        self.vmap = version_map or {}
        self.kn = Knowledge(scen)
        self.users: dict[str, User | str] = {}  # recorded user -> User (real) or id string
        self.threads: dict[str, str] = {}  # recorded thread id -> emulator thread id
        self.messages: dict[tuple[str, str], str] = {}  # (recorded thread, recorded message) -> emulator id
        self.members: dict[str, list[str]] = {}  # emulator thread -> emulator user ids (as set up)
        self.next_links: dict[tuple[str, str], str | None] = {}
        self.repeat_ids: dict[str, str] = {}  # recorded thread id -> repeatability-request-id
        self.images: dict[tuple[str, str], str] = {}  # (recorded thread, recorded image) -> emulator id
        self._caller: User | None = None

    # -- users -----------------------------------------------------------------------------------

    def user(self, raw: str | None) -> User | str:
        raw = norm_user(raw)
        if raw is None:
            return self.caller()
        if raw in self.users:
            return self.users[raw]
        cls = self.kn.users.get(raw, "real")
        if cls == "foreign":
            val: User | str = raw
        elif cls == "missing":
            val = f"8:acs:{self.emu.resource_id}_{uuid.uuid4()}"
        elif cls == "literal":
            val = raw
        else:
            val = self.emu.create_user(custom_id=self.kn.custom_ids.get(raw))
        self.users[raw] = val
        return val

    def uid(self, raw: str | None) -> str:
        u = self.user(raw)
        return u.id if isinstance(u, User) else u

    def caller(self) -> User:
        if self._caller is None:
            raw = self.kn.caller
            if raw is None:
                raw = "caller"
                self.kn.users.setdefault(raw, "real")
                self.kn.users[raw] = "real"
                self.users[raw] = self.emu.create_user()
            u = self.user(raw)
            if not isinstance(u, User):
                u = self.emu.create_user()
                self.users[raw] = u
            self._caller = u
        return self._caller

    def ident_model(self, uid: str) -> dict[str, Any]:
        return {"rawId": uid, "communicationUser": {"id": uid}}

    def participant_body(self, p: PInfo, version: str) -> dict[str, Any]:
        out: dict[str, Any] = {"communicationIdentifier": self.ident_model(self.uid(p.user))}
        if p.display_name is not None:
            out["displayName"] = p.display_name
        if p.share_history_time and not p.share_history_time.startswith("1970-01-01"):
            out["shareHistoryTime"] = p.share_history_time
        if p.metadata:
            out["metadata"] = p.metadata
        return out

    # -- raw calls used for setup ------------------------------------------------------------------

    def chat(self, method: str, path: str, token_user: User, body: Any = MISSING, version: str | None = None,
             content_type: str = "application/json", headers: dict[str, str] | None = None) -> Resp:
        v = version or self.emu.setup_chat_version
        sep = "&" if "?" in path else "?"
        return self.emu.call(method, self.emu.url(f"{path}{sep}api-version={v}"), auth="bearer",
                             token=token_user.token, body=body, content_type=content_type, headers=headers)

    def must(self, r: Resp, what: str, *ok: int) -> Resp:
        if r.status not in ok:
            raise SetupError(f"{what} -> {r.status} {r.text[:300]}")
        return r

    @staticmethod
    def tpath(tid: str) -> str:
        return "/chat/threads/" + urllib.parse.quote(tid, safe="")

    # -- state ------------------------------------------------------------------------------------

    def prepare(self) -> None:
        kn = self.kn
        referenced: list[str] = []
        for ex in self.scen.exchanges:
            tid = ex.params.get("thread")
            if ex.skip or not tid or not is_chat(ex.op):
                continue
            expects_ok = ex.status is not None and 200 <= ex.status < 300
            if (expects_ok or ex.mode != "normal") and tid not in referenced:
                referenced.append(tid)
        external = [t for t in reversed(kn.thread_order) if not kn.threads[t].created_here]
        external += [t for t in referenced if t not in external and not kn.thread(t).created_here]
        for t in kn.threads.values():
            if (t.receipts or t.messages or t.listed) and not t.created_here and t.id not in external:
                if t.id in referenced:
                    external.append(t.id)
        if kn.pad_threads:
            self.create_thread_setup(TInfo("pad-thread", topic="Padding thread"))
        deleted_later = []
        for tid in external:
            if tid in self.threads:
                continue
            t = kn.thread(tid)
            self.materialize_thread(t)
            if t.deleted:
                deleted_later.append(t)
            time.sleep(0.003)  # distinct timestamps keep the list order of the recording
        for t in deleted_later:
            creator = self.user_obj(t.creator)
            self.must(self.chat("DELETE", self.tpath(self.threads[t.id]), creator), "delete seeded thread", 204)

    def user_obj(self, raw: str | None) -> User:
        u = self.user(raw) if raw else self.caller()
        return u if isinstance(u, User) else self.caller()

    def create_thread_setup(self, t: TInfo, participants: list[PInfo] | None = None) -> str:
        creator = self.user_obj(t.creator)
        v = self.emu.setup_chat_version
        body: dict[str, Any] = {"topic": t.topic or "Topic"}
        plist = [self.participant_body(p, v) for p in (participants or []) if self.kn.users.get(p.user, "real") == "real"]
        ids = [p["communicationIdentifier"]["rawId"] for p in plist]
        if creator.id not in ids:
            plist.insert(0, {"communicationIdentifier": self.ident_model(creator.id)})
        body["participants"] = plist
        if t.metadata:
            body["metadata"] = t.metadata
        if t.retention:
            body["retentionPolicy"] = t.retention
        r = self.must(self.chat("POST", "/chat/threads", creator, body, headers={"repeatability-request-id": str(uuid.uuid4())}),
                      "create seeded thread", 201)
        etid = r.json["chatThread"]["id"]
        self.threads[t.id] = etid
        self.members[etid] = [p["communicationIdentifier"]["rawId"] for p in plist]
        return etid

    def materialize_thread(self, t: TInfo) -> None:
        kn = self.kn
        msgs = sorted(t.messages.values(), key=lambda m: (m.seq if m.seq is not None else 10**9, m.id))
        if t.creator is None:
            candidates = [p.user for p in (t.initial or [])] + [p.user for p in t.listed] + \
                         [m.sender for m in msgs if m.sender] + [u for u, _ in t.receipts]
            if t.id in [ex.params.get("thread") for ex in self.scen.exchanges] and kn.caller:
                candidates.insert(0, kn.caller)
            t.creator = next((c for c in candidates if kn.users.get(c, "real") == "real"), None)
            if t.creator is None:
                self.caller()
                t.creator = kn.caller or "caller"
        if kn.caller is None and self._caller is None:
            kn.caller = t.creator
        topic = t.topic
        first_topic = next((m for m in msgs if m.type == "topicUpdated" and m.seq == 2), None)
        if first_topic:
            topic = first_topic.content.get("topic", topic)
        initial = list(t.initial) if t.initial is not None else list(t.listed)
        extra_users = [m.sender for m in msgs if m.sender] + [u for u, _ in t.receipts]
        for u in extra_users:
            if u not in [p.user for p in initial] and kn.users.get(u, "real") == "real":
                initial.append(PInfo(u))
        etid = self.create_thread_setup(TInfo(t.id, topic=topic, creator=t.creator, metadata=t.metadata,
                                              retention=t.retention), initial)
        creator = self.user_obj(t.creator)
        v = self.emu.setup_chat_version
        for m in msgs:
            if m.seq is not None and m.seq <= 2 and m.type in ("participantAdded", "topicUpdated"):
                continue
            if m.id in kn.sent_here:
                continue
            self.materialize_message(t, m, etid, creator, v)
        for mid in {mid for _, mid in t.receipts}:
            if (t.id, mid) not in self.messages:
                self.materialize_message(t, MInfo(mid, t.id, content={"message": "Content"}), etid, creator, v)
        for p in t.listed:
            uid = self.uid(p.user)
            if uid not in self.members.get(etid, []) and kn.users.get(p.user, "real") == "real":
                self.must(self.chat("POST", self.tpath(etid) + "/participants/:add", creator,
                                    {"participants": [self.participant_body(p, v)]}), "add listed participant", 201)
                self.members[etid].append(uid)
        if "ChatThread_ListChatParticipants" in t.pad:
            extra = self.emu.create_user()
            self.must(self.chat("POST", self.tpath(etid) + "/participants/:add", creator,
                                {"participants": [{"communicationIdentifier": self.ident_model(extra.id),
                                                   "displayName": "Padding"}]}), "add padding participant", 201)
            self.members[etid].append(extra.id)
        if t.id not in kn.receipts_here:
            for u, mid in t.receipts:
                reader = self.user_obj(u)
                self.must(self.chat("POST", self.tpath(etid) + "/readReceipts", reader,
                                    {"chatMessageId": self.messages[(t.id, mid)]}), "send seeded read receipt", 200)
            if "ChatThread_ListChatReadReceipts" in t.pad:
                extra = self.emu.create_user()
                self.must(self.chat("POST", self.tpath(etid) + "/participants/:add", creator,
                                    {"participants": [{"communicationIdentifier": self.ident_model(extra.id)}]}),
                          "add padding reader", 201)
                last = list(self.messages.values())[-1] if self.messages else self.default_message(etid, creator)
                self.must(self.chat("POST", self.tpath(etid) + "/readReceipts", extra, {"chatMessageId": last}),
                          "padding read receipt", 200)

    def default_message(self, etid: str, sender: User) -> str:
        r = self.must(self.chat("POST", self.tpath(etid) + "/messages", sender, {"content": "Content"}),
                      "send setup message", 201)
        return r.json["id"]

    def materialize_message(self, t: TInfo, m: MInfo, etid: str, creator: User, v: str) -> None:
        if m.type in ("text", "html"):
            sender = self.user_obj(m.sender) if m.sender else creator
            if sender.id not in self.members.get(etid, []):
                self.must(self.chat("POST", self.tpath(etid) + "/participants/:add", creator,
                                    {"participants": [{"communicationIdentifier": self.ident_model(sender.id)}]}),
                          "add message sender", 201)
                self.members[etid].append(sender.id)
            body: dict[str, Any] = {"content": m.content.get("message", "Content") if m.content else "Content",
                                    "type": m.type}
            if m.sender_display_name is not None:
                body["senderDisplayName"] = m.sender_display_name
            if m.metadata:
                body["metadata"] = m.metadata
            r = self.must(self.chat("POST", self.tpath(etid) + "/messages", sender, body), "send seeded message", 201)
            eid = r.json["id"]
            self.messages[(t.id, m.id)] = eid
            if m.edited:
                self.must(self.chat("PATCH", self.tpath(etid) + f"/messages/{eid}", sender,
                                    {"content": body["content"]}, content_type="application/merge-patch+json"),
                          "edit seeded message", 204)
            if m.deleted:
                self.must(self.chat("DELETE", self.tpath(etid) + f"/messages/{eid}", sender), "delete seeded message", 204)
        elif m.type == "topicUpdated":
            self.must(self.chat("PATCH", self.tpath(etid), creator, {"topic": m.content.get("topic", "Topic")},
                                content_type="application/merge-patch+json"), "seed topic change", 204)
        elif m.type == "participantAdded":
            plist = [PInfo(self.kn.user(ident(p.get("communicationIdentifier"))) or "?", p.get("displayName"),
                           p.get("shareHistoryTime")) for p in m.content.get("participants", [])]
            if not plist:  # e.g. a preview2 ThreadActivity/AddMember message: XML content, nobody to add
                return
            self.must(self.chat("POST", self.tpath(etid) + "/participants/:add", creator,
                                {"participants": [self.participant_body(p, v) for p in plist]}), "seed add", 201)
            self.members[etid] += [self.uid(p.user) for p in plist]
        elif m.type == "participantRemoved":
            for p in m.content.get("participants", []):
                uid = self.uid(ident(p.get("communicationIdentifier")))
                self.must(self.chat("POST", self.tpath(etid) + "/participants/:remove", creator, self.ident_model(uid)),
                          "seed remove", 204)

    def ensure_thread(self, rtid: str) -> str:
        if rtid not in self.threads:
            t = self.kn.thread(rtid)
            if t.creator is None and self.kn.caller:
                t.creator = self.kn.caller
            self.materialize_thread(t)
        return self.threads[rtid]

    def ensure_message(self, rtid: str, rmid: str, sender: User) -> str:
        if (rtid, rmid) not in self.messages:
            etid = self.ensure_thread(rtid)
            t = self.kn.thread(rtid)
            m = t.messages.get(rmid) or MInfo(rmid, rtid, content={"message": "Content"})
            if m.type not in ("text", "html"):
                m = MInfo(rmid, rtid, content={"message": "Content"})
            m.sender = m.sender if m.sender and self.kn.users.get(m.sender, "real") == "real" else None
            self.materialize_message(t, MInfo(m.id, rtid, m.type, m.seq, m.content, m.sender or self.kn.caller,
                                              m.sender_display_name, m.metadata), etid, self.user_obj(t.creator), self.emu.setup_chat_version)
        return self.messages[(rtid, rmid)]

    def ensure_image(self, rtid: str, rimg: str, version: str) -> str:
        if (rtid, rimg) not in self.images:
            etid = self.ensure_thread(rtid)
            r = self.chat("POST", self.tpath(etid) + "/images", self.caller(), PNG_1X1, version=version,
                          content_type="application/octet-stream", headers={"image-filename": "setup.png"})
            if r.status == 404 and version != IMAGE_VERSION and IMAGE_VERSION in self.emu.chat_versions:
                r = self.chat("POST", self.tpath(etid) + "/images", self.caller(), PNG_1X1, version=IMAGE_VERSION,
                              content_type="application/octet-stream", headers={"image-filename": "setup.png"})
            self.must(r, "upload setup image", 201)
            self.images[(rtid, rimg)] = r.json["id"]
        return self.images[(rtid, rimg)]

    # -- replay -----------------------------------------------------------------------------------

    def run(self) -> None:
        # A setup failure is the emulator refusing, through its own API, state a recorded exchange
        # needs: it fails the exchanges (kind "setup") rather than excusing them as not replayable.
        try:
            self.prepare()
        except SetupError as e:
            for ex in self.scen.exchanges:
                if not ex.skip:
                    ex.setup_error = str(e)
            return
        for i, ex in enumerate(self.scen.exchanges):
            if ex.skip:
                continue
            try:
                self.replay(i, ex)
            except SetupError as e:
                ex.setup_error = str(e)

    def version(self, ex: Exchange) -> str:
        return self.vmap.get(ex.api_version or "", ex.api_version or "")

    def replay(self, i: int, ex: Exchange) -> None:
        op = ex.op
        if op is None:
            ex.skip = "operation not recognised"
            return
        if op not in REPLAY_OPS or not self.emu.has(op, self.version(ex)):
            ex.skip = NO_OP_REASON.get(op) or f"the emulator has no operation {op}"
            if op not in REPLAY_OPS and self.emu.has(op, self.version(ex)):
                ex.skip = f"no replay support for {op} in this script"
            if self.emu.served(op, ex.api_version) or not ex.api_version:
                return
            # an operation of an api-version the emulator does not serve: still send it (below)
            ex.skip = None
            return self.send_as_recorded(ex)
        if not self.emu.served(op, self.version(ex)):
            return self.send_as_recorded(ex)
        if ex.mode == "unauthorized" and self.emu.info.get("auth", "strict") != "strict":
            ex.skip = f"the emulator runs with --auth {self.emu.info.get('auth')}, which accepts bad credentials"
            return
        if is_identity_op(op):
            return self.replay_identity(i, ex)
        return self.replay_chat(i, ex)

    def map_body(self, body: Any) -> Any:
        """Recorded request body with recorded ids replaced by the emulator's."""
        if body is MISSING:
            return MISSING

        def walk(v: Any, key: str = "") -> Any:
            if isinstance(v, dict):
                return {k: walk(x, k) for k, x in v.items()}
            if isinstance(v, list):
                return [walk(x, key) for x in v]
            if isinstance(v, str):
                n = norm_user(v)
                if key in ("rawId", "id") and n in self.kn.users:
                    return self.uid(n)
                if v in self.threads:
                    return self.threads[v]
            return v
        return walk(copy.deepcopy(body))

    def send_as_recorded(self, ex: Exchange) -> None:
        """Operations of api-versions the emulator does not serve: the recorded call with ids mapped."""
        path = ex.raw_path
        if ex.params.get("thread") in self.threads:
            t = ex.params["thread"]
            for form in (urllib.parse.quote(t, safe=""), urllib.parse.quote(t, safe="@"), t):
                path = path.replace(form, urllib.parse.quote(self.threads[t], safe=""))
        q = dict(ex.query)
        q["api-version"] = self.version(ex)
        url = self.emu.url(path + "?" + urllib.parse.urlencode(q))
        body = image_bytes(ex.req_body) if ex.op == "ChatThread_UploadChatImage" else self.map_body(ex.req_body)
        if is_identity_op(ex.op):
            r = self.emu.call(ex.method, url, auth="hmac", body=body)
        else:
            ctype = "application/merge-patch+json" if ex.method == "PATCH" else "application/json"
            r = self.emu.call(ex.method, url, auth="bearer", token=self.caller().token, body=body,
                              content_type="application/octet-stream" if isinstance(body, bytes) else ctype)
        ex.sent = f"{ex.method} {url}"
        ex.emu = r

    # identity ---------------------------------------------------------------------------------

    def replay_identity(self, i: int, ex: Exchange) -> None:
        op, v = ex.op, self.version(ex)
        path = ex.raw_path
        expects_ok = ex.status is not None and 200 <= ex.status < 300
        body = self.map_body(ex.req_body)
        if "user" in ex.params:
            raw = ex.params["user"]
            if expects_ok or ex.mode != "normal":
                uid = self.uid(raw)
            else:
                uid = self.uid(raw) if raw in self.users else raw
            path = re.sub(r"^/identities/[^/]+", "/identities/" + urllib.parse.quote(uid, safe=""), path)
        if op == "IdentityOperations_Create" and body is MISSING:
            if isinstance(ex.body, dict) and "identity" not in ex.body and "id" in ex.body:
                pass  # 2020-07-20-preview2: no body, 200 {"id"}
            else:
                body = {"createTokenWithScopes": ["chat"]} if isinstance(ex.body, dict) and ex.body.get("accessToken") else {}
        if op == "IdentityOperations_IssueAccessToken" and body is MISSING:
            body = {"scopes": ["chat"]}
        q = {k: x for k, x in ex.query.items() if k != "api-version"}
        q["api-version"] = v
        url = self.emu.url(path + "?" + urllib.parse.urlencode(q))
        if ex.mode == "unauthorized":
            r = self.emu.call(ex.method, url, auth="none", body=body,
                              headers={"Authorization": "HMAC-SHA256 SignedHeaders=x-ms-date;host;x-ms-content-sha256&Signature=AAAA",
                                       "x-ms-date": formatdate(usegmt=True)})
        else:
            fault = None
            if ex.mode == "fault":
                fault = self.emu.add_fault({"operation": op}, ex.status or 503)
            try:
                r = self.emu.call(ex.method, url, auth="hmac", body=body,
                                  content_type=ex.req_headers.get("content-type", "application/json"))
            finally:
                if fault:
                    self.emu.delete_fault(fault)
        ex.sent = f"{ex.method} {url}" + (f"  body={json.dumps(body)[:300]}" if body is not MISSING else "")
        ex.emu = r
        if op == "IdentityOperations_Create" and r.status == 201 and isinstance(ex.body, dict) and isinstance(r.json, dict):
            rid = (ex.body.get("identity") or {}).get("id")
            if rid:
                self.users[rid] = User(r.json["identity"]["id"], (r.json.get("accessToken") or {}).get("token"))

    # chat ---------------------------------------------------------------------------------------

    def token_for(self, ex: Exchange) -> tuple[str, User | None]:
        """(auth mode, user) for a chat exchange."""
        if ex.mode == "unauthorized":
            return "invalid", None
        if ex.mode == "forbidden":
            if ex.op in ("Chat_CreateChatThread", "Chat_ListChatThreads"):
                return "user", self.emu.create_user(scopes=["voip"])
            return "user", self.emu.create_user()
        rm = ex.params.get("message")
        rt = ex.params.get("thread")
        if ex.op in ("ChatThread_UpdateChatMessage", "ChatThread_DeleteChatMessage") and rt and rm:
            m = self.kn.thread(rt).messages.get(rm)
            if m and m.sender and m.id not in self.kn.sent_here and self.kn.users.get(m.sender, "real") == "real":
                return "user", self.user_obj(m.sender)
        return "user", self.caller()

    def replay_chat(self, i: int, ex: Exchange) -> None:
        op, v = ex.op, self.version(ex)
        expects_ok = (ex.status is not None and 200 <= ex.status < 300) or ex.mode != "normal"
        rt, rm = ex.params.get("thread"), ex.params.get("message")
        encoded = "%3A" in ex.raw_path.upper() or "%40" in ex.raw_path.upper()
        safe = "" if encoded else ":@"
        path = ex.raw_path
        etid = None
        if rt is not None:
            if rt in self.threads:
                etid = self.threads[rt]
            elif expects_ok:
                etid = self.ensure_thread(rt)
            else:
                etid = rt  # a thread the service did not know either: send it as recorded
            path = "/chat/threads/" + urllib.parse.quote(etid, safe=safe) + decoded(ex.raw_path).split(rt, 1)[1]
        auth, who = self.token_for(ex)
        if rm is not None:
            if (rt, rm) in self.messages:
                emid = self.messages[(rt, rm)]
            elif expects_ok:
                sender = who if (who and ex.mode == "normal") else self.caller()
                emid = self.ensure_message(rt, rm, sender)
            else:
                emid = rm
            path = path.rsplit("/", 1)[0] + "/" + urllib.parse.quote(emid, safe="")
        if "image" in ex.params and rt is not None:
            rimg = ex.params["image"]
            if (rt, rimg) in self.images:
                eimg = self.images[(rt, rimg)]
            elif expects_ok:
                eimg = self.ensure_image(rt, rimg, v)
            else:
                eimg = rimg
            path = path.replace("/images/" + urllib.parse.quote(rimg, safe=safe), "/images/" + urllib.parse.quote(eimg, safe=""), 1)
            path = path.replace("/images/" + rimg, "/images/" + urllib.parse.quote(eimg, safe=""), 1)
        if "user" in ex.params and etid is not None:  # DELETE .../members/{id} (preview2)
            ruser = ex.params["user"]
            uid = self.uid(ruser) if (expects_ok or ruser in self.users) else ruser
            if expects_ok and ex.mode == "normal" and uid not in self.members.get(etid, []) \
                    and self.kn.users.get(norm_user(ruser) or "", "real") == "real":
                self.must(self.chat("POST", self.tpath(etid) + "/participants/:add", self.caller(),
                                    {"participants": [{"communicationIdentifier": self.ident_model(uid)}]}),
                          "add the member the call removes", 201)
                self.members.setdefault(etid, []).append(uid)
            head, _, _ = path.rpartition("/")
            path = head + "/" + urllib.parse.quote(uid, safe=safe)
        body = self.chat_body(i, ex, etid, v)
        headers: dict[str, str] = {}
        if op == "Chat_CreateChatThread":
            headers["repeatability-request-id"] = self.repeatability(i, ex)
        if op == "ChatThread_UploadChatImage" and "image-filename" in ex.req_headers:
            headers["image-filename"] = ex.req_headers["image-filename"]
        url = None
        if op in LIST_OPS and any(k in ex.query for k in ("syncState", "skip")):
            key = (op, etid or "")
            if key in self.next_links:
                link = self.next_links[key]
                if not link:
                    ex.skip = "follows a nextLink the emulator's previous page did not give (see the previous exchange)"
                    return
                u = urllib.parse.urlsplit(link)
                url = urllib.parse.urlunsplit(urllib.parse.urlsplit(self.emu.endpoint)[:2] + u[2:])
        if url is None:
            q = {k: x for k, x in ex.query.items() if k != "api-version"}
            q["api-version"] = v
            url = self.emu.url(path + "?" + urllib.parse.urlencode(q, safe=":"))
        ctype = ex.req_headers.get("content-type") or (
            "application/merge-patch+json" if ex.method == "PATCH" and v != "2020-09-21-preview2" else "application/json")
        if isinstance(body, bytes):
            ctype = "application/octet-stream"
        if auth == "invalid":
            r = self.emu.call(ex.method, url, auth="bearer", token="invalid.token.value", body=body,
                              content_type=ctype, headers=headers)
        else:
            assert who is not None
            fault = None
            if ex.mode == "fault":
                fault = self.emu.add_fault({"operation": op, "userId": who.id}, ex.status or 503)
            try:
                r = self.emu.call(ex.method, url, auth="bearer", token=who.token, body=body, content_type=ctype,
                                  headers=headers)
            finally:
                if fault:
                    self.emu.delete_fault(fault)
        shown = f"<{len(body)} bytes>" if isinstance(body, bytes) else "" if body is MISSING else json.dumps(body)[:300]
        ex.sent = f"{ex.method} {url}" + (f"  body={shown}" if body is not MISSING else "")
        ex.emu = r
        self.after(ex, r, etid, body)

    def repeatability(self, i: int, ex: Exchange) -> str:
        rid = self.kn.create_ids.get(i)
        rec = ex.req_headers.get("repeatability-request-id")
        key = rec or rid or f"#{i}"
        if key not in self.repeat_ids:
            self.repeat_ids[key] = str(uuid.uuid4())
        return self.repeat_ids[key]

    def after(self, ex: Exchange, r: Resp, etid: str | None, sent: Any) -> None:
        """Learn the emulator's ids from its answer."""
        op, b, rb = ex.op, r.json, ex.body
        if ex.mode != "normal" or not isinstance(b, dict):
            return
        if op == "Chat_CreateChatThread" and r.status in (201, 207) and created_thread(rb) and created_thread(b):
            new = created_thread(b) or ""
            self.threads.setdefault(created_thread(rb) or "", new)
            plist = (sent.get("participants") or sent.get("members") or []) if isinstance(sent, dict) else []
            self.members.setdefault(new, [self.caller().id] + [ident(p.get("communicationIdentifier")) or ident(p.get("id")) or ""
                                                               for p in plist])
        elif op == "ChatThread_SendChatMessage" and r.status == 201 and isinstance(rb, dict) and rb.get("id"):
            self.messages[(ex.params["thread"], str(rb["id"]))] = b["id"]
        elif op == "ChatThread_UploadChatImage" and r.status == 201 and isinstance(rb, dict) and rb.get("id"):
            self.images[(ex.params["thread"], str(rb["id"]))] = b["id"]
        elif op in LIST_OPS:
            self.next_links[(op, etid or "")] = b.get("nextLink")
            if op == "ChatThread_ListChatMessages" and isinstance(rb, dict):
                mine = {m.get("sequenceId"): m for m in b.get("value", [])}
                for m in rb.get("value", []) or []:
                    e = mine.get(m.get("sequenceId"))
                    if e and e.get("type") == m.get("type"):
                        self.messages.setdefault((ex.params["thread"], str(m.get("id"))), e["id"])

    def chat_body(self, i: int, ex: Exchange, etid: str | None, v: str) -> Any:
        op = ex.op
        if op == "ChatThread_UploadChatImage":
            return image_bytes(ex.req_body)
        body = self.map_body(ex.req_body)
        if body is not MISSING:
            if op in ("ChatThread_SendChatReadReceipt", "ChatThread_SendChatReadReceiptPreview2") \
                    and isinstance(body, dict) and "chatMessageId" in body:
                rt = ex.params.get("thread", "")
                if ex.status and 200 <= ex.status < 300 or ex.mode != "normal":
                    body["chatMessageId"] = self.ensure_message(rt, str(body["chatMessageId"]), self.caller())
            if op in ("Chat_CreateChatThread", "ChatThread_AddChatParticipants") and isinstance(body, dict) \
                    and isinstance(ex.body, dict) and ex.mode == "normal":
                # a hand-written example names rejected participants its request does not contain
                have = {ident(p.get("communicationIdentifier")) for p in body.get("participants", [])}
                for e in ex.body.get("invalidParticipants", []) or []:
                    uid = self.uid(e.get("target"))
                    if uid not in have:
                        body.setdefault("participants", []).append({"communicationIdentifier": self.ident_model(uid)})
                        ex.notes.append(f"request extended with {e.get('target')}: the recorded response rejects it "
                                        "but the recorded request does not contain it")
            if op == "ChatThread_RemoveChatParticipant" and isinstance(body, dict) and etid:
                uid = ident(body)
                if uid and uid not in self.members.get(etid, []) and ex.mode == "normal" and ex.status == 204:
                    self.must(self.chat("POST", self.tpath(etid) + "/participants/:add", self.caller(),
                                        {"participants": [{"communicationIdentifier": self.ident_model(uid)}]}),
                              "add the participant the call removes", 201)
                    self.members.setdefault(etid, []).append(uid)
            return body
        return self.infer_body(i, ex, etid, v)

    def infer_body(self, i: int, ex: Exchange, etid: str | None, v: str) -> Any:
        """Minimal request body from the spec, the URL and what the recorded responses show."""
        op, kn = ex.op, self.kn
        rb = ex.body if isinstance(ex.body, dict) else {}
        rt = ex.params.get("thread", "")
        err = rb.get("CommunicationError") or rb.get("error") or {}
        bad = re.findall(r"\((8:[^)\s]+)\)", err.get("Message") or err.get("message") or "")
        metadata_ok = v >= "2021-09-07"
        if op == "Chat_CreateChatThread":
            rid = kn.create_ids.get(i)
            t = kn.threads.get(rid) if rid else None
            body: dict[str, Any] = {"topic": (t.topic if t and t.topic else "Test")}
            if bad:
                body["participants"] = [{"communicationIdentifier": self.ident_model(bad[0])}]
            elif t is not None:
                later_add = any(e.op == "ChatThread_AddChatParticipants" and e.params.get("thread") == rid
                                for e in self.scen.exchanges)
                plist = t.initial if t.initial is not None else ([] if later_add else t.listed)
                if not plist:
                    me = next((p for p in t.listed if p.user == t.creator), None)
                    plist = [me] if me else []
                body["participants"] = [self.participant_body(p, v) for p in plist]
            return body
        if op == "ChatThread_SendChatMessage":
            rid = str(rb.get("id", ""))
            m = kn.thread(rt).messages.get(rid)
            body = {"content": "Content"}
            if m:
                body = {"content": (m.content or {}).get("message", "Content")}
                if m.edited:
                    body["content"] = "Content"
                if m.type in ("text", "html"):
                    body["type"] = m.type
                if m.sender_display_name is not None:
                    body["senderDisplayName"] = m.sender_display_name
                if m.metadata and metadata_ok:
                    body["metadata"] = m.metadata
            return body
        if op == "ChatThread_UpdateChatMessage":
            m = kn.thread(rt).messages.get(ex.params.get("message", ""))
            body = {"content": "Update Test"}
            if m and m.content.get("message"):
                body["content"] = m.content["message"]
            if m and m.metadata and metadata_ok:
                body["metadata"] = m.metadata
            return body
        if op == "ChatThread_UpdateChatThreadProperties":
            t = kn.threads.get(rt)
            later = next((e for e in self.scen.exchanges[i + 1:] if e.op == "ChatThread_GetChatThreadProperties"
                          and e.params.get("thread") == rt and isinstance(e.body, dict)), None)
            return {"topic": (later.body.get("topic") if later else None) or "Update Test"}
        if op == "ChatThread_AddChatParticipants":
            if bad:
                return {"participants": [{"communicationIdentifier": self.ident_model(bad[0])}]}
            t = kn.threads.get(rt)
            members = self.members.get(etid or "", [])
            plist = [p for p in (t.listed if t else []) if self.uid(p.user) not in members]
            if not plist:
                u = self.emu.create_user()
                return {"participants": [{"communicationIdentifier": self.ident_model(u.id), "displayName": "Added"}]}
            if etid:
                self.members.setdefault(etid, []).extend(self.uid(p.user) for p in plist)
            return {"participants": [self.participant_body(p, v) for p in plist]}
        if op == "ChatThread_RemoveChatParticipant":
            if bad:
                return self.ident_model(bad[0])
            members = [m for m in self.members.get(etid or "", []) if m != self.caller().id]
            if members:
                uid = members[-1]
            else:
                u = self.emu.create_user()
                self.must(self.chat("POST", self.tpath(etid or "") + "/participants/:add", self.caller(),
                                    {"participants": [{"communicationIdentifier": self.ident_model(u.id)}]}),
                          "add a participant to remove", 201)
                uid = u.id
            if etid and uid in self.members.get(etid, []):
                self.members[etid].remove(uid)
            return self.ident_model(uid)
        if op == "ChatThread_SendChatReadReceipt":
            t = kn.threads.get(rt)
            mid = None
            if t and t.receipts:
                mid = self.ensure_message(rt, t.receipts[-1][1], self.caller())
            if mid is None:
                mids = [e for (tt, _), e in self.messages.items() if tt == rt]
                mid = mids[-1] if mids else self.default_message(etid or "", self.caller())
            return {"chatMessageId": mid}
        if op == "ChatThread_SendTypingNotification":
            if v >= "2021-09-07" and "WithOptions" in self.scen.id:
                return {"senderDisplayName": "Tester"}
            return MISSING
        return MISSING


def image_bytes(recorded: Any) -> bytes:
    """The image of an upload: a spec example's data: URL, else a 1x1 PNG."""
    if isinstance(recorded, str) and recorded.startswith("data:") and ";base64," in recorded:
        try:
            return base64.b64decode(recorded.split(";base64,", 1)[1])
        except ValueError:
            pass
    return PNG_1X1


def is_chat(op: str | None) -> bool:
    return bool(op) and not is_identity_op(op)


# ---------------------------------------------------------------------------------------------
# Comparing
# ---------------------------------------------------------------------------------------------

DATETIME = re.compile(r"^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}(\.\d+)?(Z|[+-]\d{2}:\d{2})$")
VALUE_KEYS = {"type", "kind", "attachmentType", "code"}
NUMERIC_KEYS = {"id", "version", "sequenceId", "chatMessageId"}


def jtype(v: Any) -> str:
    if isinstance(v, bool):
        return "boolean"
    if isinstance(v, (int, float)):
        return "number"
    if isinstance(v, str):
        return "string"
    if v is None:
        return "null"
    if isinstance(v, list):
        return "array"
    if isinstance(v, dict):
        return "object"
    return type(v).__name__


THREAD_SEGMENT = re.compile(r"^19(%3A|:)[^/]*(@|%40)thread\.v2$", re.IGNORECASE)


def generalise(tokens: list[str]) -> list[str]:
    """Hand-written examples often put another thread's id in a Location or nextLink than in the
    body: any 19:…@thread.v2 segment left after id substitution becomes {thread:<encoding>}."""
    def one(t: str) -> str:
        m = THREAD_SEGMENT.match(t)
        if not m:
            return t
        colon, at = m.group(1) != ":", m.group(2) != "@"
        return "{thread:" + ("full" if at else "colon" if colon else "raw") + "}"
    return [one(t) for t in tokens]


class Comparer:
    def __init__(self, rep: Replayer | None, ex: Exchange):
        self.rep, self.ex = rep, ex
        self.diffs: list[Diff] = []
        # every item the emulator listed in the same listing (all pages): a recorded item that the
        # service put on another page than the emulator is compared with its own counterpart
        self.pool: list[Any] = []
        if rep is not None and ex.op in LIST_OPS:
            for other in rep.scen.exchanges:
                if other.op == ex.op and other.params.get("thread") == ex.params.get("thread") \
                        and other.mode == "normal" and other.emu is not None and isinstance(other.emu.json, dict):
                    self.pool += [v for v in other.emu.json.get("value", []) or [] if isinstance(v, dict)]

    def add(self, kind: str, detail: str) -> None:
        self.diffs.append(Diff(kind, detail))

    # ids → emulator ids, for pairing list items
    def m_user(self, raw: str | None) -> str | None:
        if raw is None or self.rep is None:
            return raw
        u = self.rep.users.get(norm_user(raw) or "")
        return (u.id if isinstance(u, User) else u) if u else raw

    def m_thread(self, tid: Any) -> Any:
        return self.rep.threads.get(tid, tid) if self.rep else tid

    def item_key(self, path: str, item: Any, recorded: bool) -> Any:
        if not isinstance(item, dict):
            return None
        if "sequenceId" in item and "type" in item:
            return ("seq", item.get("sequenceId"))
        if "communicationIdentifier" in item:
            raw = ident(item["communicationIdentifier"])
            return ("user", self.m_user(raw) if recorded else raw)
        if "senderCommunicationIdentifier" in item and "chatMessageId" in item:
            raw = ident(item["senderCommunicationIdentifier"])
            return ("receipt", self.m_user(raw) if recorded else raw)
        if "target" in item:
            return ("target", self.m_user(item["target"]) if recorded else item["target"])
        if "statusCode" in item and "id" in item:  # preview2 multi-status entry
            rid = str(item["id"])
            if recorded:
                rid = self.m_thread(rid) if rid.startswith("19:") else (self.m_user(rid) or rid)
            return ("status", rid, item.get("statusCode"))
        if "id" in item and "topic" in item:
            return ("thread", self.m_thread(item["id"]) if recorded else item["id"])
        return None

    def body(self, rec: Any, emu: Any, path: str = "$") -> None:
        tr, te = jtype(rec), jtype(emu)
        if tr != te:
            self.add("body", f"{path}: recorded {tr}, emulator {te}")
            return
        if tr == "object":
            if path == "$" and self.ex.op in LIST_OPS:
                # nextLink presence and shape are compared by next_link()
                rec = {k: v for k, v in rec.items() if k != "nextLink"}
                emu = {k: v for k, v in emu.items() if k != "nextLink"}
            for k in rec:
                if k not in emu:
                    self.add("body", f"{path}.{k}: missing in the emulator's response")
            for k in emu:
                if k not in rec:
                    self.add("body", f"{path}.{k}: extra in the emulator's response")
            for k in rec:
                if k in emu:
                    self.body(rec[k], emu[k], f"{path}.{k}")
        elif tr == "array":
            self.array(rec, emu, path)
        elif tr == "number":
            key = path.rsplit(".", 1)[-1].split("[")[0]
            if key == "statusCode" and rec != emu:
                self.add("body", f"{path}: recorded {rec!r}, emulator {emu!r}")
        elif tr == "string":
            key = path.rsplit(".", 1)[-1].split("[")[0]
            if rec == "sanitized" or rec.startswith("sanitized-"):
                return
            if key in VALUE_KEYS and rec != emu:
                self.add("error-code" if key == "code" and (".error" in path or path == "$.code") else "body",
                         f"{path}: recorded {rec!r}, emulator {emu!r}")
            elif DATETIME.match(rec) and not DATETIME.match(emu):
                self.add("body", f"{path}: recorded a date-time ({rec}), emulator {emu!r}")
            elif key in NUMERIC_KEYS and rec.isdigit() and not emu.isdigit():
                self.add("body", f"{path}: recorded a numeric string, emulator {emu!r}")

    def array(self, rec: list[Any], emu: list[Any], path: str) -> None:
        if len(rec) != len(emu):
            self.add("body", f"{path}: recorded {len(rec)} item(s), emulator {len(emu)}")
        keyed_e = {}
        for j, item in enumerate(emu):
            k = self.item_key(path, item, recorded=False)
            if k is not None and k not in keyed_e:
                keyed_e[k] = j
        used: set[int] = set()
        pairs: list[tuple[int, int | None]] = []
        pooled = {}
        if path == "$.value":
            for item in self.pool:
                k = self.item_key(path, item, recorded=False)
                if k is not None:
                    pooled.setdefault(k, item)
        for j, item in enumerate(rec):
            k = self.item_key(path, item, recorded=True)
            if k is not None and k in keyed_e and keyed_e[k] not in used:
                pairs.append((j, keyed_e[k]))
                used.add(keyed_e[k])
            elif k is not None and k in pooled:
                self.body(item, pooled[k], f"{path}[{j}]")
                pairs.append((j, -1))
            else:
                pairs.append((j, None))
        free = [j for j in range(len(emu)) if j not in used]
        final = []
        for j, e in pairs:
            if e is None and free:
                e = free.pop(0)
            final.append((j, e))
        for j, e in final:
            if e is not None and e >= 0:
                self.body(rec[j], emu[e], f"{path}[{j}]")

    # headers -----------------------------------------------------------------------------------

    def template(self, url: str, subs: list[tuple[str, str]]) -> tuple[bool, list[str]]:
        """(absolute?, path tokens with ids replaced by {name:encoding})."""
        u = urllib.parse.urlsplit(url)
        path = re.sub(r"/{2,}", "/", u.path)
        tokens = []
        for seg in path.split("/"):
            tok = seg
            for value, name in subs:
                if not value:
                    continue
                forms = [("full", urllib.parse.quote(value, safe="")), ("colon", urllib.parse.quote(value, safe="@")),
                         ("raw", value)]
                hit = [f for f, s in forms if s == seg]
                if hit:
                    distinct = {s for _, s in forms}
                    tok = "{" + name + ":" + ("any" if len(distinct) == 1 else hit[0]) + "}"
                    break
            tokens.append(tok)
        return bool(u.scheme and u.netloc), tokens

    @staticmethod
    def same_tokens(a: list[str], b: list[str]) -> bool:
        if len(a) != len(b):
            return False
        for x, y in zip(a, b):
            if x == y:
                continue
            mx, my = re.fullmatch(r"{(\w+):(\w+)}", x), re.fullmatch(r"{(\w+):(\w+)}", y)
            if mx and my and mx.group(1) == my.group(1) and "any" in (mx.group(2), my.group(2)):
                continue
            return False
        return True

    def ids(self, recorded: bool) -> list[tuple[str, str]]:
        ex = self.ex
        b = ex.body if recorded else (ex.emu.json if ex.emu else None)
        subs = []
        rt = ex.params.get("thread")
        if created_thread(b):
            subs.append((created_thread(b) or "", "thread"))
        if rt:
            subs.append((rt if recorded else (self.m_thread(rt) or rt), "thread"))
        if isinstance(b, dict) and isinstance(b.get("id"), str):
            subs.append((b["id"], "id"))
        return subs

    def headers(self) -> None:
        ex, r = self.ex, self.ex.emu
        assert r is not None
        rec_h = ex.headers or {}
        # Location
        if "location" in rec_h:
            loc = r.headers.get("location")
            if not loc:
                self.add("location", f"recorded Location {rec_h['location']!r}; the emulator sent none")
            else:
                ra, rt = self.template(rec_h["location"], self.ids(True))
                ea, et = self.template(loc, self.ids(False))
                rt, et = generalise(rt), generalise(et)
                if ra != ea or not self.same_tokens(rt, et):
                    self.add("location", f"recorded shape {'/'.join(rt)} ({'absolute' if ra else 'relative'}), "
                                         f"emulator {'/'.join(et)} ({'absolute' if ea else 'relative'}): {loc}")
        elif ex.headers_complete and "location" in r.headers:
            self.add("location", f"the service sent no Location; the emulator sent {r.headers['location']!r}")
        # Content-Type
        rec_ct = rec_h.get("content-type")
        emu_ct = r.headers.get("content-type")
        norm = lambda s: re.sub(r"\s+", "", s.lower()) if s else s  # noqa: E731
        if rec_ct is not None:
            if norm(rec_ct) != norm(emu_ct):
                self.add("content-type", f"recorded {rec_ct!r}, emulator {emu_ct!r}")
        elif ex.headers_complete:
            if emu_ct:
                self.add("content-type", f"the service sent no Content-Type; the emulator sent {emu_ct!r}")
        elif ex.body not in ("", MISSING) and not (emu_ct or "").lower().startswith("application/json"):
            self.add("content-type", f"expected application/json (the spec's produces), emulator {emu_ct!r}")

    def next_link(self, rec: Any, emu: Any) -> None:
        if not (isinstance(rec, dict) and isinstance(emu, dict)):
            return
        rl, el = rec.get("nextLink"), emu.get("nextLink")
        if (rl is None) != (el is None):
            self.add("next-link", f"recorded nextLink {'present' if rl else 'absent'}, emulator "
                                  f"{'present: ' + str(el) if el else 'absent'}")
            return
        if rl is None:
            return
        rt = self.ex.params.get("thread")
        ra, rtok = self.template(rl, [(rt, "thread")] if rt else [])
        ea, etok = self.template(el, [(self.m_thread(rt), "thread")] if rt else [])
        rtok, etok = generalise(rtok), generalise(etok)
        if ra != ea or not self.same_tokens(rtok, etok):
            self.add("next-link", f"recorded shape {'/'.join(rtok)} ({'absolute' if ra else 'relative'}), "
                                  f"emulator {'/'.join(etok)} ({'absolute' if ea else 'relative'}): {el}")
        rq = dict(urllib.parse.parse_qsl(urllib.parse.urlsplit(rl).query, keep_blank_values=True))
        eq = dict(urllib.parse.parse_qsl(urllib.parse.urlsplit(el).query, keep_blank_values=True))
        if set(rq) != set(eq):
            self.add("next-link", f"query parameters: recorded {sorted(rq)}, emulator {sorted(eq)}: {el}")
        for k in ("maxPageSize", "skip"):
            if k in rq and k in eq and rq[k] != eq[k]:
                self.add("next-link", f"{k}: recorded {rq[k]}, emulator {eq[k]}")
        sent_v = dict(urllib.parse.parse_qsl(urllib.parse.urlsplit(self.ex.emu.url).query)).get("api-version")
        if "api-version" in eq and eq["api-version"] != sent_v:
            self.add("next-link", f"api-version {eq['api-version']} in the nextLink differs from the request's ({sent_v})")

    # all -----------------------------------------------------------------------------------------

    def run(self) -> list[Diff]:
        ex, r = self.ex, self.ex.emu
        assert r is not None
        if ex.status is not None and r.status != ex.status:
            self.add("status", f"recorded {ex.status}{' (' + ex.status_note + ')' if ex.status_note else ''}, "
                               f"emulator {r.status}")
        self.headers()
        emu_body = r.json
        rec = ex.body
        if rec is MISSING or rec == "{binary}":  # a spec example's placeholder for image bytes
            return self.diffs
        if emu_body is MISSING:
            self.add("body", f"the emulator's body is not JSON: {r.text[:200]!r}")
            return self.diffs
        if isinstance(rec, dict) and "CommunicationError" in rec:
            ce = rec["CommunicationError"]
            self.add("error-envelope", "the service answered the PascalCase {\"CommunicationError\":{\"Code\",\"Message\",\"Details\"}} "
                                       f"envelope; the emulator answered {json.dumps(emu_body)[:160]}")
            if isinstance(emu_body, dict) and isinstance(emu_body.get("error"), dict):
                if ce.get("Code") != emu_body["error"].get("code"):
                    self.add("error-code", f"recorded code {ce.get('Code')!r}, emulator {emu_body['error'].get('code')!r}")
            return self.diffs
        if r.status == ex.status or ex.status is None:
            self.body(rec, emu_body)
            self.next_link(rec, emu_body)
        elif isinstance(rec, dict) and isinstance(rec.get("error"), dict) and isinstance(emu_body, dict):
            self.body(rec, emu_body)
        return self.diffs


# ---------------------------------------------------------------------------------------------
# Verdicts, deliberate divergences, report
# ---------------------------------------------------------------------------------------------


def glob_rx(pattern: str) -> re.Pattern[str]:
    return re.compile("^" + ".*".join(re.escape(p) for p in pattern.split("*")) + "$")


class Deliberate:
    """deliberate.json: {"<exchange id glob>[ :: <difference kind glob>[ :: <detail glob>]]": "<reason>"}.
    Globs know only `*`. An exchange is a deliberate divergence when every one of its differences
    is covered by an entry; keys starting with "_" are comments."""

    def __init__(self, path: Path):
        self.entries: list[tuple[re.Pattern[str], re.Pattern[str] | None, re.Pattern[str] | None, str, str]] = []
        self.used: set[str] = set()
        data = json.loads(path.read_text()) if path.exists() else {}
        for key, reason in data.items():
            if key.startswith("_"):
                continue
            parts = [p.strip() for p in key.split(" :: ")]
            kind = glob_rx(parts[1]) if len(parts) > 1 else None
            detail = glob_rx(parts[2]) if len(parts) > 2 else None
            self.entries.append((glob_rx(parts[0]), kind, detail, str(reason), key))

    def reason_for(self, ex: Exchange) -> str | None:
        """The reasons covering every difference of the exchange, or None."""
        reasons: list[str] = []
        for d in ex.diffs:
            hit = None
            for rx, krx, drx, reason, key in self.entries:
                if rx.match(ex.id) and (krx is None or krx.match(d.kind)) and (drx is None or drx.match(d.detail)):
                    hit = (reason, key)
                    break
            if hit is None:
                return None
            if hit[0] not in reasons:
                reasons.append(hit[0])
            self.used.add(hit[1])
        return "; ".join(reasons)


def judge(ex: Exchange, deliberate: Deliberate, emu: Emulator) -> None:
    if ex.skip:
        ex.verdict, ex.reason = "not replayable", ex.skip
        return
    if ex.emu is None and not ex.diffs:
        ex.verdict, ex.reason = "not replayable", "not sent"
        return
    if not ex.diffs:
        ex.verdict = "match"
        return
    why = deliberate.reason_for(ex)
    if why is not None:
        ex.verdict, ex.reason = "diverges (deliberate)", why
    else:
        ex.verdict = "diverges"


def compare(rep: Replayer | None, ex: Exchange, emu: Emulator) -> None:
    if ex.setup_error and not ex.skip:
        ex.diffs = [Diff("setup", f"setting up the state this exchange needs failed: {ex.setup_error}")]
        return
    if ex.skip or ex.emu is None:
        return
    version = rep.version(ex) if rep else ex.api_version
    if not emu.served(ex.op, version):
        r = ex.emu
        if r.status >= 400:
            code = r.json.get("error", {}).get("code") if isinstance(r.json, dict) and isinstance(r.json.get("error"), dict) else None
            ex.diffs = [Diff("api-version-not-served", f"api-version {ex.api_version} is not served; the emulator answered "
                                                       f"{r.status} {code or r.text[:80]}")]
            return
    ex.diffs = Comparer(rep, ex).run()


def verdict_text(ex: Exchange) -> str:
    if ex.verdict == "not replayable":
        return f"not replayable ({ex.reason})"
    if ex.verdict == "diverges (deliberate)":
        return f"diverges (deliberate: {ex.reason})"
    return ex.verdict


def md_escape(s: str) -> str:
    return s.replace("|", "\\|").replace("\n", " ")


def write_report(path: Path, scenarios: list[Scenario], empty: list[str], emu: Emulator, deliberate: Deliberate,
                 counts: dict[str, int], ref: Path, all_details: bool = False) -> None:
    lines = ["# Conformance report", ""]
    lines.append(f"Emulator {emu.info.get('version', '?')} at {emu.endpoint} (auth {emu.info.get('auth', '?')}); "
                 f"Chat versions {', '.join(emu.chat_versions)}; Identity versions {', '.join(emu.identity_versions)}.")
    lines.append(f"Reference inputs: `{ref}`. Generated {time.strftime('%Y-%m-%d %H:%M:%S %Z')}.")
    lines.append("")
    lines.append("| verdict | count |")
    lines.append("|---|---|")
    for k in ("match", "diverges (deliberate)", "diverges", "not replayable"):
        lines.append(f"| {k} | {counts.get(k, 0)} |")
    lines.append("")
    lines.append(f"**conformance: {counts.get('match', 0) + counts.get('diverges (deliberate)', 0)} passed, "
                 f"{counts.get('diverges', 0)} failed** ({counts.get('not replayable', 0)} not replayable)")
    lines.append("")
    undoc = [ex for s in scenarios for ex in s.exchanges if ex.verdict == "diverges"]
    if undoc:
        lines.append("## Undocumented divergences")
        lines.append("")
        kinds: dict[str, int] = {}
        for ex in undoc:
            for d in ex.diffs:
                kinds[d.kind] = kinds.get(d.kind, 0) + 1
        lines.append("Differences by kind: " + ", ".join(f"{k} {n}" for k, n in sorted(kinds.items())))
        lines.append("")
        for ex in undoc:
            lines += detail_block(ex)
    unused = [key for *_, key in deliberate.entries if key not in deliberate.used]
    sources = [("android", "Android session records (2021-09-07)"), ("ios", "iOS DVR recordings (2021-09-07)"),
               ("ios-util", "iOS sanitized per-operation bodies (2021-09-07)"), ("js", "JS test-proxy assets"),
               ("spec", "Spec x-ms-examples")]
    for src, title in sources:
        exs = [ex for s in scenarios if s.source == src for ex in s.exchanges]
        lines.append(f"## {title}: {len(exs)} exchange(s)")
        lines.append("")
        lines.append("| exchange | request | verdict |")
        lines.append("|---|---|---|")
        for ex in exs:
            lines.append(f"| `{ex.id}` | `{md_escape(ex.title)}` | {md_escape(verdict_text(ex))} |")
        lines.append("")
        if src == "android" and empty:
            lines.append(f"Android files with no recorded network call (nothing to replay): {len(empty)}: "
                         + ", ".join(f"`{e}`" for e in empty))
            lines.append("")
    lines.append("## Details" + ("" if all_details else " (divergences and exchanges with notes)"))
    lines.append("")
    for s in scenarios:
        for ex in s.exchanges:
            if all_details or ex.verdict.startswith("diverges") or ex.notes:
                lines += detail_block(ex)
    if unused:
        lines.append("## deliberate.json entries that matched nothing")
        lines.append("")
        for key in unused:
            lines.append(f"- `{key}`")
        lines.append("")
    path.write_text("\n".join(lines) + "\n")


def detail_block(ex: Exchange) -> list[str]:
    out = [f"### `{ex.id}` — {verdict_text(ex)}", ""]
    out.append(f"- recorded: `{md_escape(ex.title)}` -> {ex.status if ex.status is not None else '?'}"
               + (f" ({ex.status_note})" if ex.status_note else ""))
    if ex.sent:
        out.append(f"- sent: `{md_escape(ex.sent[:400])}` -> {ex.emu.status if ex.emu else '?'}")
    for d in ex.diffs:
        out.append(f"- **{d.kind}**: {md_escape(d.detail)}")
    for n in ex.notes:
        out.append(f"- note: {md_escape(n)}")
    if ex.emu is not None:
        rec = ex.body if ex.body is not MISSING else "(not recorded)"
        out.append(f"- recorded body: `{md_escape(json.dumps(rec, ensure_ascii=False)[:600])}`")
        out.append(f"- emulator body: `{md_escape(ex.emu.text[:600])}`")
        hdr = {k: v for k, v in ex.emu.headers.items() if k in ("content-type", "location")}
        rh = {k: v for k, v in (ex.headers or {}).items() if k in ("content-type", "location")}
        out.append(f"- headers recorded {rh}, emulator {hdr}")
    out.append("")
    return out


# ---------------------------------------------------------------------------------------------
# Main
# ---------------------------------------------------------------------------------------------


def reference_dir() -> Path:
    env = os.environ.get("ACS_REFERENCE_DIR")
    return Path(env) if env else (REPO_ROOT.parent / "shared" / "reference").resolve()


def shadow_version(emu: Emulator, ex: Exchange) -> str | None:
    """For recorded exchanges of an api-version the emulator does not serve, the version the
    informational second replay uses (the newest served one of that API)."""
    if ex.api_version is None or ex.op not in REPLAY_OPS:
        return None
    if ex.op in IMAGE_OPS and ex.api_version != IMAGE_VERSION and IMAGE_VERSION in emu.chat_versions:
        return IMAGE_VERSION  # image examples filed under a version whose swagger copy has no image operations
    if emu.served(ex.op, ex.api_version):
        return None
    if ex.source == "spec":
        return None
    return newest_stable(emu.identity_versions if is_identity_op(ex.op) else emu.chat_versions)


def run_shadow(emu: Emulator, scen: Scenario) -> None:
    vmap = {}
    for ex in scen.exchanges:
        v = shadow_version(emu, ex)
        if v and not ex.skip:
            vmap[ex.api_version or ""] = v
    if not vmap:
        return
    clone = Scenario(scen.id, scen.source, [copy.copy(ex) for ex in scen.exchanges], scen.caller_hint)
    for c in clone.exchanges:
        c.diffs, c.notes, c.emu, c.sent, c.setup_error = [], [], None, "", None
    rep = Replayer(emu, clone, vmap)
    rep.run()
    for orig, c in zip(scen.exchanges, clone.exchanges):
        if orig.api_version not in vmap:
            continue
        v = vmap[orig.api_version or ""]
        if c.skip or c.setup_error:
            orig.notes.append(f"replayed at {v} instead (informational): not replayable ({c.skip or c.setup_error})")
            continue
        compare(rep, c, emu)
        if not c.diffs:
            orig.notes.append(f"replayed at {v} instead (informational): match")
        else:
            orig.notes.append(f"replayed at {v} instead (informational): "
                              + "; ".join(f"{d.kind}: {d.detail}" for d in c.diffs))


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--report", type=Path, default=None,
                    help="where to write the markdown report (default: a file in a new temp dir)")
    ap.add_argument("--deliberate", type=Path, default=HERE / "deliberate.json")
    ap.add_argument("--only", default=None, help="*-glob on exchange ids: replay only matching scenarios")
    ap.add_argument("--no-shadow", action="store_true",
                    help="skip the informational replay of unserved api-versions at the newest served one")
    ap.add_argument("-v", "--verbose", action="store_true", help="print every exchange's verdict")
    ap.add_argument("--all-details", action="store_true",
                    help="detail every exchange in the report (what was sent, what came back), not only divergences")
    args = ap.parse_args(argv)

    conn = os.environ.get("ACS_CONNECTION_STRING")
    if not conn:
        print("conformance: ACS_CONNECTION_STRING is not set", file=sys.stderr)
        return 2
    ref = reference_dir()
    if not (ref / "recordings").is_dir() or not (ref / "acs-specs").is_dir():
        print(f"conformance: reference inputs not found at {ref} (set ACS_REFERENCE_DIR)", file=sys.stderr)
        return 2
    cafile = os.environ.get("REQUESTS_CA_BUNDLE") or os.environ.get("SSL_CERT_FILE")
    try:
        emu = Emulator(conn, Http(cafile))
    except (ConnectionError, KeyError, ValueError) as e:
        print(f"conformance: cannot reach the emulator: {e}", file=sys.stderr)
        return 2
    deliberate = Deliberate(args.deliberate)

    android, empty = load_android(ref)
    scenarios = android + load_ios(ref) + load_ios_util(ref) + load_js(ref) + load_spec(ref)
    if args.only:
        rx = glob_rx(args.only)
        scenarios = [s for s in scenarios if any(rx.match(ex.id) for ex in s.exchanges)]

    for scen in scenarios:
        rep = Replayer(emu, scen)
        try:
            rep.run()
        except ConnectionError as e:
            print(f"conformance: lost the emulator during {scen.id}: {e}", file=sys.stderr)
            return 2
        for ex in scen.exchanges:
            compare(rep, ex, emu)
        if not args.no_shadow:
            try:
                run_shadow(emu, scen)
            except (ConnectionError, SetupError) as e:
                for ex in scen.exchanges:
                    ex.notes.append(f"informational replay failed: {e}")
        for ex in scen.exchanges:
            judge(ex, deliberate, emu)
            if args.verbose:
                print(f"{ex.id}: {verdict_text(ex)}")
                for d in ex.diffs:
                    print(f"    {d.kind}: {d.detail}")

    counts: dict[str, int] = {}
    for s in scenarios:
        for ex in s.exchanges:
            counts[ex.verdict] = counts.get(ex.verdict, 0) + 1
    report = args.report or Path(tempfile.mkdtemp(prefix="acs-conformance-")) / "conformance-report.md"
    report.parent.mkdir(parents=True, exist_ok=True)
    write_report(report, scenarios, empty, emu, deliberate, counts, ref, args.all_details)
    for s in scenarios:
        for ex in s.exchanges:
            if ex.verdict == "diverges":
                print(f"DIVERGES {ex.id}: " + "; ".join(f"{d.kind}: {d.detail}" for d in ex.diffs)[:400])
    print(f"report: {report}")
    print(f"match {counts.get('match', 0)}, deliberate {counts.get('diverges (deliberate)', 0)}, "
          f"diverges {counts.get('diverges', 0)}, not replayable {counts.get('not replayable', 0)}")
    passed = counts.get("match", 0) + counts.get("diverges (deliberate)", 0)
    failed = counts.get("diverges", 0)
    print(f"conformance: {passed} passed, {failed} failed")
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
