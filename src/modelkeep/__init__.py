"""modelkeep: versioned, content-addressed, audited models.

import modelkeep
mk = modelkeep.connect()          # ./.modelkeep, or MODELKEEP_URI
v = mk.push("fraud", ["model.safetensors"], metrics={"auc": 0.91})
mk.promote(f"fraud@{v.number}", to="production", reason="beats v1")
"""

from modelkeep.client.client import Client, PullResult, connect
from modelkeep.domain.aliases import AliasEvent, Resolution
from modelkeep.domain.audit import AuditEvent, ChainReport
from modelkeep.domain.diff import Change, VersionDiff
from modelkeep.domain.maintenance import DamagedBlob, GcReport, VerifyReport
from modelkeep.domain.manifest import FileEntry, Manifest
from modelkeep.domain.retention import RetentionPolicy
from modelkeep.domain.storage_report import StorageReport
from modelkeep.domain.users import IssuedToken, Token, User
from modelkeep.domain.versions import Model, Version, VersionMetadata
from modelkeep.errors import ModelkeepError
from modelkeep.version import __version__

__all__ = [
    "AliasEvent",
    "AuditEvent",
    "ChainReport",
    "Change",
    "Client",
    "DamagedBlob",
    "FileEntry",
    "GcReport",
    "IssuedToken",
    "Manifest",
    "Model",
    "ModelkeepError",
    "PullResult",
    "Resolution",
    "RetentionPolicy",
    "StorageReport",
    "Token",
    "User",
    "VerifyReport",
    "Version",
    "VersionDiff",
    "VersionMetadata",
    "__version__",
    "connect",
]
