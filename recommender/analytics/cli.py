"""``python -m recommender indicators | coverage | programme | nominate``: the analytics on the command line.

Each command reads the catalogue from the configured store, prints a short Chinese summary and, with
``--out``, writes the full report as CSV or XLSX (by suffix).  Heavy modules are imported inside the
commands so that ``--help`` stays fast.
"""

from __future__ import annotations

import datetime as dt
import json
import sys
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import click

__all__ = ["COMMANDS"]


def _fail(message: str) -> None:
    click.echo(message, err=True)
    sys.exit(1)


def _catalogue() -> Any:
    from kg.store import StoreError, open_store
    from recommender.catalogue.snapshot import load_snapshot

    try:
        with open_store() as store:
            return load_snapshot(store)
    except StoreError as exc:
        _fail(f"无法打开存储：{exc}")


def _demand(path: Path | None, from_gaps: bool = True) -> Mapping[str, float] | None:
    """Topic demand: from a file (JSON object or two-column CSV 主题编号, 人数) when given, else from the
    recommender's gap analysis (``recommender.batch.demand.topic_demand``: the last batch run, or computed now);
    None with ``--no-demand`` or when no cadre has a gap."""
    if path is None:
        if not from_gaps:
            return None
        from kg.store import open_store
        from recommender.batch.demand import topic_demand

        with open_store() as store:
            return topic_demand(store) or None
    if path.suffix.lower() == ".json":
        data = json.loads(path.read_text(encoding="utf-8"))
        if not isinstance(data, dict):
            _fail(f"需求文件 {path} 应为 JSON 对象（主题编号 → 人数）")
        return {str(k): float(v) for k, v in data.items()}
    import csv

    with path.open(encoding="utf-8-sig", newline="") as handle:
        rows = [r for r in csv.reader(handle) if len(r) >= 2]
    try:
        return {r[0].strip(): float(r[1]) for r in rows if r[0].strip().startswith("topic:")}
    except ValueError:
        _fail(f"需求文件 {path} 的第二列应为人数")


def _export(report: Any, out: Path | None) -> None:
    if out is None:
        return
    from recommender.analytics.exports import export

    click.echo(f"已导出：{export(report, out)}")


def _run(action: Any) -> Any:
    from recommender.analytics.errors import AnalyticsError

    try:
        return action()
    except AnalyticsError as exc:
        _fail(str(exc))


_DATE = click.DateTime(formats=["%Y-%m-%d"])
_OUT = click.option("--out", type=click.Path(path_type=Path), default=None, help="导出文件（.csv 或 .xlsx）")
_DEMAND = click.option("--demand", "demand_file", type=click.Path(exists=True, path_type=Path), default=None,
                       help="各主题需求人数（JSON 对象或两列 CSV：主题编号, 人数）；默认取学员差距分析")
_NO_DEMAND = click.option("--no-demand", is_flag=True, help="不使用需求数据")
_AS_OF = click.option("--as-of", type=_DATE, default=None, help="统计基准日（默认今天），格式 2026-11-15")


@click.command()
@click.argument("institution")
@click.argument("period")
@click.option("--top", default=5, show_default=True, help="每个指标列出的影响最大课程数")
@_OUT
def indicators(institution: str, period: str, top: int, out: Path | None) -> None:
    """某机构某学期（2025春）或学年（2025）的教学指标与课程更新指标。"""
    from recommender.analytics.indicators import teaching_indicators

    report = _run(lambda: teaching_indicators(_catalogue(), institution, period, top=top))
    click.echo(report.title)
    for r in report.results:
        value = "—" if r.value is None else (f"{r.value:.1f} 学时" if r.unit == "学时" else f"{100 * r.value:.1f}%")
        threshold = f"{r.threshold:g} 学时" if r.unit == "学时" else f"{100 * r.threshold:.0f}%"
        click.echo(f"  [{r.status}] {r.name}：{value}（要求 ≥ {threshold}；{r.scope}）")
    _export(report, out)


@click.command()
@click.option("--institution", default=None, help="只统计该机构的课程")
@click.option("--level", default=None, help="只统计该层级机构的课程（中央/省/市/县）")
@click.option("--top", default=20, show_default=True, help="列出的供给不足主题数")
@_DEMAND
@_NO_DEMAND
@_AS_OF
@click.option("--near-duplicates/--no-near-duplicates", default=False, help="用语义检索列出疑似重复课程（需加载编码模型）")
@_OUT
def coverage(institution: str | None, level: str | None, top: int, demand_file: Path | None, no_demand: bool,
             as_of: dt.datetime | None, near_duplicates: bool, out: Path | None) -> None:
    """各规划主题的课程供给、时效、评分与需求，以及供给不足的主题排名。"""
    from recommender.analytics.coverage import coverage_report

    pairs = None
    if near_duplicates:
        from kg.store import open_store
        from recommender.search.near_duplicates import near_duplicates as find_pairs
        from recommender.search.service import SearchService

        with open_store() as store:
            pairs = [(p.a, p.b, p.score) for p in find_pairs(SearchService.open(store))]
    report = _run(lambda: coverage_report(_catalogue(), _demand(demand_file, not no_demand), institution=institution, level=level,
                                          as_of=as_of.date() if as_of else None, top=top, near_duplicates=pairs))
    click.echo(f"{report.title}（{report.demand_note}）")
    for rank, r in enumerate(report.underserved, start=1):
        age = "—" if r.years_since_update is None else f"{r.years_since_update:.1f}"
        click.echo(f"  {rank:>2}. {r.name}：课程 {r.courses_with_narrower} 门，平均 {age} 年未更新，"
                   f"需求 {r.demand if r.demand is not None else '—'}，缺口指数 {r.gap_index:.3f}")
    _export(report, out)


@click.command()
@click.option("--institution", required=True, help="举办机构编号")
@click.option("--class-type", required=True, help="班次类型（取值见 ontology/shapes.ttl 的 TrainingClass.classType）")
@click.option("--hours", type=float, required=True, help="总学时")
@click.option("--topic", "topics", multiple=True, help="须覆盖的专题（主题编号，可多次给出）")
@click.option("--category", "categories", multiple=True, help="学员干部类别编号（可多次给出）")
@click.option("--group", "groups", multiple=True, help="培训对象编号（可多次给出）")
@click.option("--tolerance", type=float, default=0.0, show_default=True, help="允许少于总学时的学时数")
@click.option("--own-courses", is_flag=True, help="只用本机构的课程")
@_DEMAND
@_NO_DEMAND
@_OUT
def programme(institution: str, class_type: str, hours: float, topics: tuple[str, ...], categories: tuple[str, ...],
              groups: tuple[str, ...], tolerance: float, own_courses: bool, demand_file: Path | None, no_demand: bool,
              out: Path | None) -> None:
    """按班次类型、学员、总学时与专题精确求解满足教学指标的课程方案。"""
    from recommender.analytics.programme import ProgrammeRequest, build_programme

    request = ProgrammeRequest(institution, class_type, hours, topics, categories, groups, hour_tolerance=tolerance,
                               source_institutions=(institution,) if own_courses else None)
    result = _run(lambda: build_programme(_catalogue(), request, demand=_demand(demand_file, not no_demand)))
    click.echo(result.title)
    if not result.feasible:
        for reason in result.reasons:
            click.echo(f"  ✗ {reason}")
    for n, c in enumerate(result.courses, start=1):
        click.echo(f"  {n:>2}. {c.name}（{c.hours:g} 学时，{c.course_type}，{c.lecturer_type}）")
    for i in result.indicators:
        if i.value is not None:
            click.echo(f"  [{'达标' if i.passed else '未达标'}] {i.name}：{100 * i.value:.1f}%（要求 ≥ {100 * i.threshold:.0f}%）")
    _export(result, out)
    if not result.feasible:
        sys.exit(2)


@click.command()
@click.option("--year", type=int, default=None, help="推荐年度（默认今年）")
@click.option("--courses", type=int, default=None, help="好课程名额（默认取 rules.yaml）")
@click.option("--textbooks", type=int, default=None, help="好教材名额（默认取 rules.yaml）")
@click.option("--quota-mode", default=None,
              help="案例占比口径，取值见 rules.yaml 的 vocabulary.quota_modes（默认取 nomination.quota_mode）")
@click.option("--max-per-institution", type=int, default=None, help="每个机构上限（默认取 rules.yaml）")
@click.option("--min-per-branch", type=int, default=None, help="每个一级主题至少课程数（默认取 rules.yaml）")
@click.option("--previous", "previous_files", multiple=True, type=click.Path(exists=True, path_type=Path),
              help="往年已入选名单（CSV/XLSX，含编号列；可多次给出）")
@click.option("--check", "check_file", type=click.Path(exists=True, path_type=Path), default=None,
              help="审查一份手工名单（CSV/XLSX，含编号列）并给出最少调整")
@_DEMAND
@_NO_DEMAND
@_AS_OF
@_OUT
def nominate(year: int | None, courses: int | None, textbooks: int | None, quota_mode: str | None,
             max_per_institution: int | None, min_per_branch: int | None, previous_files: tuple[Path, ...],
             check_file: Path | None, demand_file: Path | None, no_demand: bool, as_of: dt.datetime | None,
             out: Path | None) -> None:
    """好课程、好教材推荐：按推荐指标体系精确求解年度名单，或审查手工名单。"""
    from recommender.analytics.audit import check_nomination_list
    from recommender.analytics.exports import read_id_column
    from recommender.analytics.nominations import NominationConfig, optimise_nominations

    def run() -> Any:
        overrides = {k: v for k, v in dict(year=year, courses=courses, textbooks=textbooks, quota_mode=quota_mode,
                                           max_per_institution=max_per_institution, min_per_branch=min_per_branch).items()
                     if v is not None}
        overrides["previous"] = {i for f in previous_files for i in read_id_column(f)}
        config = NominationConfig.from_rules(**overrides)
        catalogue, demand, day = _catalogue(), _demand(demand_file, not no_demand), as_of.date() if as_of else None
        if check_file is not None:
            return check_nomination_list(catalogue, check_file, config, demand=demand, as_of=day)
        return optimise_nominations(catalogue, config, demand=demand, as_of=day)

    report = _run(run)
    click.echo(report.title)
    for line in report.rules_used():
        click.echo(f"  · {line[0]}：{line[1]}")
    for check in report.checks:
        click.echo(f"  [{'✓' if check.passed else '✗'}] {check.rule}：{check.actual}（要求 {check.requirement}）")
    for reason in report.reasons:
        click.echo(f"  ✗ {reason}")
    if check_file is not None:
        for swap in report.swaps:
            click.echo(f"  → {swap.text}")
    else:
        click.echo(f"  好课程 {len(report.courses)} 门、好教材 {len(report.textbooks)} 种，总分 {report.total_score:.1f}，"
                   f"求解 {report.solve_seconds:.2f} 秒")
    _export(report, out)


COMMANDS: list[click.Command] = [indicators, coverage, programme, nominate]
