"""Canonical JSON (domain/canonical.py) is RFC 8785 (JCS), checked against two independent
implementations: Trail of Bits' ``rfc8785`` package and JavaScript itself (node's
``JSON.stringify`` writes numbers and strings as JCS requires, and ``Array.sort`` orders
keys by UTF-16 code units; the npm ``canonicalize`` package is used when node finds it).
The legacy form (Python's json.dumps) is the canonical form except for floats and keys
outside the Basic Multilingual Plane, which is why only those records need it."""

from __future__ import annotations

import json
import math
import shutil
import subprocess
from typing import Any

import pytest
import rfc8785
from hypothesis import given, settings
from hypothesis import strategies as st

from modelkeep.domain.canonical import (
    MAX_SAFE_INTEGER,
    canonical_forms,
    canonical_json,
    es_number,
    legacy_json,
)
from modelkeep.errors import InvalidInput

TRICKY_FLOATS = [
    600.0,
    1.0,
    0.0,
    -0.0,
    1e21,
    1e20,
    1e16,
    1.5e16,
    1e-6,
    1e-7,
    5e-324,
    -5e-324,
    2.2250738585072014e-308,
    1.7976931348623157e308,
    0.1,
    0.30000000000000004,
    333333333.33333329,
    9007199254740993.0,
    123456789012345680000.0,
    4.35,
    -1.5e-5,
]

safe_ints = st.integers(-MAX_SAFE_INTEGER, MAX_SAFE_INTEGER)
finite_floats = st.floats(allow_nan=False, allow_infinity=False)
texts = st.text()  # any code points but lone surrogates, astral ones included
scalars = st.none() | st.booleans() | safe_ints | finite_floats | texts
json_values = st.recursive(
    scalars,
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(texts, inner, max_size=4),
    max_leaves=12,
)


# the RFC's own examples -------------------------------------------------------------------


def test_the_rfc_8785_example_object() -> None:
    """RFC 8785 section 3.2.2 (numbers, escapes, literals)."""
    text = (
        '{"numbers": [333333333.33333329, 1E30, 4.50, 2e-3, 0.000000000000000000000000001],'
        r'"string": "\u20ac$\u000F\u000aA' + "'" + r'\u0042\u0022\u005c\\\"\/",'
        '"literals": [null, true, false]}'
    )
    expected = (
        '{"literals":[null,true,false],"numbers":[333333333.3333333,1e+30,4.5,0.002,1e-27],'
        r'"string":"€$\u000f\nA' + "'" + r'B\"\\\\\"/"}'
    )
    assert canonical_json(json.loads(text)) == expected.encode("utf-8")


def test_keys_sort_by_utf16_code_units() -> None:
    """RFC 8785 section 3.2.3: the emoji (surrogates D83D DE00) sorts before U+FB33,
    although its code point is larger; Python's code-point order puts it last."""
    keys = ["\u20ac", "\r", "\ufb33", "1", "\U0001f600", "\u0080", "\u00f6"]
    document = {key: 0 for key in keys}
    order = list(json.loads(canonical_json(document)))
    assert order == ["\r", "1", "\u0080", "\u00f6", "\u20ac", "\U0001f600", "\ufb33"]
    assert list(json.loads(legacy_json(document)))[-1] == "\U0001f600"


@pytest.mark.parametrize(
    ("value", "text"),
    [
        (600.0, "600"),
        (1e21, "1e+21"),
        (1e20, "100000000000000000000"),
        (1e-7, "1e-7"),
        (1e-6, "0.000001"),
        (-0.0, "0"),
        (5e-324, "5e-324"),
        (1.5e16, "15000000000000000"),
        (2**53 - 1, "9007199254740991"),
        (2**63 - 1, "9223372036854775807".replace("5807", "6000")),
        (10**21, "1e+21"),
    ],
)
def test_numbers_are_written_as_javascript_writes_them(value: float, text: str) -> None:
    assert canonical_json(value) == text.encode("ascii")


@pytest.mark.parametrize("value", [math.nan, math.inf, -math.inf, 10**400, "\ud800", {1: 2}])
def test_what_json_cannot_carry_is_refused(value: Any) -> None:
    with pytest.raises(InvalidInput):
        canonical_json(value)


# against rfc8785 (Trail of Bits) ------------------------------------------------------------


@pytest.mark.parametrize("value", TRICKY_FLOATS)
def test_tricky_floats_agree_with_rfc8785(value: float) -> None:
    assert canonical_json(value) == rfc8785.dumps(value)
    assert canonical_json({"v": [value]}) == rfc8785.dumps({"v": [value]})


@settings(max_examples=400)
@given(json_values)
def test_any_value_agrees_with_rfc8785(value: Any) -> None:
    assert canonical_json(value) == rfc8785.dumps(value)


@settings(max_examples=300)
@given(finite_floats)
def test_any_float_agrees_with_rfc8785(value: float) -> None:
    assert es_number(value).encode("ascii") == rfc8785.dumps(value)


# against JavaScript -------------------------------------------------------------------------

NODE = shutil.which("node")
JS_CANONICALIZER = r"""
const inline = (v) => {
  if (v === null || typeof v !== "object") return JSON.stringify(v);
  if (Array.isArray(v)) return "[" + v.map(inline).join(",") + "]";
  return "{" + Object.keys(v).sort()
    .map((k) => JSON.stringify(k) + ":" + inline(v[k])).join(",") + "}";
};
let canonicalize = inline;
try { canonicalize = require("canonicalize"); } catch (e) {}
let input = "";
process.stdin.on("data", (chunk) => (input += chunk));
process.stdin.on("end", () => {
  for (const line of input.split("\n").filter(Boolean)) {
    process.stdout.write(JSON.stringify(canonicalize(JSON.parse(line))) + "\n");
  }
});
"""


def javascript_canonical(values: list[Any]) -> list[bytes]:
    """Each value's canonical bytes as node computes them from its JSON text."""
    assert NODE is not None
    lines = "".join(json.dumps(v, ensure_ascii=True) + "\n" for v in values)
    done = subprocess.run(
        [NODE, "-e", JS_CANONICALIZER],
        input=lines.encode("ascii"),
        capture_output=True,
        check=True,
        timeout=60,
    )
    return [json.loads(line).encode("utf-8") for line in done.stdout.decode().split("\n") if line]


needs_node = pytest.mark.skipif(NODE is None, reason="node is not installed")


@needs_node
def test_tricky_values_agree_with_javascript() -> None:
    values: list[Any] = [
        *TRICKY_FLOATS,
        2**53 + 1,
        2**63 - 1,
        -(2**70),
        10**21,
        {"\U0001f600": 1, "\ufb33": 2, "a": {"\u20ac": [600.0, "\x00\x1f\x7f\u2028"]}},
    ]
    assert javascript_canonical(values) == [canonical_json(v) for v in values]


@needs_node
@settings(max_examples=5, deadline=None)
@given(st.lists(json_values, min_size=60, max_size=60))
def test_any_value_agrees_with_javascript(values: list[Any]) -> None:
    assert javascript_canonical(values) == [canonical_json(v) for v in values]


# the legacy form --------------------------------------------------------------------------

bmp_texts = st.text(st.characters(max_codepoint=0xFFFF, exclude_categories=["Cs"]))
float_free = st.recursive(
    st.none() | st.booleans() | safe_ints | texts,
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(bmp_texts, inner, max_size=4),
    max_leaves=12,
)


@settings(max_examples=300)
@given(float_free)
def test_without_floats_and_astral_keys_the_legacy_form_is_canonical(value: Any) -> None:
    """Why most old records verify in canonical form already: the two forms differ only
    in floats and in the order of keys outside the Basic Multilingual Plane."""
    assert legacy_json(value) == canonical_json(value)
    assert canonical_forms(value) == (canonical_json(value),)


def test_a_float_has_both_forms_canonical_first() -> None:
    record = {"metrics": {"accuracy": 1.0, "loss": 1e-07}}
    assert canonical_forms(record) == (
        b'{"metrics":{"accuracy":1,"loss":1e-7}}',
        b'{"metrics":{"accuracy":1.0,"loss":1e-07}}',
    )


# the digests built on it ------------------------------------------------------------------


def test_a_record_with_600_0_has_the_digest_an_independent_jcs_gives() -> None:
    from datetime import UTC, datetime

    from modelkeep.domain.attestation import record_digest
    from modelkeep.domain.digest import sha256_digest
    from modelkeep.domain.governance import NewCheckResult
    from modelkeep.domain.versions import Version, VersionMetadata

    at = datetime(2026, 3, 3, tzinfo=UTC)
    check = NewCheckResult("evaluation", "evaluation", {"seconds": 600.0}, passed=True)
    record = check.record("fraud", 1, "sha256:" + "0" * 64, None, "sha256:" + "1" * 64, "ci", at)
    assert record.digest == record_digest(record.record())
    assert record.digest == sha256_digest(rfc8785.dumps(record.record()))
    metadata = VersionMetadata(params={"epochs": 600.0}, metrics={"seconds": 600.0})
    version = Version("fraud", 1, None, "sha256:" + "0" * 64, "active", at, "ci", (), metadata)
    document = {"metadata": metadata.to_dict(), "semver": None, "message": None}
    assert version.metadata_digest == sha256_digest(rfc8785.dumps(document))
    assert version.metadata_digests == (
        version.metadata_digest,
        sha256_digest(legacy_json(document)),
    )
