"""uvicorn's httptools protocol with limits on slow and oversized requests.

uvicorn bounds neither the size of a request head (an 8 MB header was accepted) nor the time a
client may take to send it or its body (3,000 half-sent bodies were held open indefinitely).
:class:`GuardedHttpToolsProtocol` adds, per connection:

* **head size**: more than ``max_header_bytes`` before the blank line ending the headers is
  answered ``431`` and the connection closed (counted on the raw bytes, before the parser
  buffers them);
* **head time**: a connection must deliver a complete request head within
  ``header_timeout_seconds`` of connecting or of the start of a request, else ``408`` and close
  (an idle keep-alive connection is uvicorn's ``timeout_keep_alive`` as before);
* **body time**: the body must be complete ``body_timeout_seconds`` after its head, else
  ``408`` and close. If the app has already answered (it refused the request without reading
  the body), the connection is just closed.

``nbi serve`` runs uvicorn with ``http="service.http_protocol:GuardedHttpToolsProtocol"``; the
limits are the process's settings (``NBI_MAX_HEADER_BYTES``, ``NBI_HEADER_TIMEOUT_SECONDS``,
``NBI_BODY_TIMEOUT_SECONDS``). It relies on uvicorn's httptools implementation (pinned range in
``pyproject.toml``; ``tests/service/test_slow_clients.py`` runs it against real sockets).
"""

from __future__ import annotations

import asyncio
from dataclasses import dataclass
from functools import lru_cache
from typing import Any

from uvicorn.protocols.http.httptools_impl import HttpToolsProtocol

_END_OF_HEAD = b"\r\n\r\n"
_REASONS = {408: b"Request Timeout", 431: b"Request Header Fields Too Large"}


@dataclass(frozen=True, slots=True)
class ProtocolLimits:
    """Size and time limits of one request (see the module docstring)."""

    max_header_bytes: int
    header_timeout_seconds: float
    body_timeout_seconds: float


@lru_cache(maxsize=1)
def process_limits() -> ProtocolLimits:
    """The limits of this process, from its settings (read once)."""
    from service.config import get_settings

    settings = get_settings()
    return ProtocolLimits(
        settings.max_header_bytes, settings.header_timeout_seconds, settings.body_timeout_seconds
    )


def problem_bytes(code: int, detail: str) -> bytes:
    """A complete ``Connection: close`` HTTP/1.1 problem-JSON answer.

    Examples
    --------
    >>> problem_bytes(408, "slow").split(b"\\r\\n")[0]
    b'HTTP/1.1 408 Request Timeout'
    """
    reason = _REASONS[code]
    kind = reason.decode().lower().replace(" ", "-")
    body = (
        f'{{"type":"https://nbi.example/problems/{kind}","title":"{reason.decode()}",'
        f'"status":{code},"detail":"{detail}"}}'
    ).encode()
    head = (
        f"HTTP/1.1 {code} {reason.decode()}\r\ncontent-type: application/problem+json\r\n"
        f"content-length: {len(body)}\r\nconnection: close\r\n\r\n"
    ).encode()
    return head + body


class GuardedHttpToolsProtocol(HttpToolsProtocol):
    """:class:`HttpToolsProtocol` with head-size, head-time and body-time limits."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.limits = process_limits()
        self._in_head = True
        self._head_bytes = 0
        self._head_timer: asyncio.TimerHandle | None = None
        self._body_timer: asyncio.TimerHandle | None = None

    # -- connection ---------------------------------------------------------------------------

    def connection_made(self, transport: asyncio.Transport) -> None:  # type: ignore[override]
        super().connection_made(transport)
        self._arm_head_timer()

    def connection_lost(self, exc: Exception | None) -> None:
        self._cancel_timers()
        super().connection_lost(exc)

    def data_received(self, data: bytes) -> None:
        if self._in_head:
            end = data.find(_END_OF_HEAD)
            self._head_bytes += len(data) if end < 0 else end
            if self._head_bytes > self.limits.max_header_bytes:
                self._refuse(431, f"The request head exceeds {self.limits.max_header_bytes} bytes")
                return
        super().data_received(data)

    # -- parser callbacks ---------------------------------------------------------------------

    def on_message_begin(self) -> None:
        super().on_message_begin()
        if self._head_timer is None:
            self._arm_head_timer()

    def on_headers_complete(self) -> None:
        self._in_head = False
        self._cancel(self._head_timer)
        self._head_timer = None
        super().on_headers_complete()
        self._body_timer = self.loop.call_later(
            self.limits.body_timeout_seconds, self._body_timed_out
        )

    def on_message_complete(self) -> None:
        self._cancel(self._body_timer)
        self._body_timer = None
        self._in_head = True
        self._head_bytes = 0
        super().on_message_complete()

    # -- timeouts -----------------------------------------------------------------------------

    def _arm_head_timer(self) -> None:
        self._cancel(self._head_timer)
        self._head_timer = self.loop.call_later(
            self.limits.header_timeout_seconds, self._head_timed_out
        )

    def _head_timed_out(self) -> None:
        self._head_timer = None
        if self.cycle is not None and not self.cycle.response_complete:
            self.cycle.keep_alive = False  # a pipelined request is still being answered
            return
        self._refuse(408, "The request head was not complete in time")

    def _body_timed_out(self) -> None:
        self._body_timer = None
        if self.cycle is not None and not self.cycle.response_started:
            self._refuse(408, "The request body was not complete in time")
        elif not self.transport.is_closing():
            self.transport.close()  # answered already; stop reading the rest

    def _refuse(self, code: int, detail: str) -> None:
        self._cancel_timers()
        if self.transport.is_closing():
            return
        self.transport.write(problem_bytes(code, detail))
        self.transport.close()

    def _cancel_timers(self) -> None:
        self._cancel(self._head_timer)
        self._cancel(self._body_timer)
        self._head_timer = self._body_timer = None

    @staticmethod
    def _cancel(timer: asyncio.TimerHandle | None) -> None:
        if timer is not None:
            timer.cancel()
