"""The audit chain's rows: each event hashes the one before it; the head row orders writers."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from typing import Any

from sqlalchemy import Connection, Select, bindparam, insert, select, update

from modelkeep.domain.audit import AuditEvent, chain
from modelkeep.storage.sql.tables import audit_events, audit_head

_LOCK_HEAD = (
    select(audit_head.c.seq, audit_head.c.hash).where(audit_head.c.id == 1).with_for_update()
)
_MOVE_HEAD = (
    update(audit_head)
    .where(audit_head.c.id == 1)
    .values(seq=bindparam("new_seq"), hash=bindparam("new_hash"))
)
_INSERT_AUDIT = insert(audit_events)


class AuditRows:
    def __init__(self, conn: Connection, *, write: bool) -> None:
        self._conn = conn
        self._head: tuple[int, str] | None = None
        if write:
            # Lock the audit head first: it orders every writer on every replica.
            row = conn.execute(_LOCK_HEAD).one()
            self._head = (int(row.seq), str(row.hash))

    def append(
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

    def events(
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
        return self._read(query)

    def about(self, subjects: Sequence[str]) -> list[AuditEvent]:
        wanted = sorted(set(subjects))
        found: list[AuditEvent] = []
        for start in range(0, len(wanted), 500):  # bounded IN lists (SQLite's limits)
            query = select(audit_events).where(
                audit_events.c.subject.in_(wanted[start : start + 500])
            )  # ix_audit_events_subject_seq
            found += self._read(query)
        return sorted(found, key=lambda e: e.seq)

    def _read(self, query: Select[Any]) -> list[AuditEvent]:
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

    def head(self) -> tuple[int, str] | None:
        row = self._conn.execute(select(audit_head.c.seq, audit_head.c.hash)).first()
        return (int(row.seq), str(row.hash)) if row else None
