"""A local fake of the Bot Connector service (and of the OpenID key endpoint) for Teams tests."""

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
_PAGED = re.compile(r"^/v3/conversations/([^/]+)/pagedmembers$")


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
    # Conversation (or team) id -> its members, for the paged roster; default: ``members``.
    rosters: dict[str, list[dict[str, Any]]] = field(default_factory=dict)
    jwks: dict[str, Any] | None = None
    calls: list[Call] = field(default_factory=list)
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
                if _PAGED.match(path):
                    # The conversation's (or team's) roster: everyone the test registered, unless
                    # a test set its own roster for this conversation.
                    key = unquote(_PAGED.match(path).group(1))  # type: ignore[union-attr]
                    found = fake.rosters.get(key, list(fake.members.values()))
                    self._send(200, {"members": found})
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
                self._activity("PUT")

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

    def sent(self) -> list[Call]:
        """Activities the bot posted or updated (not roster or key lookups)."""
        with self._lock:
            return [c for c in self.calls if c.method in ("POST", "PUT")]

    def attempts(self) -> int:
        return len(self.sent())
