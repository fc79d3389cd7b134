"""Fairness audit: rates, override, effects by group and the do-no-harm flag."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from offline_eval.errors import ExperimentDataError
from offline_eval.fairness import audit
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
