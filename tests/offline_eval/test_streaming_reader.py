"""The streamed reader (offline_eval.streaming.LogFile.chunks): decoded on a reader thread,
chunks equal to the whole-file read, errors raised in the caller, the thread stopped early."""

from __future__ import annotations

import threading
from pathlib import Path

import numpy as np
import pyarrow.parquet as pq
import pytest

from offline_eval.errors import LoggedDataError
from offline_eval.logs import read_logs
from offline_eval.streaming import LogFile, evaluate_file
from simulator.logs import generate_logs


@pytest.fixture(scope="module")
def log_path(tmp_path_factory: pytest.TempPathFactory) -> Path:
    path = tmp_path_factory.mktemp("reader") / "log.parquet"
    table = pq.read_table(generate_logs(5000, seed=8).write(path))
    pq.write_table(table, path, row_group_size=1500)  # chunks cross row groups
    return path


def test_chunks_equal_the_whole_file(log_path: Path) -> None:
    whole = read_logs(log_path)
    chunks = list(LogFile.open(log_path).chunks(700, 5000, rows=1100))
    matrices = [c.logs.pmf for c in chunks]
    assert all(m is not None and m.flags["C_CONTIGUOUS"] for m in matrices)
    pmf = np.concatenate([m for m in matrices if m is not None])
    assert whole.pmf is not None and np.array_equal(pmf, whole.pmf[700:])
    assert np.array_equal(np.concatenate([c.logs.action for c in chunks]), whole.action[700:])
    assert np.array_equal(np.concatenate([c.eligible for c in chunks]), whole.pmf[700:] > 0)


def test_a_bad_row_late_in_the_file_is_raised_by_the_caller(log_path: Path, tmp_path: Path) -> None:
    table = pq.read_table(log_path)
    pmf = table.column("pmf_0").to_numpy().copy()
    pmf[4800] += 0.5  # that row no longer sums to 1
    bad = tmp_path / "bad.parquet"
    column = table.schema.get_field_index("pmf_0")
    pq.write_table(table.set_column(column, "pmf_0", [pmf]), bad, row_group_size=1500)
    before = threading.active_count()
    with pytest.raises(LoggedDataError, match="sum to 1"):
        evaluate_file(bad, policies=["uniform"], with_truth=False)
    assert threading.active_count() == before


def test_stopping_early_stops_the_reader(log_path: Path) -> None:
    before = threading.active_count()
    chunks = LogFile.open(log_path).chunks(0, 5000, rows=500)
    first = next(chunks)
    assert first.logs.n_rounds == 500
    chunks.close()  # type: ignore[attr-defined]
    assert threading.active_count() == before
