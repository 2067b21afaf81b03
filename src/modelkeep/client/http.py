"""The SDK over HTTP: the same verbs against a ``modelkeep server``.

Uploads and downloads stream; a push first hashes its files, asks the server which blobs
it lacks, and sends only those. Every byte downloaded is verified here too: the client
trusts no transport. Errors come back as the same classes the services raise.
"""

from __future__ import annotations

import contextlib
import hashlib
import io
import math
import threading
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from datetime import datetime, timedelta
from typing import TYPE_CHECKING, Any, BinaryIO

import httpx

from modelkeep.client import wire
from modelkeep.client.deployments import HttpDeployments
from modelkeep.client.files import (
    LocalFile,
    changed_since,
    file_state,
    is_chunked,
    upload_chunked,
)
from modelkeep.client.governance import HttpGovernance
from modelkeep.client.governance import version_path as _version_path
from modelkeep.client.metrics_buffer import MetricPoint, pack_points
from modelkeep.client.wire import path_segment as _seg
from modelkeep.content import copying
from modelkeep.content.scanning import Piece, Scan
from modelkeep.content.verifying import VerifyingReader
from modelkeep.domain.aliases import AliasEvent, Resolution
from modelkeep.domain.audit import (
    AuditEvent,
    AuditHead,
    ChainReport,
    CheckpointEntry,
    CheckpointResult,
    PublicKey,
)
from modelkeep.domain.datasets import DatasetPush, DatasetVersion
from modelkeep.domain.diff import VersionDiff
from modelkeep.domain.digest import check_digest, sha256_digest
from modelkeep.domain.lineage import Lineage
from modelkeep.domain.maintenance import GcReport, VerifyReport
from modelkeep.domain.manifest import FileEntry
from modelkeep.domain.names import parse_ref
from modelkeep.domain.recipes import Recipe
from modelkeep.domain.retention import RetentionPolicy
from modelkeep.domain.runs import NewRun, Run, Series
from modelkeep.domain.storage_report import StorageReport
from modelkeep.domain.users import IssuedToken, Token, User
from modelkeep.domain.versions import Model, PushRequest, Scalar, Version
from modelkeep.errors import (
    Conflict,
    DigestMismatch,
    FileChanged,
    ModelkeepError,
    NotFound,
    StoreUnavailable,
    all_error_classes,
)
from modelkeep.ports.blobs import Progress, report_skipped

if TYPE_CHECKING:
    from modelkeep.attest.serving import BuiltBundle

API = "/api/v1"
BLOCK = 1024 * 1024
UPLOAD_STREAMS = 3  # packs in flight: each waits on the server's writes and fsyncs
PACK_BYTES = 16 * 1024 * 1024
ERRORS = {cls.code: cls for cls in all_error_classes()}
BY_STATUS: dict[int, type[ModelkeepError]] = {404: NotFound, 409: Conflict}


class HttpBackend(HttpGovernance, HttpDeployments):
    def __init__(
        self,
        url: str,
        token: str | None,
        *,
        http: httpx.Client | None = None,
        timeout: float = 60.0,
    ) -> None:
        """``http`` replaces the connection pool (tests pass an in-process ASGI client)."""
        self.url = url.rstrip("/")
        self._http = http or httpx.Client(
            base_url=self.url, timeout=httpx.Timeout(timeout, connect=10.0)
        )
        if token:
            self._http.headers["authorization"] = f"Bearer {token}"

    def close(self) -> None:
        self._http.close()

    # plumbing -------------------------------------------------------------------------

    def _call(self, method: str, path: str, **kwargs: Any) -> Any:
        response = self._send(method, path, **kwargs)
        return response.json() if response.content else None

    def _text(self, path: str, params: dict[str, Any]) -> str:
        """A document the server renders (a model card, a report)."""
        return self._send("GET", path, params=params).text

    def _send(self, method: str, path: str, **kwargs: Any) -> httpx.Response:
        try:
            response = self._http.request(method, API + path, **kwargs)
        except httpx.TransportError as exc:
            raise StoreUnavailable(
                f"cannot reach the server at {self.url}: {exc}",
                "check MODELKEEP_URI and that the server runs",
            ) from None
        if response.status_code >= 400:
            raise _error(response)
        return response

    def _items(self, path: str, params: dict[str, Any] | None = None) -> list[dict[str, Any]]:
        """Every item of a paginated list, following the ``next`` cursors."""
        query = {k: v for k, v in (params or {}).items() if v is not None}
        items: list[dict[str, Any]] = []
        while True:
            body = self._call("GET", path, params=query)
            items.extend(body["items"])
            if body["next"] is None:
                return items
            query["after"] = body["next"]

    # models ---------------------------------------------------------------------------

    def create_model(self, name: str, description: str, require: Iterable[str]) -> Model:
        body = {"name": name, "description": description, "require": list(require)}
        return wire.model(self._call("POST", "/models", json=body))

    def list_models(self) -> list[Model]:
        return [wire.model(d) for d in self._items("/models")]

    def get_model(self, name: str) -> Model:
        return wire.model(self._call("GET", f"/models/{_seg(name)}"))

    # versions -------------------------------------------------------------------------

    def check_push(self, model: str, request: PushRequest) -> None:
        body = _registration([], request)
        del body["files"]
        self._call("POST", f"/models/{_seg(model)}/versions/check", json=body)

    def missing(self, digests: Iterable[str]) -> set[str]:
        wanted = sorted(set(digests))
        return set(self._call("POST", "/blobs/missing", json={"digests": wanted})["missing"])

    def upload(self, files: Sequence[LocalFile], progress: Progress | None) -> list[FileEntry]:
        big = [f for f in files if is_chunked(f)]
        entries = {f.path: self._upload_chunked(f, progress) for f in big}
        small = [f for f in files if not is_chunked(f)]
        entries.update({e.path: e for e in self._upload_whole(small, progress)})
        return [entries[f.path] for f in files]

    def _upload_chunked(self, file: LocalFile, progress: Progress | None) -> FileEntry:
        """Chunks are gathered into packs as they are hashed; each pack asks which of its
        chunks the server lacks and sends only those, in one request, from the scan's
        worker threads: several packs travel at once."""
        packer = _Packer(lambda pieces: self._send_pack(pieces, progress))

        def record(scan: Scan) -> str:
            packer.flush()
            return self._assemble(scan)

        # The server hashes the whole file from the chunks it verified and stored, so
        # this side hashes only the chunks: the file's digest costs one pass, not two.
        return upload_chunked(
            file, packer.add, record, progress, workers=UPLOAD_STREAMS, whole_digest=False
        )

    def _send_pack(self, pieces: list[Piece], progress: Progress | None) -> None:
        missing = self.missing(p.digest for p in pieces)
        sent = [p for p in pieces if p.digest in missing]
        report_skipped(progress, sum(len(p.data) for p in pieces if p.digest not in missing))
        if not sent:
            return
        headers = {
            "content-type": "application/octet-stream",
            "content-length": str(sum(len(p.data) for p in sent)),
            "x-modelkeep-chunks": ",".join(f"{p.digest}:{len(p.data)}" for p in sent),
        }
        # the pieces go out one after the other, not copied into one buffer first
        self._call("PUT", "/chunks", headers=headers, content=iter([p.data for p in sent]))

    def _assemble(self, scan: Scan) -> str:
        body = {"chunker": scan.chunker, "chunks": [[c.digest, c.size] for c in scan.chunks]}
        digest = str(self._call("POST", "/files", json=body)["digest"])
        return check_digest(digest)

    def _upload_whole(
        self, files: Sequence[LocalFile], progress: Progress | None
    ) -> list[FileEntry]:
        hashed = [(f, *_hash(f)) for f in files]
        digests = sorted({entry.digest for _, entry, _ in hashed})
        missing = set(self._call("POST", "/blobs/missing", json={"digests": digests})["missing"])
        for local, entry, state in hashed:
            if entry.digest in missing:
                self._put(local, entry, state, progress)
                missing.discard(entry.digest)
            elif progress is not None:
                progress(entry.size)
                report_skipped(progress, entry.size)
        return [entry for _, entry, _ in hashed]

    def _put(
        self,
        local: LocalFile,
        entry: FileEntry,
        state: tuple[int, int, int],
        progress: Progress | None,
    ) -> None:
        headers = {"content-length": str(entry.size), "content-type": "application/octet-stream"}
        changed = FileChanged(f"{str(local.source)!r} changed while it was being pushed")
        try:
            self._call(
                "PUT",
                f"/blobs/{entry.digest}",
                headers=headers,
                content=_file_chunks(local, entry.size, progress),
            )
        except ModelkeepError:  # the server got other bytes than were hashed: say why
            if changed_since(local.source, state):
                raise changed from None
            raise
        if changed_since(local.source, state):
            raise changed

    def register_version(
        self, model: str, files: Sequence[FileEntry], request: PushRequest
    ) -> Version:
        body = _registration(files, request)
        return wire.version(self._call("POST", f"/models/{_seg(model)}/versions", json=body))

    def list_versions(self, model: str) -> list[Version]:
        return [wire.version(d) for d in self._items(f"/models/{_seg(model)}/versions")]

    def get_version(self, ref: str) -> Version:
        parsed = parse_ref(ref, default_latest=True)
        path = f"/models/{_seg(parsed.model)}/versions/{_seg(parsed.value)}"
        return wire.version(self._call("GET", path))

    def resolve(self, ref: str, at: datetime | None = None) -> Resolution:
        params = {"ref": ref, **({"at": at.isoformat()} if at else {})}
        return wire.resolution(self._call("GET", "/resolve", params=params))

    def diff(self, old: str, new: str) -> VersionDiff:
        return wire.version_diff(self._call("GET", "/diff", params={"old": old, "new": new}))

    def archive(self, ref: str, reason: str | None = None) -> Version:
        parsed = parse_ref(ref)
        path = f"/models/{_seg(parsed.model)}/versions/{_seg(parsed.value)}/archive"
        return wire.version(self._call("POST", path, json={"reason": reason}))

    def unarchive(self, ref: str, reason: str | None = None) -> Version:
        parsed = parse_ref(ref)
        path = f"/models/{_seg(parsed.model)}/versions/{_seg(parsed.value)}/unarchive"
        return wire.version(self._call("POST", path, json={"reason": reason}))

    # aliases and stages ---------------------------------------------------------------

    def set_alias(
        self, ref: str, alias: str, reason: str | None = None, expect: int | None = None
    ) -> AliasEvent:
        parsed = parse_ref(ref)
        body = {"version": parsed.value, "reason": reason, "expect": expect}
        path = f"/models/{_seg(parsed.model)}/aliases/{_seg(alias)}"
        return wire.alias_event(self._call("PUT", path, json=body))

    def remove_alias(self, model: str, alias: str, reason: str | None = None) -> AliasEvent:
        params = {"reason": reason} if reason else {}
        path = f"/models/{_seg(model)}/aliases/{_seg(alias)}"
        return wire.alias_event(self._call("DELETE", path, params=params))

    def alias_history(self, model: str, alias: str | None = None) -> list[AliasEvent]:
        items = self._items(f"/models/{_seg(model)}/aliases", {"alias": alias})
        return [wire.alias_event(d) for d in items]

    def promote(
        self, ref: str, to: str, reason: str | None = None, expect: int | None = None
    ) -> AliasEvent:
        parsed = parse_ref(ref)
        body = {"version": parsed.value, "to": to, "reason": reason, "expect": expect}
        return wire.alias_event(
            self._call("POST", f"/models/{_seg(parsed.model)}/promote", json=body)
        )

    def rollback(self, model: str, stage: str, reason: str | None = None) -> AliasEvent:
        body = {"stage": stage, "reason": reason}
        return wire.alias_event(self._call("POST", f"/models/{_seg(model)}/rollback", json=body))

    # blobs, maintenance, audit --------------------------------------------------------

    def file_recipe(self, digest: str) -> Recipe:
        """How to read a file: its chunks (each then fetched and verified on its own)."""
        recipe = Recipe.from_dict(self._call("GET", f"/files/{digest}/recipe"))
        if recipe.digest != digest:
            raise DigestMismatch(f"the server sent the recipe of {recipe.digest}, not {digest}")
        return recipe

    def fetch_chunk(self, digest: str, size: int) -> bytes:
        """A chunk's bytes, not hashed here: the pull checks the whole file's digest,
        which covers every chunk (and then names any chunk that arrived wrong)."""
        try:
            response = self._http.get(f"{API}/blobs/{digest}")
        except httpx.RemoteProtocolError:  # the server cut the stream: it found damage
            raise DigestMismatch(
                f"chunk {digest} ended early: the server found it damaged",
                "run 'modelkeep verify' on the server",
            ) from None
        except httpx.TransportError as exc:
            raise StoreUnavailable(f"cannot reach the server at {self.url}: {exc}") from None
        if response.status_code >= 400:
            raise _error(response)
        return response.content

    def open_blob(self, digest: str) -> BinaryIO:
        request = self._http.build_request("GET", f"{API}/blobs/{digest}")
        try:
            response = self._http.send(request, stream=True)
        except httpx.TransportError as exc:
            raise StoreUnavailable(f"cannot reach the server at {self.url}: {exc}") from None
        if response.status_code >= 400:
            response.read()
            response.close()
            raise _error(response)
        return io.BufferedReader(_download(response, digest), BLOCK)

    def build_bundle(self, ref: str, out: BinaryIO) -> BuiltBundle:
        """The server builds and signs the bundle (it holds the store's key); its bytes
        are streamed into ``out`` and must hash to the digest the server recorded."""
        from modelkeep.attest.serving import BuiltBundle

        request = self._http.build_request("POST", f"{API}{_version_path(ref, 'bundle')}")
        try:
            response = self._http.send(request, stream=True)
        except httpx.TransportError as exc:
            raise StoreUnavailable(f"cannot reach the server at {self.url}: {exc}") from None
        with contextlib.closing(response):
            if response.status_code >= 400:
                response.read()
                raise _error(response)
            hasher = hashlib.sha256()
            size = 0
            try:
                for chunk in response.iter_bytes(BLOCK):
                    hasher.update(chunk)
                    size += len(chunk)
                    out.write(chunk)
            except httpx.TransportError as exc:
                raise StoreUnavailable(
                    f"the server at {self.url} stopped sending the bundle: {exc}",
                    "build it again",
                ) from None
            headers = response.headers
        built = BuiltBundle(
            headers["modelkeep-model"],
            int(headers["modelkeep-number"]),
            headers["modelkeep-version-digest"],
            headers["modelkeep-bundle-digest"],
            size,
        )
        if "sha256:" + hasher.hexdigest() != built.digest:
            raise DigestMismatch(
                f"the bundle received hashes to sha256:{hasher.hexdigest()}, "
                f"not {built.digest} as the server recorded",
                "build it again",
            )
        return built

    def openssf_signature(self, ref: str) -> bytes:
        return self._send("POST", _version_path(ref, "openssf-signature")).content

    def openssf_key(self) -> str:
        return str(self._call("GET", "/audit/key", params={"format": "openssf"})["pem"])

    def verify(self, ref: str | None = None, sample: float | None = None) -> VerifyReport:
        body = {"ref": ref, "sample": sample}
        return wire.verify_report(self._call("POST", "/verify", json=body))

    def gc(self, dry_run: bool = False) -> GcReport:
        return wire.gc_report(self._call("POST", "/gc", json={"dry_run": dry_run}))

    def audit_log(
        self, model: str | None = None, since: datetime | None = None
    ) -> list[AuditEvent]:
        params = {"model": model, "since": since.isoformat() if since else None}
        return [wire.audit_event(d) for d in self._items("/audit", params)]

    def audit_verify(self) -> ChainReport:
        return wire.chain_report(self._call("GET", "/audit/verify"))

    def audit_checkpoint(self) -> CheckpointResult:
        return wire.checkpoint_result(self._call("POST", "/audit/checkpoints"))

    def audit_key(self) -> PublicKey:
        return wire.public_key(self._call("GET", "/audit/key"))

    def audit_head(self) -> AuditHead:
        return wire.audit_head(self._call("GET", "/audit/head"))

    def audit_checkpoints(self) -> list[CheckpointEntry]:
        return [CheckpointEntry(d["seq"], d["name"]) for d in self._items("/audit/checkpoints")]

    def audit_checkpoint_file(self, seq: int) -> bytes:
        return self._send("GET", f"/audit/checkpoints/{seq}").content

    # users and tokens (client/users.py UserAdmin) ---------------------------------------

    def create_user(
        self, name: str, role: str, model: str | None, expires_in: timedelta | None
    ) -> tuple[User, IssuedToken]:
        body = {"name": name, "role": role, "model": model, "expires_in": _seconds(expires_in)}
        created = self._call("POST", "/users", json=body)
        return wire.user(created["user"]), wire.issued_token(created["token"])

    def list_users(self, include_deleted: bool = False) -> list[User]:
        query = {"include_deleted": "true" if include_deleted else None}
        return [wire.user(d) for d in self._items("/users", query)]

    def grant(self, name: str, role: str, model: str | None, **scope: str | None) -> User:
        body = {"role": role, "model": model, **{k: v for k, v in scope.items() if v is not None}}
        return wire.user(self._call("POST", f"/users/{_seg(name)}/grants", json=body))

    def revoke_grant(self, name: str, role: str, model: str | None, **scope: str | None) -> User:
        named = {"model": model, **scope}
        params = {"role": role, **{k: v for k, v in named.items() if v is not None}}
        return wire.user(self._call("DELETE", f"/users/{_seg(name)}/grants", params=params))

    def set_user_disabled(self, name: str, disabled: bool) -> User:
        verb = "disable" if disabled else "enable"
        return wire.user(self._call("POST", f"/users/{_seg(name)}/{verb}"))

    def delete_user(self, name: str) -> User:
        return wire.user(self._call("DELETE", f"/users/{_seg(name)}"))

    def create_token(
        self, name: str, expires_in: timedelta | None, label: str | None
    ) -> IssuedToken:
        body = {"user": name, "label": label, "expires_in": _seconds(expires_in)}
        return wire.issued_token(self._call("POST", "/tokens", json=body))

    def list_tokens(self, name: str | None) -> list[Token]:
        return [wire.token(d) for d in self._items("/tokens", {"user": name})]

    def revoke_token(self, token: int | str) -> Token:
        """By id, or by the secret itself: sent in a body, never in a URL."""
        if isinstance(token, int):
            return wire.token(self._call("DELETE", f"/tokens/{token}"))
        return wire.token(self._call("POST", "/tokens/revoke", json={"token": token}))

    # storage report and retention ------------------------------------------------------

    def storage(self, model: str | None = None) -> StorageReport:
        params = {"model": model} if model is not None else {}
        return wire.storage_report(self._call("GET", "/storage", params=params))

    def retention(self, model: str) -> RetentionPolicy | None:
        return wire.retention_policy(self._call("GET", f"/models/{_seg(model)}/retention"))

    def set_retention(
        self, model: str, keep_last: int | None, keep_days: int | None
    ) -> RetentionPolicy:
        body = {"keep_last": keep_last, "keep_days": keep_days}
        path = f"/models/{_seg(model)}/retention"
        return wire.new_retention_policy(self._call("PUT", path, json=body))

    def clear_retention(self, model: str) -> RetentionPolicy | None:
        return wire.retention_policy(self._call("DELETE", f"/models/{_seg(model)}/retention"))

    # runs -------------------------------------------------------------------------------

    def put_bytes(self, data: bytes) -> str:
        digest = sha256_digest(data)
        if self.missing([digest]):
            headers = {"content-type": "application/octet-stream"}
            self._call("PUT", f"/blobs/{digest}", headers=headers, content=data)
        return digest

    def start_run(self, new: NewRun) -> Run:
        body = {
            "experiment": new.experiment,
            "name": new.name,
            "seed": new.seed,
            "params": dict(new.params),
            "code": new.code.to_dict(),
            "environment": new.environment.to_dict(),
            "notes": list(new.notes),
        }
        return wire.run(self._call("POST", "/runs", json=body))

    def get_run(self, run_id: str) -> Run:
        return wire.run(self._call("GET", f"/runs/{_seg(run_id)}"))

    def list_runs(
        self, experiment: str | None = None, run_ids: Sequence[str] | None = None
    ) -> list[Run]:
        ids = ",".join(run_ids) if run_ids is not None else None
        return [wire.run(d) for d in self._items("/runs", {"experiment": experiment, "ids": ids})]

    def log_params(self, run_id: str, params: Mapping[str, Scalar]) -> Run:
        body = {"params": dict(params)}
        return wire.run(self._call("POST", f"/runs/{_seg(run_id)}/params", json=body))

    def log_points(self, run_id: str, points: Sequence[MetricPoint]) -> None:
        body = pack_points(points)
        self._call("POST", f"/runs/{_seg(run_id)}/metrics/packed", json=body)

    def use_dataset(self, run_id: str, ref: str) -> Run:
        body = {"ref": ref}
        return wire.run(self._call("POST", f"/runs/{_seg(run_id)}/datasets", json=body))

    def log_artifact(self, run_id: str, entry: FileEntry) -> None:
        self._call("POST", f"/runs/{_seg(run_id)}/artifacts", json=entry.to_dict())

    def finish_run(
        self, run_id: str, status: str, error: str | None, points: Sequence[MetricPoint]
    ) -> None:
        body = {"status": status, "error": error, "points": pack_points(points)}
        self._call("POST", f"/runs/{_seg(run_id)}/finish", json=body)

    def end_run(self, run_id: str, status: str, error: str | None) -> Run:
        body = {"status": status, "error": error}
        return wire.run(self._call("POST", f"/runs/{_seg(run_id)}/end", json=body))

    def metric_series(self, name: str, run_ids: Sequence[str], max_points: int) -> list[Series]:
        query = {"runs": ",".join(run_ids), "max_points": max_points}
        found = self._call("GET", f"/metrics/{_seg(name)}", params=query)
        return [wire.series(d) for d in found["series"]]

    # datasets and lineage ---------------------------------------------------------------

    def push_dataset(
        self, name: str, files: Sequence[FileEntry], request: DatasetPush
    ) -> DatasetVersion:
        body = {
            "files": [f.to_dict() for f in files],
            "source": request.source,
            "steps": list(request.steps),
            "sampling": request.sampling,
            "semver": request.semver,
            "message": request.message,
            "profiles": dict(request.profiles),
            "if_exists": request.if_exists,
        }
        path = f"/datasets/{_seg(name)}/versions"
        return wire.dataset_version(self._call("POST", path, json=body))

    def get_dataset_version(self, ref: str) -> DatasetVersion:
        parsed = parse_ref(ref, default_latest=True)
        path = f"/datasets/{_seg(parsed.model)}/versions/{_seg(parsed.value)}"
        return wire.dataset_version(self._call("GET", path))

    def list_datasets(self) -> list[dict[str, Any]]:
        return list(self._call("GET", "/datasets")["items"])

    def list_dataset_versions(self, name: str) -> list[DatasetVersion]:
        items = self._items(f"/datasets/{_seg(name)}/versions")
        return [wire.dataset_version(d) for d in items]

    def lineage(self, ref: str, direction: str) -> Lineage:
        query = {"ref": ref, "direction": direction}
        return wire.lineage(self._call("GET", "/lineage", params=query))


def _registration(files: Sequence[FileEntry], request: PushRequest) -> dict[str, Any]:
    return {
        "files": [f.to_dict() for f in files],
        "metadata": request.metadata.to_dict(),
        "semver": request.semver,
        "bump": request.bump,
        "message": request.message,
        "if_exists": request.if_exists,
    }


def _hash(local: LocalFile) -> tuple[FileEntry, tuple[int, int, int]]:
    state = file_state(local.source)
    with open(local.source, "rb") as stream:
        digest, size = copying.sha256_of(stream)
    if size != state[1] or changed_since(local.source, state):
        raise FileChanged(f"{str(local.source)!r} changed while it was being pushed")
    return FileEntry(local.path, size, digest), state


def _file_chunks(local: LocalFile, size: int, progress: Progress | None) -> Iterator[bytes]:
    """The file's first ``size`` bytes: what was hashed (a file that grew is caught after)."""
    left = size
    with open(local.source, "rb") as stream:
        while left and (chunk := stream.read(min(BLOCK, left))):
            left -= len(chunk)
            if progress is not None:
                progress(len(chunk))
            yield chunk


def _error(response: httpx.Response) -> ModelkeepError:
    try:
        body = response.json()["error"]
        cls = ERRORS.get(body["code"]) or BY_STATUS.get(response.status_code, ModelkeepError)
        details = body.get("details")
        return cls(
            str(body["message"]), body.get("hint"), details if isinstance(details, dict) else None
        )
    except (ValueError, KeyError, TypeError):
        return StoreUnavailable(
            f"the server answered {response.status_code} {response.reason_phrase}",
            "check the server's logs",
        )


def _download(response: httpx.Response, digest: str) -> VerifyingReader:
    """A blob streamed from the server, hashed as read; DigestMismatch at the end if bad."""

    def blocks() -> Iterator[bytes]:
        try:
            yield from response.iter_raw(BLOCK)
        except httpx.HTTPError as exc:
            raise DigestMismatch(
                f"blob {digest} ended early: {exc}",
                "pull again; if it repeats run 'modelkeep verify'",
            ) from None

    return VerifyingReader(blocks(), digest, mismatch=_arrived_damaged, on_close=response.close)


def _arrived_damaged(expected: str, actual: str) -> DigestMismatch:
    return DigestMismatch(f"blob {expected} arrived damaged: its bytes hash to {actual}")


def _seconds(duration: timedelta | None) -> int | None:
    """A token's lifetime in whole seconds, rounded up (a positive one stays positive)."""
    if duration is None:
        return None
    return math.ceil(duration.total_seconds())


class _Packer:
    """Collects pieces from the scan's threads; a full pack is sent by the thread that
    filled it, so packs travel in parallel and memory stays a few packs."""

    def __init__(self, send: Callable[[list[Piece]], None]) -> None:
        self._send = send
        self._lock = threading.Lock()
        self._pieces: list[Piece] = []
        self._size = 0

    def add(self, piece: Piece) -> None:
        with self._lock:
            self._pieces.append(piece)
            self._size += len(piece.data)
            if self._size < PACK_BYTES:
                return
            full, self._pieces, self._size = self._pieces, [], 0
        self._send(full)

    def flush(self) -> None:
        with self._lock:
            rest, self._pieces, self._size = self._pieces, [], 0
        if rest:
            self._send(rest)
