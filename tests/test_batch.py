"""Batch recommendations stored for the API, and the per-topic demand designers read from them."""

from __future__ import annotations

import datetime as dt
import sqlite3

import pytest

from recommender.batch.run import load_suggestions, run_batch, stored_demand
from recommender.batch.demand import compute_demand, topic_demand
from recommender.errors import InvalidRequest
from recommender.service import Recommender
from tests.rec_world import add_cadre, build, concentrated

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
    assert path.read_bytes() == before and list(path.parent.iterdir()) == [path]


def test_bad_parameters(world, tmp_path):
    snap, store = world
    with pytest.raises(InvalidRequest, match="k"):
        run_batch(Recommender(snap, store, today=TODAY), k=0, path=tmp_path / "b.sqlite", progress=False)
    with pytest.raises(InvalidRequest, match="level"):
        topic_demand(store, path=tmp_path / "b.sqlite", level="必学")
