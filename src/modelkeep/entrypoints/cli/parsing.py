"""Command-line values: KEY=VALUE pairs and times."""

from __future__ import annotations

import json
import re
from collections.abc import Iterable
from datetime import datetime

from modelkeep.domain.versions import Scalar
from modelkeep.errors import InvalidInput, InvalidMetadata

_JSON_SCALAR = re.compile(r"-?\d+(\.\d+)?([eE][+-]?\d+)?|true|false|null")


def pairs(values: Iterable[str], option: str) -> list[tuple[str, str]]:
    """``KEY=VALUE`` texts as pairs; a key given twice is refused, never silently replaced."""
    result: dict[str, str] = {}
    for text in values:
        key, sep, value = text.partition("=")
        if not sep or not key:
            raise InvalidMetadata(
                f"{option} {text!r} is not KEY=VALUE", f"write it as {option} name=value"
            )
        if key in result:
            raise InvalidMetadata(
                f"{option} {key} is given twice ({key}={result[key]} and {key}={value})",
                f"give {option} {key}=... once",
            )
        result[key] = value
    return list(result.items())


def scalar(text: str) -> Scalar:
    """Numbers, true/false and null as such; anything else stays text."""
    if _JSON_SCALAR.fullmatch(text):
        value: Scalar = json.loads(text)
        return value
    return text


def params(values: Iterable[str], option: str) -> dict[str, Scalar]:
    return {key: scalar(value) for key, value in pairs(values, option)}


def metrics(values: Iterable[str]) -> dict[str, float]:
    result = {}
    for key, value in pairs(values, "--metric"):
        try:
            result[key] = float(value)
        except ValueError:
            raise InvalidMetadata(f"metric {key!r} is {value!r}, not a number") from None
    return result


def timestamp(text: str, option: str) -> datetime:
    """An ISO-8601 time; without a zone it is the machine's local time."""
    try:
        parsed = datetime.fromisoformat(text)
    except ValueError:
        raise InvalidInput(
            f"{option} {text!r} is not an ISO-8601 time", "write e.g. 2026-03-03T10:00:00+00:00"
        ) from None
    return parsed.astimezone()
