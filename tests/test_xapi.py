"""Study records as xAPI statements (issue 15): export and import give the same graph, records from several
platforms in one file are each credited by their own platform's rule (学时互认), and a statement naming an
unknown cadre or course, or not valid xAPI at all, is reported with its file and ordinal — never dropped.
"""

from __future__ import annotations

import io
import json
from pathlib import Path

import pytest

from kg.build import BuildFailed, import_files
from kg.xapi import record_statements
from recommender.catalogue.snapshot import load_snapshot
from recommender.learner.hours import credit_record
from recommender.learner.profile import fetch_records
from tests.test_api_support import app, bearer, client, index_dir, template_home  # noqa: F401  (fixtures)
from tests.test_import_formats import fresh, graph_of

COMPLETED = "http://adlnet.gov/expapi/verbs/completed"
PASSED = "http://adlnet.gov/expapi/verbs/passed"
COURSE_IRI = "https://ganxun.org.cn/course/t-online"


def statement(name: str, verb: str, platform: str, minutes: int | None, *, course: str = COURSE_IRI,
              day: str = "2025-09-01T09:30:00+08:00", **result) -> dict:
    body = {"actor": {"objectType": "Agent", "account": {"homePage": "https://platform.example.cn", "name": name}},
            "verb": {"id": verb, "display": {"zh-CN": "完成"}},
            "object": {"objectType": "Activity", "id": course},
            "result": {"completion": True, **result, **({"duration": f"PT{minutes}M"} if minutes else {})},
            "context": {"platform": platform}, "timestamp": day}
    return body


def write(path: Path, statements: list[dict]) -> Path:
    path.write_text(json.dumps(statements, ensure_ascii=False), encoding="utf-8")
    return path


PLATFORMS = [
    {"type": "Platform", "id": "platform:x-city", "name": "某市干部在线学堂", "level": "市", "recognised": True,
     "creditRule": "per-45-minutes"},
    {"type": "Platform", "id": "platform:x-ministry", "name": "某部委网络学院", "level": "中央", "recognised": True,
     "creditRule": "course-hours"},
]


def test_export_then_import_gives_the_same_records(tmp_path, ontology):
    with fresh(tmp_path, "source", ontology) as store:
        records = list(store.nodes("TrainingRecord"))
        ids = [r.id for r in records]
        edges = [e for es in store.edges_from(ids).values() for e in es]
        before = graph_of(store, ids)
        names = {n.id: n.props["name"] for n in store.nodes("Platform")}
        path = write(tmp_path / "records.json", record_statements(records, edges, ontology, names))
        store.delete_nodes(ids)
        assert graph_of(store, ids) == ({}, set())
        report = import_files(store, [path], ontology)
        assert graph_of(store, ids) == before and len(before[0]) == 3
    assert any("xAPI 陈述 3 条" in n for n in report.notes)


def test_each_platform_credits_its_own_records(tmp_path, ontology):
    platforms = tmp_path / "platforms.jsonl"
    platforms.write_text("\n".join(json.dumps(p, ensure_ascii=False) for p in PLATFORMS) + "\n", encoding="utf-8")
    launched = statement("t-001", "http://adlnet.gov/expapi/verbs/launched", "某市干部在线学堂", None)
    path = write(tmp_path / "mixed.json", [
        statement("t-001", PASSED, "测试省干部网络学院", 40, success=True),       # tiered: ≥ 30 min → 1, test +0.5
        statement("cadre:t-001", COMPLETED, "某市干部在线学堂", 90, day="2025-09-02T01:00:00Z"),  # 90 / 45 → 2
        statement("t-001", COMPLETED, "某部委网络学院", 20, day="2025-09-03T20:00:00Z"),  # the course's own 1 学时
        launched,
    ])
    with fresh(tmp_path, "mixed", ontology) as store:
        report = import_files(store, [platforms, path], ontology)
        assert any("跳过不计学时的陈述 launched 1 条" in n for n in report.notes)
        snapshot = load_snapshot(store, ontology)
        imported = [r for r in fetch_records(store, ontology, "cadre:t-001") if r.id.startswith("record:")
                    and r.platform in ("platform:t-online", "platform:x-city", "platform:x-ministry") and r.date.month == 9]
    credits = {r.platform: (r.date.isoformat(), credit_record(r, snapshot)) for r in imported}
    assert {p: c.hours for p, (_, c) in credits.items()} == {"platform:t-online": 1.5, "platform:x-city": 2.0,
                                                             "platform:x-ministry": 1.0}
    assert all(c.counted for _, c in credits.values())
    assert "测试省干部网络学院" in credits["platform:t-online"][1].reason and "测试合格加 0.5" in credits["platform:t-online"][1].reason
    assert "按每 45 分钟" in credits["platform:x-city"][1].reason and "课程标定学时" in credits["platform:x-ministry"][1].reason
    # timestamps are read as Beijing dates: 01:00Z is 09:00 the same day, 20:00Z is the next morning
    assert credits["platform:x-city"][0] == "2025-09-02" and credits["platform:x-ministry"][0] == "2025-09-04"


def _issues(tmp_path, ontology, statements) -> list:
    path = write(tmp_path / "bad.json", statements)
    with fresh(tmp_path, "bad", ontology) as store:
        before = store.version()
        with pytest.raises(BuildFailed) as info:
            import_files(store, [path], ontology)
        assert store.version() == before
    return info.value.issues


def test_unknown_cadre_and_course_are_reported_not_dropped(tmp_path, ontology):
    issues = _issues(tmp_path, ontology, [
        statement("t-001", COMPLETED, "测试省干部网络学院", 30),
        statement("t-999", COMPLETED, "测试省干部网络学院", 30),
        statement("t-001", COMPLETED, "测试省干部网络学院", 30, course="https://ganxun.org.cn/course/no-such"),
        statement("t-001", COMPLETED, "不存在的平台", 30),
    ])
    located = {(i.line, i.field) for i in issues}
    assert {(2, "ofCadre"), (3, "forCourse"), (4, "viaPlatform")} <= located
    assert all(i.file.endswith("bad.json") for i in issues) and not any(i.line == 1 for i in issues)


def test_invalid_statements_are_located_by_ralph_models(tmp_path, ontology):
    no_verb = statement("t-001", COMPLETED, "测试省干部网络学院", 30)
    del no_verb["verb"]
    bad_duration = statement("t-001", COMPLETED, "测试省干部网络学院", None, duration="forty minutes")
    issues = _issues(tmp_path, ontology, [no_verb, bad_duration, {"actor": {"mbox": "mailto:x@example.cn"},
                                                                 "verb": {"id": COMPLETED}, "object": {"id": COURSE_IRI},
                                                                 "timestamp": "2025-01-01T00:00:00Z"}])
    by_line = {i.line: i.message for i in issues}
    assert "verb" in by_line[1] and "不是合法的 xAPI 陈述" in by_line[1]
    assert "duration" in by_line[2]
    assert "account" in by_line[3]
    [empty] = _issues(tmp_path, ontology, [])
    assert "没有任何 xAPI 陈述" in empty.message


@pytest.fixture
def admin(client, app):
    header = bearer(app, "admin")
    return lambda method, url, **kw: client.open(url, method=method, headers=header, **kw)


def test_api_exports_statements_that_import_back_unchanged(admin, app):
    refused = admin("GET", "/api/admin/export", query_string={"format": "xapi", "type": "Course"})
    assert refused.status_code == 422 and "type" in refused.json["字段"]
    exported = admin("GET", "/api/admin/export", query_string={"format": "xapi", "type": "TrainingRecord",
                                                                 "include_personal": "true"})
    assert exported.status_code == 200 and exported.headers["Content-Disposition"].endswith('.json"')
    statements = json.loads(exported.data)
    assert len(statements) == 3 and {s["actor"]["account"]["name"] for s in statements} == {"cadre:t-001", "cadre:t-002"}
    with app.app_context():
        from api.graph import graph

        before = {n.id: n.props for n in graph().store.nodes("TrainingRecord")}
    response = admin("POST", "/api/admin/import", content_type="multipart/form-data",
                     data={"files": (io.BytesIO(exported.data), "records.json")})
    assert response.status_code == 201 and response.json["nodes"] == 3, response.json
    with app.app_context():
        assert {n.id: n.props for n in graph().store.nodes("TrainingRecord")} == before
    broken = admin("POST", "/api/admin/import", content_type="multipart/form-data",
                   data={"files": (io.BytesIO(b"[{\"verb\": 1}]"), "broken.json")})
    assert broken.status_code == 422 and broken.json["问题"][0]["file"] == "broken.json"
    assert broken.json["问题"][0]["line"] == 1


def test_the_default_mode_is_the_online_mode_of_rules_yaml(tmp_path, ontology):
    """A statement without a mode extension is online study, in rules.yaml's wording (vocabulary.record_modes)."""
    import copy
    import dataclasses

    from kg.xapi import read_statements

    path = write(tmp_path / "one.json", [statement("t-001", COMPLETED, "测试省干部网络学院", 30)])
    rules = copy.deepcopy(ontology.rules)
    rules["vocabulary"]["record_modes"]["roles"]["online"] = "线上自学"
    [(_, row, problem)] = read_statements(path, dataclasses.replace(ontology, rules=rules)).rows
    assert problem is None and row["mode"] == "线上自学"
    [(_, row, _)] = read_statements(path, ontology).rows
    assert row["mode"] == ontology.rules["vocabulary"]["record_modes"]["roles"]["online"]


def test_platforms_sharing_a_name_are_told_apart_by_the_exported_id(tmp_path, ontology):
    """Two platforms of one name: the export carries each record's platform id, so the import credits it back to
    the same platform, not to whichever the name finds."""
    platforms = tmp_path / "twins.jsonl"
    twins = [{**PLATFORMS[0], "id": f"platform:twin-{k}", "name": "同名干部学院"} for k in (1, 2)]
    platforms.write_text("\n".join(json.dumps(p, ensure_ascii=False) for p in twins) + "\n", encoding="utf-8")
    records = tmp_path / "records.jsonl"
    records.write_text("\n".join(json.dumps(
        {"type": "TrainingRecord", "id": f"record:twin-{k}", "ofCadre": "cadre:t-001", "forCourse": "course:t-online",
         "viaPlatform": f"platform:twin-{k}", "date": "2025-09-01", "mode": "网络自学", "completed": True, "minutes": 60},
        ensure_ascii=False) for k in (1, 2)) + "\n", encoding="utf-8")
    ids = ["record:twin-1", "record:twin-2"]
    with fresh(tmp_path, "twins", ontology) as store:
        import_files(store, [platforms, records], ontology)
        before = graph_of(store, ids)
        nodes = list(store.get_nodes(ids))
        edges = [e for es in store.edges_from(ids).values() for e in es]
        names = {n.id: n.props["name"] for n in store.nodes("Platform")}
        path = write(tmp_path / "twins.json", record_statements(nodes, edges, ontology, names))
        store.delete_nodes(ids)
        import_files(store, [path], ontology)
        assert graph_of(store, ids) == before
        via = {e.src: e.dst for es in store.edges_from(ids).values() for e in es if e.dst.startswith("platform:")}
    assert via == {"record:twin-1": "platform:twin-1", "record:twin-2": "platform:twin-2"}
