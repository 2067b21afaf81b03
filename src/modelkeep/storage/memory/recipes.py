"""Recipes of chunked files in memory, and which blobs live versions need: the roots of
gc's mark phase and of verify, computed as the SQL adapter's queries compute them.
Purged versions keep their manifest but no longer hold their files."""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from datetime import datetime

from modelkeep.domain.manifest import FileEntry
from modelkeep.domain.recipes import Recipe, users_by_blob
from modelkeep.ports.recipes import StoredFile
from modelkeep.storage.memory.governance import GovernanceRows
from modelkeep.storage.memory.state import RecipeRow, Tables, VersionRow, View, utc
from modelkeep.storage.memory.tracking import dataset_name


def _live(tables: Tables) -> list[VersionRow]:
    """Versions whose files are gc roots (not purged), oldest first."""
    rows = [row for row in tables.versions.values() if row.purged_at is None]
    return sorted(rows, key=lambda row: row.id)


class RecipeRows:
    def __init__(self, view: View, governance: GovernanceRows) -> None:
        self._view = view
        self._governance = governance

    def get(self, file_digest: str) -> Recipe | None:
        row = self._view.read.recipes.get(file_digest)
        return None if row is None else row.recipe

    def digests(self, file_digests: Iterable[str]) -> dict[str, str]:
        """File digest -> recipe blob digest, for the files that have a recipe."""
        recipes = self._view.read.recipes
        return {d: recipes[d].recipe_digest for d in set(file_digests) if d in recipes}

    def add(self, recipe: Recipe, at: datetime) -> bool:
        """Record a verified recipe; False if the file had one already."""
        if recipe.digest in self._view.read.recipes:
            return False
        row = RecipeRow(recipe, recipe.recipe_digest, utc(at))
        self._view.change().recipes[recipe.digest] = row
        return True

    def blobs_since(self, since: datetime) -> set[str]:
        """Recipe and chunk blobs of recipes recorded since ``since``."""
        kept: set[str] = set()
        for row in self._view.read.recipes.values():
            if row.created_at >= since:
                kept.add(row.recipe_digest)
                kept.update(chunk.digest for chunk in row.recipe.chunks)
        return kept

    def delete_unused(self, before: datetime, dry_run: bool = False) -> int:
        """Forget recipes older than ``before`` that no live version's, dataset's or
        run's file uses."""
        tables = self._view.read
        used = {f.digest for row in _live(tables) for f in row.files}
        used |= {f.digest for v in tables.dataset_versions.values() for f in v.files}
        used |= {digest for _, digest in tables.run_artifacts.values()}
        stale = [
            digest
            for digest, row in tables.recipes.items()
            if row.created_at < before and digest not in used
        ]
        if stale and not dry_run:
            recipes = self._view.change().recipes
            for digest in stale:
                del recipes[digest]
        return len(stale)

    def blob_users(self, digests: Iterable[str] | None = None) -> dict[str, list[str]]:
        """Blob digest -> the versions (``model@N``) that need it; only ``digests`` if given."""
        return users_by_blob(self._needed_blobs(), digests)

    def blob_files(self, digests: Iterable[str]) -> dict[str, list[str]]:
        """Blob digest -> the files (``model@N:path``) of live versions that need it:
        whole files with that digest, and chunked files whose recipe or chunks it is."""
        wanted = set(digests)
        files: dict[str, list[str]] = {}
        for row in _live(self._view.read):
            for entry in row.files:
                where = f"{row.model}@{row.number}:{entry.path}"
                for blob in self._blobs_of_file(entry.digest):
                    if blob in wanted and where not in files.setdefault(blob, []):
                        files[blob].append(where)
        return files

    def _blobs_of_file(self, digest: str) -> Iterator[str]:
        """The blobs a file is stored in: itself, or its recipe and its chunks."""
        row = self._view.read.recipes.get(digest)
        if row is None:
            yield digest
            return
        yield row.recipe_digest
        for chunk in row.recipe.chunks:
            yield chunk.digest

    def _needed_blobs(self) -> Iterator[tuple[str, str]]:
        tables = self._view.read
        for row in sorted(tables.versions.values(), key=lambda row: row.id):
            yield row.digest, f"{row.model}@{row.number}"  # the manifest, even when purged
        for row in _live(tables):
            for entry in row.files:
                for blob in self._blobs_of_file(entry.digest):
                    yield blob, f"{row.model}@{row.number}"
        yield from self._tracking_blobs()
        yield from self._governance.governance_blobs()
        yield from self._governance.deployment_blobs()

    def _tracking_blobs(self) -> Iterator[tuple[str, str]]:
        """What datasets and runs need: dataset manifests and files, run files, and each
        run's dirty diff and package lock."""
        tables = self._view.read
        for version in tables.dataset_versions.values():
            user = f"dataset:{dataset_name(tables, version.dataset_id)}@{version.number}"
            yield version.digest, user
            for entry in version.files:
                for blob in self._blobs_of_file(entry.digest):
                    yield blob, user
        for (pk, _), (_, digest) in tables.run_artifacts.items():
            for blob in self._blobs_of_file(digest):
                yield blob, f"run:{tables.runs[pk].run_id}"
        for run in tables.runs.values():
            for kept in (run.code.get("diff_digest"), run.environment.get("packages_digest")):
                if kept:
                    yield str(kept), f"run:{run.run_id}"

    def holders(self, digests: Iterable[str]) -> dict[str, set[str]]:
        wanted = set(digests)
        found: dict[str, set[str]] = {}
        for digest, holder in self._holding():
            if digest in wanted:
                found.setdefault(digest, set()).add(holder)
        return found

    def _holding(self) -> Iterator[tuple[str, str]]:
        tables = self._view.read
        for row in tables.versions.values():
            yield row.digest, f"{row.model}@{row.number}"
            yield from self._files_held(row.files, f"{row.model}@{row.number}")
        for version in tables.dataset_versions.values():
            holder = f"dataset:{dataset_name(tables, version.dataset_id)}@{version.number}"
            yield version.digest, holder
            yield from self._files_held(version.files, holder)
        for (pk, path), (size, digest) in tables.run_artifacts.items():
            entry = FileEntry(path, size, digest)
            yield from self._files_held([entry], f"run:{tables.runs[pk].run_id}")
        yield from self._governance.governance_blobs()

    def _files_held(self, files: Iterable[FileEntry], holder: str) -> Iterator[tuple[str, str]]:
        """Each file's digest, and the blobs it is stored in, with ``holder``."""
        for entry in files:
            yield entry.digest, holder
            for blob in self._blobs_of_file(entry.digest):
                yield blob, holder

    def add_uploads(self, user: str, digests: Iterable[str], at: datetime) -> None:
        known = self._view.read.uploads
        new = [(user, d) for d in dict.fromkeys(digests) if (user, d) not in known]
        if new:
            uploads = self._view.change().uploads
            for key in new:
                uploads[key] = utc(at)

    def uploaded_by(self, user: str, digests: Iterable[str]) -> set[str]:
        known = self._view.read.uploads
        return {d for d in set(digests) if (user, d) in known}

    def stored_files(self) -> list[StoredFile]:
        """Every live version's files with their chunk sizes, oldest version first, by path:
        one row per whole file, or one per chunk of a chunked file."""
        rows: list[StoredFile] = []
        for version in _live(self._view.read):
            for entry in version.files:
                recipe = self._view.read.recipes.get(entry.digest)
                whole = [(entry.digest, entry.size)]
                blobs = [(c.digest, c.size) for c in recipe.recipe.chunks] if recipe else whole
                for blob, blob_size in blobs:
                    rows.append(
                        StoredFile(
                            version.model,
                            version.number,
                            entry.path,
                            entry.digest,
                            entry.size,
                            blob,
                            blob_size,
                            version.id,
                            version.digest,
                        )
                    )
        return rows
