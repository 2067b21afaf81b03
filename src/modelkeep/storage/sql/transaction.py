"""Rows <-> domain records for one transaction. No business rules live here: services
decide, this module only reads and writes what they decided."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from typing import Any

from sqlalchemy import (
    Connection,
    RootTransaction,
    and_,
    bindparam,
    func,
    insert,
    or_,
    select,
    update,
)
from sqlalchemy import exc as sa_exc

from modelkeep.domain.access import ROLES, Grant
from modelkeep.domain.aliases import AliasAction, AliasEvent
from modelkeep.domain.audit import AuditEvent, chain
from modelkeep.domain.manifest import FileEntry
from modelkeep.domain.users import Token, User
from modelkeep.domain.versions import Model, Version, VersionMetadata
from modelkeep.errors import Conflict, DuplicateVersion, ModelExists, SemverExists
from modelkeep.ports import NewVersion, VersionKey
from modelkeep.storage.sql.datasets import DatasetRows
from modelkeep.storage.sql.governance import GovernanceRows
from modelkeep.storage.sql.recipes import RecipeRows
from modelkeep.storage.sql.retention import RetentionRows
from modelkeep.storage.sql.tables import (
    alias_events,
    aliases,
    audit_events,
    audit_head,
    grants,
    models,
    tokens,
    users,
    version_files,
    versions,
)
from modelkeep.storage.sql.tracking import TrackingRows

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

_LOCK_HEAD = (
    select(audit_head.c.seq, audit_head.c.hash).where(audit_head.c.id == 1).with_for_update()
)
_MOVE_HEAD = (
    update(audit_head)
    .where(audit_head.c.id == 1)
    .values(seq=bindparam("new_seq"), hash=bindparam("new_hash"))
)
_INSERT_AUDIT = insert(audit_events)
_NEXT_NUMBER = (
    update(models)
    .where(models.c.id == bindparam("model_id"))
    .values(last_number=models.c.last_number + 1)
    .returning(models.c.last_number)
)
_INSERT_VERSION = insert(versions).returning(versions.c.id)
_INSERT_FILES = insert(version_files)
_USER_ID = select(users.c.id).where(users.c.name == bindparam("name"))
_TOKENS = select(
    tokens.c.id,
    users.c.name.label("user_name"),
    tokens.c.label,
    tokens.c.created_at,
    tokens.c.created_by,
    tokens.c.expires_at,
    tokens.c.revoked_at,
).join(users, users.c.id == tokens.c.user_id)
_TOKEN_BY_HASH = _TOKENS.where(tokens.c.token_hash == bindparam("token_hash"))


class SqlTransaction(GovernanceRows, RecipeRows, RetentionRows, TrackingRows, DatasetRows):
    def __init__(self, conn: Connection, trans: RootTransaction, *, write: bool) -> None:
        self._conn = conn
        self._trans = trans
        self._model_ids: dict[str, int] = {}
        self._head: tuple[int, str] | None = None
        if write:
            # Lock the audit head first: it orders every writer on every replica.
            row = conn.execute(_LOCK_HEAD).one()
            self._head = (int(row.seq), str(row.hash))

    def commit(self) -> None:
        self._trans.commit()

    # models ---------------------------------------------------------------------------

    def _model_id(self, name: str) -> int | None:
        if name not in self._model_ids:
            found = self._conn.execute(_MODEL_ID, {"name": name}).scalar()
            if found is None:
                return None
            self._model_ids[name] = int(found)
        return self._model_ids[name]

    def get_model(self, name: str) -> Model | None:
        rows = self._model_rows(_MODEL_BY_NAME, {"name": name})
        return rows[0] if rows else None

    def required_fields(self, name: str) -> tuple[str, ...] | None:
        row = self._conn.execute(_MODEL_REQUIRED, {"name": name}).first()
        if row is None:
            return None
        self._model_ids[name] = int(row.id)
        return tuple(row.required)

    def list_models(self) -> list[Model]:
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

    def add_model(
        self, name: str, description: str, required: Sequence[str], actor: str, at: datetime
    ) -> Model:
        if self._model_id(name) is not None:
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

    # versions -------------------------------------------------------------------------

    def add_version(self, new: NewVersion) -> Version:
        model_id = self._require_model_id(new.model)
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
        for clash in clashes:
            if new.semver is not None and clash.semver == new.semver:
                raise SemverExists(
                    f"{new.model}@{new.semver} already exists (version {clash.number})"
                )
        if clashes:
            raise DuplicateVersion(
                f"these files are already registered as "
                f"{new.model}@{clashes[0].number} ({new.digest})"
            )

    def _require_model_id(self, name: str) -> int:
        model_id = self._model_id(name)
        if model_id is None:  # services check first; this guards the invariant
            raise Conflict(f"model {name!r} vanished during the transaction")
        return model_id

    def get_version(self, model: str, number: int) -> Version | None:
        found = self._versions(model, versions.c.number == number)
        return found[0] if found else None

    def list_versions(
        self, model: str, after: int | None = None, limit: int | None = None
    ) -> list[Version]:
        return self._versions(
            model, versions.c.number > after if after is not None else None, limit
        )

    def _versions(self, model: str, where: Any, limit: int | None = None) -> list[Version]:
        model_id = self._model_id(model)
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

    def archive_version(self, model: str, number: int, at: datetime) -> None:
        self._conn.execute(
            update(versions)
            .where(
                versions.c.model_id == self._require_model_id(model), versions.c.number == number
            )
            .values(status="archived", archived_at=at)
        )

    # aliases --------------------------------------------------------------------------

    def alias_key(self, model: str, alias: str) -> VersionKey | None:
        row = self._conn.execute(_ALIAS_KEY, {"model": model, "alias": alias}).first()
        return VersionKey(row.number, row.digest, row.created_at) if row else None

    def move_alias(
        self,
        model: str,
        alias: str,
        action: AliasAction,
        new: int | None,
        actor: str,
        at: datetime,
        reason: str | None,
    ) -> AliasEvent:
        model_id = self._require_model_id(model)
        old_key = self.alias_key(model, alias)
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

    def alias_events(self, model: str, alias: str | None = None) -> list[AliasEvent]:
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

    # audit ----------------------------------------------------------------------------

    def append_audit(
        self, actor: str, action: str, subject: str, details: dict[str, Any], at: datetime
    ) -> AuditEvent:
        if self._head is None:
            raise RuntimeError("audit events are written only in write transactions")
        event = chain(*self._head, at, actor, action, subject, details)
        self._conn.execute(
            _INSERT_AUDIT,
            {
                **event.body(),
                "at": at,
                "details": dict(details),
                "prev_hash": event.prev_hash,
                "hash": event.hash,
            },
        )
        self._conn.execute(_MOVE_HEAD, {"new_seq": event.seq, "new_hash": event.hash})
        self._head = (event.seq, event.hash)
        return event

    def audit_events(
        self,
        model: str | None = None,
        since: datetime | None = None,
        after: int | None = None,
        limit: int | None = None,
    ) -> list[AuditEvent]:
        query = select(audit_events).order_by(audit_events.c.seq).limit(limit)
        if after is not None:  # keyset: the page after seq ``after``, from the index
            query = query.where(audit_events.c.seq > after)
        if model is not None:
            subject = audit_events.c.subject
            query = query.where(
                (subject == model) | subject.startswith(model + "@", autoescape=True)
            )
        if since is not None:
            query = query.where(audit_events.c.at >= since)
        return [
            AuditEvent(
                row.seq,
                row.at,
                row.actor,
                row.action,
                row.subject,
                row.details,
                row.prev_hash,
                row.hash,
            )
            for row in self._conn.execute(query)
        ]

    def audit_head(self) -> tuple[int, str] | None:
        row = self._conn.execute(select(audit_head.c.seq, audit_head.c.hash)).first()
        return (int(row.seq), str(row.hash)) if row else None

    # users, grants and tokens -----------------------------------------------------------

    def _user_id(self, name: str) -> int | None:
        found = self._conn.execute(_USER_ID, {"name": name}).scalar()
        return None if found is None else int(found)

    def _require_user_id(self, name: str) -> int:
        user_id = self._user_id(name)
        if user_id is None:  # services check first; this guards the invariant
            raise Conflict(f"user {name!r} vanished during the transaction")
        return user_id

    def get_user(self, name: str, now: datetime) -> User | None:
        found = self._users(users.c.name == name, now)
        return found[0] if found else None

    def list_users(self, now: datetime) -> list[User]:
        return self._users(None, now)

    def _users(self, where: Any, now: datetime) -> list[User]:
        query = select(users).order_by(users.c.name)
        if where is not None:
            query = query.where(where)
        rows = list(self._conn.execute(query))
        ids = [row.id for row in rows]
        held = self._grants_of(ids)
        active = self._active_tokens_of(ids, now)
        return [
            User(
                row.name,
                row.created_at,
                row.created_by,
                row.disabled_at,
                held.get(row.id, ()),
                active.get(row.id, 0),
            )
            for row in rows
        ]

    def _grants_of(self, user_ids: list[int]) -> dict[int, tuple[Grant, ...]]:
        result: dict[int, list[Grant]] = {}
        if user_ids:
            query = select(grants.c.user_id, grants.c.role, grants.c.model).where(
                grants.c.user_id.in_(user_ids)
            )
            for row in self._conn.execute(query):
                result.setdefault(row.user_id, []).append(Grant(row.role, row.model))
        order = list(ROLES)
        return {
            key: tuple(
                sorted(
                    value, key=lambda g: (g.model is not None, g.model or "", order.index(g.role))
                )
            )
            for key, value in result.items()
        }

    def _active_tokens_of(self, user_ids: list[int], now: datetime) -> dict[int, int]:
        if not user_ids:
            return {}
        query = (
            select(tokens.c.user_id, func.count())
            .where(
                tokens.c.user_id.in_(user_ids),
                tokens.c.revoked_at.is_(None),
                or_(tokens.c.expires_at.is_(None), tokens.c.expires_at > now),
            )
            .group_by(tokens.c.user_id)
        )
        return {int(user_id): int(count) for user_id, count in self._conn.execute(query)}

    def add_user(self, name: str, actor: str, at: datetime) -> None:
        self._conn.execute(insert(users).values(name=name, created_at=at, created_by=actor))

    def set_user_disabled(self, name: str, at: datetime | None) -> None:
        self._conn.execute(
            update(users).where(users.c.id == self._require_user_id(name)).values(disabled_at=at)
        )

    def _grant_row(self, user_id: int, grant: Grant) -> Any:
        model = grants.c.model.is_(None) if grant.model is None else grants.c.model == grant.model
        return and_(grants.c.user_id == user_id, grants.c.role == grant.role, model)

    def add_grant(self, user: str, grant: Grant) -> bool:
        user_id = self._require_user_id(user)
        where = self._grant_row(user_id, grant)
        if self._conn.execute(select(grants.c.id).where(where)).first() is not None:
            return False
        self._conn.execute(
            insert(grants).values(user_id=user_id, role=grant.role, model=grant.model)
        )
        return True

    def remove_grant(self, user: str, grant: Grant) -> bool:
        where = self._grant_row(self._require_user_id(user), grant)
        return bool(self._conn.execute(grants.delete().where(where)).rowcount)

    def add_token(
        self,
        user: str,
        token_hash: str,
        label: str | None,
        actor: str,
        at: datetime,
        expires_at: datetime | None,
    ) -> Token:
        token_id = self._conn.execute(
            insert(tokens)
            .values(
                user_id=self._require_user_id(user),
                token_hash=token_hash,
                label=label,
                created_at=at,
                created_by=actor,
                expires_at=expires_at,
                revoked_at=None,
            )
            .returning(tokens.c.id)
        ).scalar_one()
        return Token(int(token_id), user, label, at, actor, expires_at)

    def get_token(self, token_id: int) -> Token | None:
        row = self._conn.execute(_TOKENS.where(tokens.c.id == token_id)).first()
        return _token(row) if row else None

    def token_by_hash(self, token_hash: str) -> Token | None:
        row = self._conn.execute(_TOKEN_BY_HASH, {"token_hash": token_hash}).first()
        return _token(row) if row else None

    def list_tokens(self, user: str | None = None) -> list[Token]:
        query = _TOKENS.order_by(tokens.c.id)
        if user is not None:
            query = query.where(users.c.name == user)
        return [_token(row) for row in self._conn.execute(query)]

    def revoke_token(self, token_id: int, at: datetime) -> None:
        self._conn.execute(update(tokens).where(tokens.c.id == token_id).values(revoked_at=at))


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


def _token(row: Any) -> Token:
    return Token(
        int(row.id),
        row.user_name,
        row.label,
        row.created_at,
        row.created_by,
        row.expires_at,
        row.revoked_at,
    )
