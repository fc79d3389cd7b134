"""The prognostic score: the fit, storage, scoring, the CLI, and its use in Lin's estimator."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from typer.testing import CliRunner

from offline_eval.errors import ExperimentDataError
from offline_eval.prognostic import CASE_FACTS, PrognosticModel, fit, r_squared
from offline_eval.rct import itt, lin_adjusted
from service.cli import build_app

RUNNER = CliRunner()


def _frame(n: int, seed: int) -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    df = pd.DataFrame(
        {
            "age": rng.integers(18, 67, n),
            "weeks_unemployed": rng.choice([0, 4, 13, 26], n),
            "benefit_history_weeks": rng.integers(0, 150, n),
            "labour_demand_index": rng.choice([0.5, 0.8, 1.0, 1.5], n),
            "health_limitation": rng.random(n) < 0.2,
            "single_parent": rng.random(n) < 0.1,
            "target_group": rng.choice(["dagpenge", "kontanthjaelp"], n, p=[0.8, 0.2]),
            "education": rng.choice(["lower_secondary", "vocational", "master"], n),
            "last_sector": rng.choice(["retail", "cleaning", "it"], n),
            "danish_proficiency": rng.choice(["native", "basic"], n),
        }
    )
    eta = (
        1.0
        - 0.03 * (df["age"] - 40)
        - 1.2 * df["health_limitation"]
        - 1.0 * (df["target_group"] == "kontanthjaelp")
        + 0.5 * (df["education"] == "master")
    )
    df["reward"] = (rng.random(n) < 1 / (1 + np.exp(-eta))).astype(int)
    return df


def test_unpenalised_fit_is_the_logistic_mle_of_statsmodels() -> None:
    """Against statsmodels' Logit on the same standardised design, stored by
    ``reference/make_prognostic_reference.py`` (statsmodels is not a dependency)."""
    ref = json.loads(
        (Path(__file__).parent / "reference" / "prognostic_reference.json").read_text()
    )
    df = _frame(3000, 0)
    model = fit(df, ridge=0.0)
    ours = np.concatenate([[model.intercept], model.coef])
    assert np.allclose(ours, ref["params"], atol=1e-6)
    assert np.allclose(model.score(df), ref["predictions"], atol=1e-8)


def test_ridge_shrinks_and_the_score_ranks_risk() -> None:
    df = _frame(3000, 1)
    free, shrunk = fit(df, ridge=0.0), fit(df, ridge=500.0)
    assert np.linalg.norm(shrunk.coef) < np.linalg.norm(free.coef)
    score = free.score(df)
    # The generating model: health limitation lowers the odds by e^1.2.
    assert score[df["health_limitation"]].mean() < score[~df["health_limitation"]].mean() - 0.15
    assert 0.05 < r_squared(score, df["reward"].to_numpy(float)) < 0.5  # noqa: PLR2004


def test_save_load_round_trip_and_unseen_category(tmp_path: Path) -> None:
    df = _frame(1000, 2)
    model = fit(df)
    loaded = PrognosticModel.load(model.save(tmp_path / "m.json"))
    assert loaded == model
    other = df.head(5).copy()
    other["last_sector"] = "agriculture"  # not seen in fitting: scored as the reference level
    ref = df.head(5).copy()
    ref["last_sector"] = model.levels["last_sector"][0]
    assert np.allclose(model.score(other), model.score(ref))


@pytest.mark.parametrize(
    ("change", "message"),
    [
        (lambda d: d.drop(columns=["age"]), "Missing case-fact column(s): age"),
        (lambda d: d.assign(reward=2), "must be 0/1"),
        (lambda d: d.assign(health_limitation="maybe"), "true/false or 0/1"),
        (lambda d: d.assign(age=np.nan), "no missing values"),
    ],
)
def test_bad_history_is_one_precise_error(change, message) -> None:  # type: ignore[no-untyped-def]
    with pytest.raises(ExperimentDataError, match=message.replace("(", r"\(").replace(")", r"\)")):
        fit(change(_frame(200, 3)))


def test_not_a_model_file_is_refused(tmp_path: Path) -> None:
    path = tmp_path / "x.json"
    path.write_text(json.dumps({"format": "other"}))
    with pytest.raises(ExperimentDataError, match="Not a prognostic model"):
        PrognosticModel.load(path)


def test_cli_fit_score_then_experiment_adjusts_for_the_score(tmp_path: Path) -> None:
    history = tmp_path / "history.csv"
    _frame(4000, 4).to_csv(history, index=False)
    model = tmp_path / "prognostic.json"
    res = RUNNER.invoke(build_app(), ["prognostic", "fit", str(history), "--out", str(model)])
    assert res.exit_code == 0, res.output
    assert "fitted on 4000 decisions" in res.stdout
    # A trial: fresh citizens, half treated with +5 pp.
    trial = _frame(4000, 5)
    rng = np.random.default_rng(6)
    trial["group"] = np.where(rng.random(len(trial)) < 0.5, "treatment", "control")
    lift = (trial["group"] == "treatment") & (rng.random(len(trial)) < 0.1)
    trial["employed"] = (trial["reward"].astype(bool) | lift).astype(int)
    trial_file = tmp_path / "decisions.csv"
    trial.drop(columns=["reward"]).to_csv(trial_file, index=False)
    res = RUNNER.invoke(
        build_app(),
        ["prognostic", "score", str(model), str(trial_file), "--out", str(trial_file)],
    )
    assert res.exit_code == 0, res.output
    scored = pd.read_csv(trial_file)
    assert "prognostic_score" in scored.columns and scored["prognostic_score"].between(0, 1).all()
    res = RUNNER.invoke(
        build_app(),
        [
            "experiment",
            str(trial_file),
            "--outcome-col",
            "employed",
            "--covariate",
            "prognostic_score",
            "--json",
        ],
    )
    assert res.exit_code == 0, res.output
    doc = json.loads(res.stdout)
    assert doc["lin_adjusted"]["se"] < doc["itt"]["se"]


def test_cli_bad_input_is_one_error_line(tmp_path: Path) -> None:
    history = tmp_path / "history.csv"
    _frame(300, 7).drop(columns=["education"]).to_csv(history, index=False)
    cases = [
        (["prognostic", "fit", str(history), "--out", str(tmp_path / "m.txt")], "must end in"),
        (["prognostic", "fit", str(history), "--out", str(tmp_path / "m.json")], "education"),
        (["prognostic", "fit", str(tmp_path / "nope.csv"), "--out", "m.json"], "No such file"),
        (
            ["prognostic", "score", str(history), str(history), "--out", str(tmp_path / "o.csv")],
            "Cannot read prognostic model",
        ),
    ]
    for args, message in cases:
        res = RUNNER.invoke(build_app(), args)
        lines = [line for line in res.stderr.splitlines() if line.strip()]
        assert res.exit_code == 2 and len(lines) == 1, (args, res.output)  # noqa: PLR2004
        assert lines[0].startswith("error:") and message in lines[0], lines


def test_prognostic_lin_on_simulated_history_narrows_the_itt() -> None:
    # Fixed seeds: a pre-trial practice log fits the score; on a separate simulated trial the
    # score is a pre-treatment covariate, so Lin's SE is below the unadjusted Neyman SE.
    from simulator.config import SimulationConfig
    from simulator.logs import generate_logs
    from simulator.policies import build_policy
    from simulator.replay import Replay

    logs = generate_logs(4000, logging_policy="practice", seed=21)
    model = fit(logs.frame, "reward")
    config = SimulationConfig(scale=0.05, offers_per_family=1)
    d = Replay(build_policy("uniform", seed=1), config, weeks=20, seed=1).run().decisions
    assert set(CASE_FACTS) <= set(d.columns)
    y = d["employed"].to_numpy(float)
    t = (d["group"] == "treatment").to_numpy()
    adjusted = lin_adjusted(y, t, model.score(d)[:, None])
    assert adjusted.se < itt(y, t).se
