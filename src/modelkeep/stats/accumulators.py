"""Running statistics over batches of numbers, in bounded memory (numpy only).

``Moments`` merges count, mean and the sum of squared deviations batch by batch (Chan et
al.), ``Sample`` keeps every value while they fit and a uniform reservoir sample after
that. Dataset profiles use them per column; monitoring folds prediction logs with them.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
import numpy.typing as npt

Floats = npt.NDArray[np.float64]


@dataclass
class Moments:
    """Count, mean and sum of squared deviations, merged batch by batch (Chan et al.)."""

    n: int = 0
    mean: float = 0.0
    m2: float = 0.0

    def add(self, values: Floats) -> None:
        m = values.size
        with np.errstate(over="ignore", invalid="ignore"):
            mean = float(values.mean())
            m2 = float(np.square(values - mean).sum())
            n = self.n + m
            delta = mean - self.mean
            self.mean += delta * m / n
            self.m2 += m2 + delta * delta * self.n * m / n
        self.n = n

    def std(self) -> float | None:
        return float(np.sqrt(self.m2 / (self.n - 1))) if self.n > 1 else None


@dataclass
class Sample:
    """All values while they fit in ``size``; after that a uniform reservoir sample
    (Vitter's algorithm R, vectorised per batch)."""

    size: int
    rng: np.random.Generator
    seen: int = 0
    parts: list[Floats] = field(default_factory=list)
    reservoir: Floats | None = None

    @property
    def approximate(self) -> bool:
        return self.reservoir is not None

    def values(self) -> Floats:
        if self.reservoir is not None:
            return self.reservoir
        return np.concatenate(self.parts) if self.parts else np.empty(0)

    def add(self, values: Floats) -> None:
        if self.reservoir is None:
            room = self.size - self.seen
            self.parts.append(values[:room].copy())  # a copy: no arrow buffer kept alive
            self.seen += min(room, values.size)
            if values.size <= room:
                return
            self.reservoir, self.parts = np.concatenate(self.parts), []
            values = values[room:]
        self._replace(values)

    def _replace(self, values: Floats) -> None:
        assert self.reservoir is not None
        position = self.seen + 1 + np.arange(values.size)  # 1-based place in the stream
        taken = np.flatnonzero(self.rng.random(values.size) * position < self.size)
        slots = self.rng.integers(0, self.size, taken.size)
        # As in the one-at-a-time algorithm, the last value sent to a slot stays there.
        unique, first_from_end = np.unique(slots[::-1], return_index=True)
        self.reservoir[unique] = values[taken[taken.size - 1 - first_from_end]]
        self.seen += values.size
