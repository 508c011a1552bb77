"""Batch recommendations stored for the API, and the per-topic demand designers read from them; the same batch on a
local Dask cluster, and incremental runs."""

from __future__ import annotations

import dataclasses
import datetime as dt
import sqlite3

import pyarrow.parquet as pq
import pytest

from kg.choices import CadreChoices
from recommender.batch.run import batch_parquet, load_suggestions, run_batch, stored_demand
from recommender.batch.demand import compute_demand, topic_demand
from recommender.catalogue.snapshot import load_snapshot
from recommender.errors import InvalidRequest
from recommender.service import Recommender
from tests.rec_world import add_cadre, build, concentrated, online

TODAY = dt.date(2026, 1, 1)


@pytest.fixture
def world(store, ontology):
    snap = build(store, ontology)
    add_cadre(store, "cadre:1")  # cold start: 甲, 乙, 丙 are all gaps
    add_cadre(store, "cadre:2", records=[concentrated("2025-12-31", 8.0, course="course:ab-combo")])  # only 丙
    return snap, store


def test_batch_stores_every_cadres_suggestions_and_gaps(world, tmp_path):
    snap, store = world
    summary = run_batch(Recommender(snap, store, today=TODAY), k=3, path=tmp_path / "batch.sqlite", progress=False)
    assert (summary.cadres, summary.today) == (2, TODAY)
    first = load_suggestions("cadre:2", tmp_path / "batch.sqlite")
    live = Recommender(snap, store, today=TODAY).recommend("cadre:2", k=3)
    assert [row["编号"] for row in first[:3]] == [s.item_id for s in live.items]
    assert first[0]["推荐理由"] == live.items[0].reason
    assert load_suggestions("cadre:404", tmp_path / "batch.sqlite") == []


def test_demand_counts_cadres_with_a_gap_per_topic(world, tmp_path):
    snap, store = world
    path = tmp_path / "batch.sqlite"
    run_batch(Recommender(snap, store, today=TODAY), path=path, progress=False)
    assert stored_demand(path) == {"topic:a": 1, "topic:b": 1, "topic:c": 2}
    assert stored_demand(path, level="optional") == {"topic:c": 2}
    assert compute_demand(store, snap, TODAY) == stored_demand(path)
    assert topic_demand(store, path=path) == stored_demand(path)
    with sqlite3.connect(path) as conn:
        assert conn.execute("SELECT cadres, essential FROM demand WHERE topic_id = 'topic:a'").fetchone() == (1, 1)


def test_a_failed_run_leaves_the_previous_results(world, tmp_path):
    snap, store = world
    path = tmp_path / "out" / "batch.sqlite"
    run_batch(Recommender(snap, store, today=TODAY), path=path, progress=False)
    before = path.read_bytes()
    with pytest.raises(Exception, match="cadre:404"):
        run_batch(Recommender(snap, store, today=TODAY), ["cadre:1", "cadre:404"], path=path, progress=False)
    # the SQLite view is untouched, and of the Parquet runs only the previous one is left (the failed one removed)
    assert path.read_bytes() == before
    assert sorted(p.name for p in path.parent.iterdir()) == ["batch-parquet", "batch.sqlite"]
    assert list((path.parent / "batch-parquet").iterdir()) == [batch_parquet(path)]


def test_a_run_finishing_beside_another_leaves_the_other_runs_output(world, tmp_path):
    """A CLI run that finishes while an API job is still writing must not remove the job's Parquet directory."""
    snap, store = world
    path = tmp_path / "batch.sqlite"
    root = tmp_path / "batch-parquet"
    seen = {}

    def beside(done, total):
        if done == 1:  # the outer run has stored one block of two: another run starts and finishes now
            inner = run_batch(Recommender(snap, store, today=TODAY), path=path, progress=False)
            seen["inner"], seen["left"] = inner.parquet, sorted(root.iterdir())

    outer = run_batch(Recommender(snap, store, today=TODAY), path=path, progress=False, block_size=1,
                      on_progress=beside)
    assert outer.parquet in seen["left"] and seen["inner"] in seen["left"]
    # the outer run replaced the inner one's view, so only the inner run's directory was superseded and removed
    assert list(root.iterdir()) == [outer.parquet] == [batch_parquet(path)]
    assert len(load_suggestions("cadre:1", path)) > 0


def test_bad_parameters(world, tmp_path):
    snap, store = world
    with pytest.raises(InvalidRequest, match="k"):
        run_batch(Recommender(snap, store, today=TODAY), k=0, path=tmp_path / "b.sqlite", progress=False)
    with pytest.raises(InvalidRequest, match="level"):
        topic_demand(store, path=tmp_path / "b.sqlite", level="必学")
    with pytest.raises(InvalidRequest, match="engine"):
        run_batch(Recommender(snap, store, today=TODAY), engine="spark", path=tmp_path / "b.sqlite", progress=False)


# ─── a wider world: the same batch on a Dask cluster, and incremental runs ───
ROLES = [  # (category, groups, domain, records)
    ("category:x", ("group:g",), "domain:fin", []),
    ("category:x", ("group:g",), "domain:fin", [concentrated("2025-12-31", 8.0, course="course:ab-combo")]),
    ("category:x", (), None, [online("2025-06-01", "course:a1-online", 200)]),
    ("category:x", ("group:g",), None, [concentrated("2024-03-01", 3.0, course="course:a-new")]),
    ("category:x", (), "domain:fin", [online("2025-11-20", "course:a1-online", 90),
                                      concentrated("2025-02-01", 2.0, course="course:ab-combo")]),
]


@pytest.fixture
def population(store, ontology):
    built = build(store, ontology)  # the world's rules, with the real feedback rules for the cadres' choices
    snap = load_snapshot(store, dataclasses.replace(built.ontology, rules={**built.ontology.rules,
                                                                          "feedback": ontology.rules["feedback"]}))
    ids = []
    for n in range(14):
        category, groups, domain, records = ROLES[n % len(ROLES)]
        ids.append(f"cadre:{n:02d}")
        add_cadre(store, ids[-1], category=category, groups=groups, domain=domain, records=records)
    return snap, store, ids


def rows(path, table):
    with sqlite3.connect(path) as conn:
        return conn.execute(f"SELECT * FROM {table} ORDER BY 1, 2").fetchall()


def parquet_rows(path, table):
    found = pq.read_table(batch_parquet(path) / table)
    return sorted(zip(*(found.column(i).to_pylist() for i in range(found.num_columns))))


def test_a_local_dask_cluster_gives_the_single_process_answers(population, tmp_path):
    """Two worker processes of a Dask LocalCluster, each with its own copy of the snapshot and its own store
    connection, over blocks of three cadres: every cadre gets exactly the top-k of the in-process run and of the
    live recommender, and the gaps and demand are the same."""
    snap, store, ids = population
    choices = CadreChoices(tmp_path / "choices.db")
    live = Recommender(snap, store, today=TODAY, choices=choices)
    first = live.recommend("cadre:00", k=4).items[0].item_id
    choices.put("cadre:00", first, "irrelevant")  # read by the caller, shipped with the block
    inline = run_batch(live, k=4, path=tmp_path / "inline.sqlite", progress=False, block_size=3)
    cluster = run_batch(live, k=4, path=tmp_path / "dask.sqlite", progress=False, block_size=3, engine="dask", workers=2)
    assert (inline.engine, cluster.engine, cluster.workers) == ("inline", "dask", 2)
    assert inline.cadres == cluster.cadres == len(ids) and cluster.computed == len(ids)
    for table in ("suggestions", "gaps"):
        assert rows(tmp_path / "dask.sqlite", table) == rows(tmp_path / "inline.sqlite", table) != []
        assert parquet_rows(tmp_path / "dask.sqlite", table) == sorted(rows(tmp_path / "dask.sqlite", table))
    assert stored_demand(tmp_path / "dask.sqlite") == compute_demand(store, snap, TODAY) == stored_demand(tmp_path / "inline.sqlite")
    for cadre_id in ids:
        stored = [row["编号"] for row in load_suggestions(cadre_id, tmp_path / "dask.sqlite") if row["类型"] == "Course"]
        assert stored == [s.item_id for s in live.recommend(cadre_id, k=4).items], cadre_id
    assert first not in [row["编号"] for row in load_suggestions("cadre:00", tmp_path / "dask.sqlite")]
    assert len(list((batch_parquet(tmp_path / "dask.sqlite") / "suggestions").iterdir())) == 5  # one file per block


def test_an_incremental_run_recomputes_only_changed_cadres(population, tmp_path, ontology):
    snap, store, ids = population
    path = tmp_path / "batch.sqlite"
    choices = CadreChoices(tmp_path / "choices.db")
    recommender = Recommender(snap, store, today=TODAY, choices=choices)
    assert run_batch(recommender, k=4, path=path, progress=False, block_size=4).computed == len(ids)
    again = run_batch(recommender, k=4, path=path, progress=False, block_size=4)
    assert (again.computed, again.carried) == (0, len(ids))
    # three cadres change: a new record, a record edited in place, a choice; and one new cadre arrives
    add_cadre(store, "cadre:03", category="category:x", groups=("group:g",), domain=None,
              records=[concentrated("2024-03-01", 3.0, course="course:a-new"), online("2025-12-01", "course:a1-online", 300)])
    add_cadre(store, "cadre:06", category="category:x", groups=("group:g",), domain="domain:fin",
              records=[concentrated("2025-12-31", 9.0, course="course:ab-combo")])
    choices.put("cadre:10", recommender.recommend("cadre:10", k=4).items[0].item_id, "done")
    add_cadre(store, "cadre:99")
    changed = run_batch(recommender, k=4, path=path, progress=False, block_size=4)
    assert (changed.cadres, changed.computed, changed.carried) == (len(ids) + 1, 4, len(ids) - 3)
    with sqlite3.connect(path) as conn:
        assert conn.execute("SELECT count(*) FROM cadres").fetchone() == (len(ids) + 1,)
    fresh = run_batch(recommender, k=4, path=tmp_path / "fresh.sqlite", progress=False, incremental=False)
    assert fresh.computed == len(ids) + 1
    for table in ("suggestions", "gaps"):  # carried rows are exactly what recomputing would give
        assert rows(path, table) == rows(tmp_path / "fresh.sqlite", table)
        assert parquet_rows(path, table) == sorted(rows(path, table))
    # new requirements (or rules, catalogue, date, k): everyone is recomputed
    requirements = {**snap.ontology.requirements, "all_cadres": []}
    other = load_snapshot(store, dataclasses.replace(snap.ontology, requirements=requirements))
    assert run_batch(Recommender(other, store, today=TODAY, choices=choices), k=4, path=path,
                     progress=False).computed == len(ids) + 1
    assert run_batch(recommender, k=4, today=dt.date(2026, 1, 2), path=path, progress=False).computed == len(ids) + 1
