"""Reading models and versions inside a transaction, with the one error for each miss.

Every context that names a model or a version resolves it here, so ``fraud@prod`` means
the same thing to a push, a promotion, a check and a card."""

from __future__ import annotations

from datetime import datetime

from modelkeep.domain import aliases as alias_rules
from modelkeep.domain.names import STAGES, Ref, RefKind
from modelkeep.domain.text import did_you_mean
from modelkeep.domain.versions import Model, Version
from modelkeep.errors import AliasNotFound, AmbiguousRef, ModelNotFound, VersionNotFound
from modelkeep.ports.registry import VersionKey
from modelkeep.ports.unit_of_work import MetadataStore, Transaction
from modelkeep.services import integrity


def model(tx: Transaction, name: str) -> Model:
    found = tx.models.get(name)
    if found is None:
        raise no_model(tx, name)
    return found


def no_model(tx: Transaction, name: str) -> ModelNotFound:
    """The error for a missing model, with the closest existing name. Only callers that
    may read the name they asked for get here (``authorize`` comes first), and a
    per-model grant on a model that does not exist is not a way to list the others."""
    suggestion = did_you_mean(name, (m.name for m in tx.models.all()))
    listing = "list models with 'modelkeep models list'"
    if suggestion:
        return ModelNotFound(f"model {name!r} does not exist", suggestion + listing)
    return ModelNotFound(
        f"model {name!r} does not exist",
        f"create it with 'modelkeep models create {name}', or {listing}",
    )


def no_alias(tx: Transaction, model: str, alias: str, when: str = "") -> AliasNotFound:
    """The error for a missing alias or stage, with the closest one the model has."""
    if alias in STAGES:
        return AliasNotFound(
            f"nothing was promoted to {alias} of {model}{when or ' yet'}",
            f"promote a version first: 'modelkeep promote {model}@N --to {alias}'",
        )
    known = {event.alias for event in tx.aliases.events(model)} | {"latest", *STAGES}
    return AliasNotFound(
        f"{model} has no alias {alias!r}{when}",
        f"{did_you_mean(alias, sorted(known))}list aliases with 'modelkeep alias history {model}'",
    )


def version(tx: Transaction, model_name: str, number: int) -> Version:
    found = tx.versions.get(model_name, number)
    if found is None:
        raise VersionNotFound(f"{model_name}@{number} does not exist")
    return found


def version_of(tx: Transaction, ref: Ref) -> Version:
    """The version ``ref`` names, read in ``tx``; refused (``RecordTampered``) if its row
    or the alias that named it is not what the audit chain recorded."""
    found = version(tx, ref.model, key(tx, ref, None).number)
    integrity.check_version(tx, found)
    return found


def unchecked_version_of(tx: Transaction, ref: Ref) -> Version:
    """The version ``ref`` names as its rows say, even if they were tampered with: for
    ``verify``, which reports what the checked reads would refuse."""
    found = _lookup_unchecked(tx, ref)
    if found is None:
        return version_of(tx, ref)  # the same error a read would give
    return version(tx, ref.model, found.number)


def reread(store: MetadataStore, old: Version) -> Version:
    """``old`` as it is now, after a transaction that changed it committed."""
    with store.transaction() as tx:
        return version(tx, old.model, old.number)


def key(tx: Transaction, ref: Ref, at: datetime | None) -> VersionKey:
    """Resolve a reference to a version's number and digest (as of ``at``, if given)."""
    found = _lookup(tx, ref, at)
    if found is None:
        model(tx, ref.model)
        if ref.kind is RefKind.ALIAS:
            when = f" at {at.isoformat()}" if at else ""
            raise no_alias(tx, ref.model, ref.value, when)
        raise VersionNotFound(f"{ref} does not exist")
    if at is not None and found.created_at > at:
        raise VersionNotFound(f"{ref} did not exist yet at {at.isoformat()}")
    return found


def _lookup_unchecked(tx: Transaction, ref: Ref) -> VersionKey | None:
    if ref.kind is RefKind.ALIAS:
        return tx.aliases.key(ref.model, ref.value)
    return _lookup(tx, ref, None)


def _lookup(tx: Transaction, ref: Ref, at: datetime | None) -> VersionKey | None:
    if ref.kind is RefKind.NUMBER:
        return tx.versions.key_by_number(ref.model, int(ref.value))
    if ref.kind is RefKind.SEMVER:
        return tx.versions.key_by_semver(ref.model, ref.value)
    if ref.kind is RefKind.LATEST:
        return tx.versions.latest_key(ref.model, at)
    if ref.kind is RefKind.DIGEST:
        found = tx.versions.keys_by_digest_prefix(ref.model, ref.value)
        if len(found) > 1:
            numbers = ", ".join(str(k.number) for k in found)
            raise AmbiguousRef(f"{ref} matches versions {numbers}")
        return found[0] if found else None
    if at is None:
        target = tx.aliases.key(ref.model, ref.value)
        integrity.check_alias(tx, ref.model, ref.value, target)
        return target
    number = alias_rules.target_at(tx.aliases.events(ref.model, ref.value), ref.value, at)
    return tx.versions.key_by_number(ref.model, number) if number is not None else None
