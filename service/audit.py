"""The audit trail: an append-only, tamper-evident log of who did what (hash chain).

Each entry holds its sequence number, time, actor (an API key *id*, never the key), role,
action, target and a small detail object, plus ``prev`` (the hash of the entry before it;
64 zeros for the first) and ``hash``: the SHA-256 of the entry's canonical JSON without
``hash``. Changing an entry breaks its own hash; removing one breaks the next entry's ``prev``
and the sequence; removing the newest is caught by the head (last sequence and hash) that each
append stores beside the entries. :meth:`AuditTrail.verify` names the first bad entry.

Both stores keep the trail (``service/store/sqlite_audit.py``: a table in the store's SQLite
file, triggers refuse updates and deletes; ``service/store/redis_audit.py``: a Redis list and a
head key, appends guarded by ``WATCH``). Callers::

    trail.append(actor_key_id, role, action, target, detail)

Audited actions (``ACTIONS``): ``assignment`` and ``outcome`` (target: the event id; detail:
whether it changed anything, never the content), ``erasure``, ``retention``, ``export`` and
``config`` (at start-up: a settings fingerprint without secrets), plus whatever the model
lifecycle adds (``approve``, ``rollback``, ``mode``, ``kill_switch``). An entry never holds a
pseudonym, a raw id or a protected attribute: it must survive erasure without defeating it.
"""

from __future__ import annotations

import hashlib
import json
import time
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Protocol

from bandit.errors import InvalidInputError
from bandit.privacy import looks_like_cpr

if TYPE_CHECKING:
    from fastapi import Request

    from service.config import Settings

GENESIS = "0" * 64
"""``prev`` of the first entry."""
SYSTEM_ACTOR = "system"
"""Actor (and role) of entries the service writes itself (start-up, retention)."""
ACTIONS = (
    "assignment",
    "outcome",
    "erasure",
    "retention",
    "export",
    "config",
    "approve",
    "rollback",
    "mode",
    "kill_switch",
)
"""Known actions; others are accepted (lower-case words) so new features need no edit here."""
_MAX_FIELD = 200


def canonical_json(data: Mapping[str, Any]) -> str:
    """Sorted keys, no spaces, ASCII: the bytes the hashes are taken over.

    Examples
    --------
    >>> canonical_json({"b": 1, "a": [1.5, "x"]})
    '{"a":[1.5,"x"],"b":1}'
    """
    return json.dumps(data, sort_keys=True, separators=(",", ":"), ensure_ascii=True)


def _sha256(text: str) -> str:
    return hashlib.sha256(text.encode("ascii")).hexdigest()


@dataclass(frozen=True, slots=True)
class AuditEntry:
    """One sealed entry of the trail."""

    seq: int
    at: float
    actor: str
    role: str
    action: str
    target: str
    detail: Mapping[str, Any]
    prev: str
    hash: str

    def body(self) -> dict[str, Any]:
        """Every field except ``hash`` (what ``hash`` is computed over)."""
        return {
            "seq": self.seq,
            "at": self.at,
            "actor": self.actor,
            "role": self.role,
            "action": self.action,
            "target": self.target,
            "detail": dict(self.detail),
            "prev": self.prev,
        }

    def to_json(self) -> str:
        """The stored form: canonical JSON with ``hash``."""
        return canonical_json({**self.body(), "hash": self.hash})

    @classmethod
    def from_json(cls, text: str) -> AuditEntry:
        """Parse a stored entry; :class:`ValueError` when it is not one."""
        data = json.loads(text)
        if not isinstance(data, dict):
            msg = "not a JSON object"
            raise ValueError(msg)  # noqa: TRY004 (a parse error, reported as one line)
        return cls(
            seq=int(data["seq"]),
            at=float(data["at"]),
            actor=str(data["actor"]),
            role=str(data["role"]),
            action=str(data["action"]),
            target=str(data["target"]),
            detail=dict(data["detail"]),
            prev=str(data["prev"]),
            hash=str(data["hash"]),
        )


def seal(
    seq: int,
    prev: str,
    *,
    at: float,
    actor: str,
    role: str,
    action: str,
    target: str,
    detail: Mapping[str, Any],
) -> AuditEntry:
    """The entry with these fields and its hash.

    Examples
    --------
    >>> e = seal(1, GENESIS, at=0.0, actor="k_1", role="admin", action="export", target="x",
    ...          detail={})
    >>> e.hash == _sha256(canonical_json(e.body())), len(e.hash)
    (True, 64)
    """
    draft = AuditEntry(seq, at, actor, role, action, target, dict(detail), prev, "")
    return AuditEntry(
        seq,
        at,
        actor,
        role,
        action,
        target,
        dict(detail),
        prev,
        _sha256(canonical_json(draft.body())),
    )


class AuditLog(Protocol):
    """Storage of the trail (one per store backend)."""

    def append(self, make: Callable[[int, str], AuditEntry]) -> AuditEntry:
        """Atomically: read the head, store ``make(next_seq, head_hash)`` and the new head."""

    def stored(self) -> Iterator[str]:
        """The stored entries (canonical JSON), oldest first."""

    def head(self) -> tuple[int, str] | None:
        """``(seq, hash)`` of the newest entry as the last append recorded it."""

    def close(self) -> None:
        """Release connections."""


@dataclass(frozen=True, slots=True)
class Verification:
    """The result of :meth:`AuditTrail.verify`: entries checked and the first problem."""

    entries: int
    bad_seq: int | None = None
    problem: str | None = None

    @property
    def ok(self) -> bool:
        """True when the whole chain checks out."""
        return self.problem is None

    def line(self) -> str:
        """One line for people and scripts."""
        if self.ok:
            return f"audit trail intact: {self.entries} entries"
        return f"audit trail broken at entry {self.bad_seq}: {self.problem}"


def _check_text(name: str, value: str) -> None:
    if not value or len(value) > _MAX_FIELD:
        msg = f"audit {name} must be 1-{_MAX_FIELD} characters"
        raise InvalidInputError(msg)
    if looks_like_cpr(value):
        msg = f"audit {name} must not hold a CPR number"
        raise InvalidInputError(msg)


class AuditTrail:
    """Append to and verify one audit log.

    Parameters
    ----------
    log
        The backend (:func:`open_audit_log`).
    clock
        Time source (Unix seconds).

    Examples
    --------
    >>> import tempfile, pathlib
    >>> from service.store.sqlite_audit import SQLiteAuditLog
    >>> with tempfile.TemporaryDirectory() as d:
    ...     trail = AuditTrail(SQLiteAuditLog(pathlib.Path(d) / "a.sqlite3"))
    ...     e = trail.append("k_0a1b", "admin", "export", "decisions", {"rows": 3})
    ...     result = trail.verify()
    ...     trail.close()
    >>> e.seq, e.prev == GENESIS, result.line()
    (1, True, 'audit trail intact: 1 entries')
    """

    def __init__(self, log: AuditLog, clock: Callable[[], float] = time.time) -> None:
        self.log = log
        self.clock = clock

    def append(
        self,
        actor_key_id: str,
        role: str,
        action: str,
        target: str,
        detail: Mapping[str, Any] | None = None,
    ) -> AuditEntry:
        """Append one entry and return it (sealed, chained to the newest one).

        ``actor_key_id`` is an API key id (:func:`service.config.api_key_id`) or
        :data:`SYSTEM_ACTOR`; ``detail`` must be small JSON without personal data (it is
        refused when a value looks like a CPR number).
        """
        for name, value in (("actor", actor_key_id), ("role", role), ("action", action)):
            _check_text(name, value)
        _check_text("target", target)
        data = dict(detail or {})
        text = canonical_json(data)
        if len(text) > 4 * _MAX_FIELD * 10 or looks_like_cpr(text):
            msg = "audit detail must be small and hold no CPR number"
            raise InvalidInputError(msg)
        at = float(self.clock())
        return self.log.append(
            lambda seq, prev: seal(
                seq,
                prev,
                at=at,
                actor=actor_key_id,
                role=role,
                action=action,
                target=target,
                detail=data,
            )
        )

    def entries(self) -> Iterator[AuditEntry]:
        """Every entry, oldest first (unverified; see :meth:`verify`)."""
        for text in self.log.stored():
            yield AuditEntry.from_json(text)

    def verify(self) -> Verification:
        """Walk the chain; the first entry that is malformed, changed, out of sequence or not
        linked to its predecessor (or a missing newest entry) is reported."""
        prev, expected, count = GENESIS, 1, 0
        for text in self.log.stored():
            try:
                entry = AuditEntry.from_json(text)
            except (ValueError, KeyError, TypeError):
                return Verification(count, expected, "not a valid entry")
            if entry.seq != expected:
                return Verification(
                    count, expected, f"entry {expected} is missing (found {entry.seq} next)"
                )
            if _sha256(canonical_json(entry.body())) != entry.hash or text != entry.to_json():
                return Verification(count, entry.seq, "contents changed (hash mismatch)")
            if entry.prev != prev:
                return Verification(count, entry.seq, "not linked to the previous entry")
            prev, expected, count = entry.hash, expected + 1, count + 1
        head = self.log.head()
        if head is not None and (head[0] != count or head[1] != prev):
            return Verification(
                count, count + 1, f"entries after {count} are missing (head is entry {head[0]})"
            )
        return Verification(count)

    def close(self) -> None:
        """Release the backend."""
        self.log.close()


def open_audit_log(settings: Settings) -> AuditLog:
    """The audit log of the configured store (same SQLite file, or same Redis and prefix)."""
    if settings.store == "redis":
        from service.store.redis_audit import RedisAuditLog

        return RedisAuditLog(settings.redis_url, prefix=settings.redis_prefix)
    from service.store.sqlite_audit import SQLiteAuditLog

    return SQLiteAuditLog(settings.sqlite_path)


def open_audit_trail(settings: Settings) -> AuditTrail:
    """:class:`AuditTrail` over :func:`open_audit_log`."""
    return AuditTrail(open_audit_log(settings))


def settings_fingerprint(settings: Settings) -> dict[str, Any]:
    """What the start-up ``config`` entry records: a SHA-256 over every setting except the
    secrets (pseudonym key, experiment salt: left out, not hashed) and the API key hashes
    (only their ids), plus a few settings worth reading directly.

    Examples
    --------
    >>> from service.config import Settings
    >>> a = settings_fingerprint(Settings(_env_file=None))
    >>> b = settings_fingerprint(Settings(_env_file=None, control_share=0.3))
    >>> a["fingerprint"] != b["fingerprint"], "pseudonym_key" in str(a)
    (True, False)
    """
    from service.config import api_key_id

    data = settings.model_dump(
        mode="json", exclude={"pseudonym_key", "experiment_salt", "api_keys"}
    )
    key_ids = {
        role: sorted(api_key_id(e) for e in entries) for role, entries in settings.api_keys.items()
    }
    data["api_key_ids"] = key_ids
    return {
        "fingerprint": _sha256(canonical_json(data)),
        "environment": settings.environment,
        "store": settings.store,
        "policy": settings.policy,
        "control_share": settings.control_share,
        "retention_months": settings.retention_months,
        "api_key_ids": key_ids,
    }


def audit_request(
    request: Request, action: str, target: str, detail: Mapping[str, Any] | None = None
) -> AuditEntry | None:
    """Append an entry for the authorised caller of ``request`` (its key id and role, set by
    :func:`service.auth.authorize`); ``None`` when the app has no trail."""
    trail: AuditTrail | None = getattr(request.app.state, "audit", None)
    if trail is None:
        return None
    actor = getattr(request.state, "api_key_id", None) or "anonymous"
    role = getattr(request.state, "role", None) or "none"
    return trail.append(actor, role, action, target, detail)
