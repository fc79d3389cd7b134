"""Issue 11.1, secure by default, through real ``nbi`` processes: dev mode never listens beyond
loopback, configuration errors are one line that never shows a secret, the files the service
writes are private (0600 / 0700), and deploy/README's commands run as written start a
production-mode service or refuse with one clear line."""

from __future__ import annotations

import os
import shlex
import stat
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

import pytest

from service.store.sqlite_store import SQLiteStore
from tests.helpers.redis_server import free_port

NBI = str(Path(sys.executable).with_name("nbi"))
ROOT = Path(__file__).resolve().parents[2]


def _clean_env(tmp_path: Path, **extra: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("NBI_")}
    env.update(
        NBI_SQLITE_PATH=str(tmp_path / "db" / "nbi.sqlite3"),
        NBI_MODEL_DIR=str(tmp_path / "models"),
        NBI_POLICY="uniform",
    )
    env.update(extra)
    return env


def _run(
    argv: list[str], env: dict[str, str], timeout: float = 60
) -> subprocess.CompletedProcess[str]:
    return subprocess.run(  # noqa: S603 (our own console script)
        argv, env=env, capture_output=True, text=True, timeout=timeout, check=False
    )


def _one_error_line(result: subprocess.CompletedProcess[str]) -> str:
    assert result.returncode != 0, result.stdout + result.stderr
    lines = [line for line in result.stderr.splitlines() if line.strip()]
    assert len(lines) == 1, result.stderr
    assert lines[0].startswith("error: ")
    assert "Traceback" not in result.stderr
    return lines[0]


@pytest.mark.parametrize("host", ["0.0.0.0", "::", "10.1.2.3", "nbi.example"])  # noqa: S104
def test_dev_mode_refuses_to_listen_beyond_loopback(tmp_path, host):
    result = _run([NBI, "serve", "--host", host, "--port", str(free_port())], _clean_env(tmp_path))
    line = _one_error_line(result)
    assert "dev mode" in line and "NBI_ENVIRONMENT=prod" in line
    assert result.returncode == 2
    assert not (tmp_path / "db").exists()  # refused before anything was opened


def test_the_learner_refuses_public_metrics_in_dev_mode(tmp_path):
    result = _run(
        [NBI, "learner", "--metrics-port", str(free_port()), "--metrics-host", "0.0.0.0"],  # noqa: S104
        _clean_env(tmp_path),
    )
    assert "dev mode" in _one_error_line(result)


@pytest.mark.parametrize("command", [["serve"], ["learner", "--exit-when-idle", "1"]])
def test_a_too_short_secret_is_one_line_that_never_shows_it(tmp_path, command):
    secret = "sh0rt-s3cret"  # noqa: S105 (the test input)
    result = _run([NBI, *command], _clean_env(tmp_path, NBI_PSEUDONYM_KEY=secret))
    line = _one_error_line(result)
    assert "NBI_PSEUDONYM_KEY" in line and "at least 16 bytes" in line
    assert secret not in result.stdout + result.stderr


def test_a_bad_setting_is_one_line_naming_it(tmp_path):
    result = _run([NBI, "serve"], _clean_env(tmp_path, NBI_CONTROL_SHARE="lots"))
    assert "NBI_CONTROL_SHARE" in _one_error_line(result)


def test_sqlite_files_and_directories_are_private_whatever_the_umask(tmp_path):
    old = os.umask(0o022)
    try:
        store = SQLiteStore(tmp_path / "new" / "deeper" / "nbi.sqlite3")
    finally:
        os.umask(old)
    try:
        store.learning_lag()
        for name in ("nbi.sqlite3", "nbi.sqlite3-wal", "nbi.sqlite3-shm"):
            path = tmp_path / "new" / "deeper" / name
            assert stat.S_IMODE(path.stat().st_mode) == 0o600, name
    finally:
        store.close()
    assert stat.S_IMODE((tmp_path / "new" / "deeper").stat().st_mode) == 0o700
    assert stat.S_IMODE((tmp_path / "new").stat().st_mode) == 0o700


def _wait_healthy(port: int, proc: subprocess.Popen[bytes]) -> None:
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        assert proc.poll() is None
        try:
            with urllib.request.urlopen(f"http://127.0.0.1:{port}/healthz", timeout=1):  # noqa: S310
                return
        except OSError:
            time.sleep(0.1)
    raise AssertionError("service did not become healthy")


def test_a_served_service_writes_only_private_files(tmp_path):
    """A real ``nbi serve`` started from a permissive umask (022): the SQLite database, its
    WAL and shared-memory files are 0600 and the directories it made 0700."""
    port = free_port()
    env = _clean_env(tmp_path)
    proc = subprocess.Popen(  # noqa: S603
        [NBI, "serve", "--host", "127.0.0.1", "--port", str(port)],
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        preexec_fn=lambda: os.umask(0o022),  # noqa: PLW1509 (only sets the child's umask)
    )
    try:
        _wait_healthy(port, proc)
        files = sorted((tmp_path / "db").iterdir())
        assert files, "no database written"
        for path in files:
            assert stat.S_IMODE(path.stat().st_mode) == 0o600, path.name
        assert stat.S_IMODE((tmp_path / "db").stat().st_mode) == 0o700
    finally:
        proc.terminate()
        proc.wait(timeout=20)


def _readme_commands() -> list[str]:
    text = (ROOT / "deploy" / "README.md").read_text()
    block = text.split("## Without Docker", 1)[1].split("```sh", 1)[1].split("```", 1)[0]
    return [line for line in block.splitlines() if line.strip()]


def test_deploy_readme_commands_run_as_written_refuse_with_one_line(tmp_path):
    """Run the README's own shell lines (redis-server and the learner left out; `&` dropped so
    the serve line runs in the foreground): the placeholders are refused in one line."""
    lines = _readme_commands()
    serve = next(line for line in lines if " nbi serve " in f" {line} ")
    assert "--host 0.0.0.0" in serve
    exports = [line for line in lines if line.startswith("export ")]
    assert any("NBI_ENVIRONMENT=prod" in line for line in exports)
    port = free_port()
    script = "\n".join([*exports, serve.rstrip("& ").replace("--port 8000", f"--port {port}")])
    env = {k: v for k, v in os.environ.items() if not k.startswith("NBI_")}
    env["PATH"] = f"{Path(NBI).parent}{os.pathsep}{env.get('PATH', '')}"
    result = _run(["/bin/sh", "-c", script], env)
    line = _one_error_line(result)
    assert "invalid configuration" in line and "NBI_PSEUDONYM_KEY" in line
    assert "<change-me>" not in line  # the value itself is never printed
    # without the exports (only the command line, as the old README had it): dev mode refuses
    bare = _run(["/bin/sh", "-c", serve.rstrip("& ").replace("8000", str(port))], env)
    assert "dev mode" in _one_error_line(bare)
    assert shlex.split(serve)[0].startswith("NBI_")  # the line sets env vars itself
