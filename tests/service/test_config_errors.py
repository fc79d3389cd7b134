"""Every command that builds the settings answers a bad configuration with one ``error:``
line and exit status 2: also JSON-valued variables that are not JSON and start-up resources
(catalog file, policy name and parameters) that cannot be built. Real ``nbi`` processes."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

NBI = str(Path(sys.executable).with_name("nbi"))
SECRET = "not-json-but-secret-value"  # noqa: S105 (a test value)
BAD = {
    "NBI_API_KEYS": (SECRET, "NBI_API_KEYS: not valid JSON"),
    "NBI_POLICY_PARAMS": ("{bad", "NBI_POLICY_PARAMS: not valid JSON"),
    "NBI_CONTROL_CLUSTERS": ("[1", "NBI_CONTROL_CLUSTERS: not valid JSON"),
    "NBI_CATALOG_PATH": ("/nonexistent/catalog.csv", "NBI_CATALOG_PATH: Catalog file not found"),
    "NBI_POLICY": ("bogus", "Unknown policy 'bogus'"),
}
COMMANDS = {
    "serve": ["serve", "--host", "127.0.0.1", "--port", "1"],
    "learner": ["learner"],
}


CASES = [("serve", variable) for variable in BAD] + [
    ("learner", "NBI_API_KEYS"),
    ("learner", "NBI_POLICY"),
]


@pytest.mark.parametrize(("command", "variable"), CASES)
def test_a_bad_configuration_is_one_line_and_exit_2(tmp_path, command, variable):
    value, expected = BAD[variable]
    env = {k: v for k, v in os.environ.items() if not k.startswith("NBI_")}
    env.update(NBI_SQLITE_PATH=str(tmp_path / "nbi.sqlite3"), **{variable: value})
    result = subprocess.run(  # noqa: S603
        [NBI, *COMMANDS[command]],
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    lines = result.stderr.strip().splitlines()
    assert result.returncode == 2, result.stderr
    assert len(lines) == 1 and lines[0].startswith("error: invalid configuration: "), lines
    assert expected in lines[0]
    assert SECRET not in result.stderr + result.stdout
    assert not (tmp_path / "nbi.sqlite3").exists()  # refused before opening anything
