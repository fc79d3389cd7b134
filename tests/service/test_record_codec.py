"""The stored form of decision records (``service/store/record_codec.py``), on both stores.

Exact (the pmf's bits, the ids), compact (a budget per decision with the full catalog),
readable by a store instance that never registered the catalog, and backward compatible.
"""

from __future__ import annotations

import json
import random
import struct
from typing import Any

import orjson
import pytest

from bandit.catalog import default_catalog
from bandit.control import Group
from bandit.errors import InvalidInputError
from bandit.records import DecisionRecord
from service.store.record_codec import RecordCodec, catalog_fingerprint
from tests.helpers.stores import StoreFactory

CATALOG_IDS = [a.id for a in default_catalog()]
RECORD_BUDGET_BYTES = 6_144
"""Stored bytes allowed for one decision over the whole catalog (was 14.6 KB as JSON text)."""


def _record(eligible: list[str], seed: int = 0) -> DecisionRecord:
    rng = random.Random(seed)
    weights = [rng.random() for _ in eligible]
    total = sum(weights)
    pmf = tuple(w / total for w in weights)
    best = max(range(len(eligible)), key=lambda i: pmf[i])
    return DecisionRecord(
        event_id=f"e{seed:031d}",
        timestamp=1_767_225_600.123456 + seed,
        citizen_key="p_" + "ab" * 32,
        group=Group.TREATMENT,
        context={
            "target_group": "dagpenge",
            "age": 41,
            "education": "vocational",
            "weeks_unemployed": 30,
            "last_sector": "construction",
            "cv_welding": 1.0,
        },
        eligible=tuple(eligible),
        pmf=pmf,
        recommended=eligible[best],
        propensity=pmf[best],
        model_version="vw-00000042",
        policy="vw",
    )


def _stored_text(store: Any, event_id: str) -> bytes:
    if hasattr(store, "client"):
        return bytes(store.client.hget(store.keys.record(event_id), "json"))
    rows = store._query("SELECT record FROM decisions WHERE event_id = ?", (event_id,))  # noqa: SLF001
    return str(rows[0][0]).encode()


def test_the_full_catalog_round_trips_bit_exactly_within_the_budget(
    store_factory: StoreFactory,
) -> None:
    store = store_factory()
    fingerprint = store.register_catalog(CATALOG_IDS)
    assert fingerprint == catalog_fingerprint(CATALOG_IDS)
    eligible = list(reversed(CATALOG_IDS))  # any order, all offers
    record = _record(eligible, seed=1)
    store.put_decision(record, horizon_seconds=1e6)
    back = store.get_decision(record.event_id)
    assert back == record
    assert [struct.pack("<d", p) for p in back.pmf] == [struct.pack("<d", p) for p in record.pmf]
    stored = _stored_text(store, record.event_id)
    plain = json.dumps(record.to_dict(), sort_keys=True, separators=(",", ":")).encode()
    assert len(stored) <= RECORD_BUDGET_BYTES < len(plain) / 2, (len(stored), len(plain))
    # another process (learner, export) that never registered the catalog reads it
    other = store_factory()
    assert other.get_decision(record.event_id) == record
    # updates keep the compact form and the exact values
    store.record_assignment(record.event_id, eligible[0], "caseworker_judgement")
    assert other.get_decision(record.event_id).assigned == eligible[0]
    assert len(_stored_text(store, record.event_id)) <= RECORD_BUDGET_BYTES


def test_a_control_record_without_a_pmf_round_trips(store_factory: StoreFactory) -> None:
    import dataclasses

    store = store_factory()
    store.register_catalog(CATALOG_IDS)
    control = dataclasses.replace(
        _record(CATALOG_IDS, seed=8),
        group=Group.CONTROL,
        pmf=(),
        recommended=None,
        propensity=None,
    )
    store.put_decision(control, horizon_seconds=1e6)
    assert store_factory().get_decision(control.event_id) == control


def test_offers_outside_the_catalog_and_old_plain_records_are_kept(
    store_factory: StoreFactory,
) -> None:
    store = store_factory()
    store.register_catalog(CATALOG_IDS)
    foreign = _record(["NOT_IN_CATALOG", CATALOG_IDS[0]], seed=2)
    store.put_decision(foreign, horizon_seconds=1e6)
    assert store.get_decision(foreign.event_id) == foreign
    assert b'"NOT_IN_CATALOG"' in _stored_text(store, foreign.event_id)  # plain list kept
    codec = RecordCodec(lambda _: None)
    old = _record(CATALOG_IDS[:5], seed=3)
    text = json.dumps(old.to_dict(), sort_keys=True, separators=(",", ":"))
    assert codec.loads(text) == old  # records written before the compact form


def test_a_new_catalog_version_keeps_old_records_readable(store_factory: StoreFactory) -> None:
    store = store_factory()
    store.register_catalog(CATALOG_IDS)
    old = _record(CATALOG_IDS[10:40], seed=4)
    store.put_decision(old, horizon_seconds=1e6)
    store.register_catalog(["NEW_OFFER", *CATALOG_IDS])  # a catalog update shifts indices
    new = _record(["NEW_OFFER", CATALOG_IDS[10]], seed=5)
    store.put_decision(new, horizon_seconds=1e6)
    fresh = store_factory()
    assert fresh.get_decision(old.event_id) == old
    assert fresh.get_decision(new.event_id) == new


@pytest.mark.parametrize(
    ("change", "match"),
    [
        ({"catalog": "0" * 16}, "unknown catalog"),
        ({"eligible_ix": "!!"}, "Malformed"),
        ({"pmf_f8": "AAAA"}, "lengths disagree"),
    ],
)
def test_a_damaged_compact_record_is_a_clear_error(change: dict[str, str], match: str) -> None:
    codec = RecordCodec(lambda _: None)
    codec.use_catalog(CATALOG_IDS)
    data = orjson.loads(codec.dumps(_record(CATALOG_IDS[:3], seed=6)))
    data.update(change)
    with pytest.raises(InvalidInputError, match=match):
        codec.loads(orjson.dumps(data))


def test_the_stored_text_is_deterministic() -> None:
    """Stores compare texts for idempotent retries and compare-and-set: same record, same text."""
    a, b = RecordCodec(lambda _: None), RecordCodec(lambda _: None)
    a.use_catalog(CATALOG_IDS)
    b.use_catalog(CATALOG_IDS)
    record = _record(CATALOG_IDS[5:105], seed=7)
    assert a.dumps(record) == b.dumps(record) == a.dumps(a.loads(a.dumps(record)))
