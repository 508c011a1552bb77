"""Settings read from the environment, once, in one place.

Secrets (the Neo4j password) come only from the environment and have no default here: a store that needs one
says so when it is opened (``scripts/neo4j-dev`` has its own development default for the server it starts).
The other defaults suit a developer's machine: the embedded store under ``var/`` in the checkout and a Neo4j
on the loopback address.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

__all__ = ["REPO_ROOT", "Settings"]

REPO_ROOT = Path(__file__).resolve().parent.parent


@dataclass(frozen=True)
class Settings:
    home: Path
    store: str
    db_path: Path
    corpora: tuple[Path, ...]
    neo4j_uri: str
    neo4j_user: str
    neo4j_password: str | None  # None: NEO4J_PASSWORD is not set
    neo4j_database: str
    neo4j_batch_size: int

    @property
    def generated_dir(self) -> Path:
        """Where the cadre generator writes its files (personal sample data is generated, not committed)."""
        return self.home / "generated"

    @classmethod
    def from_env(cls, env: dict[str, str] | None = None) -> "Settings":
        env = dict(os.environ if env is None else env)
        home = Path(env.get("GANXUN_HOME", REPO_ROOT / "var")).expanduser()
        corpora = env.get("GANXUN_CORPORA")
        corpus_dirs = (
            tuple(Path(p).expanduser() for p in corpora.split(os.pathsep) if p)
            if corpora
            else (REPO_ROOT / "corpora" / "sample", home / "generated")
        )
        return cls(
            home=home,
            store=env.get("GANXUN_STORE", "embedded"),
            db_path=Path(env.get("GANXUN_DB", home / "ganxun.db")).expanduser(),
            corpora=corpus_dirs,
            neo4j_uri=env.get("NEO4J_URI", "bolt://127.0.0.1:7687"),
            neo4j_user=env.get("NEO4J_USER", "neo4j"),
            neo4j_password=env.get("NEO4J_PASSWORD") or None,
            neo4j_database=env.get("NEO4J_DATABASE", "neo4j"),
            neo4j_batch_size=int(env.get("GANXUN_NEO4J_BATCH", "5000")),
        )
