"""The one SQLite transaction shape every file-backed part uses (the embedded store, accounts, jobs), and the
one way they create their files: readable by their owner only."""

from __future__ import annotations

import os
import sqlite3
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

__all__ = ["immediate", "private_file"]


def private_file(path: Path) -> None:
    """Create ``path`` (empty) with mode 0600 if it is missing, and narrow it and its ``-wal`` / ``-shm`` files to
    0600 if they exist: these databases hold personal records and password hashes, and SQLite creates the WAL
    and shared-memory files with the database file's mode.  Call before the first ``sqlite3.connect``."""
    path = Path(path)
    os.close(os.open(path, os.O_CREAT | os.O_WRONLY, 0o600))  # an empty file is a new SQLite database
    for part in (path, path.with_name(path.name + "-wal"), path.with_name(path.name + "-shm")):
        if part.exists():
            os.chmod(part, 0o600)


@contextmanager
def immediate(conn: sqlite3.Connection) -> Iterator[sqlite3.Connection]:
    """``BEGIN IMMEDIATE`` … ``COMMIT``, rolled back on any error.

    The write lock is taken before the first read, so a check-then-write (one running job per kind, a unique
    user name, a schema migration) is atomic across processes, not only across threads.  ``conn`` must be in
    autocommit mode (``isolation_level=None``) so that nothing else opens a transaction behind our back.
    """
    conn.execute("BEGIN IMMEDIATE")
    try:
        yield conn
    except BaseException:
        conn.execute("ROLLBACK")
        raise
    conn.execute("COMMIT")
