"""Who or what produced a piece of evidence, and the numbers evidence may hold.

A check result's **producer** is recorded by the registry when the result arrives, not
taken from the client: ``user`` is the authenticated actor who recorded it and ``runner``
says whether that actor held the ``runner`` role on the model at that moment (a runner is
a service account, e.g. CI, holding only that role; its token is its key). ``source`` is
what the client says made the result: ``modelkeep check`` (the SDK's ``check``, which runs
the suite) or ``client`` (anything else: ``record_check``, a raw API call). A source is
only ever as trustworthy as the identity that claims it, which is why a policy that
insists on evidence from ``modelkeep check`` also names the runner it must come from.

Metric values of evidence are finite numbers (or null where a metric could not be
computed): JSON has no NaN or infinity, and a policy cannot compare them meaningfully.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from modelkeep.errors import InvalidInput

SOURCE_CHECK = "modelkeep check"
SOURCE_CLIENT = "client"
SOURCES = (SOURCE_CHECK, SOURCE_CLIENT)


def check_source(source: str) -> str:
    if source not in SOURCES:
        raise InvalidInput(
            f"{source!r} is not a source of check results",
            f"use {SOURCE_CLIENT!r} (or leave it out); 'modelkeep check' sets {SOURCE_CHECK!r}",
        )
    return source


@dataclass(frozen=True)
class Producer:
    """Who recorded a check result (``user``; ``runner``: they held the runner role on the
    model) and what the client says made it (``source``)."""

    user: str
    runner: bool
    source: str

    def to_dict(self) -> dict[str, Any]:
        return {"user": self.user, "runner": self.runner, "source": self.source}

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> Producer:
        return cls(str(data["user"]), bool(data["runner"]), str(data["source"]))

    def describe(self) -> str:
        """``runner ci via modelkeep check``, ``bob (not a runner) via client``."""
        who = f"runner {self.user}" if self.runner else f"{self.user} (not a runner)"
        return f"{who} via {self.source}"


def check_finite_metrics(metrics: Mapping[str, float | None], what: str = "metric") -> None:
    """Refuse NaN and ±infinity (null stays allowed: a metric that could not be computed)."""
    for name, value in metrics.items():
        if isinstance(value, float) and not math.isfinite(value):
            raise InvalidInput(
                f"{what} {name!r} is {value}, which is not a finite number",
                "report a finite number, or null if it could not be computed",
            )
