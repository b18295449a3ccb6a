"""A local fake of the Bot Connector service (and of the OpenID key endpoint) for Teams tests.

It also plays the OneDrive upload session a file consent hands the bot (``upload_url(name)``):
a PUT of the bytes with Content-Range ``bytes 0-(n-1)/n`` answers 201 like Graph's last chunk.
"""

from __future__ import annotations

import json
import re
import threading
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import unquote, urlsplit

_ACTIVITIES = re.compile(r"^/v3/conversations/([^/]+)/activities(?:/([^/]+))?$")
_MEMBER = re.compile(r"^/v3/conversations/([^/]+)/members/([^/]+)$")


@dataclass
class Call:
    """One request the fake received."""

    method: str
    path: str
    headers: dict[str, str]
    body: Any
    conversation_id: str | None = None
    # The {activityId} path segment: the message replied to (POST) or updated (PUT).
    activity_id: str | None = None


@dataclass
class FakeConnector:
    """Records what the bot sends; answers like the Bot Connector, or with failures queued by a test.

    ``failures`` is consumed one per activity POST/PUT: ``(status, headers)``; ``members`` answers
    roster lookups by user id; ``jwks`` (when set) is served as the OpenID signing keys.
    """

    failures: list[tuple[int, dict[str, str]]] = field(default_factory=list)
    members: dict[str, dict[str, Any]] = field(default_factory=dict)
    jwks: dict[str, Any] | None = None
    calls: list[Call] = field(default_factory=list)
    uploads: dict[str, bytes] = field(default_factory=dict)
    _server: ThreadingHTTPServer | None = None
    _lock: threading.Lock = field(default_factory=threading.Lock)
    _next_id: int = 0

    @property
    def url(self) -> str:
        assert self._server is not None
        host, port = self._server.server_address[:2]
        return f"http://{host}:{port}"

    @property
    def service_url(self) -> str:
        return self.url + "/"

    @property
    def openid_url(self) -> str:
        return self.url + "/v1/.well-known/openidconfiguration"

    def start(self) -> FakeConnector:
        fake = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, *args: Any) -> None:  # keep test output quiet
                pass

            def _body(self) -> Any:
                length = int(self.headers.get("Content-Length") or 0)
                raw = self.rfile.read(length) if length else b""
                return json.loads(raw) if raw else None

            def _send(
                self, status: int, payload: Any = None, headers: dict[str, str] | None = None
            ) -> None:
                data = b"" if payload is None else json.dumps(payload).encode()
                self.send_response(status)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(data)))
                for name, value in (headers or {}).items():
                    self.send_header(name, value)
                self.end_headers()
                self.wfile.write(data)

            def do_GET(self) -> None:
                path = urlsplit(self.path).path
                fake._record(self, "GET", path, None)
                if path == "/v1/.well-known/openidconfiguration":
                    self._send(
                        200,
                        {"issuer": "https://api.botframework.com", "jwks_uri": fake.url + "/keys"},
                    )
                    return
                if path == "/keys" and fake.jwks is not None:
                    self._send(200, fake.jwks)
                    return
                member = _MEMBER.match(path)
                if member:
                    found = fake.members.get(unquote(member.group(2)))
                    if found is None:
                        self._send(
                            404,
                            {
                                "error": {
                                    "code": "MemberNotFoundInConversation",
                                    "message": "not found",
                                }
                            },
                        )
                    else:
                        self._send(200, found)
                    return
                self._send(404, {"error": {"code": "NotFound", "message": path}})

            def _activity(self, method: str) -> None:
                path = urlsplit(self.path).path
                body = self._body()
                match = _ACTIVITIES.match(path)
                fake._record(self, method, path, body, match)
                if match is None:
                    self._send(404, {"error": {"code": "NotFound", "message": path}})
                    return
                with fake._lock:
                    failure = fake.failures.pop(0) if fake.failures else None
                    fake._next_id += 1
                    new_id = f"1:activity-{fake._next_id}"
                if failure is not None:
                    status, headers = failure
                    self._send(
                        status,
                        {
                            "error": {
                                "code": "Throttled" if status == 429 else "Error",
                                "message": "x",
                            }
                        },
                        headers,
                    )
                    return
                if method == "PUT":
                    self._send(200, {"id": unquote(match.group(2) or "")})
                else:
                    self._send(201, {"id": new_id})

            def do_POST(self) -> None:
                self._activity("POST")

            def do_PUT(self) -> None:
                path = urlsplit(self.path).path
                if path.startswith("/upload-session/"):
                    self._upload(path)
                    return
                self._activity("PUT")

            def _upload(self, path: str) -> None:
                length = int(self.headers.get("Content-Length") or 0)
                raw = self.rfile.read(length) if length else b""
                fake._record(self, "PUT", path, {"bytes": len(raw)})
                expected = f"bytes 0-{len(raw) - 1}/{len(raw)}"
                if self.headers.get("Content-Range") != expected:
                    self._send(400, {"error": {"code": "invalidRange", "message": expected}})
                    return
                with fake._lock:
                    fake.uploads[path.rsplit("/", 1)[-1]] = raw
                self._send(
                    201, {"id": "01BYE5RZ", "name": path.rsplit("/", 1)[-1], "size": len(raw)}
                )

        self._server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        threading.Thread(
            target=self._server.serve_forever, kwargs={"poll_interval": 0.02}, daemon=True
        ).start()
        return self

    def stop(self) -> None:
        if self._server is not None:
            self._server.shutdown()
            self._server.server_close()

    def _record(
        self, handler: BaseHTTPRequestHandler, method: str, path: str, body: Any, match: Any = None
    ) -> None:
        call = Call(method=method, path=path, headers=dict(handler.headers.items()), body=body)
        if match is not None:
            call.conversation_id = unquote(match.group(1))
            call.activity_id = unquote(match.group(2)) if match.group(2) else None
        with self._lock:
            self.calls.append(call)

    def upload_url(self, name: str) -> str:
        return f"{self.url}/upload-session/{name}"

    def sent(self) -> list[Call]:
        """Activities the bot posted or updated (not roster or key lookups, not file uploads)."""
        with self._lock:
            return [
                c
                for c in self.calls
                if c.method in ("POST", "PUT") and not c.path.startswith("/upload-session/")
            ]

    def attempts(self) -> int:
        return len(self.sent())
