"""OPE benchmark: our estimators and CIs vs Open Bandit Pipeline 0.5.7 on the same arrays.

1,000,000 logged rounds x 20 actions (500,000 with ``quick``). Ours: IPS, SNIPS, DM, DR, SNDR,
Switch-DR point estimates, analytic 95 % CIs and vectorised 10,000-resample bootstrap CIs (the
binned bootstrap, which reports its binning loss). The comparison with OBP's bootstrap is made
on the EXACT mode (``CIConfig(resampling="exact")``: Poisson(1) weights on every round, no
binning): 10,000 resamples of IPS, SNIPS and DR together (one set of weights shared by the
three, as ``nbi evaluate`` does) against OBP's three bootstraps, and IPS alone against OBP's
IPS.
Reference: OBP's ``estimate_policy_value`` and ``estimate_interval`` (IPW, SNIPW, DR) run in a
separate Python 3.10 venv as a subprocess on the same saved arrays. The venv is taken from
``$NBI_OBP_PYTHON`` or ``/tmp/obp-venv``; if absent it is created with pyenv's 3.10 when
available. OBP's bootstrap is a Python loop (~6 ms per resample here), so it is timed on fewer
resamples and its per-resample time scaled to 10,000 (reported as such). Without OBP the
reference is a plain numpy loop doing the same work (``rng.choice`` per resample), with a clear
message.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
REF_DIR = ROOT / "tests" / "offline_eval" / "reference"
PYENV_310 = Path("/root/.pyenv/versions/3.10.13/bin/python")
DEFAULT_VENV = Path("/tmp/obp-venv")  # noqa: S108 (outside the repo on purpose)
N_ACTIONS = 20
N_BOOT = 10_000

_OBP_SCRIPT = r"""
import json, sys, time
sys.path.insert(0, sys.argv[2])
import make_obp_reference
make_obp_reference._ensure_torch_importable()
import numpy as np
from obp.ope import InverseProbabilityWeighting, SelfNormalizedInverseProbabilityWeighting, DoublyRobust
a = np.load(sys.argv[1])
n_boot = int(sys.argv[3])
common = dict(reward=a["reward"], action=a["action"], pscore=a["propensity"], action_dist=a["target"][:, :, None])
q = a["q_hat"][:, :, None]
out = {}
for name, est, extra in (("ips", InverseProbabilityWeighting(), {}),
                         ("snips", SelfNormalizedInverseProbabilityWeighting(), {}),
                         ("dr", DoublyRobust(), {"estimated_rewards_by_reg_model": q})):
    tp = float("inf")
    for _ in range(3):
        t = time.perf_counter(); v = est.estimate_policy_value(**common, **extra); tp = min(tp, time.perf_counter() - t)
    t = time.perf_counter()
    ci = est.estimate_interval(**common, **extra, n_bootstrap_samples=n_boot, random_state=0)
    tc = time.perf_counter() - t
    out[name] = {"value": float(v), "point_s": tp, "ci_s": tc, "n_boot": n_boot,
                 "ci": [float(ci["95.0% CI (lower)"]), float(ci["95.0% CI (upper)"])]}
print(json.dumps(out))
"""


def _obp_python() -> Path | None:
    env = os.environ.get("NBI_OBP_PYTHON")
    if env and Path(env).exists():
        return Path(env)
    py = DEFAULT_VENV / "bin" / "python"
    if py.exists():
        return py
    if not PYENV_310.exists():
        return None
    print(
        "creating the OBP reference venv in /tmp/obp-venv (one-off, a few minutes)...", flush=True
    )
    try:
        subprocess.run([str(PYENV_310), "-m", "venv", str(DEFAULT_VENV)], check=True)
        pip = [str(py), "-m", "pip", "install", "-q"]
        subprocess.run([*pip, "obp==0.5.7", "--no-deps"], check=True)
        deps = [
            "numpy<2",
            "pandas<2.1",
            "scikit-learn<1.4",
            "scipy<1.12",
            "tqdm",
            "matplotlib",
            "seaborn",
            "pyyaml",
        ]
        subprocess.run([*pip, *deps], check=True)
    except (subprocess.CalledProcessError, OSError) as exc:
        print(
            f"could not create the OBP venv ({exc}); falling back to a numpy baseline", flush=True
        )
        return None
    return py


def make_arrays(n: int, seed: int = 0) -> dict[str, np.ndarray]:
    rng = np.random.default_rng(seed)
    logits = rng.normal(size=(n, N_ACTIONS)).astype(np.float64)
    logger = np.exp(logits)
    logger /= logger.sum(axis=1, keepdims=True)
    logger = 0.8 * logger + 0.2 / N_ACTIONS
    cdf = np.cumsum(logger, axis=1)
    action = np.minimum((rng.random(n)[:, None] > cdf).sum(axis=1), N_ACTIONS - 1)
    propensity = logger[np.arange(n), action]
    base = rng.uniform(0.2, 0.8, N_ACTIONS)
    reward = (rng.random(n) < base[action]).astype(float)
    target = np.exp(2.0 * logits[:, ::-1])
    target /= target.sum(axis=1, keepdims=True)
    q_hat = np.clip(base[None, :] + rng.normal(0, 0.05, (n, N_ACTIONS)), 0, 1)
    return {
        "action": action,
        "reward": reward,
        "propensity": propensity,
        "target": target,
        "q_hat": q_hat,
    }


def _ours(arrays: dict[str, np.ndarray]) -> dict[str, dict[str, float]]:
    from offline_eval.ci import CIConfig
    from offline_eval.estimators import (
        IPS,
        SNIPS,
        DirectMethod,
        DoublyRobust,
        SelfNormalizedDR,
        SwitchDR,
    )
    from offline_eval.logs import LoggedBandit
    from offline_eval.reward_model import PrecomputedRewards

    n = arrays["action"].shape[0]
    logs = LoggedBandit(
        np.zeros((n, 0)), arrays["action"], arrays["reward"], arrays["propensity"], N_ACTIONS
    )
    q = PrecomputedRewards(arrays["q_hat"])
    out: dict[str, dict[str, float]] = {}
    boot = CIConfig(method="bootstrap", n_boot=N_BOOT, seed=0)
    for est in (IPS(), SNIPS(), DirectMethod(q), DoublyRobust(q), SelfNormalizedDR(q), SwitchDR(q)):
        tp = float("inf")
        for _ in range(3):  # best of 3, as for OBP
            t = time.perf_counter()
            value = est.round_rewards(logs, arrays["target"]).value()
            tp = min(tp, time.perf_counter() - t)
        t = time.perf_counter()
        a = est.estimate(logs, arrays["target"])
        ta = time.perf_counter() - t
        t = time.perf_counter()
        b = est.estimate(logs, arrays["target"], boot)
        tb = time.perf_counter() - t
        out[est.name] = {
            "value": value,
            "point_s": tp,
            "analytic_s": ta,
            "bootstrap_s": tb,
            "analytic_ci": [a.ci_low, a.ci_high],
            "bootstrap_ci": [b.ci_low, b.ci_high],
            "binning_loss": b.extra.get("binning_loss", 0.0),
        }
    return out


def _ours_exact(arrays: dict[str, np.ndarray]) -> dict[str, object]:
    """The exact (Poisson, every round) bootstrap: IPS+SNIPS+DR sharing weights, IPS alone."""
    from offline_eval.ci import CIConfig, intervals
    from offline_eval.estimators import IPS, SNIPS, DoublyRobust
    from offline_eval.logs import LoggedBandit
    from offline_eval.reward_model import PrecomputedRewards

    n = arrays["action"].shape[0]
    logs = LoggedBandit(
        np.zeros((n, 0)), arrays["action"], arrays["reward"], arrays["propensity"], N_ACTIONS
    )
    ests = (IPS(), SNIPS(), DoublyRobust(PrecomputedRewards(arrays["q_hat"])))
    rrs = [e.round_rewards(logs, arrays["target"]) for e in ests]
    names = [e.name for e in ests]
    config = CIConfig(method="bootstrap", resampling="exact", n_boot=N_BOOT, seed=0)
    t = time.perf_counter()
    joint = intervals(rrs, config, names)
    joint_s = time.perf_counter() - t
    t = time.perf_counter()
    alone = intervals(rrs[:1], config, names[:1])[0]
    alone_s = time.perf_counter() - t
    analytic = intervals(rrs, CIConfig(method="analytic"), names)
    return {
        "joint_s": joint_s,
        "ips_alone_s": alone_s,
        "ips_alone_ci": [alone.ci_low, alone.ci_high],
        "ci": {e.estimator: [e.ci_low, e.ci_high] for e in joint},
        "analytic_ci": {e.estimator: [e.ci_low, e.ci_high] for e in analytic},
    }


def _numpy_baseline(arrays: dict[str, np.ndarray], n_boot: int) -> dict[str, dict[str, float]]:
    """Plain numpy: IPS/SNIPS/DR round rewards, then an rng.choice bootstrap loop (OBP's way)."""
    n = arrays["action"].shape[0]
    rng = np.random.default_rng(0)
    idx = np.arange(n)
    out = {}
    t = time.perf_counter()
    w = arrays["target"][idx, arrays["action"]] / arrays["propensity"]
    ips = w * arrays["reward"]
    tp = time.perf_counter() - t
    t = time.perf_counter()
    boots = [rng.choice(ips, size=n, replace=True).mean() for _ in range(n_boot)]
    tc = time.perf_counter() - t
    out["ips"] = {
        "value": float(ips.mean()),
        "point_s": tp,
        "ci_s": tc,
        "n_boot": n_boot,
        "ci": [float(np.quantile(boots, 0.025)), float(np.quantile(boots, 0.975))],
    }
    return out


def run(quick: bool = False) -> dict[str, object]:
    n = 500_000 if quick else 1_000_000
    ref_boot = 200 if quick else 1_000
    arrays = make_arrays(n)
    ours = _ours(arrays)
    exact = _ours_exact(arrays)
    py = _obp_python()
    reference = "obp-0.5.7"
    if py is not None:
        with tempfile.TemporaryDirectory() as tmp:
            path = Path(tmp) / "arrays.npz"
            np.savez(path, **arrays)
            proc = subprocess.run(
                [str(py), "-c", _OBP_SCRIPT, str(path), str(REF_DIR), str(ref_boot)],
                capture_output=True,
                text=True,
                check=False,
            )
        if proc.returncode != 0:
            print(
                f"OBP run failed ({proc.stderr.strip().splitlines()[-1:]}); numpy baseline instead"
            )
            py = None
        else:
            ref = json.loads(proc.stdout.strip().splitlines()[-1])
    if py is None:
        reference = "numpy-loop-baseline (OBP venv unavailable)"
        ref = _numpy_baseline(arrays, ref_boot)
    rows = {}
    print(
        f"{n:,} rounds x {N_ACTIONS} actions; reference: {reference}; ours bootstrap {N_BOOT:,} resamples"
    )
    print(
        f"{'est':8} {'ours value':>12} {'ref value':>12} {'|diff|':>9} {'point ours/ref s':>18} {'ratio':>7} "
        f"{'CI ours boot s':>15} {'ref boot s (10k)':>17} {'speedup':>8} {'analytic s':>10}"
    )
    for name, o in ours.items():
        r = ref.get(name)
        row: dict[str, object] = dict(o)
        if r is not None:
            ref_ci_10k = r["ci_s"] * N_BOOT / r["n_boot"]
            row.update(
                {
                    "ref_value": r["value"],
                    "abs_diff": abs(o["value"] - r["value"]),
                    "ref_point_s": r["point_s"],
                    "point_speed_ratio": r["point_s"] / o["point_s"],
                    "ref_ci_s_measured": r["ci_s"],
                    "ref_ci_resamples_measured": r["n_boot"],
                    "ref_ci_s_10k_scaled": ref_ci_10k,
                    "ci_speedup_bootstrap": ref_ci_10k / o["bootstrap_s"],
                    "ci_speedup_analytic": ref_ci_10k / o["analytic_s"],
                    "ref_ci": r["ci"],
                }
            )
            print(
                f"{name:8} {o['value']:12.6f} {r['value']:12.6f} {abs(o['value'] - r['value']):9.2e} "
                f"{o['point_s']:8.3f}/{r['point_s']:<8.3f} {r['point_s'] / o['point_s']:7.2f} "
                f"{o['bootstrap_s']:15.2f} {ref_ci_10k:17.1f} {ref_ci_10k / o['bootstrap_s']:8.1f} {o['analytic_s']:10.3f}"
            )
        else:
            print(
                f"{name:8} {o['value']:12.6f} {'-':>12} {'-':>9} {o['point_s']:8.3f}/{'-':<8} {'-':>7} "
                f"{o['bootstrap_s']:15.2f} {'-':>17} {'-':>8} {o['analytic_s']:10.3f}"
            )
        rows[name] = row
    exact_row = _exact_vs_reference(exact, ref)
    return {
        "n_rounds": n,
        "n_actions": N_ACTIONS,
        "n_boot": N_BOOT,
        "reference": reference,
        "estimators": rows,
        "exact_bootstrap": exact_row,
    }


def _exact_vs_reference(exact: dict[str, object], ref: dict[str, dict[str, float]]) -> object:
    """Print and return the exact bootstrap against the reference's bootstraps (10k scaled)."""
    scaled = {k: r["ci_s"] * N_BOOT / r["n_boot"] for k, r in ref.items()}
    row: dict[str, object] = dict(exact)
    joint_s = float(exact["joint_s"])  # type: ignore[arg-type]
    alone_s = float(exact["ips_alone_s"])  # type: ignore[arg-type]
    print(
        f"exact bootstrap (Poisson(1) weights, every round, {N_BOOT:,} resamples): "
        f"IPS+SNIPS+DR together {joint_s:.1f} s, IPS alone {alone_s:.1f} s"
    )
    if {"ips", "snips", "dr"} <= scaled.keys():
        three = scaled["ips"] + scaled["snips"] + scaled["dr"]
        row.update(
            {
                "ref_three_s_10k_scaled": three,
                "speedup_three": three / joint_s,
                "ref_ips_s_10k_scaled": scaled["ips"],
                "speedup_ips_alone": scaled["ips"] / alone_s,
                "ref_ci": {k: r["ci"] for k, r in ref.items()},
            }
        )
        print(
            f"  reference's three bootstraps {three:.1f} s (scaled to {N_BOOT:,}): "
            f"x{three / joint_s:.1f}; IPS alone: reference {scaled['ips']:.1f} s, "
            f"x{scaled['ips'] / alone_s:.1f}"
        )
    for name, ci in dict(exact["ci"]).items():  # type: ignore[call-overload]
        analytic = dict(exact["analytic_ci"])[name]  # type: ignore[call-overload]
        print(
            f"  {name:6} exact [{ci[0]:.5f}, {ci[1]:.5f}]  analytic [{analytic[0]:.5f}, "
            f"{analytic[1]:.5f}]" + (f"  reference {ref[name]['ci']}" if name in ref else "")
        )
    return row


if __name__ == "__main__":
    json.dump(run(quick="--quick" in sys.argv), sys.stdout, indent=2, default=str)
