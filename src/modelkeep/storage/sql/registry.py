"""Models, versions and aliases: rows <-> domain records in one transaction."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from typing import Any

from sqlalchemy import Connection, and_, bindparam, func, insert, select, update
from sqlalchemy import exc as sa_exc

from modelkeep.domain.aliases import AliasAction, AliasEvent
from modelkeep.domain.manifest import FileEntry
from modelkeep.domain.versions import Model, Version, VersionMetadata, check_unique
from modelkeep.errors import Conflict, ModelExists
from modelkeep.ports.registry import NewVersion, VersionKey
from modelkeep.storage.sql.tables import alias_events, aliases, models, version_files, versions

_VERSION_COLUMNS = (
    versions.c.id,
    versions.c.number,
    versions.c.semver,
    versions.c.digest,
    versions.c.status,
    versions.c.metadata,
    versions.c.message,
    versions.c.created_at,
    versions.c.created_by,
    versions.c.archived_at,
    versions.c.purged_at,
)


# Hot statements are built once; SQLAlchemy then reuses their compiled form.
_N_VERSIONS = select(func.count()).where(versions.c.model_id == models.c.id).scalar_subquery()
_LATEST = (
    select(func.max(versions.c.number))
    .where(versions.c.model_id == models.c.id, versions.c.status == "active")
    .scalar_subquery()
)
_MODELS = select(models, _N_VERSIONS.label("n_versions"), _LATEST.label("latest")).order_by(
    models.c.name
)
_MODEL_BY_NAME = _MODELS.where(models.c.name == bindparam("name"))
_MODEL_ID = select(models.c.id).where(models.c.name == bindparam("name"))
_MODEL_REQUIRED = select(models.c.id, models.c.required).where(models.c.name == bindparam("name"))
_KEYS = (
    select(versions.c.number, versions.c.digest, versions.c.created_at)
    .join(models, models.c.id == versions.c.model_id)
    .where(models.c.name == bindparam("model"))
    .order_by(versions.c.number)
)
_KEY_BY_NUMBER = _KEYS.where(versions.c.number == bindparam("number"))
_ALIAS_KEY = (
    select(versions.c.number, versions.c.digest, versions.c.created_at)
    .select_from(aliases)
    .join(models, models.c.id == aliases.c.model_id)
    .join(versions, versions.c.id == aliases.c.version_id)
    .where(models.c.name == bindparam("model"), aliases.c.name == bindparam("alias"))
)

_NEXT_NUMBER = (
    update(models)
    .where(models.c.id == bindparam("model_id"))
    .values(last_number=models.c.last_number + 1)
    .returning(models.c.last_number)
)
_INSERT_VERSION = insert(versions).returning(versions.c.id)
_INSERT_FILES = insert(version_files)


class ModelIds:
    """Model name -> row id, cached for the transaction; shared by the registry's rows."""

    def __init__(self, conn: Connection) -> None:
        self._conn = conn
        self._ids: dict[str, int] = {}

    def find(self, name: str) -> int | None:
        if name not in self._ids:
            found = self._conn.execute(_MODEL_ID, {"name": name}).scalar()
            if found is None:
                return None
            self._ids[name] = int(found)
        return self._ids[name]

    def remember(self, name: str, model_id: int) -> None:
        self._ids[name] = model_id

    def require(self, name: str) -> int:
        model_id = self.find(name)
        if model_id is None:  # services check first; this guards the invariant
            raise Conflict(f"model {name!r} vanished during the transaction")
        return model_id


class ModelRows:
    def __init__(self, conn: Connection, ids: ModelIds) -> None:
        self._conn = conn
        self._ids = ids

    def get(self, name: str) -> Model | None:
        rows = self._model_rows(_MODEL_BY_NAME, {"name": name})
        return rows[0] if rows else None

    def required_fields(self, name: str) -> tuple[str, ...] | None:
        row = self._conn.execute(_MODEL_REQUIRED, {"name": name}).first()
        if row is None:
            return None
        self._ids.remember(name, int(row.id))
        return tuple(row.required)

    def all(self) -> list[Model]:
        return self._model_rows(_MODELS, {})

    def _model_rows(self, query: Any, params: dict[str, Any]) -> list[Model]:
        return [
            Model(
                row.name,
                row.description,
                tuple(row.required),
                row.created_at,
                row.created_by,
                row.latest,
                int(row.n_versions or 0),
            )
            for row in self._conn.execute(query, params)
        ]

    def add(
        self, name: str, description: str, required: Sequence[str], actor: str, at: datetime
    ) -> Model:
        if self._ids.find(name) is not None:
            raise ModelExists(f"model {name!r} already exists")
        self._conn.execute(
            insert(models).values(
                name=name,
                description=description,
                required=list(required),
                created_at=at,
                created_by=actor,
                last_number=0,
            )
        )
        return Model(name, description, tuple(required), at, actor)


class VersionRows:
    def __init__(self, conn: Connection, ids: ModelIds) -> None:
        self._conn = conn
        self._ids = ids

    def add(self, new: NewVersion) -> Version:
        model_id = self._ids.require(new.model)
        self._check_unique(model_id, new)
        number = int(self._conn.execute(_NEXT_NUMBER, {"model_id": model_id}).scalar_one())
        row = {
            "model_id": model_id,
            "number": number,
            "semver": new.semver,
            "digest": new.digest,
            "status": "active",
            "metadata": new.metadata.to_dict(),
            "message": new.message,
            "created_at": new.at,
            "created_by": new.actor,
            "archived_at": None,
        }
        try:
            version_id = self._conn.execute(_INSERT_VERSION, row).scalar_one()
        except sa_exc.IntegrityError as exc:  # the checks above hold under the head lock
            raise Conflict(f"version of {new.model!r} collided: {exc.orig}") from None
        self._conn.execute(
            _INSERT_FILES,
            [
                {"version_id": version_id, "path": f.path, "size": f.size, "digest": f.digest}
                for f in new.files
            ],
        )
        return Version(
            new.model,
            number,
            new.semver,
            new.digest,
            "active",
            new.at,
            new.actor,
            tuple(new.files),
            new.metadata,
            new.message,
        )

    def _check_unique(self, model_id: int, new: NewVersion) -> None:
        same = versions.c.digest == new.digest
        if new.semver is not None:
            same = same | (versions.c.semver == new.semver)
        clashes = self._conn.execute(
            select(versions.c.number, versions.c.semver).where(
                versions.c.model_id == model_id, same
            )
        ).all()
        check_unique(new.model, new.semver, new.digest, [(c.number, c.semver) for c in clashes])

    def get(self, model: str, number: int) -> Version | None:
        found = self._versions(model, versions.c.number == number)
        return found[0] if found else None

    def page(self, model: str, after: int | None = None, limit: int | None = None) -> list[Version]:
        return self._versions(
            model, versions.c.number > after if after is not None else None, limit
        )

    def _versions(self, model: str, where: Any, limit: int | None = None) -> list[Version]:
        model_id = self._ids.find(model)
        if model_id is None:
            return []
        query = select(*_VERSION_COLUMNS).where(versions.c.model_id == model_id)
        if where is not None:
            query = query.where(where)
        rows = list(self._conn.execute(query.order_by(versions.c.number).limit(limit)))
        ids = [row.id for row in rows]
        files = self._files_of(ids)
        names = self._aliases_of(model_id, ids)
        return [_version(model, row, files.get(row.id, ()), names.get(row.id, ())) for row in rows]

    def _files_of(self, version_ids: list[int]) -> dict[int, tuple[FileEntry, ...]]:
        result: dict[int, list[FileEntry]] = {}
        if version_ids:
            query = (
                select(version_files)
                .where(version_files.c.version_id.in_(version_ids))
                .order_by(version_files.c.version_id, version_files.c.path)
            )
            for row in self._conn.execute(query):
                result.setdefault(row.version_id, []).append(
                    FileEntry(row.path, int(row.size), row.digest)
                )
        return {key: tuple(value) for key, value in result.items()}

    def _aliases_of(self, model_id: int, version_ids: list[int]) -> dict[int, tuple[str, ...]]:
        result: dict[int, list[str]] = {}
        if version_ids:
            query = (
                select(aliases.c.version_id, aliases.c.name)
                .where(aliases.c.model_id == model_id, aliases.c.version_id.in_(version_ids))
                .order_by(aliases.c.name)
            )
            for row in self._conn.execute(query):
                result.setdefault(row.version_id, []).append(row.name)
        return {key: tuple(value) for key, value in result.items()}

    def _keys(self, model: str, *where: Any) -> list[VersionKey]:
        query = _KEYS.where(*where)
        rows = self._conn.execute(query, {"model": model})
        return [VersionKey(r.number, r.digest, r.created_at) for r in rows]

    def key_by_number(self, model: str, number: int) -> VersionKey | None:
        row = self._conn.execute(_KEY_BY_NUMBER, {"model": model, "number": number}).first()
        return VersionKey(row.number, row.digest, row.created_at) if row else None

    def key_by_semver(self, model: str, semver: str) -> VersionKey | None:
        found = self._keys(model, versions.c.semver == semver)
        return found[0] if found else None

    def keys_by_digest_prefix(self, model: str, prefix: str) -> list[VersionKey]:
        return self._keys(model, versions.c.digest.startswith(prefix, autoescape=True))

    def latest_key(self, model: str, at: datetime | None = None) -> VersionKey | None:
        active = (
            versions.c.archived_at.is_(None)
            if at is None
            else versions.c.archived_at.is_(None) | (versions.c.archived_at > at)
        )
        where = [active] if at is None else [active, versions.c.created_at <= at]
        found = self._keys(model, *where)
        return found[-1] if found else None

    def semvers(self, model: str) -> list[str]:
        query = (
            select(versions.c.semver)
            .join(models, models.c.id == versions.c.model_id)
            .where(models.c.name == model, versions.c.semver.is_not(None))
        )
        return [str(s) for s in self._conn.execute(query).scalars()]

    def archive(self, model: str, number: int, at: datetime) -> None:
        self._conn.execute(
            update(versions)
            .where(versions.c.model_id == self._ids.require(model), versions.c.number == number)
            .values(status="archived", archived_at=at)
        )

    def unarchive(self, model: str, number: int) -> None:
        self._conn.execute(
            update(versions)
            .where(versions.c.model_id == self._ids.require(model), versions.c.number == number)
            .values(status="active", archived_at=None)
        )

    def purge(self, model: str, number: int, at: datetime) -> None:
        self._conn.execute(
            update(versions)
            .where(versions.c.model_id == self._ids.require(model), versions.c.number == number)
            .values(purged_at=at)
        )


class AliasRows:
    def __init__(self, conn: Connection, ids: ModelIds) -> None:
        self._conn = conn
        self._ids = ids

    def key(self, model: str, alias: str) -> VersionKey | None:
        row = self._conn.execute(_ALIAS_KEY, {"model": model, "alias": alias}).first()
        return VersionKey(row.number, row.digest, row.created_at) if row else None

    def move(
        self,
        model: str,
        alias: str,
        action: AliasAction,
        new: int | None,
        actor: str,
        at: datetime,
        reason: str | None,
    ) -> AliasEvent:
        model_id = self._ids.require(model)
        old_key = self.key(model, alias)
        old_id = self._version_id(model_id, old_key.number) if old_key else None
        new_id = self._version_id(model_id, new) if new is not None else None
        current = and_(aliases.c.model_id == model_id, aliases.c.name == alias)
        self._conn.execute(aliases.delete().where(current))
        if new_id is not None:
            self._conn.execute(
                insert(aliases).values(model_id=model_id, name=alias, version_id=new_id)
            )
        self._conn.execute(
            insert(alias_events).values(
                model_id=model_id,
                alias=alias,
                action=action,
                old_version_id=old_id,
                new_version_id=new_id,
                actor=actor,
                at=at,
                reason=reason,
            )
        )
        return AliasEvent(
            model, alias, action, old_key.number if old_key else None, new, actor, at, reason
        )

    def _version_id(self, model_id: int, number: int) -> int:
        return int(
            self._conn.execute(
                select(versions.c.id).where(
                    versions.c.model_id == model_id, versions.c.number == number
                )
            ).scalar_one()
        )

    def events(self, model: str, alias: str | None = None) -> list[AliasEvent]:
        old, new = versions.alias("old"), versions.alias("new")
        query = (
            select(alias_events, old.c.number.label("old_number"), new.c.number.label("new_number"))
            .join(models, models.c.id == alias_events.c.model_id)
            .outerjoin(old, old.c.id == alias_events.c.old_version_id)
            .outerjoin(new, new.c.id == alias_events.c.new_version_id)
            .where(models.c.name == model)
            .order_by(alias_events.c.id)
        )
        if alias is not None:
            query = query.where(alias_events.c.alias == alias)
        return [
            AliasEvent(
                model,
                row.alias,
                row.action,
                row.old_number,
                row.new_number,
                row.actor,
                row.at,
                row.reason,
            )
            for row in self._conn.execute(query)
        ]


def _version(model: str, row: Any, files: tuple[FileEntry, ...], names: tuple[str, ...]) -> Version:
    return Version(
        model=model,
        number=row.number,
        semver=row.semver,
        digest=row.digest,
        status=row.status,
        created_at=row.created_at,
        created_by=row.created_by,
        files=files,
        metadata=VersionMetadata.from_dict(row.metadata),
        message=row.message,
        aliases=names,
        archived_at=row.archived_at,
        purged_at=row.purged_at,
    )
