"""The replay driven against the HTTP decision service instead of an in-process policy.

For each citizen of the week: ``POST /v1/recommendations`` (raw simulated id, context,
protected attributes for audits, the eligible action ids of the simulator's action set); the
service decides the RCT group and, for treatment, the recommendation. The simulated caseworker
then follows it with probability ``compliance`` (else practice as usual) and the driver posts
``/v1/decisions/{event_id}/assignment`` (reason ``caseworker_judgement`` when it differs).
Outcomes are posted to ``/v1/outcomes`` in the simulated week they become known (job week + 1,
or the horizon; plus the lag). The service learns on its own; ground truth, regret and the
tables are computed exactly as in :class:`~simulator.replay.Replay`.

The simulated citizen ids (``sim-<seed>-<serial>``) are not CPR numbers; the service
pseudonymises them at its edge like any raw id.

**Shadow mode.** A treatment decision the service answers without a suggestion (shadow mode,
or the kill switch) is practice as usual for the simulated caseworker; the result's
``shadow`` column marks it. When the run saw such decisions, every outcome still pending at
the end is posted after the last week (the service runs with ``simulated_time``), so the
shadow logs that ``nbi export`` writes are complete and not selected on how soon a job was
found; :func:`simulator.report.shadow_truth` then gives the exact value of a uniform policy's pmf on them, the
truth to hold the off-policy estimate from the shadow logs against (README, "Off-policy
evaluation from shadow logs").
"""

from __future__ import annotations

import dataclasses
import time
from collections import defaultdict
from collections.abc import Callable
from typing import Any

import httpx
import numpy as np

from bandit.control import Group
from bandit.errors import BanditError
from bandit.policies.uniform import UniformPolicy
from bandit.rewards import OutcomeStatus
from bandit.types import Decision
from simulator.arrivals import PreparedCohort
from simulator.config import SimulationConfig
from simulator.population import GENDERS, ORIGINS
from simulator.replay import SHOWN_OPTIONS, OutcomeReport, Replay, ReplayResult

_NO_ACTION = -1


MAX_RETRIES_503 = 20
"""Retries of a request answered 503 (as a case system would, after ``Retry-After``)."""


def _retry_after(response: httpx.Response) -> float:
    """Seconds to wait before retrying a 503 (``Retry-After``, capped at 5 s; default 1 s)."""
    try:
        return min(5.0, max(0.0, float(response.headers.get("Retry-After", "1"))))
    except ValueError:
        return 1.0


class ServiceError(BanditError):
    """The decision service answered with an error status."""


class _RemotePolicy(UniformPolicy):
    """Placeholder so the replay's tables carry the service's policy name."""

    name = "service"


class HttpReplay(Replay):
    """:class:`~simulator.replay.Replay` whose decisions and learning happen in the service.

    Parameters
    ----------
    client
        An ``httpx.Client`` with ``base_url`` set to the service (a FastAPI ``TestClient`` works
        too); the API key goes in its headers (``X-API-Key``).
    config, weeks, seed
        As for :class:`~simulator.replay.Replay`.
    """

    def __init__(
        self,
        client: httpx.Client,
        config: SimulationConfig | None = None,
        *,
        weeks: int = 52,
        seed: int = 0,
    ) -> None:
        super().__init__(_RemotePolicy(seed=seed), config, weeks=weeks, seed=seed)
        self.client = client
        self._service_ids: dict[str, str] = {}
        self._outcomes: dict[int, list[dict[str, Any]]] = defaultdict(list)
        self.requests = 0
        self.retried = 0
        self.outcomes_posted = 0
        self.shadow_events: set[str] = set()
        """Treatment decisions answered without a suggestion (shadow mode or kill switch)."""
        self._p_uniform: dict[str, float] = {}

    def run(self, progress: Callable[[int], None] | None = None) -> ReplayResult:
        """Run all weeks; after shadow decisions, post every outcome still pending.

        The result's decisions get a ``shadow`` column (see :attr:`shadow_events`) and
        ``p_uniform``: TRUE P(job within H), exactly, of a uniform draw among the offers sent
        as eligible (available at the citizen's turn), the value of a uniform pmf on the
        decision.
        """
        result = super().run(progress)
        if self.shadow_events:
            for week in sorted(self._outcomes):
                self._settle(week)
        decisions = result.decisions.copy()
        ids: list[str] = decisions["event_id"].tolist() if len(decisions) else []
        decisions["shadow"] = [event_id in self.shadow_events for event_id in ids]
        decisions["p_uniform"] = [self._p_uniform[event_id] for event_id in ids]
        return dataclasses.replace(result, decisions=decisions)

    def _post(self, path: str, body: dict[str, Any]) -> dict[str, Any]:
        self.requests += 1
        response = self.client.post(path, json=body)
        for _ in range(MAX_RETRIES_503):  # shed (overload, store down): nothing was stored
            if response.status_code != 503:  # noqa: PLR2004
                break
            self.retried += 1
            time.sleep(_retry_after(response))
            response = self.client.post(path, json=body)  # every body is idempotent
        if response.status_code >= 400:  # noqa: PLR2004
            detail = response.text[:300].replace("\n", " ")
            msg = f"POST {path} -> HTTP {response.status_code}: {detail}"
            raise ServiceError(msg)
        data: dict[str, Any] = response.json()
        return data

    def _recommend(
        self,
        prepared: PreparedCohort,
        i: int,
        idx: np.ndarray,
        seats_left: dict[str, int],
        event_id: str,
    ) -> tuple[Group, int, Decision | None, float]:
        cohort = prepared.cohort
        self._p_uniform[event_id] = float(prepared.p_job[i, idx].mean())
        body = {
            "citizen_id": f"sim-{self.seed}-{int(cohort.serial[i])}",
            "context": prepared.contexts[i].model_dump(mode="json"),
            "protected": {
                "gender": GENDERS[int(cohort.gender[i])].value,
                "origin": ORIGINS[int(cohort.origin[i])].value,
            },
            "eligible_action_ids": [self.actions[k].id for k in idx],
            "request_id": event_id,
            "max_options": SHOWN_OPTIONS,
        }
        data = self._post("/v1/recommendations", body)
        self._service_ids[event_id] = str(data["event_id"])
        group = Group(data["group"])
        rec = data.get("recommendation")
        if group is Group.CONTROL or rec is None:
            if group is Group.TREATMENT:
                self.shadow_events.add(event_id)
            return group, _NO_ACTION, None, float("nan")
        for option in data.get("options") or []:
            self._week_shown.append(
                (
                    i,
                    int(option["rank"]),
                    self._index[str(option["action_id"])],
                    float(option["expected_employment"]),
                    float(option["ci_low"]),
                    float(option["ci_high"]),
                )
            )
        shown = float(rec.get("expected_employment", float("nan")))
        return group, self._index[str(rec["action_id"])], None, shown

    def _assigned(
        self, event_id: str, recommended: int, assigned: int, decision: Decision | None
    ) -> None:
        body: dict[str, Any] = {"assigned_action_id": self.actions[assigned].id}
        if recommended != _NO_ACTION and recommended != assigned:
            body["reason_code"] = "caseworker_judgement"
        self._post(f"/v1/decisions/{self._service_ids[event_id]}/assignment", body)

    def _schedule(self, event_id: str, report: OutcomeReport, known: int, followed: bool) -> None:
        body: dict[str, Any] = {"event_id": self._service_ids[event_id]}
        outcome = report.outcome
        if outcome.status is OutcomeStatus.EMPLOYED:  # what the register says
            body.update(status="employed", weeks_to_job=outcome.weeks_to_job)
        else:
            body["status"] = "unemployed_at_horizon"
        self._outcomes[self.week + known + self.config.lag_weeks].append(body)

    def _settle(self, week: int) -> None:
        for body in self._outcomes.pop(week, []):
            self._post("/v1/outcomes", body)
            self.outcomes_posted += 1
