from __future__ import annotations

import hashlib
import json

import pytest
from hypothesis import given
from hypothesis import strategies as st

from modelkeep.domain.manifest import FileEntry, Manifest, check_path
from modelkeep.errors import InvalidInput, UnsafePath

DIGEST_A = "sha256:" + "a" * 64
DIGEST_B = "sha256:" + "b" * 64


def test_canonical_form_is_exactly_the_documented_encoding() -> None:
    manifest = Manifest.of([FileEntry("z.bin", 2, DIGEST_B), FileEntry("a/é.json", 1, DIGEST_A)])
    expected = (
        '{"files":[{"digest":"' + DIGEST_A + '","path":"a/é.json","size":1},'
        '{"digest":"' + DIGEST_B + '","path":"z.bin","size":2}],"format":1}'
    ).encode()
    assert manifest.canonical_bytes() == expected
    assert manifest.digest == "sha256:" + hashlib.sha256(expected).hexdigest()


paths = st.lists(
    st.text(alphabet="abcdefgh/._-é", min_size=1, max_size=20).filter(
        lambda p: not any(part in ("", ".", "..") for part in p.split("/"))
    ),
    min_size=1,
    max_size=8,
    unique=True,
)


@given(paths, st.randoms())
def test_digest_does_not_depend_on_file_order(names: list[str], rnd: object) -> None:
    entries = [FileEntry(n, i, "sha256:" + f"{i:064x}") for i, n in enumerate(names)]
    shuffled = list(entries)
    rnd.shuffle(shuffled)  # type: ignore[attr-defined]
    assert Manifest.of(entries).digest == Manifest.of(shuffled).digest


@given(paths)
def test_canonical_bytes_parse_back_to_the_same_manifest(names: list[str]) -> None:
    manifest = Manifest.of(FileEntry(n, 7, DIGEST_A) for n in names)
    assert Manifest.parse(manifest.canonical_bytes()) == manifest
    assert json.loads(manifest.canonical_bytes())["format"] == 1


@given(st.binary(min_size=0, max_size=64))
def test_any_content_change_changes_the_digest(data: bytes) -> None:
    one = FileEntry("f", len(data), "sha256:" + hashlib.sha256(data).hexdigest())
    other = FileEntry("f", len(data) + 1, "sha256:" + hashlib.sha256(data + b"x").hexdigest())
    assert Manifest.of([one]).digest != Manifest.of([other]).digest


@pytest.mark.parametrize(
    "path", ["", "/etc/passwd", "../x", "a/../b", "a//b", "./a", "a/.", "a\\b", "a\x00b", "a/"]
)
def test_unsafe_paths_are_refused(path: str) -> None:
    with pytest.raises(UnsafePath):
        check_path(path)


def test_two_files_with_one_path_are_refused() -> None:
    with pytest.raises(InvalidInput, match="two files"):
        Manifest.of([FileEntry("a", 1, DIGEST_A), FileEntry("a", 1, DIGEST_B)])


def test_bad_digests_are_refused() -> None:
    with pytest.raises(InvalidInput):
        FileEntry("a", 1, "md5:" + "a" * 32)
