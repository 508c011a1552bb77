"""Bad input is reported whole, located precisely, in Chinese — and nothing is written."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from click.testing import CliRunner

from kg.build import BuildFailed, build_graph, import_files
from kg.cli import main
from tests.conftest import FIXTURE_CORPUS

GOOD_COURSE = {
    "type": "Course", "id": "course:new-1", "name": "数字政府建设专题", "description": "讲授数字政府建设的总体框架与地方实践，分析数据共享中的难点。",
    "courseType": "专题课", "deliveryMode": "面授", "teachingMethod": ["讲授"], "lecturerType": "专家学者", "hours": 3,
    "isCase": False, "status": "已发布", "version": 1, "dateCreated": "2024-01-01", "dateModified": "2024-02-01",
    "covers": ["topic:newtech"], "offeredBy": "inst:t-province-school",
}


def write_jsonl(path: Path, rows: list[dict | str]) -> Path:
    path.write_text("\n".join(r if isinstance(r, str) else json.dumps(r, ensure_ascii=False) for r in rows) + "\n", encoding="utf-8")
    return path


def broken(**changes) -> dict:
    row = dict(GOOD_COURSE)
    for key, value in changes.items():
        if value is None:
            row.pop(key)
        else:
            row[key] = value
    return row


CASES = [
    ("missing required", broken(name=None), "name", "缺少必填字段"),
    ("not allowed value", broken(deliveryMode="函授"), "deliveryMode", "不在允许值之内"),
    ("wrong datatype", broken(hours="三"), "hours", "应为数字"),
    ("out of range", broken(hours=0), "hours", "应大于 0"),
    ("scalar given a list", broken(offeredBy=["inst:t-province-school"]), "offeredBy", "只能有一个值"),
    ("list given a scalar", broken(covers="topic:newtech"), "covers", "应为数组"),
    ("too many values", broken(covers=["topic:theory", "topic:political", "topic:general", "topic:newtech"]), "covers", "最多 3 个值"),
    ("dangling reference", broken(covers=["topic:no-such-topic"]), "covers", "不存在"),
    ("reference of the wrong class", broken(offeredBy="teacher:t-a"), "offeredBy", "应为『培训机构』"),
    ("bad date", broken(dateCreated="2024-13-01"), "dateCreated", "YYYY-MM-DD"),
    ("dates in the wrong order", broken(dateCreated="2025-01-01", dateModified="2024-01-01"), "dateCreated", "不应晚于"),
    ("unknown field", broken(teacherName="张三"), "teacherName", "未知字段"),
    ("bad id", broken(id="course:有空格 的"), "id", "格式不对"),
    ("unknown type", broken(type="Lesson"), "type", "不是可导入的类"),
]


@pytest.mark.parametrize("case,row,field,fragment", CASES, ids=[c[0] for c in CASES])
def test_each_kind_of_bad_input_names_file_line_field_and_expectation(built_store, ontology, tmp_path, case, row, field, fragment):
    bad = write_jsonl(tmp_path / "bad.jsonl", [GOOD_COURSE | {"id": "course:ok-1"}, row])
    with pytest.raises(BuildFailed) as info:
        import_files(built_store, [bad], ontology)
    issues = info.value.issues
    assert len(issues) == 1, [str(i) for i in issues]
    issue = issues[0]
    assert (issue.file, issue.line, issue.field) == (str(bad), 2, field)
    assert fragment in issue.message
    assert f"第 2 行" in str(issue) and field in str(issue)


def test_all_problems_of_all_files_are_reported_at_once(built_store, ontology, tmp_path):
    first = write_jsonl(tmp_path / "a.jsonl", [broken(id="course:a1", hours="x"), "{not json", broken(id="course:a2", status="上线")])
    second = write_jsonl(tmp_path / "b.jsonl", [broken(id="course:a1"), broken(id="course:b2", name=None, covers=[])])
    with pytest.raises(BuildFailed) as info:
        import_files(built_store, [first, second], ontology)
    located = sorted((Path(i.file).name, i.line, i.field) for i in info.value.issues)
    assert located == [
        ("a.jsonl", 1, "hours"),
        ("a.jsonl", 2, None),
        ("a.jsonl", 3, "status"),
        ("b.jsonl", 1, "id"),
        ("b.jsonl", 2, "covers"),
        ("b.jsonl", 2, "name"),
    ]
    duplicate = next(i for i in info.value.issues if i.field == "id")
    assert "a.jsonl 第 1 行" in duplicate.message


def test_failed_import_leaves_the_store_exactly_as_it_was(built_store, ontology, tmp_path):
    before_nodes, before_edges = list(built_store.nodes()), list(built_store.edges())
    changed = GOOD_COURSE | {"id": "course:t-theory", "name": "被改掉的名称"}
    bad = write_jsonl(tmp_path / "mixed.jsonl", [changed, broken(id="course:x", hours=-1)])
    with pytest.raises(BuildFailed):
        import_files(built_store, [bad], ontology)
    assert list(built_store.nodes()) == before_nodes
    assert list(built_store.edges()) == before_edges


def test_failed_build_keeps_the_previous_graph(built_store, ontology, tmp_path):
    before = built_store.node_counts()
    bad_dir = tmp_path / "corpus"
    bad_dir.mkdir()
    write_jsonl(bad_dir / "x.jsonl", [broken(hours=None)])
    with pytest.raises(BuildFailed):
        build_graph(built_store, [FIXTURE_CORPUS, bad_dir], ontology)
    assert built_store.node_counts() == before


def test_import_may_refer_to_stored_nodes_and_replaces_a_record_whole(built_store, ontology, tmp_path):
    row = GOOD_COURSE | {"id": "course:t-theory", "covers": ["topic:political"], "name": "改版后的理论课"}
    import_files(built_store, [write_jsonl(tmp_path / "update.jsonl", [row])], ontology)
    node = built_store.get_node("course:t-theory")
    assert node.props["name"] == "改版后的理论课"
    assert "rating" not in node.props, "记录应整体替换，旧属性不应残留"
    covers = [e.dst for e in built_store.edges(src="course:t-theory", type="COVERS")]
    assert covers == ["topic:political"]
    assert [e.dst for e in built_store.edges(src="course:t-theory", type="TAUGHT_BY")] == []


def test_csv_with_chinese_headers_and_xlsx_are_accepted(built_store, ontology, tmp_path):
    header = "编号,名称,简介,课程类型,授课方式,教学方法,授课人类型,学时,是否案例课程或案例教材,状态,版本,创建日期,更新日期,讲授主题,开设机构"
    line = ("course:csv-1,基层治理案例研讨,以一个社区网格化治理改革为例，研讨基层治理中的协同机制与群众参与。,案例课,面授,案例式；研讨式,"
            "基层干部,2.5,是,已发布,1,2024-03-01,2024-03-01,topic:general,inst:t-county-school")
    csv_path = tmp_path / "courses.csv"
    csv_path.write_text(header + "\n" + line + "\n", encoding="utf-8")
    import_files(built_store, [csv_path], ontology, default_type="Course")
    node = built_store.get_node("course:csv-1")
    assert node.props["isCase"] is True and node.props["hours"] == 2.5
    assert node.props["teachingMethod"] == sorted(["案例式", "研讨式"])

    from openpyxl import Workbook

    book = Workbook()
    book.active.append(header.split(","))
    book.active.append(line.replace("course:csv-1", "course:xlsx-1").split(","))
    xlsx_path = tmp_path / "courses.xlsx"
    book.save(xlsx_path)
    import_files(built_store, [xlsx_path], ontology, default_type="Course")
    assert built_store.get_node("course:xlsx-1").props["teachingMethod"] == sorted(["案例式", "研讨式"])


def test_bad_spreadsheet_cell_names_row_and_column(built_store, ontology, tmp_path):
    csv_path = tmp_path / "bad.csv"
    csv_path.write_text("id,name,hours\ncourse:c1,课程一,很多\n", encoding="utf-8")
    with pytest.raises(BuildFailed) as info:
        import_files(built_store, [csv_path], ontology, default_type="Course")
    hours = next(i for i in info.value.issues if i.field == "hours")
    assert hours.line == 2 and "应为数字" in hours.message


def test_cli_validate_exits_non_zero_and_prints_every_issue(tmp_path, monkeypatch):
    bad = write_jsonl(tmp_path / "bad.jsonl", [broken(hours="x"), broken(id="course:y", status="上线")])
    result = CliRunner().invoke(main, ["validate", str(FIXTURE_CORPUS), str(bad)])
    assert result.exit_code == 1
    assert "第 1 行，字段『hours』" in result.output and "第 2 行，字段『status』" in result.output
    assert "2 个问题" in result.output


def test_cli_build_and_stats(tmp_path, monkeypatch):
    monkeypatch.setenv("GANXUN_HOME", str(tmp_path))
    runner = CliRunner()
    built = runner.invoke(main, ["build", "--corpus", str(FIXTURE_CORPUS)])
    assert built.exit_code == 0, built.output
    assert "课程" in built.output
    stats = runner.invoke(main, ["stats"])
    assert stats.exit_code == 0
    assert "Course" in stats.output and "COVERS" in stats.output
