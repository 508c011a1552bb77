"""A cadre's own choices about catalogue items: the study plan (kept items) and feedback on suggestions.

Why a file of its own, beside the graph rather than in it: a choice is the cadre's personal data, read with
their records on every recommendation, but written far more often than the catalogue — and every write to the
graph bumps ``store.version()``, which makes every worker rebuild its catalogue snapshot.  So choices live in
one small SQLite file under ``GANXUN_HOME`` (WAL; every gunicorn worker opens the same file), keyed by cadre and
item, one state per pair: the latest word wins.  The states' meaning (what the next list leaves out or pushes
down, and for how long) is the recommender's (:mod:`recommender.learner.choices`), their labels and numbers
live in ``ontology/rules.yaml`` (``feedback``); this module only stores them.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path
from zoneinfo import ZoneInfo

from kg.sqlite import ThreadConnections

__all__ = ["FILE_NAME", "LOCAL_ZONE", "CadreChoices", "Choice"]

#: The file under ``GANXUN_HOME`` that holds every cadre's choices.
FILE_NAME = "choices.db"
#: Days and times people read are Beijing's.
LOCAL_ZONE = ZoneInfo("Asia/Shanghai")

_SCHEMA = """
CREATE TABLE IF NOT EXISTS choice (
    cadre_id TEXT NOT NULL,
    item_id  TEXT NOT NULL,
    state    TEXT NOT NULL,
    at       TEXT NOT NULL,          -- ISO 8601, UTC
    PRIMARY KEY (cadre_id, item_id)
) WITHOUT ROWID;
"""


@dataclass(frozen=True)
class Choice:
    """One cadre's latest word on one item: ``state`` is a key of ``rules.yaml`` ``feedback.states``."""

    item_id: str
    state: str
    at: dt.datetime  # aware, UTC

    @property
    def local(self) -> dt.datetime:
        return self.at.astimezone(LOCAL_ZONE)

    @property
    def day(self) -> dt.date:
        """The Beijing calendar day it was made (windows such as 以后再说's are counted in days from it)."""
        return self.local.date()


class CadreChoices:
    """The choices file at ``path``; one connection per thread (request threads share the object), and any
    number of processes may share the file."""

    def __init__(self, path: Path) -> None:
        self.path = Path(path)
        self._connections = ThreadConnections(self.path)  # personal data: the owner's only
        with self._connections.transaction() as conn:
            conn.execute(_SCHEMA)

    @classmethod
    def at_home(cls, home: Path) -> CadreChoices:
        return cls(Path(home) / FILE_NAME)

    def of(self, cadre_id: str) -> tuple[Choice, ...]:
        """The cadre's choices, latest first."""
        rows = self._connections.get().execute("SELECT item_id, state, at FROM choice WHERE cadre_id = ? ORDER BY at DESC, item_id",
                                    (cadre_id,)).fetchall()
        return tuple(Choice(item, state, dt.datetime.fromisoformat(at)) for item, state, at in rows)

    def put(self, cadre_id: str, item_id: str, state: str, at: dt.datetime | None = None) -> Choice:
        """Record ``state`` for the item (replacing any earlier word on it); ``at`` defaults to now."""
        stamp = (at or dt.datetime.now(dt.timezone.utc)).astimezone(dt.timezone.utc).replace(microsecond=0)
        with self._connections.transaction() as conn:
            conn.execute("INSERT INTO choice (cadre_id, item_id, state, at) VALUES (?, ?, ?, ?) "
                         "ON CONFLICT (cadre_id, item_id) DO UPDATE SET state = excluded.state, at = excluded.at",
                         (cadre_id, item_id, state, stamp.isoformat()))
        return Choice(item_id, state, stamp)

    def remove(self, cadre_id: str, item_ids: Iterable[str]) -> int:
        """Forget the cadre's word on these items (out of the plan, feedback withdrawn); how many were there."""
        with self._connections.transaction() as conn:
            return sum(conn.execute("DELETE FROM choice WHERE cadre_id = ? AND item_id = ?", (cadre_id, item)).rowcount
                       for item in item_ids)
