"""Request bodies: the wire format lives here, never in the domain. Unknown fields are
refused (422), so a typo never silently drops a value."""

from __future__ import annotations

from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field

from modelkeep.domain.access import ROLES
from modelkeep.domain.retention import MAX_KEEP_DAYS, MAX_KEEP_LAST

Scalar = str | int | float | bool | None


class Body(BaseModel):
    model_config = ConfigDict(extra="forbid")


class CreateModel(Body):
    name: str = Field(max_length=128)
    description: str = Field(default="", max_length=10_000)
    require: list[str] = Field(default_factory=list, max_length=100)


class FileEntryIn(Body):
    path: str = Field(max_length=4096)
    size: int = Field(ge=0)
    digest: str = Field(max_length=71)


class MetadataIn(Body):
    params: dict[str, Scalar] = Field(default_factory=dict)
    metrics: dict[str, float] = Field(default_factory=dict)
    datasets: list[str] = Field(default_factory=list, max_length=1000)
    commit: str | None = Field(default=None, max_length=256)
    seed: int | None = None
    run: str | None = Field(default=None, max_length=256)
    meta: dict[str, Scalar] = Field(default_factory=dict)
    signature: dict[str, Any] | None = Field(
        default=None, description="What predict takes and gives (docs/serving.md)."
    )


class PushDetails(Body):
    metadata: MetadataIn = Field(default_factory=lambda: MetadataIn())
    semver: str | None = Field(default=None, max_length=128)
    bump: Literal["major", "minor", "patch"] | None = None
    message: str | None = Field(default=None, max_length=10_000)
    if_exists: Literal["fail", "reuse"] = Field(
        default="fail",
        description="Files registered as a version already: refuse (duplicate_version, "
        "naming it) or return that version, marked reused.",
    )


class RegisterVersion(PushDetails):
    files: list[FileEntryIn] = Field(min_length=1, max_length=100_000)


class Digests(Body):
    digests: list[str] = Field(max_length=100_000)


class SetAlias(Body):
    version: str = Field(max_length=200, description="A reference: number, semver, digest…")
    reason: str | None = Field(default=None, max_length=10_000)
    expect: int | None = Field(
        None,
        description="Refuse unless the alias points here now (compare-and-set); 0 means unset.",
    )


class Promote(Body):
    version: str = Field(max_length=200)
    to: Literal["staging", "production"]
    reason: str | None = Field(default=None, max_length=10_000)
    expect: int | None = None
    override: bool = Field(
        default=False,
        description="Promote although the policy is not met (an admin, with a reason).",
    )


class SetPolicy(Body):
    document: str = Field(max_length=256 * 1024, description="The policy, as YAML text.")


class CheckResultIn(Body):
    dataset: str | None = Field(default=None, max_length=300)
    suite: str = Field(min_length=1, max_length=128)
    kind: Literal["evaluation", "fairness", "robustness", "command"]
    metrics: dict[str, float | None] = Field(max_length=1000)
    passed: bool
    failures: list[str] = Field(default_factory=list, max_length=1000)
    report: dict[str, Any] = Field(default_factory=dict)
    source: Literal["client", "modelkeep check"] = Field(
        default="client",
        description="What made the result: 'modelkeep check' (the SDK's check) or 'client'. "
        "The registry records who posted it and whether they are a runner, whatever this says.",
    )


class Decision(Body):
    stage: Literal["staging", "production"]
    decision: Literal["approve", "reject"]
    comment: str | None = Field(default=None, max_length=10_000)
    expect_digest: str | None = Field(
        default=None,
        max_length=71,
        description="Refuse unless the reference names this digest (what was reviewed).",
    )


class Rollback(Body):
    stage: Literal["staging", "production"]
    reason: str | None = Field(default=None, max_length=10_000)


class Reason(Body):
    reason: str | None = Field(default=None, max_length=10_000)


class Verify(Body):
    ref: str | None = Field(default=None, max_length=200)
    sample: float | None = Field(default=None, gt=0, le=100)


class Gc(Body):
    dry_run: bool = False


class Retention(Body):
    keep_last: int | None = Field(
        default=None, ge=1, le=MAX_KEEP_LAST, description="Keep the last N versions by number"
    )
    keep_days: int | None = Field(
        default=None,
        ge=1,
        le=MAX_KEEP_DAYS,
        description="Keep what was registered or named by an alias within D days",
    )


# users and tokens -------------------------------------------------------------------------

MAX_EXPIRES_IN = 36_500 * 86_400
"""A token lives at most 100 years (``--expires-in`` takes at most 36,500 days)."""

_ROLE: dict[str, Any] = {"enum": list(ROLES), "description": "The role"}


class GrantIn(Body):
    role: str = Field(max_length=32, json_schema_extra=_ROLE)
    model: str | None = Field(
        default=None, max_length=128, description="Only on this model (default: every model)"
    )


class ScopedGrantIn(GrantIn):
    experiment: str | None = Field(
        default=None, max_length=128, description="Only on this experiment's runs"
    )
    dataset: str | None = Field(default=None, max_length=128, description="Only on this dataset")


class CreateUser(GrantIn):
    name: str = Field(max_length=128)
    expires_in: int | None = Field(
        default=None,
        ge=1,
        le=MAX_EXPIRES_IN,
        description="The first token stops working after this many seconds (default: never)",
    )


class CreateToken(Body):
    user: str = Field(max_length=128)
    label: str | None = Field(default=None, max_length=256)
    expires_in: int | None = Field(
        default=None,
        ge=1,
        le=MAX_EXPIRES_IN,
        description="The token stops working after this many seconds (default: never)",
    )


class RevokeToken(Body):
    token: str = Field(max_length=256, description="A token's id, or the token itself (mk_…)")


class ErrorDetail(BaseModel):
    code: str = Field(description="A stable error code (docs/errors.md)")
    message: str = Field(description="What is wrong")
    hint: str = Field(description="How to fix it")


class ErrorBody(BaseModel):
    """The one shape of every error the API answers."""

    error: ErrorDetail


# tracking -------------------------------------------------------------------------------


class CodeIn(Body):
    commit: str | None = Field(default=None, max_length=64)
    branch: str | None = Field(default=None, max_length=256)
    dirty: bool | None = None
    diff_digest: str | None = Field(default=None, max_length=71)


class EnvironmentIn(Body):
    python: str | None = Field(default=None, max_length=64)
    packages_digest: str | None = Field(default=None, max_length=71)
    hostname: str | None = Field(default=None, max_length=256)
    platform: str | None = Field(default=None, max_length=256)
    command: list[str] = Field(default_factory=list, max_length=1000)


class StartRun(Body):
    experiment: str = Field(max_length=128)
    name: str | None = Field(default=None, max_length=256)
    seed: int | None = None
    params: dict[str, Scalar] = Field(default_factory=dict)
    code: CodeIn = Field(default_factory=CodeIn)
    environment: EnvironmentIn = Field(default_factory=EnvironmentIn)
    notes: list[str] = Field(default_factory=list, max_length=100)


class RunParams(Body):
    params: dict[str, Scalar]


class MetricBatch(Body):
    """Columns of points: the i-th point is (names[i], steps[i], values[i], at[i]);
    ``at`` in seconds since the epoch (UTC)."""

    names: list[str] = Field(max_length=100_000)
    steps: list[int] = Field(max_length=100_000)
    values: list[float | str] = Field(max_length=100_000)
    """Numbers, or "NaN", "Infinity", "-Infinity" (checked by the route, which is faster
    than a union with literals for thousands of points)."""
    at: list[float] = Field(max_length=100_000)


class UseDataset(Body):
    ref: str = Field(max_length=300)


class EndRun(Body):
    status: Literal["finished", "failed", "killed"] = "finished"
    error: str | None = Field(default=None, max_length=10_000)


class PushDataset(Body):
    files: list[FileEntryIn] = Field(max_length=100_000)
    source: str | None = Field(default=None, max_length=10_000)
    steps: list[str] = Field(default_factory=list, max_length=100)
    sampling: str | None = Field(default=None, max_length=10_000)
    semver: str | None = Field(default=None, max_length=128)
    message: str | None = Field(default=None, max_length=10_000)
    profiles: dict[str, Any] = Field(default_factory=dict)
    if_exists: Literal["fail", "reuse"] = "fail"


class Deploy(Body):
    version: str = Field(max_length=200, description="A reference: number, semver, digest…")
    canary: int | None = Field(None, description="Percent of requests the version answers.")
    ab: int | None = Field(None, description="Percent of sticky keys the version answers (A/B).")
    sticky: str | None = Field(
        None, max_length=200, description="Where A/B reads its key: header:N, cookie:N, query:N."
    )
    shadow: int | None = Field(None, description="Percent of requests mirrored to the version.")
    expect_revision: int | None = Field(
        None, description="Refuse unless the deployment is at this revision (0: not deployed)."
    )
    reason: str | None = Field(default=None, max_length=10_000)


class DeploymentChangeIn(Body):
    expect_revision: int | None = Field(
        None, description="Refuse unless the deployment is at this revision."
    )
    reason: str | None = Field(default=None, max_length=10_000)
