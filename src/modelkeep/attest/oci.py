"""An OCI image layout of a model version (github.com/opencontainers/image-spec,
image-layout.md and manifest.md, artifact guidance), for any OCI registry (``oras copy
--from-oci-layout``, ``skopeo copy oci:DIR ...``) and KServe's ``oci://`` storage URIs.

``DIR/oci-layout``     ``{"imageLayoutVersion": "1.0.0"}``
``DIR/index.json``     an image index naming the one manifest, annotated with the version
``DIR/blobs/sha256/``  every blob under the hex of its sha256:

- each version file is a layer whose blob is the file's bytes (so its digest is the
  version manifest's), media type ``application/vnd.modelkeep.file.v1``, titled with
  its path (``org.opencontainers.image.title``);
- the config is the bundle's serving config (``application/vnd.modelkeep.serving.v1+json``);
- the manifest is an image manifest with ``artifactType``
  ``application/vnd.modelkeep.model.v1``, layers sorted by path.

Every JSON document is canonical, so one version always gives the same manifest digest.
"""

from __future__ import annotations

import hashlib
import os
import tempfile
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from typing import Any, BinaryIO

from modelkeep.domain.canonical import canonical_json
from modelkeep.domain.digest import PREFIX, hex_part, sha256_digest
from modelkeep.domain.manifest import FileEntry
from modelkeep.errors import DestinationConflict, DigestMismatch

LAYOUT_VERSION = "1.0.0"
ARTIFACT_TYPE = "application/vnd.modelkeep.model.v1"
CONFIG_MEDIA_TYPE = "application/vnd.modelkeep.serving.v1+json"
LAYER_MEDIA_TYPE = "application/vnd.modelkeep.file.v1"
MANIFEST_MEDIA_TYPE = "application/vnd.oci.image.manifest.v1+json"
INDEX_MEDIA_TYPE = "application/vnd.oci.image.index.v1+json"
TITLE = "org.opencontainers.image.title"
REF_NAME = "org.opencontainers.image.ref.name"


def write_layout(
    dest: Path,
    model: str,
    number: int,
    files: Sequence[FileEntry],
    serving: Mapping[str, Any],
    open_file: Callable[[str], BinaryIO],
) -> str:
    """Write the layout into ``dest`` (new or empty); return the manifest's digest."""
    check_destination(dest)
    blobs = dest / "blobs" / "sha256"
    blobs.mkdir(parents=True, exist_ok=True)
    for entry in sorted(files, key=lambda f: f.path):
        _copy_blob(blobs, entry.digest, open_file)
    config = canonical_json(dict(serving))
    manifest_bytes = manifest_document(model, number, files, serving)
    _put(blobs, config)
    _put(blobs, manifest_bytes)
    descriptor = {
        **_descriptor(MANIFEST_MEDIA_TYPE, manifest_bytes),
        "artifactType": ARTIFACT_TYPE,
        "annotations": {REF_NAME: str(number)},
    }
    index = {"schemaVersion": 2, "mediaType": INDEX_MEDIA_TYPE, "manifests": [descriptor]}
    (dest / "oci-layout").write_bytes(canonical_json({"imageLayoutVersion": LAYOUT_VERSION}))
    (dest / "index.json").write_bytes(canonical_json(index))
    return str(descriptor["digest"])


def manifest_document(
    model: str, number: int, files: Sequence[FileEntry], serving: Mapping[str, Any]
) -> bytes:
    """The artifact manifest's bytes (canonical JSON): what ``write_layout`` writes, known
    without copying a file, so ``deploy export --kserve`` can pin a storage URI by digest."""
    layers = [
        {
            "mediaType": LAYER_MEDIA_TYPE,
            "digest": entry.digest,
            "size": entry.size,
            "annotations": {TITLE: entry.path},
        }
        for entry in sorted(files, key=lambda f: f.path)
    ]
    manifest = {
        "schemaVersion": 2,
        "mediaType": MANIFEST_MEDIA_TYPE,
        "artifactType": ARTIFACT_TYPE,
        "config": _descriptor(CONFIG_MEDIA_TYPE, canonical_json(dict(serving))),
        "layers": layers,
        "annotations": {"dev.modelkeep.version": f"{model}@{number}"},
    }
    return canonical_json(manifest)


def check_destination(dest: Path) -> None:
    """A layout goes into a new or empty directory, never over other files."""
    if dest.exists() and (not dest.is_dir() or any(dest.iterdir())):
        raise DestinationConflict(
            f"{dest} exists and is not an empty directory", "give a new or empty directory"
        )


def _descriptor(media_type: str, data: bytes) -> dict[str, Any]:
    return {"mediaType": media_type, "digest": sha256_digest(data), "size": len(data)}


def _put(blobs: Path, data: bytes) -> None:
    (blobs / hex_part(sha256_digest(data))).write_bytes(data)


def _copy_blob(blobs: Path, digest: str, open_file: Callable[[str], BinaryIO]) -> None:
    """Copy the file ``digest`` into the layout, checking its bytes as they are copied."""
    target = blobs / hex_part(digest)
    if target.exists():
        return  # two paths with the same bytes share one blob
    hasher = hashlib.sha256()
    fd, tmp = tempfile.mkstemp(dir=blobs, prefix=".blob-")
    try:
        with os.fdopen(fd, "wb") as out, open_file(digest) as source:
            while chunk := source.read(1024 * 1024):
                hasher.update(chunk)
                out.write(chunk)
        if PREFIX + hasher.hexdigest() != digest:
            raise DigestMismatch(
                f"a stored file hashes to {PREFIX + hasher.hexdigest()}, not {digest}",
                "run 'modelkeep verify' on the version",
            )
        os.replace(tmp, target)
    finally:
        if os.path.exists(tmp):
            os.unlink(tmp)
