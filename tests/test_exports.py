"""CSV and XLSX exports: Chinese headers, the rules used and the date; a nomination list survives the round
trip into the check mode."""

from __future__ import annotations

import csv
import datetime as dt
from dataclasses import dataclass
from pathlib import Path

import pytest
from openpyxl import load_workbook

from recommender.analytics.audit import check_nomination_list
from recommender.analytics.errors import InputError
from recommender.analytics.exports import Table, export, export_csv, export_xlsx, read_id_column
from recommender.analytics.nominations import NominationConfig, optimise_nominations
from recommender.analytics.scoring import Candidate
from recommender.catalogue.rows import Topic
from recommender.catalogue.snapshot import CatalogueSnapshot


@dataclass
class Demo:
    title: str = "示例报告"
    generated: dt.date = dt.date(2026, 3, 1)

    def rules_used(self) -> list[tuple[str, str]]:
        return [("案例占比", "不低于 33.3%；口径：两张名单各自满足案例占比")]

    def tables(self) -> list[Table]:
        return [Table("指标/结果", ["指标", "是否达标", "实际值", "班次"], [["某指标", True, 0.123456, ["k1", "k2"]],
                                                                   ["另一指标", False, None, []]]),
                Table("明细", ["编号", "名称"], [["course:a", "甲"]])]


def csv_rows(path: Path) -> list[list[str]]:
    with path.open(encoding="utf-8-sig", newline="") as handle:
        return list(csv.reader(handle))


class TestCsv:
    def test_preamble_tables_and_cells(self, tmp_path):
        rows = csv_rows(export_csv(Demo(), tmp_path / "r.csv"))
        assert rows[:3] == [["报告", "示例报告"], ["生成日期", "2026-03-01"],
                            ["规则：案例占比", "不低于 33.3%；口径：两张名单各自满足案例占比"]]
        assert rows[3:8] == [[], ["指标/结果"], ["指标", "是否达标", "实际值", "班次"], ["某指标", "是", "0.1235", "k1；k2"],
                             ["另一指标", "否", "", ""]]
        assert rows[-2:] == [["编号", "名称"], ["course:a", "甲"]]

    def test_written_with_a_bom_for_excel(self, tmp_path):
        assert export_csv(Demo(), tmp_path / "r.csv").read_bytes().startswith(b"\xef\xbb\xbf")


class TestXlsx:
    def test_one_sheet_per_table_and_a_rules_sheet(self, tmp_path):
        book = load_workbook(export_xlsx(Demo(), tmp_path / "r.xlsx"))
        assert book.sheetnames == ["指标_结果", "明细", "规则与说明"]
        sheet = book["指标_结果"]
        assert [c.value for c in sheet[1]] == ["指标", "是否达标", "实际值", "班次"]
        assert sheet["A1"].font.bold and sheet.freeze_panes == "A2"
        assert [c.value for c in sheet[2]] == ["某指标", "是", 0.1235, "k1；k2"]
        info = [[c.value for c in row] for row in book["规则与说明"].iter_rows()]
        assert info[:2] == [["报告", "示例报告"], ["生成日期", "2026-03-01"]]
        assert info[2][0] == "规则：案例占比"

    def test_control_characters_in_text_do_not_break_the_file(self, tmp_path):
        """An id typed with a stray control character (schemathesis found one in an uploaded list) is written
        without it, instead of openpyxl refusing the whole file."""

        class Typed(Demo):
            def tables(self) -> list[Table]:
                return [Table("明细", ["编号", "名称"], [["course:\x01a\x1b", "甲\x07乙"]])]

        book = load_workbook(export_xlsx(Typed(), tmp_path / "r.xlsx"))
        assert [c.value for c in book["明细"][2]] == ["course:a", "甲乙"]

    def test_export_by_suffix(self, tmp_path):
        assert export(Demo(), tmp_path / "a.xlsx").exists() and export(Demo(), tmp_path / "a.csv").exists()
        with pytest.raises(InputError, match=r"\.csv 或 \.xlsx"):
            export(Demo(), tmp_path / "a.pdf")


@pytest.fixture
def nomination():
    tree = CatalogueSnapshot.from_rows(topics=[Topic("topic:theory", "党的创新理论")])
    candidates = [Candidate(f"course:{i}", "course", f"课程{i}", f"inst:{i % 3}", ("topic:theory",), ("topic:theory",),
                            i % 2 == 0, 50 + i, ()) for i in range(9)]
    candidates += [Candidate("textbook:t", "textbook", "教材", None, ("topic:theory",), ("topic:theory",), True, 80, ())]
    config = NominationConfig.from_rules(year=2026, courses=4, textbooks=1, max_per_institution=2, min_per_branch=1,
                                         quota_mode="per_list")
    result = optimise_nominations(tree, config, candidates=candidates)
    assert result.feasible
    return tree, config, candidates, result


class TestNominationRoundTrip:
    @pytest.mark.parametrize("suffix", [".csv", ".xlsx"])
    def test_exported_list_reads_back_and_passes_the_check(self, tmp_path, nomination, suffix):
        tree, config, candidates, result = nomination
        path = export(result, tmp_path / f"list{suffix}")
        chosen = [c.id for c in result.courses + result.textbooks]
        assert read_id_column(path) == chosen
        audit = check_nomination_list(tree, path, config, candidates=candidates)
        assert audit.compliant and audit.listed == chosen

    def test_export_states_the_quota_reading_and_the_date(self, tmp_path, nomination):
        _, _, _, result = nomination
        rows = csv_rows(export_csv(result, tmp_path / "list.csv"))
        rules = dict(r for r in rows if len(r) == 2 and r[0].startswith(("规则：", "生成日期")))
        assert "口径：两张名单各自满足案例占比" in rules["规则：案例占比"]
        assert rules["生成日期"] == dt.date.today().isoformat()
        header = next(r for r in rows if r and r[0] == "序号")
        assert header[:7] == ["序号", "编号", "名称", "机构", "一级主题", "案例", "总分"]


class TestReadIds:
    def test_list_without_an_id_column(self, tmp_path):
        path = tmp_path / "x.csv"
        path.write_text("名称\n甲\n", encoding="utf-8")
        with pytest.raises(InputError, match="编号"):
            read_id_column(path)

    def test_missing_file_and_wrong_format(self, tmp_path):
        with pytest.raises(InputError, match="不存在"):
            read_id_column(tmp_path / "none.csv")
        odd = tmp_path / "x.txt"
        odd.write_text("编号\n", encoding="utf-8")
        with pytest.raises(InputError, match=r"\.csv 或 \.xlsx"):
            read_id_column(odd)

    def test_hand_made_csv_with_id_header(self, tmp_path):
        path = tmp_path / "hand.csv"
        path.write_text("id,备注\ncourse:a,好\n\ncourse:ignored\n", encoding="utf-8")
        assert read_id_column(path) == ["course:a"]
