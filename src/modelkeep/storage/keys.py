"""The store's Ed25519 audit key in a PEM file, outside the database.

The embedded store keeps it at ``<store>/keys/audit-ed25519.pem`` (mode 0600), made on
first use, with its public key next to it (``audit-ed25519.pub.pem``, 0644) for auditors.
``MODELKEEP_SIGNING_KEY`` names a PEM private key instead (servers and replicas sharing
one key); that file is never made here.
"""

from __future__ import annotations

import contextlib
import os
import tempfile
from pathlib import Path

from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey, Ed25519PublicKey

from modelkeep.errors import InvalidInput, StoreUnavailable

KEY_DIRECTORY = "keys"
PRIVATE_KEY_FILE = "audit-ed25519.pem"
PUBLIC_KEY_FILE = "audit-ed25519.pub.pem"


def default_key_path(store_root: Path) -> Path:
    return store_root / KEY_DIRECTORY / PRIVATE_KEY_FILE


class FileAuditSigner:
    """The AuditSigner port on a PEM file. ``may_create``: make the key on first use."""

    def __init__(self, path: Path, *, may_create: bool) -> None:
        self.path = path
        self.public_path = path.with_name(PUBLIC_KEY_FILE) if may_create else None
        self.location = str(path)
        self._may_create = may_create
        self._key: Ed25519PrivateKey | None = None

    def public_key(self, *, create: bool = False) -> bytes | None:
        key = self._private(create=create)
        if key is not None:
            return key.public_key().public_bytes(
                serialization.Encoding.Raw, serialization.PublicFormat.Raw
            )
        return self._public_only()

    def sign(self, data: bytes) -> bytes:
        key = self._private(create=True)
        assert key is not None  # _private raises rather than return None when creating
        return key.sign(data)

    # the files ----------------------------------------------------------------------

    def _private(self, *, create: bool) -> Ed25519PrivateKey | None:
        if self._key is not None:
            return self._key
        try:
            data = self.path.read_bytes()
        except FileNotFoundError:
            if not create:
                return None
            data = self._create()
        except PermissionError:
            if not create:
                return None  # a reader of the store may still check with the public key
            raise StoreUnavailable(
                f"cannot read the audit signing key {self.path}",
                "run as the store's owner, or set MODELKEEP_SIGNING_KEY",
            ) from None
        self._key = _load_private(data, self.path)
        self._publish(self._key)
        return self._key

    def _publish(self, key: Ed25519PrivateKey) -> None:
        """Write the public key next to the private one, if it is not there yet."""
        if self.public_path is None or self.public_path.exists():
            return
        public = key.public_key().public_bytes(
            serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
        )
        with contextlib.suppress(OSError):  # a read-only store: the private key suffices
            _create_exclusive(self.public_path, public, 0o644)

    def _public_only(self) -> bytes | None:
        if self.public_path is None:
            return None
        try:
            data = self.public_path.read_bytes()
        except (FileNotFoundError, PermissionError):
            return None
        try:
            key = serialization.load_pem_public_key(data)
        except ValueError:
            key = None
        if not isinstance(key, Ed25519PublicKey):
            raise InvalidInput(f"{self.public_path} is not an Ed25519 public key in PEM")
        return key.public_bytes(serialization.Encoding.Raw, serialization.PublicFormat.Raw)

    def _create(self) -> bytes:
        if not self._may_create:
            raise InvalidInput(
                f"MODELKEEP_SIGNING_KEY names {self.path}, which does not exist",
                f"make one with 'openssl genpkey -algorithm ed25519 -out {self.path}'",
            )
        private = Ed25519PrivateKey.generate().private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        )
        try:
            self.path.parent.mkdir(mode=0o700, parents=True, exist_ok=True)
            _create_exclusive(self.path, private, 0o600)
        except OSError as exc:
            raise StoreUnavailable(
                f"cannot create the audit signing key {self.path}: {exc.strerror}",
                "check the store directory's permissions, or set MODELKEEP_SIGNING_KEY",
            ) from None
        return self.path.read_bytes()  # ours, or the one a concurrent process made first


def _load_private(data: bytes, path: Path) -> Ed25519PrivateKey:
    try:
        key = serialization.load_pem_private_key(data, password=None)
    except (ValueError, TypeError):
        key = None
    if not isinstance(key, Ed25519PrivateKey):
        raise InvalidInput(
            f"{path} is not an unencrypted Ed25519 private key in PEM",
            "make one with 'openssl genpkey -algorithm ed25519 -out PATH'",
        )
    return key


def _create_exclusive(path: Path, data: bytes, mode: int) -> bool:
    """Write ``data`` to ``path`` with ``mode`` unless it exists, atomically; True if we
    wrote it (two processes racing make one key, and both use it)."""
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=".key-")
    try:
        with open(fd, "wb") as out:
            out.write(data)
            out.flush()
            os.fsync(out.fileno())
        os.chmod(tmp, mode)
        try:
            os.link(tmp, path)
        except FileExistsError:
            return False
        return True
    finally:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(tmp)


# the OpenSSF model-signing key -----------------------------------------------------------

OPENSSF_PRIVATE_KEY_FILE = "openssf-p256.pem"
OPENSSF_PUBLIC_KEY_FILE = "openssf-p256.pub.pem"


class FileModelSigner:
    """The ModelSigner port: an ECDSA P-256 key in a PEM file beside the audit key
    (``<keys>/openssf-p256.pem``, 0600), made on first use. OpenSSF's model_signing
    accepts only NIST curves, so its signatures cannot use the Ed25519 audit key."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self.location = str(path)
        self._key: ec.EllipticCurvePrivateKey | None = None

    def public_key_pem(self) -> bytes:
        """The SubjectPublicKeyInfo PEM of the key (made now if there is none)."""
        return (
            self._private()
            .public_key()
            .public_bytes(
                serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
            )
        )

    def sign(self, data: bytes) -> bytes:
        """The ECDSA P-256 SHA-256 signature of ``data``, DER-encoded."""
        return self._private().sign(data, ec.ECDSA(hashes.SHA256()))

    def _private(self) -> ec.EllipticCurvePrivateKey:
        if self._key is not None:
            return self._key
        try:
            data = self.path.read_bytes()
        except FileNotFoundError:
            data = self._create()
        except PermissionError:
            raise StoreUnavailable(
                f"cannot read the model-signing key {self.path}", "run as the store's owner"
            ) from None
        try:
            key = serialization.load_pem_private_key(data, password=None)
        except (ValueError, TypeError):
            key = None
        if not isinstance(key, ec.EllipticCurvePrivateKey) or key.curve.name != "secp256r1":
            raise InvalidInput(
                f"{self.path} is not an unencrypted P-256 private key in PEM",
                f"remove it to have a new one made, or make one with 'openssl genpkey "
                f"-algorithm EC -pkeyopt ec_paramgen_curve:P-256 -out {self.path}'",
            )
        self._key = key
        return key

    def _create(self) -> bytes:
        key = ec.generate_private_key(ec.SECP256R1())
        private = key.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        )
        public = key.public_key().public_bytes(
            serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
        )
        try:
            self.path.parent.mkdir(mode=0o700, parents=True, exist_ok=True)
            if _create_exclusive(self.path, private, 0o600):
                with contextlib.suppress(OSError):
                    _create_exclusive(self.path.with_name(OPENSSF_PUBLIC_KEY_FILE), public, 0o644)
        except OSError as exc:
            raise StoreUnavailable(
                f"cannot create the model-signing key {self.path}: {exc.strerror}",
                "check the key directory's permissions",
            ) from None
        return self.path.read_bytes()  # ours, or the one a concurrent process made first


def model_signer_beside(audit_key: Path) -> FileModelSigner:
    """The P-256 model-signing key in the directory of the audit key."""
    return FileModelSigner(audit_key.with_name(OPENSSF_PRIVATE_KEY_FILE))
