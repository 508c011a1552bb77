"""Every Cypher text ganxun runs, in one module of named queries.

Two groups live here:

* the Neo4j store's own queries (``STORE``), run by :mod:`kg.store.neo4j`;
* a small library for curriculum designers (``LIBRARY``), each query with a Chinese title, description and
  parameters, meant to be pasted into Neo4j Browser (``python -m kg queries`` prints them rendered) and run by
  ``Neo4jStore.run_named`` in the tests.

Values always travel as ``$``-parameters.  Labels and relationship types are identifiers, which Cypher cannot
take as parameters, so the texts name them with placeholders that :func:`render` resolves against the
ontology: ``%Course`` is a class (checked against ``ontology.classes``), ``%covers`` the relationship type of an
ontology property (``ontology.relationship_types``), and ``%_label`` / ``%_rel`` / ``%_name`` … are per-call
identifiers the caller passes, each validated before it is back-quoted into the text.  Nothing from data ever
reaches the query text.
"""

from __future__ import annotations

import re
import textwrap
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from string import Template
from typing import Any

from kg.ontology import Ontology

__all__ = [
    "HASH_PROPERTY",
    "LIBRARY",
    "META_KEY",
    "META_LABEL",
    "NODE_LABEL",
    "STORE",
    "TEXT_INDEX",
    "CypherTemplateError",
    "NamedQuery",
    "identifier",
    "render",
]

NODE_LABEL = "GxNode"
"""The store's own label on every node (not an ontology class): one uniqueness constraint over all ids
enforces the store contract's graph-wide ids and lets an edge find its ends without knowing their class."""

META_LABEL = "_GanxunMeta"
"""The label of the store's one bookkeeping node, which holds the graph's version stamp.  The leading underscore
keeps it apart from ontology class names; it never carries :data:`NODE_LABEL`, so no read, count, export or
clear of the graph sees it."""

META_KEY = "graph"
"""The ``key`` of the bookkeeping node (unique by constraint, so concurrent first writes make only one)."""

HASH_PROPERTY = "_gxHash"
"""The property on every node (and on every relationship that has properties) holding a 64-bit hash of its
content, written by whoever writes it: a sync compares hashes instead of every property, so an unchanged node is
skipped after reading one number.  The leading underscore keeps it apart from ontology properties; reads drop it."""

TEXT_INDEX = "gx_text"
"""Name of the full-text index (cjk analyzer) over name and description of non-personal classes."""

_IDENT = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*$")


class CypherTemplateError(ValueError):
    """A query template names an identifier the ontology does not define (a programming error)."""


class _Cypher(Template):
    delimiter = "%"
    idpattern = r"_?[A-Za-z][A-Za-z0-9_]*"


def identifier(name: str, allowed: Iterable[str] | None = None) -> str:
    """Back-quote a label, relationship type or schema name after checking it is a plain identifier
    (and, when ``allowed`` is given, one of those names)."""
    if not _IDENT.match(name) or (allowed is not None and name not in set(allowed)):
        raise CypherTemplateError(f"不是本体定义的标识符：『{name}』")
    return f"`{name}`"


class _Resolver(Mapping[str, str]):
    """Placeholder → back-quoted identifier: per-call names first, then ontology classes and relationships."""

    def __init__(self, ontology: Ontology, per_call: Mapping[str, str | Iterable[str]]) -> None:
        self.ontology = ontology
        self.per_call = per_call

    def __getitem__(self, key: str) -> str:
        if key in self.per_call:
            value = self.per_call[key]
            names = [value] if isinstance(value, str) else list(value)
            return "|".join(identifier(n) for n in names)
        if key == "NODE":
            return identifier(NODE_LABEL)
        if key == "META":
            return identifier(META_LABEL)
        if key == "HASH":
            return identifier(HASH_PROPERTY)
        if key in self.ontology.classes:
            return identifier(key)
        if key in self.ontology.relationship_types:
            return identifier(self.ontology.relationship_types[key])
        raise CypherTemplateError(f"查询模板中的『%{key}』不是本体中的类或关系")

    def __iter__(self):  # pragma: no cover - Template only uses __getitem__
        return iter(())

    def __len__(self) -> int:  # pragma: no cover
        return 0


def render(template: str, ontology: Ontology, **per_call: str | Iterable[str]) -> str:
    """The Cypher text of a template, with every ``%name`` placeholder resolved (see the module docstring).

    Per-call names must already be checked against the ontology by the caller (the store does so); here they
    are only checked to be plain identifiers, so that no text can break out of the back quotes.
    """
    return _Cypher(template).substitute(_Resolver(ontology, per_call))


@dataclass(frozen=True)
class NamedQuery:
    """A query with a name; the library's ones also carry Chinese documentation and example parameters."""

    name: str
    template: str
    title: str = ""
    description: str = ""
    params: dict[str, str] = field(default_factory=dict)
    example: dict[str, Any] = field(default_factory=dict)

    def text(self, ontology: Ontology, **per_call: str | Iterable[str]) -> str:
        return render(textwrap.dedent(self.template).strip(), ontology, **per_call)

    def browser_text(self, ontology: Ontology) -> str:
        """What a designer pastes into Neo4j Browser: ``:param`` lines for the example values, then the query."""
        lines = [f"// {self.title}：{self.description}"]
        for key, meaning in self.params.items():
            lines.append(f"// ${key}：{meaning}")
        for key, value in self.example.items():
            lines.append(f":param {key} => {_cypher_literal(value)}")
        lines.append(self.text(ontology))
        return "\n".join(lines)


def _cypher_literal(value: Any) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, (int, float)):
        return repr(value)
    if isinstance(value, str):
        return "'" + value.replace("\\", "\\\\").replace("'", "\\'") + "'"
    if value is None:
        return "null"
    raise TypeError(f"示例参数只支持标量：{value!r}")


def _q(name: str, template: str) -> NamedQuery:
    return NamedQuery(name, template)


# ─────────────────────────────── the store's queries ───────────────────────────────
# Reads that return many rows collect them into one record (``rows``): one Bolt message instead of one per row.
# Per-call placeholders: %_label (a class), %_labels (several classes joined by |), %_rel (a relationship type),
# %_name (a schema object's name), %_prop (a property name from the class's shape).

STORE: dict[str, NamedQuery] = {
    q.name: q
    for q in (
        # schema, created idempotently on connect
        _q("id_constraint", "CREATE CONSTRAINT %_name IF NOT EXISTS FOR (n:%_label) REQUIRE n.id IS UNIQUE"),
        _q("meta_constraint", "CREATE CONSTRAINT %_name IF NOT EXISTS FOR (m:%META) REQUIRE m.key IS UNIQUE"),
        _q("range_index", "CREATE INDEX %_name IF NOT EXISTS FOR (n:%_label) ON (n.%_prop)"),
        _q(
            "text_index",
            "CREATE FULLTEXT INDEX %_name IF NOT EXISTS FOR (n:%_labels) ON EACH [n.name, n.description] "
            "OPTIONS {indexConfig: {`fulltext.analyzer`: 'cjk'}}",
        ),
        _q("drop_index", "DROP INDEX %_name IF EXISTS"),
        _q("show_indexes", "SHOW INDEXES YIELD name, type, labelsOrTypes, properties, options"),
        _q("await_indexes", "CALL db.awaitIndexes($seconds)"),
        # writes: one parameter `rows`, one label or relationship type per text
        _q(
            "create_nodes",
            """
            UNWIND $rows AS row
            MERGE (n:%NODE {id: row.id})
            ON CREATE SET n:%_label, n = row.props
            """,
        ),
        _q(
            "update_nodes",
            """
            UNWIND $rows AS row
            MATCH (n:%NODE {id: row.id})
            SET n:%_label, n = row.props
            REMOVE n:$(row.stale)
            """,
        ),
        _q(
            "create_edges",
            """
            UNWIND $rows AS row
            MATCH (a:%NODE {id: row.src}), (b:%NODE {id: row.dst})
            MERGE (a)-[r:%_rel]->(b)
            ON CREATE SET r = row.props
            """,
        ),
        _q(
            "update_edges",
            """
            UNWIND $rows AS row
            MATCH (:%NODE {id: row.src})-[r:%_rel]->(:%NODE {id: row.dst})
            SET r = row.props
            """,
        ),
        _q(
            "delete_edges",
            """
            UNWIND $rows AS row
            MATCH (:%NODE {id: row.src})-[r:%_rel]->(:%NODE {id: row.dst})
            DELETE r
            """,
        ),
        _q(
            "missing_ids",
            """
            UNWIND $ids AS id
            OPTIONAL MATCH (n:%NODE {id: id})
            WITH id, n WHERE n IS NULL
            WITH id ORDER BY id
            RETURN collect(id) AS rows
            """,
        ),
        _q("delete_nodes", "UNWIND $ids AS id MATCH (n:%NODE {id: id}) DETACH DELETE n"),
        # plain creates: what a sync writes for nodes and edges the server does not hold yet (the diff said so),
        # and what bench/neo4j_sync.py's plain loader writes
        _q(
            "insert_nodes",
            """
            UNWIND $rows AS row
            CREATE (n:%NODE:%_label)
            SET n = row.props
            """,
        ),
        _q(
            "insert_edges",
            """
            UNWIND $rows AS row
            MATCH (a:%NODE {id: row.src}), (b:%NODE {id: row.dst})
            CREATE (a)-[r:%_rel]->(b)
            SET r = row.props
            """,
        ),
        # after neo4j-admin import: the values CSV cannot carry (an empty list), set on their nodes and edges
        _q("patch_nodes", "UNWIND $rows AS row MATCH (n:%NODE {id: row.id}) SET n += row.props"),
        _q(
            "patch_edges",
            """
            UNWIND $rows AS row
            MATCH (:%NODE {id: row.src})-[r:%_rel]->(:%NODE {id: row.dst})
            SET r += row.props
            """,
        ),
        # the version stamp: raised last in every write transaction, so it holds the node's lock only briefly
        _q(
            "bump_version",
            """
            MERGE (m:%META {key: $key})
            ON CREATE SET m.version = 0
            SET m.version = m.version + 1
            RETURN m.version AS version
            """,
        ),
        _q("clear_graph", "MATCH (n:%NODE) CALL (n) { DETACH DELETE n } IN TRANSACTIONS OF $batch ROWS"),
        # reads
        _q("version", "OPTIONAL MATCH (m:%META {key: $key}) RETURN coalesce(m.version, 0) AS version"),
        _q("count_label", "MATCH (n:%_label) RETURN count(n) AS n"),
        _q("count_rel", "MATCH ()-[r:%_rel]->() RETURN count(r) AS n"),
        _q(
            "get_nodes",
            """
            UNWIND $ids AS id
            MATCH (n:%NODE {id: id})
            WITH n ORDER BY n.id
            RETURN collect({id: n.id, label: [l IN labels(n) WHERE l <> $node_label][0], props: properties(n)}) AS rows
            """,
        ),
        _q(
            "labels_of",
            """
            UNWIND $ids AS id
            MATCH (n:%NODE {id: id})
            RETURN collect([n.id, [l IN labels(n) WHERE l <> $node_label][0]]) AS rows
            """,
        ),
        _q(
            "nodes_page",
            """
            MATCH (n:%_label) WHERE n.id > $after
            WITH n ORDER BY n.id LIMIT $page
            RETURN collect({id: n.id, label: [l IN labels(n) WHERE l <> $node_label][0], props: properties(n)}) AS rows
            """,
        ),
        _q(
            "nodes_by_name",
            """
            MATCH (n:%_label) WHERE n.name STARTS WITH $prefix
            WITH n ORDER BY n.name, n.id LIMIT $limit
            RETURN collect({id: n.id, label: [l IN labels(n) WHERE l <> $node_label][0], props: properties(n)}) AS rows
            """,
        ),
        _q("all_ids", "MATCH (n:%NODE) RETURN collect(n.id) AS rows"),
        _q("count_all", "MATCH (n) WHERE NOT n:%META RETURN count(n) AS n"),
        # what a sync diffs against: labels and content hashes only, never the properties themselves
        _q(
            "node_hashes",
            """
            UNWIND $ids AS id
            MATCH (n:%NODE {id: id})
            RETURN collect([n.id, [l IN labels(n) WHERE l <> $node_label][0], n.%HASH]) AS rows
            """,
        ),
        _q(
            "edge_hashes",
            """
            UNWIND $ids AS id
            MATCH (a:%NODE {id: id})-[r]->(b)
            RETURN collect([a.id, type(r), b.id, r.%HASH]) AS rows
            """,
        ),
        _q(
            "ids_page",
            "MATCH (n:%NODE) WHERE n.id > $after WITH n ORDER BY n.id LIMIT $page RETURN collect(n.id) AS rows",
        ),
        _q(
            "edges_of",
            """
            UNWIND $ids AS id
            MATCH (a:%NODE {id: id})-[r]->(b)
            WHERE ($type IS NULL OR type(r) = $type) AND ($dst IS NULL OR b.id = $dst)
            WITH a.id AS src, type(r) AS type, b.id AS dst, properties(r) AS props ORDER BY src, type, dst
            RETURN collect({src: src, type: type, dst: dst, props: props}) AS rows
            """,
        ),
        _q(
            "edges_into",
            """
            UNWIND $ids AS id
            MATCH (a)-[r]->(b:%NODE {id: id})
            WHERE $type IS NULL OR type(r) = $type
            WITH a.id AS src, type(r) AS type, b.id AS dst, properties(r) AS props ORDER BY src, type, dst
            RETURN collect({src: src, type: type, dst: dst, props: props}) AS rows
            """,
        ),
        _q(
            "referrers",
            """
            UNWIND $ids AS id
            MATCH (s:%NODE)-[r]->(:%NODE {id: id})
            WHERE $type IS NULL OR type(r) = $type
            WITH DISTINCT id, s
            WITH id, s, COLLECT {
                MATCH (s)-[o]->(b)
                RETURN {src: s.id, type: type(o), dst: b.id, props: properties(o)}
            } AS out
            ORDER BY id, s.id
            RETURN collect({dst: id, id: s.id, label: [l IN labels(s) WHERE l <> $node_label][0],
                            props: properties(s), out: out}) AS rows
            """,
        ),
        _q(
            "nodes_with_edges",
            """
            UNWIND $ids AS id
            MATCH (n:%NODE {id: id})
            WITH n, COLLECT {
                MATCH (n)-[o]->(b)
                RETURN {src: n.id, type: type(o), dst: b.id, props: properties(o)}
            } AS out
            ORDER BY n.id
            RETURN collect({id: n.id, label: [l IN labels(n) WHERE l <> $node_label][0], props: properties(n),
                            out: out}) AS rows
            """,
        ),
        _q(
            "neighbour_ids",
            """
            MATCH (n:%NODE {id: $id})
            CALL (n) {
                MATCH (n)-[r]->(m) WHERE $outgoing AND ($type IS NULL OR type(r) = $type) RETURN m
                UNION
                MATCH (n)<-[r]-(m) WHERE $incoming AND ($type IS NULL OR type(r) = $type) RETURN m
            }
            WITH DISTINCT m.id AS id ORDER BY id
            RETURN collect(id) AS rows
            """,
        ),
        _q(
            "text_search",
            """
            CALL db.index.fulltext.queryNodes($index, $query) YIELD node, score
            WHERE $labels IS NULL OR any(l IN labels(node) WHERE l IN $labels)
            RETURN node.id AS id, score ORDER BY score DESC, id LIMIT $limit
            """,
        ),
        _q(
            "text_scan",
            """
            MATCH (n:%_labels)
            WHERE ($labels IS NULL OR any(l IN labels(n) WHERE l IN $labels))
              AND (toLower(coalesce(n.name, '')) CONTAINS $query
                   OR toLower(coalesce(n.description, '')) CONTAINS $query)
            RETURN n.id AS id, 1.0 AS score ORDER BY id LIMIT $limit
            """,
        ),
    )
}


# ─────────────────────────── the curriculum designers' library ───────────────────────────

LIBRARY: dict[str, NamedQuery] = {
    q.name: q
    for q in (
        NamedQuery(
            name="coverage_by_topic",
            title="主题覆盖情况",
            description="每个主题（含其下位主题）有多少门课程、其中案例课多少、教材、案例和现场教学点各多少；"
            "按课程数从少到多排列，缺口排在前面。",
            params={"top": "只看某个一级主题（如 topic:competence）；设为 null 看全部"},
            example={"top": None},
            template="""
            MATCH (t:%Topic)
            WHERE $top IS NULL OR t.id = $top OR EXISTS { (t)-[:%broader*1..]->(:%Topic {id: $top}) }
            OPTIONAL MATCH (t)<-[:%broader*0..]-(sub:%Topic)
            WITH t, collect(DISTINCT sub) AS subs
            CALL (subs) {
                UNWIND subs AS s
                OPTIONAL MATCH (s)<-[:%covers]-(c:%Course)
                RETURN count(DISTINCT c) AS courses,
                       count(DISTINCT CASE WHEN c.isCase THEN c END) AS caseCourses
            }
            CALL (subs) {
                UNWIND subs AS s
                OPTIONAL MATCH (s)<-[:%covers]-(b:%Textbook)
                RETURN count(DISTINCT b) AS textbooks
            }
            CALL (subs) {
                UNWIND subs AS s
                OPTIONAL MATCH (s)<-[:%illustrates]-(k:%CaseStudy)
                RETURN count(DISTINCT k) AS cases
            }
            CALL (subs) {
                UNWIND subs AS s
                OPTIONAL MATCH (s)<-[:%illustrates]-(site:%DemonstrationSite)
                RETURN count(DISTINCT site) AS sites
            }
            RETURN t.id AS topic, t.name AS name, t.planSection AS section,
                   courses, caseCourses, textbooks, cases, sites
            ORDER BY courses, topic
            """,
        ),
        NamedQuery(
            name="topics_without_case_courses",
            title="缺少案例课的主题",
            description="没有任何案例课（isCase 为真）直接覆盖的主题，并给出可用来开发案例课的案例数，"
            "便于按规划补齐案例式教学。",
            params={"top": "只看某个一级主题之下；设为 null 看全部"},
            example={"top": None},
            template="""
            MATCH (t:%Topic)
            WHERE ($top IS NULL OR t.id = $top OR EXISTS { (t)-[:%broader*1..]->(:%Topic {id: $top}) })
              AND NOT EXISTS { (t)<-[:%covers]-(c:%Course) WHERE c.isCase }
            OPTIONAL MATCH (t)<-[:%illustrates]-(k:%CaseStudy)
            WITH t, count(k) AS availableCases
            OPTIONAL MATCH (t)<-[:%covers]-(c:%Course)
            RETURN t.id AS topic, t.name AS name, t.planSection AS section,
                   count(c) AS courses, availableCases
            ORDER BY availableCases DESC, topic
            """,
        ),
        NamedQuery(
            name="teachers_and_sites_for_topic",
            title="某主题的师资与现场教学点",
            description="擅长该主题（或讲授覆盖该主题的课程）的教师，以及体现该主题的现场教学点和包含它们的教学路线；"
            "主题按编号或名称查找，含下位主题。",
            params={"topic": "主题编号（如 topic:competence）或主题名称"},
            example={"topic": "topic:competence"},
            template="""
            MATCH (t:%Topic) WHERE t.id = $topic OR t.name = $topic
            MATCH (t)<-[:%broader*0..]-(sub:%Topic)
            WITH collect(DISTINCT sub) AS subs
            CALL (subs) {
                UNWIND subs AS s
                MATCH (p:%Teacher)
                WHERE EXISTS { (p)-[:%expertIn]->(s) } OR EXISTS { (p)<-[:%taughtBy]-(:%Course)-[:%covers]->(s) }
                OPTIONAL MATCH (p)-[:%affiliatedWith]->(i:%Institution)
                RETURN 'teacher' AS kind, p.id AS id, p.name AS name, i.name AS place
                UNION
                UNWIND subs AS s
                MATCH (site:%DemonstrationSite)-[:%illustrates]->(s)
                RETURN 'site' AS kind, site.id AS id, site.name AS name, site.region AS place
            }
            OPTIONAL MATCH (route:%TeachingRoute)-[:%includesSite]->(:%DemonstrationSite {id: id})
            RETURN kind, id, name, place, collect(route.name) AS routes
            ORDER BY kind DESC, id
            """,
        ),
        NamedQuery(
            name="cadre_learning_map",
            title="干部学习地图",
            description="一名干部学过的课程按主题归到一级主题之下：每个主题的记录数、课程数、面授学时、网络学习分钟数"
            "和最近一次学习日期；用于和岗位要求对照。",
            params={"cadre": "干部编号（如 cadre:t-001）"},
            example={"cadre": "cadre:t-001"},
            template="""
            MATCH (cadre:%Cadre {id: $cadre})<-[:%ofCadre]-(rec:%TrainingRecord)-[:%forCourse]->(c:%Course)
            MATCH (c)-[:%covers]->(t:%Topic)
            OPTIONAL MATCH (t)-[:%broader*0..]->(top:%Topic) WHERE NOT EXISTS { (top)-[:%broader]->() }
            RETURN coalesce(top.id, t.id) AS area, coalesce(top.name, t.name) AS areaName,
                   t.id AS topic, t.name AS name,
                   count(DISTINCT rec) AS records, count(DISTINCT c) AS courses,
                   sum(coalesce(rec.hours, 0)) AS hours, sum(coalesce(rec.minutes, 0)) AS minutes,
                   max(rec.date) AS lastDate
            ORDER BY area, topic
            """,
        ),
        NamedQuery(
            name="courses_not_updated",
            title="久未更新的课程",
            description="最后修改日期（无则取创建日期）早于基准日之前 N 年的课程，附覆盖主题与开设机构，"
            "提示按规划及时更新课程内容。",
            params={"years": "多少年未更新", "asOf": "基准日（YYYY-MM-DD）；设为 null 取今天"},
            example={"years": 2, "asOf": None},
            template="""
            WITH date(coalesce($asOf, toString(date()))) - duration({years: $years}) AS cutoff
            MATCH (c:%Course)
            WITH c, date(coalesce(c.dateModified, c.dateCreated)) AS modified, cutoff
            WHERE modified < cutoff
            OPTIONAL MATCH (c)-[:%covers]->(t:%Topic)
            OPTIONAL MATCH (c)-[:%offeredBy]->(i:%Institution)
            RETURN c.id AS course, c.name AS name, toString(modified) AS modified, c.status AS status,
                   collect(DISTINCT t.name) AS topics, i.name AS institution
            ORDER BY modified, course
            """,
        ),
    )
}
