"""Registered models and their versions: immutable records and the rules on metadata."""

from __future__ import annotations

import math
import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from datetime import datetime
from types import MappingProxyType
from typing import Any

from modelkeep.domain.canonical import canonical_forms, canonical_json
from modelkeep.domain.digest import sha256_digest
from modelkeep.domain.manifest import FileEntry
from modelkeep.domain.names import parse_ref
from modelkeep.domain.numbers import is_int64
from modelkeep.domain.semver import Bump
from modelkeep.domain.signatures import parse_signature
from modelkeep.domain.text import check_text
from modelkeep.errors import (
    DuplicateVersion,
    InvalidInput,
    InvalidMetadata,
    MissingMetadata,
    SemverExists,
    VersionPurged,
)

Scalar = str | int | float | bool | None
METADATA_KEY = re.compile(r"[A-Za-z0-9_][A-Za-z0-9_.:/-]{0,249}")
MAX_VALUE_CHARS = 8192
MAX_ENTRIES = 1000
MAX_DESCRIPTION = 10_000
TOP_FIELDS = ("params", "metrics", "datasets", "commit", "seed", "run", "message")
KEYED_FIELDS = ("params", "metrics", "meta")
STATUSES = ("active", "archived")
IF_EXISTS = ("fail", "reuse")
"""What a push of files already registered as a version does: ``fail`` (the default,
``duplicate_version``) or ``reuse`` (return that version, write nothing)."""


def _frozen(mapping: Mapping[str, Any]) -> Mapping[str, Any]:
    return MappingProxyType(dict(mapping))


@dataclass(frozen=True)
class VersionMetadata:
    """What was given at registration; never changes afterwards."""

    params: Mapping[str, Scalar] = field(default_factory=dict)
    metrics: Mapping[str, float] = field(default_factory=dict)
    datasets: tuple[str, ...] = ()
    commit: str | None = None
    seed: int | None = None
    run: str | None = None
    meta: Mapping[str, Scalar] = field(default_factory=dict)
    signature: Mapping[str, Any] | None = None
    """What ``predict`` takes and gives (domain/signatures.py); only in versions pushed
    with one, so the metadata digests of older versions stay as they were."""

    def __post_init__(self) -> None:
        object.__setattr__(self, "params", _frozen(self.params))
        object.__setattr__(self, "metrics", _frozen(self.metrics))
        object.__setattr__(self, "meta", _frozen(self.meta))
        object.__setattr__(self, "datasets", tuple(self.datasets))

    def to_dict(self) -> dict[str, Any]:
        return {
            "params": dict(self.params),
            "metrics": dict(self.metrics),
            "datasets": list(self.datasets),
            "commit": self.commit,
            "seed": self.seed,
            "run": self.run,
            "meta": dict(self.meta),
            **({"signature": dict(self.signature)} if self.signature is not None else {}),
        }

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> VersionMetadata:
        return cls(
            params=data.get("params") or {},
            metrics=data.get("metrics") or {},
            datasets=tuple(data.get("datasets") or ()),
            commit=data.get("commit"),
            seed=data.get("seed"),
            run=data.get("run"),
            meta=data.get("meta") or {},
            signature=data.get("signature"),
        )

    def validated(self) -> VersionMetadata:
        """Check every value; return a copy with metrics as floats."""
        _check_scalars("param", self.params)
        _check_scalars("meta", self.meta)
        metrics = {key: _metric_value(key, value) for key, value in self.metrics.items()}
        for ref in self.datasets:
            parse_ref(ref)
        for name, text in (("commit", self.commit), ("run", self.run)):
            if text is not None and not (0 < len(text) <= 256 and text.isprintable()):
                raise InvalidMetadata(f"{name} {text!r} is empty, too long or unprintable")
        if self.seed is not None and not is_int64(self.seed):
            raise InvalidMetadata(f"seed {self.seed!r} is not a whole number of 64 bits")
        signature = None if self.signature is None else parse_signature(self.signature).to_dict()
        return VersionMetadata(
            self.params,
            metrics,
            self.datasets,
            self.commit,
            self.seed,
            self.run,
            self.meta,
            signature,
        )

    def has(self, field_name: str, message: str | None) -> bool:
        """Whether the required field ``field_name`` (e.g. ``commit``, ``meta.owner``) is set."""
        top, _, key = field_name.partition(".")
        if key:
            value: Any = getattr(self, top)
            return key in value and value[key] not in (None, "")
        if top == "message":
            return bool(message)
        return bool(getattr(self, top)) or (top == "seed" and self.seed == 0)


def check_params(kind: str, values: Mapping[str, Any]) -> None:
    """Keys and scalar values of params (or free fields): InvalidMetadata if not."""
    _check_scalars(kind, values)


def _check_scalars(kind: str, values: Mapping[str, Any]) -> None:
    _check_keys(kind, values)
    for key, value in values.items():
        if value is not None and not isinstance(value, str | int | float | bool):
            raise InvalidMetadata(
                f"{kind} {key!r} is a {type(value).__name__}",
                "give a string, number, boolean or null",
            )
        if isinstance(value, float) and not math.isfinite(value):
            raise InvalidMetadata(f"{kind} {key!r} is {value}", "give a finite number")
        if isinstance(value, str) and len(value) > MAX_VALUE_CHARS:
            raise InvalidMetadata(
                f"{kind} {key!r} is longer than {MAX_VALUE_CHARS} characters",
                "store large values as a file of the version",
            )
        if isinstance(value, str) and "\x00" in value:
            raise InvalidMetadata(f"{kind} {key!r} contains a NUL character (\\x00)")


def _check_keys(kind: str, values: Mapping[str, Any]) -> None:
    if len(values) > MAX_ENTRIES:
        raise InvalidMetadata(f"more than {MAX_ENTRIES} {kind} entries")
    for key in values:
        if not isinstance(key, str) or not METADATA_KEY.fullmatch(key):
            raise InvalidMetadata(
                f"{kind} key {key!r} is not allowed",
                "use 1-250 letters, digits, '_', '.', ':', '/' or '-'",
            )


def _metric_value(key: str, value: Any) -> float:
    _check_keys("metric", {key: value})
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise InvalidMetadata(f"metric {key!r} is {value!r}, not a number")
    if not math.isfinite(value):
        raise InvalidMetadata(f"metric {key!r} is {value}", "give a finite number")
    return float(value)


def check_required_fields(fields: Iterable[str]) -> tuple[str, ...]:
    """Validate a model's required-metadata list (``commit``, ``params.lr``, ``meta.owner``)."""
    result: list[str] = []
    for name in fields:
        top, dot, key = name.partition(".")
        keyed_ok = dot and top in KEYED_FIELDS and METADATA_KEY.fullmatch(key)
        if not (keyed_ok or (not dot and top in TOP_FIELDS)):
            raise InvalidMetadata(
                f"{name!r} cannot be required",
                f"require one of {', '.join(TOP_FIELDS)}, or params.KEY, metrics.KEY, meta.KEY",
            )
        if name not in result:
            result.append(name)
    return tuple(result)


def missing_fields(
    required: Iterable[str], metadata: VersionMetadata, message: str | None
) -> list[str]:
    return [name for name in required if not metadata.has(name, message)]


def require_fields(
    model: str, required: Iterable[str], metadata: VersionMetadata, message: str | None
) -> None:
    missing = missing_fields(required, metadata, message)
    if missing:
        raise MissingMetadata(f"model {model!r} requires {', '.join(missing)}")


def check_description(text: str) -> str:
    if len(text) > MAX_DESCRIPTION:
        raise InvalidMetadata(f"the description is longer than {MAX_DESCRIPTION} characters")
    check_text("the description", text)
    return text


@dataclass(frozen=True)
class Model:
    name: str
    description: str
    required: tuple[str, ...]
    created_at: datetime
    created_by: str
    latest: int | None = None
    version_count: int = 0

    def to_dict(self) -> dict[str, Any]:
        return {
            "name": self.name,
            "description": self.description,
            "required": list(self.required),
            "created_at": self.created_at.isoformat(),
            "created_by": self.created_by,
            "latest": self.latest,
            "versions": self.version_count,
        }


@dataclass(frozen=True)
class Version:
    model: str
    number: int
    semver: str | None
    digest: str
    status: str
    created_at: datetime
    created_by: str
    files: tuple[FileEntry, ...]
    metadata: VersionMetadata
    message: str | None = None
    aliases: tuple[str, ...] = ()
    archived_at: datetime | None = None
    purged_at: datetime | None = None
    """When retention released its files: its manifest and metadata stay, its files
    may be gone (``gc`` deletes the blobs no other version needs)."""
    reused: bool = False
    """A push with ``if_exists="reuse"`` found its files registered as this version
    already: nothing was written (JSON ``"reused": true``, absent otherwise)."""
    from_run: FromRun | None = None
    """What the run it was pushed from logged (``metadata.run`` names a run of this
    store); not part of the version's own metadata, nor of its digests."""

    @property
    def ref(self) -> str:
        return f"{self.model}@{self.number}"

    def check_files_kept(self) -> None:
        """Raise VersionPurged if retention released the version's files."""
        if self.purged_at is not None:
            raise VersionPurged(
                f"{self.ref} was purged at {self.purged_at.isoformat()} by the retention "
                f"policy of {self.model}; its files are no longer kept"
            )

    @property
    def size(self) -> int:
        return sum(f.size for f in self.files)

    @property
    def metadata_digest(self) -> str:
        """sha256 of what was registered besides the files: metadata, semver, message."""
        return sha256_digest(canonical_json(self._metadata_document()))

    @property
    def metadata_digests(self) -> tuple[str, ...]:
        """The digests a ``version.push`` event may have recorded: the canonical one, and
        the legacy one of a version pushed before canonical form 2."""
        return tuple(sha256_digest(form) for form in canonical_forms(self._metadata_document()))

    def _metadata_document(self) -> dict[str, Any]:
        return {"metadata": self.metadata.to_dict(), "semver": self.semver, "message": self.message}

    def to_dict(self) -> dict[str, Any]:
        return {
            "model": self.model,
            "number": self.number,
            "semver": self.semver,
            "digest": self.digest,
            "status": self.status,
            "created_at": self.created_at.isoformat(),
            "created_by": self.created_by,
            "message": self.message,
            "size": self.size,
            "signature": self.metadata.signature,  # what load's predict takes; or null
            "files": [f.to_dict() for f in self.files],
            "metadata": self.metadata.to_dict(),
            "aliases": list(self.aliases),
            "archived_at": self.archived_at.isoformat() if self.archived_at else None,
            "purged_at": self.purged_at.isoformat() if self.purged_at else None,
            **({"reused": True} if self.reused else {}),
            **(self.from_run.to_dict() if self.from_run else {}),
        }


@dataclass(frozen=True)
class FromRun:
    """The params and final (finite) metrics a version's run logged, shown beside the
    version's own metadata and marked as the run's."""

    run: str
    params: Mapping[str, Scalar] = field(default_factory=dict)
    metrics: Mapping[str, float] = field(default_factory=dict)

    def to_dict(self) -> dict[str, Any]:
        return {
            "run_params": dict(self.params),
            "run_metrics": dict(self.metrics),
        }


@dataclass(frozen=True)
class PushRequest:
    """What a push registers besides its files."""

    metadata: VersionMetadata = field(default_factory=VersionMetadata)
    semver: str | None = None
    bump: Bump | None = None
    message: str | None = None
    if_exists: str = "fail"
    """``fail`` or ``reuse`` (see ``IF_EXISTS``)."""


def check_if_exists(value: str) -> str:
    if value not in IF_EXISTS:
        raise InvalidInput(
            f"if_exists is {value!r}", f"give one of: {', '.join(IF_EXISTS)} (default fail)"
        )
    return value


def duplicate(
    ref: str, digest: str, *, archived: bool = False, dataset: bool = False
) -> DuplicateVersion:
    """The refusal of a push whose files are registered as ``ref`` already; its details
    name that version, so a script can use it."""
    number = int(ref.rpartition("@")[2])
    if archived:
        hint = f"{ref} is archived: 'modelkeep unarchive {ref}' makes it usable again"
    elif dataset:
        hint = f"use {ref}, or push with --if-exists reuse to get it back"
    else:
        hint = f"use {ref} (set an alias on it), or push with --if-exists reuse to get it back"
    return DuplicateVersion(
        f"these files are already registered as {ref} ({digest})",
        hint,
        {"ref": ref, "number": number, "digest": digest, "archived": archived},
    )


def check_unique(
    model: str, semver: str | None, digest: str, clashes: Iterable[tuple[int, str | None]]
) -> None:
    """Refuse a new version of ``model`` whose semver or files a version has already;
    ``clashes`` are the (number, semver) of the versions with that digest or semver."""
    found = list(clashes)
    for number, taken in found:
        if semver is not None and taken == semver:
            raise SemverExists(f"{model}@{semver} already exists (version {number})")
    if found:
        raise duplicate(f"{model}@{found[0][0]}", digest)
