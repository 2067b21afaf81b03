"""The audit chain in memory: each event hashes the one before it (``domain.audit.chain``),
appended only in an ordered write transaction, like the SQL adapter's."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import replace
from datetime import datetime
from typing import Any

from modelkeep.domain.audit import GENESIS, AuditEvent, chain
from modelkeep.storage.memory.state import View, json_copy, utc


class AuditRows:
    def __init__(self, view: View, *, write: bool) -> None:
        self._view = view
        self._write = write

    def append(
        self, actor: str, action: str, subject: str, details: dict[str, Any], at: datetime
    ) -> AuditEvent:
        if not self._write:
            raise RuntimeError("audit events are written only in write transactions")
        seq, hash_ = self.head() or (0, GENESIS)
        event = chain(seq, hash_, at, actor, action, subject, details)
        stored = replace(event, at=utc(at), details=json_copy(dict(details)))
        self._view.change().audit.append(stored)
        return event

    def events(
        self,
        model: str | None = None,
        since: datetime | None = None,
        after: int | None = None,
        limit: int | None = None,
    ) -> list[AuditEvent]:
        found: list[AuditEvent] = []
        for event in self._view.read.audit:
            if limit is not None and len(found) >= limit:
                break
            if _matches(event, model, since, after):
                found.append(replace(event, details=json_copy(dict(event.details))))
        return found

    def about(self, subjects: Sequence[str]) -> list[AuditEvent]:
        wanted = set(subjects)
        return [
            replace(event, details=json_copy(dict(event.details)))
            for event in self._view.read.audit
            if event.subject in wanted
        ]

    def head(self) -> tuple[int, str] | None:
        events = self._view.read.audit
        return (events[-1].seq, events[-1].hash) if events else (0, GENESIS)


def _matches(
    event: AuditEvent, model: str | None, since: datetime | None, after: int | None
) -> bool:
    if after is not None and event.seq <= after:
        return False
    if model is not None and event.subject != model and not event.subject.startswith(model + "@"):
        return False
    return since is None or event.at >= since
