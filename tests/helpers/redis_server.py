"""A private ``redis-server`` for tests: free port, temp dir, optional AOF, kill -9 and restart.

Use :class:`RedisServer` directly, or build pytest fixtures with :func:`redis_server_fixture`
(the API engineer's ``tests/service/conftest.py`` imports it)::

    redis_server = redis_server_fixture(scope="session")

    @pytest.fixture
    def redis_url(redis_server):
        redis_server.flush()
        return redis_server.url

``KEYS`` is renamed away on every private server, so any production path that used it fails.
"""

from __future__ import annotations

import os
import shutil
import signal
import socket
import subprocess
import tempfile
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
import redis


def free_port() -> int:
    """A TCP port that is free on 127.0.0.1 right now."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def redis_server_binary() -> str:
    """Path of ``redis-server``; fail loudly (not skip) when it is missing."""
    path = shutil.which("redis-server")
    if path is None:
        msg = "redis-server not found: run `make redis-bin` (apt-get install redis-server)"
        raise RuntimeError(msg)
    return path


class _PortTakenError(RuntimeError):
    """redis-server exited at start (typically: the port was taken meanwhile)."""


class RedisServer:
    """One private redis-server process.

    Parameters
    ----------
    directory
        Working directory (AOF files live here); a temp dir when ``None``.
    appendonly
        Enable AOF with ``appendfsync always`` (durable once a write is acknowledged).
    port
        TCP port; a free one when ``None``.
    """

    def __init__(
        self, directory: Path | None = None, *, appendonly: bool = False, port: int | None = None
    ) -> None:
        self._own_dir = directory is None
        self.directory = Path(directory or tempfile.mkdtemp(prefix="nbi-redis-"))
        self.appendonly = appendonly
        self._auto_port = port is None
        self._started = False
        self.port = port or free_port()
        self.process: subprocess.Popen[bytes] | None = None

    @property
    def url(self) -> str:
        """``redis://127.0.0.1:<port>/0``."""
        return f"redis://127.0.0.1:{self.port}/0"

    def command(self) -> list[str]:
        """The redis-server command line."""
        cmd = [
            redis_server_binary(),
            "--port",
            str(self.port),
            "--bind",
            "127.0.0.1",
            "--dir",
            str(self.directory),
            "--save",
            "",
            "--protected-mode",
            "no",
            "--rename-command",
            "KEYS",
            "",
            "--loglevel",
            "warning",
        ]
        if self.appendonly:
            cmd += ["--appendonly", "yes", "--appendfsync", "always"]
        else:
            cmd += ["--appendonly", "no"]
        return cmd

    def start(self, timeout: float = 10.0) -> RedisServer:
        """Start the server (again, on the same port and dir) and wait until it answers.

        On the first start with an automatically chosen port, a port taken in the meantime
        (another test process) is replaced by a new free one, up to three times.
        """
        for attempt in range(3):
            try:
                self._start_once(timeout)
            except _PortTakenError:
                if self._started or not self._auto_port or attempt == 2:  # noqa: PLR2004
                    raise
                self.port = free_port()
            else:
                self._started = True
                return self
        return self

    def _start_once(self, timeout: float) -> None:
        log = (self.directory / "redis.log").open("ab")
        self.process = subprocess.Popen(self.command(), stdout=log, stderr=log)
        log.close()
        deadline = time.monotonic() + timeout
        client = redis.Redis(port=self.port, socket_connect_timeout=0.2, socket_timeout=1.0)
        try:
            while True:
                if self.process.poll() is not None:
                    msg = f"redis-server on port {self.port} exited with {self.process.returncode}"
                    raise _PortTakenError(msg)
                try:
                    # answered, and by our process (not another test's server on this port)
                    if client.info("server")["process_id"] == self.process.pid:
                        return
                except redis.exceptions.BusyLoadingError:
                    pass
                except redis.exceptions.ConnectionError:
                    pass
                if time.monotonic() > deadline:
                    msg = f"redis-server on port {self.port} did not answer in {timeout} s"
                    raise RuntimeError(msg)
                time.sleep(0.02)
        finally:
            client.close()

    def client(self) -> redis.Redis:
        """A plain client (no retries) for assertions."""
        return redis.Redis(port=self.port, socket_timeout=5.0)

    def flush(self) -> None:
        """Empty the database."""
        c = self.client()
        try:
            c.flushall()
        finally:
            c.close()

    def kill(self) -> None:
        """``kill -9`` the server (no shutdown, no final save)."""
        if self.process is not None and self.process.poll() is None:
            os.kill(self.process.pid, signal.SIGKILL)
            self.process.wait(timeout=10)
        self.process = None

    def stop(self) -> None:
        """Terminate the server and remove its temp dir if this object created it."""
        if self.process is not None and self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(timeout=5)
            except subprocess.TimeoutExpired:
                self.kill()
        self.process = None
        if self._own_dir:
            shutil.rmtree(self.directory, ignore_errors=True)

    def __enter__(self) -> RedisServer:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()


def redis_server_fixture(
    *, scope: Any = "session", appendonly: bool = False
) -> Callable[..., Iterator[RedisServer]]:
    """Build a pytest fixture that yields a started private :class:`RedisServer`."""

    @pytest.fixture(scope=scope)
    def _redis_server() -> Iterator[RedisServer]:
        server = RedisServer(appendonly=appendonly).start()
        try:
            yield server
        finally:
            server.stop()

    return _redis_server
