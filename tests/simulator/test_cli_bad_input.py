"""Bad input to ``nbi simulate``: one ``error:`` line naming the option, exit 2, no traceback;
the ground truth of one log is never silently replaced by another's. Found by black-box QA
(D11, D16, D18)."""

from __future__ import annotations

from pathlib import Path

import pytest

from service.cli import main


def _one_error(capsys: pytest.CaptureFixture[str], *args: object) -> str:
    capsys.readouterr()
    with pytest.raises(SystemExit) as done:
        main(["simulate", *(str(a) for a in args)])
    err = [line for line in capsys.readouterr().err.splitlines() if line.strip()]
    assert done.value.code == 2, err  # noqa: PLR2004
    assert len(err) == 1 and err[0].startswith("error: "), err
    return err[0]


@pytest.mark.parametrize(
    "args",
    [
        ["run", "--weeks", "2", "--scale", "0.05", "--no-progress", "--seed", "-1"],
        ["calibrate", "--n", "200", "--seed", "-1"],
        ["logs", "--out", "x.csv", "--n-rounds", "50", "--seed", "-1"],
    ],
)
def test_a_negative_seed_names_the_option(
    capsys: pytest.CaptureFixture[str], args: list[str]
) -> None:
    assert "--seed" in _one_error(capsys, *args)


def test_run_to_an_unwritable_directory_fails_before_the_run(
    capsys: pytest.CaptureFixture[str],
) -> None:
    line = _one_error(
        capsys, "run", "--weeks", "2", "--scale", "0.05", "--no-progress", "--out", "/proc/nope"
    )
    assert line.startswith("error: --out /proc/nope: cannot create the directory")


def test_logs_out_a_directory_or_unwritable(
    capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    line = _one_error(capsys, "logs", "--out", tmp_path, "--n-rounds", "50")
    assert "is a directory" in line and "''" not in line
    line = _one_error(capsys, "logs", "--out", "/proc/nope/x.csv", "--n-rounds", "50")
    assert line == "error: --out /proc/nope/x.csv: the directory /proc/nope does not exist"


def test_logs_refuse_to_replace_the_ground_truth_of_another_log(
    capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    first = tmp_path / "X.parquet"
    with pytest.raises(SystemExit) as done:
        main(["simulate", "logs", "--out", str(first), "--n-rounds", "200", "--seed", "1"])
    assert done.value.code == 0
    truth = tmp_path / "X.truth.npz"
    before = truth.read_bytes()
    line = _one_error(capsys, "logs", "--out", tmp_path / "X.csv", "--n-rounds", "200")
    assert "X.truth.npz belongs to X.parquet" in line
    assert truth.read_bytes() == before and not (tmp_path / "X.csv").exists()
    # writing the same log again (same stem, same file) is allowed
    with pytest.raises(SystemExit) as done:
        main(["simulate", "logs", "--out", str(first), "--n-rounds", "200", "--seed", "2"])
    assert done.value.code == 0
