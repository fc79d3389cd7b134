"""Slow, half-sent and oversized requests against a real ``nbi serve`` over raw sockets."""

from __future__ import annotations

import contextlib
import json
import os
import socket
import subprocess
import sys
import time
import urllib.request
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.helpers.api import rec_body
from tests.helpers.redis_server import free_port

NBI = str(Path(sys.executable).with_name("nbi"))
HEAD_TIMEOUT = 1.0
BODY_TIMEOUT = 1.0
MAX_HEAD = 8192


@pytest.fixture(scope="module")
def port(tmp_path_factory: pytest.TempPathFactory) -> Iterator[int]:
    tmp = tmp_path_factory.mktemp("slow")
    env = {k: v for k, v in os.environ.items() if not k.startswith("NBI_")}
    env.update(
        NBI_SQLITE_PATH=str(tmp / "nbi.sqlite3"),
        NBI_MODEL_DIR=str(tmp / "models"),
        NBI_POLICY="uniform",
        NBI_HEADER_TIMEOUT_SECONDS=str(HEAD_TIMEOUT),
        NBI_BODY_TIMEOUT_SECONDS=str(BODY_TIMEOUT),
        NBI_MAX_HEADER_BYTES=str(MAX_HEAD),
    )
    log = tmp / "serve.log"
    number = free_port()
    with log.open("ab") as fh:
        proc = subprocess.Popen(  # noqa: S603
            [NBI, "serve", "--host", "127.0.0.1", "--port", str(number)],
            env=env,
            stdout=fh,
            stderr=subprocess.STDOUT,
        )
    try:
        deadline = time.monotonic() + 30
        while True:
            assert proc.poll() is None, log.read_text()[-2000:]
            try:
                with urllib.request.urlopen(f"http://127.0.0.1:{number}/healthz", timeout=1):  # noqa: S310
                    break
            except OSError:
                assert time.monotonic() < deadline, log.read_text()[-2000:]
                time.sleep(0.1)
        yield number
    finally:
        proc.terminate()
        proc.wait(timeout=10)


def _connect(port: int) -> socket.socket:
    sock = socket.create_connection(("127.0.0.1", port), timeout=10)
    sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
    return sock


def _read_until_closed(sock: socket.socket, limit: float = 10.0) -> tuple[bytes, float]:
    """Everything the server sends until it closes the connection, and how long that took."""
    start = time.monotonic()
    sock.settimeout(limit)
    data = b""
    while True:
        try:
            chunk = sock.recv(65536)
        except ConnectionResetError:
            break
        if not chunk:
            break
        data += chunk
    return data, time.monotonic() - start


def _status(data: bytes) -> int:
    return int(data.split(b" ", 2)[1])


def _head(body_length: int, key: str | None = "dev-case-key", extra: str = "") -> bytes:
    lines = [
        "POST /v1/recommendations HTTP/1.1",
        "Host: 127.0.0.1",
        "Content-Type: application/json",
        f"Content-Length: {body_length}",
    ]
    if key is not None:
        lines.append(f"X-API-Key: {key}")
    return ("\r\n".join(lines) + extra + "\r\n\r\n").encode()


def test_a_half_sent_body_is_answered_408_and_closed(port):
    with _connect(port) as sock:
        sock.sendall(_head(1000) + b'{"citizen_id": ')
        data, took = _read_until_closed(sock)
    assert _status(data) == 408 and b"connection: close" in data.lower()
    assert BODY_TIMEOUT * 0.8 < took < BODY_TIMEOUT + 3


def test_an_unauthenticated_half_sent_body_is_refused_at_once(port):
    with _connect(port) as sock:
        sock.sendall(_head(60_000, key=None) + b"[" * 100)
        data, took = _read_until_closed(sock)
    assert _status(data) == 401 and took < BODY_TIMEOUT * 0.8  # not held until a timeout


def test_a_slow_request_head_is_answered_408_and_closed(port):
    with _connect(port) as sock:
        sock.sendall(b"POST /v1/recommendations HTTP/1.1\r\nHost: 127.0.0.1\r\n")
        time.sleep(HEAD_TIMEOUT / 2)
        sock.sendall(b"X-Slow: 1\r\n")  # trickling does not extend the deadline
        data, took = _read_until_closed(sock)
    assert _status(data) == 408
    assert took < HEAD_TIMEOUT + 3


def test_a_connection_that_sends_nothing_is_closed(port):
    with _connect(port) as sock:
        data, took = _read_until_closed(sock)
    assert _status(data) == 408 and took < HEAD_TIMEOUT + 3


def test_an_oversized_head_is_431_and_closed(port):
    with _connect(port) as sock:
        big = "\r\nX-Big: " + "a" * (MAX_HEAD * 4)
        with contextlib.suppress(BrokenPipeError, ConnectionResetError):
            sock.sendall(_head(2, extra=big) + b"{}")  # the server may close before the end
        data, took = _read_until_closed(sock)
    assert _status(data) == 431 and took < 3


def test_many_half_sent_bodies_are_all_released(port):
    socks = [_connect(port) for _ in range(100)]
    try:
        for sock in socks:
            sock.sendall(_head(2000) + b"{")
        answers = [_read_until_closed(sock) for sock in socks]
    finally:
        for sock in socks:
            sock.close()
    assert {_status(data) for data, _ in answers} == {408}


def test_normal_requests_on_one_keep_alive_connection_still_work(port):
    body = json.dumps(rec_body()).encode()
    with _connect(port) as sock:
        for _ in range(3):
            sock.sendall(_head(len(body)) + body)
            data = b""
            while b"\r\n\r\n" not in data:
                data += sock.recv(65536)
            head, _, rest = data.partition(b"\r\n\r\n")
            length = int(
                next(
                    line.split(b":")[1]
                    for line in head.split(b"\r\n")
                    if line.lower().startswith(b"content-length")
                )
            )
            while len(rest) < length:
                rest += sock.recv(65536)
            assert _status(head) == 200, rest
            assert json.loads(rest)["event_id"]
