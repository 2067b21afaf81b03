from __future__ import annotations

import dataclasses
import hashlib
from datetime import UTC, datetime, timedelta

import rfc8785

from modelkeep.domain.audit import GENESIS, AuditEvent, chain, verify_chain
from modelkeep.domain.canonical import legacy_json

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


# canonical form 2: events hashed before it (over json.dumps) still verify ----------------


def legacy_event(seq: int, prev: str, details: dict[str, object]) -> AuditEvent:
    """An event as a release before canonical form 2 hashed it."""
    draft = AuditEvent(seq, T0, "local:ann", "run.end", f"run:{seq}", details, prev)
    hashed = hashlib.sha256(prev.encode("utf-8") + legacy_json(draft.body())).hexdigest()
    return dataclasses.replace(draft, hash=hashed)


def mixed_chain() -> list[AuditEvent]:
    """Two legacy events whose forms differ (a float, keys ordered by code point), then
    one written now."""
    first = legacy_event(1, GENESIS, {"seconds": 600.0, "tiny": 1e-07})
    second = legacy_event(2, first.hash, {"\U0001f600": 1, "\ufb33": 2})
    third = chain(2, second.hash, T0, "local:ann", "run.end", "run:3", {"seconds": 600.0})
    return [first, second, third]


def test_a_chain_of_legacy_and_canonical_events_verifies() -> None:
    events = mixed_chain()
    assert [e.hash == e.compute_hash() for e in events] == [False, False, True]
    assert verify_chain(events, head(events)).ok


def test_an_edit_of_a_legacy_event_is_still_named() -> None:
    """600.0 -> 600 is the same number in canonical form, but not the bytes hashed."""
    events = mixed_chain()
    events[0] = dataclasses.replace(events[0], details={"seconds": 600, "tiny": 1e-07})
    report = verify_chain(events, head(events))
    assert (report.ok, report.first_bad_seq) == (False, 1)


def test_a_float_is_hashed_as_any_jcs_implementation_writes_it() -> None:
    """The digest rfc8785 (an independent RFC 8785 implementation) gives for 600.0."""
    event = chain(0, GENESIS, T0, "local:ann", "run.end", "run:1", {"seconds": 600.0})
    independent = hashlib.sha256(GENESIS.encode() + rfc8785.dumps(event.body())).hexdigest()
    assert b'"seconds":600}' in rfc8785.dumps(event.body())
    assert event.hash == independent
