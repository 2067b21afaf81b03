"""Recipe rows and what the blob store must keep: the SQL half of chunked files.

``blob_users`` is the root of gc's mark phase and of verify: it names every blob that
a live version needs (its manifest; each file's blob, or for a chunked file its recipe
blob and every chunk) with the versions that need it. Purged versions (retention
released them) keep their manifest but no longer hold their files.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Iterator
from datetime import datetime
from typing import Any

from sqlalchemy import Connection, bindparam, delete, exists, insert, select
from sqlalchemy.dialects import postgresql, sqlite

from modelkeep.domain.recipes import ChunkRef, Recipe, users_by_blob
from modelkeep.ports.recipes import StoredFile
from modelkeep.storage.sql.governance import GovernanceRows
from modelkeep.storage.sql.tables import (
    attestations,
    blob_uploads,
    check_results,
    dataset_files,
    dataset_versions,
    datasets,
    models,
    policies,
    recipe_chunks,
    recipes,
    run_artifacts,
    runs,
    version_files,
    versions,
)

_RECIPE = select(recipes).where(recipes.c.file_digest == bindparam("digest"))
_CHUNKS = (
    select(recipe_chunks.c.digest, recipe_chunks.c.size)
    .where(recipe_chunks.c.file_digest == bindparam("digest"))
    .order_by(recipe_chunks.c.position)
)


def _live_files(*columns: Any) -> Any:
    """``columns`` (with the version's model and number) of every live version's files."""
    return (
        select(*columns, models.c.name, versions.c.number)
        .select_from(version_files)
        .join(versions, versions.c.id == version_files.c.version_id)
        .join(models, models.c.id == versions.c.model_id)
        .where(versions.c.purged_at.is_(None))
    )


_HAS_RECIPE = exists(
    select(recipes.c.file_digest).where(recipes.c.file_digest == version_files.c.digest)
)
_WHOLE_FILES = _live_files(version_files.c.digest).where(~_HAS_RECIPE)
_RECIPE_BLOBS = _live_files(recipes.c.recipe_digest).join(
    recipes, recipes.c.file_digest == version_files.c.digest
)
_CHUNK_BLOBS = _live_files(recipe_chunks.c.digest).join(
    recipe_chunks, recipe_chunks.c.file_digest == version_files.c.digest
)
_MANIFESTS = select(versions.c.digest, models.c.name, versions.c.number).join(
    models, models.c.id == versions.c.model_id
)


def _file_holders(
    part: list[str], files: Any, holder: tuple[Any, ...], parents: Callable[[Any], Any]
) -> list[Any]:
    """Queries of (holder..., digest) for the files of ``files`` (a table with ``digest``)
    that are, or are stored in, one of ``part``: the file itself, its recipe, a chunk."""

    def base(column: Any) -> Any:
        return parents(select(*holder, column).select_from(files))

    return [
        base(files.c.digest).where(files.c.digest.in_(part)),
        base(recipes.c.recipe_digest)
        .join(recipes, recipes.c.file_digest == files.c.digest)
        .where(recipes.c.recipe_digest.in_(part)),
        base(recipe_chunks.c.digest)
        .join(recipe_chunks, recipe_chunks.c.file_digest == files.c.digest)
        .where(recipe_chunks.c.digest.in_(part)),
    ]


def _holder_queries(part: list[str]) -> Iterator[tuple[Any, str]]:
    """(query, form): each query's rows are the holder's fields, then the digest."""
    version = (models.c.name, versions.c.number)
    for query in _file_holders(
        part,
        version_files,
        version,
        lambda q: q.join(versions, versions.c.id == version_files.c.version_id).join(
            models, models.c.id == versions.c.model_id
        ),
    ):
        yield query, "{0}@{1}"
    dataset = (datasets.c.name, dataset_versions.c.number)
    for query in _file_holders(
        part,
        dataset_files,
        dataset,
        lambda q: q.join(
            dataset_versions, dataset_versions.c.id == dataset_files.c.dataset_version_id
        ).join(datasets, datasets.c.id == dataset_versions.c.dataset_id),
    ):
        yield query, "dataset:{0}@{1}"
    for query in _file_holders(
        part,
        run_artifacts,
        (runs.c.run_id,),
        lambda q: q.join(runs, runs.c.id == run_artifacts.c.run_pk),
    ):
        yield query, "run:{0}"
    manifests = select(*version, versions.c.digest).join(models, models.c.id == versions.c.model_id)
    yield manifests.where(versions.c.digest.in_(part)), "{0}@{1}"
    data_manifests = select(*dataset, dataset_versions.c.digest).join(
        datasets, datasets.c.id == dataset_versions.c.dataset_id
    )
    yield data_manifests.where(dataset_versions.c.digest.in_(part)), "dataset:{0}@{1}"
    documents = select(policies.c.number, policies.c.digest).where(policies.c.digest.in_(part))
    yield documents, "policy:{0}"
    for table, column in (
        (check_results, check_results.c.report_digest),
        (attestations, attestations.c.envelope_digest),
    ):
        query = (
            select(*version, column)
            .select_from(table)
            .join(versions, versions.c.id == table.c.version_id)
            .join(models, models.c.id == versions.c.model_id)
            .where(column.in_(part))
        )
        yield query, "{0}@{1}"


class RecipeRows:
    def __init__(self, conn: Connection, governance: GovernanceRows) -> None:
        self._conn = conn
        self._governance = governance

    def get(self, file_digest: str) -> Recipe | None:
        row = self._conn.execute(_RECIPE, {"digest": file_digest}).one_or_none()
        if row is None:
            return None
        rows = self._conn.execute(_CHUNKS, {"digest": file_digest})
        chunks = [ChunkRef(d, int(size)) for d, size in rows]
        return Recipe(row.file_digest, int(row.size), row.chunker, tuple(chunks))

    def digests(self, file_digests: Iterable[str]) -> dict[str, str]:
        """File digest -> recipe blob digest, for the files that have a recipe."""
        wanted = sorted(set(file_digests))
        found: dict[str, str] = {}
        for start in range(0, len(wanted), 500):
            query = select(recipes.c.file_digest, recipes.c.recipe_digest).where(
                recipes.c.file_digest.in_(wanted[start : start + 500])
            )
            found.update({f: r for f, r in self._conn.execute(query)})
        return found

    def add(self, recipe: Recipe, at: datetime) -> bool:
        """Record a verified recipe; False if the file had one already."""
        if self._conn.execute(_RECIPE, {"digest": recipe.digest}).first() is not None:
            return False
        self._conn.execute(
            insert(recipes).values(
                file_digest=recipe.digest,
                recipe_digest=recipe.recipe_digest,
                size=recipe.size,
                chunker=recipe.chunker,
                chunk_count=len(recipe.chunks),
                created_at=at,
            )
        )
        self._conn.execute(
            insert(recipe_chunks),
            [
                {"file_digest": recipe.digest, "position": i, "digest": c.digest, "size": c.size}
                for i, c in enumerate(recipe.chunks)
            ],
        )
        return True

    def blobs_since(self, since: datetime) -> set[str]:
        """Recipe and chunk blobs of recipes recorded since ``since``: a push in flight
        (recipe recorded, version not yet) needs them, so gc keeps them like young blobs."""
        young = select(recipes.c.file_digest, recipes.c.recipe_digest).where(
            recipes.c.created_at >= since
        )
        kept: set[str] = set()
        for file_digest, recipe_digest in self._conn.execute(young).all():
            kept.add(recipe_digest)
            kept.update(d for d, _ in self._conn.execute(_CHUNKS, {"digest": file_digest}))
        return kept

    def delete_unused(self, before: datetime, dry_run: bool = False) -> int:
        """Forget recipes older than ``before`` that no live version's, dataset's or
        run's file uses."""
        used = (
            select(version_files.c.digest)
            .join(versions, versions.c.id == version_files.c.version_id)
            .where(versions.c.purged_at.is_(None), version_files.c.digest == recipes.c.file_digest)
        )
        in_dataset = select(dataset_files.c.digest).where(
            dataset_files.c.digest == recipes.c.file_digest
        )
        in_run = select(run_artifacts.c.digest).where(
            run_artifacts.c.digest == recipes.c.file_digest
        )
        query = select(recipes.c.file_digest).where(
            recipes.c.created_at < before, ~exists(used), ~exists(in_dataset), ~exists(in_run)
        )
        stale = [row.file_digest for row in self._conn.execute(query)]
        if not dry_run:
            for start in range(0, len(stale), 500):
                part = stale[start : start + 500]
                self._conn.execute(
                    delete(recipe_chunks).where(recipe_chunks.c.file_digest.in_(part))
                )
                self._conn.execute(delete(recipes).where(recipes.c.file_digest.in_(part)))
        return len(stale)

    def blob_users(self, digests: Iterable[str] | None = None) -> dict[str, list[str]]:
        """Blob digest -> the versions (``model@N``) that need it; only ``digests`` if given."""
        return users_by_blob(self._needed_blobs(), digests)

    def blob_files(self, digests: Iterable[str]) -> dict[str, list[str]]:
        """Blob digest -> the files (``model@N:path``) of live versions that need it:
        whole files with that digest, and chunked files whose recipe or chunks it is."""
        wanted = sorted(set(digests))
        files: dict[str, list[str]] = {}
        for start in range(0, len(wanted), 500):
            part = wanted[start : start + 500]
            queries = (
                _live_files(version_files.c.digest, version_files.c.path).where(
                    version_files.c.digest.in_(part), ~_HAS_RECIPE
                ),
                _live_files(recipes.c.recipe_digest, version_files.c.path)
                .join(recipes, recipes.c.file_digest == version_files.c.digest)
                .where(recipes.c.recipe_digest.in_(part)),
                _live_files(recipe_chunks.c.digest, version_files.c.path)
                .join(recipe_chunks, recipe_chunks.c.file_digest == version_files.c.digest)
                .where(recipe_chunks.c.digest.in_(part)),
            )
            for query in queries:
                for digest, path, name, number in self._conn.execute(query):
                    where = files.setdefault(digest, [])
                    if f"{name}@{number}:{path}" not in where:
                        where.append(f"{name}@{number}:{path}")
        return files

    def _needed_blobs(self) -> Iterator[tuple[str, str]]:
        for query in (_MANIFESTS, _WHOLE_FILES, _RECIPE_BLOBS, _CHUNK_BLOBS):
            for digest, name, number in self._conn.execute(query):
                yield digest, f"{name}@{number}"
        yield from self._tracking_blobs()
        yield from self._governance.governance_blobs()
        yield from self._governance.deployment_blobs()

    def _tracking_blobs(self) -> Iterator[tuple[str, str]]:
        """What datasets and runs need: dataset manifests, dataset files and run files
        (whole, or recipe and chunks), and each run's dirty diff and package lock."""
        files: list[tuple[str, str]] = []
        query = select(dataset_versions.c.digest, datasets.c.name, dataset_versions.c.number)
        for digest, name, number in self._conn.execute(query.join(datasets)):
            yield digest, f"dataset:{name}@{number}"
        query = (
            select(dataset_files.c.digest, datasets.c.name, dataset_versions.c.number)
            .join(dataset_versions, dataset_versions.c.id == dataset_files.c.dataset_version_id)
            .join(datasets, datasets.c.id == dataset_versions.c.dataset_id)
        )
        files += [(d, f"dataset:{n}@{v}") for d, n, v in self._conn.execute(query)]
        artifacts = select(run_artifacts.c.digest, runs.c.run_id).join(runs)
        files += [(d, f"run:{r}") for d, r in self._conn.execute(artifacts)]
        for run_id, code, env in self._conn.execute(
            select(runs.c.run_id, runs.c.code, runs.c.environment)
        ):
            for digest in ((code or {}).get("diff_digest"), (env or {}).get("packages_digest")):
                if digest:
                    yield digest, f"run:{run_id}"
        yield from self._file_blobs(files)

    def _file_blobs(self, files: list[tuple[str, str]]) -> Iterator[tuple[str, str]]:
        """The blobs of files (digest, user): the file itself, or its recipe and chunks."""
        chunked = self.digests(d for d, _ in files)
        chunks: dict[str, list[str]] = {}
        wanted = sorted(chunked)
        for start in range(0, len(wanted), 500):
            query = select(recipe_chunks.c.file_digest, recipe_chunks.c.digest).where(
                recipe_chunks.c.file_digest.in_(wanted[start : start + 500])
            )
            for file_digest, digest in self._conn.execute(query):
                chunks.setdefault(file_digest, []).append(digest)
        for digest, user in files:
            if digest not in chunked:
                yield digest, user
                continue
            yield chunked[digest], user
            for chunk in chunks.get(digest, ()):
                yield chunk, user

    def holders(self, digests: Iterable[str]) -> dict[str, set[str]]:
        """Digest -> what holds it: a model version (``NAME@N``), a dataset version
        (``dataset:NAME@N``), a run (``run:ID``) or a policy (``policy:N``), through a
        manifest, a file (the file's digest, its recipe or a chunk), a check report or an
        attestation (a run's diff and package lock: ``tracking.runs_keeping``). Indexed
        look-ups only."""
        wanted = sorted(set(digests))
        found: dict[str, set[str]] = {}
        for start in range(0, len(wanted), 200):
            part = wanted[start : start + 200]
            for query, form in _holder_queries(part):
                for *fields, digest in self._conn.execute(query):
                    found.setdefault(digest, set()).add(form.format(*fields))
        return found

    def add_uploads(self, user: str, digests: Iterable[str], at: datetime) -> None:
        rows = [{"user": user, "digest": d, "at": at} for d in dict.fromkeys(digests)]
        if not rows:
            return
        # two uploads of one chunk may race: the second finds the row and changes nothing
        dialect = postgresql if self._conn.dialect.name == "postgresql" else sqlite
        for start in range(0, len(rows), 300):
            statement = dialect.insert(blob_uploads).on_conflict_do_nothing()
            self._conn.execute(statement, rows[start : start + 300])

    def uploaded_by(self, user: str, digests: Iterable[str]) -> set[str]:
        wanted = sorted(set(digests))
        found: set[str] = set()
        for start in range(0, len(wanted), 500):
            query = select(blob_uploads.c.digest).where(
                blob_uploads.c.user == user,
                blob_uploads.c.digest.in_(wanted[start : start + 500]),
            )
            found.update(self._conn.execute(query).scalars())
        return found

    def stored_files(self) -> list[StoredFile]:
        """Every live version's files with their chunk sizes, oldest version first: rows
        of (name, number, path, digest, size, blob, blob_size, id, version_digest), where
        ``digest``/``size`` are the file's, ``blob``/``blob_size`` one blob it is stored in
        (the file itself, or one row per chunk) and ``id`` orders versions by creation."""
        whole = (
            select(
                models.c.name,
                versions.c.number,
                version_files.c.path,
                version_files.c.digest,
                version_files.c.size,
                version_files.c.digest.label("blob"),
                version_files.c.size.label("blob_size"),
                versions.c.id,
                versions.c.digest.label("version_digest"),
            )
            .join(versions, versions.c.id == version_files.c.version_id)
            .join(models, models.c.id == versions.c.model_id)
            .where(versions.c.purged_at.is_(None), ~_HAS_RECIPE)
        )
        chunked = (
            select(
                models.c.name,
                versions.c.number,
                version_files.c.path,
                version_files.c.digest,
                version_files.c.size,
                recipe_chunks.c.digest.label("blob"),
                recipe_chunks.c.size.label("blob_size"),
                versions.c.id,
                versions.c.digest.label("version_digest"),
            )
            .join(versions, versions.c.id == version_files.c.version_id)
            .join(models, models.c.id == versions.c.model_id)
            .join(recipe_chunks, recipe_chunks.c.file_digest == version_files.c.digest)
            .where(versions.c.purged_at.is_(None))
        )
        rows = [StoredFile(*row) for q in (whole, chunked) for row in self._conn.execute(q)]
        return sorted(rows, key=lambda r: (r.id, r.path))
