"""The one typed settings table. Nothing else in modelkeep reads the environment.

Each setting has a name, a type, a default and help text; ``docs/configuration.md``
documents every one (a test checks it). ``Settings.from_env`` reads them once, casting
strictly, and the frozen result is passed down explicitly.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from modelkeep.errors import InvalidInput

PREFIX = "MODELKEEP_"


@dataclass(frozen=True)
class Setting:
    name: str
    type: type
    default: Any
    help: str

    @property
    def env_var(self) -> str:
        return PREFIX + self.name.upper()


SETTINGS: tuple[Setting, ...] = (
    Setting(
        "uri",
        str,
        ".modelkeep",
        "Where the registry lives: a directory (the embedded store) or, with the server, "
        "an http(s) URL. The CLI's --uri overrides it.",
    ),
    Setting(
        "token",
        str,
        "",
        "The bearer token that authenticates to a server when the URI is an http(s) URL "
        "(make one with 'modelkeep users create' or 'modelkeep tokens create').",
    ),
    Setting(
        "database_url",
        str,
        "",
        "SQLAlchemy URL of the metadata database, e.g. "
        "postgresql+psycopg://user@host/db. Empty: SQLite inside the store directory.",
    ),
    Setting(
        "blob_url",
        str,
        "",
        "Where blobs are stored: empty for the blobs/ directory inside the store, or "
        "s3://BUCKET/PREFIX for any S3-compatible object store.",
    ),
    Setting(
        "s3_endpoint_url",
        str,
        "",
        "The S3 endpoint, e.g. http://127.0.0.1:9000 for MinIO. Empty: AWS (or boto3's "
        "AWS_ENDPOINT_URL). Credentials and region come from boto3's usual chain.",
    ),
    Setting(
        "sqlite_busy_timeout_ms",
        int,
        30000,
        "How long a SQLite writer waits for another writer before giving up, in milliseconds.",
    ),
    Setting(
        "gc_grace_seconds",
        int,
        3600,
        "Blobs and temporary files younger than this are never collected, so uploads in "
        "flight survive a concurrent gc.",
    ),
    Setting(
        "signing_key",
        str,
        "",
        "Path to the PEM Ed25519 private key that signs audit checkpoints (servers and "
        "replicas sharing one key). Empty: keys/audit-ed25519.pem in the store directory, "
        "made on first use.",
    ),
    Setting(
        "token_cache_seconds",
        float,
        2.0,
        "How long a server remembers who a token stands for. A revoked token or a changed "
        "grant takes effect within this time; 0 checks the database on every request.",
    ),
    Setting(
        "body_timeout_seconds",
        float,
        30.0,
        "How long a server waits for the next part of a request body before it answers "
        "408 body_timeout, so that stalled uploads do not hold it. Must be positive.",
    ),
    Setting(
        "cache_dir",
        str,
        "~/.cache/modelkeep",
        "Where the client remembers the digests of files it pushed (by path, size and "
        "times), so pushing an unchanged file again reads nothing; and where load keeps "
        "versions' verified files (models/). 'off' disables both.",
    ),
    Setting(
        "progress",
        str,
        "auto",
        "Progress bars for transfers: auto (on a terminal, for transfers over 8 MiB), "
        "always or never.",
    ),
)

_PROGRESS_CHOICES = ("auto", "always", "never")


@dataclass(frozen=True)
class Settings:
    uri: str = ".modelkeep"
    token: str = field(default="", repr=False)
    database_url: str = ""
    blob_url: str = ""
    s3_endpoint_url: str = ""
    sqlite_busy_timeout_ms: int = 30000
    gc_grace_seconds: int = 3600
    token_cache_seconds: float = 2.0
    body_timeout_seconds: float = 30.0
    signing_key: str = ""
    cache_dir: str = "~/.cache/modelkeep"
    progress: str = "auto"

    @classmethod
    def from_env(cls, environ: Mapping[str, str], **overrides: Any) -> Settings:
        """Read every ``MODELKEEP_*`` setting from ``environ``; ``overrides`` win."""
        values: dict[str, Any] = {}
        for setting in SETTINGS:
            raw = environ.get(setting.env_var)
            if raw is not None and raw != "":
                values[setting.name] = _cast(setting, raw)
        values.update({k: v for k, v in overrides.items() if v is not None})
        settings = cls(**values)
        settings.validate()
        return settings

    def validate(self) -> None:
        if self.progress not in _PROGRESS_CHOICES:
            raise InvalidInput(
                f"MODELKEEP_PROGRESS is {self.progress!r}",
                f"set it to one of {', '.join(_PROGRESS_CHOICES)}",
            )
        for name in ("sqlite_busy_timeout_ms", "gc_grace_seconds", "token_cache_seconds"):
            if getattr(self, name) < 0:
                raise InvalidInput(f"{PREFIX}{name.upper()} is negative", "give 0 or more")
        if not self.body_timeout_seconds > 0:  # 0 would let a stalled upload hold a worker
            raise InvalidInput(
                f"{PREFIX}BODY_TIMEOUT_SECONDS is {self.body_timeout_seconds}",
                "give a positive number of seconds",
            )

    @property
    def hash_cache_dir(self) -> Path | None:
        """The client's hash cache directory; None when it is off."""
        if self.cache_dir.strip().lower() in ("", "off"):
            return None
        return Path(self.cache_dir).expanduser()

    def replace(self, **changes: Any) -> Settings:
        return dataclasses.replace(self, **changes)


_NUMBERS: dict[type, str] = {int: "a whole number", float: "a number"}


def _cast(setting: Setting, raw: str) -> Any:
    if setting.type not in _NUMBERS:
        return raw
    try:
        return setting.type(raw)
    except ValueError:
        kind = _NUMBERS[setting.type]
        raise InvalidInput(
            f"{setting.env_var} is {raw!r}, not {kind}", f"set it to {kind}"
        ) from None
