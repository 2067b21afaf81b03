"""The audit log's rows: a hash chain whose head every audited write locks first."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from typing import Any, Protocol

from modelkeep.domain.audit import AuditEvent


class AuditLog(Protocol):
    def append(
        self, actor: str, action: str, subject: str, details: dict[str, Any], at: datetime
    ) -> AuditEvent: ...
    def events(
        self,
        model: str | None = None,
        since: datetime | None = None,
        after: int | None = None,
        limit: int | None = None,
    ) -> list[AuditEvent]:
        """Events in seq order; ``model`` keeps those about that model and its versions;
        ``after`` (a seq) and ``limit`` read one keyset page."""
        ...

    def about(self, subjects: Sequence[str]) -> list[AuditEvent]:
        """Events whose subject is exactly one of ``subjects`` (``fraud@3``,
        ``fraud@production``), in seq order: what the chain recorded about them."""
        ...

    def head(self) -> tuple[int, str] | None: ...
