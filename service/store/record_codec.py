"""The stored form of a decision record: compact, exact, and readable without the catalog file.

A record's eligible ids and pmf were JSON text: with the 330-offer catalog 14.6 KB per
decision, most of it offer ids (``"CLASSROOM_TRAINING_001"``) and 17-digit probabilities. The
stored form keeps every other field as JSON and writes

* ``eligible_ix``: the eligible offers as little-endian ``uint16`` indices into a catalog,
  base64; ``catalog``: that catalog's fingerprint (SHA-256 of its ordered ids). Each store keeps
  the id list of every catalog it has seen under its fingerprint (written once, holds no
  personal data), so any process (learner, export, erasure, a later catalog version) decodes
  old records without the catalog file;
* ``pmf_f8``: the probabilities as little-endian IEEE-754 doubles, base64: bit-exact, so the
  logged propensity is the one the policy used (empty for the control arm and the kill
  switch, whose records have no pmf).

A record naming an offer outside the registered catalog (tests, hand-made records), or written
before a catalog was registered, keeps the plain lists; both forms are read. About 4.5 KB per
330-offer decision (the context, ids and times are unchanged JSON). Serialised with ``orjson``
(sorted keys, compact), so the same record always gives the same text: the stores compare
texts for idempotent retries and compare-and-set updates.
"""

from __future__ import annotations

import base64
import hashlib
import struct
import threading
from collections.abc import Callable, Sequence
from typing import Any

import orjson

from bandit.errors import InvalidInputError
from bandit.records import DecisionRecord

CatalogLookup = Callable[[str], Sequence[str] | None]
"""Fetch the ordered ids of a catalog by fingerprint from the store (``None``: unknown)."""

_MAX_INDEX = 65_535


def catalog_fingerprint(ids: Sequence[str]) -> str:
    """Fingerprint of an ordered id list (first 16 hex digits of its SHA-256).

    Examples
    --------
    >>> catalog_fingerprint(["A", "B"]) == catalog_fingerprint(["A", "B"])
    True
    >>> catalog_fingerprint(["A", "B"]) == catalog_fingerprint(["B", "A"])
    False
    """
    return hashlib.sha256("\n".join(ids).encode()).hexdigest()[:16]


def catalog_text(ids: Sequence[str]) -> str:
    """The stored form of a catalog's id list (JSON array)."""
    return orjson.dumps(list(ids)).decode()


class RecordCodec:
    """Encode and decode decision records for a store.

    Parameters
    ----------
    lookup
        Reads a catalog's ids from the store by fingerprint (for records of catalogs this
        process has not registered).

    Examples
    --------
    >>> from bandit.control import Group
    >>> codec = RecordCodec(lambda fp: None)
    >>> fp = codec.use_catalog(["A", "B", "C"])
    >>> record = DecisionRecord(
    ...     event_id="e1", timestamp=1.0, citizen_key="p_x", group=Group.TREATMENT,
    ...     context={"age": 30}, eligible=("C", "A"), pmf=(0.7, 0.3), recommended="C",
    ...     propensity=0.7, model_version="m", policy="vw")
    >>> text = codec.dumps(record)
    >>> '"eligible_ix"' in text and '"eligible"' not in text
    True
    >>> codec.loads(text) == record
    True
    """

    def __init__(self, lookup: CatalogLookup) -> None:
        self.lookup = lookup
        self._ids: dict[str, tuple[str, ...]] = {}
        self._index: dict[str, int] = {}
        self._fingerprint: str | None = None
        self._lock = threading.Lock()

    @property
    def fingerprint(self) -> str | None:
        """Fingerprint of the catalog records are encoded against (``None``: plain lists)."""
        return self._fingerprint

    def use_catalog(self, ids: Sequence[str]) -> str:
        """Encode new records against ``ids`` (the store has persisted them); its fingerprint."""
        ordered = tuple(ids)
        if len(ordered) > _MAX_INDEX + 1 or len(set(ordered)) != len(ordered):
            msg = "A catalog for the record codec needs at most 65,536 distinct ids"
            raise InvalidInputError(msg)
        fp = catalog_fingerprint(ordered)
        with self._lock:
            self._ids[fp] = ordered
            self._index = {a: i for i, a in enumerate(ordered)}
            self._fingerprint = fp
        return fp

    def dumps(self, record: DecisionRecord) -> str:
        """The stored text of ``record`` (deterministic)."""
        data = record.to_dict()
        fp = self._fingerprint
        if fp is not None:
            index = self._index
            try:
                positions = [index[a] for a in record.eligible]
            except KeyError:  # an offer outside the catalog: keep the plain list
                positions = None
            if positions is not None:
                n = len(positions)
                del data["eligible"], data["pmf"]
                data["catalog"] = fp
                data["eligible_ix"] = base64.b64encode(struct.pack(f"<{n}H", *positions)).decode()
                m = len(record.pmf)  # 0 for the control arm and the kill switch: no pmf
                data["pmf_f8"] = base64.b64encode(struct.pack(f"<{m}d", *record.pmf)).decode()
        return orjson.dumps(data, option=orjson.OPT_SORT_KEYS).decode()

    def loads(self, text: str | bytes) -> DecisionRecord:
        """The record stored as ``text`` (either form); :class:`InvalidInputError` if malformed."""
        try:
            data: dict[str, Any] = orjson.loads(text)
        except orjson.JSONDecodeError as exc:
            msg = f"Malformed decision record: {exc}"
            raise InvalidInputError(msg) from exc
        if "eligible_ix" in data:
            data = self._expand(data)
        return DecisionRecord.from_dict(data)

    def _expand(self, data: dict[str, Any]) -> dict[str, Any]:
        fp = str(data.pop("catalog", ""))
        ids = self._catalog(fp)
        try:
            raw_ix = base64.b64decode(data.pop("eligible_ix"), validate=True)
            raw_pmf = base64.b64decode(data.pop("pmf_f8"), validate=True)
            n, m = len(raw_ix) // 2, len(raw_pmf) // 8
            if len(raw_ix) != 2 * n or len(raw_pmf) != 8 * m or m not in (0, n):
                msg = "eligible_ix and pmf_f8 lengths disagree"
                raise ValueError(msg)
            data["eligible"] = [ids[i] for i in struct.unpack(f"<{n}H", raw_ix)]
            data["pmf"] = list(struct.unpack(f"<{m}d", raw_pmf))
        except (ValueError, KeyError, IndexError, TypeError) as exc:
            msg = f"Malformed decision record: {exc}"
            raise InvalidInputError(msg) from exc
        return data

    def _catalog(self, fp: str) -> tuple[str, ...]:
        ids = self._ids.get(fp)
        if ids is None:
            found = self.lookup(fp)
            if found is None:
                msg = f"Malformed decision record: unknown catalog {fp!r}"
                raise InvalidInputError(msg)
            ids = tuple(found)
            with self._lock:
                self._ids[fp] = ids
        return ids
