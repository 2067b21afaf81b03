"""Policy rules that insist on a check runner: the ``runner`` key of a check rule, what it
counts, why it refuses the rest; and check result records that name their producer while
older records keep their digests."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from modelkeep.domain.governance import CheckResult
from modelkeep.domain.policy import (
    CheckFact,
    PromotionFacts,
    StageOccupant,
    evaluate,
    parse_policy,
)
from modelkeep.domain.provenance import Producer
from modelkeep.domain.versions import VersionMetadata
from modelkeep.errors import InvalidInput, InvalidPolicy

NOW = datetime(2026, 3, 1, 12, tzinfo=UTC)
CI = Producer("ci", True, "modelkeep check")


def rules(entry: str) -> Any:
    return parse_policy(f"format: 1\nstages:\n  production:\n    checks:\n      - {entry}\n")


def check(
    id: int, producer: Producer | None, dataset: str | None = "tx@1", minutes: int = 0, **m: float
) -> CheckFact:
    at = NOW + timedelta(minutes=minutes)
    return CheckFact(id, "evaluation", m or {"accuracy": 0.9}, True, dataset, at, producer)


def outcome(
    entry: str,
    *checks: CheckFact,
    occupant: StageOccupant | None = None,
    runners: frozenset[str] | None = None,
) -> Any:
    policy = rules(entry).for_model("fraud")
    facts = PromotionFacts(
        model="fraud",
        number=2,
        digest="sha256:" + "a" * 64,
        created_by="carol",
        metadata=VersionMetadata(),
        message=None,
        checks=checks,
        occupants={"production": occupant, "staging": None},
        runners=runners,
    )
    [found] = evaluate(policy, "production", facts).rules
    return found


@pytest.mark.parametrize(
    ("value", "expected"),
    [("true", True), ("ci", ["ci"]), ("[ci, nightly, ci]", ["ci", "nightly"])],
)
def test_the_runner_key_names_any_runner_or_some(value: str, expected: object) -> None:
    [found] = rules(f"{{rule: accuracy >= 0.8, dataset: tx, runner: {value}}}").to_dict()["stages"][
        "production"
    ]["checks"]
    assert found == {
        "rule": "accuracy >= 0.8",
        "dataset": "tx",
        "dataset_version": None,
        "runner": expected,
    }


@pytest.mark.parametrize(
    ("value", "fragment"),
    [
        ("false", "runner: false sets no requirement"),
        ("[]", "'runner' names no runner"),
        ("3", "runner 3 is not a user name"),
        ("Bad Name", "not a valid user name"),
        ("{a: b}", "must be a list"),
        ("'local:me'", "reserved"),
    ],
)
def test_a_bad_runner_is_refused_with_its_line(value: str, fragment: str) -> None:
    with pytest.raises(InvalidPolicy) as refused:
        rules(f"{{rule: accuracy >= 0.8, runner: {value}}}")
    assert "policy line 5" in refused.value.message and fragment in refused.value.message


@pytest.mark.parametrize(
    ("entry", "fragment"),
    [
        ("{rule: auc > 0, dataset_version: 3}", "dataset_version needs a 'dataset'"),
        ("{rule: auc > 0, dataset: tx, dataset_version: 0}", "dataset_version 0 is not"),
        ("{rule: auc > 0, dataset: tx, dataset_version: '3'}", "dataset_version '3' is not"),
    ],
)
def test_a_bad_dataset_version_is_refused(entry: str, fragment: str) -> None:
    with pytest.raises(InvalidPolicy, match=fragment):
        rules(entry)


def test_a_rule_may_pin_the_dataset_version() -> None:
    entry = "{rule: accuracy >= 0.8, dataset: tx, dataset_version: 3, runner: true}"
    found = outcome(entry, check(1, CI, "tx@3", accuracy=0.9), check(2, CI, "tx@4", minutes=5))
    assert (
        found.passed and found.evidence == (1,) and found.rule.startswith("accuracy >= 0.8 on tx@3")
    )
    found = outcome(entry, check(2, CI, "tx@4"))
    assert not found.passed and "it is on tx@4, not tx@3" in found.detail
    assert "--dataset tx@3 with the token of a runner" in found.detail
    plain = outcome(
        "{rule: accuracy >= 0.8, dataset: tx, dataset_version: 3}", check(2, None, "tx@4")
    )
    assert not plain.passed and "no check result reports accuracy on tx@3" in plain.detail


def test_policies_without_the_key_mean_what_they_meant() -> None:
    plain = outcome("{rule: accuracy >= 0.8, dataset: tx}", check(1, None))
    assert plain.passed and plain.rule == "accuracy >= 0.8 on tx"


@pytest.mark.parametrize(
    ("entry", "producer", "dataset", "why"),
    [
        ("runner: ci", Producer("bob", False, "client"), None, "bob posted it as a client"),
        ("runner: ci", Producer("bob", False, "modelkeep check"), "tx@1", "bob is not a runner"),
        ("runner: ci", Producer("nightly", True, "modelkeep check"), "tx@1", "runner nightly"),
        ("runner: true", Producer("ci", True, "client"), "tx@1", "ci posted it as a client"),
        ("runner: true", CI, None, "it names no dataset"),
        ("runner: true", CI, "other@1", "it is on other@1, not tx"),
        ("runner: true", None, "tx@1", "before results named their producer"),
    ],
)
def test_only_a_runners_modelkeep_check_on_the_dataset_counts(
    entry: str, producer: Producer | None, dataset: str | None, why: str
) -> None:
    found = outcome(f"{{rule: accuracy >= 0.8, dataset: tx, {entry}}}", check(7, producer, dataset))
    assert found.passed is False
    assert "check #7" in found.detail and why in found.detail
    assert "run 'modelkeep check' --dataset tx@N with the token of " in found.detail


def test_the_newest_trusted_result_counts_whatever_came_after() -> None:
    entry = "{rule: accuracy >= 0.8, dataset: tx, runner: ci}"
    fake = Producer("bob", False, "client")
    found = outcome(
        entry,
        check(1, CI, minutes=0, accuracy=0.7),
        check(2, fake, dataset=None, minutes=5, accuracy=1.0),
    )
    assert found.passed is False and found.evidence == (1,)
    assert "0.7 (check #1 on tx@1 by runner ci via modelkeep check)" in found.detail
    found = outcome(entry, check(1, CI, accuracy=0.85), check(2, fake, minutes=5, accuracy=0.1))
    assert found.passed is True and found.evidence == (1,)


def test_a_relative_runner_rule_compares_with_the_runners_result_in_the_stage() -> None:
    entry = "{rule: accuracy >= production, dataset: tx, runner: ci}"
    lowered = check(3, Producer("bob", False, "client"), minutes=9, accuracy=0.1)
    occupant = StageOccupant("fraud@1", (check(1, CI, accuracy=0.95), lowered))
    found = outcome(entry, check(5, CI, accuracy=0.9), occupant=occupant)
    assert found.passed is False and found.evidence == (5, 1)
    only_fake = StageOccupant("fraud@1", (lowered,))
    found = outcome(entry, check(5, CI, accuracy=0.9), occupant=only_fake)
    assert found.passed is False and "to compare with" in found.detail


def test_a_result_counts_only_while_its_runner_still_is_one() -> None:
    entry = "{rule: accuracy >= 0.8, dataset: tx, runner: ci}"
    assert outcome(entry, check(1, CI), runners=frozenset({"ci"})).passed
    gone = outcome(entry, check(1, CI), runners=frozenset())
    assert not gone.passed and "ci is no longer a runner" in gone.detail


def test_many_untrusted_results_are_summarised() -> None:
    fakes = [check(i, Producer("bob", False, "client"), minutes=i) for i in range(1, 6)]
    found = outcome("{rule: accuracy >= 0.8, runner: true}", *fakes)
    assert found.detail.count("does not count") == 3 and "and 2 more" in found.detail
    assert found.evidence == (5, 4, 3, 2, 1)


# records ----------------------------------------------------------------------------------


def result(producer: Producer | None) -> CheckResult:
    return CheckResult(
        id=3,
        model="fraud",
        number=1,
        version_digest="sha256:" + "b" * 64,
        suite="evaluation",
        kind="evaluation",
        metrics={"accuracy": 0.9},
        passed=True,
        failures=(),
        dataset="tx@1",
        dataset_digest="sha256:" + "c" * 64,
        report_digest="sha256:" + "d" * 64,
        created_at=NOW,
        created_by="ci",
        producer=producer,
    )


def test_an_older_record_keeps_its_digest_and_a_new_one_covers_its_producer() -> None:
    old, new = result(None), result(CI)
    assert "producer" not in old.record() and old.to_dict()["producer"] is None
    assert new.record()["producer"] == CI.to_dict()
    assert old.digest != new.digest != result(Producer("ci", False, "client")).digest
    for record in (old, new):
        assert CheckResult.from_dict(record.to_dict()) == record
        assert CheckResult.from_dict(record.to_dict()).digest == record.digest


def test_an_unknown_source_is_refused() -> None:
    from modelkeep.domain.provenance import check_source

    with pytest.raises(InvalidInput, match="not a source"):
        check_source("ci-pipeline")
