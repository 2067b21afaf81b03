"""The blob store contract: one suite, the same assertions, on every backend.

``local`` is a directory; ``s3`` is a bucket on moto's standalone S3 server (a separate
process, see ``moto_server`` in conftest). What only one backend has (file modes, S3
request sequences, botocore error translation) is tested at the end of this file and in
``test_blob_store.py``.
"""

from __future__ import annotations

import hashlib
import io
import json
import os
import random
import threading
import time
import tracemalloc
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import boto3
import pytest
from botocore.config import Config

import modelkeep
from modelkeep.config import Settings
from modelkeep.errors import (
    BlobNotFound,
    Conflict,
    DigestMismatch,
    InvalidInput,
    StoreUnavailable,
    UnknownStoreFormat,
    UnsupportedUri,
)
from modelkeep.ports.blobs import BlobInfo, BlobStore
from modelkeep.storage.blobs.layout import FORMAT_FILE, blob_key
from modelkeep.storage.blobs.local import LocalBlobStore
from modelkeep.storage.blobs.s3 import TOUCHED, S3BlobStore, make_client, parse_s3_url
from tests.clock import FakeClock
from tests.conftest import FileMaker, S3Bucket

MiB = 1024 * 1024
SMALL_PART = 5 * MiB  # S3's smallest part: lowered thresholds make multipart tests cheap


def digest_of(data: bytes) -> str:
    return "sha256:" + hashlib.sha256(data).hexdigest()


class Stream(io.RawIOBase):
    """A non-seekable stream of ``data``, or of ``size`` zero bytes made on the fly."""

    def __init__(self, data: bytes = b"", size: int | None = None) -> None:
        self.data = memoryview(data)
        self.left = len(data) if size is None else size
        self.zeros = size is not None

    def readable(self) -> bool:
        return True

    def readinto(self, buffer: bytearray | memoryview) -> int:  # type: ignore[override]
        n = min(len(buffer), self.left)
        if self.zeros:
            buffer[:n] = bytes(n)
        else:
            buffer[:n] = self.data[:n]
            self.data = self.data[n:]
        self.left -= n
        return n


# The backends --------------------------------------------------------------------------


class LocalBackend:
    name = "local"

    def __init__(self, root: Path) -> None:
        self.root = root

    def open(self, *, small_parts: bool = False) -> BlobStore:
        return LocalBlobStore(self.root)

    def raw(self, key: str) -> bytes | None:
        path = self.root / key
        return path.read_bytes() if path.exists() else None

    def damage(self, digest: str, data: bytes) -> None:
        path = self.root / blob_key(digest)
        path.chmod(0o644)
        path.write_bytes(data)

    def write_temporary(self, name: str, data: bytes) -> None:
        (self.root / "tmp" / name).write_bytes(data)

    def temporary(self) -> list[str]:
        return sorted(p.name for p in (self.root / "tmp").iterdir())

    def age(self) -> datetime:
        """Make everything stored so far older than the returned cutoff."""
        past = time.time() - 7200
        for path in self.root.rglob("*"):
            if path.is_file():
                os.utime(path, (past, past))
        return datetime.now(UTC) - timedelta(hours=1)

    def write_format(self, text: str) -> None:
        (self.root / FORMAT_FILE).write_text(text)


class S3Backend:
    name = "s3"
    prefix = "store/"

    def __init__(self, bucket: S3Bucket) -> None:
        self.bucket = bucket
        self.client = bucket.client

    def open(self, *, small_parts: bool = False) -> BlobStore:
        options = {"part_size": SMALL_PART, "copy_limit": SMALL_PART} if small_parts else {}
        return S3BlobStore(
            self.bucket.url(self.prefix), endpoint_url=self.bucket.endpoint_url, **options
        )

    def raw(self, key: str) -> bytes | None:
        try:
            body = self.client.get_object(Bucket=self.bucket.name, Key=self.prefix + key)
        except self.client.exceptions.NoSuchKey:
            return None
        return bytes(body["Body"].read())

    def damage(self, digest: str, data: bytes) -> None:
        self._put(blob_key(digest), data)

    def write_temporary(self, name: str, data: bytes) -> None:
        self._put(f"tmp/{name}", data)

    def temporary(self) -> list[str]:
        """Temporary objects, and multipart uploads in progress anywhere in the store."""
        listed = self.client.list_objects_v2(Bucket=self.bucket.name, Prefix=self.prefix + "tmp/")
        names = [item["Key"].rsplit("/", 1)[1] for item in listed.get("Contents", [])]
        uploads = self.client.list_multipart_uploads(Bucket=self.bucket.name, Prefix=self.prefix)
        return sorted(names + [u["Key"] for u in uploads.get("Uploads", [])])

    def age(self) -> datetime:
        """S3 cannot back-date an object: wait instead until everything stored so far
        (LastModified has whole seconds) is older than the returned cutoff, and anything
        written from now on is not."""
        listed = self.client.list_objects_v2(Bucket=self.bucket.name, Prefix=self.prefix)
        newest = max(item["LastModified"] for item in listed["Contents"])
        cutoff = newest.astimezone(UTC).replace(microsecond=0) + timedelta(seconds=1)
        while datetime.now(UTC) < cutoff + timedelta(milliseconds=20):
            time.sleep(0.05)
        return cutoff

    def write_format(self, text: str) -> None:
        self._put(FORMAT_FILE, text.encode())

    def _put(self, key: str, data: bytes) -> None:
        self.client.put_object(Bucket=self.bucket.name, Key=self.prefix + key, Body=data)


Backend = LocalBackend | S3Backend


@pytest.fixture(params=["local", "s3"])
def backend(request: pytest.FixtureRequest, tmp_path: Path) -> Backend:
    if request.param == "local":
        return LocalBackend(tmp_path / "store")
    return S3Backend(request.getfixturevalue("s3_bucket"))


@pytest.fixture
def blobs(backend: Backend) -> BlobStore:
    return backend.open()


# The contract ---------------------------------------------------------------------------


def test_put_names_blobs_by_sha256_in_the_fan_out_layout(
    backend: Backend, blobs: BlobStore
) -> None:
    info = blobs.put_bytes(b"hello")
    assert info == BlobInfo(digest_of(b"hello"), 5)
    hexpart = info.digest.removeprefix("sha256:")
    assert backend.raw(f"blobs/sha256/{hexpart[:2]}/{hexpart[2:]}") == b"hello"
    assert blobs.has(info.digest) and blobs.read_bytes(info.digest) == b"hello"
    stored = blobs.stat(info.digest)
    assert stored is not None and stored.size == 5
    assert [(b.digest, b.size) for b in blobs.iter_blobs()] == [(info.digest, 5)]


def test_put_is_idempotent(backend: Backend, blobs: BlobStore) -> None:
    first = blobs.put_bytes(b"same")
    assert blobs.put_bytes(b"same") == first
    assert blobs.put(Stream(b"same")) == first
    assert [b.digest for b in blobs.iter_blobs()] == [first.digest]
    assert backend.temporary() == []


@pytest.mark.parametrize("size", [3, 2 * SMALL_PART + 1], ids=["whole", "in-parts"])
def test_a_refused_expected_digest_stores_nothing(backend: Backend, size: int) -> None:
    blobs = backend.open(small_parts=True)
    data = random.Random(size).randbytes(size)
    with pytest.raises(DigestMismatch, match=digest_of(b"other")):
        blobs.put(Stream(data), expected=digest_of(b"other"))
    assert list(blobs.iter_blobs()) == [] and backend.temporary() == []
    assert blobs.put(Stream(data), expected=digest_of(data)).size == size


def test_reads_are_verified(backend: Backend, blobs: BlobStore) -> None:
    digest = blobs.put_bytes(b"precious bytes").digest
    assert blobs.read_bytes(digest) == b"precious bytes"
    assert blobs.check(digest) is None
    backend.damage(digest, b"precious bytez")
    with pytest.raises(DigestMismatch, match=f"{digest} is damaged"):
        blobs.read_bytes(digest)
    with pytest.raises(DigestMismatch):
        read_in_small_pieces(blobs, digest)
    assert blobs.check(digest) == f"content hashes to {digest_of(b'precious bytez')}"


def read_in_small_pieces(blobs: BlobStore, digest: str) -> None:
    with blobs.open(digest) as reader:
        while reader.read(4):
            pass


@pytest.mark.parametrize("size", [1000, SMALL_PART + 1], ids=["whole", "in-parts"])
def test_put_hashed_stores_bytes_under_their_digest(backend: Backend, size: int) -> None:
    """A chunk the caller read and hashed itself: stored as is, verified on every read."""
    blobs = backend.open(small_parts=True)
    data = random.Random(size).randbytes(size)
    digest = digest_of(data)
    assert blobs.put_hashed(bytearray(data), digest) == BlobInfo(digest, size)
    hexpart = digest.removeprefix("sha256:")
    assert backend.raw(f"blobs/sha256/{hexpart[:2]}/{hexpart[2:]}") == data
    assert blobs.read_bytes(digest) == data  # read back verified
    assert blobs.check(digest) is None
    assert [(b.digest, b.size) for b in blobs.iter_blobs()] == [(digest, size)]
    assert backend.temporary() == []


def test_put_hashed_of_a_stored_blob_is_idempotent_and_refreshes_its_age(
    backend: Backend, blobs: BlobStore
) -> None:
    data = b"a chunk stored twice"
    digest = digest_of(data)
    assert blobs.put_bytes(data) == BlobInfo(digest, len(data))
    cutoff = backend.age()
    assert blobs.put_hashed(data, digest) == BlobInfo(digest, len(data))
    assert blobs.put_hashed(data, digest) == BlobInfo(digest, len(data))
    stored = blobs.stat(digest)
    assert stored is not None and stored.modified >= cutoff  # gc spares a push's chunks
    assert [(b.digest, b.size) for b in blobs.iter_blobs()] == [(digest, len(data))]
    assert blobs.read_bytes(digest) == data
    assert backend.temporary() == []


def test_put_hashed_replaces_a_stored_copy_of_the_wrong_size(
    backend: Backend, blobs: BlobStore
) -> None:
    data = b"0123456789"
    digest = blobs.put_hashed(data, digest_of(data)).digest
    backend.damage(digest, b"01234")
    blobs.put_hashed(data, digest)
    assert blobs.check(digest) is None and blobs.read_bytes(digest) == data


@pytest.mark.parametrize("size", [14, SMALL_PART + 1], ids=["whole", "in-parts"])
def test_read_unchecked_returns_the_raw_bytes_even_when_damaged(
    backend: Backend, size: int
) -> None:
    """For callers that check another way (a file rebuilt from its chunks and hashed)."""
    blobs = backend.open(small_parts=True)
    data = random.Random(size).randbytes(size)
    digest = blobs.put(Stream(data)).digest
    assert blobs.read_unchecked(digest) == data
    damaged = bytes([data[0] ^ 1]) + data[1:]
    backend.damage(digest, damaged)
    assert blobs.read_unchecked(digest) == damaged  # no DigestMismatch here
    with pytest.raises(DigestMismatch, match=digest):
        blobs.read_bytes(digest)
    backend.damage(digest, data[:3])  # a truncated copy too, as it is
    assert blobs.read_unchecked(digest) == data[:3]


def test_read_unchecked_of_a_missing_blob_is_blob_not_found(blobs: BlobStore) -> None:
    digest = digest_of(b"never stored")
    with pytest.raises(BlobNotFound, match=digest):
        blobs.read_unchecked(digest)
    stored = blobs.put_bytes(b"deleted")
    blobs.delete(stored.digest)
    with pytest.raises(BlobNotFound, match=stored.digest):
        blobs.read_unchecked(stored.digest)


def test_missing_blobs_are_reported(blobs: BlobStore) -> None:
    digest = digest_of(b"never stored")
    with pytest.raises(BlobNotFound, match=digest):
        blobs.open(digest)
    with pytest.raises(BlobNotFound):
        blobs.read_bytes(digest)
    assert blobs.check(digest) == "missing" and blobs.stat(digest) is None
    assert not blobs.has(digest)
    blobs.delete(digest)  # deleting what is not there is no error


def test_delete_removes_a_blob(blobs: BlobStore) -> None:
    keep, drop = blobs.put_bytes(b"keep"), blobs.put_bytes(b"drop")
    blobs.delete(drop.digest)
    assert not blobs.has(drop.digest) and blobs.has(keep.digest)
    assert [b.digest for b in blobs.iter_blobs()] == [keep.digest]


def test_a_put_replaces_a_stored_copy_of_the_wrong_size(backend: Backend, blobs: BlobStore) -> None:
    digest = blobs.put_bytes(b"0123456789").digest
    backend.damage(digest, b"01234")
    blobs.put_bytes(b"0123456789")
    assert blobs.check(digest) is None


def test_a_re_put_makes_an_old_blob_young_again(backend: Backend, blobs: BlobStore) -> None:
    digest = blobs.put_bytes(b"old").digest
    cutoff = backend.age()
    before = blobs.stat(digest)
    assert before is not None and before.modified < cutoff
    blobs.put_bytes(b"old")
    after = blobs.stat(digest)
    assert after is not None and after.modified >= cutoff
    assert [b.modified >= cutoff for b in blobs.iter_blobs()] == [True]
    assert blobs.read_bytes(digest) == b"old"


def test_sweep_removes_only_old_temporary_uploads(backend: Backend, blobs: BlobStore) -> None:
    backend.write_temporary("upload-old", b"x" * 10)
    cutoff = backend.age()
    backend.write_temporary("upload-new", b"y")
    assert blobs.sweep_temporary(cutoff, dry_run=True) == (1, 10)
    assert backend.temporary() == ["upload-new", "upload-old"]
    assert blobs.sweep_temporary(cutoff, dry_run=False) == (1, 10)
    assert backend.temporary() == ["upload-new"]


def test_the_format_file_is_kept_and_checked(backend: Backend) -> None:
    first = backend.open()
    document = json.loads(backend.raw(FORMAT_FILE) or b"")
    assert document == {"format": 1, "store_id": first.store_id}
    assert backend.open().store_id == first.store_id
    backend.write_format('{"format": 99, "store_id": "x"}')
    with pytest.raises(UnknownStoreFormat, match="99"):
        backend.open()
    backend.write_format("not json")
    with pytest.raises(UnknownStoreFormat):
        backend.open()


def test_streaming_put_uses_constant_memory(blobs: BlobStore) -> None:
    size = 96 * MiB
    tracemalloc.start()
    try:
        info = blobs.put(Stream(size=size))
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    assert info == BlobInfo(digest_of(bytes(size)), size)
    assert peak < 16 * MiB, f"peak {peak} bytes for a {size}-byte blob"


def test_a_large_blob_stored_in_parts_reads_back_whole(backend: Backend) -> None:
    blobs = backend.open(small_parts=True)
    data = random.Random(7).randbytes(2 * SMALL_PART + 12345)
    seen: list[int] = []
    info = blobs.put(Stream(data), progress=seen.append)
    assert info == BlobInfo(digest_of(data), len(data)) and sum(seen) == len(data)
    assert blobs.read_bytes(info.digest) == data
    assert blobs.check(info.digest) is None
    assert blobs.put_bytes(data) == info  # again, from memory: already stored
    assert [(b.digest, b.size) for b in blobs.iter_blobs()] == [(info.digest, len(data))]
    assert backend.temporary() == []


def test_a_pipe_is_stored_whole(backend: Backend) -> None:
    """A pipe's size is unknown (fstat says 0) until it ends."""
    blobs = backend.open(small_parts=True)
    data = random.Random(3).randbytes(SMALL_PART + 999)
    read_end, write_end = os.pipe()

    def feed() -> None:
        with open(write_end, "wb") as out:
            out.write(data)

    writer = threading.Thread(target=feed)
    writer.start()
    with open(read_end, "rb") as pipe:
        info = blobs.put(pipe)
    writer.join()
    assert info == BlobInfo(digest_of(data), len(data))
    assert blobs.read_bytes(info.digest) == data


@pytest.mark.parametrize("size", [1000, SMALL_PART + 1], ids=["whole", "in-parts"])
def test_two_writers_of_one_new_blob_both_succeed(backend: Backend, size: int) -> None:
    data = random.Random(size).randbytes(size)
    stores = [backend.open(small_parts=True) for _ in range(2)]
    start = threading.Barrier(2)
    results: list[BlobInfo | BaseException] = []

    def write(store: BlobStore) -> None:
        start.wait()
        try:
            results.append(store.put(Stream(data)))
        except BaseException as exc:  # reported by the assertion below
            results.append(exc)

    threads = [threading.Thread(target=write, args=(store,)) for store in stores]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert results == [BlobInfo(digest_of(data), size)] * 2
    assert [b.digest for b in stores[0].iter_blobs()] == [digest_of(data)]
    assert stores[1].read_bytes(digest_of(data)) == data
    assert backend.temporary() == []


# Named objects: write-once documents under a known key (audit checkpoints) ----------------


def test_named_objects_are_written_once_and_listed(backend: Backend, blobs: BlobStore) -> None:
    assert blobs.list_named("checkpoints/") == []
    assert blobs.get_named("checkpoints/absent.json") is None
    blobs.put_named("checkpoints/00000000000000000002-b.json", b"two\n")
    blobs.put_named("checkpoints/00000000000000000001-a.json", b"one\n")
    blobs.put_named("checkpoints/00000000000000000001-a.json", b"one\n")  # same bytes: no-op
    assert blobs.list_named("checkpoints/") == [
        "checkpoints/00000000000000000001-a.json",
        "checkpoints/00000000000000000002-b.json",
    ]
    assert blobs.get_named("checkpoints/00000000000000000001-a.json") == b"one\n"
    assert backend.raw("checkpoints/00000000000000000001-a.json") == b"one\n"
    with pytest.raises(Conflict, match="write-once"):
        blobs.put_named("checkpoints/00000000000000000001-a.json", b"other\n")
    assert blobs.get_named("checkpoints/00000000000000000001-a.json") == b"one\n"
    assert list(blobs.iter_blobs()) == []  # named objects are not blobs; gc never sees them
    assert backend.temporary() == []
    assert backend.open().list_named("checkpoints/") == blobs.list_named("checkpoints/")


@pytest.mark.parametrize(
    "key", ["blobs/sha256/ab/cd", "tmp/upload-1", "checkpoints/../x", "checkpoints/a/b", "x"]
)
def test_named_keys_stay_in_their_namespace(blobs: BlobStore, key: str) -> None:
    with pytest.raises(InvalidInput):
        blobs.put_named(key, b"x")
    with pytest.raises(InvalidInput):
        blobs.get_named(key)


def test_two_writers_of_one_named_object_one_wins(backend: Backend) -> None:
    stores = [backend.open() for _ in range(2)]
    start = threading.Barrier(2)
    outcomes: list[str] = []

    def write(store: BlobStore, data: bytes) -> None:
        start.wait()
        try:
            store.put_named("checkpoints/race.json", data)
            outcomes.append("stored")
        except Conflict:
            outcomes.append("refused")

    threads = [
        threading.Thread(target=write, args=(store, data))
        for store, data in zip(stores, (b"first", b"second"), strict=True)
    ]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert sorted(outcomes) == ["refused", "stored"]
    assert stores[0].get_named("checkpoints/race.json") in (b"first", b"second")


def test_local_named_objects_are_read_only_files(tmp_path: Path) -> None:
    store = LocalBlobStore(tmp_path / "store")
    store.put_named("checkpoints/a.json", b"{}")
    path = tmp_path / "store" / "checkpoints" / "a.json"
    assert path.read_bytes() == b"{}"
    assert path.stat().st_mode & 0o777 == 0o444


# S3 only: the requests it makes ---------------------------------------------------------


class Recorder:
    """A boto3 client for the store that records the S3 operations it calls."""

    def __init__(self, endpoint_url: str) -> None:
        self.client = make_client(endpoint_url)
        self.calls: list[tuple[str, dict[str, Any]]] = []
        self.client.meta.events.register("before-call.s3", self._record)

    def _record(self, model: Any, params: dict[str, Any], **_: Any) -> None:
        self.calls.append((model.name, params))

    def operations(self) -> list[str]:
        return [name for name, _ in self.calls]

    def clear(self) -> None:
        self.calls.clear()


@pytest.fixture
def recorded(s3_bucket: S3Bucket) -> tuple[S3BlobStore, Recorder]:
    recorder = Recorder(s3_bucket.endpoint_url)
    store = S3BlobStore(
        s3_bucket.url(), client=recorder.client, part_size=SMALL_PART, copy_limit=SMALL_PART
    )
    recorder.clear()
    return store, recorder


def test_s3_a_small_put_is_one_conditional_put_object(
    recorded: tuple[S3BlobStore, Recorder],
) -> None:
    store, recorder = recorded
    store.put(Stream(b"small"))
    assert recorder.operations() == ["PutObject"]
    headers = recorder.calls[0][1]["headers"]
    assert headers["If-None-Match"] == "*" and "x-amz-checksum-sha256" in headers


def test_s3_a_large_put_goes_multipart_then_is_copied_in_parts(
    recorded: tuple[S3BlobStore, Recorder],
) -> None:
    store, recorder = recorded
    store.put(Stream(size=2 * SMALL_PART + 1))
    assert recorder.operations() == [
        "CreateMultipartUpload",  # tmp/upload-<uuid>
        *["UploadPart"] * 3,
        "CompleteMultipartUpload",
        "HeadObject",  # is the blob there already?
        "CreateMultipartUpload",  # no: copy it server-side (in parts: over copy_limit)
        *["UploadPartCopy"] * 3,
        "CompleteMultipartUpload",
        "DeleteObject",  # tmp/upload-<uuid>
    ]
    temporary = recorder.calls[0][1]["url_path"].split("?")[0]
    assert "/store/tmp/upload-" in temporary and recorder.calls[-1][1]["url_path"] == temporary


def test_s3_a_re_put_touches_the_object_in_place(
    recorded: tuple[S3BlobStore, Recorder], s3_bucket: S3Bucket
) -> None:
    store, recorder = recorded
    digest = store.put_bytes(b"again").digest
    recorder.clear()
    store.put_bytes(b"again")
    assert recorder.operations() == ["PutObject", "HeadObject", "CopyObject"]  # 412, then touch
    head = s3_bucket.client.head_object(Bucket=s3_bucket.name, Key="store/" + blob_key(digest))
    touched = datetime.fromisoformat(head["Metadata"][TOUCHED])
    stored = store.stat(digest)
    assert stored is not None and stored.modified >= touched.replace(microsecond=0)


def test_s3_sweep_aborts_stale_multipart_uploads(s3_bucket: S3Bucket) -> None:
    store = S3BlobStore(s3_bucket.url(), endpoint_url=s3_bucket.endpoint_url)
    key, client = "store/tmp/upload-abandoned", s3_bucket.client
    upload = client.create_multipart_upload(Bucket=s3_bucket.name, Key=key)["UploadId"]
    client.upload_part(Bucket=s3_bucket.name, Key=key, UploadId=upload, PartNumber=1, Body=b"x" * 7)
    client.create_multipart_upload(Bucket=s3_bucket.name, Key="another-app/upload")
    later = datetime.now(UTC) + timedelta(seconds=5)
    assert store.sweep_temporary(later, dry_run=True) == (1, 7)
    assert store.sweep_temporary(later, dry_run=False) == (1, 7)
    left = client.list_multipart_uploads(Bucket=s3_bucket.name).get("Uploads", [])
    assert [u["Key"] for u in left] == ["another-app/upload"]  # not ours: never touched


def test_s3_without_conditional_writes_falls_back_to_head_then_put(s3_bucket: S3Bucket) -> None:
    """A server that answers 501 to If-None-Match: HEAD, then an unconditional write."""
    recorder = Recorder(s3_bucket.endpoint_url)

    def refuse_conditions(params: dict[str, Any], **_: Any) -> Any:
        if "If-None-Match" in params["headers"]:
            return _Answer(501), {
                "Error": {"Code": "NotImplemented", "Message": "no conditional writes"},
                "ResponseMetadata": {"HTTPStatusCode": 501},
            }
        return None

    recorder.client.meta.events.register_first("before-call.s3", refuse_conditions)
    store = S3BlobStore(s3_bucket.url(), client=recorder.client)
    recorder.clear()
    info = store.put_bytes(b"unconditional")
    assert recorder.operations() == ["HeadObject", "PutObject"]
    assert store.put_bytes(b"unconditional") == info
    assert store.read_bytes(info.digest) == b"unconditional"


class _Answer:
    def __init__(self, status_code: int) -> None:
        self.status_code = status_code
        self.headers: dict[str, str] = {}


# S3 only: every botocore error becomes a modelkeep error ---------------------------------


def dead_client() -> Any:
    """A client for a port nothing listens on, that does not retry."""
    config = Config(retries={"mode": "standard", "max_attempts": 1}, connect_timeout=2)
    return boto3.session.Session().client("s3", endpoint_url="http://127.0.0.1:9", config=config)


def test_s3_an_unreachable_endpoint_is_store_unavailable(aws_environ: None) -> None:
    with pytest.raises(StoreUnavailable, match=r"cannot reach S3 at http://127\.0\.0\.1:9") as err:
        S3BlobStore("s3://bucket/prefix", client=dead_client())
    assert "MODELKEEP_S3_ENDPOINT_URL" in err.value.hint
    assert "\n" not in str(err.value)


def test_s3_a_missing_bucket_is_store_unavailable(s3_bucket: S3Bucket) -> None:
    with pytest.raises(StoreUnavailable, match="the bucket 'no-such-bucket' does not exist"):
        S3BlobStore("s3://no-such-bucket/x", endpoint_url=s3_bucket.endpoint_url)


def test_s3_missing_credentials_are_store_unavailable(
    s3_bucket: S3Bucket, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("AWS_ACCESS_KEY_ID")
    monkeypatch.delenv("AWS_SECRET_ACCESS_KEY")
    with pytest.raises(StoreUnavailable, match="no S3 credentials") as err:
        S3BlobStore(s3_bucket.url(), endpoint_url=s3_bucket.endpoint_url)
    assert "AWS_ACCESS_KEY_ID" in err.value.hint


OPERATIONS: dict[str, Callable[[S3BlobStore, str], object]] = {
    "has": lambda s, d: s.has(d),
    "stat": lambda s, d: s.stat(d),
    "put": lambda s, d: s.put(Stream(b"x")),
    "put_in_parts": lambda s, d: s.put(Stream(size=SMALL_PART + 1)),
    "put_bytes": lambda s, d: s.put_bytes(b"x"),
    "open": lambda s, d: s.open(d),
    "read_bytes": lambda s, d: s.read_bytes(d),
    "check": lambda s, d: s.check(d),
    "iter_blobs": lambda s, d: list(s.iter_blobs()),
    "delete": lambda s, d: s.delete(d),
    "sweep_temporary": lambda s, d: s.sweep_temporary(datetime.now(UTC), dry_run=False),
}


@pytest.mark.parametrize("operation", OPERATIONS)
def test_s3_every_operation_reports_an_unreachable_store(
    s3_bucket: S3Bucket, operation: str
) -> None:
    store = S3BlobStore(s3_bucket.url(), endpoint_url=s3_bucket.endpoint_url, part_size=SMALL_PART)
    digest = store.put_bytes(b"stored").digest
    store._client = dead_client()  # the server goes away
    with pytest.raises(StoreUnavailable, match="cannot reach S3"):
        OPERATIONS[operation](store, digest)


def test_s3_a_read_cut_short_is_store_unavailable(s3_bucket: S3Bucket) -> None:
    store = S3BlobStore(s3_bucket.url(), endpoint_url=s3_bucket.endpoint_url)
    digest = store.put_bytes(b"streamed" * 1000).digest
    reader = store.open(digest)
    reader.raw._raw._body.close()  # type: ignore[attr-defined]  # as if the connection dropped
    with pytest.raises(StoreUnavailable, match=r"reading from S3 .* failed"):
        reader.read()


@pytest.mark.parametrize(
    "url", ["s3://", "s3:///prefix", "s3://bucket?versionId=1", "gs://bucket/prefix"]
)
def test_s3_urls_that_name_no_bucket_are_refused(url: str) -> None:
    with pytest.raises(UnsupportedUri):
        parse_s3_url(url)


def test_s3_url_prefixes_are_normalised() -> None:
    assert parse_s3_url("s3://bucket") == ("bucket", "")
    assert parse_s3_url("s3://bucket/") == ("bucket", "")
    assert parse_s3_url("s3://bucket//a/b/") == ("bucket", "a/b/")


# The registry on S3, end to end ---------------------------------------------------------


def test_the_registry_runs_on_s3(
    clock: FakeClock, s3_bucket: S3Bucket, database_url: str, files: FileMaker, tmp_path: Path
) -> None:
    """push / pull / verify / gc with blobs in S3, on SQLite and on PostgreSQL."""
    settings = Settings(
        uri=str(tmp_path / "store"),
        database_url=database_url,
        blob_url=s3_bucket.url("registry"),
        s3_endpoint_url=s3_bucket.endpoint_url,
        gc_grace_seconds=0,
    )
    weights = random.Random(1).randbytes(3 * MiB)
    with modelkeep.connect(settings=settings) as mk:
        mk.create_model("m")
        version = mk.push("m", [files.make("w.bin", weights), files.make("c.json", b"{}")])
        pulled = mk.pull("m@1", tmp_path / "out")
        assert sorted(pulled.written) == ["c.json", "w.bin"]
        assert (tmp_path / "out" / "w.bin").read_bytes() == weights
        assert mk.verify().ok

        blobs = S3BlobStore(settings.blob_url, endpoint_url=settings.s3_endpoint_url)
        orphan = blobs.put_bytes(b"left behind by a killed push")
        clock.advance()  # older than gc's "now"
        report = mk.gc()
        assert (report.blobs, report.bytes) == (1, orphan.size)
        assert not blobs.has(orphan.digest)
        assert {b.digest for b in blobs.iter_blobs()} == {
            version.digest,
            *(f.digest for f in version.files),
        }

        s3_bucket.client.put_object(
            Bucket=s3_bucket.name, Key="registry/" + blob_key(version.files[1].digest), Body=b"!"
        )
        damaged = mk.verify()
        assert [d.digest for d in damaged.damaged] == [version.files[1].digest]
        assert damaged.broken_versions == ["m@1"]
    assert not (tmp_path / "store").exists()  # the database is elsewhere: no local files


def test_with_blobs_on_s3_the_default_database_stays_in_the_store_directory(
    s3_bucket: S3Bucket, files: FileMaker, tmp_path: Path
) -> None:
    store = tmp_path / "store"
    settings = Settings(
        uri=str(store), blob_url=s3_bucket.url(), s3_endpoint_url=s3_bucket.endpoint_url
    )
    with modelkeep.connect(settings=settings) as mk:
        mk.create_model("m")
        mk.push("m", [files.make()])
    assert sorted(p.name for p in store.iterdir()) == ["modelkeep.db"]


def test_other_blob_urls_are_refused(tmp_path: Path) -> None:
    settings = Settings(uri=str(tmp_path / "store"), blob_url="gs://bucket/prefix")
    with pytest.raises(UnsupportedUri, match="MODELKEEP_BLOB_URL"):
        modelkeep.connect(settings=settings)


def test_chunked_files_on_s3_dedup_and_two_pushes_of_the_same_chunks_store_one_copy(
    s3_bucket: S3Bucket, database_url: str, tmp_path: Path
) -> None:
    """A large file is stored as chunks in S3; two clients pushing the same new chunks at
    once both succeed with one copy; a one-region edit adds only the chunks around it."""
    from modelkeep.content import chunking

    settings = Settings(
        uri=str(tmp_path / "store"),
        database_url=database_url,
        blob_url=s3_bucket.url("registry"),
        s3_endpoint_url=s3_bucket.endpoint_url,
        cache_dir="off",
    )
    data = bytearray(random.Random(5).randbytes(chunking.WHOLE_BELOW + 8 * MiB))
    source = tmp_path / "model.bin"
    source.write_bytes(data)
    with modelkeep.connect(settings=settings) as mk:
        mk.create_model("a")
        mk.create_model("b")
    errors: list[BaseException] = []

    def push(model: str) -> None:
        try:
            with modelkeep.connect(settings=settings) as mk:
                mk.push(model, [source])
        except BaseException as exc:
            errors.append(exc)

    threads = [threading.Thread(target=push, args=(m,)) for m in ("a", "b")]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert errors == []
    blobs = S3BlobStore(settings.blob_url, endpoint_url=settings.s3_endpoint_url)
    stored = sum(b.size for b in blobs.iter_blobs())
    assert len(data) <= stored < len(data) + MiB  # the chunks once, plus recipe and manifests
    data[len(data) // 2 : len(data) // 2 + 100] = b"x" * 100
    source.write_bytes(data)
    with modelkeep.connect(settings=settings) as mk:
        mk.push("a", [source])
        added = sum(b.size for b in blobs.iter_blobs()) - stored
        assert 0 < added < len(data) // 4
        mk.pull("a@2", tmp_path / "out")
        assert (tmp_path / "out" / "model.bin").read_bytes() == bytes(data)
        assert mk.verify().ok
