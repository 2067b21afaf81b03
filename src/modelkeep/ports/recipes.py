"""Recipes of chunked files, and which blobs live versions need (gc and verify)."""

from __future__ import annotations

from collections.abc import Iterable
from datetime import datetime
from typing import NamedTuple, Protocol

from modelkeep.domain.recipes import Recipe


class StoredFile(NamedTuple):
    """One blob a live version's file is stored in: the file itself, or one of its chunks.

    ``digest``/``size`` are the file's, ``blob``/``blob_size`` the blob's; ``id`` orders
    versions by creation."""

    name: str
    number: int
    path: str
    digest: str
    size: int
    blob: str
    blob_size: int
    id: int
    version_digest: str


class Recipes(Protocol):
    def get(self, file_digest: str) -> Recipe | None: ...
    def digests(self, file_digests: Iterable[str]) -> dict[str, str]:
        """File digest -> recipe blob digest, for those files that have a recipe."""
        ...

    def add(self, recipe: Recipe, at: datetime) -> bool:
        """Record a verified recipe; False if the file had one already."""
        ...

    def blobs_since(self, since: datetime) -> set[str]:
        """The recipe and chunk blobs of recipes recorded since ``since``."""
        ...

    def delete_unused(self, before: datetime, dry_run: bool = False) -> int:
        """Forget recipes older than ``before`` that no live version uses; how many."""
        ...

    def blob_users(self, digests: Iterable[str] | None = None) -> dict[str, list[str]]:
        """Digest -> the versions (``NAME@N``) whose manifest, files or chunks use it."""
        ...

    def blob_files(self, digests: Iterable[str]) -> dict[str, list[str]]:
        """Digest -> the files (``NAME@N:PATH``) of live versions whose bytes it holds."""
        ...

    def holders(self, digests: Iterable[str]) -> dict[str, set[str]]:
        """Digest -> what holds it: ``NAME@N`` (a model version), ``dataset:NAME@N``,
        ``run:ID`` or ``policy:N``; through a manifest, a file (the file's own digest, its
        recipe or one of its chunks), a check report or an attestation (a run's diff and
        package lock: ``Tracking.runs_keeping``). Purged versions still hold their files
        here. Who may read a digest follows from who may read its holders."""
        ...

    def add_uploads(self, user: str, digests: Iterable[str], at: datetime) -> None:
        """Record that ``user`` sent the bytes of these blobs or files (hashed on arrival):
        proof of possession, so a later push by ``user`` may name them."""
        ...

    def uploaded_by(self, user: str, digests: Iterable[str]) -> set[str]:
        """Those of ``digests`` whose bytes ``user`` has sent (``add_uploads``)."""
        ...

    def stored_files(self) -> list[StoredFile]:
        """Every live version's file blobs (whole or chunks), oldest version first."""
        ...
