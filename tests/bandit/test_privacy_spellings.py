"""CPR numbers in the spellings people paste (QA report, defects 3 and 4).

The detector refuses a CPR number however it is written (any dash, space or digit, letters
around it, grouped date parts) and spares ordinary tokens; the pseudonym of a citizen id is the
same for every spelling of it, and ids stored before keep the pseudonym they had.
"""

from __future__ import annotations

import pytest

from bandit.errors import SensitiveDataError
from bandit.privacy import (
    canonical_citizen_id,
    looks_like_cpr,
    pseudonymise,
    pseudonymise_cluster,
    redact_cpr,
    reject_cpr_like_tokens,
)

KEY = b"regression-key-2026"

# Spellings of 01.01.1990-1234 that were accepted (and stored verbatim) before the fix.
MISSED_BEFORE = [
    "010190\u20131234",  # en dash (Word)
    "010190\u20101234",  # hyphen U+2010
    "010190_1234",
    "abc0101901234def",  # 10 digits inside letters (a 16-digit hex run)
    "01-01-90-1234",
    "0101 90 1234",
    "010190 - 1234",
    "010190 \u2013 1234",
    "010190\u20141234",  # em dash
    "010190\u22121234",  # minus sign
    "010190\u00a01234",  # no-break space
    "010190\u202f1234",  # narrow no-break space
    "010190\t1234",
    "010190\u00ad1234",  # soft hyphen
    "01019\u200b01234",  # zero-width space inside a group
    "\uff10\uff11\uff10\uff11\uff19\uff10\uff0d\uff11\uff12\uff13\uff14",  # full-width, with dash
    "01 01 90 1234",
    "01/01/90-1234",
    "01.01.90 \u2013 1234",
]
CAUGHT_BEFORE = [
    "010190-1234",
    "010190 1234",
    "010190/1234",
    "x010190-1234y",
    "0101901234",
    "01.01.90-1234",
    "01.01.901234",
    "010190%2D1234",
    "\uff10\uff11\uff10\uff11\uff19\uff10\uff11\uff12\uff13\uff14",  # full-width
    "\u0660\u0661\u0660\u0661\u0669\u0660-\u0661\u0662\u0663\u0664",  # Arabic-Indic
]
ORDINARY = [
    "welding",
    "forklift",
    "b-certificate",
    "iso 9001",
    "2019-2021",
    "2001-2012",
    "05/2010 - 05/2012",
    "01.2010-12.2012",
    "2024-01-15",
    "12.05.2020",
    "20123456",  # Danish phone number: 8 digits
    "20 12 34 56",
    "+45 20 12 34 56",
    "+4520123456",
    "0045 20123456",
    "cvr 12345678",
    "dkk 1.250.000",
    "amu 47596",
    "truck_c",
    "python3",
    "9999999999",  # 10 digits, no date
    "01019012345",  # 11 digits
    "3fa0101901234b0c9d8e7f6a5b4c3d2e",  # hex event id (uuid4().hex) with 10 digits in a row
    "p_" + "0123456789" + "ab" * 27,  # pseudonym
    "linucb-1f3e2c15-01234567",  # model version: fingerprint, then 8-digit update count
    "2026-01-15T10:20:30.123456+00:00",
]


@pytest.mark.parametrize("text", MISSED_BEFORE + CAUGHT_BEFORE)
def test_every_spelling_of_a_cpr_number_is_detected_and_redacted(text: str) -> None:
    assert looks_like_cpr(text)
    assert looks_like_cpr(f"cv {text} ok")
    redacted = redact_cpr(f"token {text} ok")
    assert redacted.startswith("token ") and redacted.endswith(" ok"), redacted
    assert not any(ch.isdigit() for ch in redacted), redacted
    with pytest.raises(SensitiveDataError):
        reject_cpr_like_tokens("cv_tokens", ["welding", text])


@pytest.mark.parametrize("text", ORDINARY)
def test_ordinary_tokens_and_numbers_are_not_cpr_numbers(text: str) -> None:
    assert not looks_like_cpr(text)
    reject_cpr_like_tokens("cv_tokens", [text, "-", "forklift"])


def test_redaction_leaves_ordinary_log_values_alone() -> None:
    """Redaction ignores the date's plausibility, so a bare run of ten digits goes
    (``9999999999``); the values logs carry stay."""
    kept = [t for t in ORDINARY if t not in ("9999999999", "+4520123456")]
    line = " | ".join(kept)
    assert redact_cpr(line) == line


def test_the_date_part_must_be_plausible_in_every_spelling() -> None:
    for text in ["999999-1234", "99-99-99-1234", "9999 99 1234", "320190\u20131234"]:
        assert not looks_like_cpr(text), text
        assert "1234" not in redact_cpr(text)  # logs err on the safe side


def test_a_non_date_match_does_not_hide_an_overlapping_cpr_number() -> None:
    text = "ref 12-34-010190-1234"  # "12-34-01..." is CPR-shaped but no date
    assert looks_like_cpr(text)
    assert redact_cpr(text) == "ref [redacted]"


def test_redaction_keeps_the_text_around_non_ascii_spellings() -> None:
    assert redact_cpr("a \uff10\uff11\uff10\uff11\uff19\uff10\u00a0\uff11\uff12\uff13\uff14 b") == (
        "a [redacted] b"
    )
    assert (
        redact_cpr("\u00e6\u00f8\u00e5 010190\u20131234 \u00e6")
        == "\u00e6\u00f8\u00e5 [redacted] \u00e6"
    )
    assert redact_cpr("x01019\u200b01234y") == "x[redacted]y"
    event_id = "3fa0101901234b0c9d8e7f6a5b4c3d2e"
    assert redact_cpr(f"\u00e6 {event_id} 010190\u20131234") == f"\u00e6 {event_id} [redacted]"


# --- pseudonyms ---------------------------------------------------------------------------

# Regression values, computed with the code BEFORE the canonicalisation was added (it stripped
# the id and removed ASCII "-" and " "), under KEY. Records stored before keep these pseudonyms,
# so erasure, history and the RCT arm of existing citizens must find them unchanged: never
# recompute these values from the current code.
STORED_PSEUDONYMS = {
    "2001851234": "p_6e840b06eda825b944fd27c801c5d3ae81dfe81d28f2dad3735f3c93edfa60f4",
    "200185-1234": "p_6e840b06eda825b944fd27c801c5d3ae81dfe81d28f2dad3735f3c93edfa60f4",
    " 200185-1234 ": "p_6e840b06eda825b944fd27c801c5d3ae81dfe81d28f2dad3735f3c93edfa60f4",
    "\t2001851234\n": "p_6e840b06eda825b944fd27c801c5d3ae81dfe81d28f2dad3735f3c93edfa60f4",
    "0101901234": "p_0daa1045c0fda183c82fcfd9ed5a5383027332314f476006a7d7affbba3c41d6",
    "sim-7-42": "p_5a600a2f65cba823a3cd0f82eab6589d5a30ee93a27231f5cda8849c0ec75f36",
    "Citizen 42": "p_c484fb4136f2b29c55aebd1cbb61a3216def1dad677ebeff9b177b8eae5ef79b",
    "abc-DEF 9": "p_dca83aeab38e0ffcb7f7dc74ff28db2942d487d3052c51ff97ceb2c85511c9bf",
}
STORED_CLUSTER_PSEUDONYMS = {
    ("JC-101", "jobcentre"): "c_54b08a4b5cecdfd985d9e338caceed5b193d16c152c0d4261ee0201c9717ea3f",
    ("CW 17", "caseworker"): "c_dd888a9c735f4fbe4077996b71d15dd9fb97f5a98be56a4ea98e1edd75e30832",
    (
        " jc_north.1:x ",
        "jobcentre",
    ): "c_0d217dbd462c8403c8333c81d312215848026676c13ca83e05705572ace1d902",
}
PLAIN = "2001851234"
SPELLINGS_OF_PLAIN = [
    "200185\u20131234",  # en dash
    "200185\u20101234",  # hyphen
    "200185\u22121234",  # minus sign
    "200185\u00a01234",  # no-break space
    "200185\t1234",
    "200185\u00ad1234",  # soft hyphen
    " 200185 \u2013 1234 ",
    "\u200e200185-1234\u200f",  # direction marks
    "\uff12\uff10\uff10\uff11\uff18\uff15\uff11\uff12\uff13\uff14",  # full-width
    "\uff12\uff10\uff10\uff11\uff18\uff15\uff0d\uff11\uff12\uff13\uff14",  # with full-width dash
    "\u0662\u0660\u0660\u0661\u0668\u0665\u0661\u0662\u0663\u0664",  # Arabic-Indic
    "\u06f2\u06f0\u06f0\u06f1\u06f8\u06f5-\u06f1\u06f2\u06f3\u06f4",  # extended Arabic-Indic
]


@pytest.mark.parametrize(("raw", "expected"), STORED_PSEUDONYMS.items())
def test_ids_stored_before_keep_their_pseudonym(raw: str, expected: str) -> None:
    assert pseudonymise(raw, KEY) == expected


@pytest.mark.parametrize("raw", SPELLINGS_OF_PLAIN)
def test_every_spelling_of_a_citizen_id_has_the_plain_pseudonym(raw: str) -> None:
    assert canonical_citizen_id(raw) == PLAIN
    assert pseudonymise(raw, KEY) == STORED_PSEUDONYMS[PLAIN]


def test_canonicalisation_merges_spellings_only() -> None:
    plain = pseudonymise(PLAIN, KEY)
    assert pseudonymise("2001851235", KEY) != plain
    assert pseudonymise("abc", KEY) != pseudonymise("ABC", KEY)  # no case folding
    assert pseudonymise("a_b", KEY) != pseudonymise("ab", KEY)  # only dashes and spaces go
    assert pseudonymise("a.b", KEY) != pseudonymise("ab", KEY)
    for blank in ["\u2013", "\u00a0\u200b", "\uff0d "]:
        with pytest.raises(ValueError, match="non-empty"):
            pseudonymise(blank, KEY)


@pytest.mark.parametrize(("raw_unit", "expected"), STORED_CLUSTER_PSEUDONYMS.items())
def test_cluster_ids_stored_before_keep_their_pseudonym(
    raw_unit: tuple[str, str], expected: str
) -> None:
    raw, unit = raw_unit
    assert pseudonymise_cluster(raw, KEY, unit) == expected


def test_cluster_ids_fold_non_ascii_spellings_and_keep_ascii_as_it_is() -> None:
    jc = STORED_CLUSTER_PSEUDONYMS["JC-101", "jobcentre"]
    for raw in [
        "JC\u2013101",
        "JC\u2011101",
        "\uff2a\uff23\uff0d\uff11\uff10\uff11",
        " JC-101\u00a0",
    ]:
        assert pseudonymise_cluster(raw, KEY, "jobcentre") == jc, raw
    cw = STORED_CLUSTER_PSEUDONYMS["CW 17", "caseworker"]
    assert pseudonymise_cluster("CW\u00a017", KEY, "caseworker") == cw
    assert pseudonymise_cluster("CW \u0661\u0667", KEY, "caseworker") == cw
    # ASCII "-" and spaces are part of a cluster id, as they always were
    assert pseudonymise_cluster("JC101", KEY, "jobcentre") != jc
    assert pseudonymise_cluster("CW17", KEY, "caseworker") != cw


@pytest.mark.parametrize("raw", ["01-01-90-1234", "010190\u20131234", "JC 0101 90 1234"])
def test_a_cluster_id_in_any_cpr_spelling_is_refused(raw: str) -> None:
    with pytest.raises(SensitiveDataError):
        pseudonymise_cluster(raw, KEY, "caseworker")
