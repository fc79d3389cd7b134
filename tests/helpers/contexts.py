"""Small builders of valid citizens and action sets for tests."""

from __future__ import annotations

from typing import Any

from bandit.catalog import Catalog, default_catalog
from bandit.context import CitizenContext
from bandit.types import Action


def citizen(**overrides: Any) -> CitizenContext:
    """A valid dagpenge citizen; override any field."""
    data: dict[str, Any] = {
        "target_group": "dagpenge",
        "age": 35,
        "education": "vocational",
        "weeks_unemployed": 4,
        "last_sector": "construction",
        "cv_tokens": ("welding",),
    }
    data.update(overrides)
    return CitizenContext.from_mapping(data)


def catalog_actions(n: int, catalog: Catalog | None = None) -> list[Action]:
    """The first ``n`` actions of the default catalog (spread across families)."""
    cat = catalog or default_catalog()
    step = max(1, len(cat) // n)
    return [cat[i].as_action() for i in range(0, step * n, step)][:n]
