"""A small local HTTP(S) server for the sync fakes: routes, a request log and canned failures."""

from __future__ import annotations

import json
import ssl
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import parse_qs, urlsplit


@dataclass
class Request:
    """One request the fake received."""

    method: str
    path: str
    query: dict[str, list[str]]
    headers: dict[str, str]
    body: bytes
    at: float = field(default_factory=time.monotonic)


@dataclass
class Answer:
    status: int
    body: Any
    headers: dict[str, str] = field(default_factory=dict)


Route = Callable[[Request], Answer]


class FakeServer:
    """Serves ``route(request)`` on 127.0.0.1; ``fail(prefix, answer, times)`` queues error answers
    for paths starting with ``prefix`` before the route answers again."""

    def __init__(self, route: Route, tls: ssl.SSLContext | None = None) -> None:
        self.route = route
        self.tls = tls
        self.requests: list[Request] = []
        self.failures: list[tuple[str, Answer, list[int]]] = []
        self._lock = threading.Lock()
        self._server: ThreadingHTTPServer | None = None

    def start(self) -> FakeServer:
        fake = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def log_message(self, format: str, *args: Any) -> None:
                pass

            def do_GET(self) -> None:
                fake._handle(self, b"")

            def do_POST(self) -> None:
                length = int(self.headers.get("Content-Length") or 0)
                fake._handle(self, self.rfile.read(length))

        self._server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self._server.daemon_threads = True
        if self.tls is not None:
            self._server.socket = self.tls.wrap_socket(self._server.socket, server_side=True)
        threading.Thread(
            target=self._server.serve_forever, kwargs={"poll_interval": 0.02}, daemon=True
        ).start()
        return self

    def stop(self) -> None:
        if self._server is not None:
            self._server.shutdown()
            self._server.server_close()

    @property
    def url(self) -> str:
        assert self._server is not None
        scheme = "https" if self.tls is not None else "http"
        return f"{scheme}://127.0.0.1:{self._server.server_address[1]}"

    def fail(self, prefix: str, answer: Answer, times: int = 1) -> None:
        with self._lock:
            self.failures.append((prefix, answer, [times]))

    def paths(self) -> list[str]:
        with self._lock:
            return [r.path for r in self.requests]

    def _take_failure(self, path: str) -> Answer | None:
        for prefix, answer, left in self.failures:
            if path.startswith(prefix) and left[0] > 0:
                left[0] -= 1
                return answer
        return None

    def _handle(self, handler: BaseHTTPRequestHandler, body: bytes) -> None:
        parts = urlsplit(handler.path)
        request = Request(
            method=handler.command,
            path=parts.path,
            query=parse_qs(parts.query),
            headers={k.lower(): v for k, v in handler.headers.items()},
            body=body,
        )
        with self._lock:
            self.requests.append(request)
            answer = self._take_failure(parts.path)
        if answer is None:
            answer = self.route(request)
        data = answer.body if isinstance(answer.body, bytes) else json.dumps(answer.body).encode()
        handler.send_response(answer.status)
        handler.send_header("Content-Type", "application/json;charset=UTF-8")
        handler.send_header("Content-Length", str(len(data)))
        for key, value in answer.headers.items():
            handler.send_header(key, value)
        handler.end_headers()
        handler.wfile.write(data)
