from __future__ import annotations

import hashlib
import json
import re
import unicodedata

import pytest
from hypothesis import given, reject
from hypothesis import strategies as st

from modelkeep.domain.manifest import FileEntry, Manifest, check_new_paths, check_path
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


# the rule for new paths (check_new_paths) ----------------------------------------------


class FoldingDisk:
    """A model of a case-insensitive, normalising file system (APFS, NTFS): names are
    compared decomposed and lowercased, and kept as first written."""

    def __init__(self) -> None:
        self.entries: dict[str, tuple[str, bool]] = {}  # compared form: (as written, is file)

    def write(self, path: str) -> None:
        """Make the file (and its folders); it must not land on anything already there."""
        parts = path.split("/")
        for depth in range(1, len(parts) + 1):
            name, is_file = "/".join(parts[:depth]), depth == len(parts)
            key = unicodedata.normalize("NFD", name).lower()
            known = self.entries.get(key)
            if known is None:
                self.entries[key] = (name, is_file)
                continue
            assert not is_file, f"{path!r} lands on {known[0]!r}"
            assert not known[1], f"{path!r} needs the file {known[0]!r} as a folder"
            assert known[0] == name, f"{path!r} goes into the folder {known[0]!r}"

    @property
    def files(self) -> list[str]:
        return sorted(name for name, is_file in self.entries.values() if is_file)


new_paths = st.lists(
    st.lists(st.text(alphabet="aAbBßsSéÉ", min_size=1, max_size=3), min_size=1, max_size=3).map(
        "/".join
    ),
    min_size=1,
    max_size=6,
)


@given(new_paths)
def test_accepted_paths_are_distinct_files_on_a_case_insensitive_normalising_disk(
    paths: list[str],
) -> None:
    try:
        check_new_paths(paths)
    except InvalidInput:
        reject()
    disk = FoldingDisk()
    for path in paths:
        disk.write(path)
    assert disk.files == sorted(paths)


@pytest.mark.parametrize(
    ("paths", "says"),
    [
        (["a", "a/b"], "'a' would be both a file and a directory"),
        (["a/b", "a"], "'a' would be both a file and a directory"),
        (["Model.bin", "model.bin"], "differ only in case"),
        (["x/Sub/a", "x/sub/b"], "'x/Sub' and 'x/sub' differ only in case"),
        (["caf\u00e9", "CAF\u00c9"], "differ only in case"),
        (["e\u0301"], "not in Unicode NFC form"),
        (["a\nb"], "control character"),
        (["a\u2029b"], "control character"),
        (["caf\udce9"], "b'caf\\xe9' is not allowed: it is not valid UTF-8"),
        (["d/" + "é" * 128], "is 256 bytes, over 255"),
    ],
)
def test_new_paths_that_are_not_files_on_every_os_are_unsafe(paths: list[str], says: str) -> None:
    with pytest.raises(UnsafePath, match=re.escape(says)):
        check_new_paths(paths)


def test_stored_manifests_are_read_without_the_new_rule() -> None:
    """A version pushed before the rule keeps its manifest and its digest."""
    old = Manifest.of([FileEntry("a", 1, DIGEST_A), FileEntry("A", 1, DIGEST_B)])
    assert Manifest.parse(old.canonical_bytes()).digest == old.digest
