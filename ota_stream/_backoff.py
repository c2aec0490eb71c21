"""Bounded exponential backoff with jitter, shared by the downloaders."""

from __future__ import annotations

import random

import attrs

__all__ = ["Backoff"]


@attrs.frozen
class Backoff:
    """Delay before retry ``n``: ``initial * 2**(n-1)``, capped at ``maximum``, times a jitter in [0.5, 1]."""

    initial: float = 0.5
    maximum: float = 30.0

    def delay(self, attempt: int, rng: random.Random | None = None) -> float:
        """The delay before retry ``attempt``; jitter spreads retries of a fleet apart."""
        base = min(self.maximum, self.initial * (1 << min(max(attempt - 1, 0), 30)))
        jitter: float = (rng or random).uniform(0.5, 1.0)
        return base * jitter
