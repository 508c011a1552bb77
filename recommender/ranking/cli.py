"""Command-line entry points of the recommender, registered on ``python -m recommender`` by ``cli.py``.

Bodies import their modules lazily so that ``python -m recommender --help`` stays fast.
"""

from __future__ import annotations

import datetime as dt
import json
from functools import partial
from pathlib import Path

import click

__all__ = ["COMMANDS"]

_TODAY = click.option("--today", type=click.DateTime(formats=["%Y-%m-%d"]), default=None,
                      help="统计日期 YYYY-MM-DD（默认今天）")


def _day(value: dt.datetime | None) -> dt.date | None:
    return value.date() if value else None


def _recommender():
    from recommender.service import Recommender

    return Recommender.open()


def _echo(result) -> None:
    click.echo(json.dumps(result.to_dict(), ensure_ascii=False, indent=2))


def _answer(method: str, cadre_id: str, **kwargs) -> None:
    from recommender.errors import RecommenderError

    try:
        _echo(getattr(_recommender(), method)(cadre_id, **kwargs))
    except RecommenderError as exc:
        raise click.ClickException(str(exc)) from exc


@click.command()
@click.argument("cadre_id")
@click.option("-k", "--k", "k", default=10, show_default=True, help="推荐条数")
@click.option("--intent", default=None, help="学习意向（一两句话）")
@_TODAY
def recommend(cadre_id: str, k: int, intent: str | None, today: dt.datetime | None) -> None:
    """为一名干部推荐课程（附理由）及配套教材、案例、现场教学点。"""
    _answer("recommend", cadre_id, k=k, intent=intent, today=_day(today))


@click.command()
@click.argument("cadre_id")
@_TODAY
def hours(cadre_id: str, today: dt.datetime | None) -> None:
    """一名干部的学时达标情况、预计期末学时、领导班子培训要求与可疑学习行为。"""
    _answer("hours", cadre_id, today=_day(today))


@click.command()
@click.argument("cadre_id")
@_TODAY
def gaps(cadre_id: str, today: dt.datetime | None) -> None:
    """一名干部的知识缺口（按缺口权重排序）与要求主题覆盖情况。"""
    _answer("gaps", cadre_id, today=_day(today))


@click.command()
@click.argument("cadre_id")
@click.option("--intent", default=None, help="学习意向（一两句话）")
@_TODAY
def path(cadre_id: str, intent: str | None, today: dt.datetime | None) -> None:
    """一名干部本年度的学习路径（先修在前，集中培训与网络自学交替）。"""
    _answer("learning_path", cadre_id, intent=intent, today=_day(today))


@click.command()
@click.option("-k", "--k", "k", default=10, show_default=True, help="每人推荐条数")
@click.option("--workers", default=1, show_default=True, help="本机 Dask 集群的工作进程数（1：在本进程中运行）")
@click.option("--address", default=None, help="Dask 集群调度器地址，如 tcp://10.0.0.5:8786（默认取 GANXUN_BATCH_ADDRESS；不设则在本机运行）")
@click.option("--limit", default=None, type=int, help="只处理前 N 名干部（试运行）")
@click.option("--out", type=click.Path(path_type=Path), default=None, help="结果文件（默认 $GANXUN_HOME/recommender/batch.sqlite）")
@_TODAY
def batch(k: int, workers: int, address: str | None, limit: int | None, out: Path | None, today: dt.datetime | None) -> None:
    """为全部干部批量推荐（只重算记录或要求有变化的干部），结果写入 Parquet 与 SQLite 文件，供接口与课程设计者的需求分析使用。"""
    from kg.config import Settings
    from kg.store import open_store
    from recommender.batch.run import run_batch

    settings = Settings.from_env()
    recommender = _recommender()
    ids = [n.id for n in recommender.store.nodes("Cadre")]
    summary = run_batch(recommender, ids[:limit] if limit else ids, k=k, today=_day(today), path=out, workers=workers,
                        address=address, store_factory=partial(open_store, settings=settings))
    click.echo(f"已为 {summary.cadres:,} 名干部生成 {summary.suggestions:,} 条推荐（重新计算 {summary.computed:,} 人，"
               f"沿用上次结果 {summary.carried:,} 人），用时 {summary.seconds:.1f} 秒（{summary.rate:.0f} 人/秒）"
               f"→ {summary.path}，Parquet：{summary.parquet}")


@click.command()
@click.option("--cutoff", type=click.DateTime(formats=["%Y-%m-%d"]), default=None, help="时间切分点（默认 2026-01-01）")
@click.option("-k", "--k", "k", default=10, show_default=True)
@click.option("--cadres", "limit", default=None, type=int, help="只评估前 N 名干部")
def evaluate(cutoff: dt.datetime | None, k: int, limit: int | None) -> None:
    """离线评估：时间切分，混合推荐对比流行度、向量、图三个基线，打印表格。"""
    from recommender.evaluation.evaluate import DEFAULT_CUTOFF, evaluate as run, format_table

    recommender = _recommender()
    ids = [n.id for n in recommender.store.nodes("Cadre")]
    result = run(recommender, ids[:limit] if limit else ids, cutoff=_day(cutoff) or DEFAULT_CUTOFF, k=k)
    click.echo(format_table(result))


COMMANDS: list[click.Command] = [recommend, hours, gaps, path, batch, evaluate]
