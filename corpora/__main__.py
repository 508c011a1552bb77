"""``python -m corpora``: generate the sample cadres and records, or a large corpus for benchmarks."""

from __future__ import annotations

import time
from pathlib import Path

import click
from tqdm import tqdm

from corpora.cadres import CadreGenerator, read_catalogue, write_cadres
from kg.config import REPO_ROOT, Settings
from kg.ontology import load_ontology

SAMPLE_DIR = REPO_ROOT / "corpora" / "sample"


@click.group()
def main() -> None:
    """干训语料：生成样例干部与培训记录，或生成基准测试用的大规模语料。"""


@main.command()
@click.option("--cadres", default=2000, show_default=True, help="干部人数")
@click.option("--seed", default=7, show_default=True, help="随机种子（相同种子输出完全相同）")
@click.option("--out", type=click.Path(path_type=Path), default=None, help="输出目录（默认 $GANXUN_HOME/generated）")
def generate(cadres: int, seed: int, out: Path | None) -> None:
    """按样例课程目录生成干部及其 2023—2026 年培训记录。"""
    out = out or Settings.from_env().generated_dir
    out.mkdir(parents=True, exist_ok=True)
    generator = CadreGenerator(load_ontology(), read_catalogue([SAMPLE_DIR]), seed=seed)
    tmp_c, tmp_r = out / "cadres.jsonl.tmp", out / "records.jsonl.tmp"
    with tmp_c.open("w", encoding="utf-8") as c_out, tmp_r.open("w", encoding="utf-8") as r_out, \
            tqdm(total=cadres, desc="生成干部", unit="人") as bar:
        _, n_records = write_cadres(generator, cadres, c_out, r_out, bar)
    tmp_c.replace(out / "cadres.jsonl")
    tmp_r.replace(out / "records.jsonl")
    click.echo(f"已生成 {cadres:,} 名干部、{n_records:,} 条培训记录 → {out}")


@main.command()
@click.option("--courses", default=100_000, show_default=True)
@click.option("--cadres", default=1_000_000, show_default=True)
@click.option("--records-per-cadre", default=20, show_default=True)
@click.option("--seed", default=7, show_default=True)
@click.option("--out", type=click.Path(path_type=Path), required=True)
def scale(courses: int, cadres: int, records_per_cadre: int, seed: int, out: Path) -> None:
    """生成大规模语料（流式写盘，内存占用与干部人数无关）。"""
    from corpora.scale import write_scale_corpus

    started = time.perf_counter()
    counts = write_scale_corpus(load_ontology(), SAMPLE_DIR, out, courses, cadres, records_per_cadre, seed)
    click.echo(f"已生成 {counts['courses']:,} 门课程、{counts['cadres']:,} 名干部、{counts['records']:,} 条记录，"
               f"用时 {time.perf_counter() - started:.0f} 秒 → {out}")


if __name__ == "__main__":
    main()
