"""The store commands, ``nbi learner`` and ``nbi serve`` on bad input: one ``error:`` line,
a non-zero exit, no traceback, nothing created or changed; and the help texts. Found by
black-box QA (D11, D12, D13, D19)."""

from __future__ import annotations

import hashlib
import os
import socket
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path

import pytest
import typer.main

from service.cli import build_app, main

NBI = str(Path(sys.executable).with_name("nbi"))
UNREACHABLE = "redis://127.0.0.1:1/0"

Run = Callable[..., tuple[int, list[str], str]]


@pytest.fixture
def nbi(capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch) -> Run:
    """``nbi`` in this process through its real entry point: (exit code, stderr lines, stdout)."""
    for name in list(os.environ):
        if name.startswith("NBI_"):
            monkeypatch.delenv(name)

    def run(*args: object, **env: str) -> tuple[int, list[str], str]:
        for name, value in env.items():
            monkeypatch.setenv(name, value)
        capsys.readouterr()
        with pytest.raises(SystemExit) as done:
            main([str(a) for a in args])
        out = capsys.readouterr()
        for name in env:
            monkeypatch.delenv(name)
        lines = [line for line in out.err.splitlines() if line.strip()]
        return int(done.value.code or 0), lines, out.out

    return run


def _one_error(result: tuple[int, list[str], str], code: int | None = None) -> str:
    rc, lines, _ = result
    assert rc != 0, lines
    assert code is None or rc == code, (rc, lines)
    assert len(lines) == 1 and lines[0].startswith("error: "), lines
    return lines[0]


def _md5(path: Path) -> str:
    return hashlib.md5(path.read_bytes()).hexdigest()  # noqa: S324 (a checksum)


STORE_COMMANDS = [
    ["audit", "verify"],
    ["audit", "show"],
    ["models", "list"],
    ["models", "kill"],
    ["models", "compare"],
    ["importance"],
    ["export", "--out", "{tmp}/x.csv"],
    ["erase", "0101901234"],
]


def _args(command: list[str], tmp_path: Path) -> list[str]:
    return [a.replace("{tmp}", str(tmp_path)) for a in command]


# ---------------------------------------------------------------- D12: a mistyped store path


@pytest.mark.parametrize("command", STORE_COMMANDS, ids=" ".join)
def test_a_missing_sqlite_store_is_refused_and_not_created(
    nbi: Run, tmp_path: Path, command: list[str]
) -> None:
    typo = tmp_path / "sub" / "typo.sqlite3"
    line = _one_error(nbi(*_args(command, tmp_path), NBI_SQLITE_PATH=str(typo)), 1)
    assert line.startswith(f"error: no store at {typo}")
    assert not typo.parent.exists()


def test_models_sqlite_path_option_is_checked_too(nbi: Run, tmp_path: Path) -> None:
    typo = tmp_path / "x" / "missing.sqlite3"
    line = _one_error(nbi("models", "list", "--sqlite-path", typo), 1)
    assert line.startswith(f"error: no store at {typo}") and not typo.parent.exists()


# ---------------------------------------------------------------- D11: unusable stores


@pytest.mark.parametrize("command", STORE_COMMANDS, ids=" ".join)
def test_an_unreachable_redis_is_one_line(nbi: Run, tmp_path: Path, command: list[str]) -> None:
    line = _one_error(
        nbi(*_args(command, tmp_path), NBI_STORE="redis", NBI_REDIS_URL=UNREACHABLE), 1
    )
    assert line.startswith("error: cannot reach the Redis store at redis://127.0.0.1:1/0")


def test_models_redis_options_unreachable(nbi: Run) -> None:
    line = _one_error(nbi("models", "list", "--store", "redis", "--redis-url", UNREACHABLE), 1)
    assert "cannot reach the Redis store" in line


def test_the_redis_password_is_not_shown(nbi: Run) -> None:
    url = "redis://:s3cret-pass@127.0.0.1:1/0"
    line = _one_error(nbi("audit", "verify", NBI_STORE="redis", NBI_REDIS_URL=url), 1)
    assert "s3cret-pass" not in line and "redis://:***@127.0.0.1:1/0" in line


@pytest.mark.parametrize("command", STORE_COMMANDS, ids=" ".join)
def test_a_file_that_is_not_a_database_is_one_line_and_unchanged(
    nbi: Run, tmp_path: Path, command: list[str]
) -> None:
    notdb = tmp_path / "notdb.sqlite3"
    notdb.write_text("action,reward\n1,0\n" * 50)
    before = _md5(notdb)
    line = _one_error(nbi(*_args(command, tmp_path), NBI_SQLITE_PATH=str(notdb)), 1)
    assert (
        line
        == f"error: {notdb} is not an nbi store (file is not a database); check NBI_SQLITE_PATH"
    )
    assert _md5(notdb) == before
    assert sorted(p.name for p in tmp_path.iterdir()) == ["notdb.sqlite3"]


@pytest.fixture
def store_file(tmp_path: Path) -> Path:
    from service.store.sqlite_store import SQLiteStore

    path = tmp_path / "nbi.sqlite3"
    SQLiteStore(path).close()
    return path


def test_models_outputs_are_checked_before_any_work(nbi: Run, store_file: Path) -> None:
    env = {"NBI_SQLITE_PATH": str(store_file)}
    plot = _one_error(nbi("models", "compare", "--plot", "/proc/nope/x.png", **env), 1)
    assert plot == "error: --plot /proc/nope/x.png: the directory /proc/nope does not exist"
    card = _one_error(nbi("models", "card", "v1", "--out", "c.md", "--format", "pdf", **env), 1)
    assert card == "error: --format must be markdown or html, got 'pdf'"
    imp = _one_error(nbi("importance", "--out", "/proc/nope/i.json", **env), 1)
    assert imp.startswith("error: --out /proc/nope/i.json")


# ---------------------------------------------------------------- D11, D17: learner ranges


@pytest.mark.parametrize(
    ("option", "value"),
    [
        ("--batch-size", "0"),
        ("--batch-size", "-1"),
        ("--snapshot-seconds", "0"),
        ("--snapshot-seconds", "nan"),
        ("--metrics-port", "-1"),
        ("--metrics-port", "65536"),
        ("--lease-ms", "0"),
        ("--block-ms", "-5"),
        ("--exit-when-idle", "-1"),
        ("--snapshot-every", "0"),
        ("--max-deliveries", "0"),
    ],
)
def test_learner_ranges_name_the_option(nbi: Run, tmp_path: Path, option: str, value: str) -> None:
    db = tmp_path / "l.sqlite3"
    line = _one_error(nbi("learner", "--sqlite-path", db, option, value), 2)
    assert option in line
    assert not db.exists()  # refused before the store was opened


def test_learner_metrics_port_in_use_is_one_line(nbi: Run, tmp_path: Path) -> None:
    with socket.socket() as busy:
        busy.bind(("127.0.0.1", 0))
        busy.listen()
        port = busy.getsockname()[1]
        rc, lines, _ = nbi(
            "learner",
            "--sqlite-path",
            tmp_path / "l.sqlite3",
            "--metrics-port",
            port,
            "--exit-when-idle",
            "1",
            "--block-ms",
            "10",
        )
    errors = [line for line in lines if line.startswith("error:")]
    assert rc == 2 and len(errors) == 1, lines
    assert f"cannot serve /metrics on 127.0.0.1:{port}" in errors[0]
    assert not any("Traceback" in line for line in lines)


def test_learner_on_a_file_that_is_not_a_database(nbi: Run, tmp_path: Path) -> None:
    notdb = tmp_path / "notdb.sqlite3"
    notdb.write_text("a,b\n1,2\n")
    rc, lines, _ = nbi("learner", "--sqlite-path", notdb, "--exit-when-idle", "1")
    errors = [line for line in lines if line.startswith("error:")]
    assert rc == 1 and errors == [
        f"error: {notdb} is not an nbi store (file is not a database); check NBI_SQLITE_PATH"
    ], lines


# ---------------------------------------------------------------- D13: serve


@pytest.mark.parametrize("port", ["99999", "65536", "-1"])
def test_serve_port_out_of_range_is_refused(nbi: Run, tmp_path: Path, port: str) -> None:
    db = tmp_path / "s.sqlite3"
    line = _one_error(nbi("serve", "--port", port, "--sqlite-path", db), 2)
    assert "--port" in line and not db.exists()


def _serve(args: list[str], tmp_path: Path) -> subprocess.CompletedProcess[str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("NBI_")}
    env["NBI_MODEL_DIR"] = str(tmp_path / "models")
    return subprocess.run(  # noqa: S603 (our own console script)
        [NBI, "serve", *args], env=env, capture_output=True, text=True, timeout=60, check=False
    )


def test_serve_start_up_failures_end_with_one_error_line(tmp_path: Path) -> None:
    with socket.socket() as busy:
        busy.bind(("127.0.0.1", 0))
        busy.listen()
        port = str(busy.getsockname()[1])
        in_use = _serve(["--port", port, "--sqlite-path", str(tmp_path / "a.sqlite3")], tmp_path)
    assert in_use.returncode == 2, in_use.stderr
    assert (
        in_use.stderr.strip()
        .splitlines()[-1]
        .startswith(f"error: cannot listen on 127.0.0.1:{port}")
    )
    free = "0"
    redis = _serve(["--port", free, "--store", "redis", "--redis-url", UNREACHABLE], tmp_path)
    assert redis.returncode == 1 and "Traceback" not in redis.stderr
    assert redis.stderr.strip().splitlines()[-1].startswith("error: cannot reach the Redis store")
    sqlite = _serve(["--port", free, "--sqlite-path", "/proc/nope/x.sqlite3"], tmp_path)
    assert sqlite.returncode == 1 and "Traceback" not in sqlite.stderr
    assert sqlite.stderr.strip().splitlines()[-1].startswith("error: ")


# ---------------------------------------------------------------- D19: help texts


def _commands() -> list[tuple[str, object]]:
    found: list[tuple[str, object]] = []

    def walk(prefix: str, command: object) -> None:
        found.append((prefix, command))
        for name, sub in (getattr(command, "commands", None) or {}).items():
            walk(f"{prefix} {name}".strip(), sub)

    walk("", typer.main.get_command(build_app()))
    return found


def test_help_paragraphs_have_no_hard_line_breaks() -> None:
    """Typer keeps a docstring's line breaks, which broke sentences in the middle at any
    terminal width; only example paragraphs (lines starting with ``nbi ``) keep theirs."""
    for name, command in _commands():
        text = getattr(command, "help", None) or ""
        for paragraph in text.split("\n\n"):
            lines = paragraph.splitlines()
            if any(line.startswith("nbi ") for line in lines[1:]):
                continue
            assert len(lines) <= 1, (name, paragraph)


def test_help_has_no_rest_markup() -> None:
    for name, command in _commands():
        texts = [getattr(command, "help", None) or ""]
        texts += [getattr(p, "help", None) or "" for p in getattr(command, "params", [])]
        assert not any("``" in t for t in texts), name


def _help(*args: str) -> str:
    from typer.testing import CliRunner

    res = CliRunner().invoke(build_app(), [*args, "--help"], env={"COLUMNS": "200"})
    assert res.exit_code == 0, res.output
    return " ".join(res.stdout.replace("│", " ").split())


def test_store_commands_say_which_store_they_use() -> None:
    for args in (["audit"], ["audit", "verify"], ["audit", "show"], ["export"], ["erase"]):
        text = _help(*args)
        assert "NBI_SQLITE_PATH" in text and "NBI_REDIS_URL" in text, args
    erase = _help("erase")
    assert "--protected" not in erase and "admin key" in erase


def test_defaults_and_ranges_are_in_the_help() -> None:
    learner = _help("learner")
    assert "NBI_SNAPSHOT_EVERY, else 50" in learner and "NBI_MAX_DELIVERIES, else 5" in learner
    calibrate = _help("simulate", "calibrate")
    assert "at least 100" in calibrate and "(0, 5]" in calibrate
    assert "1..520" in _help("simulate", "run")
    assert "0..65535" in _help("serve")
