"""Run every benchmark module ``bench/bench_*.py`` and write ``bench/results/<name>.json``.

Each module exposes ``run(quick: bool = False) -> dict[str, object]`` which measures our code
and a reference in the same run and returns the figures (ratios included); it prints its own
table. ``python -m bench.run_all [names...] [--quick]``.
"""

from __future__ import annotations

import importlib
import sys
import time
from pathlib import Path

from bandit.jsonsafe import dumps

HERE = Path(__file__).parent


def main(argv: list[str] | None = None) -> int:
    args = sys.argv[1:] if argv is None else argv
    quick = "--quick" in args
    wanted = [a for a in args if not a.startswith("--")]
    modules = sorted(p.stem for p in HERE.glob("bench_*.py"))
    if wanted:
        modules = [m for m in modules if m.removeprefix("bench_") in wanted or m in wanted]
    out_dir = HERE / "results"
    out_dir.mkdir(exist_ok=True)
    failures = 0
    for name in modules:
        print(f"\n=== {name} ===", flush=True)
        start = time.perf_counter()
        try:
            result = importlib.import_module(f"bench.{name}").run(quick=quick)
        except Exception as exc:  # noqa: BLE001 (report and go on with the other benchmarks)
            print(f"FAILED: {type(exc).__name__}: {exc}", flush=True)
            failures += 1
            continue
        result["wall_seconds"] = round(time.perf_counter() - start, 2)
        (out_dir / f"{name}.json").write_text(dumps(result, indent=2, default=str))
        print(f"-> bench/results/{name}.json", flush=True)
    return 1 if failures else 0


if __name__ == "__main__":
    raise SystemExit(main())
