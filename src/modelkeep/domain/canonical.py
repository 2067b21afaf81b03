"""Canonical JSON: the exact bytes that record digests, audit hashes and signatures cover.

**Canonical form** (every record written since canonical form 2, docs/design.md
"Canonical JSON") is RFC 8785, the JSON Canonicalization Scheme (JCS), so that any
language can rebuild the bytes from the values:

- objects: members sorted by key, compared as UTF-16 code units (so a key outside the
  Basic Multilingual Plane sorts by its surrogates); no whitespace anywhere;
- strings: ``"`` and ``\\`` escaped, ``\\b \\f \\n \\r \\t`` as such, every other character
  below U+0020 as ``\\u00xx`` (lowercase hex), everything else as itself, in UTF-8;
- numbers: every number is an IEEE 754 double, as in JavaScript, written as ECMAScript's
  Number::toString writes it: ``600.0`` and ``600`` are ``600``, ``1e-7`` is ``1e-7``,
  ``1e21`` is ``1e+21``, ``-0.0`` is ``0``. An integer within ±(2**53 - 1) (every count
  modelkeep writes) is its decimal digits; a larger one is written as the double nearest
  it, exactly as a JCS implementation in JavaScript or Go reads and writes it (so the
  canonical form does not tell apart integers beyond 2**53 that round to one double).
  NaN and infinities are refused;
- ``true``, ``false``, ``null``.

Numbers as doubles also make the form survive a database: PostgreSQL's JSONB gives a
float such as ``1.5e16`` back as the integer ``15000000000000000``, which has the same
canonical form.

The **legacy form** is what modelkeep hashed before: Python's
``json.dumps(value, sort_keys=True, separators=(",", ":"), ensure_ascii=False)``. It is
the canonical form except for floats (``600.0``, ``1e-07``) and the order of keys outside
the Basic Multilingual Plane (by code point). Records made then keep their digests:
``canonical_forms`` gives both encodings, and a digest that matches either one commits
to the same value, since each is a JSON text that parses back to the value it encodes.
"""

from __future__ import annotations

import json
import math
import re
from collections.abc import Iterator, Mapping
from typing import Any

from modelkeep.errors import InvalidInput

MAX_SAFE_INTEGER = 2**53 - 1
"""Integers within ± this are exact doubles: written as their digits."""

_ESCAPED = re.compile(r'["\\\x00-\x1f]')
_SHORT_ESCAPES = {'"': '\\"', "\\": "\\\\", "\b": "\\b", "\f": "\\f", "\n": "\\n"}
_SHORT_ESCAPES |= {"\r": "\\r", "\t": "\\t"}
HINT = "records hold JSON values: finite numbers, valid Unicode text, string keys"


def canonical_json(value: Any) -> bytes:
    """The canonical (RFC 8785) bytes of ``value``; ``InvalidInput`` if it has none."""
    text = "".join(_parts(value))
    try:
        return text.encode("utf-8")
    except UnicodeEncodeError:
        raise InvalidInput("a text holds a lone UTF-16 surrogate", HINT) from None


def legacy_json(value: Any) -> bytes:
    """The bytes records were hashed with before canonical form 2 (see above)."""
    text = json.dumps(value, sort_keys=True, separators=(",", ":"), ensure_ascii=False)
    return text.encode("utf-8")


def canonical_forms(value: Any) -> tuple[bytes, ...]:
    """The canonical bytes of ``value``, then its legacy bytes if they differ: what a
    digest recorded by any modelkeep release may have been computed over."""
    forms: list[bytes] = []
    for encode in (canonical_json, legacy_json):
        try:
            data = encode(value)
        except (InvalidInput, ValueError, TypeError):
            continue
        if data not in forms:
            forms.append(data)
    return tuple(forms)


_LITERALS = {None: "null", True: "true", False: "false"}


def _parts(value: Any) -> Iterator[str]:
    if value is None or isinstance(value, bool):
        yield _LITERALS[value]
    elif isinstance(value, int):
        yield _integer(int(value))
    elif isinstance(value, float):
        yield es_number(value)
    elif isinstance(value, str):
        yield _string(value)
    elif isinstance(value, Mapping):
        yield from _object(value)
    elif isinstance(value, list | tuple):
        yield from _array(value)
    else:
        raise InvalidInput(f"a {type(value).__name__} is not a JSON value", HINT)


def _array(value: list[Any] | tuple[Any, ...]) -> Iterator[str]:
    yield "["
    for index, item in enumerate(value):
        if index:
            yield ","
        yield from _parts(item)
    yield "]"


def _integer(value: int) -> str:
    if -MAX_SAFE_INTEGER <= value <= MAX_SAFE_INTEGER:
        return str(value)
    try:
        return es_number(float(value))
    except OverflowError:
        raise InvalidInput(f"the integer {value} is beyond any JSON number", HINT) from None


def _object(value: Mapping[Any, Any]) -> Iterator[str]:
    for key in value:
        if not isinstance(key, str):
            raise InvalidInput(f"the key {key!r} is not a string", HINT)
    yield "{"
    for index, key in enumerate(sorted(value, key=_utf16)):
        if index:
            yield ","
        yield _string(key)
        yield ":"
        yield from _parts(value[key])
    yield "}"


def _utf16(key: str) -> bytes:
    """Big-endian UTF-16 bytes compare as the code units do (RFC 8785 section 3.2.3)."""
    return key.encode("utf-16-be", "surrogatepass")


def _string(text: str) -> str:
    return '"' + _ESCAPED.sub(_escape, text) + '"'


def _escape(match: re.Match[str]) -> str:
    char = match.group()
    return _SHORT_ESCAPES.get(char) or f"\\u{ord(char):04x}"


def es_number(value: float) -> str:
    """ECMAScript's Number::toString of a finite float (ECMA-262, 6.1.6.1.20).

    Python's ``repr`` gives the same shortest round-tripping digits (David Gay's
    algorithm, the nearest when several are shortest); only the layout differs."""
    if not math.isfinite(value):
        raise InvalidInput(f"{value} is not a finite number", HINT)
    if value == 0:
        return "0"
    if value < 0:
        return "-" + es_number(-value)
    mantissa, _, exponent = repr(value).partition("e")
    whole, _, fraction = mantissa.partition(".")
    all_digits = whole + fraction
    digits = all_digits.lstrip("0")
    # value = 0.<digits> * 10**n, ECMAScript's n; k = number of significant digits
    n = len(whole) + int(exponent or 0) - (len(all_digits) - len(digits))
    digits = digits.rstrip("0")
    k = len(digits)
    if k <= n <= 21:
        return digits + "0" * (n - k)
    if 0 < n <= 21:
        return digits[:n] + "." + digits[n:]
    if -6 < n <= 0:
        return "0." + "0" * -n + digits
    sign = "+" if n - 1 >= 0 else "-"
    head = digits[0] + ("." + digits[1:] if k > 1 else "")
    return f"{head}e{sign}{abs(n - 1)}"
