"""The invalid-input table of the logged-data contract, and file round-trips."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from offline_eval.errors import LoggedDataError, TargetPolicyError
from offline_eval.estimators import IPS, Replay
from offline_eval.logs import LoggedBandit, read_logs, write_logs


def _kwargs(**over):
    base = {
        "context": np.zeros((3, 2)),
        "action": np.array([0, 1, 2]),
        "reward": np.array([1.0, 0.0, 1.0]),
        "propensity": np.array([0.5, 0.25, 0.25]),
        "n_actions": 3,
    }
    base.update(over)
    return base


@pytest.mark.parametrize(
    ("over", "match"),
    [
        ({"propensity": np.array([0.5, 0.0, 0.2])}, r"propensity in \(0, 1\], got 0.0 at round 1"),
        ({"propensity": np.array([0.5, 1.2, 0.2])}, r"propensity in \(0, 1\], got 1.2"),
        ({"propensity": np.array([0.5, -0.1, 0.2])}, r"propensity in \(0, 1\]"),
        ({"propensity": np.array([0.5, np.nan, 0.2])}, r"propensity in \(0, 1\], got nan"),
        (
            {"propensity": np.array([0.5, 0.5])},
            r"Expected `action.shape\[0\] == propensity.shape\[0\]`, got 3 != 2",
        ),
        (
            {"reward": np.array([1.0, 0.0])},
            r"Expected `action.shape\[0\] == reward.shape\[0\]`, got 3 != 2",
        ),
        (
            {"context": np.zeros((4, 2))},
            r"Expected `action.shape\[0\] == context.shape\[0\]`, got 3 != 4",
        ),
        ({"reward": np.array([1.0, np.nan, 0.0])}, r"Expected finite rewards, got nan at round 1"),
        ({"action": np.array([0, 1, 3])}, r"Expected actions in 0..2, got values in 0..3"),
        ({"action": np.array([0.0, 1.0, 2.0])}, r"Expected integer actions"),
        ({"context": np.zeros(3)}, r"Expected `context.ndim == 2`, got 1"),
        (
            {"pmf": np.full((3, 3), 0.2)},
            r"Expected every row of `pmf` to sum to 1, got 0.6 at round 0",
        ),
        ({"position": np.array([0, 1])}, r"Expected `action.shape\[0\] == position.shape\[0\]`"),
    ],
)
def test_invalid_logged_bandit(over, match):
    with pytest.raises(LoggedDataError, match=match):
        LoggedBandit(**_kwargs(**over))


def test_errors_are_value_errors():
    assert issubclass(LoggedDataError, ValueError)
    assert issubclass(TargetPolicyError, ValueError)


LOGS = LoggedBandit(**_kwargs())


@pytest.mark.parametrize(
    ("target", "match"),
    [
        (
            np.full((3, 3), 0.3),
            r"Expected every row of `target_probs` to sum to 1, got 0.9 at round 0",
        ),
        (np.full((3, 2), 0.5), r"Expected `target_probs.shape == \(3, 3\)`, got \(3, 2\)"),
        (
            np.full((2, 3), 1 / 3),
            r"Expected `target_probs.shape == \(3, n_actions\)`, got \(2, 3\)",
        ),
        (np.full(3, 1 / 3), r"Expected `target_probs.shape == \(3, n_actions\)`, got \(3,\)"),
        (np.array([[1.5, -0.5, 0.0]] * 3), r"non-negative"),
    ],
)
def test_invalid_target_probs(target, match):
    with pytest.raises(TargetPolicyError, match=match):
        IPS().estimate(LOGS, target)


def test_replay_rejects_non_uniform_logger():
    with pytest.raises(LoggedDataError, match="Replay needs uniformly logged data"):
        Replay().estimate(LOGS, np.full((3, 3), 1 / 3))


def test_missing_columns_from_dataframe():
    frame = pd.DataFrame({"action": [0, 1], "reward": [1.0, 0.0], "x": [0.1, 0.2]})
    with pytest.raises(LoggedDataError, match=r"Missing required column\(s\): propensity"):
        LoggedBandit.from_dataframe(frame)


def test_nan_reward_in_frame():
    frame = pd.DataFrame({"action": [0, 1], "reward": [1.0, None], "propensity": [0.5, 0.5]})
    with pytest.raises(LoggedDataError, match="Expected finite rewards, got nan at round 1"):
        LoggedBandit.from_dataframe(frame)


@pytest.mark.parametrize("suffix", [".parquet", ".csv"])
def test_file_round_trip(tmp_path, suffix):
    logs = LoggedBandit(
        **_kwargs(
            pmf=np.array([[0.5, 0.25, 0.25]] * 3),
            position=np.array([0, 0, 1]),
            context=np.arange(6.0).reshape(3, 2),
        ),
        context_columns=("age", "weeks"),
    )
    path = tmp_path / f"logs{suffix}"
    write_logs(logs, path)
    back = read_logs(path)
    assert back.n_actions == 3
    assert back.context_columns == ("age", "weeks")
    for name in ("context", "action", "reward", "propensity", "pmf", "position"):
        np.testing.assert_array_equal(getattr(back, name), getattr(logs, name))


def test_categorical_context_is_one_hot_encoded():
    frame = pd.DataFrame(
        {"action": [0, 1], "reward": [1.0, 0.0], "propensity": [0.5, 0.5], "tg": ["a", "b"]}
    )
    logs = LoggedBandit.from_dataframe(frame)
    assert logs.context_columns == ("tg_a", "tg_b")
    np.testing.assert_array_equal(logs.context, [[1.0, 0.0], [0.0, 1.0]])


def test_unknown_file_type(tmp_path):
    with pytest.raises(LoggedDataError, match="Expected a .parquet or .csv"):
        read_logs(tmp_path / "x.json") if (tmp_path / "x.json").write_text("{}") else None


def test_time_ordered_split():
    train, test = LOGS.split(2 / 3)
    assert train.n_rounds == 2 and test.n_rounds == 1
    np.testing.assert_array_equal(test.action, [2])
