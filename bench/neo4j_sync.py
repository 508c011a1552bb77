"""Neo4j sync throughput: the batched writer (``kg sync``) against a one-MERGE-per-row writer, on one server.

Both writers run the same code path (:meth:`kg.store.neo4j.Neo4jStore.apply`: read what is stored, then
``MERGE``/``SET`` only the difference); the only difference is the batch: ``GANXUN_NEO4J_BATCH`` rows per
``UNWIND $rows`` statement and transaction, against one row per statement and per transaction.

1. Row by row, on a SAMPLE (a full run would take hours): ``--sample`` nodes drawn from every class in
   proportion to its count, plus the nodes their outgoing edges point at, are written one per transaction
   into the empty database (nodes/s), then those outgoing edges, one per transaction (relationships/s).
   Repeated ``--repeats`` times (database cleared in between), median taken; the full-scale time is
   extrapolated from the median rates.  Says so in the table.
2. Batched, the FULL graph: ``kg.sync.sync_graph`` into the cleared database, nodes and edges timed apart.
3. ``--resync``: a second sync of the unchanged graph, which must change nothing.

The source is the embedded store at ``GANXUN_HOME`` (build it first), e.g. the scale generator's corpus::

    python -m corpora scale --courses 100000 --cadres 100000 --records-per-cadre 20 --out /tmp/scale/corpus
    GANXUN_HOME=/tmp/scale/home GANXUN_CORPORA=/tmp/scale/corpus python -m kg build
    GANXUN_NEO4J_HEAP=4g GANXUN_NEO4J_PAGECACHE=2g scripts/neo4j-dev start
    GANXUN_HOME=/tmp/scale/home python bench/neo4j_sync.py --clear

``--clear`` is required: the benchmark empties the Neo4j database at ``NEO4J_URI``.
"""

from __future__ import annotations

import argparse
import math
import os
import statistics
import sys
import time
from itertools import islice
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from kg.config import Settings  # noqa: E402
from kg.model import Edge, Node  # noqa: E402
from kg.store import open_store  # noqa: E402
from kg.store.base import Store  # noqa: E402
from kg.store.neo4j import Batch, Neo4jStore  # noqa: E402
from kg.sync import sync_graph  # noqa: E402


def sample_graph(source: Store, size: int) -> tuple[list[Node], list[Edge]]:
    """About ``size`` nodes in proportion to each class's count, their outgoing edges, and those edges' far ends."""
    counts = source.node_counts()
    total = sum(counts.values())
    picked: dict[str, Node] = {}
    for label, count in sorted(counts.items()):
        for node in islice(source.nodes(label), max(1, math.ceil(size * count / total))):
            picked[node.id] = node
    edges = [e for node_id in sorted(picked) for e in source.edges(src=node_id)]
    ends = {e.dst for e in edges} - picked.keys()
    picked.update((n.id, n) for n in source.get_nodes(ends))
    return sorted(picked.values(), key=lambda n: n.id), edges


def row_by_row(target: Neo4jStore, nodes: list[Node], edges: list[Edge]) -> tuple[float, float]:
    """Seconds for the nodes, then for the edges, one row per statement and transaction."""
    started = time.perf_counter()
    for node in nodes:
        target.apply(Batch(nodes=[node]))
    middle = time.perf_counter()
    for edge in edges:
        target.apply(Batch(edges=[edge], check_ends=False))  # as the sync's edge batches
    return middle - started, time.perf_counter() - middle


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--clear", action="store_true", help="允许清空 NEO4J_URI 上的数据库（必需）")
    parser.add_argument("--sample", type=int, default=2000, help="逐行写入的抽样节点数")
    parser.add_argument("--repeats", type=int, default=3, help="逐行写入抽样的重复次数（取中位数）")
    parser.add_argument("--resync", action="store_true", help="再同步一次，确认没有任何改动")
    args = parser.parse_args()
    if not args.clear:
        sys.exit("基准测试会清空 Neo4j 数据库：确认后加 --clear 运行")

    settings = Settings.from_env()
    source = open_store("embedded", settings)
    target = open_store("neo4j", settings)
    assert isinstance(target, Neo4jStore)
    n_nodes, n_edges = sum(source.node_counts().values()), sum(source.edge_counts().values())
    server = {k: v for k, v in os.environ.items() if k.startswith("GANXUN_NEO4J_")}
    print(f"源：{settings.db_path}：{n_nodes:,} 个节点，{n_edges:,} 条关系；Neo4j {settings.neo4j_uri}，"
          f"批大小 {target.batch_size}；服务器设置 {server or '默认'}")

    nodes, edges = sample_graph(source, args.sample)
    print(f"逐行写入抽样：{len(nodes):,} 个节点，{len(edges):,} 条关系，重复 {args.repeats} 次")
    target.clear()
    row_by_row(target, nodes[:50], [])  # warm-up: plans compiled, connections open
    node_rates, edge_rates = [], []
    for _ in range(args.repeats):
        target.clear()
        node_s, edge_s = row_by_row(target, nodes, edges)
        node_rates.append(len(nodes) / node_s)
        edge_rates.append(len(edges) / edge_s)
        print(f"  逐行：{node_rates[-1]:,.0f} 节点/秒，{edge_rates[-1]:,.0f} 关系/秒", flush=True)
    row_nodes, row_edges = statistics.median(node_rates), statistics.median(edge_rates)

    target.clear()
    counts = {"nodes": n_nodes, "edges": n_edges}

    def tell(phase: str, seconds: float) -> None:  # printed as each phase ends: a full run takes long
        rate = f"，{counts[phase] / seconds:,.0f} 条/秒" if phase in counts else ""
        print(f"\n批量同步阶段 {phase}：{seconds:,.1f} 秒{rate}", flush=True)

    report = sync_graph(source, target, progress=True, on_phase=tell)
    assert report.in_step, "同步后数量与源不一致"
    batch_nodes = n_nodes / report.phases["nodes"]
    batch_edges = n_edges / report.phases["edges"]

    row_total = n_nodes / row_nodes + n_edges / row_edges
    print()
    print(f"{'写入方式':<22}{'节点/秒':>12}{'关系/秒':>12}{'全量用时（秒）':>16}")
    print(f"{'逐行（抽样外推）':<20}{row_nodes:>14,.0f}{row_edges:>14,.0f}{row_total:>16,.0f}")
    print(f"{'批量 UNWIND（全量实测）':<18}{batch_nodes:>14,.0f}{batch_edges:>14,.0f}{report.seconds:>16,.0f}")
    print(f"{'倍数（批量 ÷ 逐行）':<19}{batch_nodes / row_nodes:>13,.1f}×{batch_edges / row_edges:>13,.1f}×"
          f"{row_total / report.seconds:>15,.1f}×")
    print(f"目标：批量 ≥ 20 倍且 ≥ 20,000 节点/秒 —— 节点 {'达到' if batch_nodes >= 20_000 and batch_nodes / row_nodes >= 20 else '未达到'}")
    print(f"阶段用时：{', '.join(f'{k} {v:.1f}s' for k, v in report.phases.items())}")

    if args.resync:
        again = sync_graph(source, target)
        print(f"第二次同步：用时 {again.seconds:.1f} 秒，改动 {sum(again.changes.values())} 处（应为 0）")


if __name__ == "__main__":
    main()
