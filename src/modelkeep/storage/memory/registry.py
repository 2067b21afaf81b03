"""Models, versions and aliases in memory, with the SQL adapter's semantics."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import replace
from datetime import datetime

from modelkeep.domain.aliases import AliasAction, AliasEvent
from modelkeep.domain.versions import Model, Version, VersionMetadata, check_unique
from modelkeep.errors import Conflict, ModelExists
from modelkeep.ports.registry import NewVersion, VersionKey
from modelkeep.storage.memory.state import (
    AliasEventRow,
    ModelRow,
    Tables,
    VersionRow,
    View,
    json_copy,
    utc,
)


def versions_of(tables: Tables, model: str) -> list[VersionRow]:
    """The model's versions by number."""
    found = [row for (name, _), row in tables.versions.items() if name == model]
    return sorted(found, key=lambda row: row.number)


def require_model(tables: Tables, name: str) -> ModelRow:
    row = tables.models.get(name)
    if row is None:  # services check first; this guards the invariant
        raise Conflict(f"model {name!r} vanished during the transaction")
    return row


class ModelRows:
    def __init__(self, view: View) -> None:
        self._view = view

    def get(self, name: str) -> Model | None:
        row = self._view.read.models.get(name)
        return None if row is None else self._model(row)

    def required_fields(self, name: str) -> tuple[str, ...] | None:
        row = self._view.read.models.get(name)
        return None if row is None else row.required

    def all(self) -> list[Model]:
        rows = self._view.read.models
        return [self._model(rows[name]) for name in sorted(rows)]

    def _model(self, row: ModelRow) -> Model:
        versions = versions_of(self._view.read, row.name)
        active = [v.number for v in versions if v.status == "active"]
        return Model(
            row.name,
            row.description,
            row.required,
            row.created_at,
            row.created_by,
            max(active) if active else None,
            len(versions),
        )

    def add(
        self, name: str, description: str, required: Sequence[str], actor: str, at: datetime
    ) -> Model:
        if name in self._view.read.models:
            raise ModelExists(f"model {name!r} already exists")
        tables = self._view.change()
        tables.models[name] = ModelRow(name, description, tuple(required), utc(at), actor, 0)
        return Model(name, description, tuple(required), at, actor)


class VersionRows:
    def __init__(self, view: View) -> None:
        self._view = view

    def add(self, new: NewVersion) -> Version:
        model = require_model(self._view.read, new.model)
        self._check_unique(new)
        tables = self._view.change()
        number = model.last_number + 1
        tables.models[new.model] = replace(model, last_number=number)
        tables.versions[(new.model, number)] = VersionRow(
            id=tables.next_id("versions"),
            model=new.model,
            number=number,
            semver=new.semver,
            digest=new.digest,
            status="active",
            metadata=json_copy(new.metadata.to_dict()),
            message=new.message,
            created_at=utc(new.at),
            created_by=new.actor,
            files=tuple(sorted(new.files, key=lambda f: f.path)),
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

    def _check_unique(self, new: NewVersion) -> None:
        clashes = [
            row
            for row in versions_of(self._view.read, new.model)
            if row.digest == new.digest or (new.semver is not None and row.semver == new.semver)
        ]
        check_unique(new.model, new.semver, new.digest, [(c.number, c.semver) for c in clashes])

    def get(self, model: str, number: int) -> Version | None:
        row = self._view.read.versions.get((model, number))
        return None if row is None else self._version(row)

    def page(self, model: str, after: int | None = None, limit: int | None = None) -> list[Version]:
        rows = [
            row
            for row in versions_of(self._view.read, model)
            if after is None or row.number > after
        ]
        return [self._version(row) for row in (rows if limit is None else rows[:limit])]

    def _version(self, row: VersionRow) -> Version:
        tables = self._view.read
        names = sorted(
            alias
            for (model, alias), number in tables.aliases.items()
            if model == row.model and number == row.number
        )
        return Version(
            model=row.model,
            number=row.number,
            semver=row.semver,
            digest=row.digest,
            status=row.status,
            created_at=row.created_at,
            created_by=row.created_by,
            files=row.files,
            metadata=VersionMetadata.from_dict(json_copy(row.metadata)),
            message=row.message,
            aliases=tuple(names),
            archived_at=row.archived_at,
            purged_at=row.purged_at,
        )

    def _keys(self, model: str, where: Callable[[VersionRow], bool]) -> list[VersionKey]:
        rows = versions_of(self._view.read, model)
        return [VersionKey(r.number, r.digest, r.created_at) for r in rows if where(r)]

    def key_by_number(self, model: str, number: int) -> VersionKey | None:
        row = self._view.read.versions.get((model, number))
        return None if row is None else VersionKey(row.number, row.digest, row.created_at)

    def key_by_semver(self, model: str, semver: str) -> VersionKey | None:
        found = self._keys(model, lambda r: r.semver == semver)
        return found[0] if found else None

    def keys_by_digest_prefix(self, model: str, prefix: str) -> list[VersionKey]:
        return self._keys(model, lambda r: r.digest.startswith(prefix))

    def latest_key(self, model: str, at: datetime | None = None) -> VersionKey | None:
        def active(row: VersionRow) -> bool:
            if at is None:
                return row.archived_at is None
            archived = row.archived_at is None or row.archived_at > at
            return archived and row.created_at <= at

        found = self._keys(model, active)
        return found[-1] if found else None

    def semvers(self, model: str) -> list[str]:
        return [r.semver for r in versions_of(self._view.read, model) if r.semver is not None]

    def archive(self, model: str, number: int, at: datetime) -> None:
        archived = utc(at)
        self._update(
            model, number, lambda row: replace(row, status="archived", archived_at=archived)
        )

    def unarchive(self, model: str, number: int) -> None:
        self._update(model, number, lambda row: replace(row, status="active", archived_at=None))

    def purge(self, model: str, number: int, at: datetime) -> None:
        self._update(model, number, lambda row: replace(row, purged_at=utc(at)))

    def _update(self, model: str, number: int, change: Callable[[VersionRow], VersionRow]) -> None:
        require_model(self._view.read, model)
        row = self._view.read.versions.get((model, number))
        if row is not None:  # else, like an UPDATE that matches no row, nothing happens
            self._view.change().versions[row.key] = change(row)


class AliasRows:
    def __init__(self, view: View) -> None:
        self._view = view

    def key(self, model: str, alias: str) -> VersionKey | None:
        tables = self._view.read
        number = tables.aliases.get((model, alias))
        if number is None:
            return None
        row = tables.versions[(model, number)]
        return VersionKey(row.number, row.digest, row.created_at)

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
        require_model(self._view.read, model)
        old_key = self.key(model, alias)
        if new is not None and (model, new) not in self._view.read.versions:
            raise Conflict(f"{model}@{new} vanished during the transaction")
        tables = self._view.change()
        tables.aliases.pop((model, alias), None)
        if new is not None:
            tables.aliases[(model, alias)] = new
        old = old_key.number if old_key else None
        tables.alias_events.append(
            AliasEventRow(model, alias, action, old, new, actor, utc(at), reason)
        )
        return AliasEvent(model, alias, action, old, new, actor, at, reason)

    def events(self, model: str, alias: str | None = None) -> list[AliasEvent]:
        return [
            AliasEvent(
                e.model,
                e.alias,
                e.action,
                e.old,
                e.new,
                e.actor,
                e.at,
                e.reason,
            )
            for e in self._view.read.alias_events
            if e.model == model and (alias is None or e.alias == alias)
        ]
