"""Semantic versions: parsing, precedence and ``--bump``."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

from modelkeep.domain.names import SEMVER
from modelkeep.errors import InvalidInput

Bump = Literal["major", "minor", "patch"]
BUMPS: tuple[Bump, ...] = ("major", "minor", "patch")


@dataclass(frozen=True)
class SemVer:
    major: int
    minor: int
    patch: int
    prerelease: tuple[str, ...] = ()
    build: str = ""

    @classmethod
    def parse(cls, text: str) -> SemVer:
        match = SEMVER.fullmatch(text) if len(text) <= 128 else None
        if match is None:
            raise InvalidInput(
                f"{text!r} is not a semantic version", "use MAJOR.MINOR.PATCH, e.g. 1.4.0"
            )
        major, minor, patch, pre, build = match.groups()
        return cls(
            int(major), int(minor), int(patch), tuple(pre.split(".")) if pre else (), build or ""
        )

    def __str__(self) -> str:
        text = f"{self.major}.{self.minor}.{self.patch}"
        if self.prerelease:
            text += "-" + ".".join(self.prerelease)
        if self.build:
            text += "+" + self.build
        return text

    def precedence(self) -> tuple[int, int, int, int, tuple[tuple[int, int, str], ...]]:
        """A sort key with semver.org precedence (build metadata is ignored)."""
        ids = tuple(
            (0, int(part), "") if part.isdigit() else (1, 0, part) for part in self.prerelease
        )
        return (self.major, self.minor, self.patch, 0 if self.prerelease else 1, ids)

    def bump(self, part: Bump) -> SemVer:
        """The next release, as npm's ``semver.inc`` computes it."""
        if part == "major":
            keep = self.prerelease and self.minor == 0 and self.patch == 0
            return SemVer(self.major if keep else self.major + 1, 0, 0)
        if part == "minor":
            keep = self.prerelease and self.patch == 0
            return SemVer(self.major, self.minor if keep else self.minor + 1, 0)
        return SemVer(self.major, self.minor, self.patch if self.prerelease else self.patch + 1)


def next_semver(existing: list[str], part: Bump) -> str:
    """Bump the highest existing semver; with none, bump ``0.0.0``."""
    parsed = [SemVer.parse(text) for text in existing]
    highest = max(parsed, key=SemVer.precedence, default=SemVer(0, 0, 0))
    return str(highest.bump(part))
