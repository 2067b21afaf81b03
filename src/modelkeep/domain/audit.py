"""The audit chain: every change is an event hash-chained to the one before it.

``hash = sha256(prev_hash + canonical_json(event))`` in hex, where the event is
``{seq, at, actor, action, subject, details}`` encoded like the manifest (sorted keys,
compact separators, UTF-8) and ``prev_hash`` of the first event is 64 zeros.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

GENESIS = "0" * 64


@dataclass(frozen=True)
class AuditEvent:
    seq: int
    at: datetime
    actor: str
    action: str
    subject: str
    details: Mapping[str, Any] = field(default_factory=dict)
    prev_hash: str = GENESIS
    hash: str = ""

    def body(self) -> dict[str, Any]:
        return {
            "seq": self.seq,
            "at": self.at.isoformat(),
            "actor": self.actor,
            "action": self.action,
            "subject": self.subject,
            "details": dict(self.details),
        }

    def compute_hash(self) -> str:
        canonical = json.dumps(
            self.body(), sort_keys=True, separators=(",", ":"), ensure_ascii=False
        )
        return hashlib.sha256((self.prev_hash + canonical).encode("utf-8")).hexdigest()

    def to_dict(self) -> dict[str, Any]:
        return {**self.body(), "prev_hash": self.prev_hash, "hash": self.hash}


def chain(
    prev_seq: int,
    prev_hash: str,
    at: datetime,
    actor: str,
    action: str,
    subject: str,
    details: Mapping[str, Any],
) -> AuditEvent:
    """The next event after ``(prev_seq, prev_hash)``, with its hash filled in."""
    draft = AuditEvent(prev_seq + 1, at, actor, action, subject, details, prev_hash)
    return AuditEvent(
        draft.seq, at, actor, action, subject, details, prev_hash, draft.compute_hash()
    )


@dataclass(frozen=True)
class ChainReport:
    ok: bool
    checked: int
    first_bad_seq: int | None = None
    problem: str | None = None

    def to_dict(self) -> dict[str, Any]:
        return {
            "ok": self.ok,
            "checked": self.checked,
            "first_bad_seq": self.first_bad_seq,
            "problem": self.problem,
        }


def verify_chain(events: Iterable[AuditEvent], head: tuple[int, str] | None) -> ChainReport:
    """Recompute the chain; name the first event that was edited, deleted or reordered.

    ``head`` is the ``(seq, hash)`` the store recorded for its last event; it catches
    deletion of the newest events.
    """
    expected_seq, prev_hash, checked = 1, GENESIS, 0
    for event in events:
        problem = _event_problem(event, expected_seq, prev_hash)
        if problem:
            return ChainReport(False, checked, min(event.seq, expected_seq), problem)
        expected_seq, prev_hash, checked = event.seq + 1, event.hash, checked + 1
    if head is not None and head != (expected_seq - 1, prev_hash):
        return ChainReport(
            False,
            checked,
            expected_seq,
            f"the log ends at seq {expected_seq - 1} but its head says "
            f"seq {head[0]}: events were deleted",
        )
    return ChainReport(True, checked)


def _event_problem(event: AuditEvent, expected_seq: int, prev_hash: str) -> str:
    if event.seq != expected_seq:
        return f"seq {expected_seq} is missing (next is {event.seq}): events were deleted"
    if event.prev_hash != prev_hash:
        return f"seq {event.seq} does not follow seq {event.seq - 1}: the chain was changed"
    if event.compute_hash() != event.hash:
        return f"seq {event.seq} does not match its hash: the event was edited"
    return ""
