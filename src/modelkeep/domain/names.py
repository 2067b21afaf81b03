"""Names and references: what a model, an alias and a ``NAME@REF`` may look like."""

from __future__ import annotations

import re
from dataclasses import dataclass
from enum import Enum

from modelkeep.domain.digest import PREFIX, hex_part
from modelkeep.domain.text import did_you_mean
from modelkeep.errors import InvalidInput, InvalidName, InvalidRef

MODEL_NAME = re.compile(r"[a-z0-9][a-z0-9._-]{0,127}")
ALIAS_NAME = re.compile(r"[a-z][a-z0-9._-]{0,63}")
DIGEST_HEX = re.compile(r"[0-9a-f]{12,64}")
NUMBER = re.compile(r"[1-9][0-9]{0,17}")
STAGES = ("staging", "production")
LATEST = "latest"
MIN_DIGEST_PREFIX = 12


def check_model_name(name: str) -> str:
    if not MODEL_NAME.fullmatch(name):
        raise InvalidName(f"{name!r} is not a valid model name")
    return name


def check_stage(stage: str) -> str:
    if stage not in STAGES:
        raise InvalidInput(
            f"{stage!r} is not a stage",
            f"{did_you_mean(stage, STAGES)}use one of {', '.join(STAGES)}",
        )
    return stage


def check_alias_name(name: str) -> str:
    if name == LATEST:
        raise InvalidName(
            "'latest' is reserved: it always means the highest active version",
            "choose another alias name; NAME@latest needs no alias",
        )
    if not ALIAS_NAME.fullmatch(name):
        lower = name.lower()
        fix = f"write {lower!r}; " if lower != name and ALIAS_NAME.fullmatch(lower) else ""
        raise InvalidName(
            f"{name!r} is not a valid alias name",
            f"{fix}start with a lowercase letter; then letters, digits, '.', '_' or '-'",
        )
    return name


class RefKind(Enum):
    NUMBER = "number"
    SEMVER = "semver"
    DIGEST = "digest"
    ALIAS = "alias"
    LATEST = "latest"


@dataclass(frozen=True)
class Ref:
    """A parsed ``NAME@REF``; ``value`` is the text after ``@`` (normalised)."""

    model: str
    kind: RefKind
    value: str

    def __str__(self) -> str:
        return f"{self.model}@{self.value}"


def parse_ref(text: str, *, default_latest: bool = False) -> Ref:
    """Parse ``NAME@REF``. Without ``@``, ``default_latest`` decides: latest, or an error."""
    name, sep, ref = text.partition("@")
    if not sep:
        if not default_latest:
            raise InvalidRef(
                f"{text!r} names no version",
                f"name one, e.g. {text}@3, {text}@1.2.0 or {text}@production",
            )
        ref = LATEST
    check_model_name(name)
    return Ref(name, *_classify(ref, text))


def _classify(ref: str, text: str) -> tuple[RefKind, str]:
    if ref == LATEST:
        return RefKind.LATEST, ref
    if NUMBER.fullmatch(ref):
        return RefKind.NUMBER, ref
    if ref.startswith(PREFIX):
        hexpart = hex_part(ref).lower()
        if not DIGEST_HEX.fullmatch(hexpart):
            raise InvalidRef(
                f"{text!r}: a digest reference needs {MIN_DIGEST_PREFIX} to 64 hex digits"
            )
        return RefKind.DIGEST, PREFIX + hexpart
    if is_semver(ref):
        return RefKind.SEMVER, ref
    if ALIAS_NAME.fullmatch(ref):
        return RefKind.ALIAS, ref
    raise InvalidRef(f"{text!r} is not a valid version reference")


# Semantic versioning 2.0.0, the regex recommended by semver.org.
SEMVER = re.compile(
    r"(0|[1-9]\d*)\.(0|[1-9]\d*)\.(0|[1-9]\d*)"
    r"(?:-((?:0|[1-9]\d*|\d*[a-zA-Z-][0-9a-zA-Z-]*)(?:\.(?:0|[1-9]\d*|\d*[a-zA-Z-][0-9a-zA-Z-]*))*))?"
    r"(?:\+([0-9a-zA-Z-]+(?:\.[0-9a-zA-Z-]+)*))?"
)


def is_semver(text: str) -> bool:
    return len(text) <= 128 and SEMVER.fullmatch(text) is not None
