"""The one error tree of modelkeep.

Every error a user can see is a ``ModelkeepError`` with a stable ``code`` (documented in
``docs/errors.md``, tested), an ``exit_code`` for the CLI and an ``http_status`` for the
server. The message says what is wrong; the hint says how to fix it. The CLI prints
``error[<code>]: <message>; <hint>``.

    ModelkeepError                       exit 1
    ├── UsageError                       exit 2   bad command-line usage
    ├── InvalidInput                     exit 1   a value the user gave is malformed
    │   ├── InvalidName
    │   ├── InvalidRef
    │   ├── InvalidMetadata
    │   ├── MissingMetadata
    │   ├── EmptyPush
    │   ├── UnsafePath
    │   ├── UnsupportedUri
    │   ├── InvalidPolicy                a policy or check suite file is refused
    │   ├── UnsafeModelFormat            a model file cannot be loaded without running its code
    │   ├── ColumnNotFound               a dataset lacks a column a check needs
    │   ├── InvalidInferenceInput        inputs do not match a version's signature (HTTP 422)
    │   ├── ModelNotLoadable             a version's model file cannot be read as its format
    │   └── BodyTimeout                  a request body stalled (HTTP 408)
    ├── NotFound                         exit 1
    │   ├── ModelNotFound
    │   ├── VersionNotFound
    │   ├── AliasNotFound
    │   ├── BlobNotFound
    │   ├── UserNotFound
    │   ├── TokenNotFound
    │   ├── GrantNotFound
    │   ├── DatasetNotFound
    │   └── RunNotFound
    ├── Conflict                         exit 1
    │   ├── ModelExists
    │   ├── AliasMoved
    │   ├── SemverExists
    │   ├── DuplicateVersion
    │   ├── AmbiguousRef
    │   ├── ProtectedAlias
    │   ├── VersionArchived
    │   ├── VersionInStage
    │   ├── VersionPurged                HTTP 410
    │   ├── NothingToRollBack
    │   ├── DestinationConflict
    │   ├── FileChanged
    │   ├── UserExists
    │   ├── RunEnded
    │   └── PolicyNotMet                 a promotion lacks what the policy requires
    ├── CheckFailed                      exit 1   a check could not run to its end
    │   └── CheckTimeout
    ├── PredictionFailed                 exit 1   a loaded model raised while predicting
    ├── Unauthenticated                  exit 1   no valid token (HTTP 401)
    ├── Forbidden                        exit 1   the actor's roles do not allow it (HTTP 403)
    │   └── SeparationOfDuties           the policy keeps this person from this step
    ├── StoreError                       exit 1   the store cannot be used as it is
    │   ├── UnknownStoreFormat
    │   ├── StoreMismatch
    │   ├── StoreUnavailable
    │   └── ModelNotReady                a gateway has no verified version to serve (503)
    ├── IOFailure                        exit 1   the operating system refused a read or write
    ├── InternalError                    exit 1   a bug in modelkeep
    └── IntegrityError                   exit 3   bytes do not match their digest
        ├── DigestMismatch
        ├── MissingChunk
        ├── AuditChainBroken
        ├── AttestationInvalid
        └── RecordTampered               a row disagrees with the audit chain or its blob
"""

from __future__ import annotations

from typing import Any, ClassVar


class ModelkeepError(Exception):
    """Base of every error modelkeep reports to a user."""

    code: ClassVar[str] = "error"
    exit_code: ClassVar[int] = 1
    http_status: ClassVar[int] = 500
    default_hint: ClassVar[str] = "see docs/errors.md"

    def __init__(
        self, message: str, hint: str | None = None, details: dict[str, Any] | None = None
    ) -> None:
        super().__init__(message)
        self.message = message
        self.hint = hint or self.default_hint
        self.details = dict(details or {})
        """Facts a script can act on (JSON ``details``: e.g. the version a duplicate
        push names); only some errors carry any."""

    def __str__(self) -> str:
        return f"{self.message}; {self.hint}"

    def to_dict(self) -> dict[str, Any]:
        found: dict[str, Any] = {"code": self.code, "message": self.message, "hint": self.hint}
        if self.details:
            found["details"] = self.details
        return found


class UsageError(ModelkeepError):
    """The command line does not parse."""

    code = "usage"
    exit_code = 2
    http_status = 400
    default_hint = "run the command with --help"


class InvalidInput(ModelkeepError):
    code = "invalid_input"
    http_status = 400
    default_hint = "correct the value and try again"


class InvalidName(InvalidInput):
    code = "invalid_name"
    default_hint = "use lowercase letters, digits, '.', '_' or '-', starting with a letter or digit"


class InvalidRef(InvalidInput):
    code = "invalid_ref"
    default_hint = "name a version as NAME@NUMBER, NAME@SEMVER, NAME@sha256:PREFIX or NAME@ALIAS"


class InvalidMetadata(InvalidInput):
    code = "invalid_metadata"
    default_hint = "give metadata as KEY=VALUE with a non-empty key"


class MissingMetadata(InvalidInput):
    code = "missing_metadata"
    http_status = 422
    default_hint = "give the required fields when pushing (see 'modelkeep models show NAME')"


class EmptyPush(InvalidInput):
    code = "empty_push"
    default_hint = "name at least one file, or a directory that holds files"


class UnsafePath(InvalidInput):
    code = "unsafe_path"
    default_hint = "push only files inside the named paths; replace symlinks that point outside"


class UnsupportedUri(InvalidInput):
    code = "unsupported_uri"
    default_hint = "use a directory path for the embedded store"


class InvalidPolicy(InvalidInput):
    """A policy (or check suite) file that does not parse, or names unknown things."""

    code = "invalid_policy"
    http_status = 422
    default_hint = "fix the file at the line named (see docs/governance.md for the format)"


class UnsafeModelFormat(InvalidInput):
    """Loading this model would run code from its bytes (pickle and friends)."""

    code = "unsafe_model_format"
    http_status = 422
    default_hint = (
        "save scikit-learn models with skops (.skops) or export to ONNX (.onnx); "
        "or check with a command suite"
    )


class ColumnNotFound(InvalidInput):
    code = "column_not_found"
    http_status = 422
    default_hint = "name a column the dataset has ('modelkeep datasets show DATASET@REF')"


class InvalidInferenceInput(InvalidInput):
    """Inputs given to ``predict`` that do not match the version's signature."""

    code = "invalid_inference_input"
    http_status = 422
    default_hint = "give the columns the signature names ('modelkeep show NAME@REF')"


class ModelNotLoadable(InvalidInput):
    """A version's model file is not what its format says (a broken skops zip or ONNX
    graph), or names no model; loading it was refused, not attempted with other code."""

    code = "model_not_loadable"
    http_status = 422
    default_hint = "push the model again, saved with skops or exported to ONNX"


class BodyTimeout(InvalidInput):
    """A client stopped sending a request body it had started (a server answers 408)."""

    code = "body_timeout"
    http_status = 408
    default_hint = "send the body without pausing; check the network to the server"


class NotFound(ModelkeepError):
    code = "not_found"
    http_status = 404
    default_hint = "check the name"


class ModelNotFound(NotFound):
    code = "model_not_found"
    default_hint = "list models with 'modelkeep models list' or create one with 'models create'"


class VersionNotFound(NotFound):
    code = "version_not_found"
    default_hint = "list versions with 'modelkeep versions NAME'"


class AliasNotFound(NotFound):
    code = "alias_not_found"
    default_hint = "list aliases with 'modelkeep alias history NAME'"


class BlobNotFound(NotFound):
    code = "blob_not_found"
    exit_code = 3
    default_hint = "the store lost data: run 'modelkeep verify --all' and restore from a backup"


class DeploymentNotFound(NotFound):
    code = "deployment_not_found"
    default_hint = "deploy a version first: 'modelkeep deploy NAME@REF --env ENV'"


class UserNotFound(NotFound):
    code = "user_not_found"
    default_hint = "list users with 'modelkeep users list'"


class TokenNotFound(NotFound):
    code = "token_not_found"
    default_hint = "list tokens with 'modelkeep tokens list'"


class GrantNotFound(NotFound):
    code = "grant_not_found"
    default_hint = "list users and their roles with 'modelkeep users list'"


class DatasetNotFound(NotFound):
    code = "dataset_not_found"
    default_hint = "list datasets with 'modelkeep datasets list'"


class RunNotFound(NotFound):
    code = "run_not_found"
    default_hint = "list runs with 'modelkeep runs list'"


class StoreNotFound(NotFound):
    code = "store_not_found"
    default_hint = (
        "point --uri (or MODELKEEP_URI) at an existing store; a write such as "
        "'modelkeep models create NAME' makes a new one"
    )


class Conflict(ModelkeepError):
    code = "conflict"
    http_status = 409
    default_hint = "reload the current state and try again"


class ModelExists(Conflict):
    code = "model_exists"
    default_hint = "choose another name, or push versions to the existing model"


class AliasMoved(Conflict):
    code = "alias_moved"
    default_hint = "someone moved it meanwhile; read its current target and decide again"


class DeploymentMoved(Conflict):
    code = "deployment_moved"
    default_hint = (
        "someone changed the deployment meanwhile; read it with 'modelkeep deploy status' "
        "and decide again"
    )


class SemverExists(Conflict):
    code = "semver_exists"
    default_hint = "choose another --version, or use --bump"


class DuplicateVersion(Conflict):
    code = "duplicate_version"
    default_hint = (
        "use that version, or push with --if-exists reuse to get it back; "
        "an archived one: 'modelkeep unarchive NAME@N'"
    )


class AmbiguousRef(Conflict):
    code = "ambiguous_ref"
    default_hint = "give more hex digits of the digest"


class ProtectedAlias(Conflict):
    code = "protected_alias"
    default_hint = "move stages only with 'modelkeep promote' and 'modelkeep rollback'"


class VersionArchived(Conflict):
    code = "version_archived"
    default_hint = (
        "archived versions can be shown and pulled, never promoted or aliased; "
        "'modelkeep unarchive NAME@N' makes one usable again"
    )


class VersionInStage(Conflict):
    code = "version_in_stage"
    default_hint = "promote another version to that stage, or roll it back, first"


class VersionPurged(Conflict):
    """Retention released the version's files: it can be shown, never pulled."""

    code = "version_purged"
    http_status = 410
    default_hint = (
        "pull a version that is kept ('modelkeep versions NAME'); "
        "its metadata stays ('modelkeep show')"
    )


class NothingToRollBack(Conflict):
    code = "nothing_to_roll_back"
    default_hint = "promote a version explicitly with 'modelkeep promote'"


class DestinationConflict(Conflict):
    code = "destination_conflict"
    default_hint = "pull into an empty directory, or pass --force to overwrite"


class FileChanged(Conflict):
    code = "file_changed"
    default_hint = "wait until the file is completely written, then push again"


class UserExists(Conflict):
    code = "user_exists"
    default_hint = "choose another name, or give the user a new token with 'tokens create'"


class RunEnded(Conflict):
    code = "run_ended"
    default_hint = "start a new run"


class PolicyNotMet(Conflict):
    """The message lists every unmet rule of the policy."""

    code = "policy_not_met"
    default_hint = "see what is missing with 'modelkeep policy test NAME@REF --to STAGE'"


class CheckFailed(ModelkeepError):
    """A check could not run to its end (its command failed, its output was not metrics)."""

    code = "check_failed"
    http_status = 422
    default_hint = "fix the check and run it again; nothing was recorded"


class CheckTimeout(CheckFailed):
    code = "check_timeout"
    default_hint = "raise the check's timeout in the suite file, or make the command faster"


class PredictionFailed(ModelkeepError):
    """The model itself raised on inputs that match its signature."""

    code = "prediction_failed"
    http_status = 500
    default_hint = "the model could not predict on these inputs; try it on them with mk.load"


class Unauthenticated(ModelkeepError):
    """No valid credentials: the token is missing, unknown, revoked or expired."""

    code = "unauthenticated"
    http_status = 401
    default_hint = "set MODELKEEP_TOKEN to a valid token (an admin makes one with 'tokens create')"


class Forbidden(ModelkeepError):
    """The actor is known, but none of its roles allows the action; the message says why."""

    code = "forbidden"
    http_status = 403
    default_hint = "ask an admin for a role that allows it ('modelkeep users grant')"


class SeparationOfDuties(Forbidden):
    """The policy keeps one person from doing two steps of one promotion."""

    code = "separation_of_duties"
    default_hint = "ask another person with the role to do it"


class BlobNotReadable(Forbidden):
    """A push names a digest its pusher neither uploaded nor may read (through a version,
    run or dataset): knowing a digest is not owning the bytes."""

    code = "blob_not_readable"
    default_hint = "upload the file's bytes in this push (the client does when it is missing)"


class StoreError(ModelkeepError):
    code = "store_error"
    http_status = 503
    default_hint = "check the store location and its permissions"


class UnknownStoreFormat(StoreError):
    code = "unknown_store_format"
    default_hint = "upgrade modelkeep to a version that knows this store format"


class StoreMismatch(StoreError):
    code = "store_mismatch"
    default_hint = "point MODELKEEP_DATABASE_URL and the blob store at the same registry"


class StoreUnavailable(StoreError):
    code = "store_unavailable"
    default_hint = "check that the database is running and MODELKEEP_DATABASE_URL is right"


class ModelNotReady(StoreError):
    """A gateway has no verified version of a deployed model to serve (yet)."""

    code = "model_not_ready"
    default_hint = "see the reason in GET /v2/health/ready; fix the version or the deployment"


class IOFailure(ModelkeepError):
    code = "io_error"
    http_status = 500
    default_hint = "check free space and permissions of the paths involved"


class InternalError(ModelkeepError):
    code = "internal"
    http_status = 500
    default_hint = "this is a bug in modelkeep; please report it with the command you ran"


class IntegrityError(ModelkeepError):
    code = "integrity_error"
    exit_code = 3
    http_status = 500
    default_hint = "run 'modelkeep verify --all' and restore damaged blobs from a backup"


class DigestMismatch(IntegrityError):
    code = "digest_mismatch"


class MissingChunk(IntegrityError):
    code = "missing_chunk"
    default_hint = (
        "run 'modelkeep verify --all'; restore the chunk from a backup or push the file again"
    )


class AuditChainBroken(IntegrityError):
    code = "audit_chain_broken"
    default_hint = "the audit log was changed outside modelkeep; restore the database from a backup"


class AttestationInvalid(IntegrityError):
    """A signed attestation does not verify: signature, evidence or files."""

    code = "attestation_invalid"
    default_hint = "do not trust this version's promotion record; see the named problem"


class BundleInvalid(IntegrityError):
    """A serving bundle does not verify: its signature, a digest or its layout."""

    code = "bundle_invalid"
    default_hint = "do not serve this bundle; build it again with 'modelkeep bundle build'"


class RecordTampered(IntegrityError):
    """A database row (an alias, a version, its files, a recipe) disagrees with what the
    audit chain recorded or with the content-addressed blob it must match."""

    code = "record_tampered"
    default_hint = (
        "the database was changed outside modelkeep; run 'modelkeep verify --all' to list "
        "every mismatch and restore the database from a backup"
    )


def all_error_classes() -> list[type[ModelkeepError]]:
    """Every error class, in tree order (used by the docs and their test)."""
    found: list[type[ModelkeepError]] = []

    def walk(cls: type[ModelkeepError]) -> None:
        found.append(cls)
        for sub in cls.__subclasses__():
            walk(sub)

    walk(ModelkeepError)
    return found
