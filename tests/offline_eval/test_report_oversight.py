"""The report's human-oversight parts: the parity table's ``overridden`` column by hand, and
``nbi report --oversight`` on the JSON the service's ``GET /v1/oversight`` returns."""

from __future__ import annotations

import dataclasses
import json
from pathlib import Path

import pandas as pd
import pytest
from typer.testing import CliRunner

from bandit.control import Group
from bandit.records import DecisionRecord
from offline_eval.report_monitoring import parity_table
from offline_eval.report_oversight import read_oversight
from service.cli import build_app
from service.oversight import oversight_report, report_to_dict, short_key
from service.schemas import OversightOut

STAMP, JUDGE = "c_" + "a" * 64, "c_" + "b" * 64


def test_the_overridden_column_is_one_minus_followed_per_group_without_a_ratio():
    frame = pd.DataFrame(
        {
            "group": ["treatment"] * 6 + ["control"],
            "employed": [1, 0, 1, 0, 1, 0, 1],
            "gender": ["male"] * 3 + ["female"] * 3 + ["male"],
            "recommended_family": ["mentor"] * 7,
            "followed": [True, True, False, False, None, True, None],
        }
    )
    table, ratios = parity_table(frame, "group", "employed", min_group=1)
    rates = table.set_index("group")["overridden"]
    assert rates["male"] == pytest.approx(1 / 3)
    assert rates["female"] == pytest.approx(1 / 2)  # the unknown assignment is left out
    assert ("gender", "overridden") not in ratios  # not an allocation: no four-fifths ratio


def _oversight_json(tmp_path: Path) -> Path:
    base = DecisionRecord(
        "e", 0.0, "p_x", Group.TREATMENT, {}, ("A", "B"), (0.5, 0.5), "A", 0.5, "m", "p"
    )
    items = [
        (dataclasses.replace(base, assigned="A", caseworker_key=STAMP), {"gender": "male"})
        for _ in range(60)
    ]
    items += [
        (
            dataclasses.replace(base, assigned="B" if i % 4 == 0 else "A", caseworker_key=JUDGE),
            {"gender": "female"},
        )
        for i in range(60)
    ]
    report = oversight_report(items, min_assignments=50, low_rate=0.02)
    data = report_to_dict(report) | {"window_days": 30.0}
    OversightOut.model_validate(data)  # the endpoint's response model
    path = tmp_path / "oversight.json"
    path.write_text(json.dumps(data))
    return path


def test_nbi_report_shows_the_override_rates(tmp_path: Path):
    audit = pd.DataFrame(
        {
            "group": ["treatment"] * 4,
            "employed": [1, 0, 1, 0],
            "gender": ["male", "male", "female", "female"],
            "recommended_family": ["mentor"] * 4,
            "followed": [True, True, True, False],
        }
    )
    audit.to_csv(tmp_path / "audit.csv", index=False)
    out = tmp_path / "report.html"
    args = ["report", "--fairness", str(tmp_path / "audit.csv"), "--out", str(out)]
    res = CliRunner().invoke(build_app(), [*args, "--oversight", str(_oversight_json(tmp_path))])
    assert res.exit_code == 0, res.output
    html = out.read_text()
    assert 'id="oversight"' in html and "<th>overridden</th>" in html
    assert "1 of 2 caseworkers" in html and "over the last 30 days" in html
    stamp_row = html[html.index(short_key(STAMP)) :].split("</tr>")[0]
    assert "⚠ almost never overrides" in stamp_row and "0.0" in stamp_row
    judge_row = html[html.index(short_key(JUDGE)) :].split("</tr>")[0]
    assert "25.0" in judge_row and "⚠" not in judge_row
    assert STAMP not in html  # only the short pseudonym


def test_a_file_that_is_not_the_oversight_json_is_refused(tmp_path: Path):
    bad = tmp_path / "bad.json"
    bad.write_text(json.dumps({"overall": {}}))
    with pytest.raises(ValueError, match="GET /v1/oversight"):
        read_oversight(bad)
    audit = tmp_path / "audit.csv"
    pd.DataFrame({"group": ["treatment"], "employed": [1], "gender": ["male"]}).to_csv(audit)
    out = tmp_path / "r.html"
    res = CliRunner().invoke(
        build_app(),
        ["report", "--fairness", str(audit), "--out", str(out), "--oversight", str(bad)],
    )
    assert res.exit_code != 0 and "GET /v1/oversight" in res.output


def test_a_trial_the_fairness_audit_cannot_take_still_gets_its_report(tmp_path: Path):
    """A continuous outcome is a trial `nbi experiment` analyses but not a 0/1 share the
    audit compares: the report keeps the trial and says the audit was left out."""
    rows = 40
    trial = pd.DataFrame(
        {
            "group": ["treatment", "control"] * (rows // 2),
            "benefit_weeks": [float(10 + (i * 7) % 13) for i in range(rows)],
            "gender": ["female", "male", "male", "female"] * (rows // 4),
        }
    )
    path = tmp_path / "trial.csv"
    trial.to_csv(path, index=False)
    out = tmp_path / "r.html"
    res = CliRunner().invoke(
        build_app(),
        [
            "report",
            "--rct",
            str(path),
            "--outcome-col",
            "benefit_weeks",
            "--out",
            str(out),
            "--json",
        ],
    )
    assert res.exit_code == 0, res.output
    assert "warning: fairness audit left out" in res.stderr
    doc = json.loads(res.stdout)
    assert doc["fairness"] is None and "0/1" in doc["fairness_skipped"]
    assert doc["experiment"] is not None and out.exists()
