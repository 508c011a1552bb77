"""One block of cadres, the unit of work of the nightly batch: read in bulk, recomputed or carried over, written to Parquet.

The same :func:`run_block` runs in this process and on every worker of a Dask cluster
(:mod:`recommender.batch.engine`); only the recommender it is handed differs (the caller's own, or one per worker
process over a copy of the same snapshot).  A block's cadres and records are two store calls for the whole block
(:func:`read_block`: :meth:`Store.nodes_with_edges` and :meth:`Store.referrers`), never one call per cadre or per
record, and each profile is built from what was read (:func:`recommender.learner.profile.profile_from`).

Incremental runs rest on fingerprints.  A run's key (:func:`run_key`) hashes what every answer depends on: the
requirements and rules (``ontology/requirements.yaml`` and ``rules.yaml`` as loaded), the catalogue's content
(:func:`catalogue_fingerprint`), the coverage and ranking settings, the statistics date and ``k``.  A cadre's
fingerprint (:func:`cadre_fingerprint`) adds the cadre's own node and edges, each record (id, properties, edges)
and the cadre's choices.  A cadre whose fingerprint equals the last run's keeps that run's rows (read back from its
Parquet part); every other cadre is recomputed.  The statistics date is in the key because coverage decays by the
day: a run for another date recomputes everyone.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import json
import time
from collections import defaultdict
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq

from kg.choices import Choice
from kg.model import NodeWithEdges
from kg.store.base import Store
from recommender.catalogue.snapshot import CatalogueSnapshot
from recommender.errors import UnknownCadre
from recommender.learner.gaps import analyse_gaps
from recommender.learner.profile import profile_from
from recommender.service import Recommender

__all__ = [
    "TABLES",
    "BatchPlan",
    "BlockResult",
    "BlockTask",
    "cadre_fingerprint",
    "catalogue_fingerprint",
    "part_path",
    "read_block",
    "run_block",
    "run_key",
]

#: The Parquet tables of a run, one file per block under each (``suggestions/part-00000.parquet`` …), with the
#: columns of the SQLite tables of the same names.
TABLES: dict[str, pa.Schema] = {
    "suggestions": pa.schema([
        ("cadre_id", pa.string()), ("rank", pa.int32()), ("item_id", pa.string()), ("kind", pa.string()),
        ("name", pa.string()), ("score", pa.float64()), ("reason", pa.string()), ("gap_topic", pa.string()),
        ("section", pa.string()),
    ]),
    "gaps": pa.schema([
        ("cadre_id", pa.string()), ("topic_id", pa.string()), ("level", pa.string()), ("weight", pa.float64()),
        ("coverage", pa.float64()), ("threshold", pa.float64()),
    ]),
    "cadres": pa.schema([("cadre_id", pa.string()), ("fingerprint", pa.string()), ("computed", pa.bool_())]),
}
#: Bumped when the rows a block writes change meaning, so an older run's rows are never carried into a new one.
ROWS_VERSION = 1


@dataclass(frozen=True)
class BatchPlan:
    """What every block of one run shares; plain values, so it travels to workers as is."""

    k: int
    today: dt.date
    key: str  # :func:`run_key`
    out: str  # this run's Parquet directory
    previous: str | None = None  # the last run's Parquet directory, whose rows unchanged cadres keep


@dataclass(frozen=True)
class BlockTask:
    """One block: its cadres, the last run's fingerprint and part of each (when the run key is the same), and the
    cadres' choices (read where the service keeps them, so a worker needs only the graph store)."""

    number: int
    cadre_ids: tuple[str, ...]
    previous: dict[str, tuple[str, int]] = field(default_factory=dict)
    choices: dict[str, tuple[Choice, ...]] = field(default_factory=dict)


@dataclass(frozen=True)
class BlockResult:
    """What a block reports back (its rows are in its Parquet parts, not here)."""

    number: int
    cadres: int
    computed: int
    carried: int
    suggestions: int
    gaps: int
    seconds: float


def part_path(out: str | Path, table: str, number: int) -> Path:
    """The Parquet file of one table of one block."""
    return Path(out) / table / f"part-{number:05d}.parquet"


def _digest(*parts: str) -> str:
    h = hashlib.blake2b(digest_size=16)
    for part in parts:
        h.update(part.encode("utf-8"))
        h.update(b"\x1f")
    return h.hexdigest()


def _canonical(value: Any) -> str:
    return json.dumps(value, ensure_ascii=False, sort_keys=True, default=str)


def catalogue_fingerprint(snapshot: CatalogueSnapshot) -> str:
    """A hash of the catalogue's content (every row view, in the store's order), not of the store's version stamp:
    the stamp moves with every imported record, which would make every run recompute every cadre."""
    h = hashlib.blake2b(digest_size=16)
    for view in (snapshot.courses, snapshot.textbooks, snapshot.cases, snapshot.sites, snapshot.institutions,
                 snapshot.platforms, snapshot.classes):
        for row in view.values():
            h.update(repr(row).encode("utf-8"))  # frozen dataclasses of tuples, text and numbers: repr is stable
    for view in (snapshot.categories, snapshot.groups, snapshot.domains, snapshot.topic_props):
        h.update(_canonical(view).encode("utf-8"))
    return h.hexdigest()


def run_key(recommender: Recommender, today: dt.date, k: int) -> str:
    """What every answer of a run depends on besides the cadre's own data (see the module docstring)."""
    snapshot = recommender.snapshot
    return _digest(
        f"rows-{ROWS_VERSION}",
        _canonical(snapshot.ontology.requirements),
        _canonical(snapshot.ontology.rules),
        catalogue_fingerprint(snapshot),
        repr(recommender.coverage),
        repr(recommender.ranker.config),
        today.isoformat(),
        str(k),
    )


def cadre_fingerprint(key: str, cadre: NodeWithEdges, records: Sequence[NodeWithEdges], choices: Iterable[Choice]) -> str:
    """The run key with the cadre's node and edges, every record (id, properties, edges) and the cadre's choices."""
    return _digest(
        key,
        _canonical([cadre.node.props, [(e.type, e.dst) for e in cadre.edges]]),
        _canonical([[r.node.id, r.node.props, [(e.type, e.dst, e.props) for e in r.edges]]
                    for r in sorted(records, key=lambda r: r.node.id)]),
        _canonical([[c.item_id, c.state, c.at.isoformat()] for c in choices]),
    )


def read_block(store: Store, snapshot: CatalogueSnapshot, cadre_ids: Sequence[str]) -> list[tuple[NodeWithEdges, list[NodeWithEdges]]]:
    """Each cadre with its outgoing edges and its record nodes with theirs: two store calls for the whole block.
    :class:`UnknownCadre` for the first id that is not a stored cadre."""
    cadres = store.nodes_with_edges(cadre_ids)
    records = store.referrers(cadre_ids, snapshot.ontology.relationship_types["ofCadre"])
    for cadre_id in cadre_ids:
        found = cadres.get(cadre_id)
        if found is None or found.node.label != "Cadre":
            raise UnknownCadre(cadre_id)
    return [(cadres[c], records[c]) for c in cadre_ids]


def _rows(recommender: Recommender, cadre: NodeWithEdges, records: list[NodeWithEdges], choices: tuple[Choice, ...],
          k: int, today: dt.date) -> tuple[list[tuple[Any, ...]], list[tuple[Any, ...]]]:
    """Suggestion rows and gap rows of one cadre, ranked as :meth:`Recommender.recommend` ranks without an intent."""
    profile = profile_from(recommender.snapshot, cadre, records, until=today, choices=choices)
    report = analyse_gaps(profile, recommender.snapshot, today, recommender.coverage)
    ranked = recommender.ranker.rank(profile, report, today, k=k)
    cadre_id = profile.cadre_id
    suggestions = [(cadre_id, s.rank, s.item_id, s.kind, s.name, float(s.score), s.reason, s.gap_topic, s.section)
                   for s in (*ranked.items, *ranked.materials)]
    gaps = [(cadre_id, g.topic_id, g.requirement.level, round(g.weight, 4), float(g.coverage), float(g.threshold))
            for g in report.gaps]
    return suggestions, gaps


def _table(name: str, rows: list[tuple[Any, ...]]) -> pa.Table:
    schema = TABLES[name]
    columns = list(zip(*rows)) if rows else [()] * len(schema)
    return pa.Table.from_arrays([pa.array(col, type=f.type) for col, f in zip(columns, schema)], schema=schema)


def _carried(plan: BatchPlan, name: str, parts: dict[int, list[str]]) -> list[pa.Table]:
    """The last run's rows of the unchanged cadres, read from the parts that hold them."""
    found = []
    for number, ids in sorted(parts.items()):
        table = pq.read_table(part_path(plan.previous, name, number), schema=TABLES[name])
        found.append(table.filter(pc.is_in(table["cadre_id"], value_set=pa.array(ids, pa.string()))))
    return found


def run_block(recommender: Recommender, plan: BatchPlan, task: BlockTask) -> BlockResult:
    """Read the block, recompute its changed cadres, carry the others over, and write its three Parquet parts."""
    started = time.perf_counter()
    suggestions: list[tuple[Any, ...]] = []
    gaps: list[tuple[Any, ...]] = []
    cadres: list[tuple[Any, ...]] = []
    carry: dict[int, list[str]] = defaultdict(list)
    for cadre, records in read_block(recommender.store, recommender.snapshot, task.cadre_ids):
        cadre_id = cadre.node.id
        choices = task.choices.get(cadre_id, ())
        fingerprint = cadre_fingerprint(plan.key, cadre, records, choices)
        before = task.previous.get(cadre_id)
        if plan.previous is not None and before is not None and before[0] == fingerprint:
            carry[before[1]].append(cadre_id)
            cadres.append((cadre_id, fingerprint, False))
            continue
        rows, gap_rows = _rows(recommender, cadre, records, choices, plan.k, plan.today)
        suggestions += rows
        gaps += gap_rows
        cadres.append((cadre_id, fingerprint, True))
    counts = {}
    for name, rows in (("suggestions", suggestions), ("gaps", gaps), ("cadres", cadres)):
        table = _table(name, rows)
        if name != "cadres" and carry:
            table = pa.concat_tables([table, *_carried(plan, name, carry)])
        target = part_path(plan.out, name, task.number)
        target.parent.mkdir(parents=True, exist_ok=True)
        pq.write_table(table.sort_by("cadre_id"), target)
        counts[name] = table.num_rows
    carried = sum(len(ids) for ids in carry.values())
    return BlockResult(task.number, len(cadres), len(cadres) - carried, carried, counts["suggestions"], counts["gaps"],
                       time.perf_counter() - started)
