"""The ontology is complete and self-consistent: every class has a shape, every relation a type, every rule a source."""

from __future__ import annotations

from rdflib import RDF, URIRef
from rdflib.namespace import OWL, SH

from kg.ontology import GX

DESIGN_CLASSES = {
    "Topic", "Course", "Textbook", "CaseStudy", "Teacher", "DemonstrationSite", "TeachingRoute", "Institution",
    "Platform", "TrainingClass", "Cadre", "CadreCategory", "PositionDomain", "TargetGroup", "TrainingRecord",
}


def test_every_class_of_the_design_is_declared_with_labels(ontology):
    assert DESIGN_CLASSES <= set(ontology.classes)
    for spec in ontology.classes.values():
        assert spec.label and spec.label != spec.name, f"{spec.name} 缺少中文标签"
        assert spec.label_en, f"{spec.name} 缺少英文标签"


def test_every_class_has_a_shape(ontology):
    g = ontology.graph
    shaped = {g.value(s, SH.targetClass) for s in g.subjects(RDF.type, SH.NodeShape)}
    missing = [name for name in ontology.classes if GX[name] not in shaped]
    assert not missing, f"没有 SHACL 形状的类：{missing}"


def test_every_shape_path_is_a_declared_property(ontology):
    g = ontology.graph
    declared = {p for kind in (OWL.DatatypeProperty, OWL.ObjectProperty, OWL.AnnotationProperty) for p in g.subjects(RDF.type, kind)}
    for path in g.objects(None, SH.path):
        if str(path).startswith(str(GX)):
            assert path in declared, f"形状引用了本体未声明的属性 {path}"


def test_every_object_property_has_a_relationship_type(ontology):
    g = ontology.graph
    for prop in g.subjects(RDF.type, OWL.ObjectProperty):
        assert g.value(prop, GX.relationshipType) is not None, f"{prop} 缺少 gx:relationshipType"
    rel_types = list(ontology.relationship_types.values())
    assert len(rel_types) == len(set(rel_types)), "关系类型重复"


def test_relations_of_shapes_point_at_classes(ontology):
    for spec in ontology.data_classes:
        for field in spec.fields.values():
            if field.is_relation:
                assert field.target_class in ontology.classes
                assert field.rel_type, f"{spec.name}.{field.name} 没有关系类型"


def test_schema_org_mappings_exist_for_learning_resources(ontology):
    assert "https://schema.org/Course" in ontology.classes["Course"].schema_types
    assert "https://schema.org/LearningResource" in ontology.classes["Textbook"].schema_types


def test_hour_rules_name_their_source_and_only_seed_figures_are_verified(ontology):
    rules = ontology.rules["hour_rules"]
    groups = {r["hour_group"] for r in rules}
    assert groups == {"A", "B", "C"}
    for rule in rules:
        for key in ("id", "name", "mode", "period", "section", "source", "verified"):
            assert key in rule, f"学时规则 {rule.get('id')} 缺少 {key}"
    verified = {r["id"] for r in rules if r["verified"]}
    assert verified == {"online-a"}, "只有规划原文给出数值的规则可以标为 verified"
    unset = [r for r in rules if r["min_hours"] is None]
    assert [r["hour_group"] for r in unset] == ["C"], "专业技术人员的集中培训学时未知，应保持未设置"


def test_every_cadre_category_maps_to_an_hour_group_with_rules(ontology):
    nodes, _ = ontology.concept_graph()
    categories = [n for n in nodes if n.label == "CadreCategory"]
    assert len(categories) == 8
    groups = {r["hour_group"] for r in ontology.rules["hour_rules"]}
    for category in categories:
        assert category.props["hourGroup"] in groups


def test_rules_name_plan_sections(ontology):
    rules = ontology.rules
    for key in ("teaching_indicators", "update_indicators", "leadership_rules"):
        for rule in rules[key]:
            assert rule["section"], f"{rule['id']} 缺少规划条目"
    assert rules["nomination"]["section"] == "五（三）"
    assert abs(rules["nomination"]["case_share_min"] - 1 / 3) < 1e-6
    for name, rule in rules["platform_crediting"].items():
        assert rule["source"] and "verified" in rule, name


def test_platform_credit_rules_referenced_by_shape_pattern(ontology):
    field = ontology.classes["Platform"].fields["creditRule"]
    import re

    for name in ontology.rules["platform_crediting"]:
        assert re.search(field.pattern, name)


def test_ids_round_trip_through_iris(ontology):
    for node_id in ("course:t-1", "topic:rural-revitalization", "category:county-leader"):
        iri = ontology.iri(node_id)
        assert isinstance(iri, URIRef)
        assert ontology.id_of(iri) == node_id
    assert ontology.id_of("https://example.org/x") is None
