from __future__ import annotations

import dataclasses
from datetime import UTC, datetime, timedelta

from modelkeep.domain.audit import GENESIS, AuditEvent, chain, verify_chain

T0 = datetime(2026, 3, 3, 10, 0, tzinfo=UTC)


def make_chain(n: int) -> list[AuditEvent]:
    events: list[AuditEvent] = []
    seq, prev = 0, GENESIS
    for i in range(n):
        event = chain(
            seq,
            prev,
            T0 + timedelta(seconds=i),
            "local:ann",
            "version.push",
            f"m@{i + 1}",
            {"number": i + 1},
        )
        events.append(event)
        seq, prev = event.seq, event.hash
    return events


def head(events: list[AuditEvent]) -> tuple[int, str]:
    return events[-1].seq, events[-1].hash


def test_an_untouched_chain_verifies() -> None:
    events = make_chain(5)
    report = verify_chain(events, head(events))
    assert report.ok and report.checked == 5


def test_an_edited_event_is_named() -> None:
    events = make_chain(5)
    events[2] = dataclasses.replace(events[2], actor="local:mallory")
    report = verify_chain(events, head(events))
    assert not report.ok and report.first_bad_seq == 3
    assert "edited" in (report.problem or "")


def test_an_edit_with_a_recomputed_hash_breaks_the_next_link() -> None:
    events = make_chain(5)
    forged = dataclasses.replace(events[1], subject="m@99")
    events[1] = dataclasses.replace(forged, hash=forged.compute_hash())
    report = verify_chain(events, head(events))
    assert report.first_bad_seq == 3


def test_a_deleted_event_is_named() -> None:
    events = make_chain(5)
    del events[1]
    assert verify_chain(events, None).first_bad_seq == 2


def test_reordered_events_are_detected() -> None:
    events = make_chain(5)
    events[1], events[2] = events[2], events[1]
    assert verify_chain(events, head(make_chain(5))).first_bad_seq == 2


def test_deleting_the_newest_events_is_caught_by_the_head() -> None:
    events = make_chain(5)
    report = verify_chain(events[:3], head(events))
    assert not report.ok and report.first_bad_seq == 4


def test_the_hash_covers_the_documented_fields() -> None:
    event = make_chain(1)[0]
    assert set(event.body()) == {"seq", "at", "actor", "action", "subject", "details"}
    assert event.prev_hash == GENESIS
