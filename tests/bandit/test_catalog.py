from __future__ import annotations

from pathlib import Path

import pytest

from bandit.catalog import (
    Catalog,
    Family,
    catalog_to_csv,
    default_catalog,
    generate_default_catalog,
    load_catalog,
)
from bandit.errors import CatalogError, UnknownActionError


def test_default_catalog_has_300_plus_offers_in_every_family() -> None:
    cat = default_catalog()
    assert len(cat) >= 300
    assert set(cat.families()) == set(Family)
    assert len(set(cat.ids)) == len(cat)


def test_shipped_csv_equals_generator_output() -> None:
    # the shipped file is the deterministic generator's output, not a hand-edited copy
    assert catalog_to_csv(default_catalog()) == catalog_to_csv(generate_default_catalog())


def test_csv_and_yaml_round_trip(tmp_path: Path) -> None:
    cat = default_catalog()
    csv_path = tmp_path / "c.csv"
    csv_path.write_text(catalog_to_csv(cat))
    assert load_catalog(csv_path).ids == cat.ids
    yaml_path = tmp_path / "c.yaml"
    yaml_path.write_text(
        "interventions:\n"
        "  - {id: A, name: Mentor A, family: mentor, length_weeks: 8, capacity: 3}\n"
        "  - {id: B, name: Course, family: six_week_course, length_weeks: 6,"
        " target_groups: [dagpenge], min_weeks_unemployed: 5}\n"
    )
    loaded = load_catalog(yaml_path)
    assert loaded.ids == ("A", "B")
    assert loaded.get("A").capacity == 3
    assert loaded.get("B").min_weeks_unemployed == 5


HEADER = "id,name,family,length_weeks\n"


@pytest.mark.parametrize(
    ("body", "message"),
    [
        ("A,x,mentor,4\nA,y,mentor,4\n", r"Duplicate intervention id 'A' \(entries 1 and 2\)"),
        ("A,x,juggling,4\n", r"row 1: unknown family 'juggling'"),
        ("A,x,mentor,-3\n", r"row 1: negative length_weeks -3"),
        ("A,x,mentor,four\n", r"row 1: `length_weeks` must be an integer, got 'four'"),
        ("A,x,mentor,\n", r"row 1: missing value for `length_weeks`"),
        ("A,x,mentor,200\n", r"length_weeks must be in 1\.\.104, got 200"),
    ],
)
def test_invalid_catalog_rows_give_precise_errors(tmp_path: Path, body: str, message: str) -> None:
    path = tmp_path / "bad.csv"
    path.write_text(HEADER + body)
    with pytest.raises(CatalogError, match=message):
        load_catalog(path)


def test_unknown_column_and_missing_file(tmp_path: Path) -> None:
    path = tmp_path / "bad.csv"
    path.write_text("id,name,family,length_weeks,colour\nA,x,mentor,4,red\n")
    with pytest.raises(CatalogError, match=r"unknown column\(s\) \['colour'\]"):
        load_catalog(path)
    with pytest.raises(CatalogError, match="Catalog file not found"):
        load_catalog(tmp_path / "missing.csv")
    with pytest.raises(CatalogError, match="unsupported extension"):
        load_catalog(Path(__file__))


def test_lookup_unknown_id() -> None:
    with pytest.raises(UnknownActionError, match="Unknown action id 'NOPE'"):
        default_catalog().get("NOPE")
    with pytest.raises(CatalogError, match="at least one"):
        Catalog([])
