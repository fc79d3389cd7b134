"""Information for the citizen about one decision, in plain Danish or English (issue 9, item 8;
GDPR art. 13/14 and 22).

The summary says what the system suggested to the caseworker, or that nothing was shown (the
trial's comparison group, shadow mode, or practice as usual under the kill switch); the main
case facts behind a shown suggestion; that the caseworker decided, and what was assigned once
recorded; and how to ask for a human review (``Settings.citizen_review_contact_da`` / ``_en``).

Case facts come only from the explanation whitelist (:data:`bandit.explain.DRIVER_FEATURES`:
weeks unemployed, education, last sector, local labour demand, benefit history): never a
protected attribute (those are stored apart and not read here) nor a sensitive fact. They are
ranked by how much each moves the serving model's estimate for the suggested offer
(:func:`bandit.explain.feature_effects`); when none moves it noticeably (e.g. a model that has
learned little) the text says so and lists them in the whitelist's order. The ranking uses the model serving
now, which may be newer than the one that made the suggestion (``model_version``).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, date, datetime
from typing import TYPE_CHECKING, Literal

from bandit.control import Group
from bandit.errors import UnknownActionError
from bandit.explain import DRIVER_FEATURES, MIN_EFFECT, feature_effects
from bandit.records import DecisionRecord
from bandit.types import FeatureValue

if TYPE_CHECKING:
    from bandit.catalog import Catalog
    from bandit.policies import Policy

Lang = Literal["da", "en"]
Situation = Literal["suggested", "control", "shadow", "practice"]
MAX_FACTS = 3

FAMILY_DA: Mapping[str, str] = {
    "standard_contact": "almindelig kontakt med jobcentret (ingen ekstra indsats)",
    "individual_meetings": "ekstra individuelle samtaler",
    "group_meetings": "fællessamtaler",
    "job_search_course": "jobsøgningskursus",
    "private_internship": "virksomhedspraktik i en privat virksomhed",
    "public_internship": "virksomhedspraktik på en offentlig arbejdsplads",
    "private_wage_subsidy": "job med løntilskud i en privat virksomhed",
    "public_wage_subsidy": "job med løntilskud på en offentlig arbejdsplads",
    "six_week_course": "seks ugers jobrettet uddannelse",
    "classroom_training": "uddannelse eller opkvalificering",
    "mentor": "en mentor",
}
EDUCATION: Mapping[str, tuple[str, str]] = {
    "lower_secondary": ("grundskole", "lower secondary school"),
    "upper_secondary": ("gymnasial uddannelse", "upper secondary school"),
    "vocational": ("erhvervsuddannelse", "vocational education"),
    "short_higher": ("kort videregående uddannelse", "short higher education"),
    "bachelor": ("bacheloruddannelse", "a bachelor's degree"),
    "master": ("kandidatuddannelse", "a master's degree"),
}
SECTOR: Mapping[str, tuple[str, str]] = {
    "construction": ("byggeri", "construction"),
    "manufacturing": ("industri", "manufacturing"),
    "retail": ("detailhandel", "retail"),
    "hospitality": ("hotel og restauration", "hotels and restaurants"),
    "transport": ("transport", "transport"),
    "health_care": ("sundhed og omsorg", "health care"),
    "education": ("undervisning", "education"),
    "it": ("it", "IT"),
    "finance": ("finans", "finance"),
    "public_admin": ("offentlig administration", "public administration"),
    "culture": ("kultur", "culture"),
    "cleaning": ("rengøring", "cleaning"),
}
_NO_SECTOR = frozenset({"", "none", "any"})

_TEXT: Mapping[str, Mapping[Lang, str]] = {
    "intro": {
        "da": "Den {day} brugte dit jobcenter et IT-system, der foreslår tilbud, da din sag "
        "blev behandlet.",
        "en": "On {day} your job centre used a computer system that suggests offers when "
        "your case was handled.",
    },
    "suggested": {
        "da": "Systemet foreslog din sagsbehandler: {offer}.",
        "en": "The system suggested to your caseworker: {offer}.",
    },
    "facts": {
        "da": "Forslaget byggede især på disse oplysninger i din sag:",
        "en": "The suggestion was based mainly on these facts in your case:",
    },
    "unranked": {
        "da": "Systemet har kun lært lidt endnu, så ingen enkelt oplysning gav udslaget. Det "
        "kendte blandt andet disse oplysninger i din sag:",
        "en": "The system has learned little so far, so no single fact decided the suggestion. "
        "The facts it had about your case include:",
    },
    "no_facts": {
        "da": "Forslaget byggede på oplysningerne i din sag, ikke på køn eller herkomst.",
        "en": "The suggestion was based on the facts of your case, not on gender or origin.",
    },
    "not_protected": {
        "da": "Systemet bruger ikke dit køn, din herkomst eller dit helbred som begrundelse.",
        "en": "The system does not use your gender, origin or health as a reason.",
    },
    "control": {
        "da": "Din sag var med i en afprøvning af systemet, hvor en del af sagerne "
        "tilfældigt behandles uden forslag. Din sagsbehandler fik derfor intet forslag.",
        "en": "Your case was part of a trial of the system in which some cases are chosen at "
        "random to be handled without a suggestion. Your caseworker therefore got no "
        "suggestion.",
    },
    "shadow": {
        "da": "Systemet var i en prøveperiode, hvor det regner et forslag ud uden at vise det. "
        "Din sagsbehandler så intet forslag, og det påvirkede ikke din sag.",
        "en": "The system was in a test period in which it works out a suggestion without "
        "showing it. Your caseworker saw no suggestion, and it did not affect your case.",
    },
    "practice": {
        "da": "Systemet var slået fra, da din sag blev behandlet. Din sagsbehandler fik intet "
        "forslag.",
        "en": "The system was switched off when your case was handled. Your caseworker got no "
        "suggestion.",
    },
    "decided": {
        "da": "Det er din sagsbehandler, der træffer beslutningen, ikke systemet.",
        "en": "Your caseworker makes the decision, not the system.",
    },
    "assigned": {
        "da": "Din sagsbehandler valgte: {offer}.",
        "en": "Your caseworker chose: {offer}.",
    },
    "assigned_same": {
        "da": "Din sagsbehandler valgte det foreslåede tilbud.",
        "en": "Your caseworker chose the suggested offer.",
    },
    "not_assigned": {
        "da": "Din sagsbehandlers valg er ikke registreret endnu.",
        "en": "Your caseworker's choice is not recorded yet.",
    },
}


@dataclass(frozen=True, slots=True)
class CitizenText:
    """The summary's parts in one language (``text``: all of them as one message)."""

    situation: Situation
    suggested: str | None
    case_facts: tuple[str, ...]
    caseworker_decision: str
    assigned: str | None
    human_review: str
    text: str


def situation_of(record: DecisionRecord) -> Situation:
    """What the caseworker was shown.

    Examples
    --------
    >>> r = DecisionRecord("e", 0.0, "p_x", Group.CONTROL, {}, (), (), None, None, "m", "p")
    >>> situation_of(r)
    'control'
    """
    if record.group is Group.CONTROL:
        return "control"
    if record.mode == "shadow":
        return "shadow"
    if record.mode == "practice" or record.recommended is None:
        return "practice"
    return "suggested"


def offer_name(catalog: Catalog, action_id: str, lang: Lang) -> str:
    """The offer in the citizen's language (Danish: its family in words and the catalog name).

    An offer no longer in the catalog is named by its id.
    """
    try:
        item = catalog.get(action_id)
    except UnknownActionError:
        return action_id
    if lang == "en":
        return item.name
    family = FAMILY_DA.get(item.family.value, item.family.value.replace("_", " "))
    return f"{family} ({item.name})"


def fact_phrase(name: str, value: FeatureValue, lang: Lang) -> str | None:
    """One whitelisted case fact as a sentence (``None``: nothing worth saying).

    Examples
    --------
    >>> fact_phrase("weeks_unemployed", 30, "da"), fact_phrase("weeks_unemployed", 30, "en")
    ('Du har været ledig i 30 uger.', 'You have been unemployed for 30 weeks.')
    >>> fact_phrase("last_sector", "none", "en") is None
    True
    """
    da = lang == "da"
    if name == "weeks_unemployed":
        w = int(value)
        return (
            f"Du har været ledig i {w} uger." if da else f"You have been unemployed for {w} weeks."
        )
    if name == "education":
        level = EDUCATION.get(str(value), (str(value), str(value).replace("_", " ")))
        return f"Din uddannelse: {level[0]}." if da else f"Your education: {level[1]}."
    if name == "last_sector":
        if str(value) in _NO_SECTOR:
            return None
        sector = SECTOR.get(str(value), (str(value), str(value).replace("_", " ")))
        return (
            f"Dit seneste job var inden for {sector[0]}."
            if da
            else f"Your last job was in {sector[1]}."
        )
    if name == "labour_demand_index":
        d = float(value)
        decimal = f"{d:.1f}".replace(".", ",")
        return (
            f"Efterspørgslen i dit fag i dit område: {decimal} ledige stillinger pr. ledig."
            if da
            else f"Demand in your occupation locally: {d:.1f} vacancies per unemployed person."
        )
    if name == "benefit_history_weeks":
        b = int(value)
        return (
            f"Du har fået ydelse i {b} uger i de tre år før denne ledighedsperiode."
            if da
            else f"You received benefits for {b} weeks in the three years before this period "
            "of unemployment."
        )
    return None


def ranked_facts(
    record: DecisionRecord, policy: Policy | None, catalog: Catalog
) -> tuple[list[str], bool]:
    """The whitelisted facts of a shown suggestion, the most influential first, and whether
    any moved the estimate noticeably (``False``: listed in the whitelist's order); see the
    module docstring. Empty when nothing was suggested."""
    if situation_of(record) != "suggested" or record.recommended is None:
        return [], False
    present = [k for k in DRIVER_FEATURES if k in record.context]
    effects: dict[str, float] = {}
    if policy is not None and record.recommended in catalog.ids:
        action = catalog.action(record.recommended)
        effects = feature_effects(lambda ctx: policy.estimate_of(ctx, action), record.context)
    moving = sorted(
        (k for k in present if abs(effects.get(k, 0.0)) >= MIN_EFFECT),
        key=lambda k: -abs(effects[k]),
    )
    return (moving, True) if moving else (present, False)


def citizen_text(
    record: DecisionRecord,
    facts: Sequence[str],
    catalog: Catalog,
    lang: Lang,
    review_contact: str,
    *,
    ranked: bool = True,
) -> CitizenText:
    """The summary of ``record`` in ``lang``; ``facts`` and ``ranked`` from
    :func:`ranked_facts`.

    Examples
    --------
    >>> from bandit.catalog import default_catalog
    >>> r = DecisionRecord("e", 0.0, "p_x", Group.CONTROL, {}, (), (), None, None, "m", "p")
    >>> t = citizen_text(r, [], default_catalog(), "en", "Call us.")
    >>> t.situation, t.suggested, t.human_review
    ('control', None, 'Call us.')
    """
    situation = situation_of(record)
    day = datetime.fromtimestamp(record.timestamp, tz=UTC).date()
    parts = [_TEXT["intro"][lang].format(day=_day(day, lang))]
    suggested = None
    phrases: list[str] = []
    if situation == "suggested" and record.recommended is not None:
        suggested = offer_name(catalog, record.recommended, lang)
        parts.append(_TEXT["suggested"][lang].format(offer=suggested))
        phrases = [p for k in facts if (p := fact_phrase(k, record.context[k], lang)) is not None][
            :MAX_FACTS
        ]
        if phrases:
            lead = _TEXT["facts" if ranked else "unranked"][lang]
            parts.append(lead + " " + " ".join(phrases))
        else:
            parts.append(_TEXT["no_facts"][lang])
        parts.append(_TEXT["not_protected"][lang])
    else:
        parts.append(_TEXT[situation][lang])
    decided = _TEXT["decided"][lang]
    parts.append(decided)
    assigned = None
    if record.assigned is None:
        parts.append(_TEXT["not_assigned"][lang])
    elif situation == "suggested" and record.assigned == record.recommended:
        assigned = suggested
        parts.append(_TEXT["assigned_same"][lang])
    else:
        assigned = offer_name(catalog, record.assigned, lang)
        parts.append(_TEXT["assigned"][lang].format(offer=assigned))
    parts.append(review_contact)
    return CitizenText(
        situation=situation,
        suggested=suggested,
        case_facts=tuple(phrases),
        caseworker_decision=decided,
        assigned=assigned,
        human_review=review_contact,
        text=" ".join(parts),
    )


_MONTHS_DA = [
    "januar",
    "februar",
    "marts",
    "april",
    "maj",
    "juni",
    "juli",
    "august",
    "september",
    "oktober",
    "november",
    "december",
]


def _day(day: date, lang: Lang) -> str:
    if lang == "da":
        return f"{day.day}. {_MONTHS_DA[day.month - 1]} {day.year}"
    return f"{day.day} {day.strftime('%B')} {day.year}"
