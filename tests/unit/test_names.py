from __future__ import annotations

import pytest

from modelkeep.domain.names import RefKind, check_alias_name, check_model_name, parse_ref
from modelkeep.domain.semver import SemVer, next_semver
from modelkeep.errors import InvalidInput, InvalidName, InvalidRef


@pytest.mark.parametrize(
    ("text", "kind", "value"),
    [
        ("fraud@7", RefKind.NUMBER, "7"),
        ("fraud@1.4.0", RefKind.SEMVER, "1.4.0"),
        ("fraud@1.4.0-rc.1+build.5", RefKind.SEMVER, "1.4.0-rc.1+build.5"),
        ("fraud@sha256:3F9A00112233", RefKind.DIGEST, "sha256:3f9a00112233"),
        ("fraud@production", RefKind.ALIAS, "production"),
        ("fraud@champion-2", RefKind.ALIAS, "champion-2"),
        ("fraud@latest", RefKind.LATEST, "latest"),
    ],
)
def test_refs_parse_by_kind(text: str, kind: RefKind, value: str) -> None:
    ref = parse_ref(text)
    assert (ref.model, ref.kind, ref.value) == ("fraud", kind, value)


@pytest.mark.parametrize(
    "text",
    [
        "fraud@",
        "fraud@0",
        "fraud@07",
        "fraud@sha256:abc",
        "fraud@1.2",
        "fraud@-x",
        "fraud@sha256:" + "g" * 12,
        "Fraud@1",
        "@1",
    ],
)
def test_bad_refs_are_refused(text: str) -> None:
    with pytest.raises((InvalidRef, InvalidName)):
        parse_ref(text)


def test_a_bare_name_means_latest_only_where_allowed() -> None:
    assert parse_ref("fraud", default_latest=True).kind is RefKind.LATEST
    with pytest.raises(InvalidRef, match="names no version"):
        parse_ref("fraud")


@pytest.mark.parametrize("name", ["a", "fraud", "fraud-v2.onnx_x", "0day", "a" * 128])
def test_valid_model_names(name: str) -> None:
    assert check_model_name(name) == name


@pytest.mark.parametrize("name", ["", "Fraud", "-x", ".x", "a/b", "a b", "a" * 129, "é"])
def test_invalid_model_names(name: str) -> None:
    with pytest.raises(InvalidName):
        check_model_name(name)


@pytest.mark.parametrize("name", ["latest", "1x", "2", "a@b", "Champ"])
def test_invalid_alias_names(name: str) -> None:
    with pytest.raises(InvalidName):
        check_alias_name(name)


@pytest.mark.parametrize(
    ("existing", "part", "expected"),
    [
        ([], "patch", "0.0.1"),
        ([], "minor", "0.1.0"),
        ([], "major", "1.0.0"),
        (["1.2.3", "1.10.0", "1.9.9"], "patch", "1.10.1"),
        (["1.2.3"], "minor", "1.3.0"),
        (["1.2.3"], "major", "2.0.0"),
        (["2.0.0-rc.1"], "major", "2.0.0"),
        (["2.0.0-rc.1", "1.9.0"], "patch", "2.0.0"),
        (["1.2.3-rc.1"], "minor", "1.3.0"),
        (["1.2.0-rc.1"], "minor", "1.2.0"),
    ],
)
def test_bump_follows_semver_increments(existing: list[str], part: str, expected: str) -> None:
    assert next_semver(existing, part) == expected  # type: ignore[arg-type]


def test_semver_precedence_follows_the_spec() -> None:
    ordered = [
        "1.0.0-alpha",
        "1.0.0-alpha.1",
        "1.0.0-alpha.beta",
        "1.0.0-beta",
        "1.0.0-beta.2",
        "1.0.0-beta.11",
        "1.0.0-rc.1",
        "1.0.0",
        "1.0.1",
        "1.10.0",
    ]
    shuffled = list(reversed(ordered))
    assert sorted(shuffled, key=lambda s: SemVer.parse(s).precedence()) == ordered


def test_semver_refuses_garbage() -> None:
    with pytest.raises(InvalidInput):
        SemVer.parse("v1.0")
