"""Seeded fault injection: ``seed=7,http503=0.05,drop=0.02,fault30000=0.01,latency_ms=20``.

Each UploadFile POST draws one number from a generator seeded with ``seed``, in arrival order,
so the same seed and the same arrival order give the same faults. The shares are disjoint:
a POST gets at most one of "answered 503", "connection cut mid-body" or "ipsApiFault 30000".
``latency_ms`` is added to every POST.
"""

from __future__ import annotations

import random
from dataclasses import dataclass, field
from enum import Enum


class Injected(Enum):
    """What the plan does to one POST."""

    NONE = "none"
    HTTP_503 = "http503"
    DROP = "drop"
    FAULT_30000 = "fault30000"


class FaultPlanError(ValueError):
    """A malformed ``--faults`` value; the message names the key."""


_SHARES = ("http503", "drop", "fault30000")


@dataclass(slots=True)
class FaultPlan:
    """The parsed plan and its generator."""

    seed: int = 0
    http503: float = 0.0
    drop: float = 0.0
    fault30000: float = 0.0
    latency_ms: float = 0.0
    counts: dict[str, int] = field(default_factory=lambda: {i.value: 0 for i in Injected})
    _rng: random.Random = field(init=False, repr=False)

    def __post_init__(self) -> None:
        self._rng = random.Random(self.seed)

    @classmethod
    def parse(cls, text: str) -> FaultPlan:
        """Parse ``key=value`` pairs separated by commas; empty text is no faults."""
        values: dict[str, float] = {}
        for item in filter(None, (part.strip() for part in text.split(","))):
            key, sep, raw = item.partition("=")
            if not sep or key not in ("seed", "latency_ms", *_SHARES):
                raise FaultPlanError(f"--faults: unknown item {item!r}")
            try:
                values[key] = float(raw)
            except ValueError:
                raise FaultPlanError(f"--faults: {key} must be a number, got {raw!r}") from None
        seed = int(values.pop("seed", 0))
        plan = cls(
            seed=seed,
            http503=values.get("http503", 0.0),
            drop=values.get("drop", 0.0),
            fault30000=values.get("fault30000", 0.0),
            latency_ms=values.get("latency_ms", 0.0),
        )
        plan._validate()
        return plan

    def _validate(self) -> None:
        for key in _SHARES:
            if not 0.0 <= getattr(self, key) <= 1.0:
                raise FaultPlanError(f"--faults: {key} must be between 0 and 1")
        if sum(getattr(self, key) for key in _SHARES) > 1.0:
            raise FaultPlanError("--faults: the shares add up to more than 1")
        if self.latency_ms < 0:
            raise FaultPlanError("--faults: latency_ms must not be negative")

    @property
    def active(self) -> bool:
        """Whether the plan injects anything at all."""
        return bool(self.latency_ms or any(getattr(self, key) for key in _SHARES))

    def next(self) -> Injected:
        """The fault for the next POST, in arrival order."""
        draw = self._rng.random()
        verdict = Injected.NONE
        for key in _SHARES:
            share = getattr(self, key)
            if draw < share:
                verdict = Injected(key)
                break
            draw -= share
        self.counts[verdict.value] += 1
        return verdict
