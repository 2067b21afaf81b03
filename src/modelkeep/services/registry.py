"""The registry's use cases: models, versions, references, aliases and stages.

Every use case first asks ``domain.access.decide`` whether the registry's actor may do it
(``Registry.authorize``), and raises ``Forbidden`` with the decision's reason if not,
before it reads or writes anything.
"""

from __future__ import annotations

import copy
from collections.abc import Callable, Iterable, Sequence
from datetime import UTC, datetime
from typing import Any, BinaryIO

from modelkeep.domain import access
from modelkeep.domain import aliases as alias_rules
from modelkeep.domain.access import Action, Actor, Decision
from modelkeep.domain.audit import AuditEvent, ChainReport
from modelkeep.domain.datasets import match_version
from modelkeep.domain.diff import VersionDiff, diff_versions
from modelkeep.domain.manifest import FileEntry, Manifest
from modelkeep.domain.names import (
    STAGES,
    Ref,
    RefKind,
    check_alias_name,
    check_model_name,
    check_stage,
    parse_ref,
)
from modelkeep.domain.runs import RUN_ID, through_run
from modelkeep.domain.semver import SemVer, next_semver
from modelkeep.domain.text import check_text
from modelkeep.domain.versions import (
    Model,
    PushRequest,
    Version,
    VersionMetadata,
    check_description,
    check_required_fields,
    require_fields,
)
from modelkeep.errors import (
    AliasMoved,
    AliasNotFound,
    AmbiguousRef,
    BlobNotFound,
    EmptyPush,
    Forbidden,
    InvalidInput,
    ModelNotFound,
    ProtectedAlias,
    RunNotFound,
    VersionArchived,
    VersionInStage,
    VersionNotFound,
)
from modelkeep.ports import (
    AuditSigner,
    BlobInfo,
    BlobStore,
    MetadataStore,
    NewVersion,
    Progress,
    Transaction,
    VersionKey,
)
from modelkeep.services import audit as audit_service
from modelkeep.services import governance

Clock = Callable[[], datetime]


def utc_now() -> datetime:
    return datetime.now(UTC)


class Registry:
    """Every registry operation, for one actor. The SDK and the API call these.

    ``principal`` is who acts (its grants decide what it may do); ``actor`` is its name,
    as the audit log and ``created_by`` record it.
    """

    def __init__(
        self,
        store: MetadataStore,
        blobs: BlobStore,
        *,
        actor: Actor,
        clock: Clock = utc_now,
        signer: AuditSigner | None = None,
    ) -> None:
        if not isinstance(actor, Actor):  # a bare name must never pass as an admin
            raise TypeError(f"actor must be an Actor, not {type(actor).__name__}")
        self.store = store
        self.blobs = blobs
        self.principal = actor
        self.clock = clock
        self.signer = signer
        """The store's audit key (signed checkpoints, see services/audit.py)."""
        self.request_id: str | None = None
        """The API request this registry serves; its audit events record it."""
        self._owns_store = True

    @property
    def actor(self) -> str:
        return self.principal.name

    def for_actor(self, actor: Actor) -> Registry:
        """The same store and blobs, acting for ``actor`` (e.g. one per HTTP request).

        Cheap: nothing is opened. Its ``close`` does nothing; close the registry that
        opened the store."""
        if not isinstance(actor, Actor):
            raise TypeError(f"actor must be an Actor, not {type(actor).__name__}")
        other = copy.copy(self)
        other.principal = actor
        other._owns_store = False
        return other

    def for_request(self, request_id: str | None) -> Registry:
        """A copy whose audit events record ``request_id`` (``details.request_id``)."""
        other = copy.copy(self)
        other.request_id = request_id
        other._owns_store = False
        return other

    def close(self) -> None:
        if self._owns_store:
            self.store.close()

    # access ---------------------------------------------------------------------------

    def decide(self, action: Action, model: str | None) -> Decision:
        return access.decide(self.principal, action, model)

    def can(self, action: Action, model: str | None) -> bool:
        return self.decide(action, model).allowed

    def authorize(self, action: Action, model: str | None) -> None:
        """Raise ``Forbidden`` (with the reason) unless the actor may do ``action``.

        ``model`` None means the whole registry; ``access.ANY_MODEL`` some model."""
        decision = self.decide(action, model)
        if not decision.allowed:
            raise Forbidden(decision.reason)

    # models ---------------------------------------------------------------------------

    def create_model(self, name: str, description: str = "", require: Iterable[str] = ()) -> Model:
        check_model_name(name)
        self.authorize(access.CREATE_MODEL, name)
        required = check_required_fields(require)
        check_description(description)
        with self.store.transaction(write=True) as tx:
            at = self.clock()
            model = tx.add_model(name, description, required, self.actor, at)
            self._audit(
                tx,
                "model.create",
                name,
                {"description": description, "required": list(required)},
                at,
            )
            tx.commit()
        return model

    def list_models(self) -> list[Model]:
        """The models the actor may read."""
        self.authorize(access.READ, access.ANY_MODEL)
        with self.store.transaction() as tx:
            found = tx.list_models()
        if self.can(access.READ, None):
            return found
        return [m for m in found if self.can(access.READ, m.name)]

    def get_model(self, name: str) -> Model:
        check_model_name(name)
        self.authorize(access.READ, name)
        with self.store.transaction() as tx:
            return _model(tx, name)

    # versions -------------------------------------------------------------------------

    def check_push(self, model: str, request: PushRequest) -> None:
        """Refuse a push before any byte is uploaded, if its registration would fail."""
        check_model_name(model)
        self.authorize(access.PUSH, model)
        with self.store.transaction() as tx:
            self._prepare(tx, model, request)

    def put_blob(
        self, stream: BinaryIO, *, expected: str | None = None, progress: Progress | None = None
    ) -> BlobInfo:
        """Store bytes for a push to come (registering them checks the model's grant)."""
        self.authorize(access.PUSH, access.ANY_MODEL)
        return self.blobs.put(stream, expected=expected, progress=progress)

    def missing_blobs(self, digests: Iterable[str]) -> set[str]:
        """Which of these the store lacks: blobs, or files (stored whole or chunked)."""
        self.authorize(access.PUSH, access.ANY_MODEL)
        absent = {d for d in set(digests) if not self.blobs.has(d)}
        if absent:
            with self.store.transaction() as tx:
                chunked = {d: tx.get_recipe(d) for d in tx.recipe_digests(absent)}
            # a chunked file counts as stored only with every chunk there: a chunk lost
            # behind modelkeep's back is then pushed again, and the store is whole again
            absent -= {
                d
                for d, recipe in chunked.items()
                if recipe is not None and all(self.blobs.has(c.digest) for c in recipe.chunks)
            }
        return absent

    def open_blob(self, digest: str) -> BinaryIO:
        """Read a blob by digest: needs read on some model (a digest is learnt by reading
        a version the actor may read)."""
        self.authorize(access.READ, access.ANY_MODEL)
        return self.blobs.open(digest)

    def register_version(
        self, model: str, files: Sequence[FileEntry], request: PushRequest
    ) -> Version:
        """Register uploaded files as the model's next version.

        Write ordering: the files' blobs exist already; the manifest blob is written next,
        then the version row commits. Both blob checks and the manifest write happen under
        the write lock, which gc also takes to delete, so no blob can vanish before commit.
        """
        check_model_name(model)
        self.authorize(access.PUSH, model)
        if not files:
            raise EmptyPush("a version needs at least one file")
        manifest = Manifest.of(files)
        with self.store.transaction(write=True) as tx:
            self.check_files_stored(tx, manifest)
            metadata, semver = self._prepare(tx, model, request)
            self.blobs.put_bytes(manifest.canonical_bytes())
            at = self.clock()
            new = NewVersion(
                model,
                semver,
                manifest.digest,
                manifest.files,
                metadata,
                request.message,
                self.actor,
                at,
            )
            version = tx.add_version(new)
            self._link_inputs(tx, version)
            self._audit(tx, "version.push", version.ref, _push_details(version), at)
            tx.commit()
        return version

    def _prepare(
        self, tx: Transaction, model: str, request: PushRequest
    ) -> tuple[VersionMetadata, str | None]:
        check_model_name(model)
        required = tx.required_fields(model)
        if required is None:
            raise _no_model(model)
        policy = governance.model_policy(tx, model)
        required = tuple(dict.fromkeys((*required, *policy.register_require)))
        metadata = request.metadata.validated()
        check_text("the message", request.message)
        require_fields(model, required, self._through_run(tx, metadata), request.message)
        if request.semver is not None and request.bump is not None:
            raise InvalidInput("both a version and --bump were given", "give one of them")
        semver = request.semver
        if request.bump is not None:
            semver = next_semver(tx.semvers(model), request.bump)
        if semver is not None:
            SemVer.parse(semver)
        return metadata, semver

    def version_in(self, tx: Transaction, ref: Ref) -> Version:
        """The version ``ref`` names, read in ``tx``."""
        return _version(tx, ref.model, _key(tx, ref, None).number)

    def check_expected(
        self, model: str, alias: str, current: VersionKey | None, expect: int | None
    ) -> None:
        _check_expected(model, alias, current, expect)

    def metadata_through_run(self, tx: Transaction, metadata: VersionMetadata) -> VersionMetadata:
        return self._through_run(tx, metadata)

    def _through_run(self, tx: Transaction, metadata: VersionMetadata) -> VersionMetadata:
        """The metadata with what its run recorded (a required field may be met there)."""
        if metadata.run is None or not RUN_ID.fullmatch(metadata.run):
            return metadata  # another tracker's run id: recorded as text, not linked
        run = tx.get_run(metadata.run)
        if run is None:
            raise RunNotFound(f"there is no run {metadata.run}")
        return through_run(metadata, run)

    def _link_inputs(self, tx: Transaction, version: Version) -> None:
        """Lineage edges: the run that made the version, the registered datasets it names."""
        run_pk = None
        if version.metadata.run is not None and RUN_ID.fullmatch(version.metadata.run):
            state = tx.run_state(version.metadata.run)
            run_pk = state[0] if state else None
        dataset_ids = []
        for ref in version.metadata.datasets:
            parsed = parse_ref(ref, default_latest=True)
            rows = tx.dataset_versions(parsed.model)
            found = match_version(rows, parsed.kind, parsed.value)
            if found is not None:
                dataset_ids.append(found.id)
        tx.link_version_inputs(version.model, version.number, run_pk, dataset_ids)

    def check_files_stored(self, tx: Transaction, manifest: Manifest) -> None:
        """Every file is stored: chunked (a recorded recipe) or as one blob."""
        chunked = tx.recipe_digests(e.digest for e in manifest.files)
        for entry in manifest.files:
            if entry.digest in chunked:
                recipe = tx.get_recipe(entry.digest)
                size = recipe.size if recipe else None
            else:
                stored = self.blobs.stat(entry.digest)
                size = stored.size if stored else None
            if size is None:
                raise BlobNotFound(
                    f"file {entry.path!r} ({entry.digest}) was not uploaded",
                    "upload every file before registering the version",
                )
            if size != entry.size:
                raise InvalidInput(
                    f"file {entry.path!r} is {size} bytes in the store, not {entry.size}",
                    "give the file's real size",
                )

    def list_versions(
        self, model: str, after: int | None = None, limit: int | None = None
    ) -> list[Version]:
        """The model's versions by number (``after``/``limit``: one page of them)."""
        check_model_name(model)
        self.authorize(access.READ, model)
        with self.store.transaction() as tx:
            _model(tx, model)
            return tx.list_versions(model, after, limit)

    def get_version(self, ref: str) -> Version:
        parsed = parse_ref(ref, default_latest=True)
        self.authorize(access.READ, parsed.model)
        with self.store.transaction() as tx:
            return _version(tx, parsed.model, _key(tx, parsed, None).number)

    def resolve(self, ref: str, at: datetime | None = None) -> alias_rules.Resolution:
        parsed = parse_ref(ref, default_latest=True)
        self.authorize(access.READ, parsed.model)
        with self.store.transaction() as tx:
            key = _key(tx, parsed, at)
        return alias_rules.Resolution(parsed.model, parsed.value, key.number, key.digest)

    def diff(self, old: str, new: str) -> VersionDiff:
        return diff_versions(self.get_version(old), self.get_version(new))

    def archive(self, ref: str, reason: str | None = None) -> Version:
        parsed = parse_ref(ref)
        check_text("the reason", reason)
        self.authorize(access.ARCHIVE, parsed.model)
        with self.store.transaction(write=True) as tx:
            version = _version(tx, parsed.model, _key(tx, parsed, None).number)
            stages = [a for a in version.aliases if a in STAGES]
            if stages:
                raise VersionInStage(
                    f"{version.ref} is the {' and '.join(stages)} version",
                    "promote another version or roll back first",
                )
            if version.status == "archived":
                return version
            at = self.clock()
            tx.archive_version(parsed.model, version.number, at)
            self._audit(
                tx, "version.archive", version.ref, {"digest": version.digest, "reason": reason}, at
            )
            tx.commit()
        return _version_after(self.store, version)

    # aliases and stages ---------------------------------------------------------------

    def set_alias(
        self, ref: str, alias: str, reason: str | None = None, expect: int | None = None
    ) -> alias_rules.AliasEvent:
        """Point ``alias`` at ``ref``. With ``expect`` (the version it must point at now;
        0: unset) the move is a compare-and-set: a stale one is refused, never lost."""
        check_alias_name(alias)
        if alias_rules.is_stage(alias):
            raise ProtectedAlias(f"{alias!r} is a stage, not a free alias")
        parsed = parse_ref(ref)
        self._authorize_alias(parsed.model, alias)
        return self._move(parsed, alias, "set", reason, expect)

    def _authorize_alias(self, model: str, alias: str) -> None:
        """The usual roles move a free alias, unless the policy names who may move it."""
        with self.store.transaction() as tx:
            roles = governance.model_policy(tx, model).alias_roles(alias)
        if roles is None:
            self.authorize(access.SET_ALIAS, model)
            return
        action = access.Action(
            name=f"set-alias {alias}",
            description=f"move the alias {alias} (the policy names who may)",
            per_model=True,
            roles=tuple(dict.fromkeys((*roles, access.ADMIN))),
        )
        decision = access.decide(self.principal, action, model)
        if not decision.allowed:
            raise Forbidden(f"{decision.reason} (policy)")

    def remove_alias(
        self, model: str, alias: str, reason: str | None = None
    ) -> alias_rules.AliasEvent:
        check_model_name(model)
        check_alias_name(alias)
        if alias_rules.is_stage(alias):
            raise ProtectedAlias(f"{alias!r} is a stage; it cannot be removed")
        self._authorize_alias(model, alias)
        with self.store.transaction(write=True) as tx:
            _model(tx, model)
            current = tx.alias_key(model, alias)
            if current is None:
                raise AliasNotFound(f"{model} has no alias {alias!r}")
            event = self.record_move(tx, model, alias, "rm", None, current, reason)
            tx.commit()
        return event

    def promote(
        self,
        ref: str,
        to: str,
        reason: str | None = None,
        expect: int | None = None,
        override: bool = False,
    ) -> alias_rules.AliasEvent:
        """Move stage ``to`` to ``ref`` if the policy allows it, and sign an attestation
        (services/governance.py); ``override`` is an admin's, with a reason."""
        return governance.promote(self, ref, to, reason, expect, override).event

    def rollback(self, model: str, stage: str, reason: str | None = None) -> alias_rules.AliasEvent:
        check_model_name(model)
        self.authorize(access.ROLLBACK, model)
        check_stage(stage)
        with self.store.transaction(write=True) as tx:
            _model(tx, model)
            _, previous = alias_rules.rollback_target(stage, tx.alias_events(model, stage))
            target = _version(tx, model, previous)
            if target.status == "archived":
                raise VersionArchived(f"{stage} would roll back to {target.ref}, which is archived")
            current = tx.alias_key(model, stage)
            event = self.record_move(tx, model, stage, "rollback", target, current, reason)
            tx.commit()
        return event

    def _move(
        self,
        ref: Ref,
        alias: str,
        action: alias_rules.AliasAction,
        reason: str | None,
        expect: int | None = None,
    ) -> alias_rules.AliasEvent:
        with self.store.transaction(write=True) as tx:
            target = _version(tx, ref.model, _key(tx, ref, None).number)
            if target.status == "archived":
                raise VersionArchived(f"{target.ref} is archived")
            current = tx.alias_key(ref.model, alias)
            _check_expected(ref.model, alias, current, expect)
            if current is not None and current.number == target.number:
                return tx.alias_events(ref.model, alias)[-1]  # already there: nothing to do
            event = self.record_move(tx, ref.model, alias, action, target, current, reason)
            tx.commit()
        return event

    def record_move(
        self,
        tx: Transaction,
        model: str,
        alias: str,
        action: alias_rules.AliasAction,
        target: Version | None,
        current: VersionKey | None,
        reason: str | None,
        extra: dict[str, Any] | None = None,
    ) -> alias_rules.AliasEvent:
        """Move the alias and audit it; ``extra`` adds to the event's details."""
        check_text("the reason", reason)
        at = self.clock()
        event = tx.move_alias(
            model, alias, action, target.number if target else None, self.actor, at, reason
        )
        self._audit(
            tx,
            f"alias.{action}",
            f"{model}@{alias}",
            {
                "alias": alias,
                "old": current.number if current else None,
                "old_digest": current.digest if current else None,
                "new": target.number if target else None,
                "new_digest": target.digest if target else None,
                "reason": reason,
                **(extra or {}),
            },
            at,
        )
        return event

    def alias_history(self, model: str, alias: str | None = None) -> list[alias_rules.AliasEvent]:
        check_model_name(model)
        if alias is not None:
            check_alias_name(alias)
        self.authorize(access.READ, model)
        with self.store.transaction() as tx:
            _model(tx, model)
            return tx.alias_events(model, alias)

    # audit ----------------------------------------------------------------------------

    def audit_log(
        self,
        model: str | None = None,
        since: datetime | None = None,
        after: int | None = None,
        limit: int | None = None,
    ) -> list[AuditEvent]:
        """Events about ``model`` (needs read on it), or every event (needs a global role);
        ``after`` (a seq) and ``limit``: one page of them."""
        if model is not None:
            check_model_name(model)
        self.authorize(access.READ, model)
        with self.store.transaction() as tx:
            return tx.audit_events(model, since, after, limit)

    def audit_verify(self) -> ChainReport:
        """The chain recomputed and compared with the signed checkpoints."""
        return audit_service.verify(self)

    def _audit(
        self, tx: Transaction, action: str, subject: str, details: dict[str, Any], at: datetime
    ) -> AuditEvent:
        if self.request_id is not None:
            details = {**details, "request_id": self.request_id}
        return tx.append_audit(self.actor, action, subject, details, at)


def _push_details(version: Version) -> dict[str, Any]:
    """What the audit log keeps of a push; ``metadata_digest`` makes metadata edits evident."""
    return {
        "number": version.number,
        "digest": version.digest,
        "semver": version.semver,
        "files": len(version.files),
        "size": version.size,
        "metadata_digest": version.metadata_digest,
    }


def _check_expected(model: str, alias: str, current: VersionKey | None, expect: int | None) -> None:
    """Compare-and-set: refuse a move made against a state that has changed since."""
    now = current.number if current else 0
    if expect is not None and now != expect:
        where = f"{model}@{now}" if now else "nothing"
        raise AliasMoved(
            f"{alias} of {model} points at {where} now, not at "
            f"{f'{model}@{expect}' if expect else 'nothing'} as expected"
        )


def _model(tx: Transaction, name: str) -> Model:
    model = tx.get_model(name)
    if model is None:
        raise _no_model(name)
    return model


def _no_model(name: str) -> ModelNotFound:
    return ModelNotFound(f"model {name!r} does not exist")


def _version(tx: Transaction, model: str, number: int) -> Version:
    version = tx.get_version(model, number)
    if version is None:
        raise VersionNotFound(f"{model}@{number} does not exist")
    return version


def _version_after(store: MetadataStore, version: Version) -> Version:
    with store.transaction() as tx:
        return _version(tx, version.model, version.number)


def _key(tx: Transaction, ref: Ref, at: datetime | None) -> VersionKey:
    """Resolve a reference to a version's number and digest (as of ``at``, if given)."""
    key = _lookup(tx, ref, at)
    if key is None:
        _model(tx, ref.model)
        if ref.kind is RefKind.ALIAS:
            when = f" at {at.isoformat()}" if at else ""
            raise AliasNotFound(f"{ref.model} has no alias {ref.value!r}{when}")
        raise VersionNotFound(f"{ref} does not exist")
    if at is not None and key.created_at > at:
        raise VersionNotFound(f"{ref} did not exist yet at {at.isoformat()}")
    return key


def _lookup(tx: Transaction, ref: Ref, at: datetime | None) -> VersionKey | None:
    if ref.kind is RefKind.NUMBER:
        return tx.key_by_number(ref.model, int(ref.value))
    if ref.kind is RefKind.SEMVER:
        return tx.key_by_semver(ref.model, ref.value)
    if ref.kind is RefKind.LATEST:
        return tx.latest_key(ref.model, at)
    if ref.kind is RefKind.DIGEST:
        found = tx.keys_by_digest_prefix(ref.model, ref.value)
        if len(found) > 1:
            numbers = ", ".join(str(k.number) for k in found)
            raise AmbiguousRef(f"{ref} matches versions {numbers}")
        return found[0] if found else None
    if at is None:
        return tx.alias_key(ref.model, ref.value)
    number = alias_rules.target_at(tx.alias_events(ref.model, ref.value), ref.value, at)
    return tx.key_by_number(ref.model, number) if number is not None else None
