"""The request hot path's fast helpers agree with the straightforward forms they replaced."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from bandit.catalog import default_catalog
from bandit.engine import top_indices
from service.capacity import CapacityTracker
from service.guard import _has_non_finite
from service.guard import body_headers as _body_headers
from service.store.sqlite_capacity import SQLiteSeatLedger


def _slow_has_non_finite(body: bytes) -> bool:
    def reject(name: str) -> None:
        raise OverflowError(name)

    try:
        json.loads(body, parse_constant=reject)
    except OverflowError:
        return True
    except ValueError:
        return False
    return False


@pytest.mark.parametrize(
    "text",
    [
        '{"a": NaN}',
        '{"a": Infinity}',
        '{"a": [1, -Infinity]}',
        '{"a": "NaN", "b": "Infinity"}',
        '{"a": 1.5e308}',
        '{"a": 1}',
        "{not json NaN",
        "",
        "[]",
    ],
)
@pytest.mark.parametrize("encoding", ["utf-8", "utf-8-sig", "utf-16", "utf-16-le", "utf-32"])
def test_non_finite_check_matches_a_full_parse(text: str, encoding: str) -> None:
    body = text.encode(encoding)
    assert _has_non_finite(body) == _slow_has_non_finite(body)


def test_non_finite_check_really_detects_utf16_constants() -> None:
    # The fast path skips the parse only for bodies without NUL bytes; UTF-16 JSON has them.
    assert _has_non_finite('{"a": NaN}'.encode("utf-16"))


def test_body_headers_last_one_wins_and_names_are_case_insensitive() -> None:
    raw = [
        (b"content-type", b"text/plain"),
        (b"Content-Length", b"10"),
        (b"x-content-length", b"99"),
        (b"CONTENT-TYPE", b"application/json"),
    ]
    assert _body_headers(raw) == ("10", "application/json")
    assert _body_headers([]) == ("", "")


def test_top_indices_equals_sorting_everything() -> None:
    rng = np.random.default_rng(7)
    for trial in range(200):
        n = int(rng.integers(1, 60))
        # coarse values so that ties are common and broken by id
        pmf = [float(v) for v in rng.integers(0, 5, size=n) / 10.0]
        ids = [f"a{int(v):03d}" for v in rng.permutation(n)]
        k = int(rng.integers(1, 25))
        slow = sorted(range(n), key=lambda i: (-pmf[i], ids[i]))[:k]
        assert top_indices(pmf, ids, k) == slow, trial


def test_integer_tie_keys_order_as_the_padded_strings_did() -> None:
    """The shortlist's tie keys ``(j * step + offset) mod p`` are integers below ``p`` =
    1,000,003 (seven digits): they order exactly as their zero-padded 7-digit strings, which
    the shortlist used before, at the largest keys too."""
    from service.decide import _TIE_PRIME

    rng = np.random.default_rng(11)
    for trial in range(200):
        n = int(rng.integers(1, 400))
        step = int(rng.integers(1, _TIE_PRIME))
        offset = int(rng.choice([0, _TIE_PRIME - 1, int(rng.integers(0, _TIE_PRIME))]))
        keys = ((np.arange(n, dtype=np.int64) * step + offset) % _TIE_PRIME).tolist()
        padded = [f"{key:07d}" for key in keys]
        pmf = [float(v) for v in rng.integers(0, 3, size=n) / 10.0]  # mostly ties
        k = int(rng.integers(1, 12))
        assert top_indices(pmf, keys, k) == top_indices(pmf, padded, k), trial
        assert sorted(range(n), key=keys.__getitem__) == sorted(range(n), key=padded.__getitem__)


def test_capacity_seats_left_tracks_takes_and_returns_a_copy(tmp_path: Path) -> None:
    catalog = default_catalog()
    cap = CapacityTracker(catalog, SQLiteSeatLedger(tmp_path / "seats.sqlite3"))
    limited = [i for i in catalog if i.capacity is not None]
    assert limited
    expected = {i.id: i.capacity for i in limited}
    assert cap.seats_left() == expected
    first, second = limited[0].id, limited[-1].id
    for k in range(3):
        cap.take(f"e{k}", first)
    cap.take("e3", second)
    cap.take("e4", "not-a-capacity-offer")
    expected[first] = (expected[first] or 0) - 3
    expected[second] = (expected[second] or 0) - 1
    snapshot = cap.seats_left()
    assert snapshot == expected
    snapshot[first] = 1000  # the caller's copy, not the tracker's state
    assert cap.seats_left()[first] == expected[first]
    cap.close()
