"""Auto-tagging on the sample catalogue: suggestions with calibrated confidence, and the tag check.

The tagger is fitted on the sample catalogue itself (every item left out of its own neighbourhood), so
these tests assert what a catalogue editor would see: a text about digital government gets 数字政府建设,
a theory course whose tag was swapped for 新能源 is flagged with its real topic suggested, an untagged case
gets suggestions, and correctly tagged items pass.
"""

from __future__ import annotations

import json
from dataclasses import replace

import numpy as np
import pytest
from click.testing import CliRunner

from recommender.search.tagging import FEATURES, TopicTagger, check_files
from tests import searchkit


@pytest.fixture(scope="module")
def tagger(request):
    return TopicTagger.from_service(searchkit.sample_service(request))


def test_calibration_weights_every_kind_of_evidence_positively(tagger):
    weights = dict(zip(FEATURES, tagger.weights))
    assert all(weights[name] > 0 for name in FEATURES), weights


@pytest.mark.parametrize(
    ("text", "topic"),
    [
        ("一网通办与政务服务数字化转型：打通部门数据壁垒，让群众少跑腿", "topic:digital-government"),
        ("在村里设调解室，矛盾纠纷就地化解，小事不出村、大事不出镇", "topic:grassroots-governance"),
        ("光伏、风电和储能快速发展，怎样建设新型电力系统", "topic:new-energy"),
    ],
)
def test_free_text_gets_the_right_topic_first_with_high_confidence(tagger, text, topic):
    best = tagger.suggest(text, k=3)[0]
    assert best.topic == topic and best.confidence > 0.5
    assert best.label == tagger.service.topic_props[topic]["name"]


def test_suggestions_for_a_catalogue_item_ignore_its_own_tags(tagger):
    doc = tagger.service.document("course:theory-001")  # 《习近平谈治国理政》第一卷导读
    suggestions = tagger.suggest_for(replace(doc, topics=()), k=3)
    assert suggestions[0].topic in doc.topics
    confidences = [s.confidence for s in suggestions]
    assert confidences == sorted(confidences, reverse=True) and all(0 <= c <= 1 for c in confidences)


def test_support_of_a_broad_tag_comes_from_its_narrower_topics(tagger):
    doc = tagger.service.document("course:theory-049")  # 习近平法治思想的核心要义
    probabilities = tagger.confidences([doc])[0]
    below = [tagger.topic_ids.index(t) for t in tagger.service.narrower_topics("topic:theory")]
    assert tagger.support(probabilities, "topic:theory") == pytest.approx(probabilities[below].max())
    # nobody tags such a course with the broad 党的创新理论 itself, but 习近平法治思想 below it bears it out
    assert probabilities[tagger.topic_ids.index("topic:theory")] < 0.1
    assert tagger.support(probabilities, "topic:theory") > 0.5
    assert tagger.support(probabilities, "topic:not-in-scheme") == 0.0


class TestCheck:
    def test_swapped_tag_is_flagged_with_the_real_topic_suggested(self, tagger):
        doc = tagger.service.document("course:theory-001")
        wrong = replace(doc, topics=("topic:new-energy",))
        [issue] = tagger.check([wrong])
        assert issue.problem == "mistagged" and issue.item_id == doc.id
        assert issue.tags[0][0] == "topic:new-energy" and issue.tags[0][1] < tagger.flag_below
        assert issue.suggestions[0].topic in doc.topics
        assert "可能标错" in issue.message and "topic:new-energy" in issue.message

    def test_untagged_item_gets_suggestions(self, tagger):
        doc = tagger.service.document("course:general-118")  # 光伏治沙与“牧光互补”现场教学
        [issue] = tagger.check([replace(doc, id="course:new-118", topics=())])
        assert issue.problem == "untagged" and "未标注主题" in issue.message
        assert "topic:new-energy" in [s.topic for s in issue.suggestions]

    def test_correctly_tagged_items_pass(self, tagger):
        ids = ["course:theory-001", "course:general-118", "course:general-087", "course:competence-a-042"]
        assert tagger.check([tagger.service.document(i) for i in ids]) == []

    def test_few_catalogue_items_are_flagged(self, tagger):
        """The sample catalogue as tagged: flags stay a short list for an editor (about 3 % measured)."""
        issues = tagger.check(tagger.service.documents)
        assert len(issues) <= 0.06 * len(tagger.service.documents)

    def test_swaps_across_branches_are_mostly_caught(self, tagger):
        """Give 60 items a topic from another top-level branch: nearly all must be flagged."""
        service = tagger.service
        rng = np.random.default_rng(11)
        tops = {t: _top(service, t) for t in tagger.topic_ids}
        docs = [d for d in service.documents if d.topics]
        swapped = []
        for doc in rng.choice(np.array(docs, dtype=object), 60, replace=False):
            branches = {tops[t] for t in doc.topics}
            others = [t for t in tagger.topic_ids if tops[t] not in branches]
            swapped.append(replace(doc, topics=(others[rng.integers(len(others))],)))
        flagged = {i.item_id for i in tagger.check(swapped)}
        assert len(flagged) >= 0.9 * len(swapped)


def _top(service, topic: str) -> str:
    """The top concept above ``topic`` (a topic nothing else has below it)."""
    tops = [t for t in service.topic_props
            if not any(t in service.narrower_topics(u) for u in service.topic_props if u != t)]
    return next((top for top in tops if topic in service.narrower_topics(top)), topic)


def test_check_files_reports_file_and_line(tagger, tmp_path, ontology):
    good = tagger.service.document("course:general-087")
    rows = [
        {"type": "Course", "id": "course:x-1", "name": good.title, "description": good.description,
         "covers": list(good.topics)},
        {"type": "Course", "id": "course:x-2", "name": "碳排放权交易市场入门",
         "description": "解释全国碳排放权交易市场的配额分配、企业履约和碳价形成。", "covers": ["topic:party-history"]},
        {"type": "CaseStudy", "id": "case:x-3", "name": "某县山洪灾害提前转移避险",
         "description": "强降雨前，乡镇干部逐户通知，把山脚下的老人转移到避灾安置点。"},
        {"type": "Teacher", "id": "teacher:x-4", "name": "不参与主题检查"},
    ]
    path = tmp_path / "import.jsonl"
    path.write_text("\n".join(json.dumps(r, ensure_ascii=False) for r in rows) + "\n", encoding="utf-8")
    checked, issues = check_files([path], tagger, ontology)
    assert checked == 3
    assert [(i.item_id, i.problem, i.source) for i in issues] == [
        ("course:x-2", "mistagged", f"{path}:2"),
        ("case:x-3", "untagged", f"{path}:3"),
    ]


def test_cli_tag_check(tagger, request, tmp_path, monkeypatch):
    from recommender.cli import main

    settings = searchkit.sample_settings(request)
    monkeypatch.setenv("GANXUN_HOME", str(settings.home))
    monkeypatch.setenv("GANXUN_CORPORA", str(searchkit.SAMPLE))
    path = tmp_path / "new.jsonl"
    path.write_text(json.dumps({"type": "Course", "id": "course:x-9", "name": "碳排放权交易市场入门",
                                "description": "解释全国碳排放权交易市场的配额分配、企业履约和碳价形成。",
                                "covers": ["topic:party-history"]}, ensure_ascii=False) + "\n", encoding="utf-8")
    result = CliRunner().invoke(main, ["tag-check", str(path), "--strict"])
    assert result.exit_code == 1, result.output
    assert "course:x-9" in result.output and "可能标错 1" in result.output


def test_every_topic_is_defined_and_cites_the_plan(tagger):
    """The label evidence reads each topic's SKOS definition; every topic has one, and the plan section naming it."""
    props = tagger.service.topic_props
    assert all(props[t].get("definition") and props[t].get("planSection") for t in tagger.topic_ids)


def test_a_batch_is_encoded_in_few_encoder_calls(tagger, monkeypatch):
    """Tagging a whole import encodes its new texts together (``ENCODE_BATCH`` per call), not one by one."""
    from recommender.search.documents import Document
    from recommender.search.tagging import ENCODE_BATCH

    calls: list[int] = []
    encoder = tagger.service.encoder
    real = encoder.passage
    monkeypatch.setattr(encoder, "passage", lambda texts: calls.append(len(texts)) or real(texts))
    docs = [Document(id=f"new:{k}", kind="", title=f"第 {k} 门新课：基层治理与数字政府", description="",
                     chunks=(f"第 {k} 门新课：基层治理与数字政府",)) for k in range(100)]
    probabilities = tagger.confidences(docs)
    assert probabilities.shape == (100, len(tagger.topic_ids))
    assert calls == [ENCODE_BATCH, 100 - ENCODE_BATCH]


def test_lexical_evidence_prefers_the_longer_label(tagger):
    """经济 inside 习近平经济思想 is evidence for the latter only; an occurrence of its own still counts."""
    column = tagger.topic_ids.index
    inside, alone = tagger._lexical(["习近平经济思想学习纲要", "经济形势与政策"])
    assert inside[column("topic:xi-economy")] == 1.0 and inside[column("topic:economy")] == 0.0
    assert alone[column("topic:economy")] > 0


def test_explain_gives_evidence_a_reviewer_can_read(tagger):
    from recommender.search.documents import Document

    doc = Document(id="", kind="", title="光伏、风电与新型电力系统", description="", chunks=("光伏、风电与新型电力系统",))
    [found] = tagger.explain([doc], k=3)
    best = found[0]
    assert best["topic"] == "topic:new-energy" and best["plan_section"] and best["definition"]
    assert best["examples"] and all(e["similarity"] > 0 for e in best["examples"])
    assert [s["confidence"] for s in found] == sorted((s["confidence"] for s in found), reverse=True)


def test_a_bare_title_is_tagged_from_catalogue_titles(tagger):
    """An import often has titles only: the catalogue's own titles are examples too (rows after the described)."""
    assert len(tagger._example_titles) == 2 * len(tagger._ids)
    best = tagger.suggest("“千万工程”经验与和美乡村建设", k=3)
    assert "topic:rural-revitalization" in [s.topic for s in best]
