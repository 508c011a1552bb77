"""Search commands of ``python -m recommender``: index, search, similar, tag-check, duplicates.

Registered on the command group by ``recommender/cli.py``.  Every command reads the store named by the
environment (``GANXUN_HOME``, ``GANXUN_STORE``) and keeps its index under ``GANXUN_HOME/index``.
"""

from __future__ import annotations

import sys
import time
from pathlib import Path
from typing import Any

import click

__all__ = ["COMMANDS"]


def _fail(message: str) -> None:
    click.echo(message, err=True)
    sys.exit(1)


def _bar() -> Any:
    """A progress callback ``(done, total, message)`` that drives a terminal progress bar."""
    from tqdm import tqdm

    bar = tqdm(desc="编码文本", unit="条", leave=False)

    def progress(done: int, total: int, message: str) -> None:
        bar.total = total
        bar.n = done
        bar.set_postfix_str(message, refresh=True)
        if done >= total:
            bar.close()

    return progress


def _open_service(rebuild: bool = False) -> tuple[Any, Any]:
    """Open the store and the search service over it, the index brought up to date (with a progress bar)."""
    from kg.config import Settings
    from kg.store import StoreError, open_store
    from recommender.search.embedding import ModelNotFoundError
    from recommender.search.errors import SearchError
    from recommender.search.service import SearchService

    settings = Settings.from_env()
    try:
        with open_store(settings=settings) as store:
            if store.is_empty():
                _fail("图谱为空：请先运行 python -m kg build")
            return settings, SearchService.open(store, settings, rebuild=rebuild, progress=_bar())
    except (StoreError, SearchError, ModelNotFoundError) as exc:
        _fail(str(exc))
    raise AssertionError("unreachable")


def _kind_name(value: str) -> str:
    """Accept a class name (Course) or its Chinese label (课程)."""
    from kg.ontology import load_ontology

    for spec in load_ontology().classes.values():
        if value in (spec.name, spec.label):
            return spec.name
    return value  # left for SearchFilters validation to reject with the list of valid kinds


@click.command()
@click.option("--rebuild", is_flag=True, help="忽略已有索引，全部重新编码")
def index(rebuild: bool) -> None:
    """建立或增量更新语义检索索引（只重新编码内容有变化的条目）。"""
    settings, service = _open_service(rebuild=rebuild)
    report = service.last_update
    click.echo(
        f"索引已更新：{report.documents:,} 个条目（{report.chunks:,} 段），重新编码 {report.encoded:,}，"
        f"复用 {report.reused:,}，移除 {report.removed:,}；向量索引 {report.index_type}；"
        f"用时 {report.seconds:.1f} 秒 → {service.index_dir}"
    )
    click.echo(f"向量索引的选择：{report.index_choice}")


@click.command()
@click.argument("query")
@click.option("--kind", "kinds", multiple=True, help="资源类型：Course/课程、Textbook/教材、CaseStudy/案例（可多次）")
@click.option("--topic", "topics", multiple=True, help="主题编号（含下位主题），如 topic:rural-revitalization（可多次）")
@click.option("--institution", "institutions", multiple=True, help="培训机构编号，如 inst:central-party-school（可多次）")
@click.option("--delivery", "delivery_modes", multiple=True, help="授课方式：面授、网络、直播、混合（可多次）")
@click.option("--case-only", is_flag=True, help="只要案例（案例课、案例教材、案例）")
@click.option("--min-hours", type=float, default=None, help="最少学时（只含有学时的课程）")
@click.option("--max-hours", type=float, default=None, help="最多学时")
@click.option("--status", "statuses", multiple=True, help="状态（默认只含已发布）")
@click.option("--any-status", is_flag=True, help="不按状态筛选")
@click.option("--mode", type=click.Choice(["hybrid", "dense", "bm25"]), default="hybrid", show_default=True)
@click.option("-k", "k", type=click.IntRange(1, 1000), default=10, show_default=True, help="返回条数")
def search(query: str, kinds: tuple[str, ...], topics: tuple[str, ...], institutions: tuple[str, ...],
           delivery_modes: tuple[str, ...], case_only: bool, min_hours: float | None, max_hours: float | None,
           statuses: tuple[str, ...], any_status: bool, mode: str, k: int) -> None:
    """语义 + 关键词混合检索课程、教材与案例。"""
    from recommender.search.embedding import ModelNotFoundError
    from recommender.search.service import SearchError, SearchFilters

    _, service = _open_service()
    filters = SearchFilters(
        kinds=tuple(_kind_name(x) for x in kinds), topics=topics, institutions=institutions,
        delivery_modes=delivery_modes, case_only=case_only, min_hours=min_hours, max_hours=max_hours,
        statuses=() if any_status else (statuses or None),
    )
    try:
        service.warm()  # the first query's one-off costs stay out of the timing
        started = time.perf_counter()
        hits = service.search(query, filters, k=k, mode=mode)
    except (SearchError, ModelNotFoundError) as exc:
        _fail(str(exc))
    elapsed = (time.perf_counter() - started) * 1000
    labels = {c.name: c.label for c in service.ontology.classes.values()}
    click.echo(f"「{query}」共 {len(hits)} 条（{mode}，{elapsed:.0f} 毫秒）")
    click.echo(f"{'#':>3}  {'得分':>7}  {'向量':>4}  {'词项':>4}  {'类型':<4} {'编号':<28} 名称")
    for rank, hit in enumerate(hits, start=1):
        doc = service.document(hit.id)
        click.echo(
            f"{rank:>3}  {hit.score:>7.4f}  {hit.dense_rank or '-':>4}  {hit.bm25_rank or '-':>4}  "
            f"{labels.get(hit.kind, hit.kind):<4} {hit.id:<28} {doc.title if doc else ''}"
        )


@click.command()
@click.argument("item_id")
@click.option("-k", "k", type=click.IntRange(1, 1000), default=10, show_default=True)
def similar(item_id: str, k: int) -> None:
    """与某门课程（或教材、案例）内容最相近的已发布条目。"""
    from recommender.search.service import SearchError

    _, service = _open_service()
    try:
        hits = service.similar_to(item_id, k=k)
    except SearchError as exc:
        _fail(str(exc))
    for rank, hit in enumerate(hits, start=1):
        doc = service.document(hit.id)
        click.echo(f"{rank:>3}  {hit.score:.4f}  {hit.id:<28} {doc.title if doc else ''}")


@click.command(name="tag-check")
@click.argument("paths", nargs=-1, required=True, type=click.Path(exists=True, path_type=Path))
@click.option("--top", type=click.IntRange(1, 10), default=3, show_default=True, help="每条给出的建议主题数")
@click.option("--strict", is_flag=True, help="发现问题时以状态码 1 退出（用于导入前检查）")
def tag_check(paths: tuple[Path, ...], top: int, strict: bool) -> None:
    """检查语料文件中课程、教材、案例的主题标注：未标注或可能标错的条目，并给出建议主题。"""
    from kg.build import corpus_files
    from recommender.search.embedding import ModelNotFoundError
    from recommender.search.tagging import TopicTagger, check_files

    _, service = _open_service()
    try:
        tagger = TopicTagger.from_service(service)
        checked, issues = check_files(corpus_files(paths), tagger, service.ontology)
    except (ModelNotFoundError, ValueError) as exc:
        _fail(str(exc))
    for issue in issues:
        click.echo(f"  ✗ {issue.source}  {issue.item_id}「{issue.title}」：{issue.message}")
    untagged = sum(1 for i in issues if i.problem == "untagged")
    click.echo(f"检查 {checked:,} 个条目：未标注 {untagged}，可能标错 {len(issues) - untagged}")
    if strict and issues:
        sys.exit(1)


@click.command()
@click.option("--threshold", type=click.FloatRange(0.5, 1.0), default=None, help="余弦相似度阈值（默认 0.96）")
@click.option("--kind", "kinds", multiple=True, help="比较的资源类型（默认课程）")
@click.option("--limit", type=click.IntRange(1), default=50, show_default=True)
def duplicates(threshold: float | None, kinds: tuple[str, ...], limit: int) -> None:
    """内容高度相近的课程对，供课程设计者归并目录。"""
    from recommender.search.near_duplicates import COURSE_CLASS, DEFAULT_THRESHOLD, near_duplicates
    from recommender.search.service import SearchError, SearchFilters

    _, service = _open_service()
    filters = SearchFilters(kinds=tuple(_kind_name(x) for x in kinds) or (COURSE_CLASS,), statuses=())
    try:
        pairs = near_duplicates(service, threshold or DEFAULT_THRESHOLD, filters)
    except SearchError as exc:
        _fail(str(exc))
    for pair in pairs[:limit]:
        a, b = service.document(pair.a), service.document(pair.b)
        click.echo(f"{pair.score:.4f}  {pair.a}「{a.title}」 ≈ {pair.b}「{b.title}」")
    click.echo(f"共 {len(pairs)} 对（阈值 {threshold or DEFAULT_THRESHOLD}）")


COMMANDS: list[click.Command] = [index, search, similar, tag_check, duplicates]
