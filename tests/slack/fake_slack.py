"""A local fake of the Slack Web API and response_url webhooks: records every call, fails on demand.

File uploads follow Slack's documented three steps (what slack_sdk's files_upload_v2 does):
files.getUploadURLExternal (filename, length) → {upload_url, file_id}; a POST of the raw bytes to
upload_url (answered "OK - <bytes>"); files.completeUploadExternal (files=[{id, title}],
channel_id, thread_ts, initial_comment) → {files: [{id, title, ...}]}. The fake keeps each
file's bytes and refuses to complete a file that was never uploaded or whose size differs from
the declared length.
"""

from __future__ import annotations

import itertools
import json
import random
import socket
import threading
import time
from collections import Counter, deque
from collections.abc import Iterator
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import parse_qsl, urlsplit

BOT_USER_ID = "UBOT1"
BOT_ID = "BBOT1"
TEAM_ID = "T111"


@dataclass
class Call:
    """One request the fake received: the API method (or webhook path), its arguments and headers."""

    method: str
    args: dict[str, Any]
    headers: dict[str, str]
    at: float = field(default_factory=time.monotonic)


@dataclass
class UploadedFile:
    """A file as the upload flow left it: declared name and length, the bytes, where it was shared."""

    file_id: str
    filename: str
    length: int
    alt_txt: str | None = None
    content: bytes | None = None
    title: str | None = None
    channel_id: str | None = None
    thread_ts: str | None = None
    initial_comment: str | None = None
    completed: bool = False


@dataclass
class Failure:
    """A canned failure for the next call(s) of a method: an HTTP status or a Slack error code."""

    status: int = 200
    error: str | None = None
    retry_after: float | None = None
    times: int = 1


class FakeSlack:
    """Plays slack.com/api/* and hooks.slack.com on 127.0.0.1; start() it, point base_url at .api_url.

    Users and channels are what users.info and conversations.info answer with (add_guest() makes a
    guest; set_members() says who conversations.members lists, by default the bot alone; a
    channel in ``missing`` is channel_not_found); fail() queues 429s,
    5xx or Slack error codes for a method; calls lists everything received, in order.

    Like Slack, it keeps the messages posted (with their metadata) and answers
    conversations.history from them. Optional behaviour, all off by default:
    ``latency`` (seconds before each answer), ``drop_rate`` (share of posts accepted and kept
    whose answer is never sent: the connection is closed instead), ``channel_interval`` and
    ``workspace_rate`` (chat.postMessage's documented 1 per second per channel — with
    ``channel_burst`` posts allowed back to back, "short bursts >1 allowed" — and a
    workspace-wide cap per second: over them, HTTP 429 with Retry-After and nothing kept),
    ``history_per_minute`` (conversations.history's Tier 3) and ``refuse`` (every method
    answers that Slack error, e.g. "token_revoked"). ``scopes`` is what every answer reports in
    X-OAuth-Scopes; ``delay()`` and ``drop()`` slow or cut chosen methods.
    """

    def __init__(
        self,
        *,
        latency: float = 0.0,
        drop_rate: float = 0.0,
        channel_interval: float | None = None,
        channel_burst: int = 1,
        workspace_rate: int | None = None,
        history_per_minute: int | None = None,
        seed: int = 7,
    ) -> None:
        self.drop_rate = drop_rate
        self.channel_interval = channel_interval
        self.channel_burst = channel_burst
        self.workspace_rate = workspace_rate
        self.history_per_minute = history_per_minute
        self._history_window: deque[float] = deque()
        self.refuse: str | None = None
        self.messages: dict[str, list[dict[str, Any]]] = {}
        self.rejected = 0
        self.rejections: Counter[str] = Counter()
        self.dropped = 0
        self._rng = random.Random(seed)
        self._last_post: dict[str, float] = {}
        self._window: deque[float] = deque()
        self.calls: list[Call] = []
        self.users: dict[str, dict[str, Any]] = {}
        self.channels: dict[str, dict[str, Any]] = {}
        # conversations.members: who is in each channel (the bot alone unless a test says so),
        # and channels Slack does not know (channel_not_found there and in conversations.info).
        self.members: dict[str, list[str]] = {}
        self.missing: set[str] = set()
        self.failures: dict[str, list[Failure]] = {}
        # Slack sends the token's scopes in X-OAuth-Scopes on every Web API answer.
        self.scopes: tuple[str, ...] | None = None
        self.files: dict[str, UploadedFile] = {}
        # Seconds each call of a method waits before it is answered (a slow Slack).
        self.delays: dict[str, float] = {"*": latency} if latency else {}
        # Methods whose next calls get the connection closed without an answer.
        self.drops: dict[str, int] = {}
        self._lock = threading.Lock()
        self._changed = threading.Condition(self._lock)
        self._ts = itertools.count(1)
        self._server: ThreadingHTTPServer | None = None
        self._thread: threading.Thread | None = None

    # -- lifecycle ------------------------------------------------------------------------------
    def start(self) -> FakeSlack:
        fake = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def log_message(self, format: str, *args: Any) -> None:  # keep test output quiet
                pass

            def do_GET(self) -> None:
                fake._handle(self, b"")

            def do_POST(self) -> None:
                length = int(self.headers.get("Content-Length") or 0)
                fake._handle(self, self.rfile.read(length))

        self._server = _QuietServer(("127.0.0.1", 0), Handler)
        self._server.daemon_threads = True
        # A short poll interval keeps stop() (called once per test) quick.
        self._thread = threading.Thread(
            target=self._server.serve_forever, kwargs={"poll_interval": 0.02}, daemon=True
        )
        self._thread.start()
        return self

    def stop(self) -> None:
        if self._server is not None:
            self._server.shutdown()
            self._server.server_close()

    @property
    def url(self) -> str:
        assert self._server is not None, "start() first"
        return f"http://127.0.0.1:{self._server.server_address[1]}"

    @property
    def api_url(self) -> str:
        return self.url + "/api/"

    def response_url(self, name: str = "r1") -> str:
        """A response_url for a payload; posts to it are recorded as method 'webhook:<name>'."""
        return f"{self.url}/webhook/{name}"

    # -- test controls -------------------------------------------------------------------------
    def add_user(
        self, user_id: str, email: str | None, name: str = "someone", **extra: Any
    ) -> None:
        profile = {"email": email, "real_name": name} if email else {"real_name": name}
        self.users[user_id] = {"id": user_id, "name": name, "real_name": name, "profile": profile}
        self.users[user_id].update(extra)

    def add_channel(self, channel_id: str, *, ext_shared: bool = False, name: str = "c") -> None:
        self.channels[channel_id] = {
            "id": channel_id,
            "name": name,
            "is_channel": True,
            "is_ext_shared": ext_shared,
            "is_shared": ext_shared,
        }

    def add_guest(
        self, user_id: str, email: str | None, name: str = "a guest", *, single: bool = True
    ) -> None:
        """A guest of our workspace, as users.info shows one: is_restricted, and for a
        single-channel guest is_ultra_restricted as well."""
        self.add_user(
            user_id, email, name, team_id=TEAM_ID, is_restricted=True, is_ultra_restricted=single
        )

    def set_members(self, channel_id: str, members: list[str]) -> None:
        """Who conversations.members lists for the channel (the bot is added, as it is there)."""
        self.members[channel_id] = [BOT_USER_ID, *(m for m in members if m != BOT_USER_ID)]

    def fail(
        self,
        method: str,
        *,
        status: int = 200,
        error: str | None = None,
        retry_after: float | None = None,
        times: int = 1,
    ) -> None:
        """Make the next `times` calls of `method` fail (HTTP status and/or Slack error code)."""
        with self._lock:
            self.failures.setdefault(method, []).append(
                Failure(status=status, error=error, retry_after=retry_after, times=times)
            )

    def posts(self) -> list[dict[str, Any]]:
        """Every message kept (accepted), over all channels."""
        with self._lock:
            return [m for msgs in self.messages.values() for m in msgs]

    def delay(self, method: str, seconds: float) -> None:
        """Answer every call of ``method`` (or of every method: "*") after ``seconds``."""
        self.delays[method] = seconds

    def drop(self, method: str, times: int = 1) -> None:
        """Close the connection of the next ``times`` calls of ``method`` without answering."""
        with self._lock:
            self.drops[method] = self.drops.get(method, 0) + times

    def calls_to(self, method: str) -> list[Call]:
        with self._lock:
            return [c for c in self.calls if c.method == method]

    def methods(self) -> list[str]:
        with self._lock:
            return [c.method for c in self.calls]

    def reset(self) -> None:
        with self._lock:
            self.calls.clear()
            self.failures.clear()
            self.files.clear()

    def wait_for(self, method: str, count: int = 1, timeout: float = 5.0) -> list[Call]:
        """Block until `count` calls of `method` arrived (for work bolt runs after the ack)."""
        deadline = time.monotonic() + timeout
        with self._changed:
            while True:
                found = [c for c in self.calls if c.method == method]
                if len(found) >= count:
                    return found
                remaining = deadline - time.monotonic()
                if remaining <= 0:
                    raise AssertionError(
                        f"expected {count} {method} call(s), got {len(found)}: "
                        f"{[c.method for c in self.calls]}"
                    )
                self._changed.wait(remaining)

    # -- the wire ------------------------------------------------------------------------------
    def _handle(self, request: BaseHTTPRequestHandler, body: bytes) -> None:
        parts = urlsplit(request.path)
        headers = {k.lower(): v for k, v in request.headers.items()}
        if parts.path.startswith("/upload/v1/"):
            self._receive_upload(request, parts.path.rsplit("/", 1)[-1], body, headers)
            return
        raw = body.decode("utf-8")
        args: dict[str, Any] = dict(parse_qsl(parts.query))
        if raw:
            if headers.get("content-type", "").startswith("application/json"):
                args.update(json.loads(raw))
            else:
                args.update(parse_qsl(raw))
        if parts.path.startswith("/api/"):
            method = parts.path[len("/api/") :]
        elif parts.path.startswith("/webhook/"):
            method = "webhook:" + parts.path[len("/webhook/") :]
        else:
            self._send(request, 404, {"ok": False, "error": "unknown_path"})
            return
        with self._changed:
            self.calls.append(Call(method=method, args=args, headers=headers))
            failure = self._take_failure(method)
            limited = self._over_limit(args) if method == "chat.postMessage" else None
            if method == "conversations.history":
                limited = self._history_limited()
            dropped = self.drops.get(method, 0) > 0
            if dropped:
                self.drops[method] -= 1
            self._changed.notify_all()
        wait = self.delays.get(method, self.delays.get("*", 0.0))
        if wait:
            time.sleep(wait)
        if dropped:
            # As a dropped connection looks to the client: no status line, the socket closes.
            request.close_connection = True
            request.connection.shutdown(socket.SHUT_RDWR)
            return
        if failure is not None:
            extra = {"Retry-After": str(int(failure.retry_after))} if failure.retry_after else {}
            body = {"ok": False, "error": failure.error or f"http_{failure.status}"}
            self._send(request, failure.status, body, extra)
            return
        if self.refuse and not method.startswith("webhook:"):
            self._send(request, 200, {"ok": False, "error": self.refuse})
            return
        if limited is not None:
            self._send(request, 429, {"ok": False, "error": "ratelimited"}, limited)
            return
        if method.startswith("webhook:"):
            self._send_text(request, 200, "ok")
            return
        scopes = {"X-OAuth-Scopes": ",".join(self.scopes)} if self.scopes is not None else None
        answer = self._answer(method, args)
        if method == "chat.postMessage" and self.drop_rate and self._rng.random() < self.drop_rate:
            # Accepted and kept, but the answer is lost on the way back.
            with self._lock:
                self.dropped += 1
            request.close_connection = True
            request.connection.shutdown(socket.SHUT_RDWR)
            return
        self._send(request, 200, answer, scopes)

    def _history_limited(self) -> dict[str, str] | None:
        """conversations.history is a Tier 3 method: 50+ per minute (under lock)."""
        if self.history_per_minute is None:
            return None
        now = time.monotonic()
        while self._history_window and now - self._history_window[0] >= 60.0:
            self._history_window.popleft()
        if len(self._history_window) >= self.history_per_minute:
            self.rejected += 1
            self.rejections["history"] += 1
            return {"Retry-After": str(int(61 - (now - self._history_window[0])))}
        self._history_window.append(now)
        return None

    def _over_limit(self, args: dict[str, Any]) -> dict[str, str] | None:
        """Retry-After headers when a post breaks the per-channel or workspace limit (under lock)."""
        now = time.monotonic()
        channel = str(args.get("channel"))
        if self.channel_interval is not None:
            # GCRA: one post per interval on average, with room for a short burst (Slack:
            # "1 per second; short bursts >1 allowed"). _last_post holds the theoretical
            # arrival time of the next post.
            due = self._last_post.get(channel, now)
            if now < due - self.channel_interval * (self.channel_burst - 1):
                self.rejected += 1
                self.rejections["channel"] += 1
                return {"Retry-After": "1"}
        if self.workspace_rate is not None:
            while self._window and now - self._window[0] >= 1.0:
                self._window.popleft()
            if len(self._window) >= self.workspace_rate:
                self.rejected += 1
                self.rejections["workspace"] += 1
                return {"Retry-After": "1"}
            self._window.append(now)
        if self.channel_interval is not None:
            self._last_post[channel] = max(self._last_post.get(channel, now), now) + (
                self.channel_interval
            )
        return None

    def _receive_upload(
        self, request: BaseHTTPRequestHandler, file_id: str, body: bytes, headers: dict[str, str]
    ) -> None:
        """Step 2: the raw bytes POSTed to the upload_url (recorded as method 'upload')."""
        with self._changed:
            self.calls.append(
                Call(
                    method="upload", args={"file_id": file_id, "bytes": len(body)}, headers=headers
                )
            )
            pending = self.files.get(file_id)
            failure = self._take_failure("upload")
            if pending is not None and failure is None:
                pending.content = body
            self._changed.notify_all()
        if failure is not None:
            self._send_text(request, failure.status if failure.status != 200 else 500, "error")
        elif pending is None:
            self._send_text(request, 404, "unknown upload")
        else:
            self._send_text(request, 200, f"OK - {len(body)}")

    def uploaded(self) -> list[UploadedFile]:
        """Files whose upload was completed, in the order they were completed."""
        with self._lock:
            return [f for f in self.files.values() if f.completed]

    def _get_upload_url(self, args: dict[str, Any]) -> dict[str, Any]:
        filename, length = args.get("filename"), args.get("length")
        if not filename or length is None or not str(length).isdigit():
            return {"ok": False, "error": "invalid_arguments"}
        file_id = f"F{next(self._ts):08d}"
        self.files[file_id] = UploadedFile(
            file_id=file_id, filename=str(filename), length=int(length), alt_txt=args.get("alt_txt")
        )
        return {"ok": True, "upload_url": f"{self.url}/upload/v1/{file_id}", "file_id": file_id}

    def _complete_upload(self, args: dict[str, Any]) -> dict[str, Any]:
        raw = args.get("files")
        listed = json.loads(raw) if isinstance(raw, str) else (raw or [])
        if not listed:
            return {"ok": False, "error": "invalid_arguments"}
        done = []
        for entry in listed:
            upload = self.files.get(str(entry.get("id")))
            if upload is None or upload.content is None or len(upload.content) != upload.length:
                return {"ok": False, "error": "file_not_found"}
            done.append(upload)
        for upload, entry in zip(done, listed, strict=True):
            upload.title = entry.get("title")
            upload.channel_id = args.get("channel_id")
            upload.thread_ts = args.get("thread_ts")
            upload.initial_comment = args.get("initial_comment")
            upload.completed = True
        return {
            "ok": True,
            "files": [
                {"id": u.file_id, "title": u.title, "name": u.filename, "size": u.length}
                for u in done
            ],
        }

    def _take_failure(self, method: str) -> Failure | None:
        queue = self.failures.get(method)
        if not queue:
            return None
        failure = queue[0]
        failure.times -= 1
        if failure.times <= 0:
            queue.pop(0)
        return failure

    def _answer(self, method: str, args: dict[str, Any]) -> dict[str, Any]:
        if method == "auth.test":
            return {
                "ok": True,
                "url": "https://example.slack.com/",
                "team": "Example",
                "user": "csm-assistant",
                "team_id": TEAM_ID,
                "user_id": BOT_USER_ID,
                "bot_id": BOT_ID,
                "is_enterprise_install": False,
            }
        if method == "oauth.v2.access":
            # "c0de" installs our workspace; "c0de-stranger" someone else's, anywhere on Slack.
            if args.get("code") not in ("c0de", "c0de-stranger"):
                return {"ok": False, "error": "invalid_code"}
            stranger = args.get("code") == "c0de-stranger"
            return {
                "ok": True,
                "app_id": "A111",
                "authed_user": {"id": "UMALLORY" if stranger else "UDANA"},
                "scope": "commands,chat:write",
                "token_type": "bot",
                "access_token": "xoxb-stranger" if stranger else "xoxb-installed",
                "bot_user_id": BOT_USER_ID,
                "team": {"id": "T999" if stranger else TEAM_ID, "name": "Example"},
                "enterprise": None if stranger else {"id": "E111", "name": "Sandbox Org"},
                "is_enterprise_install": False,
            }
        if method == "chat.postMessage":
            channel = str(args.get("channel"))
            if channel.startswith("U"):
                channel = "D" + channel  # a post to a user lands in the app's DM with them
            metadata = args.get("metadata")
            if isinstance(metadata, str):
                metadata = json.loads(metadata)
            with self._lock:
                ts = f"1700000000.{next(self._ts):06d}"
                # "_at" stands for the time Slack's real ts encodes; history filters on it.
                kept = {
                    "ts": ts,
                    "text": args.get("text"),
                    "metadata": metadata,
                    "bot_id": BOT_ID,
                    "_at": time.time(),
                }
                self.messages.setdefault(channel, []).append(kept)
            return {"ok": True, "channel": channel, "ts": ts, "message": {"ts": ts}}
        if method == "chat.update":
            ts = args.get("ts") or f"1700000000.{next(self._ts):06d}"
            channel = str(args.get("channel") or "")
            # Posting to a user id lands in the app's DM with them; Slack answers with that DM.
            channel = "D" + channel if channel.startswith("U") else channel
            return {"ok": True, "channel": channel, "ts": ts, "message": {"ts": ts}}
        if method == "conversations.history":
            return self._history(args)
        if method == "chat.postEphemeral":
            return {"ok": True, "message_ts": f"1700000000.{next(self._ts):06d}"}
        if method in ("views.open", "views.update", "views.publish", "views.push"):
            view = args.get("view")
            view = json.loads(view) if isinstance(view, str) else (view or {})
            return {"ok": True, "view": {"id": f"V{next(self._ts):04d}", **view}}
        if method == "users.info":
            user = self.users.get(str(args.get("user")))
            return {"ok": True, "user": user} if user else {"ok": False, "error": "user_not_found"}
        if method == "users.lookupByEmail":
            email = str(args.get("email", "")).lower()
            for user in self.users.values():
                if str((user.get("profile") or {}).get("email", "")).lower() == email:
                    return {"ok": True, "user": user}
            return {"ok": False, "error": "users_not_found"}
        if method == "conversations.members":
            return self._members(args)
        if method == "conversations.info":
            channel_id = str(args.get("channel"))
            if channel_id in self.missing:
                return {"ok": False, "error": "channel_not_found"}
            channel = self.channels.get(channel_id) or {
                "id": channel_id,
                "is_channel": True,
                "is_ext_shared": False,
            }
            return {"ok": True, "channel": channel}
        if method == "files.getUploadURLExternal":
            return self._get_upload_url(args)
        if method == "files.completeUploadExternal":
            return self._complete_upload(args)
        if method == "conversations.open":
            return {"ok": True, "channel": {"id": "D" + str(args.get("users", "X"))}}
        return {"ok": True}

    def _members(self, args: dict[str, Any]) -> dict[str, Any]:
        """As documented: ``limit`` (default 100, at most 1000) ids a page from ``cursor``, and
        response_metadata.next_cursor ("" on the last page); unknown channel: channel_not_found.
        A channel the test set no members for has the bot alone in it."""
        channel = str(args.get("channel") or "")
        if not channel or channel in self.missing:
            return {"ok": False, "error": "channel_not_found"}
        if channel.startswith("D"):
            return {"ok": False, "error": "method_not_supported_for_channel_type"}
        try:
            limit = int(args.get("limit") or 100)
            start = int(args.get("cursor") or 0)
        except ValueError:
            return {"ok": False, "error": "invalid_cursor"}
        if not 1 <= limit <= 1000:
            return {"ok": False, "error": "invalid_limit"}
        members = self.members.get(channel, [BOT_USER_ID])
        page = members[start : start + limit]
        more = start + limit < len(members)
        return {
            "ok": True,
            "members": page,
            "response_metadata": {"next_cursor": str(start + limit) if more else ""},
        }

    def _history(self, args: dict[str, Any]) -> dict[str, Any]:
        """Newest first, from ``oldest``, ``limit`` per page; metadata only when asked for."""
        channel = str(args.get("channel"))
        oldest = float(args.get("oldest") or 0)
        limit = int(args.get("limit") or 100)
        start = int(args.get("cursor") or 0)
        with self._lock:
            found = [m for m in self.messages.get(channel, []) if m["_at"] >= oldest]
        found.sort(key=lambda m: m["_at"], reverse=True)
        page = found[start : start + limit]
        with_metadata = str(args.get("include_all_metadata")).lower() in ("1", "true")
        hidden = {"_at"} if with_metadata else {"_at", "metadata"}
        messages = [{k: v for k, v in m.items() if k not in hidden} for m in page]
        more = start + limit < len(found)
        return {
            "ok": True,
            "messages": messages,
            "has_more": more,
            "response_metadata": {"next_cursor": str(start + limit) if more else ""},
        }

    @staticmethod
    def _send(
        request: BaseHTTPRequestHandler,
        status: int,
        body: dict[str, Any],
        extra_headers: dict[str, str] | None = None,
    ) -> None:
        data = json.dumps(body).encode()
        request.send_response(status)
        request.send_header("Content-Type", "application/json; charset=utf-8")
        request.send_header("Content-Length", str(len(data)))
        for key, value in (extra_headers or {}).items():
            request.send_header(key, value)
        request.end_headers()
        request.wfile.write(data)

    @staticmethod
    def _send_text(request: BaseHTTPRequestHandler, status: int, text: str) -> None:
        data = text.encode()
        request.send_response(status)
        request.send_header("Content-Type", "text/plain")
        request.send_header("Content-Length", str(len(data)))
        request.end_headers()
        request.wfile.write(data)


class _QuietServer(ThreadingHTTPServer):
    """A client that hung up on a slow (delayed) answer is not an error worth a traceback."""

    def handle_error(self, request: Any, client_address: Any) -> None:
        import sys

        if isinstance(sys.exc_info()[1], ConnectionError):
            return
        super().handle_error(request, client_address)


def running_fake() -> Iterator[FakeSlack]:
    """A started fake for a fixture; stopped when the fixture ends."""
    fake = FakeSlack().start()
    try:
        yield fake
    finally:
        fake.stop()
