"""Checks of the plan's topic scheme (ontology/topics.ttl), the role schemes (ontology/roles.ttl)
and the role → topic requirements (ontology/requirements.yaml).

Uses rdflib and PyYAML only (networkx when installed); imports nothing from the project.
"""
from __future__ import annotations

import re
from collections import defaultdict
from pathlib import Path

import pytest
import yaml
from rdflib import RDF, Graph, Literal, Namespace, URIRef
from rdflib.namespace import SKOS

ROOT = Path(__file__).resolve().parents[1]
ONTOLOGY = ROOT / "ontology"

GX = Namespace("https://ganxun.org.cn/ns#")
GXT = Namespace("https://ganxun.org.cn/topic/")
GXC = Namespace("https://ganxun.org.cn/category/")
GXG = Namespace("https://ganxun.org.cn/group/")
GXD = Namespace("https://ganxun.org.cn/domain/")

COMPACT = {"topic": GXT, "category": GXC, "group": GXG, "domain": GXD}

# Every topic the plan names, in the plan's (or DESIGN.md §2.2's) wording. Each must be the
# prefLabel or an altLabel (@zh) of some concept.
PLAN_LABELS = {
    "二 党的创新理论": [
        "习近平新时代中国特色社会主义思想", "习近平经济思想", "习近平法治思想", "习近平生态文明思想",
        "习近平强军思想", "习近平外交思想", "习近平文化思想", "关于党的建设的重要思想",
        "习近平总书记关于党的建设的重要思想", "党的二十大精神", "两个结合", "两个确立", "两个维护",
        "四个意识", "四个自信", "读原著学原文", "《习近平谈治国理政》", "《习近平著作选读》",
        "《习近平新时代中国特色社会主义思想专题摘编》", "中国式现代化", "主题教育", "新发展理念",
        "马克思列宁主义", "毛泽东思想", "邓小平理论", "科学发展观",
    ],
    "三（一） 政治训练": [
        "党章党规党纪", "党章和党规党纪", "政治忠诚", "政治纪律和政治规矩", "民主集中制",
        "权力观政绩观事业观", "正确权力观政绩观事业观", "斗争精神和斗争本领", "党的全面领导",
        "党的基本理论、基本路线、基本方略", "党性教育", "党的宗旨", "革命传统",
        "党史", "新中国史", "改革开放史", "社会主义发展史", "中华民族发展史",
        "中国共产党人精神谱系", "伟大建党精神", "党风廉政", "反“四风”", "铸牢中华民族共同体意识",
        "社会主义核心价值观", "中华优秀传统文化", "中华民族传统美德", "政德", "政德教育", "警示教育",
        "家庭家教家风",
    ],
    "三（二）（三） 关键少数与年轻干部": [
        "提高政治能力", "政治判断力", "政治领悟力", "政治执行力", "理想信念",
    ],
    "四（一） 履职能力专题": [
        "建设现代化产业体系", "全面推进乡村振兴", "提升城镇化发展质量", "促进区域协调发展",
        "建设世界一流企业", "办好人民满意的教育", "推进科技自立自强", "发展全过程人民民主",
        "坚持全面依法治国", "发展文化事业", "国际传播能力建设", "推进碳达峰碳中和",
        "贯彻总体国家安全观", "增强维护国家安全能力", "深化公共安全治理和社会治理",
        "防范化解金融风险", "应急管理和突发事件处置", "增强党组织政治功能和组织功能",
    ],
    "四（一） 通识": [
        "经济", "政治", "文化", "社会", "生态文明", "党的建设", "宪法和法律法规",
        "军事", "国防", "外交", "统战", "教育", "科技", "民族", "宗教", "财税", "金融", "统计",
        "信访", "保密", "应急管理", "城市建设", "公共卫生", "舆情应对", "基层治理", "反垄断",
        "知识产权", "身心健康",
    ],
    "四（一） 新知识新技能": ["信息技术", "人工智能", "生物技术", "新能源", "新材料"],
    "二（三） 思维能力": [
        "战略思维", "历史思维", "辩证思维", "系统思维", "创新思维", "法治思维", "底线思维", "调查研究",
    ],
}

TOP_CONCEPTS = {"theory", "political", "competence", "general", "newtech", "thinking"}

SECTION_RE = re.compile(
    r"^(?:[一二三四五六七八](?:（[一二三四五六]）)*(?:、\S+)?|专栏[1-6])$"
)

CATEGORIES = {
    "county-leader": "A", "civil-servant-senior": "A", "soe-leader": "A", "pi-manager-senior": "A",
    "township-leader": "B", "civil-servant-junior": "B", "soe-other-manager": "B", "professional": "C",
}
REQUIRED_GROUPS = {
    "top-leader", "leadership-member", "young-cadre", "new-civil-servant", "grassroots-cadre",
    "village-secretary", "professional-talent", "non-party-cadre", "female-cadre",
    "ethnic-minority-cadre", "soe-leader-group", "department-head", "theory-backbone", "party-affairs",
}


# --------------------------------------------------------------------------------------------
# fixtures and helpers
# --------------------------------------------------------------------------------------------

@pytest.fixture(scope="module")
def topics() -> Graph:
    return Graph().parse(ONTOLOGY / "topics.ttl", format="turtle")


@pytest.fixture(scope="module")
def roles() -> Graph:
    return Graph().parse(ONTOLOGY / "roles.ttl", format="turtle")


@pytest.fixture(scope="module")
def requirements() -> dict:
    with open(ONTOLOGY / "requirements.yaml", encoding="utf-8") as fh:
        return yaml.safe_load(fh)


def concepts(g: Graph) -> list[URIRef]:
    return sorted(set(g.subjects(RDF.type, SKOS.Concept)))


def local(u: URIRef) -> str:
    return str(u).rsplit("/", 1)[-1]


def zh_labels(g: Graph, c: URIRef, prop) -> list[str]:
    return [str(o) for o in g.objects(c, prop) if isinstance(o, Literal) and o.language == "zh"]


def ancestors(g: Graph, c: URIRef) -> set[URIRef]:
    seen: set[URIRef] = set()
    stack = list(g.objects(c, SKOS.broader))
    while stack:
        p = stack.pop()
        if p not in seen:
            seen.add(p)
            stack.extend(g.objects(p, SKOS.broader))
    return seen


def find_cycle(edges: dict[URIRef, set[URIRef]]) -> list[URIRef] | None:
    """Return one cycle (as a node list) in the directed graph, or None."""
    try:
        import networkx as nx
    except ImportError:  # plain DFS
        white, grey, black = 0, 1, 2
        colour: dict[URIRef, int] = defaultdict(int)
        path: list[URIRef] = []

        def visit(n):
            colour[n] = grey
            path.append(n)
            for m in edges.get(n, ()):
                if colour[m] == grey:
                    return path[path.index(m):] + [m]
                if colour[m] == white:
                    found = visit(m)
                    if found:
                        return found
            path.pop()
            colour[n] = black
            return None

        for n in list(edges):
            if colour[n] == white:
                found = visit(n)
                if found:
                    return found
        return None
    dg = nx.DiGraph()
    for a, bs in edges.items():
        for b in bs:
            dg.add_edge(a, b)
    try:
        return [u for u, _ in nx.find_cycle(dg)]
    except nx.NetworkXNoCycle:
        return None


# --------------------------------------------------------------------------------------------
# topics.ttl
# --------------------------------------------------------------------------------------------

def test_every_plan_topic_has_a_concept(topics):
    labels = set()
    for c in concepts(topics):
        labels.update(zh_labels(topics, c, SKOS.prefLabel))
        labels.update(zh_labels(topics, c, SKOS.altLabel))
    missing = [f"{part}: {lab}" for part, labs in PLAN_LABELS.items() for lab in labs if lab not in labels]
    assert not missing, "plan topics with no concept (prefLabel/altLabel @zh):\n  " + "\n  ".join(missing)


def test_scheme_and_top_concepts(topics):
    scheme = GXT.scheme
    assert (scheme, RDF.type, SKOS.ConceptScheme) in topics
    assert zh_labels(topics, scheme, SKOS.prefLabel) == ["全国干部教育培训规划（2023—2027年）主题体系"]
    assert any(o.language == "en" for o in topics.objects(scheme, SKOS.prefLabel))
    has_top = {local(o) for o in topics.objects(scheme, SKOS.hasTopConcept)}
    top_of = {local(s) for s in topics.subjects(SKOS.topConceptOf, scheme)}
    assert has_top == TOP_CONCEPTS
    assert top_of == TOP_CONCEPTS


def test_eighteen_competence_themes(topics):
    themes = sorted(topics.subjects(GX.topicKind, Literal("履职能力专题")))
    assert len(themes) == 18, [local(t) for t in themes]
    for t in themes:
        assert (t, SKOS.broader, GXT.competence) in topics, local(t)
    orders = sorted(int(topics.value(t, GX.planOrder)) for t in themes)
    assert orders == list(range(1, 19))
    by_order = {int(topics.value(t, GX.planOrder)): zh_labels(topics, t, SKOS.prefLabel)[0] for t in themes}
    assert [by_order[i] for i in range(1, 19)] == PLAN_LABELS["四（一） 履职能力专题"]


def test_every_concept_is_complete(topics):
    problems = []
    for c in concepts(topics):
        name = local(c)
        if not re.fullmatch(r"[a-z0-9]+(?:-[a-z0-9]+)*", name):
            problems.append(f"{name}: local name is not lowercase kebab-case ASCII")
        zh = zh_labels(topics, c, SKOS.prefLabel)
        if len(zh) != 1:
            problems.append(f"{name}: {len(zh)} @zh prefLabels")
        if not any(o.language == "en" for o in topics.objects(c, SKOS.prefLabel)):
            problems.append(f"{name}: no @en prefLabel")
        if (c, SKOS.inScheme, GXT.scheme) not in topics:
            problems.append(f"{name}: not in gxt:scheme")
        if (c, RDF.type, GX.Topic) not in topics:
            problems.append(f"{name}: not typed gx:Topic (the SHACL TopicShape targets gx:Topic)")
        if not zh_labels(topics, c, SKOS.definition):
            problems.append(f"{name}: no @zh definition")
        sections = [str(s) for s in topics.objects(c, GX.planSection)]
        if len(sections) != 1 or not SECTION_RE.match(sections[0]):
            problems.append(f"{name}: bad gx:planSection {sections}")
        prio = list(topics.objects(c, GX.planPriority))
        if len(prio) != 1 or int(prio[0]) not in (1, 2, 3):
            problems.append(f"{name}: bad gx:planPriority {prio}")
        if name not in TOP_CONCEPTS and not list(topics.objects(c, SKOS.broader)):
            problems.append(f"{name}: non-top concept without skos:broader")
        if name in TOP_CONCEPTS and list(topics.objects(c, SKOS.broader)):
            problems.append(f"{name}: top concept has a broader")
    assert not problems, "\n".join(problems)


def test_broader_narrower_are_inverses(topics):
    broader = set(topics.subject_objects(SKOS.broader))
    narrower_inv = {(o, s) for s, o in topics.subject_objects(SKOS.narrower)}
    missing_narrower = [f"{local(c)} broader {local(p)}" for c, p in broader - narrower_inv]
    missing_broader = [f"{local(p)} narrower {local(c)}" for c, p in narrower_inv - broader]
    assert not missing_narrower, "no matching skos:narrower: " + ", ".join(missing_narrower)
    assert not missing_broader, "no matching skos:broader: " + ", ".join(missing_broader)


def test_broader_has_no_cycles(topics):
    edges: dict[URIRef, set[URIRef]] = defaultdict(set)
    for s, o in topics.subject_objects(SKOS.broader):
        edges[s].add(o)
    cycle = find_cycle(edges)
    assert cycle is None, "skos:broader cycle: " + " -> ".join(local(n) for n in cycle)
    # every concept reaches a top concept
    for c in concepts(topics):
        roots = {local(a) for a in ancestors(topics, c) | {c}} & TOP_CONCEPTS
        assert len(roots) == 1, f"{local(c)} reaches top concepts {roots}"


def test_prerequisites_form_a_dag_without_ancestor_links(topics):
    all_concepts = set(concepts(topics))
    edges: dict[URIRef, set[URIRef]] = defaultdict(set)
    problems = []
    for s, o in topics.subject_objects(GX.hasPrerequisite):
        edges[s].add(o)
        if o not in all_concepts:
            problems.append(f"{local(s)} -> {o}: prerequisite is not a concept")
        if s == o:
            problems.append(f"{local(s)} is its own prerequisite")
        if o in ancestors(topics, s) or s in ancestors(topics, o):
            problems.append(f"{local(s)} -> {local(o)}: links a concept to its ancestor/descendant")
    assert not problems, "\n".join(problems)
    cycle = find_cycle(edges)
    assert cycle is None, "gx:hasPrerequisite cycle: " + " -> ".join(local(n) for n in cycle)
    assert sum(len(v) for v in edges.values()) >= 30


def test_related_is_symmetric_and_not_hierarchical(topics):
    problems = []
    for s, o in topics.subject_objects(SKOS.related):
        if (o, SKOS.related, s) not in topics:
            problems.append(f"{local(s)} related {local(o)} not written back")
        if o in ancestors(topics, s) or s in ancestors(topics, o):
            problems.append(f"{local(s)} related {local(o)}: also hierarchical")
    assert not problems, "\n".join(problems)
    # the two pairs the brief names explicitly
    assert (GXT["emergency-management"], SKOS.related, GXT["emergency-response"]) in topics
    assert (GXT["finance"], SKOS.related, GXT["financial-risk"]) in topics


def test_labels_are_unique(topics):
    pref: dict[str, list[str]] = defaultdict(list)
    alt: dict[str, set[str]] = defaultdict(set)
    for c in concepts(topics):
        for lab in zh_labels(topics, c, SKOS.prefLabel):
            pref[lab].append(local(c))
        for lab in zh_labels(topics, c, SKOS.altLabel):
            alt[lab].add(local(c))
    dup_pref = {lab: cs for lab, cs in pref.items() if len(cs) > 1}
    assert not dup_pref, f"duplicate @zh prefLabels: {dup_pref}"
    clashes = {lab: sorted(cs) for lab, cs in alt.items() if len(cs) > 1}
    assert not clashes, f"altLabels on more than one concept: {clashes}"
    alt_is_pref = {lab: (sorted(alt[lab]), pref[lab]) for lab in alt if lab in pref}
    assert not alt_is_pref, f"altLabels that are another concept's prefLabel: {alt_is_pref}"


# --------------------------------------------------------------------------------------------
# roles.ttl
# --------------------------------------------------------------------------------------------

def test_cadre_categories(roles):
    cats = {local(c): c for c in roles.subjects(RDF.type, GX.CadreCategory)}
    assert set(cats) == set(CATEGORIES)
    for name, c in cats.items():
        assert str(roles.value(c, GX.hourGroup)) == CATEGORIES[name], name
        assert (c, SKOS.inScheme, GXC.scheme) in roles
        assert (c, RDF.type, SKOS.Concept) in roles
        assert str(roles.value(c, GX.planSection)) == "一、学时指标"
        assert len(zh_labels(roles, c, SKOS.prefLabel)) == 1
        assert any(o.language == "en" for o in roles.objects(c, SKOS.prefLabel))


def test_target_groups_and_domains(roles):
    groups = {local(c) for c in roles.subjects(RDF.type, GX.TargetGroup)}
    assert REQUIRED_GROUPS <= groups, REQUIRED_GROUPS - groups
    domains = {local(c) for c in roles.subjects(RDF.type, GX.PositionDomain)}
    assert len(domains) >= 25
    for cls, scheme in ((GX.TargetGroup, GXG.scheme), (GX.PositionDomain, GXD.scheme)):
        seen_pref: dict[str, str] = {}
        for c in roles.subjects(RDF.type, cls):
            assert (c, SKOS.inScheme, scheme) in roles, local(c)
            assert (c, RDF.type, SKOS.Concept) in roles, local(c)
            zh = zh_labels(roles, c, SKOS.prefLabel)
            assert len(zh) == 1, local(c)
            assert zh[0] not in seen_pref, f"{local(c)} and {seen_pref[zh[0]]} share prefLabel {zh[0]}"
            seen_pref[zh[0]] = local(c)
            assert any(o.language == "en" for o in roles.objects(c, SKOS.prefLabel)), local(c)
            assert zh_labels(roles, c, SKOS.altLabel), f"{local(c)}: no altLabel"
            section = roles.value(c, GX.planSection)
            assert section is not None and SECTION_RE.match(str(section)), f"{local(c)}: {section}"


#: Position domains added for issue 12 (roles a cadre actually has), with their Chinese prefLabel.
ISSUE_12_DOMAINS = {
    "principal-leadership": "党政主要负责", "national-security": "国家安全",
    "higher-education-research": "高等教育与科研", "enterprise-finance": "企业财务",
}
PLAN_CITATION_RE = re.compile(r"[一二三四五六七八]（[一二三四五六]）|专栏[1-6]")


def test_issue_12_domains_are_defined_with_a_plan_citation(roles, requirements):
    for slug, label in ISSUE_12_DOMAINS.items():
        c = GXD[slug]
        assert (c, RDF.type, GX.PositionDomain) in roles, slug
        assert (GXD.scheme, SKOS.hasTopConcept, c) in roles, slug
        assert zh_labels(roles, c, SKOS.prefLabel) == [label]
        definition = zh_labels(roles, c, SKOS.definition)
        assert len(definition) == 1 and PLAN_CITATION_RE.search(definition[0]), f"{slug}: {definition}"
        entries = requirements["domains"][f"domain:{slug}"]
        assert sum(e["level"] == "essential" for e in entries) >= 3, slug


def test_every_position_domain_has_requirements_and_is_a_top_concept(roles, requirements):
    domains = {local(c) for c in roles.subjects(RDF.type, GX.PositionDomain)}
    assert domains == {local(c) for c in roles.objects(GXD.scheme, SKOS.hasTopConcept)}
    assert {f"domain:{d}" for d in domains} == set(requirements["domains"])


# --------------------------------------------------------------------------------------------
# requirements.yaml
# --------------------------------------------------------------------------------------------

def _iter_requirements(req: dict):
    yield "all_cadres", req["all_cadres"]
    for key in ("categories", "groups", "domains"):
        for owner, items in (req.get(key) or {}).items():
            yield owner, items


def _exists(id_: str, topics: Graph, roles: Graph) -> bool:
    prefix, _, slug = id_.partition(":")
    if prefix not in COMPACT or not slug:
        return False
    uri = COMPACT[prefix][slug]
    g = topics if prefix == "topic" else roles
    return (uri, RDF.type, SKOS.Concept) in g


def test_requirements_structure(requirements):
    assert set(requirements) >= {"defaults", "all_cadres", "categories", "groups", "domains"}
    d = requirements["defaults"]
    assert d["essential_hours"] > 0 and d["optional_hours"] > 0


def test_requirement_ids_exist(requirements, topics, roles):
    missing = []
    prefix_of = {"categories": "category", "groups": "group", "domains": "domain"}
    for key, prefix in prefix_of.items():
        for owner in requirements[key]:
            if not owner.startswith(prefix + ":") or not _exists(owner, topics, roles):
                missing.append(f"{key}: {owner}")
    for owner, items in _iter_requirements(requirements):
        for item in items:
            t = item.get("topic", "")
            if not t.startswith("topic:") or not _exists(t, topics, roles):
                missing.append(f"{owner}: {t}")
    assert not missing, "unknown ids in requirements.yaml:\n  " + "\n  ".join(missing)


def test_every_requirement_has_level_and_section(requirements):
    problems = []
    for owner, items in _iter_requirements(requirements):
        assert items, f"{owner}: empty list"
        seen = set()
        for item in items:
            where = f"{owner} / {item.get('topic')}"
            if item.get("level") not in {"essential", "optional"}:
                problems.append(f"{where}: level {item.get('level')!r}")
            sec = item.get("section")
            if not isinstance(sec, str) or not SECTION_RE.match(sec):
                problems.append(f"{where}: section {sec!r}")
            if "hours" in item and not (isinstance(item["hours"], (int, float)) and item["hours"] > 0):
                problems.append(f"{where}: hours {item['hours']!r}")
            extra = set(item) - {"topic", "level", "section", "hours", "note"}
            if extra:
                problems.append(f"{where}: unknown keys {sorted(extra)}")
            if item.get("topic") in seen:
                problems.append(f"{where}: listed twice")
            seen.add(item.get("topic"))
    assert not problems, "\n".join(problems)


def test_every_role_has_requirements(requirements, roles):
    uncovered = []
    for cls, key, prefix in ((GX.CadreCategory, "categories", "category"),
                             (GX.TargetGroup, "groups", "group"),
                             (GX.PositionDomain, "domains", "domain")):
        for c in roles.subjects(RDF.type, cls):
            if not requirements[key].get(f"{prefix}:{local(c)}"):
                uncovered.append(f"{prefix}:{local(c)}")
    assert not uncovered, "roles with no requirement: " + ", ".join(sorted(uncovered))


def test_all_cadres_core(requirements):
    essential = {i["topic"] for i in requirements["all_cadres"] if i["level"] == "essential"}
    for t in ("topic:xi-thought", "topic:twentieth-congress", "topic:party-constitution", "topic:party-history"):
        assert t in essential, t
