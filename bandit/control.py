"""Control-arm assignment: a stable, model-independent, auditable coin per citizen.

``u = HMAC-SHA256(salt, pseudonym)`` read as a number in [0, 1); the citizen is in the control
group when ``u < control_share``. The same pseudonym always gets the same group; changing the
model cannot change anyone's group. The salt, share and start date form the experiment config,
which is logged with every record (``ExperimentConfig.fingerprint``).
"""

from __future__ import annotations

import hashlib
import hmac
from dataclasses import dataclass
from datetime import date
from enum import StrEnum

from bandit.errors import InvalidInputError

DEFAULT_CONTROL_SHARE = 0.2
_SCALE = float(2**64)


class Group(StrEnum):
    """Arm of the outer RCT."""

    TREATMENT = "treatment"
    CONTROL = "control"


@dataclass(frozen=True, slots=True)
class ExperimentConfig:
    """The outer RCT's fixed configuration.

    Examples
    --------
    >>> cfg = ExperimentConfig(salt=b"experiment-salt-2026", control_share=0.2)
    >>> cfg.group_of("p_abc") == cfg.group_of("p_abc")
    True
    """

    salt: bytes
    control_share: float = DEFAULT_CONTROL_SHARE
    start_date: date = date(2026, 1, 1)
    name: str = "nbi-rct"

    def __post_init__(self) -> None:
        if not 0.0 <= self.control_share < 1.0:
            msg = f"Expected 0 <= control_share < 1, got {self.control_share}"
            raise InvalidInputError(msg)
        if len(self.salt) < 16:  # noqa: PLR2004
            msg = f"Expected an experiment salt of at least 16 bytes, got {len(self.salt)}"
            raise InvalidInputError(msg)

    def uniform_of(self, pseudonym: str) -> float:
        """The citizen's fixed uniform number in [0, 1)."""
        digest = hmac.new(self.salt, pseudonym.encode("utf-8"), hashlib.sha256).digest()
        return int.from_bytes(digest[:8], "big") / _SCALE

    def group_of(self, pseudonym: str) -> Group:
        """Arm of the citizen with this pseudonym."""
        return Group.CONTROL if self.uniform_of(pseudonym) < self.control_share else Group.TREATMENT

    @property
    def fingerprint(self) -> str:
        """Short id of this config (share, start, name and a hash of the salt), for logging."""
        salt_id = hashlib.sha256(self.salt).hexdigest()[:8]
        return f"{self.name}:{self.control_share:g}:{self.start_date.isoformat()}:{salt_id}"
