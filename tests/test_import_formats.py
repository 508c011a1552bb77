"""Spreadsheets as users have them (issue 15): each format round-trips to the graph its JSON Lines twin gives,
and every broken variant is refused with file, row and field — by ``import_files``, by the API (4xx, JSON)
and by ``python -m kg import`` (one clear message, no traceback) — with nothing written.
"""

from __future__ import annotations

import csv
import io
import json
from pathlib import Path

import pytest
from click.testing import CliRunner
from openpyxl import Workbook

from kg.build import BuildFailed, build_graph, import_files
from kg.cli import main as kg_main
from kg.store.embedded import EmbeddedStore
from tests.conftest import FIXTURE_CORPUS
from tests.test_api_support import app, bearer, client, index_dir, template_home  # noqa: F401  (fixtures)

COURSES = [
    {"type": "Course", "id": "course:fmt-1", "name": "基层治理中的协商议事", "description": "介绍村（居）民议事会、协商议事的程序与做法。",
     "courseType": "专题课", "deliveryMode": "面授", "teachingMethod": ["研讨式", "讲授"], "lecturerType": "基层干部", "hours": 2.5,
     "isCase": False, "status": "已发布", "version": 1, "dateCreated": "2024-03-01", "dateModified": "2024-09-15",
     "covers": ["topic:grassroots-governance"], "offeredBy": "inst:t-county-school", "taughtBy": ["teacher:t-b"]},
    {"type": "Course", "id": "course:fmt-2", "name": "政务服务“一网通办”", "description": "讲解数据共享与线上办事的流程再造。",
     "courseType": "网络课程", "deliveryMode": "网络", "teachingMethod": ["讲授"], "lecturerType": "专家学者", "hours": 1,
     "isCase": False, "status": "已发布", "version": 2, "dateCreated": "2023-05-04", "dateModified": "2025-01-10",
     "covers": ["topic:digital-government", "topic:grassroots-governance"], "offeredBy": "inst:t-province-school"},
]
TEXTBOOK = {"type": "Textbook", "id": "textbook:fmt-1", "name": "基层治理案例读本", "description": "汇编基层治理的典型案例。",
            "textbookType": "专业教材", "isCase": True, "publisher": "测试出版社", "datePublished": "2024-06-01", "status": "已发布",
            "covers": ["topic:grassroots-governance"]}
#: Chinese labels of the project's own profile, in one column order.
LABELS = {"id": "编号", "name": "名称", "description": "简介", "courseType": "课程类型", "deliveryMode": "授课方式",
          "teachingMethod": "教学方法", "lecturerType": "授课人类型", "hours": "学时", "isCase": "是否案例课程或案例教材",
          "status": "状态", "version": "版本", "dateCreated": "创建日期", "dateModified": "更新日期", "covers": "讲授主题",
          "offeredBy": "开设机构", "taughtBy": "授课教师"}


def fresh(tmp_path: Path, name: str, ontology) -> EmbeddedStore:
    store = EmbeddedStore(tmp_path / f"{name}.db").open()
    build_graph(store, [FIXTURE_CORPUS], ontology)
    return store


def graph_of(store, ids) -> tuple[dict, set]:
    nodes = {n.id: (n.label, n.props) for n in store.get_nodes(ids)}
    edges = {(e.src, e.type, e.dst, json.dumps(e.props, sort_keys=True)) for es in store.edges_from(ids).values() for e in es}
    return nodes, edges


def reference(tmp_path, ontology, rows) -> tuple[dict, set]:
    """The graph the rows give when imported as JSON Lines, the primary format."""
    path = tmp_path / "reference.jsonl"
    path.write_text("\n".join(json.dumps(r, ensure_ascii=False) for r in rows) + "\n", encoding="utf-8")
    with fresh(tmp_path, "reference", ontology) as store:
        import_files(store, [path], ontology)
        nodes, edges = graph_of(store, [r["id"] for r in rows])
    assert len(nodes) == len(rows) and edges
    return nodes, edges


def cell(value) -> str:
    if isinstance(value, list):
        return "；".join(value)
    if isinstance(value, bool):
        return "是" if value else "否"
    return str(value)


def label_rows(rows, with_type: bool = False) -> list[list[str]]:
    header = (["类型"] if with_type else []) + list(LABELS.values())
    body = [(["课程"] if with_type else []) + [cell(r.get(k, "")) for k in LABELS] for r in rows]
    return [header, *body]


def csv_bytes(rows: list[list[str]], encoding: str) -> bytes:
    buffer = io.StringIO()
    csv.writer(buffer).writerows(rows)
    return buffer.getvalue().encode(encoding)


def imported(tmp_path, ontology, path: Path, ids, **kwargs) -> tuple[dict, set]:
    with fresh(tmp_path, "imported", ontology) as store:
        report = import_files(store, [path], ontology, **kwargs)
        assert report.notes, "每个表格文件都应说明如何读取"
        return graph_of(store, ids)


# ─── round trips ───
def test_gb18030_csv_round_trips(tmp_path, ontology):
    path = tmp_path / "课程.csv"
    path.write_bytes(csv_bytes(label_rows(COURSES), "gb18030"))
    with pytest.raises(UnicodeDecodeError):
        path.read_bytes().decode("utf-8")  # what used to be a 500
    ids = [c["id"] for c in COURSES]
    assert imported(tmp_path, ontology, path, ids, default_type="Course") == reference(tmp_path, ontology, COURSES)


def test_utf8_bom_csv_with_a_type_column_round_trips(tmp_path, ontology):
    path = tmp_path / "courses.csv"
    path.write_bytes(csv_bytes(label_rows(COURSES, with_type=True), "utf-8-sig"))
    ids = [c["id"] for c in COURSES]
    assert imported(tmp_path, ontology, path, ids) == reference(tmp_path, ontology, COURSES)


def merged_workbook(path: Path, extra_column: str | None = None) -> None:
    """Two sheets as an office types them: a merged title row, a merged group row above the real header
    (a vertically merged 学时), then the rows; the second sheet holds textbooks under their own labels."""
    book = Workbook()
    sheet = book.active
    sheet.title = "课程"
    keys = list(LABELS)
    sheet.append(["某某党校课程目录（2025年）"] + [None] * (len(keys) - 1))
    sheet.merge_cells(start_row=1, start_column=1, end_row=1, end_column=len(keys))
    groups = ["课程信息"] * 3 + ["教学安排"] * 4 + ["学时"] + ["管理信息"] * (len(keys) - 8)
    sheet.append(groups)
    sheet.merge_cells(start_row=2, start_column=1, end_row=2, end_column=3)
    sheet.merge_cells(start_row=2, start_column=4, end_row=2, end_column=7)
    sheet.merge_cells(start_row=2, start_column=8, end_row=3, end_column=8)  # 学时 spans two header rows
    sheet.merge_cells(start_row=2, start_column=9, end_row=2, end_column=len(keys))
    sheet.append([LABELS[k] if k != "hours" else None for k in keys] + ([extra_column] if extra_column else []))
    for course in COURSES:  # typed cells, as Excel keeps them: numbers, booleans, empty cells
        sheet.append(["；".join(v) if isinstance(v, list) else v for v in (course.get(k) for k in keys)])
    books = book.create_sheet("教材")
    fields = ["id", "name", "description", "textbookType", "isCase", "publisher", "datePublished", "status", "covers"]
    books.append(["编号", "名称", "简介", "教材类别", "是否案例课程或案例教材", "出版社", "出版日期", "状态", "讲授主题"])
    books.append([cell(TEXTBOOK[k]) for k in fields])
    book.save(path)


def test_xlsx_with_title_row_merged_headers_and_two_sheets_round_trips(tmp_path, ontology):
    path = tmp_path / "目录.xlsx"
    merged_workbook(path)
    ids = [c["id"] for c in COURSES] + [TEXTBOOK["id"]]
    assert imported(tmp_path, ontology, path, ids) == reference(tmp_path, ontology, [*COURSES, TEXTBOOK])


STANDARD_HEADER = ["序号", "课程编号", "课程名称", "内容简介", "主讲人", "学时", "所属专题", "提供单位", "上线时间", "更新时间"]


def standard_rows() -> list[list[str]]:
    return [
        ["干部网络学院课程资源目录"],
        STANDARD_HEADER,
        ["1", "KC2024001", "乡村治理中的村规民约", "讲解村规民约的制定与执行。", "乙同志", "1.5", "基层治理、全面推进乡村振兴",
         "测试县委党校", "2024/3/1", "2024年9月15日"],
    ]


def test_standards_style_course_sheet_round_trips(tmp_path, ontology):
    path = tmp_path / "standard.csv"
    path.write_bytes(csv_bytes(standard_rows(), "gb18030"))
    twin = {"type": "Course", "id": "course:KC2024001", "name": "乡村治理中的村规民约", "description": "讲解村规民约的制定与执行。",
            "taughtBy": ["teacher:t-b"], "hours": 1.5, "covers": ["topic:grassroots-governance", "topic:rural-revitalization"],
            "offeredBy": "inst:t-county-school", "dateCreated": "2024-03-01", "dateModified": "2024-09-15",
            # the profile's stated defaults for what a platform export does not carry
            "status": "已发布", "version": 1, "courseType": "网络课程", "deliveryMode": "网络", "teachingMethod": ["讲授"],
            "lecturerType": "专家学者", "isCase": False}
    got = imported(tmp_path, ontology, path, [twin["id"]])
    assert got == reference(tmp_path, ontology, [twin])
    with fresh(tmp_path, "notes", ontology) as store:
        notes = import_files(store, [path], ontology).notes
    assert any("GB18030" in n for n in notes) and any("国家标准" in n and "第 2 行为表头" in n for n in notes)


# ─── broken variants: located problems, nothing written ───
def problems(tmp_path, ontology, name: str, content: bytes, **kwargs):
    path = tmp_path / name
    path.write_bytes(content)
    with fresh(tmp_path, "broken", ontology) as store:
        before = store.version()
        with pytest.raises(BuildFailed) as info:
            import_files(store, [path], ontology, **kwargs)
        assert store.version() == before
    return info.value.issues


def test_undecodable_bytes_name_the_encodings_tried(tmp_path, ontology):
    [issue] = problems(tmp_path, ontology, "bad.csv", "编号,名称\n".encode("utf-8") + b"\xff\xfe\xfa\n")
    assert "UTF-8" in issue.message and "GB18030" in issue.message and "第 2 行" in issue.message


@pytest.mark.parametrize("content", [b"", b"PK\x03\x04 not really a zip"])
def test_empty_or_broken_xlsx_is_one_clear_problem(tmp_path, ontology, content):
    [issue] = problems(tmp_path, ontology, "book.xlsx", content)
    assert "不是有效的 XLSX" in issue.message and issue.line == 0


def malformed_xml_xlsx() -> bytes:
    """A real workbook whose sheet XML is cut off: the zip opens, the XML inside does not parse."""
    import zipfile

    book, buffer = Workbook(), io.BytesIO()
    book.active.append(["编号", "名称"])
    book.save(buffer)
    out = io.BytesIO()
    with zipfile.ZipFile(io.BytesIO(buffer.getvalue())) as src, zipfile.ZipFile(out, "w") as dst:
        for item in src.infolist():
            data = src.read(item)
            dst.writestr(item, data[: len(data) // 2] if item.filename == "xl/worksheets/sheet1.xml" else data)
    return out.getvalue()


#: Files whose parsers raised (issue finding: 500 and a traceback): name, bytes, the line the problem is on.
CRASHING = {
    "not-objects.json": (b"[1]", 1),
    "deep.json": (b"[" * 100_000 + b"]" * 100_000, 0),
    "huge-cell.csv": ("编号,名称\ncourse:x,".encode("utf-8") + b"x" * 200_000 + b"\n", 2),
    "malformed.xlsx": (malformed_xml_xlsx(), 0),
}


@pytest.mark.parametrize("name", CRASHING)
def test_files_whose_parser_raises_are_one_located_problem(tmp_path, ontology, name):
    content, line = CRASHING[name]
    [issue] = problems(tmp_path, ontology, name, content, default_type="Course")
    assert issue.line == line and issue.file.endswith(name) and issue.message


def test_header_only_file_is_refused(tmp_path, ontology):
    [issue] = problems(tmp_path, ontology, "only.csv", csv_bytes(label_rows([]), "utf-8"), default_type="Course")
    assert issue.line == 1 and "只有表头" in issue.message


def test_unmapped_columns_are_listed(tmp_path, ontology):
    path = tmp_path / "extra.xlsx"
    merged_workbook(path, extra_column="联系人电话")
    with fresh(tmp_path, "broken", ontology) as store, pytest.raises(BuildFailed) as info:
        import_files(store, [path], ontology)
    [issue] = info.value.issues
    assert issue.line == 3 and "联系人电话" in issue.message and "〔工作表 课程〕" in issue.file


def test_wrong_profile_says_no_header_was_found(tmp_path, ontology):
    [issue] = problems(tmp_path, ontology, "standard.csv", csv_bytes(standard_rows(), "utf-8"), profile="provincial-platform")
    assert "找不到表头" in issue.message and "选错了导入配置" in issue.message


def test_unknown_names_are_reported_on_their_row_and_field(tmp_path, ontology):
    rows = standard_rows()
    rows[2][4] = "无此人"
    rows[2][6] = "不存在的专题"
    issues = problems(tmp_path, ontology, "standard.csv", csv_bytes(rows, "utf-8"))
    located = {(i.line, i.field) for i in issues}
    assert {(3, "taughtBy"), (3, "covers")} <= located
    assert any("无此人" in i.message for i in issues) and any("不存在的专题" in i.message for i in issues)


def test_cli_import_prints_a_message_not_a_traceback(tmp_path, monkeypatch):
    monkeypatch.setenv("GANXUN_HOME", str(tmp_path))
    monkeypatch.setenv("GANXUN_CORPORA", str(FIXTURE_CORPUS))
    runner = CliRunner()
    assert runner.invoke(kg_main, ["build"]).exit_code == 0
    bad = tmp_path / "empty.xlsx"
    bad.write_bytes(b"")
    result = runner.invoke(kg_main, ["import", str(bad)])
    assert result.exit_code == 1 and "不是有效的 XLSX" in result.output and "Traceback" not in result.output
    gbk = tmp_path / "courses.csv"
    gbk.write_bytes(csv_bytes(label_rows(COURSES), "gbk"))
    result = runner.invoke(kg_main, ["import", str(gbk), "--type", "Course"])
    assert result.exit_code == 0, result.output
    assert "GB18030/GBK" in result.output and "已导入：2 个节点" in result.output


# ─── through the API ───
@pytest.fixture
def admin(client, app):
    header = bearer(app, "admin")
    return lambda method, url, **kw: client.open(url, method=method, headers=header, **kw)


def _upload(admin, name: str, content: bytes, **form):
    return admin("POST", "/api/admin/import", content_type="multipart/form-data",
                 data={"files": (io.BytesIO(content), name), **form})


def test_api_imports_gbk_and_answers_broken_files_with_located_422(admin, app):
    with app.app_context():  # a served worker fits the tagger in its warm-up, not in the import's request
        from api.review import tagger

        tagger()
    ok = _upload(admin, "课程.csv", csv_bytes(label_rows(COURSES), "gbk"), type="Course")
    assert ok.status_code == 201, ok.json
    assert ok.json["nodes"] == 2 and any("GB18030/GBK" in n and "课程.csv" in n for n in ok.json["notes"])
    cases = {
        "empty.xlsx": (b"", {}),
        "broken.xlsx": (b"PK\x03\x04xx", {}),
        "only.csv": (csv_bytes(label_rows([]), "utf-8"), {"type": "Course"}),
        "bytes.csv": (b"\xff\xfe\xfa\xfb\n", {}),
        "standard.csv": (csv_bytes(standard_rows(), "utf-8"), {"profile": "provincial-platform"}),
        **{name: (content, {"type": "Course"}) for name, (content, _line) in CRASHING.items()},
    }
    for name, (content, form) in cases.items():
        response = _upload(admin, name, content, **form)
        assert response.status_code == 422, (name, response.status_code)
        [issue] = response.json["问题"]
        assert issue["file"] == name and issue["message"] and "line" in issue, (name, issue)
    unknown = _upload(admin, "x.csv", b"a,b\n1,2\n", profile="no-such-profile")
    assert unknown.status_code == 422 and "profile" in unknown.json["字段"]


def test_reimport_without_a_topic_column_keeps_the_confirmed_topics(admin, app):
    """The tagger suggests topics only for new items: a stored course re-imported from a sheet without the topic
    column is refused for its missing topics, so its confirmed tags and links stay as they were."""
    with app.app_context():
        from api.graph import graph
        from api.review import tagger

        tagger()
    assert _upload(admin, "课程.csv", csv_bytes(label_rows(COURSES[:1]), "utf-8"), type="Course").status_code == 201
    with app.app_context():
        before = graph_of(graph().store, ["course:fmt-1"])
    assert {e[2] for e in before[1] if e[1] == "COVERS"} == {"topic:grassroots-governance"}
    rows = [[v for k, v in zip(LABELS, row) if k != "covers"] for row in label_rows(COURSES[:1])]
    response = _upload(admin, "无主题列.csv", csv_bytes(rows, "utf-8"), type="Course")
    assert response.status_code == 422 and {i["field"] for i in response.json["问题"]} == {"covers"}, response.json
    with app.app_context():
        assert graph_of(graph().store, ["course:fmt-1"]) == before
    new = [[v.replace("fmt-1", "fmt-new") for v in row] for row in rows]
    assert _upload(admin, "新课程.csv", csv_bytes(new, "utf-8"), type="Course").status_code == 201  # a new item is tagged


def test_admin_import_page_offers_the_profiles_and_xapi(client, app):
    from tests.test_api_support import AuthActions

    AuthActions(client).login("admin")
    page = client.get("/admin/import").get_data(as_text=True)
    assert 'name="profile"' in page and "国家标准字段" in page and "省级干部网络学院导出" in page
    assert ".json" in page and "GB18030/GBK" in page
