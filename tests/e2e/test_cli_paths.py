"""Paths a hostile or careless client may bring (issue 12): names that cannot be files on
every OS are refused at push (``unsafe_path``), symlinks on the push side follow one rule,
and a pull never follows a symlink under DEST and checks every conflict before it writes.
Each runs through the CLI on the embedded store and over HTTP (a live server)."""

from __future__ import annotations

import os
import random
import stat
from collections.abc import Iterator
from pathlib import Path

import pytest

from modelkeep.client import destination, files
from modelkeep.config import Settings
from modelkeep.content import chunking
from modelkeep.services import versions
from tests.conftest import CliRunnerInProcess, live_server
from tests.e2e.support import ok, ok_json, refused, sha256, store_unchanged

CHUNKED = chunking.WHOLE_BELOW + 1024 * 1024  # big enough to be pulled chunk by chunk


@pytest.fixture(params=["embedded", "http"])
def mk_cli(
    request: pytest.FixtureRequest,
    cli: CliRunnerInProcess,
    settings: Settings,
    monkeypatch: pytest.MonkeyPatch,
) -> Iterator[CliRunnerInProcess]:
    """The CLI on a store with a model ``m``: the embedded store, or a live server."""
    if request.param == "embedded":
        ok(cli("models", "create", "m"))
        yield cli
        return
    with live_server(settings) as (url, token):
        monkeypatch.setenv("MODELKEEP_URI", url)
        monkeypatch.setenv("MODELKEEP_TOKEN", token)
        ok(cli("models", "create", "m"))
        yield cli


def tree(root: Path) -> dict[str, object]:
    """Everything under ``root``, without following links: each entry's kind and bytes
    (a file), target (a link) or nothing (a folder), and its mode."""
    found: dict[str, object] = {}
    for dirpath, dirnames, filenames in os.walk(root):
        for name in dirnames + filenames:
            path = Path(dirpath) / name
            st = path.lstat()
            if stat.S_ISLNK(st.st_mode):
                found[str(path.relative_to(root))] = ("link", os.readlink(path))
            elif stat.S_ISDIR(st.st_mode):
                found[str(path.relative_to(root))] = ("dir", stat.S_IMODE(st.st_mode))
            else:
                found[str(path.relative_to(root))] = (
                    path.read_bytes(),
                    stat.S_IMODE(st.st_mode),
                )
    return found


def secret(tmp_path: Path) -> Path:
    """A private file outside every DEST, mode 600."""
    outside = tmp_path / "outside"
    outside.mkdir(exist_ok=True)
    path = outside / "secret"
    path.write_bytes(b"private key material\n")
    path.chmod(0o600)
    return path


# pull: never follow a symlink under DEST ----------------------------------------------


@pytest.mark.parametrize("planted", ["symlink", "hardlink", "linked folder"])
def test_a_link_planted_in_the_partial_folder_is_never_followed(
    mk_cli: CliRunnerInProcess, tmp_path: Path, planted: str
) -> None:
    data = random.Random(12).randbytes(CHUNKED)
    (tmp_path / "src").mkdir()
    (tmp_path / "src" / "model.bin").write_bytes(data)
    ok(mk_cli("push", "m", str(tmp_path / "src")))
    victim = secret(tmp_path)
    outside_before = tree(victim.parent)
    dest = tmp_path / "dest"
    partial = dest / ".modelkeep-partial"
    partial.mkdir(parents=True)
    named_like_the_file = partial / sha256(data).removeprefix("sha256:")
    if planted == "symlink":
        named_like_the_file.symlink_to(victim)
    elif planted == "hardlink":
        os.link(victim, named_like_the_file)
    else:
        partial.rmdir()
        partial.symlink_to(victim.parent, target_is_directory=True)

    ok(mk_cli("pull", "m@1", str(dest)))

    assert (dest / "model.bin").read_bytes() == data
    assert tree(victim.parent) == outside_before  # same bytes, same mode 600, nothing new
    assert stat.S_IMODE(victim.stat().st_mode) == 0o600
    assert not partial.is_symlink()


@pytest.mark.parametrize("where", ["folder", "file"])
def test_a_symlink_on_the_way_to_a_pulled_file_is_refused_and_never_followed(
    mk_cli: CliRunnerInProcess, tmp_path: Path, where: str
) -> None:
    (tmp_path / "src" / "sub").mkdir(parents=True)
    (tmp_path / "src" / "sub" / "model.bin").write_bytes(b"registry bytes")
    (tmp_path / "src" / "a.bin").write_bytes(b"first file")
    ok(mk_cli("push", "m", str(tmp_path / "src")))
    victim = secret(tmp_path)
    dest = tmp_path / "dest"
    (dest / "sub").mkdir(parents=True)
    link = dest / "sub" if where == "folder" else dest / "sub" / "model.bin"
    if where == "folder":
        (dest / "sub").rmdir()
        link.symlink_to(victim.parent, target_is_directory=True)
    else:
        link.symlink_to(victim)
    outside_before, dest_before = tree(victim.parent), tree(dest)

    line = refused(mk_cli, "pull", "m@1", str(dest), code="unsafe_path")
    assert str(link) in line and "--force" in line
    assert tree(dest) == dest_before  # nothing written, not even a.bin
    assert tree(victim.parent) == outside_before

    ok(mk_cli("pull", "m@1", str(dest), "--force"))  # the link itself is replaced
    assert (dest / "sub" / "model.bin").read_bytes() == b"registry bytes"
    assert not link.is_symlink()
    assert tree(victim.parent) == outside_before


def test_pull_checks_every_conflict_before_writing_anything(
    mk_cli: CliRunnerInProcess, tmp_path: Path
) -> None:
    src = tmp_path / "src"
    (src / "b").mkdir(parents=True)
    for name in ("a.bin", "b/c.bin", "d.bin", "z.bin"):
        (src / name).write_bytes(f"registry {name}".encode())
    ok(mk_cli("push", "m", str(src)))
    dest = tmp_path / "dest"
    dest.mkdir()
    (dest / "d.bin").mkdir()  # a folder where a file goes
    (dest / "z.bin").write_bytes(b"local work")  # a different file
    before = tree(dest)

    line = refused(mk_cli, "pull", "m@1", str(dest), code="destination_conflict")
    assert "d.bin" in line and "z.bin" in line
    assert tree(dest) == before  # a.bin and b/ not written either

    (dest / "d.bin").rmdir()
    (dest / "z.bin").unlink()
    (dest / "b").write_bytes(b"a file where a folder goes")
    before = tree(dest)
    line = refused(mk_cli, "pull", "m@1", str(dest), code="destination_conflict")
    assert "different files: b;" in line
    assert tree(dest) == before


def test_pull_into_a_file_is_refused(mk_cli: CliRunnerInProcess, tmp_path: Path) -> None:
    (tmp_path / "model.bin").write_bytes(b"weights")
    ok(mk_cli("push", "m", str(tmp_path / "model.bin")))
    (tmp_path / "dest").write_bytes(b"not a folder")
    line = refused(mk_cli, "pull", "m@1", str(tmp_path / "dest"), code="destination_conflict")
    assert "not a directory" in line
    assert (tmp_path / "dest").read_bytes() == b"not a folder"


def test_a_version_whose_paths_clash_is_not_pulled_half(
    mk_cli: CliRunnerInProcess, tmp_path: Path
) -> None:
    """A version stored before the path rule, with ``a`` and ``a/b``: refused whole."""
    (tmp_path / "one").mkdir()
    (tmp_path / "one" / "a").write_bytes(b"the file a")
    (tmp_path / "two" / "a").mkdir(parents=True)
    (tmp_path / "two" / "a" / "b").write_bytes(b"the file a/b")
    with pytest.MonkeyPatch.context() as before_the_rule:
        for module in (files, versions):
            before_the_rule.setattr(module, "check_new_paths", lambda paths: None)
        before_the_rule.setattr(files, "layout_collision", lambda *a, **k: "")
        ok(mk_cli("push", "m", str(tmp_path / "one" / "a"), str(tmp_path / "two")))

    dest = tmp_path / "dest"
    line = refused(mk_cli, "pull", "m@1", str(dest), code="unsafe_path")
    assert "'a' would be both a file and a directory" in line
    assert not dest.exists()


def test_a_version_with_names_differing_in_case_is_pulled_only_where_they_differ(
    mk_cli: CliRunnerInProcess, tmp_path: Path
) -> None:
    """Stored before the path rule: pulled on a case-sensitive file system (this one);
    refused before any file is moved where the file system folds case (macOS, Windows)."""
    (tmp_path / "src").mkdir()
    for name in ("Model.bin", "model.bin"):
        (tmp_path / "src" / name).write_bytes(name.encode())
    with pytest.MonkeyPatch.context() as before_the_rule:
        for module in (files, versions):
            before_the_rule.setattr(module, "check_new_paths", lambda paths: None)
        before_the_rule.setattr(files, "layout_collision", lambda *a, **k: "")
        ok(mk_cli("push", "m", str(tmp_path / "src")))

    ok(mk_cli("pull", "m@1", str(tmp_path / "linux")))
    assert sorted(os.listdir(tmp_path / "linux")) == ["Model.bin", "model.bin"]

    with pytest.MonkeyPatch.context() as folding:
        folding.setattr(destination.Tree, "folds_names", lambda self: True)
        line = refused(mk_cli, "pull", "m@1", str(tmp_path / "mac"), code="unsafe_path")
    assert "'Model.bin' and 'model.bin' differ only in case" in line
    assert not (tmp_path / "mac").exists()


# push: names every OS can hold, or unsafe_path ---------------------------------------


# A part over 255 bytes cannot be made on Linux: tests/api/test_manifest_paths.py sends one.
UNSAFE_NAMES: dict[str, list[bytes]] = {
    "newline": [b"model\n.bin"],
    "tab": [b"model\t.bin"],
    "not UTF-8": [b"caf\xe9.bin"],
    "case": [b"Model.bin", b"model.bin"],
    "NFC": ["café.bin".encode(), "cafe\u0301.bin".encode()],
    "folder case": [b"Sub/x.bin", b"sub/y.bin"],
}


@pytest.mark.parametrize("case", sorted(UNSAFE_NAMES))
def test_names_that_cannot_be_files_everywhere_are_refused_at_push(
    mk_cli: CliRunnerInProcess, tmp_path: Path, case: str
) -> None:
    root = tmp_path / "src"
    root.mkdir()
    for name in UNSAFE_NAMES[case]:
        path = os.path.join(os.fsencode(root), name)
        os.makedirs(os.path.dirname(path), exist_ok=True)
        with open(path, "wb") as out:
            out.write(name)
    with store_unchanged(mk_cli):
        line = refused(mk_cli, "push", "m", str(root), code="unsafe_path")
        refused(mk_cli, "datasets", "push", "d", str(root), code="unsafe_path")
    assert "Traceback" not in line and "internal" not in line


def test_a_file_and_a_folder_of_one_name_are_refused_at_push(
    mk_cli: CliRunnerInProcess, tmp_path: Path
) -> None:
    (tmp_path / "one").mkdir()
    (tmp_path / "one" / "a").write_bytes(b"a file")
    (tmp_path / "two" / "a").mkdir(parents=True)
    (tmp_path / "two" / "a" / "b").write_bytes(b"a file in a folder")
    with store_unchanged(mk_cli):
        line = refused(
            mk_cli,
            "push",
            "m",
            str(tmp_path / "one" / "a"),
            str(tmp_path / "two"),
            code="unsafe_path",
        )
    assert "'a' would be both a file and a directory" in line


def test_a_decomposed_name_is_stored_in_nfc(mk_cli: CliRunnerInProcess, tmp_path: Path) -> None:
    """As macOS may list it: the version (and its digest) is the one Linux gets."""
    (tmp_path / "nfd").mkdir()
    (tmp_path / "nfd" / "cafe\u0301.bin").write_bytes(b"weights")
    version = ok_json(mk_cli, "push", "m", str(tmp_path / "nfd"))
    assert [f["path"] for f in version["files"]] == ["caf\u00e9.bin"]
    ok(mk_cli("pull", "m@1", str(tmp_path / "dest")))
    assert os.listdir(tmp_path / "dest") == ["caf\u00e9.bin"]


# push: the one symlink rule ----------------------------------------------------------


def test_a_symlink_you_name_is_pushed_as_what_it_points_to(
    mk_cli: CliRunnerInProcess, tmp_path: Path
) -> None:
    target = tmp_path / "runs" / "42"
    target.mkdir(parents=True)
    (target / "model.bin").write_bytes(b"weights of run 42")
    (tmp_path / "latest").symlink_to(target, target_is_directory=True)
    (tmp_path / "best.bin").symlink_to(target / "model.bin")

    folder = ok_json(mk_cli, "push", "m", str(tmp_path / "latest"))
    assert [f["path"] for f in folder["files"]] == ["model.bin"]
    file = ok_json(mk_cli, "push", "m", str(tmp_path / "best.bin"))
    assert [(f["path"], f["digest"]) for f in file["files"]] == [
        ("best.bin", sha256(b"weights of run 42"))
    ]


def test_symlinks_inside_a_pushed_folder_are_followed_only_to_files_inside(
    mk_cli: CliRunnerInProcess, tmp_path: Path
) -> None:
    victim = secret(tmp_path)
    for name, target in (("out", victim), ("dangling", tmp_path / "gone")):
        root = tmp_path / name
        root.mkdir()
        (root / "model.bin").write_bytes(b"weights")
        (root / "link").symlink_to(target)
        with store_unchanged(mk_cli):
            line = refused(mk_cli, "push", "m", str(root), code="unsafe_path")
        assert "link" in line
    (tmp_path / "named").symlink_to(tmp_path / "gone")
    with store_unchanged(mk_cli):
        line = refused(mk_cli, "push", "m", str(tmp_path / "named"), code="invalid_input")
    assert "is a symlink to nothing" in line
