"""The administrator's 查找干部 at province scale: ``Store.find_by_name`` from the name index beside the interface's
scanning default (which reads every cadre, as /admin/cadres did before for a name with fewer than 50 matches),
on the embedded store with N generated cadres.

    PYTHONPATH=. python bench/cadre_lookup.py [--cadres 200000] [--repeats 5]

Prints the median seconds of each for a surname (many matches, bounded by the page's limit) and a whole name, and
the ratio.  Timings only; the answers' equality is asserted in tests/test_name_lookup.py.
"""

from __future__ import annotations

import random
import statistics
import tempfile
import time
from pathlib import Path

import click

from kg.model import Node
from kg.store.base import Store
from kg.store.embedded import EmbeddedStore

SURNAMES = "王李张刘陈杨黄赵吴周徐孙马朱胡郭何高林罗郑梁谢宋唐"
GIVEN = "新慧明华强伟芳军敏静丽娟艳勇杰涛超秀英霞平刚桂兰"


def _median(work, repeats: int) -> float:
    times = []
    for _ in range(repeats):
        started = time.perf_counter()
        work()
        times.append(time.perf_counter() - started)
    return statistics.median(times)


@click.command()
@click.option("--cadres", default=200_000, show_default=True, help="生成的干部人数")
@click.option("--repeats", default=5, show_default=True, help="每项重复次数（取中位数）")
def main(cadres: int, repeats: int) -> None:
    """按姓名查找干部：姓名索引与逐个读取干部节点的对比。"""
    rng = random.Random(13)
    with tempfile.TemporaryDirectory() as home:
        store = EmbeddedStore(Path(home) / "cadres.db").open()
        store.write([Node(f"cadre:{i:07d}", "Cadre", {"name": rng.choice(SURNAMES) + rng.choice(GIVEN) + rng.choice(GIVEN)})
                     for i in range(cadres)], [])
        whole = store.get_node("cadre:0000001").props["name"]
        print(f"{cadres:,} 名干部；中位数（{repeats} 次），单位：秒")
        print(f"{'查找':<14}{'姓名索引':>12}{'逐个读取':>12}{'倍数':>10}")
        for label, prefix in (("姓（前 51 人）", whole[0]), ("全名", whole)):
            indexed = _median(lambda: store.find_by_name("Cadre", prefix, 51), repeats)
            scanned = _median(lambda: Store.find_by_name(store, "Cadre", prefix, 51), repeats)
            print(f"{label:<14}{indexed:>12.5f}{scanned:>12.3f}{scanned / indexed:>10.0f}")
        store.close()


if __name__ == "__main__":
    main()
