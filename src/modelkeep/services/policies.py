"""The policy in force: read once per transaction, parsed once per policy version.

Pushes, alias moves, gates and promotions all ask which rules hold for a model; they ask
here, below every use case, so no context has to import another to learn its rules."""

from __future__ import annotations

from modelkeep.domain.governance import PolicyRecord
from modelkeep.domain.policy import EMPTY_POLICY, ModelPolicy, Policy, parse_policy
from modelkeep.ports.unit_of_work import Transaction

_IN_FORCE: dict[tuple[int, str], tuple[PolicyRecord, Policy]] = {}
"""Parsed policies by (number, digest): every push and alias move asks which policy is in
force, and only a new policy version costs reading and parsing its document again."""
MAX_CACHED = 32


def policy_in_force(tx: Transaction) -> tuple[PolicyRecord | None, Policy]:
    """The newest policy document and its parsed rules (no document: no rules)."""
    key = tx.governance.current_policy_key()
    if key is None:
        return None, EMPTY_POLICY
    if key not in _IN_FORCE:
        record = tx.governance.policy(key[0])
        if record is None:  # cannot happen inside one transaction; read it whole then
            return None, EMPTY_POLICY
        if len(_IN_FORCE) >= MAX_CACHED:
            _IN_FORCE.clear()
        _IN_FORCE[key] = (record, parse_policy(record.document))
    return _IN_FORCE[key]


def model_policy(tx: Transaction, model: str) -> ModelPolicy:
    return policy_in_force(tx)[1].for_model(model)
