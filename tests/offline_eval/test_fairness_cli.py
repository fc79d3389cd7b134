"""``nbi fairness`` through the real Typer app: option ranges, untestable files and groups, Holm.

Black-box QA (D4-D8, D17, D19): bad ``--alpha``/``--margin`` values, files without two citizens
per arm, a continuous outcome and a ``complied`` of "maybe" used to exit 0 with a verdict.
"""

from __future__ import annotations

import json

import pandas as pd
import pytest
from typer.testing import CliRunner

from offline_eval.fairness import audit
from offline_eval.report import render_html
from service.cli import build_app

from .test_fairness import _frame, _with_tiny_group

RUNNER = CliRunner()


@pytest.fixture(scope="module")
def trial(tmp_path_factory: pytest.TempPathFactory):
    d = tmp_path_factory.mktemp("fairness_cli")
    frame = _with_tiny_group()
    frame["benefit_weeks"] = frame.index % 30
    frame.to_csv(d / "trial.csv", index=False)
    return d, frame


def _run(*args: object):
    return RUNNER.invoke(build_app(), ["fairness", *[str(a) for a in args]])


def _one_error_line(res, message: str) -> None:
    assert res.exit_code == 2, res.output
    assert res.stderr.strip().splitlines() == [res.stderr.strip()]
    assert res.stderr.startswith(message), res.stderr
    assert "Traceback" not in res.output
    assert res.stdout == ""


@pytest.mark.parametrize(
    ("option", "value", "message"),
    [
        ("--alpha", "1.5", "error: --alpha must be in (0, 1), got 1.5"),
        ("--alpha", "1", "error: --alpha must be in (0, 1), got 1"),
        ("--alpha", "0", "error: --alpha must be in (0, 1), got 0"),
        ("--alpha", "-0.05", "error: --alpha must be in (0, 1), got -0.05"),
        ("--alpha", "nan", "error: --alpha must be in (0, 1), got nan"),
        ("--margin", "nan", "error: --margin must be in [0, 1)"),
        ("--margin", "-0.1", "error: --margin must be in [0, 1)"),
        ("--margin", "inf", "error: --margin must be in [0, 1)"),
        ("--margin", "1", "error: --margin must be in [0, 1)"),
    ],
)
def test_alpha_and_margin_out_of_range_are_one_error_line(trial, option, value, message):
    d, _ = trial
    _one_error_line(_run(d / "trial.csv", option, value), message)


def test_help_gives_the_ranges_and_defaults():
    res = RUNNER.invoke(build_app(), ["fairness", "--help"], env={"COLUMNS": "200"})
    assert res.exit_code == 0
    text = " ".join(res.stdout.split())
    assert "Holm), in (0, 1). [default: 0.05]" in text
    assert "Do-no-harm margin in [0, 1)" in text and "[default: 0.0]" in text
    assert "0/1 outcome" in text


@pytest.mark.parametrize(
    "rows",
    [
        pytest.param(lambda f: f[f["group"] == "treatment"], id="no-control-rows"),
        pytest.param(lambda f: f.iloc[:0], id="header-only"),
    ],
)
def test_a_file_without_two_citizens_per_arm_is_refused(trial, tmp_path, rows):
    """QA D6: used to print NaN effects (or 'Empty DataFrame') and 'flagged: none', rc 0."""
    _, frame = trial
    rows(frame).to_csv(tmp_path / "t.csv", index=False)
    res = _run(tmp_path / "t.csv")
    _one_error_line(res, "error: ")
    # The reader may refuse a header-only file before the audit does.
    assert "Need at least 2 citizens in each group" in res.stderr or "no rows" in res.stderr


def test_no_verdict_when_no_group_can_be_tested(tmp_path):
    """Each gender has 1 control citizen: the file passes, no group has a p-value."""
    frame = _frame(n=40)
    control = frame.index[frame["group"] == "control"]
    frame = pd.concat([frame[frame["group"] == "treatment"], frame.loc[control[:3]]])
    frame["gender"] = ["a", "b", "c"] * (len(frame) // 3) + ["a"] * (len(frame) % 3)
    frame.loc[control[:3], "gender"] = ["a", "b", "c"]
    frame.to_csv(tmp_path / "t.csv", index=False)
    res = _run(tmp_path / "t.csv", "--attribute", "gender")
    assert res.exit_code == 0, res.output
    last = res.stdout.strip().splitlines()[-1]
    assert last.startswith("no harm verdict: none of the 3 groups could be tested")
    assert "flagged" not in res.stdout
    doc = json.loads(_run(tmp_path / "t.csv", "--attribute", "gender", "--json").stdout)
    assert doc["groups_tested"] == 0 and doc["untested"] == ["gender=a", "gender=b", "gender=c"]


def test_a_continuous_outcome_is_refused(trial):
    """QA D7: benefit_weeks passed while weeks_to_job was refused; the help says 0/1."""
    d, _ = trial
    _one_error_line(
        _run(d / "trial.csv", "--outcome-col", "benefit_weeks"),
        "error: Column 'benefit_weeks' must be 0/1 with no missing values",
    )


def test_complied_maybe_is_refused_as_by_experiment(trial, tmp_path):
    """QA D17: 'maybe' used to be dropped silently from the override rate."""
    _, frame = trial
    frame = frame.copy()
    frame["complied"] = frame["complied"].astype(object)
    frame.loc[frame.index[frame["group"] == "treatment"][0], "complied"] = "maybe"
    frame.to_csv(tmp_path / "t.csv", index=False)
    message = "error: Column 'complied' (received treatment) must be numeric, found 'maybe'"
    _one_error_line(_run(tmp_path / "t.csv"), message)
    res = RUNNER.invoke(build_app(), ["experiment", str(tmp_path / "t.csv")])
    assert res.exit_code == 2 and res.stderr.startswith(message)


def test_holm_counts_only_the_tested_groups(trial):
    """QA D8: gender=other (1 control citizen) has no p-value and is not one of Holm's m tests."""
    d, _ = trial
    res = _run(d / "trial.csv", "--json")
    assert res.exit_code == 0, res.output
    doc = json.loads(res.stdout)
    groups = pd.DataFrame(doc["groups"])
    assert len(groups) == 9 and doc["groups_tested"] == 8 and doc["untested"] == ["gender=other"]
    other = groups[groups["level"] == "other"].iloc[0]
    assert other["p_harm"] is None or pd.isna(other["p_harm"])
    assert pd.isna(other["p_harm_holm"])
    tested = groups.dropna(subset=["p_harm"]).sort_values("p_harm")
    expected = [
        min(1.0, (8 - rank) * p) for rank, p in enumerate(tested["p_harm"])
    ]  # monotone here: no running max needed
    expected = pd.Series(expected).cummax().clip(upper=1.0).tolist()
    assert tested["p_harm_holm"].tolist() == pytest.approx(expected)
    text = _run(d / "trial.csv").stdout
    assert "8 of 9 groups tested" in text
    assert "not tested (fewer than 2 citizens in an arm" in text and "gender=other" in text


def test_report_card_counts_the_tested_groups(trial):
    """QA D8: the HTML report said '9 groups tested' with one group untested."""
    _, frame = trial
    html = render_html(fairness=audit(frame, attributes=["gender", "origin", "age_band"]))
    assert "8 of 9 groups tested" in html
    assert "9 groups tested" not in html.replace("8 of 9 groups tested", "")
    assert "gender=other" in html
