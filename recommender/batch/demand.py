"""Demand for curriculum designers: how many cadres have a gap on each topic.

Read from the last batch run when there is one (``python -m recommender batch``: fast, and consistent with
the suggestions cadres were shown); otherwise computed now from every cadre's records — the same gap
analysis, without ranking, over blocks of cadres read in bulk (two store calls a block).
"""

from __future__ import annotations

import datetime as dt
from collections import Counter
from pathlib import Path

from tqdm import tqdm

from kg.config import Settings
from kg.store.base import Store
from recommender.batch.blocks import read_block
from recommender.batch.run import BLOCK_SIZE, batch_path, stored_demand
from recommender.errors import InvalidRequest
from recommender.learner.gaps import CoverageConfig, analyse_gaps
from recommender.learner.profile import LEVELS, profile_from
from recommender.catalogue.snapshot import CatalogueSnapshot, load_snapshot

__all__ = ["compute_demand", "topic_demand"]


def compute_demand(store: Store, snapshot: CatalogueSnapshot, today: dt.date, level: str | None = None,
                   coverage: CoverageConfig | None = None, progress: bool = False) -> dict[str, int]:
    """Topic id → cadres for whom it is a gap as of ``today`` (``level``: essential / optional / None for both)."""
    counts: Counter[str] = Counter()
    cadres = [n.id for n in store.nodes("Cadre")]
    with tqdm(total=len(cadres), desc="统计缺口需求", unit="人", disable=not progress) as bar:
        for start in range(0, len(cadres), BLOCK_SIZE):
            block = cadres[start:start + BLOCK_SIZE]
            for cadre, records in read_block(store, snapshot, block):
                report = analyse_gaps(profile_from(snapshot, cadre, records, until=today), snapshot, today, coverage)
                counts.update(g.topic_id for g in report.gaps if level is None or g.requirement.level == level)
            bar.update(len(block))
    return dict(sorted(counts.items()))


def topic_demand(store: Store | None = None, settings: Settings | None = None, *, path: Path | None = None,
                 level: str | None = None, today: dt.date | None = None, snapshot: CatalogueSnapshot | None = None,
                 use_stored: bool = True) -> dict[str, int]:
    """Topic id → number of cadres with a gap on it: stored batch results if present, else computed."""
    if level is not None and level not in LEVELS:
        raise InvalidRequest(f"level（要求级别）应为 {'、'.join(LEVELS)} 或不填，实际为『{level}』")
    path = path or batch_path(settings)
    if use_stored and path.exists():
        return stored_demand(path, level)
    if store is None:
        from kg.store import open_store

        store = open_store(settings=settings)
    snapshot = snapshot or load_snapshot(store)
    return compute_demand(store, snapshot, today or dt.date.today(), level)
