"""Issue 9: the operator documentation matches the software.

* Every ``nbi`` command that README.md or deploy/README.md shows exists: ``nbi <command>
  --help`` exits 0 (through the real ``nbi`` entry point, in-process).
* deploy/README.md explains each operator topic of issue 9.
* Every ``/v1`` operation in the OpenAPI document names the role(s) it admits, and they are the
  roles the service really admits (the other roles' keys get 403).
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import pytest
from fastapi.testclient import TestClient

from service.app import create_app
from service.cli import main
from tests.helpers.api import CASE, METRICS, RESEARCHER

ROOT = Path(__file__).resolve().parents[2]
DOCS = (ROOT / "README.md", ROOT / "deploy" / "README.md")
_CODE = re.compile(r"```[a-z]*\n(.*?)```|`([^`\n]+)`", re.DOTALL)
_WORD = re.compile(r"[a-z][a-z-]*")
_ROLES = re.compile(r"\broles?:\s*([a-z]+(?:\s*(?:,|and)\s*[a-z]+)*)", re.IGNORECASE)


def _documented_commands() -> set[tuple[str, ...]]:
    """The command words after each ``nbi`` in the code of the docs (up to the first option,
    placeholder or shell syntax)."""
    found: set[tuple[str, ...]] = set()
    for doc in DOCS:
        for block, span in _CODE.findall(doc.read_text()):
            for line in (block or span).splitlines():
                for part in re.split(r"(?:^|[\s;|&(])nbi\s+", f" {line}")[1:]:
                    words: list[str] = []
                    for token in part.split():
                        if not _WORD.fullmatch(token):
                            break
                        words.append(token)
                    if words:
                        found.add(tuple(words))
    return found


COMMANDS = sorted(_documented_commands())


def test_the_docs_show_the_operator_commands() -> None:
    firsts = {words[0] for words in COMMANDS}
    assert {"models", "audit", "erase", "export", "importance", "serve", "learner"} <= firsts
    assert ("models", "approve") in COMMANDS and ("audit", "verify") in COMMANDS


@pytest.mark.parametrize("words", COMMANDS, ids=" ".join)
def test_every_documented_nbi_command_exists(
    words: tuple[str, ...], capsys: pytest.CaptureFixture[str]
) -> None:
    with pytest.raises(SystemExit) as done:
        main([*words, "--help"])
    err = capsys.readouterr().err
    assert done.value.code == 0, f"nbi {' '.join(words)} --help: {err.strip()}"


def test_deploy_readme_covers_every_operator_topic() -> None:
    text = (ROOT / "deploy" / "README.md").read_text()
    guide = text.split("## Operator guide", 1)[1]
    for needle in (
        "nbi models approve",
        "nbi models rollback",
        "nbi models compare",
        "guardrail",
        "NBI_MODEL_APPROVAL",
        "nbi models mode shadow",
        "nbi models kill",
        "NBI_CHANGE_CAP",
        "nbi audit verify",
        "nbi audit show",
        "nbi erase",
        "NBI_RETENTION_MONTHS",
        "nbi export",
        "/v1/oversight",
        "/citizen-summary",
        "nbi importance",
        "nbi models card",
    ):
        assert needle in guide, needle


KEYS = {"case": CASE, "researcher": RESEARCHER, "metrics": METRICS}
"""One dev key per non-admin role (admin is admitted everywhere)."""


def test_every_v1_operation_documents_its_roles_and_admits_exactly_them(settings: Any) -> None:
    """The roles an operation's description names are the ones it admits: every other role's
    key gets 403 (asked with placeholder path values and an empty body, so an admitted call
    fails later with 404 or 422 and changes nothing)."""
    with TestClient(create_app(settings)) as client:
        spec = client.get("/openapi.json").json()
        operations = [
            (method, path, op)
            for path, ops in spec["paths"].items()
            if path.startswith("/v1")
            for method, op in ops.items()
        ]
        assert len(operations) >= 18  # noqa: PLR2004
        for method, path, op in operations:
            text = f"{op.get('summary', '')}. {op.get('description', '')}"
            named = {
                role.strip().lower()
                for match in _ROLES.findall(text)
                for role in re.split(r",|\band\b", match)
                if role.strip()
            }
            assert named, f"{method.upper()} {path}: the description names no role"
            url = re.sub(r"\{[^}]+\}", "none", path)
            for role, headers in KEYS.items():
                body: dict[str, Any] | None = {} if method in ("post", "put") else None
                status = client.request(method, url, headers=headers, json=body).status_code
                admitted = status != 403  # noqa: PLR2004
                assert admitted == (role in named), (method, path, role, status, named)
