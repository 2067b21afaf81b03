"""``Client.load``: a version's files in a local cache keyed by its digest, every file
verified against its digest as it is pulled and again each time the cache is used, then
loaded by ``modelkeep.serving``.

The cache is ``CACHE_DIR/models/sha256-HEX/`` (``MODELKEEP_CACHE_DIR``, or the
``cache_dir`` argument); with the cache off, a temporary directory that lives as long
as the predictor. A cached file that no longer matches its digest (edited, truncated)
is not used: the version is pulled again from the store, and verified again.
"""

from __future__ import annotations

import hashlib
import os
import shutil
import tempfile
import weakref
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING

from modelkeep.client import files
from modelkeep.domain.digest import digest_of

if TYPE_CHECKING:
    from modelkeep.client.backend import Backend
    from modelkeep.domain.versions import Version
    from modelkeep.serving.predictor import Predictor

MODELS = "models"


def load_version(
    backend: Backend,
    version: Version,
    cache_root: Path | None,
    *,
    code_allowed: Callable[[], bool],
) -> Predictor:
    """The version (its file list checked already) loaded from verified files."""
    from modelkeep.serving.predictor import load_predictor, recorded_signature

    if cache_root is None:
        scratch = Path(tempfile.mkdtemp(prefix="modelkeep-load-"))
        directory = fill(backend, version, scratch / "files")
    else:
        scratch = None
        directory = cached(backend, version, cache_root / MODELS)
    try:
        predictor = load_predictor(
            directory,
            [f.path for f in version.files],
            ref=version.ref,
            digest=version.digest,
            recorded=recorded_signature(version.metadata.signature),
            code_allowed=code_allowed,
        )
    except BaseException:
        if scratch is not None:
            shutil.rmtree(scratch, ignore_errors=True)
        raise
    if scratch is not None:
        weakref.finalize(predictor, shutil.rmtree, scratch, True)
    return predictor


def cached(backend: Backend, version: Version, root: Path) -> Path:
    """The version's files under ``root``, keyed by its digest, each verified."""
    target = root / version.digest.replace(":", "-")
    if target.is_dir():
        if intact(target, version):
            return target
        shutil.rmtree(target, ignore_errors=True)  # not trusted: fetched again below
    root.mkdir(parents=True, exist_ok=True)
    staging = Path(tempfile.mkdtemp(prefix=".load-", dir=root))
    try:
        fill(backend, version, staging / "files")
        try:
            os.rename(staging / "files", target)  # atomic: a complete copy or none
        except OSError:
            if not (target.is_dir() and intact(target, version)):  # another load won
                raise
    finally:
        shutil.rmtree(staging, ignore_errors=True)
    return target


def fill(backend: Backend, version: Version, directory: Path) -> Path:
    """Pull the version's files into ``directory`` (new), each verified as written."""
    plan = files.plan_pull(version.files, directory, force=False)
    files.write_files(plan, directory, backend, None, version.ref)
    return directory


def intact(directory: Path, version: Version) -> bool:
    """Whether every file of the version is in ``directory`` with its digest."""
    for entry in version.files:
        path = directory / entry.path
        if path.is_symlink() or not path.is_file() or path.stat().st_size != entry.size:
            return False
        digest = hashlib.sha256()
        try:
            with path.open("rb") as stream:
                while block := stream.read(1 << 20):
                    digest.update(block)
        except OSError:
            return False
        if digest_of(digest) != entry.digest:
            return False
    return True
