"""Structured (one JSON object per line) logging for the service processes.

Configured by ``nbi serve`` only, never at import time. Log records carry pseudonyms and event
ids at most; the formatter also scrubs CPR-shaped numbers from every message as a last guard.
"""

from __future__ import annotations

import logging
import sys
import time
from typing import Any

from bandit.jsonsafe import dumps
from service.errors import scrub

_STANDARD = frozenset(logging.makeLogRecord({}).__dict__) | {"message", "asctime", "color_message"}


class JsonFormatter(logging.Formatter):
    """Format a record as one JSON line with its ``extra`` fields.

    Examples
    --------
    >>> import json
    >>> rec = logging.makeLogRecord({"msg": "decision %s", "args": ("e1",), "group": "control"})
    >>> json.loads(JsonFormatter().format(rec))["group"]
    'control'
    """

    def format(self, record: logging.LogRecord) -> str:
        """Render ``record``."""
        out: dict[str, Any] = {
            "ts": time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(record.created))
            + f".{int(record.msecs):03d}Z",
            "level": record.levelname,
            "logger": record.name,
            "msg": scrub(record.getMessage()),
        }
        for key, value in record.__dict__.items():
            if key not in _STANDARD and not key.startswith("_"):
                out[key] = scrub(value) if isinstance(value, str) else value
        if record.exc_info and record.exc_info[0] is not None:
            out["exc_type"] = record.exc_info[0].__name__
        return dumps(out, default=str)  # NaN/inf as null: every line stays valid JSON


def configure_logging(level: str = "INFO") -> None:
    """Send the ``nbi`` and ``uvicorn`` loggers to stderr as JSON lines."""
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(JsonFormatter())
    for name in ("nbi", "uvicorn", "uvicorn.error", "uvicorn.access"):
        logger = logging.getLogger(name)
        logger.handlers = [handler]
        logger.setLevel(level)
        logger.propagate = False


def uvicorn_log_config(level: str = "INFO") -> dict[str, Any]:
    """A ``logging.config`` dict for uvicorn worker processes (JSON lines on stderr)."""
    handler = {"class": "logging.StreamHandler", "formatter": "json", "stream": "ext://sys.stderr"}
    loggers = {
        name: {"handlers": ["default"], "level": level, "propagate": False}
        for name in ("nbi", "uvicorn", "uvicorn.error", "uvicorn.access")
    }
    return {
        "version": 1,
        "disable_existing_loggers": False,
        "formatters": {"json": {"()": "service.logs.JsonFormatter"}},
        "handlers": {"default": handler},
        "loggers": loggers,
    }
