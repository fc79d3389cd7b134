"""Bad input to ``nbi evaluate``, ``nbi report`` and ``nbi prognostic``: one ``error:`` line
naming the option or file, a non-zero exit, no traceback and no input file changed.

Found by black-box QA (D1, D2, D11, D16, D17).
"""

from __future__ import annotations

import hashlib
import json
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from typer.testing import CliRunner

from offline_eval.logs import write_logs
from offline_eval.prognostic import fit
from service.cli import build_app, main
from tests.offline_eval.synthetic import make_env

from .test_prognostic import _frame as case_frame
from .test_rct import _rct_frame

RUNNER = CliRunner()


@pytest.fixture(scope="module")
def files(tmp_path_factory: pytest.TempPathFactory) -> Path:
    d = tmp_path_factory.mktemp("bad_cli")
    logs, target = make_env(seed=2).sample(600, seed=3)
    write_logs(logs, d / "logs.csv")
    write_logs(logs, d / "logs.parquet")
    np.save(d / "target.npy", target)
    np.save(d / "narrow.npy", target[:, :2])
    _rct_frame(n=400).to_csv(d / "rct.csv", index=False)
    trial = case_frame(300, 5)
    trial["group"] = np.where(np.arange(300) % 5 == 0, "control", "treatment")
    trial.to_csv(d / "trial.csv", index=False)
    fit(case_frame(500, 1)).save(d / "model.json")
    return d


@pytest.fixture(autouse=True)
def _capture(capsys: pytest.CaptureFixture[str]) -> None:
    global CAPTURE  # noqa: PLW0603 (the test's capture, for _run)
    CAPTURE = capsys


CAPTURE: pytest.CaptureFixture[str] | None = None


def _run(*args: object) -> tuple[int, list[str], str]:
    """Run the real ``nbi`` entry point (usage errors become one line there too)."""
    assert CAPTURE is not None
    CAPTURE.readouterr()
    with pytest.raises(SystemExit) as done:
        main([str(a) for a in args])
    out = CAPTURE.readouterr()
    lines = [line for line in out.err.splitlines() if line.strip()]
    return int(done.value.code or 0), lines, out.out


def _one_error(*args: object) -> str:
    code, lines, _ = _run(*args)
    assert code != 0, (args, lines)
    assert len(lines) == 1 and lines[0].startswith("error: "), (args, lines)
    return lines[0]


def _md5(path: Path) -> str:
    return hashlib.md5(path.read_bytes()).hexdigest()  # noqa: S324 (a checksum)


# ---------------------------------------------------------------- D1: report --out


@pytest.mark.parametrize("option", ["--rct", "--logs"])
def test_report_refuses_to_overwrite_its_input(files: Path, tmp_path: Path, option: str) -> None:
    name = "rct.csv" if option == "--rct" else "logs.parquet"
    own = tmp_path / name
    own.write_bytes((files / name).read_bytes())
    before = _md5(own)
    extra = ["--policy", "uniform"] if option == "--logs" else []
    line = _one_error("report", option, own, *extra, "--out", own)
    assert "--out" in line and (".html" in line or "input" in line)
    assert _md5(own) == before


def test_report_refuses_an_out_that_links_to_an_input(files: Path, tmp_path: Path) -> None:
    own = tmp_path / "rct.csv"
    own.write_bytes((files / "rct.csv").read_bytes())
    link = tmp_path / "r.html"
    link.symlink_to(own)
    before = _md5(own)
    line = _one_error("report", "--rct", own, "--out", link)
    assert "--out" in line and "input" in line
    assert _md5(own) == before


def test_report_out_must_be_html(files: Path, tmp_path: Path) -> None:
    line = _one_error("report", "--rct", files / "rct.csv", "--out", tmp_path / "r.csv")
    assert line == "error: --out must end in .html or .htm, got 'r.csv'"
    assert not (tmp_path / "r.csv").exists()
    code, _, _ = _run("report", "--rct", files / "rct.csv", "--out", tmp_path / "r.htm")
    assert code == 0 and (tmp_path / "r.htm").read_text().startswith("<!doctype html>")


def test_report_oversight_file_errors_name_the_option(files: Path, tmp_path: Path) -> None:
    out = tmp_path / "r.html"
    missing = _one_error(
        "report", "--rct", files / "rct.csv", "--oversight", tmp_path / "no.json", "--out", out
    )
    assert missing.startswith("error: --oversight") and "does not exist" in missing
    bad = tmp_path / "bad.json"
    bad.write_text("{bad")
    line = _one_error("report", "--rct", files / "rct.csv", "--oversight", bad, "--out", out)
    assert line.startswith("error: --oversight") and "bad.json" in line and "JSON" in line
    assert not out.exists()


# ---------------------------------------------------------------- evaluate


@pytest.mark.parametrize(
    ("policy", "params", "message"),
    [
        ("vw", {"vw": {"bogus": 1}}, "vw has no parameter 'bogus'"),
        ("uniform", {"uniform": {"foo": 1}}, "uniform has no parameter 'foo'"),
        ("river", {"river": {"foo": 1}}, "river has no parameter 'foo'"),
        ("uniform", {"vw": {"seed": 1}}, "which is not a --policy"),
    ],
)
def test_evaluate_unknown_policy_params_are_one_line(
    files: Path, policy: str, params: dict[str, dict[str, int]], message: str
) -> None:
    line = _one_error(
        "evaluate", files / "logs.csv", "--policy", policy, "--policy-params", json.dumps(params)
    )
    assert "--policy-params" in line and message in line


@pytest.mark.parametrize(("n_boot", "seed"), [("1", "0"), ("0", "0"), ("99", "0"), ("200", "-1")])
def test_evaluate_bootstrap_ranges_name_the_option(files: Path, n_boot: str, seed: str) -> None:
    line = _one_error(
        "evaluate",
        files / "logs.csv",
        "--policy",
        "uniform",
        "--ci",
        "bootstrap",
        "--n-boot",
        n_boot,
        "--seed",
        seed,
    )
    assert ("--n-boot" if seed == "0" else "--seed") in line and "max_atoms" not in line


def test_evaluate_names_a_missing_pmf_column(files: Path, tmp_path: Path) -> None:
    frame = pd.read_csv(files / "logs.csv").drop(columns=["pmf_1"])
    frame.to_csv(tmp_path / "no_pmf1.csv", index=False)
    line = _one_error("evaluate", tmp_path / "no_pmf1.csv", "--policy", "uniform")
    assert "pmf_1" in line and "Missing" in line


@pytest.mark.parametrize("log", ["logs.csv", "logs.parquet"])
def test_evaluate_target_probs_of_the_wrong_width_names_the_shape(files: Path, log: str) -> None:
    line = _one_error("evaluate", files / log, "--target-probs", files / "narrow.npy")
    assert "(600, 2)" in line and "sum to 1" not in line


def test_evaluate_says_a_parquet_file_named_csv_is_parquet(files: Path, tmp_path: Path) -> None:
    fake = tmp_path / "p.csv"
    fake.write_bytes((files / "logs.parquet").read_bytes())
    line = _one_error("evaluate", fake, "--policy", "uniform")
    assert "not a CSV file (looks like Parquet)" in line


def test_evaluate_header_only_and_one_row_logs(files: Path, tmp_path: Path) -> None:
    frame = pd.read_csv(files / "logs.csv")
    frame.head(0).to_csv(tmp_path / "h.csv", index=False)
    frame.head(1).to_csv(tmp_path / "one.csv", index=False)
    assert "h.csv has column names but no rows" in _one_error(
        "evaluate", tmp_path / "h.csv", "--policy", "uniform"
    )
    line = _one_error("evaluate", tmp_path / "one.csv", "--policy", "uniform")
    assert "one.csv has 1 round" in line and "at least 2" in line
    (tmp_path / "empty.csv").write_text("")
    assert "empty.csv is empty" in _one_error(
        "evaluate", tmp_path / "empty.csv", "--policy", "uniform"
    )


def test_evaluate_help_lists_the_estimators_and_ranges() -> None:
    res = RUNNER.invoke(build_app(), ["evaluate", "--help"], env={"COLUMNS": "200"})
    text = " ".join(res.stdout.split())
    for name in ("ips", "snips", "dm", "dr", "sndr", "switch_dr", "replay"):
        assert name in text
    assert "default: all of them" in text and ">= 100" in text


def test_evaluate_help_estimator_names_match_the_registry() -> None:
    from offline_eval.estimators import ESTIMATORS

    assert set(ESTIMATORS) == {"ips", "snips", "dm", "dr", "sndr", "switch_dr", "replay"}


# ---------------------------------------------------------------- D2, D11, D16, D17: prognostic


def test_score_refuses_an_existing_column_unless_overwrite(files: Path, tmp_path: Path) -> None:
    trial = tmp_path / "trial.csv"
    trial.write_bytes((files / "trial.csv").read_bytes())
    before = _md5(trial)
    line = _one_error(
        "prognostic", "score", files / "model.json", trial, "--out", trial, "--column", "group"
    )
    assert "--column 'group'" in line and "--overwrite" in line
    assert _md5(trial) == before
    code, lines, _ = _run(
        "prognostic",
        "score",
        files / "model.json",
        trial,
        "--out",
        trial,
        "--column",
        "group",
        "--overwrite",
    )
    assert code == 0, lines
    assert pd.read_csv(trial)["group"].between(0, 1).all()


@pytest.mark.parametrize("name", ["", "   "])
def test_score_refuses_a_blank_column_name(files: Path, tmp_path: Path, name: str) -> None:
    out = tmp_path / "s.csv"
    line = _one_error(
        "prognostic",
        "score",
        files / "model.json",
        files / "trial.csv",
        "--out",
        out,
        "--column",
        name,
    )
    assert "--column" in line and not out.exists()


def test_score_writes_the_new_column_and_keeps_the_rest(files: Path, tmp_path: Path) -> None:
    out = tmp_path / "s.parquet"
    code, lines, stdout = _run(
        "prognostic", "score", files / "model.json", files / "trial.csv", "--out", out
    )
    assert code == 0, lines
    got = pd.read_parquet(out)
    assert list(got.columns) == [*pd.read_csv(files / "trial.csv").columns, "prognostic_score"]
    assert "scored 300 rows" in stdout


def test_prognostic_unreadable_inputs_are_one_line(files: Path, tmp_path: Path) -> None:
    (tmp_path / "empty.csv").write_text("")
    (tmp_path / "empty.parquet").write_bytes(b"")
    (tmp_path / "trunc.parquet").write_bytes((files / "logs.parquet").read_bytes()[:200])
    (tmp_path / "pq.csv").write_bytes((files / "logs.parquet").read_bytes())
    pd.read_csv(files / "trial.csv").head(0).to_csv(tmp_path / "header.csv", index=False)
    model = files / "model.json"
    cases = [
        (["fit", tmp_path / "empty.csv"], "empty.csv is empty"),
        (["fit", tmp_path / "empty.parquet"], "empty.parquet is empty"),
        (["fit", tmp_path / "trunc.parquet"], "trunc.parquet is not a readable Parquet file"),
        (["fit", tmp_path / "pq.csv"], "not a CSV file (looks like Parquet)"),
        (["score", model, tmp_path / "empty.csv"], "empty.csv is empty"),
        (["score", model, tmp_path / "trunc.parquet"], "not a readable Parquet file"),
        (["score", model, tmp_path / "header.csv"], "header.csv has column names but no rows"),
        (["score", tmp_path / "missing.json", files / "trial.csv"], "No such prognostic model"),
    ]
    for args, message in cases:
        out = tmp_path / ("m.json" if args[0] == "fit" else "s.csv")
        line = _one_error("prognostic", *args, "--out", out)
        assert message in line, (args, line)
        assert not out.exists()


@pytest.mark.parametrize("command", ["fit", "score"])
def test_prognostic_unwritable_out_is_one_line(files: Path, command: str) -> None:
    if command == "fit":
        args: list[object] = ["fit", files / "trial.csv", "--outcome", "reward"]
        out = "/proc/nope/m.json"
    else:
        args = ["score", files / "model.json", files / "trial.csv"]
        out = "/proc/nope/s.csv"
    line = _one_error("prognostic", *args, "--out", out)
    assert line == f"error: --out {out}: the directory /proc/nope does not exist"


def test_score_refuses_a_model_with_nan_coefficients(files: Path, tmp_path: Path) -> None:
    doc = json.loads((files / "model.json").read_text())
    doc["coef"] = [float("nan")] * len(doc["coef"])
    bad = tmp_path / "nan.json"
    bad.write_text(json.dumps(doc))
    out = tmp_path / "s.csv"
    line = _one_error("prognostic", "score", bad, files / "trial.csv", "--out", out)
    assert "non-finite" in line and not out.exists()
