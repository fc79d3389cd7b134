"""The report's parity-of-scarce-seats and drift section: figures by hand, and through
``nbi report`` on real files."""

from __future__ import annotations

import math
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from typer.testing import CliRunner

from offline_eval.report_monitoring import log_drift, parity_table
from service.cli import build_app


def _audit(n: int = 400, *, biased: bool) -> pd.DataFrame:
    """Recommender arm: men get a scarce offer in 60 % of cases, women in 60 % (even) or 30 %."""
    rows = []
    for i in range(n):
        gender = ("male", "female")[i % 2]
        k = i // 2
        share = 0.3 if biased and gender == "female" else 0.6
        scarce = (k % 10) < share * 10
        rows.append(
            {
                "group": "treatment" if i % 5 else "control",
                "employed": int(k % 4 == 0),
                "gender": gender,
                "recommended_family": "private_wage_subsidy" if scarce else "mentor",
                "followed": k % 3 != 0,
                "weeks_unemployed": 60 if k % 2 else 10,
            }
        )
    return pd.DataFrame(rows)


def test_scarce_seat_parity_by_hand():
    frame = _audit(biased=True)
    table, ratios = parity_table(frame, "group", "employed", min_group=30)
    treated = frame[frame["group"] == "treatment"]
    by_gender = treated.groupby("gender")["recommended_family"].apply(
        lambda s: (s == "private_wage_subsidy").mean()
    )
    assert ratios[("gender", "recommended")] == pytest.approx(by_gender.min() / by_gender.max())
    assert ratios[("gender", "recommended")] < 0.8
    female = table[(table["attribute"] == "gender") & (table["group"] == "female")].iloc[0]
    received = treated[treated["gender"] == "female"]
    expected = (
        (received["recommended_family"] == "private_wage_subsidy") & received["followed"]
    ).mean()
    assert female["received"] == pytest.approx(expected)
    assert set(table["attribute"]) == {"gender", "long_term_unemployed"}
    even = parity_table(_audit(biased=False), "group", "employed", min_group=30)[1]
    assert even[("gender", "recommended")] >= 0.8
    few = parity_table(frame, "group", "employed", min_group=10_000)[1]
    assert math.isnan(few[("gender", "recommended")])


def test_log_drift_finds_the_shifted_feature():
    rng = np.random.default_rng(0)
    n = 2000
    frame = pd.DataFrame(
        {
            "timestamp": np.arange(n, dtype=float),
            "age": np.r_[rng.integers(20, 40, n // 2), rng.integers(35, 60, n // 2)],
            "weeks_unemployed": rng.integers(0, 100, n),
            "target_group": rng.choice(["dagpenge", "kontanthjaelp"], n),
        }
    )
    psi = log_drift(frame)
    assert set(psi) == {"age", "weeks_unemployed", "target_group"}
    assert psi["age"] > 0.25
    # same distribution in both halves: PSI ~ chi-square/n, far below 0.1
    assert psi["weeks_unemployed"] < 0.05 and psi["target_group"] < 0.01


def test_nbi_report_has_the_section(tmp_path: Path):
    audit = _audit(biased=True)
    audit.to_csv(tmp_path / "audit.csv", index=False)
    out = tmp_path / "report.html"
    res = CliRunner().invoke(
        build_app(), ["report", "--fairness", str(tmp_path / "audit.csv"), "--out", str(out)]
    )
    assert res.exit_code == 0, res.output
    html = out.read_text()
    assert 'id="parity"' in html
    assert "gender: ratio" in html and "⚠" in html
