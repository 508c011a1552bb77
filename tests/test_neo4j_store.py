"""What only the Neo4j back end has: its schema from the ontology, paging and batching, and refusing names the
ontology does not define (they would have to go into query text)."""

from __future__ import annotations

import re

import pytest

from kg.cypher import META_LABEL, NODE_LABEL, TEXT_INDEX
from kg.model import Edge, Node
from kg.ontology import Ontology
from kg.store import StoreError
from kg.store.neo4j import Batch, Neo4jStore
from tests.neo4j_support import neo4j_settings, open_neo4j


@pytest.fixture
def neo4j():
    store = open_neo4j()
    yield store
    store.close()


def indexes(store: Neo4jStore) -> dict[str, dict]:
    return {r["name"]: r for r in store._read(lambda tx: [r.data() for r in tx.run("SHOW INDEXES YIELD *")])}


def test_schema_comes_from_the_ontology_and_is_made_once(neo4j: Neo4jStore, ontology: Ontology) -> None:
    found = indexes(neo4j)
    for label in [*ontology.classes, NODE_LABEL]:
        assert found[f"gx_{label}_id"]["owningConstraint"] == f"gx_{label}_id"
    assert found["gx_Course_dateModified"]["labelsOrTypes"] == ["Course"]
    text = found[TEXT_INDEX]
    assert text["type"] == "FULLTEXT" and text["properties"] == ["name", "description"]
    assert sorted(text["labelsOrTypes"]) == sorted(c.name for c in ontology.classes.values() if not c.personal)
    assert text["options"]["indexConfig"]["fulltext.analyzer"] == "cjk"
    Neo4jStore.from_settings(neo4j_settings(), ontology).open().close()  # a second connect creates nothing
    assert indexes(neo4j).keys() == found.keys()


def test_names_outside_the_ontology_are_refused(neo4j: Neo4jStore) -> None:
    with pytest.raises(StoreError, match=re.escape("类别『Person`) DETACH DELETE n //』不是本体中的类")):
        neo4j.write([Node("x:1", "Person`) DETACH DELETE n //")], [])
    neo4j.write([Node("topic:a", "Topic"), Node("topic:b", "Topic")], [])
    with pytest.raises(StoreError, match="类型『LIKES』不是本体中的关系类型"):
        neo4j.write([], [Edge("topic:a", "LIKES", "topic:b")])
    assert list(neo4j.edges()) == []


def test_values_that_look_like_cypher_stay_values(neo4j: Neo4jStore) -> None:
    odd = Node("course:x'\"`) //", "Course", {"name": "'}) MATCH (n) DETACH DELETE n //", "description": "$rows"})
    neo4j.write([odd, Node("topic:a", "Topic")], [Edge(odd.id, "COVERS", "topic:a")])
    assert neo4j.get_node(odd.id) == odd
    assert [e.key for e in neo4j.edges(src=odd.id)] == [(odd.id, "COVERS", "topic:a")]


def test_small_batches_and_pages_give_the_same_graph(ontology: Ontology) -> None:
    store = open_neo4j()
    small = Neo4jStore.from_settings(neo4j_settings(GANXUN_NEO4J_BATCH="7"), ontology).open()
    nodes = [Node(f"topic:n{i:03d}", "Topic", {"name": f"主题{i}", "planPriority": i % 3 + 1}) for i in range(50)]
    edges = [Edge(f"topic:n{i:03d}", "RELATED", f"topic:n{(i * 7 + j) % 50:03d}") for i in range(50) for j in (1, 2)]
    summary = small.write(nodes, edges)
    assert (summary.nodes_written, summary.edges_written) == (50, 100)
    assert list(small.nodes()) == nodes and list(store.nodes()) == nodes
    assert list(small.edges()) == sorted(edges, key=lambda e: e.key)
    assert list(small.edges(type="RELATED")) == list(store.edges(type="RELATED"))
    assert small.get_nodes(n.id for n in nodes) == nodes
    small.close()
    store.close()


def test_applying_a_batch_twice_writes_nothing_the_second_time(neo4j: Neo4jStore) -> None:
    batch = Batch(
        nodes=[Node("topic:a", "Topic", {"name": "甲", "planPriority": 1}), Node("topic:b", "Topic", {"altLabels": ["乙"]})],
        edges=[Edge("topic:a", "RELATED", "topic:b", {"ord": 1})],
        owners=["topic:a", "topic:b"],
    )
    first = neo4j.apply(batch)
    assert (first["nodes_created"], first["relationships_created"]) == (2, 1)
    assert not any(neo4j.apply(batch).values())
    # a value of another type is a change, though Cypher's = calls 1 and 1.0 equal
    changed = neo4j.apply(Batch(nodes=[Node("topic:a", "Topic", {"name": "甲", "planPriority": 1.0})]))
    assert changed["properties_set"] > 0
    assert neo4j.get_node("topic:a").props["planPriority"] == 1.0


def test_a_write_too_big_for_nothing_else_is_still_one_transaction(neo4j: Neo4jStore, ontology: Ontology) -> None:
    """A failure in the last batch of a many-batch write leaves nothing from the earlier batches."""
    small = Neo4jStore.from_settings(neo4j_settings(GANXUN_NEO4J_BATCH="5"), ontology).open()
    nodes = [Node(f"topic:m{i:02d}", "Topic") for i in range(30)]
    with pytest.raises(StoreError, match="关系的端点不存在：topic:zz"):
        small.write(nodes, [Edge("topic:m00", "RELATED", "topic:zz")])
    assert neo4j.is_empty()
    small.close()


def test_the_version_node_is_out_of_the_graphs_sight(neo4j: Neo4jStore) -> None:
    """One ``_GanxunMeta`` node holds the stamp; no read, count or clear of the graph sees or removes it."""
    neo4j.write([Node("topic:a", "Topic", {"name": "甲"})], [])
    version = neo4j.version()
    meta = neo4j._read(lambda tx: [r.data() for r in tx.run(f"MATCH (m:`{META_LABEL}`) RETURN labels(m) AS l, m.version AS v")])
    assert meta == [{"l": [META_LABEL], "v": version}]
    assert list(neo4j.nodes()) == [Node("topic:a", "Topic", {"name": "甲"})]
    assert neo4j.node_counts() == {"Topic": 1}
    assert list(neo4j.node_ids()) == ["topic:a"]
    assert "gx_meta_key" in indexes(neo4j)
    neo4j.clear()  # a mutation too, though not an atomic one
    assert neo4j.is_empty() and neo4j.version() > version


def test_a_sync_batch_raises_the_version_only_when_it_changes_something(neo4j: Neo4jStore) -> None:
    batch = Batch(nodes=[Node("topic:a", "Topic", {"name": "甲"})], owners=["topic:a"])
    before = neo4j.version()
    neo4j.apply(batch)
    changed = neo4j.version()
    assert changed > before
    assert not any(neo4j.apply(batch).values())  # the stamp's own write is not reported as a change
    assert neo4j.version() == changed
