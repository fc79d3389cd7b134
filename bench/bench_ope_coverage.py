"""Coverage of the 95 % OPE intervals per named target over many simulator seeds.

For each seed the simulator writes a historical log (practice as usual with a 0.05 exploration
mass, 11 family-level arms, 10,000 rounds); every named target is trained on the first half
(``vw``) or defined directly (``uniform``, ``always:<family>``) and evaluated on the second half,
whose exact true value the simulator knows. Per (target, estimator) the share of seeds whose
interval covers the truth is reported for the ``robust`` interval (the default: variance floor
from the known logger and Student's t with the effective degrees of freedom) beside the
textbook ``analytic`` one, with a Wilson 95 % interval for the share and the mean ESS.

DM is reported but carries no coverage claim: its interval ignores the reward model's bias.
``python -m bench.run_all ope_coverage`` (``--quick``: 20 seeds); ``NBI_COVERAGE_SEEDS`` sets
the number of seeds (default 300: at 100 one pair's coverage, 0.92, was within sampling
noise of 0.95; a Wilson interval over 300 seeds is about +-0.025 wide).
"""

from __future__ import annotations

import math
import os
from concurrent.futures import ProcessPoolExecutor
from dataclasses import dataclass
from statistics import NormalDist
from typing import TYPE_CHECKING, Any

import numpy as np

if TYPE_CHECKING:
    from offline_eval.logs import LoggedBandit

TARGETS = (
    "uniform",
    "vw",
    "always:private_internship",
    "always:private_wage_subsidy",
    "always:public_wage_subsidy",
    "always:mentor",
    "always:job_search_course",
    "always:classroom_training",
)
N_ROUNDS = 10_000
CLAIM = 0.93


@dataclass(frozen=True)
class SeedLogs:
    """One seed's simulator log split in half: targets train on ``train`` (context ``records``
    of its rounds) and are evaluated on ``test``, whose exact expected rewards are ``truth``."""

    train: LoggedBandit
    test: LoggedBandit
    truth: np.ndarray
    train_records: list[dict[str, Any]]
    test_records: list[dict[str, Any]]

    def target(self, name: str) -> tuple[np.ndarray, float]:
        """The named target's probabilities on the test half and its true value there."""
        from offline_eval.targets import always_family, policy_target_probs

        if name.startswith("always:"):
            probs, _ = always_family(self.test, name.removeprefix("always:"))
        else:
            probs = policy_target_probs(
                name, self.train, self.test, self.train_records, self.test_records
            )
        return probs, float(np.mean(np.sum(probs * self.truth, axis=1)))


def seed_logs(seed: int) -> SeedLogs:
    """The simulator's historical log of ``seed`` (``N_ROUNDS`` rounds), split in half."""
    from offline_eval.logs import LoggedBandit
    from simulator.logs import generate_logs

    sim = generate_logs(N_ROUNDS, seed=5000 + seed)
    logs = LoggedBandit.from_dataframe(
        sim.frame,
        context_columns=sim.context_columns,
        action_features=[{"family": f} for f in sim.action_families],
    )
    train, test = logs.split(0.5)
    cut = train.n_rounds
    records = [
        {str(k): v for k, v in row.items()}
        for row in sim.frame[list(sim.context_columns)].to_dict(orient="records")
    ]
    return SeedLogs(train, test, sim.expected_reward_matrix[cut:], records[:cut], records[cut:])


def _one_seed(seed: int) -> list[tuple[str, str, float, bool, bool, float, float]]:
    from offline_eval.ci import CIConfig, interval
    from offline_eval.evaluation import build_estimators

    split = seed_logs(seed)
    test = split.test
    estimators = build_estimators(None, test)
    out = []
    for target in TARGETS:
        probs, true_value = split.target(target)
        w = test.importance_weights(probs)
        ess = float(w.sum() ** 2 / (w * w).sum()) if (w * w).sum() > 0 else 0.0
        for est in estimators:
            rr = est.round_rewards(test, probs)
            robust = interval(rr, CIConfig(method="robust"))
            plain = interval(rr, CIConfig(method="analytic"))
            out.append(
                (
                    target,
                    est.name,
                    true_value,
                    robust.contains(true_value),
                    plain.contains(true_value),
                    robust.ci_high - robust.ci_low,
                    ess,
                )
            )
    return out


def _wilson(hits: int, n: int) -> tuple[float, float]:
    z = NormalDist().inv_cdf(0.975)
    p = hits / n
    centre = (p + z * z / (2 * n)) / (1 + z * z / n)
    half = z * math.sqrt(p * (1 - p) / n + z * z / (4 * n * n)) / (1 + z * z / n)
    return centre - half, centre + half


def run(quick: bool = False) -> dict[str, object]:
    """Coverage per (target, estimator) over the seeds; prints the table."""
    n_seeds = 20 if quick else int(os.environ.get("NBI_COVERAGE_SEEDS", "300"))
    rows: list[tuple[str, str, float, bool, bool, float, float]] = []
    try:
        from tqdm import tqdm

        progress: Any = tqdm(total=n_seeds, desc="seeds", unit="seed")
    except ImportError:  # pragma: no cover
        progress = None
    with ProcessPoolExecutor(max_workers=2) as pool:
        for result in pool.map(_one_seed, range(n_seeds)):
            rows.extend(result)
            if progress is not None:
                progress.update(1)
    if progress is not None:
        progress.close()
    table: dict[str, dict[str, object]] = {}
    print(
        f"\n{'target':32s} {'estimator':10s} {'robust':>7s} {'(Wilson 95 %)':>16s}"
        f" {'analytic':>9s} {'width':>7s} {'ESS':>7s}"
    )
    worst = 1.0
    for target in TARGETS:
        for name in sorted({r[1] for r in rows}):
            sel = [r for r in rows if r[0] == target and r[1] == name]
            n = len(sel)
            hits = sum(r[3] for r in sel)
            plain = sum(r[4] for r in sel) / n
            low, high = _wilson(hits, n)
            width = float(np.mean([r[5] for r in sel]))
            ess = float(np.mean([r[6] for r in sel]))
            key = f"{target} / {name}"
            table[key] = {
                "coverage_robust": hits / n,
                "coverage_robust_wilson": [low, high],
                "coverage_analytic": plain,
                "mean_width_robust": width,
                "mean_ess": ess,
                "seeds": n,
            }
            if name != "dm":
                worst = min(worst, hits / n)
            print(
                f"{target:32s} {name:10s} {hits / n:7.3f} [{low:.3f}, {high:.3f}]"
                f" {plain:9.3f} {width:7.4f} {ess:7.0f}"
            )
    print(
        f"\nlowest robust coverage (DM excluded): {worst:.3f} over {n_seeds} seeds "
        f"(claim: >= {CLAIM})"
    )
    return {"seeds": n_seeds, "rounds": N_ROUNDS, "lowest_robust_coverage": worst, "table": table}


if __name__ == "__main__":
    run()
