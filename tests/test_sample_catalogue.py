"""The bundled sample catalogue is large, varied and valid; the cadre generator is deterministic and realistic."""

from __future__ import annotations

import collections
import io
import json
import re
from pathlib import Path

import pytest

from corpora.cadres import CadreGenerator, read_catalogue, write_cadres
from corpora.scale import write_scale_corpus
from kg.build import corpus_files, load_files
from kg.config import REPO_ROOT

SAMPLE = REPO_ROOT / "corpora" / "sample"
MINIMUMS = {"Course": 400, "Textbook": 80, "CaseStudy": 150, "Teacher": 100, "DemonstrationSite": 50, "TeachingRoute": 12}


@pytest.fixture(scope="module")
def sample(ontology):
    concept_nodes, concept_edges = ontology.concept_graph()
    labels = {n.id: n.label for n in concept_nodes}
    result = load_files(corpus_files([SAMPLE]), ontology, labels.get)
    assert result.ok, "\n".join(map(str, result.issues[:20]))
    return result, concept_nodes, concept_edges


@pytest.fixture(scope="module")
def topic_tree(sample, ontology):
    _, nodes, edges = sample
    parent = {e.src: e.dst for e in edges if e.type == ontology.relationship_types["broader"]}

    def branch(topic: str) -> str:
        while topic in parent:
            topic = parent[topic]
        return topic

    topics = [n for n in nodes if n.label == "Topic"]
    leaves = {n.id for n in topics} - set(parent.values())
    return topics, parent, branch, leaves


def _by_label(result, label):
    return [n for n in result.nodes if n.label == label]


def test_counts_per_kind_meet_the_minimums(sample):
    result, _, _ = sample
    counts = collections.Counter(n.label for n in result.nodes)
    print("\n各类数量：", dict(sorted(counts.items())))
    for label, minimum in MINIMUMS.items():
        assert counts[label] >= minimum, f"{label} 只有 {counts[label]} 个，至少需要 {minimum}"
    assert counts["Institution"] + counts["Platform"] >= 40


def test_courses_cover_every_branch_every_competence_theme_and_every_leaf(sample, topic_tree, ontology):
    result, _, _ = sample
    topics, parent, branch, leaves = topic_tree
    covers = ontology.relationship_types["covers"]
    per_topic: dict[str, set[str]] = collections.defaultdict(set)
    for edge in result.edges:
        if edge.type == covers and edge.src.startswith("course:"):
            per_topic[edge.dst].add(edge.src)
    per_branch = collections.Counter()
    for topic, courses in per_topic.items():
        per_branch[branch(topic)] += len(courses)
    print("\n各一级分支课程数：", dict(per_branch))
    assert {t.id for t in topics if t.id not in parent} <= set(per_branch), "每个一级分支都应有课程"
    themes = [t for t in topics if t.props.get("topicKind") == "履职能力专题"]
    assert len(themes) == 18
    thin_themes = {t.props["name"]: len(per_topic[t.id]) for t in themes if len(per_topic[t.id]) < 8}
    assert not thin_themes, f"履职能力专题课程不足 8 门：{thin_themes}"
    thin_leaves = {t: len(per_topic[t]) for t in leaves if len(per_topic[t]) < 2}
    assert not thin_leaves, f"叶子主题课程不足 2 门：{thin_leaves}"


def test_course_fields_are_varied_like_a_real_catalogue(sample):
    result, _, _ = sample
    courses = _by_label(result, "Course")
    for field, expected in (
        ("deliveryMode", {"面授", "网络", "直播", "混合"}),
        ("lecturerType", {"专职教师", "领导干部", "专家学者", "基层干部", "先进典型"}),
        ("status", {"草稿", "审核中", "已发布", "已退出"}),
        ("courseType", {"专题课", "案例课", "现场教学", "网络课程"}),
    ):
        seen = {c.props[field] for c in courses}
        assert seen == expected, (field, seen)
    methods = collections.Counter(m for c in courses for m in c.props["teachingMethod"])
    assert len(methods) >= 8, methods
    published = sum(c.props["status"] == "已发布" for c in courses) / len(courses)
    assert 0.7 <= published <= 0.95
    cases = sum(c.props["isCase"] for c in courses) / len(courses)
    assert cases >= 1 / 3, f"案例课程占比 {cases:.2f}"
    years = {c.props["dateCreated"][:4] for c in courses} | {c.props["dateModified"][:4] for c in courses}
    assert {str(y) for y in range(2019, 2027)} <= years
    assert all("rating" in c.props for c in courses if c.props["status"] == "已发布")


def test_course_descriptions_are_written_not_templated(sample):
    result, _, _ = sample
    courses = _by_label(result, "Course")
    short_or_long = [c.id for c in courses if not 80 <= len(c.props["description"]) <= 300]
    assert not short_or_long, f"简介长度不在 80–300 字：{short_or_long[:10]}"
    seen: dict[str, set[str]] = collections.defaultdict(set)
    for course in courses:
        for sentence in re.split(r"[。！？；!?;\n]", course.props["description"]):
            sentence = sentence.strip()
            if len(sentence) >= 15:
                seen[sentence].add(course.id)
    repeated = {s: sorted(ids) for s, ids in seen.items() if len(ids) > 1}
    assert not repeated, f"多门课程共用的句子：{list(repeated.items())[:5]}"
    titles = collections.Counter(c.props["name"] for c in courses)
    assert not [t for t, n in titles.items() if n > 1], "课程名称重复"


def test_materials_teachers_and_sites(sample, ontology):
    result, _, _ = sample
    textbooks = _by_label(result, "Textbook")
    assert sum(t.props["isCase"] for t in textbooks) / len(textbooks) >= 1 / 3
    assert {t.props["textbookType"] for t in textbooks} == {"通用教材", "专业教材", "区域教材", "乡土教材"}
    uses_case = ontology.relationship_types["usesCase"]
    cases_in_courses = {e.dst for e in result.edges if e.type == uses_case}
    assert len(cases_in_courses) >= 120, "大部分案例应被课程使用"
    teachers = _by_label(result, "Teacher")
    assert all(t.props["isSample"] for t in teachers), "教师是虚构人物，须标为样例"
    assert any(t.props["isFamous"] for t in teachers) and any(t.props["lecturerType"] == "领导干部" for t in teachers)
    assert {t.props["tier"] for t in teachers} >= {"国家级", "省级", "市级"}
    institutions = _by_label(result, "Institution")
    assert {i.props["level"] for i in institutions} == {"中央", "省", "市", "县"}
    assert {i.props["institutionType"] for i in institutions} >= {"党校（行政学院）", "干部学院", "社会主义学院", "高校基地", "部门行业培训机构", "国有企业培训机构"}
    names = {i.props["name"] for i in institutions}
    assert {"中国浦东干部学院", "中国井冈山干部学院", "中国延安干部学院"} <= names
    platforms = _by_label(result, "Platform")
    assert any(not p.props["recognised"] for p in platforms) and any(p.props["recognised"] for p in platforms)


@pytest.fixture(scope="module")
def generator(ontology):
    return CadreGenerator(ontology, read_catalogue([SAMPLE]), seed=11)


def _generate(generator, count):
    cadres, records = io.StringIO(), io.StringIO()
    write_cadres(generator, count, cadres, records)
    return cadres.getvalue(), records.getvalue()


def test_generator_is_deterministic_for_a_seed(generator, ontology):
    first = _generate(generator, 60)
    again = _generate(CadreGenerator(ontology, read_catalogue([SAMPLE]), seed=11), 60)
    other = _generate(CadreGenerator(ontology, read_catalogue([SAMPLE]), seed=12), 60)
    assert first == again
    assert first != other


def test_generated_cadres_are_valid_and_cover_every_category_and_group(generator, ontology, tmp_path):
    cadres_text, records_text = _generate(generator, 2000)
    (tmp_path / "cadres.jsonl").write_text(cadres_text, encoding="utf-8")
    (tmp_path / "records.jsonl").write_text(records_text, encoding="utf-8")
    concept_nodes, _ = ontology.concept_graph()
    labels = {n.id: n.label for n in concept_nodes}
    result = load_files(corpus_files([SAMPLE, tmp_path]), ontology, labels.get)
    assert result.ok, "\n".join(map(str, result.issues[:10]))
    cadres = [json.loads(line) for line in cadres_text.splitlines()]
    records = [json.loads(line) for line in records_text.splitlines()]
    categories = {n.id for n in concept_nodes if n.label == "CadreCategory"}
    assert {c["category"] for c in cadres} == categories
    groups_seen = {g for c in cadres for g in c["inGroup"]}
    assert {"group:top-leader", "group:leadership-member", "group:young-cadre", "group:new-civil-servant",
            "group:grassroots-cadre", "group:non-party-cadre", "group:professional-talent"} <= groups_seen
    per_cadre = collections.Counter(r["ofCadre"] for r in records)
    assert sum(1 for c in cadres if c["id"] not in per_cadre) >= 50, "应有没有任何记录的新录用公务员"
    assert {r["mode"] for r in records} == {"集中培训", "网络自学"}
    assert {r["situation"] for r in records if r["mode"] == "集中培训"} == {"脱产培训", "中心组学习", "网络专题培训", "集中宣讲"}
    assert min(r["date"] for r in records) < "2023-02-01" and max(r["date"] for r in records) <= "2026-11-15"
    leaders = {c["id"] for c in cadres if "group:leadership-member" in c["inGroup"]}
    with_class = {r["ofCadre"] for r in records if r.get("inClass")}
    assert leaders - with_class, "应有超过 2—3 年未参加系统培训的领导班子成员"
    assert leaders & with_class
    same_day = collections.Counter((r["ofCadre"], r["date"]) for r in records if r.get("minutes"))
    assert max(same_day.values()) >= 4, "应有一天内刷大量网络课程的可疑模式"
    assert any(r.get("viaPlatform") == "platform:commercial-app" for r in records)


def test_scale_mode_writes_a_valid_streamed_corpus(ontology, tmp_path):
    counts = write_scale_corpus(ontology, SAMPLE, tmp_path, courses=500, cadres=300, records_per_cadre=5, seed=3)
    assert counts["courses"] == 500 and counts["cadres"] == 300
    concept_nodes, _ = ontology.concept_graph()
    result = load_files(corpus_files([tmp_path]), ontology, {n.id: n.label for n in concept_nodes}.get)
    assert result.ok, "\n".join(map(str, result.issues[:10]))
    records = sum(1 for n in result.nodes if n.label == "TrainingRecord")
    assert records == counts["records"] and records <= 300 * 5
