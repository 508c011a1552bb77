"""The one SQLite transaction shape every file-backed part uses (the embedded store, accounts, jobs), and the
one way they create their files: readable by their owner only."""

from __future__ import annotations

import os
import sqlite3
import threading
from collections.abc import Iterator
import contextlib
from contextlib import contextmanager
from pathlib import Path

__all__ = ["ThreadConnections", "immediate", "private_file"]


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


class ThreadConnections:
    """One autocommit connection per thread to the private file at ``path`` (request threads share the owner
    object; a connection is never used by two threads at once), in WAL mode so that readers do not wait for a
    writer, with any further pragmas (``foreign_keys=ON``) run once per connection."""

    def __init__(self, path: Path, *pragmas: str) -> None:
        self.path = Path(path)
        self.pragmas = ("journal_mode=WAL", *pragmas)
        self._local = threading.local()
        self.path.parent.mkdir(parents=True, exist_ok=True)
        private_file(self.path)

    def get(self) -> sqlite3.Connection:
        """This thread's connection, opened on first use."""
        conn = getattr(self._local, "conn", None)
        if conn is None:
            conn = sqlite3.connect(self.path, isolation_level=None, check_same_thread=False, timeout=30)
            for pragma in self.pragmas:
                conn.execute(f"PRAGMA {pragma}")  # our own constants, not input
            self._local.conn = conn
        return conn

    def transaction(self) -> contextlib.AbstractContextManager[sqlite3.Connection]:
        """This thread's connection inside :func:`immediate` (``with store.transaction() as conn: …``)."""
        return immediate(self.get())
