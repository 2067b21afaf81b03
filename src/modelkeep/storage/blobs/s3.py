"""Blobs in an S3-compatible bucket (AWS, MinIO, Ceph, moto, …), through boto3.

Same layout as the local store, under the URL's prefix: ``blobs/sha256/ab/<62 hex>``,
``modelkeep-store.json`` and ``tmp/``. Credentials and the region come from boto3's own
chain (``AWS_ACCESS_KEY_ID``/``AWS_SECRET_ACCESS_KEY``, ``AWS_PROFILE``, ``~/.aws``,
instance roles); modelkeep never holds them.

Writes hash the stream as it is read, in constant memory (one part buffer):

- A stream shorter than one part is held in memory, so its digest is known before it is
  sent: one ``PutObject`` straight to the blob's key, with ``If-None-Match: *`` (put-if-
  absent) and its ``x-amz-checksum-sha256`` (the server checks the bytes it stores).
- A longer one goes to ``tmp/upload-<uuid>`` as a multipart upload, since its name is
  unknown until its last byte. Then, unless the blob exists, it is copied server-side to
  its key (``CopyObject``, or a multipart copy above 5 GiB) with ``If-None-Match: *``,
  and the temporary object is deleted.

A put of a blob that exists refreshes its age, as ``os.utime`` does locally, because gc
spares young blobs (uploads in flight). S3 has no utime: the object is copied onto itself
with ``MetadataDirective=REPLACE`` and a ``modelkeep-touched`` timestamp. That rewrites
``LastModified`` on AWS, MinIO and moto; ``stat`` reports the newer of the two in case a
server keeps ``LastModified``. Listings carry no metadata, so ``iter_blobs`` may report a
touched blob as older than ``stat`` does; gc re-checks each candidate with ``stat`` under
its lock before deleting, so that errs on the safe side.

Named objects (``put_named``: audit checkpoints) are small documents under
``checkpoints/``, written once with ``If-None-Match: *`` (or, on servers without
conditional writes, after a GET that finds no object).

Every botocore error is translated here into ``modelkeep.errors``; none escapes.
"""

from __future__ import annotations

import base64
import contextlib
import functools
import hashlib
import io
import os
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any, BinaryIO
from urllib.parse import urlsplit

import boto3
import botocore.loaders
import botocore.session
from botocore.config import Config
from botocore.exceptions import (
    BotoCoreError,
    ClientError,
    NoCredentialsError,
    PartialCredentialsError,
)

from modelkeep.content.verifying import VerifyingReader
from modelkeep.domain.digest import digest_of, hex_part, sha256_digest
from modelkeep.errors import (
    BlobNotFound,
    Conflict,
    DigestMismatch,
    InvalidInput,
    StoreUnavailable,
    UnsupportedUri,
)
from modelkeep.ports.blobs import BlobInfo, Progress, StoredBlob
from modelkeep.storage.blobs.layout import (
    BLOB_PREFIX,
    FORMAT_FILE,
    StoreFormat,
    blob_key,
    check_named_key,
    check_named_prefix,
    digest_of_key,
)
from modelkeep.storage.blobs.local import BUFFER

MiB = 1024 * 1024
PART_SIZE = 8 * MiB
"""Upload part size, and the largest blob sent in one PutObject (S3's minimum is 5 MiB)."""
PART_GROWTH = 1000
"""Parts double in size every this many, so 10,000 parts reach S3's 5 TiB object limit."""
COPY_LIMIT = 5 * 1024 * MiB
"""The largest object one CopyObject may copy; larger ones are copied in parts."""
COPY_PART_SIZE = 1024 * MiB
MAX_PARTS = 10_000
READ_SIZE = MiB
"""Reads from the stream are at most this large (progress reports are as fine)."""
TOUCHED = "modelkeep-touched"
TMP = "tmp/"
_ATTEMPTS = 3
_ACCESS_DENIED = {"AccessDenied", "InvalidAccessKeyId", "SignatureDoesNotMatch", "403"}
_MISSING = (404,)
_WRITE_REFUSALS = (404, 409, 412, 501)  # gone, conflict, exists, no conditional writes
Writer = Callable[[dict[str, str]], "_Refusal | None"]
"""Writes one object, with the conditional parameters it is given."""


def parse_s3_url(url: str) -> tuple[str, str]:
    """``s3://bucket/some/prefix`` -> ``("bucket", "some/prefix/")``; the prefix may be empty."""
    parts = urlsplit(url)
    if parts.scheme != "s3" or not parts.netloc or parts.query or parts.fragment:
        raise UnsupportedUri(
            f"{url!r} is not an S3 location", "write it as s3://BUCKET or s3://BUCKET/PREFIX"
        )
    prefix = parts.path.strip("/")
    return parts.netloc, prefix + "/" if prefix else ""


def make_client(endpoint_url: str | None) -> Any:
    """A boto3 S3 client on its own session (thread-safe; credentials from boto3's chain,
    read when the client is made)."""
    config = Config(
        connect_timeout=10,
        read_timeout=120,
        retries={"mode": "standard", "max_attempts": 3},
        max_pool_connections=max(10, os.cpu_count() or 1),
        # MinIO, Ceph and most self-hosted servers need path-style addressing.
        s3={"addressing_style": "path"} if endpoint_url else None,
    )
    session = botocore.session.Session()
    session.register_component("data_loader", _shared_loader())
    return boto3.session.Session(botocore_session=session).client(
        "s3", endpoint_url=endpoint_url, config=config
    )


@functools.cache
def _shared_loader() -> Any:
    """botocore's loader of service models, which caches them: a client is made in 13 ms
    instead of 100 (stores, and so clients, are opened per registry)."""
    return botocore.loaders.create_loader()


def _client_for(endpoint_url: str | None) -> Any:
    try:
        return make_client(endpoint_url)
    except (ValueError, BotoCoreError) as exc:
        raise InvalidInput(
            f"MODELKEEP_S3_ENDPOINT_URL {endpoint_url!r} is not usable: {exc}",
            "write it as http(s)://HOST[:PORT], or leave it empty for AWS",
        ) from None


@dataclass(frozen=True)
class _Refusal:
    """An answer the caller expects and handles (``_call(..., allow=...)``), e.g. a 404
    from HEAD or a 412 from a conditional write. Returned, not raised."""

    status: int
    code: str
    what: str

    def error(self) -> StoreUnavailable:
        return StoreUnavailable(
            f"S3 answered {self.status} {self.code} to {self.what}",
            "retry; if it persists, check the S3 server",
        )


def _refusal(response: Any) -> _Refusal | None:
    return response if isinstance(response, _Refusal) else None


@dataclass(frozen=True)
class _Head:
    size: int
    modified: datetime


class S3BlobStore:
    """The BlobStore port on S3. Thread-safe: one boto3 client, no shared mutable state
    beyond the ``_conditional`` flag, which only ever turns off."""

    def __init__(
        self,
        url: str,
        *,
        endpoint_url: str | None = None,
        part_size: int = PART_SIZE,
        copy_limit: int = COPY_LIMIT,
        client: Any | None = None,
    ) -> None:
        self.bucket, self.prefix = parse_s3_url(url)
        self.url = f"s3://{self.bucket}/{self.prefix}"
        self.part_size = part_size
        self.copy_limit = copy_limit
        self._client = client if client is not None else _client_for(endpoint_url or None)
        self._conditional = True  # off once the server answers 501 to If-None-Match
        self.store_id = self._open_format().store_id

    # the format file ------------------------------------------------------------------

    def _open_format(self) -> StoreFormat:
        key = self._key(FORMAT_FILE)
        data = self._get_bytes(key)
        if data is None:
            body = StoreFormat.new().to_bytes()
            self._write_if_absent(lambda c: self._refused("put_object", Key=key, Body=body, **c))
            data = self._get_bytes(key)
        if data is None:
            raise StoreUnavailable(f"{self.url}{FORMAT_FILE} vanished as it was created")
        return StoreFormat.parse(data, f"{self.url}{FORMAT_FILE}")

    def _get_bytes(self, key: str) -> bytes | None:
        response = self._call("get_object", _MISSING, Key=key)
        if isinstance(response, _Refusal):
            return None
        with _translated(self, "read"):
            return bytes(response["Body"].read())

    # queries --------------------------------------------------------------------------

    def has(self, digest: str) -> bool:
        return self._head(self._key(blob_key(digest))) is not None

    def touch(self, digest: str) -> bool:
        stored = self.stat(digest)
        return stored is not None and self._touch(self._key(blob_key(digest)), stored.size)

    def stat(self, digest: str) -> StoredBlob | None:
        head = self._head(self._key(blob_key(digest)))
        return None if head is None else StoredBlob(digest, head.size, head.modified)

    def iter_blobs(self) -> Iterator[StoredBlob]:
        for item in self._list(self._key(BLOB_PREFIX)):
            digest = digest_of_key(item["Key"].removeprefix(self.prefix))
            if digest is not None:
                yield StoredBlob(digest, int(item["Size"]), _utc(item["LastModified"]))

    # writes ---------------------------------------------------------------------------

    def put(
        self, stream: BinaryIO, *, expected: str | None = None, progress: Progress | None = None
    ) -> BlobInfo:
        hasher = hashlib.sha256()
        hint = _size_hint(stream)
        buffer = bytearray(self.part_size if hint is None else min(self.part_size, hint + 1))
        n = _fill(stream, buffer, 0, hasher, progress)
        if n == len(buffer) < self.part_size:  # the size hint was short
            grown = bytearray(self.part_size)
            grown[:n] = buffer
            buffer = grown
            n = _fill(stream, buffer, n, hasher, progress)
        if n < len(buffer):
            info = _checked(hasher, n, expected)
            self._put_whole(memoryview(buffer)[:n], info)
            return info
        return self._put_multipart(stream, buffer, hasher, expected, progress)

    def put_bytes(self, data: bytes) -> BlobInfo:
        if len(data) >= self.part_size:
            return self.put(io.BytesIO(data))
        info = BlobInfo(sha256_digest(data), len(data))
        self._put_whole(memoryview(data), info)
        return info

    def put_hashed(self, data: bytes | bytearray, digest: str) -> BlobInfo:
        """Bytes the caller hashed: S3 checks them on upload anyway, so this is ``put``."""
        return self.put(io.BytesIO(data), expected=digest)

    def _put_whole(self, data: memoryview, info: BlobInfo) -> None:
        key = self._key(blob_key(info.digest))
        checksum = base64.b64encode(bytes.fromhex(hex_part(info.digest))).decode()

        def write(cond: dict[str, str]) -> _Refusal | None:
            body = _Body(data)
            return self._refused("put_object", Key=key, Body=body, ChecksumSHA256=checksum, **cond)

        self._store(key, info.size, write, head_first=False)

    def _put_multipart(
        self,
        stream: BinaryIO,
        buffer: bytearray,
        hasher: Any,
        expected: str | None,
        progress: Progress | None,
    ) -> BlobInfo:
        tmp = self._key(f"{TMP}upload-{uuid.uuid4().hex}")
        upload_id = self._call("create_multipart_upload", Key=tmp)["UploadId"]
        try:
            size, parts = self._upload_parts(tmp, upload_id, stream, buffer, hasher, progress)
            info = _checked(hasher, size, expected)
            self._call(
                "complete_multipart_upload",
                Key=tmp,
                UploadId=upload_id,
                MultipartUpload={"Parts": parts},
            )
        except BaseException:
            self._quietly("abort_multipart_upload", Key=tmp, UploadId=upload_id)
            raise
        try:
            key = self._key(blob_key(info.digest))
            self._store(
                key,
                info.size,
                lambda cond: self._copy(tmp, key, info.size, cond),
                head_first=True,  # a HEAD costs less than a needless copy of a large blob
            )
        finally:
            self._quietly("delete_object", Key=tmp)
        return info

    def _upload_parts(
        self,
        key: str,
        upload_id: str,
        stream: BinaryIO,
        buffer: bytearray,
        hasher: Any,
        progress: Progress | None,
    ) -> tuple[int, list[dict[str, Any]]]:
        """Send ``buffer`` (full) and the rest of ``stream`` as parts: (size, parts)."""
        number, size, n = 1, 0, len(buffer)
        parts: list[dict[str, Any]] = []
        while n:
            body = _Body(memoryview(buffer)[:n])
            response = self._call(
                "upload_part", Key=key, UploadId=upload_id, PartNumber=number, Body=body
            )
            parts.append(_part(number, response))
            size += n
            if n < len(buffer):
                break
            number += 1
            if number > MAX_PARTS:
                raise StoreUnavailable(f"a blob of over {size} bytes is too large for S3")
            if (number - 1) % PART_GROWTH == 0:
                buffer = bytearray(len(buffer) * 2)
            n = _fill(stream, buffer, 0, hasher, progress)
        return size, parts

    def _store(self, key: str, size: int, write: Writer, *, head_first: bool) -> None:
        """Put-if-absent: ``write(condition)`` creates ``key`` unless it exists; if it does,
        refresh its age (or replace it, if its size is wrong: ours is verified)."""
        for _ in range(_ATTEMPTS):
            head = self._head(key) if head_first or not self._conditional else None
            if head is None:
                if self._write_if_absent(write):
                    return
                head = self._head(key)  # another writer got there first
            if head is None:
                continue  # ... and it is gone again (gc): write ours
            if head.size != size:  # a damaged copy (written outside modelkeep): replace it
                if refusal := write({}):
                    raise refusal.error()
                return
            if self._touch(key, size):
                return
        raise StoreUnavailable(
            f"could not store {self.url}{key.removeprefix(self.prefix)}: it kept vanishing",
            "is another process deleting blobs (gc with MODELKEEP_GC_GRACE_SECONDS=0)?",
        )

    def _write_if_absent(self, write: Writer) -> bool:
        """Run ``write``, conditionally if the server can; False if the object exists."""
        # If-None-Match on PutObject and CompleteMultipartUpload is honoured by AWS, MinIO
        # and moto. On CopyObject AWS honours it but moto 5.2 ignores it (and some servers
        # may too): there the HEAD before the copy is the check, and a writer that loses
        # the race between HEAD and copy rewrites the same, verified, bytes: harmless.
        refusal = write({"IfNoneMatch": "*"} if self._conditional else {})
        if refusal is not None and refusal.status == 501 and self._conditional:
            self._conditional = False  # the server does not do conditional writes
            refusal = write({})
        if refusal is None:
            return True
        if refusal.status in (409, 412):  # it exists, or a concurrent conditional write
            return False
        raise refusal.error()

    def _touch(self, key: str, size: int) -> bool:
        """Make the object young again by copying it onto itself; False if it is gone."""
        stamp = {"MetadataDirective": "REPLACE", "Metadata": {TOUCHED: _now().isoformat()}}
        refusal = self._copy(key, key, size, stamp)
        if refusal is not None and refusal.status != 404:
            raise refusal.error()
        return refusal is None

    def _copy(self, source: str, target: str, size: int, extra: dict[str, Any]) -> _Refusal | None:
        """Server-side copy: one CopyObject up to ``copy_limit``, else a multipart copy."""
        copy_source = {"Bucket": self.bucket, "Key": source}
        if size <= self.copy_limit:
            return self._refused("copy_object", Key=target, CopySource=copy_source, **extra)
        condition = {k: v for k, v in extra.items() if k == "IfNoneMatch"}
        create = {k: v for k, v in extra.items() if k == "Metadata"}
        upload_id = self._call("create_multipart_upload", Key=target, **create)["UploadId"]
        try:
            parts = self._copy_parts(copy_source, target, upload_id, size)
            refusal = parts if isinstance(parts, _Refusal) else None
            if refusal is None:
                refusal = self._refused(
                    "complete_multipart_upload",
                    Key=target,
                    UploadId=upload_id,
                    MultipartUpload={"Parts": parts},
                    **condition,
                )
        except BaseException:
            self._quietly("abort_multipart_upload", Key=target, UploadId=upload_id)
            raise
        if refusal is not None:
            self._quietly("abort_multipart_upload", Key=target, UploadId=upload_id)
        return refusal

    def _copy_parts(
        self, copy_source: dict[str, str], target: str, upload_id: str, size: int
    ) -> list[dict[str, Any]] | _Refusal:
        step = max(min(self.copy_limit, COPY_PART_SIZE), -(-size // MAX_PARTS))
        parts: list[dict[str, Any]] = []
        for number, start in enumerate(range(0, size, step), start=1):
            response = self._call(
                "upload_part_copy",
                _WRITE_REFUSALS,
                Key=target,
                UploadId=upload_id,
                PartNumber=number,
                CopySource=copy_source,
                CopySourceRange=f"bytes={start}-{min(start + step, size) - 1}",
            )
            if isinstance(response, _Refusal):
                return response  # the source vanished
            parts.append(_part(number, response["CopyPartResult"]))
        return parts

    # reads ----------------------------------------------------------------------------

    def open(self, digest: str) -> BinaryIO:
        body = self._get_body(digest)
        if body is None:
            raise BlobNotFound(f"blob {digest} is missing from the store")
        return io.BufferedReader(VerifyingReader(_BodyReader(body, self), digest), BUFFER)

    def read_bytes(self, digest: str) -> bytes:
        with self.open(digest) as reader:
            return reader.read()

    def read_unchecked(self, digest: str) -> bytes:
        body = self._get_body(digest)
        if body is None:
            raise BlobNotFound(f"blob {digest} is missing from the store")
        with contextlib.closing(body):
            return bytes(body.read())

    def check(self, digest: str) -> str | None:
        body = self._get_body(digest)
        if body is None:
            return "missing"
        hasher = hashlib.sha256()
        with _translated(self, "read"):
            try:
                for chunk in body.iter_chunks(BUFFER):
                    hasher.update(chunk)
            finally:
                body.close()
        actual = digest_of(hasher)
        return None if actual == digest else f"content hashes to {actual}"

    def _get_body(self, digest: str) -> Any | None:
        response = self._call("get_object", _MISSING, Key=self._key(blob_key(digest)))
        return None if isinstance(response, _Refusal) else response["Body"]

    # deletion -------------------------------------------------------------------------

    def delete(self, digest: str) -> None:
        self._call("delete_object", Key=self._key(blob_key(digest)))  # absent: no error

    def sweep_temporary(self, older_than: datetime, dry_run: bool) -> tuple[int, int]:
        """Delete ``tmp/`` objects and abort multipart uploads older than ``older_than``."""
        count = size = 0
        for item in self._list(self._key(TMP)):
            if _utc(item["LastModified"]) >= older_than:
                continue
            count, size = count + 1, size + int(item["Size"])
            if not dry_run:
                self._call("delete_object", Key=item["Key"])
        ours = (self._key(TMP), self._key(BLOB_PREFIX))  # the bucket may hold others' uploads
        for upload in self._uploads():
            if not upload["Key"].startswith(ours) or _utc(upload["Initiated"]) >= older_than:
                continue
            key, upload_id = upload["Key"], upload["UploadId"]
            count, size = count + 1, size + self._uploaded_bytes(key, upload_id)
            if not dry_run:
                self._quietly("abort_multipart_upload", Key=key, UploadId=upload_id)
        return count, size

    def _uploads(self) -> Iterator[dict[str, Any]]:
        markers: dict[str, Any] = {}
        while True:
            page = self._call("list_multipart_uploads", Prefix=self.prefix, **markers)
            yield from page.get("Uploads", [])
            if not page.get("IsTruncated"):
                return
            markers = {
                "KeyMarker": page["NextKeyMarker"],
                "UploadIdMarker": page["NextUploadIdMarker"],
            }

    def _uploaded_bytes(self, key: str, upload_id: str) -> int:
        page = self._call("list_parts", _MISSING, Key=key, UploadId=upload_id)
        if isinstance(page, _Refusal):
            return 0  # completed or aborted meanwhile
        return sum(int(p["Size"]) for p in page.get("Parts", []))

    # named objects --------------------------------------------------------------------

    def put_named(self, key: str, data: bytes) -> None:
        full = self._key(check_named_key(key))
        checksum = base64.b64encode(hashlib.sha256(data).digest()).decode()

        def write(cond: dict[str, str]) -> _Refusal | None:
            body = _Body(memoryview(data))
            return self._refused("put_object", Key=full, Body=body, ChecksumSHA256=checksum, **cond)

        if self._conditional:
            refusal = write({"IfNoneMatch": "*"})
            if refusal is None:
                return
            if refusal.status == 501:
                self._conditional = False  # the server does not do conditional writes
            elif refusal.status not in (409, 412):
                raise refusal.error()
        existing = self._get_bytes(full)
        if existing is None and not self._conditional:
            if refusal := write({}):
                raise refusal.error()
            return
        if existing != data:
            raise Conflict(
                f"{key} already exists in {self.url} with other content",
                "named objects are write-once",
            )

    def get_named(self, key: str) -> bytes | None:
        return self._get_bytes(self._key(check_named_key(key)))

    def list_named(self, prefix: str) -> list[str]:
        listed = self._list(self._key(check_named_prefix(prefix)))
        keys = (item["Key"].removeprefix(self.prefix) for item in listed)
        return sorted(k for k in keys if "/" not in k.removeprefix(prefix))

    # plumbing -------------------------------------------------------------------------

    def _key(self, relative: str) -> str:
        return self.prefix + relative

    def _head(self, key: str) -> _Head | None:
        response = self._call("head_object", _MISSING, Key=key)
        if isinstance(response, _Refusal):
            return None
        modified = _utc(response["LastModified"])
        touched = response.get("Metadata", {}).get(TOUCHED)
        if touched:
            with contextlib.suppress(ValueError):  # not ours: LastModified stands
                modified = max(modified, _utc(datetime.fromisoformat(touched)))
        return _Head(int(response["ContentLength"]), modified)

    def _list(self, prefix: str) -> Iterator[dict[str, Any]]:
        token: dict[str, Any] = {}
        while True:
            page = self._call("list_objects_v2", Prefix=prefix, **token)
            yield from page.get("Contents", [])
            if not page.get("IsTruncated"):
                return
            token = {"ContinuationToken": page["NextContinuationToken"]}

    def _call(self, operation: str, allow: tuple[int, ...] = (), **params: Any) -> Any:
        """One S3 request. A refusal whose HTTP status is in ``allow`` is returned as a
        ``_Refusal``; every other error is raised as a modelkeep error."""
        what = f"{operation} {params.get('Key', '')}".strip()
        try:
            return getattr(self._client, operation)(Bucket=self.bucket, **params)
        except ClientError as exc:
            status = int(exc.response.get("ResponseMetadata", {}).get("HTTPStatusCode", 0))
            code = str(exc.response.get("Error", {}).get("Code", ""))
            if status in allow and code != "NoSuchBucket":
                return _Refusal(status, code, what)
            raise self._error_for(exc, what) from None
        except BotoCoreError as exc:
            raise self._error_for(exc, what) from None

    def _refused(self, operation: str, **params: Any) -> _Refusal | None:
        """A write: None when done, else the refusal it met."""
        return _refusal(self._call(operation, _WRITE_REFUSALS, **params))

    def _quietly(self, operation: str, **params: Any) -> None:
        """Clean up after a failure without hiding it; leftovers are swept by gc."""
        with contextlib.suppress(StoreUnavailable):
            self._call(operation, **params)

    def _error_for(self, exc: Exception, what: str) -> StoreUnavailable:
        """The modelkeep error for a botocore one (``what``: the request, or "read")."""
        endpoint = self._client.meta.endpoint_url
        if isinstance(exc, NoCredentialsError | PartialCredentialsError):
            return StoreUnavailable(
                f"no S3 credentials for {self.url}: {exc}",
                "set AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY, or AWS_PROFILE",
            )
        if not isinstance(exc, ClientError):
            detail = " ".join(str(exc).split())
            if what == "read":  # the response started, then broke off
                return StoreUnavailable(
                    f"reading from S3 at {endpoint} ({self.url}) failed: {detail}",
                    "retry; if it persists, check the network and the S3 server",
                )
            return StoreUnavailable(
                f"cannot reach S3 at {endpoint} for {self.url}: {detail}",
                "check MODELKEEP_S3_ENDPOINT_URL and that the server is running",
            )
        error = exc.response.get("Error", {})
        code = str(error.get("Code", ""))
        if code == "NoSuchBucket":
            return StoreUnavailable(
                f"the bucket {self.bucket!r} does not exist at {endpoint}",
                "create it, or correct MODELKEEP_BLOB_URL",
            )
        if code in _ACCESS_DENIED:
            return StoreUnavailable(
                f"S3 refused access to {self.url} ({code})",
                "check the credentials and that they may read, write and list the bucket",
            )
        status = exc.response.get("ResponseMetadata", {}).get("HTTPStatusCode", "")
        message = " ".join(str(error.get("Message", "")).split())
        return StoreUnavailable(
            f"S3 answered {status} {code} to {what}: {message}".rstrip(": "),
            "retry; if it persists, check the S3 server",
        )


@contextlib.contextmanager
def _translated(store: S3BlobStore, what: str) -> Iterator[None]:
    """botocore exceptions in, modelkeep errors out (for reads of a response body)."""
    try:
        yield
    except (BotoCoreError, ClientError) as exc:
        raise store._error_for(exc, what) from None


class _Body(io.RawIOBase):
    """A seekable read-only file over a buffer, so botocore can send (and resend) a
    part without copying it."""

    def __init__(self, data: memoryview) -> None:
        self._view = data
        self._pos = 0

    def readable(self) -> bool:
        return True

    def seekable(self) -> bool:
        return True

    def readinto(self, buffer: bytearray | memoryview) -> int:  # type: ignore[override]
        n = min(len(buffer), len(self._view) - self._pos)
        buffer[:n] = self._view[self._pos : self._pos + n]
        self._pos += n
        return n

    def seek(self, offset: int, whence: int = io.SEEK_SET) -> int:
        base = {io.SEEK_SET: 0, io.SEEK_CUR: self._pos, io.SEEK_END: len(self._view)}[whence]
        self._pos = max(0, base + offset)
        return self._pos

    def tell(self) -> int:
        return self._pos


class _BodyReader(io.RawIOBase):
    """A raw reader over a GetObject body that reports network failures as modelkeep errors."""

    def __init__(self, body: Any, store: S3BlobStore) -> None:
        self._body = body
        self._store = store

    def readable(self) -> bool:
        return True

    def readinto(self, buffer: bytearray | memoryview) -> int:  # type: ignore[override]
        with _translated(self._store, "read"):
            data = self._body.read(len(buffer))
        buffer[: len(data)] = data
        return len(data)

    def close(self) -> None:
        self._body.close()
        super().close()


def _fill(
    stream: BinaryIO, buffer: bytearray, start: int, hasher: Any, progress: Progress | None
) -> int:
    """Read into ``buffer[start:]`` until it is full or the stream ends; hash what is read."""
    view, filled = memoryview(buffer), start
    readinto = getattr(stream, "readinto", None)
    while filled < len(buffer):
        want = min(len(buffer) - filled, READ_SIZE)
        if readinto is not None:
            n = int(readinto(view[filled : filled + want]) or 0)
        else:
            chunk = stream.read(want)
            n = len(chunk)
            view[filled : filled + n] = chunk
        if not n:
            break
        hasher.update(view[filled : filled + n])
        filled += n
        if progress is not None:
            progress(n)
    return filled


def _part(number: int, result: dict[str, Any]) -> dict[str, Any]:
    """A CompleteMultipartUpload entry: the part's ETag and any checksum botocore sent."""
    sums = {k: v for k, v in result.items() if k.startswith("Checksum") and k != "ChecksumType"}
    return {"PartNumber": number, "ETag": result["ETag"], **sums}


def _checked(hasher: Any, size: int, expected: str | None) -> BlobInfo:
    info = BlobInfo(digest_of(hasher), size)
    if expected is not None and info.digest != expected:
        raise DigestMismatch(
            f"the uploaded bytes hash to {info.digest}, not {expected}", "upload the file again"
        )
    return info


def _size_hint(stream: BinaryIO) -> int | None:
    if isinstance(stream, io.BytesIO):
        return stream.getbuffer().nbytes - stream.tell()
    try:
        return os.fstat(stream.fileno()).st_size
    except (AttributeError, OSError, io.UnsupportedOperation):
        return None  # unknown: read whole parts


def _utc(moment: datetime) -> datetime:
    return moment.astimezone(UTC) if moment.tzinfo else moment.replace(tzinfo=UTC)


def _now() -> datetime:
    return datetime.now(UTC)
