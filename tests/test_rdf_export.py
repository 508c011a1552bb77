"""Export to Turtle / JSON-LD, read it back, and get the same graph; the export conforms to the shapes."""

from __future__ import annotations

import pytest
from click.testing import CliRunner
from pyshacl import validate
from rdflib import Graph, Literal, URIRef
from rdflib.namespace import RDF

from kg.cli import main
from kg.ontology import GX, ONTOLOGY_DIR
from kg.rdf import graph_from_rdf, graph_to_rdf, serialize
from tests.conftest import FIXTURE_CORPUS

SCHEMA = "https://schema.org/"


@pytest.mark.parametrize("fmt", ["turtle", "jsonld"])
def test_export_then_import_gives_back_the_same_graph(built_store, ontology, fmt):
    nodes, edges = list(built_store.nodes()), list(built_store.edges())
    text = serialize(graph_to_rdf(nodes, edges, ontology), fmt)
    g = Graph().parse(data=text, format="json-ld" if fmt == "jsonld" else "turtle")
    back_nodes, back_edges = graph_from_rdf(g, ontology)
    assert sorted(back_nodes, key=lambda n: n.id) == nodes
    assert sorted(back_edges, key=lambda e: e.key) == edges


def test_ordered_relations_keep_their_order(built_store, ontology):
    g = graph_to_rdf(list(built_store.nodes()), list(built_store.edges()), ontology)
    _, edges = graph_from_rdf(g, ontology)
    route = sorted((e for e in edges if e.src == "route:t-red-green" and e.type == "INCLUDES_SITE"), key=lambda e: e.props["ord"])
    assert [e.dst for e in route] == ["site:t-village", "site:t-memorial"]


def test_export_carries_schema_org_terms(built_store, ontology):
    g = graph_to_rdf(list(built_store.nodes()), list(built_store.edges()), ontology)
    course = ontology.iri("course:t-theory")
    assert (course, RDF.type, URIRef(SCHEMA + "Course")) in g
    assert (course, URIRef(SCHEMA + "name"), Literal("新时代党的创新理论专题讲授")) in g
    assert (course, URIRef(SCHEMA + "provider"), ontology.iri("inst:t-province-school")) in g
    assert (course, URIRef(SCHEMA + "courseWorkload"), None) in g


def _shapes() -> Graph:
    return Graph().parse(ONTOLOGY_DIR / "shapes.ttl").parse(ONTOLOGY_DIR / "ganxun.ttl")


def test_export_conforms_to_the_shapes_under_pyshacl(built_store, ontology):
    data = graph_to_rdf(list(built_store.nodes()), list(built_store.edges()), ontology, with_schema=False)
    conforms, _, report = validate(data, shacl_graph=_shapes())
    assert conforms, report


def test_pyshacl_agrees_that_a_broken_export_does_not_conform(built_store, ontology):
    data = graph_to_rdf(list(built_store.nodes()), list(built_store.edges()), ontology, with_schema=False)
    course = ontology.iri("course:t-theory")
    data.remove((course, GX.name, None))
    data.set((course, GX.deliveryMode, Literal("函授")))
    conforms, results, _ = validate(data, shacl_graph=_shapes())
    assert not conforms
    paths = {str(o) for o in results.objects(None, URIRef("http://www.w3.org/ns/shacl#resultPath"))}
    assert {str(GX.name), str(GX.deliveryMode)} <= paths


def test_cli_export_and_import_rdf_round_trip(tmp_path, monkeypatch):
    runner = CliRunner()
    monkeypatch.setenv("GANXUN_HOME", str(tmp_path / "a"))
    assert runner.invoke(main, ["build", "--corpus", str(FIXTURE_CORPUS)]).exit_code == 0
    out = tmp_path / "graph.ttl"
    result = runner.invoke(main, ["export", "--format", "turtle", "-o", str(out), "--include-personal"])
    assert result.exit_code == 0, result.output
    first = runner.invoke(main, ["stats"]).output
    monkeypatch.setenv("GANXUN_HOME", str(tmp_path / "b"))
    assert runner.invoke(main, ["import-rdf", str(out)]).exit_code == 0
    assert runner.invoke(main, ["stats"]).output == first


def test_catalogue_export_leaves_out_personal_data(tmp_path, monkeypatch):
    runner = CliRunner()
    monkeypatch.setenv("GANXUN_HOME", str(tmp_path))
    runner.invoke(main, ["build", "--corpus", str(FIXTURE_CORPUS)])
    out = tmp_path / "catalogue.jsonld"
    assert runner.invoke(main, ["export", "--format", "jsonld", "-o", str(out)]).exit_code == 0
    text = out.read_text(encoding="utf-8")
    assert "cadre/t-001" not in text and "record/" not in text
    assert "新时代党的创新理论专题讲授" in text
