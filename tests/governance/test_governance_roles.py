"""The role and separation-of-duties matrix of governance, through the server: several
people, each with their own token, on one registry with the example policy."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

import modelkeep
from modelkeep.client.client import Client
from modelkeep.client.http import HttpBackend
from modelkeep.config import Settings
from modelkeep.domain.governance import NewCheckResult
from modelkeep.errors import Forbidden, PolicyNotMet, SeparationOfDuties
from tests.conftest import served_app

ROOT = Path(__file__).resolve().parents[2]
PEOPLE = {  # name -> role (global grants)
    "carol": "contributor",  # creates versions
    "dave": "contributor",
    "alice": "approver",
    "amy": "approver",
    "bob": "releaser",
    "vic": "viewer",
}
RESULT = NewCheckResult(
    suite="evaluation", kind="evaluation", metrics={"accuracy": 0.91}, passed=True
)


@pytest.fixture
def people(settings: Settings, tmp_path: Path) -> Iterator[dict[str, Client]]:
    """A client per person (and ``admin``), over HTTP; carol pushed fraud@1 and dataset
    tx@1 exists; the example policy is in force."""
    with served_app(settings) as (http, admin_token):

        def client(token: str, transport: Any) -> Client:
            return Client(HttpBackend("http://testserver", token, http=transport), settings)

        clients = {"admin": client(admin_token, http)}
        for name, role in PEOPLE.items():
            _, issued = clients["admin"].create_user(name, role=role)
            own = http.__class__(http.app, base_url="http://testserver")  # its own auth header
            clients[name] = client(issued.secret, own)
        admin = clients["admin"]
        admin.set_policy(ROOT / "examples" / "policy.yaml")
        admin.create_model("fraud")
        data = tmp_path / "d.csv"
        data.write_text("x,y\n1,0\n")
        admin.push_dataset("tx", [data])
        model = tmp_path / "m.bin"
        model.write_bytes(b"carol's model")
        clients["carol"].push("fraud", [model], commit="abc")
        yield clients


Attempt = Callable[[Client], Any]

ATTEMPTS: dict[str, Attempt] = {
    "record a check": lambda c: c.record_check("fraud@1", dataset="tx@1", result=RESULT),
    "approve": lambda c: c.approve("fraud@1", to="staging", comment="ok"),
    "promote to staging": lambda c: c.promote("fraud@1", to="staging"),
    "set the policy": lambda c: c.set_policy(ROOT / "examples" / "policy.yaml"),
    "override": lambda c: c.promote("fraud@1", to="production", override=True, reason="r"),
    "set champion": lambda c: c.set_alias("fraud@1", "champion"),
    "set candidate": lambda c: c.set_alias("fraud@1", "candidate"),
    "read the gate": lambda c: c.gate("fraud@1", to="production"),
}
# who may, written out independently of the code (carol created fraud@1)
ALLOWED = {
    "record a check": {"carol", "dave", "alice", "amy", "bob", "admin"},
    "approve": {"alice", "amy", "admin"},  # approvers, not the creator
    "promote to staging": {"bob", "admin"},
    "set the policy": {"admin"},
    "override": {"admin"},
    "set champion": {"bob", "admin"},  # the policy: releasers only
    "set candidate": {"carol", "dave", "bob", "admin"},
    "read the gate": set(PEOPLE) | {"admin"},
}


@pytest.mark.parametrize("database_url", ["sqlite"], indirect=True)
@pytest.mark.parametrize("attempt", list(ATTEMPTS))
def test_the_governance_role_matrix(people: dict[str, Client], attempt: str) -> None:
    for name, client in people.items():
        try:
            ATTEMPTS[attempt](client)
            allowed = True
        except (Forbidden, SeparationOfDuties):
            allowed = False
        assert allowed == (name in ALLOWED[attempt]), f"{name}: {attempt}"


@pytest.mark.parametrize("database_url", ["sqlite"], indirect=True)
def test_separation_of_duties_needs_two_people_besides_the_creator(
    people: dict[str, Client],
) -> None:
    carol, alice, bob = people["carol"], people["alice"], people["bob"]
    carol.record_check("fraud@1", dataset="tx@1", result=RESULT)
    people["admin"].grant("carol", role="approver")  # the role does not help her
    with pytest.raises(SeparationOfDuties) as own:
        carol.approve("fraud@1", to="production")
    assert "carol" in str(own.value)
    alice.reject("fraud@1", to="production", comment="fairness not shown")
    with pytest.raises(PolicyNotMet, match="rejected by alice"):
        bob.promote("fraud@1", to="production")
    alice.approve("fraud@1", to="production", comment="fairness reviewed offline")
    done = bob.promotion("fraud@1", to="production", reason="release")
    assert done.attestation is not None
    assert all(r.passed for r in done.gate.evaluation.rules)
    statement = bob.verify_attestation("fraud@1", stage="production").statement
    decisions = [(a["user"], a["decision"]) for a in statement["predicate"]["approvals"]]
    assert decisions == [("alice", "reject"), ("alice", "approve")]


@pytest.mark.parametrize("database_url", ["sqlite"], indirect=True)
def test_a_releaser_who_approved_cannot_count_their_own_approval(
    people: dict[str, Client], settings: Settings
) -> None:
    admin = people["admin"]
    admin.grant("bob", role="approver")
    bob = people["bob"]
    bob.record_check("fraud@1", dataset="tx@1", result=RESULT)
    bob.approve("fraud@1", to="production")
    with pytest.raises(PolicyNotMet) as refused:
        bob.promote("fraud@1", to="production")
    assert "bob" in str(refused.value)
    people["amy"].approve("fraud@1", to="production")
    assert bob.promote("fraud@1", to="production").new == 1
    with modelkeep.connect(settings=settings) as operator:
        assert operator.resolve("fraud@production").number == 1


# approvals count only while their author may still give them ----------------------------


def approval_detail(client: Client) -> str:
    """What the approval rule of fraud@1 for production says now."""
    rules = client.gate("fraud@1", to="production").evaluation.rules
    (rule,) = [r for r in rules if r.kind == "approval"]
    return rule.detail


@pytest.mark.parametrize("leaves", ["disable_user", "delete_user"])
def test_an_approval_by_someone_since_disabled_or_deleted_does_not_count(
    people: dict[str, Client], leaves: str
) -> None:
    admin, alice, bob = people["admin"], people["alice"], people["bob"]
    bob.record_check("fraud@1", dataset="tx@1", result=RESULT)
    approval = alice.approve("fraud@1", to="production", comment="looks right")
    assert "1 of 1: alice" in approval_detail(bob)
    getattr(admin, leaves)("alice")
    state = "disabled" if leaves == "disable_user" else "deleted"
    why = f"alice's approval #{approval.id} no longer counts: alice is {state}"
    with pytest.raises(PolicyNotMet, match=why):
        bob.promote("fraud@1", to="production")
    assert approval_detail(bob).startswith("0 of 1; " + why)
    if leaves == "disable_user":
        admin.enable_user("alice")  # judged at promotion time: it counts again
    else:
        people["amy"].approve("fraud@1", to="production")
    assert bob.promote("fraud@1", to="production").new == 1


def test_an_approval_by_someone_whose_approver_grant_was_revoked_does_not_count(
    people: dict[str, Client],
) -> None:
    admin, alice, bob = people["admin"], people["alice"], people["bob"]
    bob.record_check("fraud@1", dataset="tx@1", result=RESULT)
    approval = alice.approve("fraud@1", to="production")
    admin.grant("alice", role="viewer")
    admin.revoke_grant("alice", role="approver")
    why = (
        f"alice's approval #{approval.id} no longer counts: alice no longer holds "
        "approver, admin on fraud"
    )
    with pytest.raises(PolicyNotMet, match=why):
        bob.promote("fraud@1", to="production")
    admin.create_model("other")
    admin.grant("alice", role="approver", model="other")  # another model's role: no help
    with pytest.raises(PolicyNotMet, match="alice no longer holds"):
        bob.promote("fraud@1", to="production")
    admin.grant("alice", role="approver", model="fraud")  # the model's own role: it counts
    assert "1 of 1: alice" in approval_detail(bob)
    assert bob.promote("fraud@1", to="production").new == 1


def test_a_rejection_by_someone_since_disabled_still_stands(people: dict[str, Client]) -> None:
    admin, bob = people["admin"], people["bob"]
    bob.record_check("fraud@1", dataset="tx@1", result=RESULT)
    people["alice"].reject("fraud@1", to="production", comment="bias not checked")
    admin.disable_user("alice")
    people["amy"].approve("fraud@1", to="production")
    with pytest.raises(PolicyNotMet, match=r"alice is disabled; the rejection stands"):
        bob.promote("fraud@1", to="production")
    done = admin.promotion("fraud@1", to="production", override=True, reason="alice left")
    assert done.event.new == 1


def test_separation_of_duties_still_applies_to_approvals_that_count(
    people: dict[str, Client],
) -> None:
    admin, bob = people["admin"], people["bob"]
    admin.grant("bob", role="approver")
    bob.record_check("fraud@1", dataset="tx@1", result=RESULT)
    bob.approve("fraud@1", to="production")
    approval = people["alice"].approve("fraud@1", to="production")
    admin.disable_user("alice")
    with pytest.raises(PolicyNotMet) as refused:
        bob.promote("fraud@1", to="production")
    message = str(refused.value)
    assert f"#{approval.id} no longer counts: alice is disabled" in message
    assert "bob is promoting fraud@1" in message
