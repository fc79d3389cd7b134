"""Make the Open Bandit Pipeline reference values checked in beside this script.

Run with the OBP 0.5.7 interpreter (Python 3.10), not nbi's::

    /tmp/obp-venv/bin/python tests/offline_eval/reference/make_obp_reference.py

It draws fixed-seed arrays, runs OBP's InverseProbabilityWeighting,
SelfNormalizedInverseProbabilityWeighting and DoublyRobust (with the same
``estimated_rewards_by_reg_model`` our DR gets) and writes ``obp_reference.npz`` (arrays) and
``obp_reference.json`` (values). OBP imports torch at module level for its neural learners only;
when torch is absent a tiny import-time stand-in is put on ``sys.path`` (written to a temp dir),
which the three estimators never touch. Nothing runs on import (pytest imports this module for
doctests).
"""

from __future__ import annotations

import json
import sys
import tempfile
from pathlib import Path

HERE = Path(__file__).parent
N_ROUNDS, N_ACTIONS, SEED = 500, 4, 20240607

_TORCH_STUB = """
class _Meta(type):
    def __getattr__(cls, name):
        if name.startswith("__"):
            raise AttributeError(name)
        return _Dummy


class _Dummy(metaclass=_Meta):
    def __init__(self, *args, **kwargs):
        pass


def __getattr__(name):
    if name.startswith("__"):
        raise AttributeError(name)
    return _Dummy
"""


def _ensure_torch_importable() -> None:
    try:
        import torch  # noqa: F401
    except ImportError:
        root = Path(tempfile.mkdtemp(prefix="torch-stub-"))
        for rel in (
            "torch/__init__.py",
            "torch/nn/__init__.py",
            "torch/nn/functional.py",
            "torch/optim.py",
        ):
            (root / rel).parent.mkdir(parents=True, exist_ok=True)
            (root / rel).write_text(_TORCH_STUB)
        sys.path.insert(0, str(root))


def make_arrays():
    import numpy as np

    rng = np.random.default_rng(SEED)
    logger = rng.dirichlet(np.ones(N_ACTIONS), size=N_ROUNDS) * 0.8 + 0.2 / N_ACTIONS
    cdf = np.cumsum(logger, axis=1)
    action = np.minimum((rng.random(N_ROUNDS)[:, None] > cdf).sum(axis=1), N_ACTIONS - 1)
    propensity = logger[np.arange(N_ROUNDS), action]
    reward = (rng.random(N_ROUNDS) < 0.2 + 0.15 * action).astype(float)
    target = rng.dirichlet(np.ones(N_ACTIONS) * 0.7, size=N_ROUNDS)
    q_hat = np.clip(
        0.2 + 0.15 * np.arange(N_ACTIONS)[None, :] + rng.normal(0, 0.05, (N_ROUNDS, N_ACTIONS)),
        0,
        1,
    )
    return {
        "action": action,
        "reward": reward,
        "propensity": propensity,
        "target": target,
        "q_hat": q_hat,
    }


def main() -> None:
    import numpy as np

    _ensure_torch_importable()
    import obp
    from obp.ope import (
        DoublyRobust,
        InverseProbabilityWeighting,
        SelfNormalizedInverseProbabilityWeighting,
    )

    arrays = make_arrays()
    common = {
        "reward": arrays["reward"],
        "action": arrays["action"],
        "pscore": arrays["propensity"],
        "action_dist": arrays["target"][:, :, None],
    }
    values = {
        "obp_version": obp.__version__,
        "ips": float(InverseProbabilityWeighting().estimate_policy_value(**common)),
        "snips": float(SelfNormalizedInverseProbabilityWeighting().estimate_policy_value(**common)),
        "dr": float(
            DoublyRobust().estimate_policy_value(
                **common, estimated_rewards_by_reg_model=arrays["q_hat"][:, :, None]
            )
        ),
    }
    np.savez_compressed(HERE / "obp_reference.npz", **arrays)
    (HERE / "obp_reference.json").write_text(json.dumps(values, indent=2) + "\n")
    print(json.dumps(values, indent=2))  # noqa: T201


if __name__ == "__main__":
    main()
