"""What a dataset profile holds: per-column statistics, as plain data with ``to_dict()``.

``modelkeep.stats.profiling`` makes them from a CSV or Parquet file (its docstring says
what each statistic means); they import nothing but the standard library, so whatever
reads or compares profiles (dataset pushes, monitoring) needs neither pyarrow nor numpy.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

Value = str | int | float | bool | None
"""A top value as JSON has it (times as ISO text, bytes as hex)."""

QUANTILES = (("p05", 0.05), ("p25", 0.25), ("p50", 0.5), ("p75", 0.75), ("p95", 0.95))


@dataclass(frozen=True)
class NumberStats:
    """Statistics of a numeric column over its finite values (see the module docstring)."""

    count: int
    infinite: int
    min: float | None
    max: float | None
    mean: float | None
    std: float | None
    quantiles: tuple[float, ...] | None  # in the order of QUANTILES
    approximate: bool

    def to_dict(self) -> dict[str, Any]:
        quantiles = None
        if self.quantiles is not None:
            names = [name for name, _ in QUANTILES]
            quantiles = {n: finite(q) for n, q in zip(names, self.quantiles, strict=True)}
        return {
            "count": self.count,
            "infinite": self.infinite,
            "min": finite(self.min),
            "max": finite(self.max),
            "mean": finite(self.mean),
            "std": finite(self.std),
            "quantiles": quantiles,
            "approximate": self.approximate,
        }


@dataclass(frozen=True)
class CategoryStats:
    """Distinct and most common values of a category or bool column."""

    distinct: int
    top: tuple[tuple[Value, int], ...]
    approximate: bool

    def to_dict(self) -> dict[str, Any]:
        return {
            "distinct": self.distinct,
            "top": [[value, count] for value, count in self.top],
            "approximate": self.approximate,
        }


@dataclass(frozen=True)
class TimeStats:
    """Earliest and latest value of a time column, as ISO 8601 text."""

    min: str | None
    max: str | None

    def to_dict(self) -> dict[str, Any]:
        return {"min": self.min, "max": self.max}


@dataclass(frozen=True)
class ColumnProfile:
    """One column: its name, arrow type, kind, missing values and the statistics of its
    kind (exactly one of ``numbers``, ``categories``, ``times``, or none for "other")."""

    name: str
    type: str
    kind: str  # "number" | "category" | "bool" | "time" | "other"
    missing: int
    missing_share: float
    numbers: NumberStats | None = None
    categories: CategoryStats | None = None
    times: TimeStats | None = None

    def to_dict(self) -> dict[str, Any]:
        out: dict[str, Any] = {
            "name": self.name,
            "type": self.type,
            "kind": self.kind,
            "missing": self.missing,
            "missing_share": self.missing_share,
        }
        for stats in (self.numbers, self.categories, self.times):
            if stats is not None:
                out.update(stats.to_dict())
        return out


@dataclass(frozen=True)
class Profile:
    """The schema and profile of a CSV or Parquet file."""

    format: str  # "csv" | "parquet"
    rows: int
    columns: tuple[ColumnProfile, ...]

    def schema(self) -> list[dict[str, str]]:
        return [{"name": c.name, "type": c.type} for c in self.columns]

    def to_dict(self) -> dict[str, Any]:
        return {
            "format": self.format,
            "rows": self.rows,
            "columns": [c.to_dict() for c in self.columns],
        }


@dataclass(frozen=True)
class NoProfile:
    """Why a file got no profile (it is stored as plain data all the same)."""

    reason: str

    def to_dict(self) -> dict[str, Any]:
        return {"reason": self.reason}


def finite(value: float | None) -> float | None:
    if isinstance(value, int):  # exact integer bounds, however large
        return value
    if value is None or not math.isfinite(value):
        return None
    return value
