"""A body that trickles in (slow-loris) is cut off with a 408, and a client that hangs up while
sending one leaves no traceback in the log: over real HTTP, on every POST endpoint."""

from __future__ import annotations

import logging
import socket
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from bot.config import Settings
from bot.container import Container
from bot.server import create_app
from storage.db import engine_for, upgrade
from tests.http_server import ServerThread

ENDPOINTS = {
    "slack": ("/slack/events", ""),
    "teams": ("/api/messages", "Authorization: Bearer x\r\n"),
    "data API": (
        "/api/v1/import/accounts",
        "Authorization: Bearer slow-token\r\nContent-Type: text/csv\r\n",
    ),
}


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ServerThread]:
    url = f"sqlite:///{Path(tmp_path_factory.mktemp('slow')) / 'csm.db'}"
    upgrade(url)
    container = Container(
        settings=Settings(
            database_url=url,
            slack_signing_secret="slow-secret",
            slack_bot_token="xoxb-test",
            slack_api_url="http://127.0.0.1:9",
            api_token="slow-token",
            microsoft_app_id="11111111-2222-3333-4444-555555555555",
            microsoft_app_password="secret",
            microsoft_app_tenant_id="50612dbb-0237-4969-b378-8d42590f9c00",
        )
    )
    with ServerThread(create_app(container)) as running:
        yield running
    engine_for.cache_clear()


def start_post(server: ServerThread, path: str, headers: str) -> socket.socket:
    """A POST that promises 1,000 bytes and sends one."""
    sock = socket.create_connection(("127.0.0.1", server.port))
    head = f"POST {path} HTTP/1.1\r\nHost: x\r\nContent-Length: 1000\r\n{headers}\r\n"
    sock.sendall(head.encode() + b"a")
    return sock


@pytest.mark.parametrize("endpoint", list(ENDPOINTS))
def test_a_body_that_trickles_in_is_cut_off(
    server: ServerThread, endpoint: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    import bot.http_body

    monkeypatch.setattr(bot.http_body, "BODY_SECONDS", 0.5, raising=False)
    monkeypatch.setattr(bot.http_body, "API_BODY_SECONDS", 0.5, raising=False)
    path, headers = ENDPOINTS[endpoint]
    sock = start_post(server, path, headers)
    sock.settimeout(0.2)
    answer = b""
    started = time.monotonic()
    try:
        # A byte every 0.2 s, for up to 4 s: the server must give up long before the body ends.
        while time.monotonic() - started < 4 and not answer:
            try:
                answer = sock.recv(200)
            except TimeoutError:
                sock.sendall(b"a")
    finally:
        sock.close()
    assert answer.startswith(b"HTTP/1.1 408"), answer


def test_a_client_that_hangs_up_mid_body_leaves_no_traceback(
    server: ServerThread, caplog: pytest.LogCaptureFixture
) -> None:
    # uvicorn logs "Exception in ASGI application" on its own logger, which does not propagate.
    uvicorn_log = logging.getLogger("uvicorn.error")
    uvicorn_log.addHandler(caplog.handler)
    caplog.set_level(logging.ERROR)
    for path, headers in ENDPOINTS.values():
        start_post(server, path, headers).close()
    time.sleep(0.3)  # the server notices the hang-ups
    uvicorn_log.removeHandler(caplog.handler)
    errors = [r for r in caplog.records if r.levelno >= logging.ERROR]
    assert errors == [], [r.getMessage() for r in errors]
