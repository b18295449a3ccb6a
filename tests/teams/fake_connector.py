"""A local fake of the Bot Connector service (and of the OpenID key endpoint) for Teams tests.

It also plays the OneDrive upload session a file consent hands the bot (``upload_url(name)``):
a PUT of the bytes with Content-Range ``bytes 0-(n-1)/n`` answers 201 like Graph's last chunk.
"""

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
_PAGED_MEMBERS = re.compile(r"^/v3/conversations/([^/]+)/pagedmembers$")
_TEAM_CHANNELS = re.compile(r"^/v3/teams/([^/]+)/conversations$")
_THREAD = ";messageid="
# "Bots in Teams: the message size limit is approximately 100 KB" (measured in UTF-16).
MESSAGE_LIMIT_UTF16 = 100 * 1024


_BASE64_IMAGE = re.compile(r'"data:image/[a-z+]+;base64,[A-Za-z0-9+/=]*"')


def utf16_size(body: Any) -> int:
    """Bytes of a JSON body in UTF-16, the way Teams measures a message: base64-encoded images
    are not counted ("Format your bot messages", learn.microsoft.com)."""
    text = json.dumps(body, ensure_ascii=False, separators=(",", ":"))
    return len(_BASE64_IMAGE.sub('"data:"', text).encode("utf-16-le"))


def _root(conversation_id: str) -> str:
    return conversation_id.split(_THREAD, 1)[0]


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
    roster lookups by user id (and the paged roster of any conversation); ``channels`` answers a
    team's channel list by team id; ``jwks`` (when set) is served as the OpenID signing keys.

    Like the Bot Connector it keeps the activities it accepted: an update (PUT) of an activity it
    never saw in that conversation is a 404, a message over 100 KB in UTF-16 is a 413
    ``MessageSizeTooBig``, and ``POST /v3/conversations`` creates (or finds) the 1:1 chat with a
    member, refusing with 403 a user who has not got the app (``not_installed``).

    Like Teams, it throttles: a send (POST or PUT of an activity) beyond the per-thread windows
    (7/1 s, 8/2 s, 60/30 s, 1800/3600 s, a channel and its threads counted together) or the
    tenant's 50/s is answered 429 with Retry-After and not kept (``enforce_limits=False`` turns
    that off). ``accepted`` lists the sends it kept; ``throttled`` counts the 429s.
    ``latency`` delays every answer.
    """

    failures: list[tuple[int, dict[str, str]]] = field(default_factory=list)
    members: dict[str, dict[str, Any]] = field(default_factory=dict)
    # Conversation (or team) id -> its members, for the paged roster; default: ``members``.
    rosters: dict[str, list[dict[str, Any]]] = field(default_factory=dict)
    channels: dict[str, list[dict[str, Any]]] = field(default_factory=dict)
    not_installed: set[str] = field(default_factory=set)
    jwks: dict[str, Any] | None = None
    calls: list[Call] = field(default_factory=list)
    uploads: dict[str, bytes] = field(default_factory=dict)
    # Accepted activities: conversation (channel root for threads) → activity id → last body.
    activities: dict[str, dict[str, Any]] = field(default_factory=dict)
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
                channels = _TEAM_CHANNELS.match(path)
                if channels:
                    found_channels = fake.channels.get(unquote(channels.group(1)))
                    if found_channels is None:
                        self._send(404, {"error": {"code": "NotFound", "message": "no such team"}})
                    else:
                        self._send(200, {"conversations": found_channels})
                    return
                paged = _PAGED_MEMBERS.match(path)
                if paged:
                    # The conversation's (or team's) roster: everyone the test registered, unless
                    # a test set its own roster for this conversation or team.
                    found = fake.rosters.get(unquote(paged.group(1)), list(fake.members.values()))
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

            def _error(self, status: int, code: str, message: str) -> None:
                self._send(status, {"error": {"code": code, "message": message}})

            def _create_conversation(self, body: Any) -> None:
                """POST /v3/conversations: ConversationParameters in, ConversationResourceResponse out."""
                params = body if isinstance(body, dict) else {}
                members = params.get("members") or []
                # JSON keys are case-insensitive to the (.NET) connector: botbuilder-python writes "tenantID".
                tenant = next(
                    (v for k, v in params.items() if k.lower() == "tenantid" and v), None
                ) or ((params.get("channelData") or {}).get("tenant") or {}).get("id")
                if not params.get("bot") or len(members) != 1 or not members[0].get("id"):
                    self._error(400, "BadArgument", "a 1:1 chat needs the bot and one member")
                    return
                if not tenant:
                    self._error(400, "BadArgument", "tenantId is required for Teams")
                    return
                member_id = str(members[0]["id"])
                # A member may be named by their Teams id or by their Entra (AAD) object id.
                user = next(
                    (
                        m
                        for m in fake.members.values()
                        if member_id in (m.get("id"), m.get("aadObjectId"))
                    ),
                    None,
                )
                user_id = user["id"] if user else member_id
                if user_id in fake.not_installed or member_id in fake.not_installed:
                    self._error(403, "Forbidden", "The bot is not part of the conversation roster.")
                    return
                conversation_id = f"a:1on1-{user_id}"
                with fake._lock:
                    existed = conversation_id in fake.activities
                    fake.activities.setdefault(conversation_id, {})
                self._send(
                    200 if existed else 201,
                    {"id": conversation_id, "serviceUrl": fake.service_url, "activityId": None},
                )

            def _activity(self, method: str) -> None:
                path = urlsplit(self.path).path
                body = self._body()
                match = _ACTIVITIES.match(path)
                call = fake._record(self, method, path, body, match)
                if method == "POST" and path == "/v3/conversations":
                    self._create_conversation(body)
                    return
                if match is None:
                    self._send(404, {"error": {"code": "NotFound", "message": path}})
                    return
                conversation = _root(unquote(match.group(1)))
                target = unquote(match.group(2) or "")
                with fake._lock:
                    failure = fake.failures.pop(0) if fake.failures else None
                    if failure is None and fake.enforce_limits:
                        failure = fake._throttle(conversation)
                    known = target in fake.activities.get(conversation, {})
                    if method == "POST":
                        fake._next_id += 1
                    new_id = f"1:activity-{fake._next_id}"
                if fake.latency:
                    time.sleep(fake.latency)
                if failure is None and utf16_size(body) > MESSAGE_LIMIT_UTF16:
                    self._error(413, "MessageSizeTooBig", "Message size too big")
                    return
                if failure is None and method == "PUT" and not known:
                    self._error(404, "ActivityNotFoundInConversation", "no such activity")
                    return
                if failure is None:
                    with fake._lock:
                        fake.accepted.append(call)
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
                activity_id = target if method == "PUT" else new_id
                with fake._lock:
                    fake.activities.setdefault(conversation, {})[activity_id] = body
                if method == "PUT":
                    self._send(200, {"id": activity_id})
                else:
                    self._send(201, {"id": activity_id})

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

    def upload_url(self, name: str) -> str:
        return f"{self.url}/upload-session/{name}"

    def sent(self) -> list[Call]:
        """Activities the bot posted or updated (not lookups, chat creation or file uploads)."""
        with self._lock:
            return [
                c
                for c in self.calls
                if c.method in ("POST", "PUT")
                and c.path != "/v3/conversations"
                and not c.path.startswith("/upload-session/")
            ]

    def created(self) -> list[Call]:
        """The conversations the bot asked to create (POST /v3/conversations)."""
        with self._lock:
            return [c for c in self.calls if c.method == "POST" and c.path == "/v3/conversations"]

    def updates(self) -> list[Call]:
        """Edits of messages already posted (PUT .../activities/{id})."""
        with self._lock:
            return [c for c in self.calls if c.method == "PUT"]

    def card_of(self, conversation_id: str, activity_id: str) -> dict[str, Any]:
        """The Adaptive Card a posted (and maybe since updated) message shows now."""
        with self._lock:
            body = self.activities[_root(conversation_id)][activity_id]
        return body["attachments"][0]["content"]

    def remember(self, conversation_id: str, activity_id: str, body: Any = None) -> None:
        """A message that exists before the test starts (posted by an earlier run of the bot)."""
        with self._lock:
            self.activities.setdefault(_root(conversation_id), {})[activity_id] = body

    def attempts(self) -> int:
        return len(self.sent())
