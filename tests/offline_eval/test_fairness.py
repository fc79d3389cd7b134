"""Fairness audit: rates, override, effects by group and the do-no-harm flag."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from offline_eval.errors import ExperimentDataError
from offline_eval.fairness import AuditColumns, audit
from offline_eval.stats import holm


def _frame(seed: int = 0, n: int = 12_000) -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    gender = rng.choice(["female", "male"], n)
    origin = rng.choice(["danish", "western", "non_western"], n, p=[0.7, 0.1, 0.2])
    treated = rng.random(n) < 0.5
    # +5 pp for everyone except non-Western citizens, who lose 10 pp in the treatment arm.
    p = 0.5 + np.where(treated, np.where(origin == "non_western", -0.10, 0.05), 0.0)
    employed = (rng.random(n) < p).astype(int)
    family = np.where(
        origin == "non_western", "mentor", rng.choice(["mentor", "private_internship"], n)
    )
    return pd.DataFrame(
        {
            "group": np.where(treated, "treatment", "control"),
            "employed": employed,
            "gender": gender,
            "origin": origin,
            "age": rng.integers(18, 66, n),
            "recommended_family": np.where(treated, family, None),
            "complied": np.where(treated, (rng.random(n) < 0.7).astype(float), np.nan),
            "eligible_families": np.where(
                origin == "non_western", "mentor", "mentor;private_internship"
            ),
        }
    )


def test_harmed_group_is_flagged_and_others_not():
    report = audit(_frame())
    assert report.flagged == ["origin=non_western"]
    g = report.groups.set_index(["attribute", "level"])
    assert g.loc[("origin", "non_western"), "effect"] < 0
    assert (
        g.loc[("origin", "danish"), "effect_ci_low"]
        <= 0.05
        <= g.loc[("origin", "danish"), "effect_ci_high"]
    )
    assert set(report.groups["attribute"]) == {"gender", "origin", "age_band"}
    # override = 1 - compliance (0.7)
    assert g["override_rate"].between(0.27, 0.33).all()


def test_recommendation_rates_raw_and_among_eligible():
    report = audit(_frame(), attributes=["origin"])
    r = report.recommendation_rates.set_index(["level", "family"])
    assert r.loc[("non_western", "mentor"), "rate"] == 1.0
    assert r.loc[("danish", "private_internship"), "rate"] == pytest.approx(0.5, abs=0.03)
    assert r.loc[("danish", "private_internship"), "rate_among_eligible"] == pytest.approx(
        0.5, abs=0.03
    )


def test_holm_is_monotone_and_bounded():
    adj = holm([0.001, 0.5, 0.02, 0.04])
    assert adj == pytest.approx([0.004, 0.5, 0.06, 0.08])


def test_missing_attribute_column():
    with pytest.raises(
        ExperimentDataError, match=r"Missing column\(s\) for the fairness audit: religion"
    ):
        audit(_frame(n=100), attributes=["religion"])


def test_a_file_without_protected_attributes_flags_nobody(tmp_path):
    """`nbi report --rct` on a trial file with no protected column used to exit with 'harm_flag'."""
    from typer.testing import CliRunner

    from service.cli import build_app

    frame = _frame(n=200)[["group", "employed"]]
    report = audit(frame, attributes=[])
    assert report.flagged == []
    path = tmp_path / "trial.csv"
    frame.to_csv(path, index=False)
    out = tmp_path / "report.html"
    res = CliRunner().invoke(build_app(), ["report", "--rct", str(path), "--out", str(out)])
    assert res.exit_code == 0, res.output
    assert "Fairness" in out.read_text()


def _with_tiny_group(n: int = 2000) -> pd.DataFrame:
    """``_frame`` plus gender=other with 5 treatment citizens and 1 control citizen (untestable)."""
    frame = _frame(n=n)
    tiny = frame.iloc[:6].copy()
    tiny["gender"] = "other"
    tiny["group"] = ["treatment"] * 5 + ["control"]
    return pd.concat([frame, tiny], ignore_index=True)


def test_holm_counts_only_finite_p_values():
    """m is the number of finite p-values (here 3, not 4); NaN stays NaN (by hand)."""
    adj = holm([0.01, float("nan"), 0.02, 0.04])
    # sorted 0.01, 0.02, 0.04 -> 3 x 0.01, max(0.03, 2 x 0.02), max(0.04, 1 x 0.04)
    assert adj[0] == pytest.approx(0.03)
    assert np.isnan(adj[1])
    assert adj[2:] == pytest.approx([0.04, 0.04])
    assert all(np.isnan(holm([float("nan"), float("nan")])))
    assert holm([]) == []


def test_untested_group_is_not_counted_by_holm():
    """QA D8: 9 groups, one without a p-value, used to be adjusted with m = 9 instead of 8."""
    report = audit(_with_tiny_group(), attributes=["gender", "origin", "age_band"])
    g = report.groups
    assert report.untested == ["gender=other"]
    assert report.n_tested == len(g) - 1
    assert np.isnan(g.loc[g["level"] == "other", "p_harm_holm"]).all()
    smallest = g["p_harm"].min()
    holm_of_smallest = g.loc[g["p_harm"] == smallest, "p_harm_holm"].iloc[0]
    assert holm_of_smallest == pytest.approx(min(1.0, report.n_tested * smallest))
    assert report.to_dict()["groups_tested"] == report.n_tested


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"alpha": 1.5}, r"alpha must be in \(0, 1\), got 1.5"),
        ({"alpha": 1.0}, r"alpha must be in \(0, 1\), got 1"),
        ({"alpha": 0.0}, r"alpha must be in \(0, 1\), got 0"),
        ({"alpha": float("nan")}, r"alpha must be in \(0, 1\), got nan"),
        ({"margin": float("nan")}, r"margin must be in \[0, 1\)"),
        ({"margin": -0.1}, r"margin must be in \[0, 1\)"),
        ({"margin": float("inf")}, r"margin must be in \[0, 1\)"),
    ],
)
def test_alpha_and_margin_are_checked(kwargs, message):
    with pytest.raises(ValueError, match=message):
        audit(_frame(n=100), attributes=["gender"], **kwargs)


def test_a_positive_margin_is_accepted():
    report = audit(_frame(n=2000), attributes=["gender"], margin=0.02)
    assert report.margin == 0.02 and report.n_tested == 2


@pytest.mark.parametrize(
    "rows",
    [
        pytest.param(lambda f: f[f["group"] == "treatment"], id="no-control-rows"),
        pytest.param(lambda f: f.iloc[:0], id="header-only"),
        pytest.param(lambda f: pd.concat([f[f["group"] == "treatment"], f.iloc[[1]]]), id="1-ctrl"),
    ],
)
def test_a_file_without_two_citizens_per_arm_is_refused(rows):
    """QA D6: as nbi experiment, instead of NaN effects and a clean verdict."""
    frame = _frame(n=200)
    assert (frame.iloc[[1]]["group"] == "control").all()
    with pytest.raises(ExperimentDataError, match="Need at least 2 citizens in each group"):
        audit(rows(frame), attributes=["gender"])


def test_a_continuous_outcome_is_refused():
    """QA D7: the audit's rates and margin are shares of a 0/1 outcome."""
    frame = _frame(n=200)
    frame["benefit_weeks"] = np.arange(len(frame)) % 30
    with pytest.raises(ExperimentDataError, match=r"'benefit_weeks' must be 0/1 .* found 2"):
        audit(frame, attributes=["gender"], columns=AuditColumns(outcome="benefit_weeks"))


def test_true_false_outcome_and_complied_are_read_as_0_1():
    frame = _frame(n=400)
    frame["employed"] = frame["employed"].astype(bool)
    frame["complied"] = frame["complied"].fillna(0).astype(bool)
    report = audit(frame, attributes=["gender"])
    assert report.groups["employment_rate"].between(0, 1).all()
    assert report.groups["override_rate"].between(0, 1).all()


@pytest.mark.parametrize(
    ("value", "message"),
    [("maybe", r"'complied' \(received treatment\) must be numeric, found 'maybe'"),
     (2.0, r"'complied' must be 0/1 \(or empty\), found 2.0")],
)  # fmt: skip
def test_complied_must_be_0_1(value, message):
    """QA D17: a 'maybe' used to be dropped silently, changing the override rate."""
    frame = _frame(n=200)
    frame["complied"] = frame["complied"].astype(object)
    frame.loc[frame.index[frame["group"] == "treatment"][0], "complied"] = value
    with pytest.raises(ExperimentDataError, match=message):
        audit(frame, attributes=["gender"])


def test_treatment_rows_without_a_recommendation_are_skipped_in_the_rates():
    """A missing recommended family used to raise TypeError (NaN among the family names)."""
    frame = _frame(n=400)
    first = frame.index[frame["group"] == "treatment"][:3]
    frame.loc[first, "recommended_family"] = None
    frame["eligible_families"] = np.nan  # an all-empty column reads as float
    rates = audit(frame, attributes=["gender"]).recommendation_rates
    assert set(rates["family"]) <= {"mentor", "private_internship"}
    assert rates["rate_among_eligible"].isna().all()
