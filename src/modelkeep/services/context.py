"""The service context: who acts, on which store, by which clock. Every use case takes
one; nothing else carries state between them.

``authorize`` asks ``domain.access.decide`` whether the principal may act, and raises
``Forbidden`` with the decision's reason if not, before anything is read or written.
``record_event`` appends an audit event in the caller's write transaction, so the change
and its record commit together or not at all."""

from __future__ import annotations

import dataclasses
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from modelkeep.domain import access
from modelkeep.domain.access import Action, Actor, Decision
from modelkeep.domain.audit import AuditEvent
from modelkeep.domain.events import EventKind
from modelkeep.errors import Forbidden
from modelkeep.ports.blobs import AuditSigner, BlobStore, ModelSigner
from modelkeep.ports.unit_of_work import MetadataStore, Transaction

Clock = Callable[[], datetime]


def utc_now() -> datetime:
    return datetime.now(UTC)


class ChangeCounter:
    """How many audited changes this process made (contexts made from one another share
    it): a cache of what the audit log decides (tokens) can tell at once that it is stale
    without reading the database."""

    def __init__(self) -> None:
        self.count = 0

    def bump(self) -> None:
        self.count += 1  # racy increments only ever make a cache re-check: harmless


@dataclass
class ServiceContext:
    """The store, the blobs and the principal every use case acts with.

    ``principal`` is who acts (its grants decide what it may do); ``actor`` is its name,
    as the audit log and ``created_by`` record it. ``signer`` is the store's audit key
    (signed checkpoints, attestations and bundles), ``model_signer`` its P-256 key of
    OpenSSF model signatures; ``request_id`` the API request served, which
    its audit events record."""

    store: MetadataStore
    blobs: BlobStore
    principal: Actor
    clock: Clock = utc_now
    signer: AuditSigner | None = None
    model_signer: ModelSigner | None = None
    request_id: str | None = None
    owns_store: bool = field(default=True, repr=False)
    changes: ChangeCounter = field(default_factory=ChangeCounter, repr=False, compare=False)

    def __post_init__(self) -> None:
        if not isinstance(self.principal, Actor):  # a bare name must never pass as an admin
            raise TypeError(f"principal must be an Actor, not {type(self.principal).__name__}")

    @property
    def actor(self) -> str:
        return self.principal.name

    def for_actor(self, actor: Actor) -> ServiceContext:
        """The same store and blobs, acting for ``actor`` (e.g. one per HTTP request).

        Cheap: nothing is opened. Its ``close`` does nothing; close the context that
        opened the store."""
        return dataclasses.replace(self, principal=actor, owns_store=False)

    def for_request(self, request_id: str | None) -> ServiceContext:
        """A copy whose audit events record ``request_id`` (``details.request_id``)."""
        return dataclasses.replace(self, request_id=request_id, owns_store=False)

    def close(self) -> None:
        if self.owns_store:
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

    # audit ----------------------------------------------------------------------------

    def record_event(
        self,
        tx: Transaction,
        kind: EventKind,
        subject: str,
        details: dict[str, Any],
        at: datetime,
    ) -> AuditEvent:
        """Append ``kind`` about ``subject`` to the audit chain, in ``tx``."""
        if self.request_id is not None:
            details = {**details, "request_id": self.request_id}
        self.changes.bump()
        return tx.audit.append(self.actor, kind.value, subject, details, at)
