"""Rows against what was recorded (domain/integrity.py): the cheap checks every read of a
named version or alias makes, and the full scan ``verify`` makes.

A read pays one indexed query on the audit chain (the events about that version or
alias) and hashes the version's file list; ``verify`` also reads every manifest and
recipe blob and replays every alias history."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import TypeVar

from modelkeep.domain import integrity
from modelkeep.domain.aliases import AliasEvent
from modelkeep.domain.audit import AuditEvent
from modelkeep.domain.integrity import Mismatch
from modelkeep.domain.manifest import Manifest
from modelkeep.domain.recipes import Recipe
from modelkeep.domain.versions import Model, Version
from modelkeep.errors import ModelkeepError
from modelkeep.ports.blobs import BlobStore
from modelkeep.ports.registry import VersionKey
from modelkeep.ports.unit_of_work import Transaction

T = TypeVar("T")


def check_alias(tx: Transaction, model: str, alias: str, key: VersionKey | None) -> None:
    """Refuse an alias row that is not where the chain's last move of it left it."""
    subject = f"{model}@{alias}"
    moves = integrity.chain_moves(tx.audit.about([subject])).get(subject, [])
    number, digest = (key.number, key.digest) if key else (None, None)
    integrity.refuse(integrity.alias_row_mismatches(subject, number, digest, moves))


def check_stage_history(
    tx: Transaction,
    model: str,
    alias: str,
    history: Sequence[AliasEvent],
    key: VersionKey | None,
) -> None:
    """Refuse an alias whose row or history is not what the chain recorded."""
    subject = f"{model}@{alias}"
    moves = integrity.chain_moves(tx.audit.about([subject]))
    number, digest = (key.number, key.digest) if key else (None, None)
    found = integrity.alias_row_mismatches(subject, number, digest, moves.get(subject, []))
    integrity.refuse(found + integrity.history_mismatches(model, history, moves))


def check_version(tx: Transaction, version: Version) -> None:
    """Refuse a version row that is not what its push recorded, or whose file list no
    longer hashes to its digest (the manifest blob's digest)."""
    integrity.refuse(integrity.version_mismatches(version, tx.audit.about([version.ref])))


def scan(
    tx: Transaction, blobs: BlobStore, models: Sequence[Model], versions: Sequence[Version]
) -> list[Mismatch]:
    """Every mismatch of these versions (with their files and recipes) and of the
    aliases of these models."""
    found: list[Mismatch] = []
    events = tx.audit.about([v.ref for v in versions])
    by_subject: dict[str, list[AuditEvent]] = {}
    for event in events:
        by_subject.setdefault(event.subject, []).append(event)
    for version in versions:
        about = by_subject.get(version.ref, [])
        found += integrity.missing_push(version, about)
        found += integrity.version_mismatches(version, about)
        found += _files(blobs, version)
    found += _recipes(tx, blobs, {f.digest for v in versions for f in v.files})
    pointed: dict[str, set[str]] = {}
    for version in versions:
        pointed.setdefault(version.model, set()).update(version.aliases)
    for model in models:
        found += _aliases(tx, model.name, pointed.get(model.name, set()))
    return found


def _files(blobs: BlobStore, version: Version) -> list[Mismatch]:
    """The file rows against the manifest blob (a missing or damaged manifest blob is
    reported by the blob check)."""
    manifest = _read(blobs, version.digest, Manifest.parse)
    return integrity.file_mismatches(version, manifest) if manifest is not None else []


def _recipes(tx: Transaction, blobs: BlobStore, file_digests: set[str]) -> list[Mismatch]:
    found: list[Mismatch] = []
    for file_digest, recipe_digest in sorted(tx.recipes.digests(file_digests).items()):
        rows = tx.recipes.get(file_digest)
        if rows is None:
            continue
        blob = _read(blobs, recipe_digest, Recipe.parse)
        found += integrity.recipe_mismatches(rows, recipe_digest, blob)
    return found


def _aliases(tx: Transaction, model: str, pointed: set[str]) -> list[Mismatch]:
    """The model's alias rows (``pointed``: the aliases its versions carry now) and alias
    history against the chain's moves."""
    history = tx.aliases.events(model)
    # every move the chain recorded for the model, so that an alias whose row and
    # history were both deleted is still named
    moves = integrity.chain_moves(e for e in tx.audit.events(model) if e.subject != model)
    names = {e.alias for e in history} | pointed | {s.partition("@")[2] for s in moves}
    found = integrity.history_mismatches(model, history, moves)
    for alias in sorted(names):
        subject = f"{model}@{alias}"
        key = tx.aliases.key(model, alias)
        number, digest = (key.number, key.digest) if key else (None, None)
        found += integrity.alias_row_mismatches(subject, number, digest, moves.get(subject, []))
    return found


def _read(blobs: BlobStore, digest: str, parse: Callable[[bytes], T]) -> T | None:
    try:
        return parse(blobs.read_bytes(digest))
    except (ModelkeepError, ValueError, KeyError, TypeError):
        return None  # missing or damaged: the blob check names it
