"""``nbi evaluate`` at scale: wall time and peak memory on 1M- and 10M-round full-catalog logs.

Issue 12 item 4: a 10M-round log with the full catalog (K = 330 offers) and three named targets
(``uniform``, ``practice``, ``always:mentor``) must be evaluated in under 120 s with peak memory
under 4 GB, time growing linearly with the rounds. Each run is a separate ``nbi evaluate``
process; its peak RSS is the child's ``ru_maxrss`` (measured by a wrapper process that has no
other child).

The base log is simulated once by ``nbi simulate logs --offers-per-family 0`` (streamed in row
groups; its wall time and peak RSS are reported too) and cached in ``$NBI_BENCH_DIR`` (default
``/tmp/nbi_bench_evaluate``). Bigger logs repeat the base log's row groups (simulating 10M
rounds takes the simulator about an hour); they carry no ``.truth.npz`` sidecar, so every size
is evaluated the same way. ``--identity`` also compares the streamed point estimates with the
in-memory path (``read_logs`` + ``evaluate_named``) on the base log: it needs more than 20 GB at
1M full-catalog rounds, so use it with ``--quick`` (docs/decisions.md has the 1M, K = 11 check).

``python -m bench.bench_evaluate_scale [--quick] [--identity]``.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import time
from pathlib import Path

TARGETS = ("uniform", "practice", "always:mentor")
_WRAPPER = (
    "import json, resource, subprocess, sys, time\n"
    "t = time.perf_counter()\n"
    "p = subprocess.run(sys.argv[1:], stdout=subprocess.PIPE)\n"
    "s = time.perf_counter() - t\n"
    "u = resource.getrusage(resource.RUSAGE_CHILDREN)\n"
    "doc = {'rc': p.returncode, 'seconds': s, 'cpu': u.ru_utime + u.ru_stime, 'rss_kb': u.ru_maxrss}\n"
    "sys.stderr.write(json.dumps(doc) + '\\n')\n"
    "sys.stdout.buffer.write(p.stdout)\n"
)


def _measured(cmd: list[str]) -> tuple[dict[str, float], str]:
    """Run ``cmd`` in its own process; wall seconds, peak RSS (MB) and its stdout."""
    proc = subprocess.run(
        [sys.executable, "-c", _WRAPPER, *cmd], capture_output=True, text=True, check=False
    )
    stats = json.loads(proc.stderr.strip().splitlines()[-1])
    if stats["rc"] != 0:
        msg = f"{' '.join(cmd[:4])} ... failed ({stats['rc']}): {proc.stderr[-2000:]}"
        raise RuntimeError(msg)
    figures = {
        "seconds": round(stats["seconds"], 2),
        "cpu_seconds": round(stats["cpu"], 2),
        "peak_rss_mb": round(stats["rss_kb"] / 1024),
    }
    return figures, proc.stdout


def _nbi() -> list[str]:
    return [sys.executable, "-c", "from service.cli import main; main()"]


def _base_log(directory: Path, rounds: int) -> tuple[Path, dict[str, float] | None]:
    path = directory / f"base_{rounds}.parquet"
    if path.exists() and path.with_suffix("").with_suffix(".meta.json").exists():
        return path, None
    directory.mkdir(parents=True, exist_ok=True)
    cmd = [*_nbi(), "simulate", "logs", "--out", str(path), "--n-rounds", str(rounds)]
    cmd += ["--offers-per-family", "0", "--seed", "0", "--json"]
    stats, _ = _measured(cmd)
    return path, stats


def _tiled(base: Path, rounds: int, directory: Path) -> Path:
    """A log of ``rounds`` rows: the base log's row groups repeated, one group in memory."""
    import pyarrow.parquet as pq

    out = directory / f"tiled_{rounds}.parquet"
    meta = out.with_suffix("").with_suffix(".meta.json")
    if out.exists() and meta.exists():
        return out
    source = pq.ParquetFile(base)
    written = 0
    with pq.ParquetWriter(out, source.schema_arrow) as writer:
        while written < rounds:
            for g in range(source.num_row_groups):
                table = source.read_row_group(g)
                take = min(table.num_rows, rounds - written)
                writer.write_table(table.slice(0, take))
                written += take
                if written >= rounds:
                    break
    shutil.copyfile(base.with_suffix("").with_suffix(".meta.json"), meta)
    return out


def _evaluate(path: Path) -> tuple[dict[str, float], list[dict[str, object]]]:
    cmd = [*_nbi(), "evaluate", str(path), "--json"]
    for target in TARGETS:
        cmd += ["--policy", target]
    stats, out = _measured(cmd)
    return stats, json.loads(out)["evaluations"]


def _identity(base: Path, streamed: list[dict[str, object]]) -> float:
    """Largest difference between the streamed and in-memory point estimates on ``base``."""
    import numpy as np

    from offline_eval.cli import _raw_context_columns
    from offline_eval.evaluation import evaluate_named
    from offline_eval.logs import read_frame, read_logs

    logs = read_logs(base)
    frame = read_frame(base)
    contexts = frame[_raw_context_columns(frame)]
    del frame
    mem = evaluate_named(logs, contexts, list(TARGETS))
    worst = 0.0
    for a, b in zip(mem, streamed, strict=True):
        for ea, eb in zip(a.estimates, b["estimates"], strict=True):  # type: ignore[arg-type]
            worst = max(worst, abs(ea.value - float(eb["value"])))
    return float(np.float64(worst))


def run(quick: bool = False, identity: bool = False) -> dict[str, object]:
    directory = Path(os.environ.get("NBI_BENCH_DIR", "/tmp/nbi_bench_evaluate"))  # noqa: S108
    base_rounds = 20_000 if quick else 1_000_000
    sizes = (50_000, 200_000) if quick else (1_000_000, 10_000_000)
    load = [round(x, 2) for x in os.getloadavg()]
    base, generated = _base_log(directory, base_rounds)
    rows: list[dict[str, object]] = []
    for n in sizes:
        path = _tiled(base, n, directory)
        start = time.perf_counter()
        stats, evaluations = _evaluate(path)
        per_round_us = stats["seconds"] / n * 1e6
        rows.append(
            {
                "rounds": n,
                **stats,
                "us_per_round": round(per_round_us, 2),
                "targets": len(evaluations),
                "wall": round(time.perf_counter() - start, 2),
            }
        )
    first, last = rows[0], rows[-1]
    growth = (float(last["seconds"]) / float(first["seconds"])) / (
        int(last["rounds"]) / int(first["rounds"])
    )
    cpu_growth = (float(last["cpu_seconds"]) / float(first["cpu_seconds"])) / (
        int(last["rounds"]) / int(first["rounds"])
    )
    out: dict[str, object] = {
        "catalog_actions": _n_actions(base),
        "targets": list(TARGETS),
        "base_rounds": base_rounds,
        "generation": generated,
        "runs": rows,
        "time_ratio_over_rounds_ratio": round(growth, 3),
        "cpu_ratio_over_rounds_ratio": round(cpu_growth, 3),
        "load_average": load,
        "target_seconds_10m": 120,
        "target_peak_rss_mb": 4096,
    }
    print(f"catalog K = {out['catalog_actions']}, targets: {', '.join(TARGETS)} (robust CI)")
    if generated:
        print(
            f"generating the {base_rounds:,}-round base log: {generated['seconds']} s, "
            f"peak RSS {generated['peak_rss_mb']} MB"
        )
    print(f"load average at the start: {out['load_average']}")
    print(f"{'rounds':>12} {'seconds':>9} {'CPU s':>9} {'peak RSS MB':>12} {'us/round':>9}")
    for r in rows:
        print(
            f"{int(r['rounds']):>12,} {r['seconds']:>9} {r['cpu_seconds']:>9} "
            f"{r['peak_rss_mb']:>12} {r['us_per_round']:>9}"
        )
    print(
        f"time ratio / rounds ratio ({sizes[0]:,} -> {sizes[-1]:,}): wall {growth:.3f}, "
        f"CPU {cpu_growth:.3f} (1 = linear)"
    )
    if identity:
        _, base_eval = _evaluate(base)
        worst = _identity(base, base_eval)
        out["identity_max_abs_diff"] = worst
        print(f"streamed vs in-memory point estimates on the base log: max |diff| = {worst:.3g}")
    return out


def _n_actions(base: Path) -> int:
    meta = json.loads(base.with_suffix("").with_suffix(".meta.json").read_text())
    return len(meta["action_ids"])


if __name__ == "__main__":
    run(quick="--quick" in sys.argv, identity="--identity" in sys.argv)
