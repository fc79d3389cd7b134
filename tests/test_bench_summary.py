"""The API benchmark's printed table (``bench/bench_api.py``) keeps its documented form."""

from __future__ import annotations

import doctest


def test_api_bench_summary_table_matches_its_example() -> None:
    from bench import bench_api

    tests = doctest.DocTestFinder().find(bench_api.summary_lines, "summary_lines")
    runner = doctest.DocTestRunner(optionflags=doctest.NORMALIZE_WHITESPACE)
    for test in tests:
        runner.run(test)
    results = runner.summarize(verbose=False)
    assert results.attempted > 0
    assert results.failed == 0
