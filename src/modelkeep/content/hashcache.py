"""What files this machine already hashed, so pushing an unchanged file costs a stat.

Keyed by the file's path and its stat (device, inode, size, modification and change
times in ns; the change time moves on any write, and no user can set it), like git's
index. Only a file that a push read whole and found unchanged is remembered. The cache
is an optimisation: if it cannot be read or written, pushes just hash again.
"""

from __future__ import annotations

import contextlib
import os
import sqlite3
from pathlib import Path

SCHEMA = """CREATE TABLE IF NOT EXISTS files (
    path TEXT PRIMARY KEY, dev INTEGER, ino INTEGER, size INTEGER,
    mtime_ns INTEGER, ctime_ns INTEGER, digest TEXT NOT NULL)"""

StatKey = tuple[int, int, int, int, int]


def stat_key(path: Path) -> StatKey:
    st = os.stat(path)
    return (st.st_dev, st.st_ino, st.st_size, st.st_mtime_ns, st.st_ctime_ns)


class HashCache:
    def __init__(self, directory: Path | None) -> None:
        """``directory`` None: remember nothing."""
        self._file = directory / "hashes.sqlite" if directory is not None else None

    def _connect(self) -> sqlite3.Connection | None:
        if self._file is None:
            return None
        try:
            self._file.parent.mkdir(parents=True, exist_ok=True)
            conn = sqlite3.connect(self._file, timeout=5)
            conn.execute(SCHEMA)
            return conn
        except (OSError, sqlite3.Error):
            return None

    def lookup(self, path: Path) -> str | None:
        """The digest remembered for ``path`` if it has not changed since; else None."""
        conn = self._connect()
        if conn is None:
            return None
        with contextlib.closing(conn):
            try:
                row = conn.execute(
                    "SELECT dev, ino, size, mtime_ns, ctime_ns, digest FROM files WHERE path = ?",
                    (str(path.resolve()),),
                ).fetchone()
                key = stat_key(path)
            except (OSError, sqlite3.Error):
                return None
        if row is None or tuple(row[:5]) != key:
            return None
        return str(row[5])

    def remember(self, path: Path, key: StatKey, digest: str) -> None:
        """Record ``digest`` for ``path`` as it was when ``key`` was taken, if it still is."""
        conn = self._connect()
        if conn is None:
            return
        with contextlib.closing(conn), contextlib.suppress(OSError, sqlite3.Error):
            if stat_key(path) != key:
                return
            with conn:
                conn.execute(
                    "INSERT OR REPLACE INTO files VALUES (?, ?, ?, ?, ?, ?, ?)",
                    (str(path.resolve()), *key, digest),
                )
