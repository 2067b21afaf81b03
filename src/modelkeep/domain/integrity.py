"""Whether the registry's rows still say what was recorded: pure comparisons of a row
with the audit chain (hash-chained, checkpointed and signed) and with the
content-addressed blobs (a manifest, a recipe) whose digests the rows carry.

Someone who can write to the database can change a row without going through
modelkeep; they cannot also change the blob a digest names, nor an audit event without
breaking the chain (``audit verify``). So every row that decides what a user gets or
who did what is compared with one of those:

- an alias row (``fraud@production``) with the last move the chain recorded for it, and
  the alias history with the chain's sequence of moves;
- a version row with its ``version.push`` event (digest, creator, time, the metadata
  digest and, since format 2 of the push event, the record digest), its status with the
  chain's archive events, and its files with the manifest blob named by its digest;
- a recipe (chunk list) with the recipe blob named by its recorded recipe digest.

Each finding is a ``Mismatch`` naming the row, the field, what was recorded and what the
row says now.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC
from typing import Any

from modelkeep.domain.aliases import AliasEvent
from modelkeep.domain.audit import AuditEvent, canonical_json
from modelkeep.domain.canonical import canonical_forms
from modelkeep.domain.digest import sha256_digest
from modelkeep.domain.events import EventKind
from modelkeep.domain.manifest import FileEntry, Manifest
from modelkeep.domain.recipes import Recipe
from modelkeep.domain.versions import Version
from modelkeep.errors import RecordTampered

CHAIN = "the audit chain"
MANIFEST_BLOB = "the manifest blob"
RECIPE_BLOB = "the recipe blob"
HISTORY = "the alias history"

ALIAS_ACTIONS = frozenset(
    {EventKind.ALIAS_SET, EventKind.ALIAS_RM, EventKind.ALIAS_PROMOTE, EventKind.ALIAS_ROLLBACK}
)


@dataclass(frozen=True)
class Mismatch:
    """One row that disagrees with what was recorded."""

    kind: str
    """``alias``, ``version``, ``file`` or ``recipe``."""
    subject: str
    """``fraud@production``, ``fraud@3``, ``fraud@3:weights.bin`` or a file digest."""
    field: str
    expected: str
    """What ``source`` says."""
    found: str
    """What the database row says now."""
    source: str

    def describe(self) -> str:
        return (
            f"{self.subject}: {self.field} is {self.found} in the database, "
            f"but {self.source} says {self.expected}"
        )

    def to_dict(self) -> dict[str, Any]:
        return {
            "kind": self.kind,
            "subject": self.subject,
            "field": self.field,
            "expected": self.expected,
            "found": self.found,
            "source": self.source,
            "message": self.describe(),
        }


SHOWN = 3


def refuse(found: Sequence[Mismatch]) -> None:
    """``RecordTampered`` naming the first mismatches, if there are any."""
    if not found:
        return
    shown = "; ".join(m.describe() for m in found[:SHOWN])
    more = f" (and {len(found) - SHOWN} more)" if len(found) > SHOWN else ""
    raise RecordTampered(
        shown + more,
        "the database was changed outside modelkeep; run 'modelkeep verify --all' to list "
        "every mismatch, and restore the database from a backup",
    )


def _text(value: Any) -> str:
    return "nothing" if value is None else str(value)


# versions ----------------------------------------------------------------------------------


def push_record(version: Version) -> dict[str, Any]:
    """What a push commits to besides the files and metadata: who, when, and the status
    a version is registered with. Strings and integers only, so any JSON canonicaliser
    (RFC 8785 included) writes the same bytes."""
    return {
        "model": version.model,
        "number": version.number,
        "digest": version.digest,
        "created_by": version.created_by,
        "created_at": _iso(version),
        "status": "active",
        "metadata_digest": version.metadata_digest,
    }


def record_digest(version: Version) -> str:
    """sha256 of the canonical ``push_record``: the ``record_digest`` of its push event."""
    return sha256_digest(canonical_json(push_record(version)))


def record_digests(version: Version) -> Iterator[str]:
    """Every ``record_digest`` a push of this version may have recorded, the canonical one
    first: over either form of its metadata digest, in either canonical form (docs/design.md
    "Canonical JSON"). Lazily, since a read checks one and almost always stops there."""
    yield record_digest(version)
    for metadata in version.metadata_digests:
        record = {**push_record(version), "metadata_digest": metadata}
        yield from (sha256_digest(form) for form in canonical_forms(record))


def metadata_digests(version: Version) -> Iterator[str]:
    """The version's metadata digest in canonical form, then in every form (lazily)."""
    yield version.metadata_digest
    yield from version.metadata_digests


def version_mismatches(version: Version, events: Sequence[AuditEvent]) -> list[Mismatch]:
    """The version row against its own file list and against the chain's ``events``
    about it (subject ``NAME@N``, in seq order). Cheap: no blob is read.

    A version whose push is not in the chain is reported only by ``verify``
    (``missing_push``), since a read cannot tell it from a row inserted by hand."""
    found: list[Mismatch] = []
    listed = Manifest.of(version.files).digest
    if listed != version.digest:
        found.append(
            Mismatch(
                "version", version.ref, "file list digest", version.digest, listed, MANIFEST_BLOB
            )
        )
    push = next((e for e in events if e.action == EventKind.VERSION_PUSH), None)
    if push is not None:
        found += _against_push(version, push)
    found += _status_mismatches(version, events)
    return found


def missing_push(version: Version, events: Sequence[AuditEvent]) -> list[Mismatch]:
    if any(e.action == EventKind.VERSION_PUSH for e in events):
        return []
    return [Mismatch("version", version.ref, "push", "a version.push event", "none", CHAIN)]


def _against_push(version: Version, push: AuditEvent) -> list[Mismatch]:
    details = push.details
    pairs: list[tuple[str, Any, Any]] = [
        ("digest", details.get("digest"), version.digest),
        ("created_by", push.actor, version.created_by),
        ("created_at", push.at.astimezone(UTC).isoformat(), _iso(version)),
    ]
    if "number" in details:
        pairs.append(("number", details["number"], version.number))
    if "semver" in details:
        pairs.append(("semver", details["semver"], version.semver))
    found = [
        Mismatch("version", version.ref, name, _text(expected), _text(now), CHAIN)
        for name, expected, now in pairs
        if expected != now
    ]
    # a digest matches when it is that of either canonical form of the same value
    if "metadata_digest" in details:  # pushes recorded before it have none
        found += _digest_mismatch(
            version, "metadata_digest", details["metadata_digest"], metadata_digests(version)
        )
    if "record_digest" in details:  # push events of format 2 on
        found += _digest_mismatch(
            version, "record_digest", details["record_digest"], record_digests(version)
        )
    return found


def _digest_mismatch(
    version: Version, name: str, recorded: Any, computed: Iterable[str]
) -> list[Mismatch]:
    """None if ``recorded`` is any of ``computed`` (canonical first: computed no further)."""
    canonical = None
    for digest in computed:
        if digest == recorded:
            return []
        canonical = canonical or digest
    return [Mismatch("version", version.ref, name, _text(recorded), _text(canonical), CHAIN)]


def _iso(version: Version) -> str:
    return version.created_at.astimezone(UTC).isoformat()


def _status_mismatches(version: Version, events: Sequence[AuditEvent]) -> list[Mismatch]:
    """Status replays from the chain: active at push, archived by ``version.archive`` and
    by ``version.purge`` (which archives what it purges), active again by
    ``version.unarchive``; purged once ``version.purge`` was recorded."""
    status = "active"
    purged = False
    for event in events:
        if event.action == EventKind.VERSION_ARCHIVE:
            status = "archived"
        elif event.action == EventKind.VERSION_UNARCHIVE:
            status = "active"
        elif event.action == EventKind.VERSION_PURGE:
            status, purged = "archived", True  # a purge archives an active version
    found = []
    if version.status != status:
        found.append(Mismatch("version", version.ref, "status", status, version.status, CHAIN))
    if (version.purged_at is not None) != purged:
        expected = "purged" if purged else "not purged"
        now = "purged" if version.purged_at is not None else "not purged"
        found.append(Mismatch("version", version.ref, "purged", expected, now, CHAIN))
    return found


def file_mismatches(version: Version, manifest: Manifest) -> list[Mismatch]:
    """The version's file rows against its manifest blob, file by file."""
    recorded = {f.path: f for f in manifest.files}
    rows = {f.path: f for f in version.files}
    found = []
    for path in sorted(set(recorded) | set(rows)):
        subject = f"{version.ref}:{path}"
        was, now = recorded.get(path), rows.get(path)
        if was is None or now is None:
            expected = "listed" if was else "not listed"
            found.append(
                Mismatch(
                    "file",
                    subject,
                    "presence",
                    expected,
                    "listed" if now else "absent",
                    MANIFEST_BLOB,
                )
            )
            continue
        found += _entry_mismatches(subject, was, now)
    return found


def _entry_mismatches(subject: str, was: FileEntry, now: FileEntry) -> list[Mismatch]:
    return [
        Mismatch("file", subject, name, str(expected), str(actual), MANIFEST_BLOB)
        for name, expected, actual in (
            ("digest", was.digest, now.digest),
            ("size", was.size, now.size),
        )
        if expected != actual
    ]


# aliases -----------------------------------------------------------------------------------


@dataclass(frozen=True)
class RecordedTarget:
    """Where the chain's last move of an alias left it."""

    number: int | None
    digest: str | None


def chain_moves(events: Iterable[AuditEvent]) -> dict[str, list[AuditEvent]]:
    """Alias moves recorded in the chain, by subject (``NAME@ALIAS``), in seq order."""
    moves: dict[str, list[AuditEvent]] = {}
    for event in events:
        if event.action in ALIAS_ACTIONS:
            moves.setdefault(event.subject, []).append(event)
    return moves


def last_target(moves: Sequence[AuditEvent]) -> RecordedTarget | None:
    """None if the chain recorded no move of the alias."""
    if not moves:
        return None
    details = moves[-1].details
    new, digest = details.get("new"), details.get("new_digest")
    return RecordedTarget(int(new) if new is not None else None, digest)


def alias_row_mismatches(
    subject: str, number: int | None, digest: str | None, moves: Sequence[AuditEvent]
) -> list[Mismatch]:
    """The alias row (``number``/``digest``; None if unset) against the chain's last move."""
    recorded = last_target(moves)
    expected_number = recorded.number if recorded else None
    if expected_number != number:
        return [
            Mismatch("alias", subject, "target", _target(expected_number), _target(number), CHAIN)
        ]
    if recorded is not None and recorded.digest not in (None, digest):
        return [Mismatch("alias", subject, "digest", _text(recorded.digest), _text(digest), CHAIN)]
    return []


def _target(number: int | None) -> str:
    return "unset" if number is None else f"version {number}"


def history_mismatches(
    model: str, history: Sequence[AliasEvent], moves: Mapping[str, Sequence[AuditEvent]]
) -> list[Mismatch]:
    """The model's alias history (``alias history``, what rollback reads) against the
    chain's moves: the same moves, in the same order, to the same versions."""
    found = []
    by_alias: dict[str, list[AliasEvent]] = {}
    for event in history:
        by_alias.setdefault(event.alias, []).append(event)
    aliases = set(by_alias) | {s.partition("@")[2] for s in moves if s.startswith(model + "@")}
    for alias in sorted(aliases):
        subject = f"{model}@{alias}"
        rows = [(e.action, e.new, e.actor) for e in by_alias.get(alias, [])]
        chain = [
            (e.action.partition(".")[2], e.details.get("new"), e.actor)
            for e in moves.get(subject, [])
        ]
        if rows == chain:
            continue
        at = next(
            (i for i, pair in enumerate(zip(rows, chain, strict=False)) if pair[0] != pair[1]),
            min(len(rows), len(chain)),
        )
        found.append(
            Mismatch(
                "alias",
                subject,
                f"history move {at + 1}",
                _move(chain, at),
                _move(rows, at),
                CHAIN,
            )
        )
    return found


def _move(moves: Sequence[tuple[str, Any, str]], index: int) -> str:
    if index >= len(moves):
        return "no such move"
    action, new, actor = moves[index]
    return f"{action} to {_target(new)} by {actor}"


# recipes -----------------------------------------------------------------------------------


def recipe_mismatches(rows: Recipe, recorded_digest: str, blob: Recipe | None) -> list[Mismatch]:
    """A recipe's rows against the recipe blob its recorded digest names: chunk by chunk
    when the blob could be read, else by digest (``blob`` None: the blob is missing or
    damaged, which the blob check reports, or it was not read, as on a pull)."""
    subject = f"file {rows.digest}"
    if blob is not None and blob.digest != rows.digest:
        return [Mismatch("recipe", subject, "file", blob.digest, rows.digest, RECIPE_BLOB)]
    if blob is not None and blob.chunks != rows.chunks:
        pairs = zip(blob.chunks, rows.chunks, strict=False)
        at = next(
            (i for i, (was, now) in enumerate(pairs) if was != now),
            min(len(blob.chunks), len(rows.chunks)),
        )
        return [
            Mismatch(
                "recipe", subject, f"chunk {at}", _chunk(blob, at), _chunk(rows, at), RECIPE_BLOB
            )
        ]
    if rows.recipe_digest != recorded_digest:
        return [
            Mismatch(
                "recipe",
                subject,
                "recipe digest",
                recorded_digest,
                rows.recipe_digest,
                RECIPE_BLOB,
            )
        ]
    return []


def _chunk(recipe: Recipe, index: int) -> str:
    if index >= len(recipe.chunks):
        return "no such chunk"
    chunk = recipe.chunks[index]
    return f"{chunk.digest} ({chunk.size} B)"
