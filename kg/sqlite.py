"""The one SQLite transaction shape every file-backed part uses (the embedded store, accounts, jobs)."""

from __future__ import annotations

import sqlite3
from collections.abc import Iterator
from contextlib import contextmanager

__all__ = ["immediate"]


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
