"""Locate (or install with apt-get, as ``make test`` does) Prometheus' ``promtool``."""

from __future__ import annotations

import os
import shutil
import subprocess


def promtool_binary() -> str:
    """Path of ``promtool``; installs Debian's ``prometheus`` package when it is missing."""
    found = shutil.which("promtool")
    if found:
        return found
    env = {**os.environ, "DEBIAN_FRONTEND": "noninteractive"}
    subprocess.run(["apt-get", "update", "-qq"], check=False, env=env, capture_output=True)
    subprocess.run(
        ["apt-get", "install", "-y", "-qq", "--no-install-recommends", "prometheus"],
        check=True,
        env=env,
        capture_output=True,
    )
    found = shutil.which("promtool")
    if not found:
        msg = "promtool not found after installing the prometheus package"
        raise RuntimeError(msg)
    return found


def check_metrics(text: str) -> subprocess.CompletedProcess[str]:
    """Run ``promtool check metrics`` on an exposition text."""
    return subprocess.run(
        [promtool_binary(), "check", "metrics"],
        input=text,
        capture_output=True,
        text=True,
        check=False,
    )
