"""Users, login sessions, API tokens and the audit log, in a small SQLite database of their own under
``Settings.home`` (created readable by its owner only: it holds password hashes).

Kept apart from the graph store on purpose: the graph can be rebuilt from corpora at any time, accounts and
the audit trail cannot.  Passwords are stored as werkzeug hashes; session ids and API tokens only as SHA-256
digests.  Sessions live here, not in the cookie, so that they can be revoked: the cookie carries only a random
session id, which logout deletes, and a password change, a role change or a deactivation deletes every session
and token of that user.  Passwords must pass :func:`check_password` (length, not all digits, not common).
"""

from __future__ import annotations

import datetime as dt
import hashlib
import json
import secrets
import sqlite3
from functools import cache
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from flask import Flask, current_app
from werkzeug.security import check_password_hash, generate_password_hash

from kg.sqlite import ThreadConnections

__all__ = [
    "ROLES",
    "AccountError",
    "Accounts",
    "AuditEntry",
    "PASSWORD_MIN_LENGTH",
    "User",
    "accounts",
    "check_password",
    "init_app",
]

#: Application roles (not part of the domain ontology): identifier → Chinese name.
ROLES: dict[str, str] = {"cadre": "学员", "designer": "课程设计者", "evaluator": "评估者", "admin": "管理员"}

PASSWORD_MIN_LENGTH = 10
COMMON_PASSWORDS_FILE = Path(__file__).parent / "data" / "common-passwords.txt"

_SCHEMA = """
CREATE TABLE IF NOT EXISTS users (
    id INTEGER PRIMARY KEY,
    username TEXT NOT NULL UNIQUE,
    display_name TEXT NOT NULL,
    password_hash TEXT NOT NULL,
    role TEXT NOT NULL,
    cadre_id TEXT,
    active INTEGER NOT NULL DEFAULT 1,
    created TEXT NOT NULL
);
CREATE TABLE IF NOT EXISTS tokens (
    digest TEXT PRIMARY KEY,
    user_id INTEGER NOT NULL REFERENCES users(id) ON DELETE CASCADE,
    created TEXT NOT NULL,
    expires TEXT NOT NULL
);
CREATE TABLE IF NOT EXISTS sessions (
    digest TEXT PRIMARY KEY,
    user_id INTEGER NOT NULL REFERENCES users(id) ON DELETE CASCADE,
    created TEXT NOT NULL,
    expires TEXT NOT NULL
);
CREATE TABLE IF NOT EXISTS audit (
    id INTEGER PRIMARY KEY,
    at TEXT NOT NULL,
    username TEXT,
    action TEXT NOT NULL,
    target TEXT,
    detail TEXT NOT NULL DEFAULT '{}',
    address TEXT
);
CREATE INDEX IF NOT EXISTS audit_at ON audit(at);
"""


class AccountError(ValueError):
    """A request about accounts that cannot be honoured; ``field`` names the input at fault."""

    def __init__(self, message: str, field: str | None = None) -> None:
        super().__init__(message)
        self.field = field


@dataclass(frozen=True)
class User:
    id: int
    username: str
    display_name: str
    role: str
    cadre_id: str | None
    active: bool
    created: str

    @property
    def role_name(self) -> str:
        return ROLES.get(self.role, self.role)

    def to_dict(self) -> dict[str, Any]:
        return {
            "id": self.id,
            "username": self.username,
            "display_name": self.display_name,
            "role": self.role,
            "role_name": self.role_name,
            "cadre_id": self.cadre_id,
            "active": self.active,
            "created": self.created,
        }


@dataclass(frozen=True)
class AuditEntry:
    id: int
    at: str
    username: str | None
    action: str
    target: str | None
    detail: dict[str, Any]
    address: str | None

    def to_dict(self) -> dict[str, Any]:
        return dict(self.__dict__)


def _now() -> dt.datetime:
    return dt.datetime.now(dt.timezone.utc).replace(microsecond=0)


def _digest(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()


@cache
def _common_passwords() -> frozenset[str]:
    lines = COMMON_PASSWORDS_FILE.read_text(encoding="utf-8").splitlines()
    return frozenset(line.strip().lower() for line in lines if line.strip() and not line.startswith("#"))


def check_password(password: str, username: str | None = None) -> None:
    """Refuse a password an attacker would try first (:class:`AccountError` naming the field ``password``): shorter
    than :data:`PASSWORD_MIN_LENGTH`, only digits, the user name, or one of the common passwords shipped in
    ``api/data/common-passwords.txt`` (compared without regard to case)."""
    if len(password) < PASSWORD_MIN_LENGTH:
        raise AccountError(f"密码至少 {PASSWORD_MIN_LENGTH} 个字符", "password")
    if password.isdigit():
        raise AccountError("密码不能全是数字", "password")
    if username and password.casefold() == username.casefold():
        raise AccountError("密码不能与用户名相同", "password")
    if password.lower() in _common_passwords():
        raise AccountError("密码过于常见，容易被猜中，请换一个", "password")


class Accounts:
    """The accounts database; one connection per thread (the server runs requests in threads)."""

    def __init__(self, path: Path, token_days: int = 30, password_method: str = "scrypt",
                 session_hours: float = 8) -> None:
        self.path = Path(path)
        self.token_days = token_days
        self.session_hours = session_hours
        self.password_method = password_method
        self._connections = ThreadConnections(self.path, "foreign_keys=ON")
        self._connections.get().executescript(_SCHEMA)
        self._dummy_hash = generate_password_hash(secrets.token_hex(8), password_method)

    # ─── users ───
    @staticmethod
    def _user(row: tuple) -> User:
        return User(row[0], row[1], row[2], row[3], row[4], bool(row[5]), row[6])

    _USER_COLUMNS = "id, username, display_name, role, cadre_id, active, created"

    def create_user(
        self, username: str, password: str, role: str, display_name: str | None = None, cadre_id: str | None = None
    ) -> User:
        """Add a user; a cadre account must name the cadre whose records it may see."""
        self._check(role, cadre_id, password, username)
        try:
            with self._connections.transaction() as conn:
                cur = conn.execute(
                    "INSERT INTO users(username, display_name, password_hash, role, cadre_id, created) VALUES (?,?,?,?,?,?)",
                    (username, display_name or username, generate_password_hash(password, self.password_method), role,
                     cadre_id if role == "cadre" else None, _now().isoformat()),
                )
        except sqlite3.IntegrityError:
            raise AccountError(f"用户名『{username}』已存在", "username") from None
        return self.get(cur.lastrowid)  # type: ignore[return-value]

    @staticmethod
    def _check(role: str, cadre_id: str | None, password: str | None, username: str | None) -> None:
        if role not in ROLES:
            raise AccountError("角色应为以下之一：" + "、".join(ROLES), "role")
        if role == "cadre" and not cadre_id:
            raise AccountError("学员账号必须关联一名干部（cadre_id）", "cadre_id")
        if password is not None:
            check_password(password, username)

    def update_user(
        self,
        user_id: int,
        *,
        role: str | None = None,
        cadre_id: str | None = None,
        display_name: str | None = None,
        active: bool | None = None,
        password: str | None = None,
    ) -> User:
        """Change a user; a new password, another role or a deactivation ends every session and token of theirs
        (whoever holds one must log in again under the new terms)."""
        user = self.get(user_id)
        if user is None:
            raise LookupError(user_id)
        role = role or user.role
        cadre_id = cadre_id if cadre_id is not None else user.cadre_id
        self._check(role, cadre_id, password, user.username)
        with self._connections.transaction() as conn:
            conn.execute(
                "UPDATE users SET role=?, cadre_id=?, display_name=?, active=? WHERE id=?",
                (role, cadre_id if role == "cadre" else None, display_name or user.display_name,
                 int(user.active if active is None else active), user_id),
            )
            if password is not None:
                conn.execute("UPDATE users SET password_hash=? WHERE id=?",
                             (generate_password_hash(password, self.password_method), user_id))
            if active is False or password is not None or role != user.role:
                conn.execute("DELETE FROM tokens WHERE user_id=?", (user_id,))
                conn.execute("DELETE FROM sessions WHERE user_id=?", (user_id,))
        return self.get(user_id)  # type: ignore[return-value]

    def get(self, user_id: int) -> User | None:
        row = self._connections.get().execute(f"SELECT {self._USER_COLUMNS} FROM users WHERE id=?", (user_id,)).fetchone()
        return self._user(row) if row else None

    def by_username(self, username: str) -> User | None:
        row = self._connections.get().execute(f"SELECT {self._USER_COLUMNS} FROM users WHERE username=?", (username,)).fetchone()
        return self._user(row) if row else None

    def users(self) -> list[User]:
        rows = self._connections.get().execute(f"SELECT {self._USER_COLUMNS} FROM users ORDER BY id").fetchall()
        return [self._user(r) for r in rows]

    def authenticate(self, username: str, password: str) -> User | None:
        """The active user with this password, or None (the same answer for an unknown name and a wrong password)."""
        row = self._connections.get().execute(
            f"SELECT {self._USER_COLUMNS}, password_hash FROM users WHERE username=?", (username,)
        ).fetchone()
        if row is None:
            check_password_hash(self._dummy_hash, password)  # same cost either way
            return None
        user = self._user(row[:-1])
        return user if user.active and check_password_hash(row[-1], password) else None

    # ─── login sessions (the cookie holds only the id) ───
    def open_session(self, user: User) -> str:
        """A new session for the user, valid for ``session_hours``; returns its id (only the digest is stored)."""
        session_id = secrets.token_urlsafe(32)
        now = _now()
        with self._connections.transaction() as conn:
            conn.execute("DELETE FROM sessions WHERE expires < ?", (now.isoformat(),))
            conn.execute("INSERT INTO sessions(digest, user_id, created, expires) VALUES (?,?,?,?)",
                         (_digest(session_id), user.id, now.isoformat(),
                          (now + dt.timedelta(hours=self.session_hours)).isoformat()))
        return session_id

    def user_for_session(self, session_id: str) -> User | None:
        """The active user of a session that has neither ended nor expired, else None."""
        row = self._connections.get().execute(
            f"SELECT {', '.join('u.' + c for c in self._USER_COLUMNS.split(', '))} FROM sessions s "
            "JOIN users u ON u.id = s.user_id WHERE s.digest=? AND s.expires >= ? AND u.active=1",
            (_digest(session_id), _now().isoformat()),
        ).fetchone()
        return self._user(row) if row else None

    def end_session(self, session_id: str) -> None:
        with self._connections.transaction() as conn:
            conn.execute("DELETE FROM sessions WHERE digest=?", (_digest(session_id),))

    # ─── tokens ───
    def issue_token(self, user: User) -> tuple[str, str]:
        """A new bearer token for the user and its expiry (ISO time); only its digest is stored."""
        token = secrets.token_urlsafe(32)
        now = _now()
        expires = (now + dt.timedelta(days=self.token_days)).isoformat()
        with self._connections.transaction() as conn:
            conn.execute("DELETE FROM tokens WHERE expires < ?", (now.isoformat(),))
            conn.execute("INSERT INTO tokens(digest, user_id, created, expires) VALUES (?,?,?,?)",
                         (_digest(token), user.id, now.isoformat(), expires))
        return token, expires

    def user_for_token(self, token: str) -> User | None:
        row = self._connections.get().execute(
            f"SELECT {', '.join('u.' + c for c in self._USER_COLUMNS.split(', '))} FROM tokens t "
            "JOIN users u ON u.id = t.user_id WHERE t.digest=? AND t.expires >= ? AND u.active=1",
            (_digest(token), _now().isoformat()),
        ).fetchone()
        return self._user(row) if row else None

    def revoke_token(self, token: str) -> None:
        with self._connections.transaction() as conn:
            conn.execute("DELETE FROM tokens WHERE digest=?", (_digest(token),))

    # ─── audit ───
    def audit(self, username: str | None, action: str, target: str | None = None,
              detail: dict[str, Any] | None = None, address: str | None = None) -> None:
        with self._connections.transaction() as conn:
            conn.execute(
                "INSERT INTO audit(at, username, action, target, detail, address) VALUES (?,?,?,?,?,?)",
                (_now().isoformat(), username, action, target,
                 json.dumps(detail or {}, ensure_ascii=False, default=str), address),
            )

    def audit_log(self, limit: int = 50, offset: int = 0, username: str | None = None,
                  action: str | None = None) -> tuple[int, list[AuditEntry]]:
        where, params = [], []
        if username:
            where.append("username = ?")
            params.append(username)
        if action:
            where.append("action = ?")
            params.append(action)
        clause = f"WHERE {' AND '.join(where)}" if where else ""
        conn = self._connections.get()
        total = conn.execute(f"SELECT count(*) FROM audit {clause}", params).fetchone()[0]
        rows = conn.execute(
            f"SELECT id, at, username, action, target, detail, address FROM audit {clause} "
            "ORDER BY id DESC LIMIT ? OFFSET ?", [*params, limit, offset]
        ).fetchall()
        return total, [AuditEntry(r[0], r[1], r[2], r[3], r[4], json.loads(r[5]), r[6]) for r in rows]


def init_app(app: Flask) -> None:
    """One accounts database per app, at ``ACCOUNTS_DB``; passwords hashed with ``PASSWORD_METHOD``; sessions
    last ``SESSION_HOURS``."""
    app.extensions["ganxun.accounts"] = Accounts(Path(app.config["ACCOUNTS_DB"]), app.config["TOKEN_DAYS"],
                                                 app.config["PASSWORD_METHOD"], app.config["SESSION_HOURS"])


def accounts() -> Accounts:
    return current_app.extensions["ganxun.accounts"]
