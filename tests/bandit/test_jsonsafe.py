"""Every JSON output is RFC 8259 JSON: NaN and infinities are written as null."""

from __future__ import annotations

import json
import logging
import math
from pathlib import Path
from typing import Any

import numpy as np
from typer.testing import CliRunner

from bandit.jsonsafe import dumps, finite
from service.cli import build_app
from service.logs import JsonFormatter


def _strict(text: str) -> Any:
    """Parse like a strict parser (jq, JSON.parse): NaN/Infinity are errors."""

    def refuse(name: str) -> None:
        raise ValueError(f"non-JSON constant {name}")

    return json.loads(text, parse_constant=refuse)


def test_non_finite_numbers_become_null_at_any_depth_and_in_numpy_types() -> None:
    doc = {
        "a": math.nan,
        "b": [1.0, -math.inf, {"c": np.float32("nan")}],
        "d": np.array([[1.0, np.inf]]),
        "e": (np.int64(2), math.inf),
        "f": "NaN",
    }
    assert finite(doc) == {
        "a": None,
        "b": [1.0, None, {"c": None}],
        "d": [[1.0, None]],
        "e": [2, None],
        "f": "NaN",
    }
    assert _strict(dumps(doc)) == finite(doc)
    # what a ``default`` hook returns is cleaned too
    assert _strict(dumps({"x": object()}, default=lambda _: math.nan)) == {"x": None}


def test_simulator_summary_json_and_json_output_have_no_nan(tmp_path: Path) -> None:
    # almost everyone in control: the treatment-only statistics are undefined (were NaN)
    args = ["simulate", "run", "--policy", "uniform", "--weeks", "1", "--scale", "0.002"]
    args += ["--control-share", "0.99", "--seed", "1", "--no-progress", "--json"]
    result = CliRunner().invoke(build_app(), [*args, "--out", str(tmp_path)])
    assert result.exit_code == 0, result.output
    summary = (tmp_path / "summary.json").read_text()
    doc = _strict(summary)
    assert doc["totals"]["all"]["regret_mean"] is None  # undefined (no treatment), not NaN
    assert _strict(result.stdout)["totals"] == doc["totals"]
    report = (tmp_path / "report.html").read_text()
    text = report.split("<img", 1)[0]  # the tables; base64 images may hold "NaN" by chance
    assert "<pre>" in text and "null" in text and "NaN" not in text


def test_a_log_line_with_a_nan_field_is_still_json() -> None:
    record = logging.LogRecord("nbi.x", logging.INFO, __file__, 1, "rate", None, None)
    record.rate = math.nan
    assert _strict(JsonFormatter().format(record))["rate"] is None
