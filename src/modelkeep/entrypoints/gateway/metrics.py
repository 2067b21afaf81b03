"""The gateway's Prometheus metrics, written in the text exposition format (version 0.0.4)
without a client library: counters and histograms keyed by label values, updated from
the event loop only (so they need no lock), rendered on ``GET /metrics``."""

from __future__ import annotations

import bisect
from collections import defaultdict
from dataclasses import dataclass, field

CONTENT_TYPE = "text/plain; version=0.0.4; charset=utf-8"
LATENCY_BUCKETS = (
    0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0,
)  # fmt: skip
"""Seconds: small models answer in under a millisecond, large ones in seconds."""

Labels = tuple[str, ...]


def _escape(value: str) -> str:
    return value.replace("\\", "\\\\").replace("\n", "\\n").replace('"', '\\"')


def _labels(names: Labels, values: Labels, extra: str = "") -> str:
    parts = [f'{n}="{_escape(v)}"' for n, v in zip(names, values, strict=True)]
    if extra:
        parts.append(extra)
    return "{" + ",".join(parts) + "}" if parts else ""


def _number(value: float) -> str:
    if value == float("inf"):
        return "+Inf"
    return repr(float(value)) if not float(value).is_integer() else str(int(value))


@dataclass
class Counter:
    name: str
    help: str
    labels: Labels
    kind: str = "counter"
    values: dict[Labels, float] = field(default_factory=lambda: defaultdict(float))

    def inc(self, *label_values: str, by: float = 1.0) -> None:
        self.values[label_values] += by

    def set(self, *label_values: str, value: float) -> None:
        self.values[label_values] = value

    def remove(self, *label_values: str) -> None:
        self.values.pop(label_values, None)

    def render(self) -> list[str]:
        lines = [f"# HELP {self.name} {self.help}", f"# TYPE {self.name} {self.kind}"]
        for key, value in sorted(self.values.items()):
            lines.append(f"{self.name}{_labels(self.labels, key)} {_number(value)}")
        return lines


@dataclass
class Histogram:
    name: str
    help: str
    labels: Labels
    buckets: tuple[float, ...] = LATENCY_BUCKETS
    counts: dict[Labels, list[int]] = field(default_factory=dict)
    sums: dict[Labels, float] = field(default_factory=lambda: defaultdict(float))

    def observe(self, *label_values: str, value: float) -> None:
        counts = self.counts.get(label_values)
        if counts is None:
            counts = self.counts[label_values] = [0] * (len(self.buckets) + 1)
        counts[bisect.bisect_left(self.buckets, value)] += 1
        self.sums[label_values] += value

    def render(self) -> list[str]:
        lines = [f"# HELP {self.name} {self.help}", f"# TYPE {self.name} histogram"]
        for key, counts in sorted(self.counts.items()):
            total = 0
            for bound, count in zip((*self.buckets, float("inf")), counts, strict=True):
                total += count
                le = f'le="{_number(bound)}"'
                lines.append(f"{self.name}_bucket{_labels(self.labels, key, le)} {total}")
            lines.append(f"{self.name}_sum{_labels(self.labels, key)} {_number(self.sums[key])}")
            lines.append(f"{self.name}_count{_labels(self.labels, key)} {total}")
        return lines


ROUTED = ("model", "version", "role")


class GatewayMetrics:
    def __init__(self) -> None:
        self.requests = Counter(
            "modelkeep_gateway_requests_total", "Inference requests answered.", ROUTED
        )
        self.errors = Counter(
            "modelkeep_gateway_errors_total",
            "Inference requests the version failed to answer (HTTP 500).",
            ROUTED,
        )
        self.rejected = Counter(
            "modelkeep_gateway_rejected_total",
            "Inference requests refused before prediction, by error code.",
            ("model", "code"),
        )
        self.latency = Histogram(
            "modelkeep_gateway_request_duration_seconds",
            "Time to answer an inference request.",
            ROUTED,
        )
        self.shadow_requests = Counter(
            "modelkeep_gateway_shadow_requests_total",
            "Copies of requests the shadow answered.",
            ("model", "version"),
        )
        self.shadow_agreements = Counter(
            "modelkeep_gateway_shadow_agreements_total",
            "Shadow answers equal to the answer returned.",
            ("model", "version"),
        )
        self.shadow_errors = Counter(
            "modelkeep_gateway_shadow_errors_total",
            "Copies of requests the shadow failed to answer.",
            ("model", "version"),
        )
        self.shadow_dropped = Counter(
            "modelkeep_gateway_shadow_dropped_total",
            "Copies of requests not sent to the shadow because its queue was full.",
            ("model",),
        )
        self.shadow_latency = Histogram(
            "modelkeep_gateway_shadow_duration_seconds",
            "Time the shadow took to answer a copy.",
            ("model", "version"),
        )
        self.ready = Counter(
            "modelkeep_gateway_model_ready",
            "1 when the model serves its desired state, 0 when not (see /v2/health/ready).",
            ("model",),
            kind="gauge",
        )
        self.revision = Counter(
            "modelkeep_gateway_desired_revision",
            "The revision of the desired state being served.",
            ("model",),
            kind="gauge",
        )
        self.registry_reachable = Counter(
            "modelkeep_gateway_registry_reachable",
            "1 when the registry's desired-state feed answers, 0 when not.",
            (),
            kind="gauge",
        )
        self.swaps_failed = Counter(
            "modelkeep_gateway_load_failures_total",
            "Desired states refused because a version failed to load or verify.",
            ("model",),
        )

    def render(self) -> str:
        lines: list[str] = []
        for metric in vars(self).values():
            lines.extend(metric.render())
        return "\n".join(lines) + "\n"
