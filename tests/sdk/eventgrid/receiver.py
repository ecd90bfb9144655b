"""A webhook receiver on loopback for the Event Grid suite (events.md §6, §8 step 1).

It answers both validation handshakes as a real endpoint would: the Event Grid schema's
SubscriptionValidation POST with 200 {"validationResponse": code}, the CloudEvents OPTIONS with
WebHook-Allowed-Origin; every other POST gets 200. It records every request (method, path,
headers, raw body) and lets a test wait on the records with a condition, not a sleep.
"""

import json
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer


class Recorded:
    """One request the receiver got."""

    def __init__(self, method, path, headers, body):
        self.method = method
        self.path = path
        self.headers = headers  # {lower-case name: value}
        self.body = body  # str, as received

    def header(self, name):
        return self.headers.get(name.lower())

    @property
    def is_notification(self):
        return self.method == "POST" and self.header("aeg-event-type") == "Notification"

    def events(self):
        """The events of the body: an array's items, or one CloudEvent object."""
        parsed = json.loads(self.body)
        return parsed if isinstance(parsed, list) else [parsed]


class Receiver:
    """Starts on 127.0.0.1 port 0 in a daemon thread; `url(path)` is an endpoint URL."""

    def __init__(self):
        self.records = []
        self._changed = threading.Condition()
        receiver = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def log_message(self, *args):  # keep pytest's output clean
                pass

            def _record(self):
                length = int(self.headers.get("Content-Length") or 0)
                body = self.rfile.read(length).decode("utf-8") if length else ""
                headers = {k.lower(): v for k, v in self.headers.items()}
                record = Recorded(self.command, self.path, headers, body)
                with receiver._changed:
                    receiver.records.append(record)
                    receiver._changed.notify_all()
                return record

            def _answer(self, status, body=b"", headers=()):
                self.send_response(status)
                for name, value in headers:
                    self.send_header(name, value)
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                if body:
                    self.wfile.write(body)

            def do_OPTIONS(self):
                record = self._record()
                # CloudEvents webhook spec §4: consent is WebHook-Allowed-Origin, not the status.
                origin = record.header("webhook-request-origin") or "*"
                self._answer(
                    200,
                    headers=[
                        ("WebHook-Allowed-Origin", origin),
                        ("WebHook-Allowed-Rate", "*"),
                        ("Allow", "POST"),
                    ],
                )

            def do_POST(self):
                record = self._record()
                if record.header("aeg-event-type") == "SubscriptionValidation":
                    code = json.loads(record.body)[0]["data"]["validationCode"]
                    body = json.dumps({"validationResponse": code}).encode()
                    self._answer(200, body, [("Content-Type", "application/json")])
                else:
                    self._answer(200)

        self._server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self._server.daemon_threads = True
        self.port = self._server.server_address[1]
        self._thread = threading.Thread(target=self._server.serve_forever, daemon=True)
        self._thread.start()

    def url(self, path):
        return f"http://127.0.0.1:{self.port}{path}"

    def snapshot(self):
        with self._changed:
            return list(self.records)

    def wait_until(self, predicate, deadline_seconds):
        """Waits until predicate(records) holds; returns whether it did (the deadline only
        catches a hang)."""
        with self._changed:
            return self._changed.wait_for(
                lambda: predicate(list(self.records)), timeout=deadline_seconds
            )

    def close(self):
        self._server.shutdown()
        self._server.server_close()
