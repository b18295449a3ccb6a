"""A local fake of the Bot Connector service (and of the OpenID key endpoint) for Teams tests."""

from __future__ import annotations

import json
import re
import threading
import time
from collections import deque
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import unquote, urlsplit

# Teams' documented limits per bot per thread (a channel and its reply chains are one thread),
# and about 50 requests per second per app per tenant.
THREAD_LIMITS: tuple[tuple[int, float], ...] = ((7, 1.0), (8, 2.0), (60, 30.0), (1800, 3600.0))
TENANT_LIMITS: tuple[tuple[int, float], ...] = ((50, 1.0),)
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
    at: float = field(default_factory=time.monotonic)


@dataclass
class FakeConnector:
    """Records what the bot sends; answers like the Bot Connector, or with failures queued by a test.

    ``failures`` is consumed one per activity POST/PUT: ``(status, headers)``; ``members`` answers
    roster lookups by user id; ``jwks`` (when set) is served as the OpenID signing keys.

    Like Teams, it throttles: a send (POST or PUT of an activity) beyond the per-thread windows
    (7/1 s, 8/2 s, 60/30 s, 1800/3600 s, a channel and its threads counted together) or the
    tenant's 50/s is answered 429 with Retry-After and not kept (``enforce_limits=False`` turns
    that off). ``accepted`` lists the activities it kept; ``throttled`` counts the 429s.
    ``latency`` delays every answer.
    """

    failures: list[tuple[int, dict[str, str]]] = field(default_factory=list)
    members: dict[str, dict[str, Any]] = field(default_factory=dict)
    jwks: dict[str, Any] | None = None
    calls: list[Call] = field(default_factory=list)
    enforce_limits: bool = True
    latency: float = 0.0
    accepted: list[Call] = field(default_factory=list)
    throttled: int = 0
    _sends: dict[str, deque[float]] = field(default_factory=dict)
    _tenant: deque[float] = field(default_factory=deque)
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
                call = fake._record(self, method, path, body, match)
                if match is None:
                    self._send(404, {"error": {"code": "NotFound", "message": path}})
                    return
                conversation = unquote(match.group(1))
                with fake._lock:
                    failure = fake.failures.pop(0) if fake.failures else None
                    if failure is None and fake.enforce_limits:
                        failure = fake._throttle(conversation)
                    fake._next_id += 1
                    new_id = f"1:activity-{fake._next_id}"
                    if failure is None:
                        fake.accepted.append(call)
                if fake.latency:
                    time.sleep(fake.latency)
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

    def _throttle(self, conversation: str) -> tuple[int, dict[str, str]] | None:
        """A 429 when this send breaks a documented window; else the send is counted (under lock)."""
        now = time.monotonic()
        thread = conversation.split(";messageid=", 1)[0]
        sent = self._sends.setdefault(thread, deque())
        for log, limits in ((sent, THREAD_LIMITS), (self._tenant, TENANT_LIMITS)):
            horizon = max(seconds for _, seconds in limits)
            while log and log[0] <= now - horizon:
                log.popleft()
            for count, seconds in limits:
                if len(log) >= count and log[-count] > now - seconds:
                    self.throttled += 1
                    wait = log[-count] + seconds - now
                    return 429, {"Retry-After": str(max(1, round(wait + 0.5)))}
        sent.append(now)
        self._tenant.append(now)
        return None

    def stop(self) -> None:
        if self._server is not None:
            self._server.shutdown()
            self._server.server_close()

    def _record(
        self, handler: BaseHTTPRequestHandler, method: str, path: str, body: Any, match: Any = None
    ) -> Call:
        call = Call(method=method, path=path, headers=dict(handler.headers.items()), body=body)
        if match is not None:
            call.conversation_id = unquote(match.group(1))
            call.activity_id = unquote(match.group(2)) if match.group(2) else None
        with self._lock:
            self.calls.append(call)
        return call

    def sent(self) -> list[Call]:
        """Activities the bot posted or updated (not roster or key lookups)."""
        with self._lock:
            return [c for c in self.calls if c.method in ("POST", "PUT")]

    def attempts(self) -> int:
        return len(self.sent())
