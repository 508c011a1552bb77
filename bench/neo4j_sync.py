"""Neo4j loads side by side: the project's writers against their peers, on the same data, server and run.

1. First load: ``kg.neo4j_import.first_load`` (CSV files from the embedded store, ``neo4j-admin database import
   full``, the server's restart, constraints and indexes) against neo4j-admin's own run on those same files (the
   tool's wall time inside that load, JVM start included): items/s and ratio, target ≥ 0.8.
2. Incremental sync against a plain loader: ``kg.sync.sync_graph`` into the emptied database against a plain
   ``UNWIND $rows CREATE`` loader (rows per label or type, ``GANXUN_NEO4J_BATCH`` per transaction, through the same
   driver, reading the same source), ``--repeats`` times in alternating order, medians: items/s and ratio,
   target ≥ 0.8.
3. After edits: a copy of the source with ``--edit-share`` of its training records changed, deleted and added;
   the sync's time and changes against the plain loader's time for the whole graph; then a sync with nothing to do.

The server must be one ``scripts/neo4j-dev`` runs on this machine (the first load stops and starts it); use a
second one, not the shared development server::

    python -m corpora generate                    # sample catalogue + 2,000 generated cadres into $GANXUN_HOME
    python -m kg build
    GANXUN_NEO4J_STATE=/tmp/nb/state GANXUN_NEO4J_HOME=/tmp/nb/home NEO4J_BOLT_PORT=7699 scripts/neo4j-dev start
    GANXUN_NEO4J_STATE=/tmp/nb/state GANXUN_NEO4J_HOME=/tmp/nb/home NEO4J_URI=bolt://127.0.0.1:7699 \\
        python bench/neo4j_sync.py --clear

``--clear`` is required: the benchmark empties the Neo4j database at ``NEO4J_URI``.
"""

from __future__ import annotations

import argparse
import random
import sqlite3
import statistics
import sys
import tempfile
import time
from collections import defaultdict
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from neo4j import GraphDatabase  # noqa: E402

from kg.config import Settings  # noqa: E402
from kg.cypher import STORE  # noqa: E402
from kg.model import Edge, Node  # noqa: E402
from kg.neo4j_import import first_load, local_server  # noqa: E402
from kg.ontology import Ontology, load_ontology  # noqa: E402
from kg.store.base import Store  # noqa: E402
from kg.store.embedded import EmbeddedStore  # noqa: E402
from kg.store.neo4j import Neo4jStore  # noqa: E402
from kg.sync import sync_graph  # noqa: E402


def plain_load(source: Store, settings: Settings, ontology: Ontology, batch: int) -> float:
    """Seconds for the plain loader: every node, then every edge, ``UNWIND $rows CREATE`` per label or type, one
    transaction per ``batch`` rows, no diff, no hash, no version stamp."""
    auth = None if settings.neo4j_password is None else (settings.neo4j_user, settings.neo4j_password)
    started = time.perf_counter()
    with GraphDatabase.driver(settings.neo4j_uri, auth=auth) as driver, driver.session(database=settings.neo4j_database) as session:
        def write(text: str, rows: list[dict]) -> None:
            session.execute_write(lambda tx: tx.run(text, rows=rows).consume())

        pending: dict[str, list[dict]] = defaultdict(list)
        for node in source.nodes():
            rows = pending[node.label]
            rows.append({"props": {**node.props, "id": node.id}})
            if len(rows) >= batch:
                write(STORE["insert_nodes"].text(ontology, _label=node.label), pending.pop(node.label))
        for label, rows in pending.items():
            write(STORE["insert_nodes"].text(ontology, _label=label), rows)
        pending = defaultdict(list)
        for edge in source.edges():
            rows = pending[edge.type]
            rows.append({"src": edge.src, "dst": edge.dst, "props": edge.props})
            if len(rows) >= batch:
                write(STORE["insert_edges"].text(ontology, _rel=edge.type), pending.pop(edge.type))
        for rel, rows in pending.items():
            write(STORE["insert_edges"].text(ontology, _rel=rel), rows)
    return time.perf_counter() - started


def edited_copy(source_path: Path, directory: Path, share: float, seed: int) -> tuple[EmbeddedStore, int]:
    """A copy of the embedded store with ``share`` of its training records edited: a third get new hours, a third
    are deleted (with their edges), and as many new ones are added (copies with new ids and the same edges)."""
    copy = directory / "edited.db"
    with sqlite3.connect(source_path) as src, sqlite3.connect(copy) as dst:
        src.backup(dst)
    store = EmbeddedStore(copy).open()
    records = list(store.nodes("TrainingRecord"))
    picked = random.Random(seed).sample(records, max(3, int(len(records) * share)))
    third = len(picked) // 3
    changed, deleted, copied = picked[:third], picked[third : 2 * third], picked[2 * third :]
    out = store.edges_from(n.id for n in changed + copied)
    nodes = [Node(n.id, n.label, {**n.props, "hours": float(n.props.get("hours", 0)) + 0.5}) for n in changed]
    edges = [e for n in changed for e in out[n.id]]
    for n in copied:
        new_id = f"{n.id}-bench"
        nodes.append(Node(new_id, n.label, n.props))
        edges.extend(Edge(new_id, e.type, e.dst, e.props) for e in out[n.id])
    store.write(nodes, edges)
    store.delete_nodes(n.id for n in deleted)
    return store, len(picked)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--clear", action="store_true", help="允许清空 NEO4J_URI 上的数据库（必需）")
    parser.add_argument("--repeats", type=int, default=3, help="增量同步与普通加载器交替的次数（取中位数）")
    parser.add_argument("--edit-share", type=float, default=0.02, help="第 3 步改动的培训记录比例")
    args = parser.parse_args()
    if not args.clear:
        sys.exit("基准测试会清空 Neo4j 数据库：确认后加 --clear 运行")

    settings = Settings.from_env()
    ontology = load_ontology()
    server = local_server(settings)
    if server is None:
        sys.exit(f"{settings.neo4j_uri} 不是本机 scripts/neo4j-dev 运行的服务器：首次载入需要停下它（见本文件开头）")
    source = EmbeddedStore(settings.db_path).open()
    n_nodes, n_edges = sum(source.node_counts().values()), sum(source.edge_counts().values())
    items = n_nodes + n_edges
    with Neo4jStore.from_settings(settings, ontology).open() as target:
        batch = target.batch_size
        target.clear()
    print(f"源：{settings.db_path}：{n_nodes:,} 个节点，{n_edges:,} 条关系；Neo4j {settings.neo4j_uri}，批大小 {batch}")

    # 1. first load
    report = first_load(source, settings, ontology, server=server, progress=False)
    assert report.in_step, "首次载入后数量与源不一致"
    tool, ours = report.phases["import"], report.seconds
    print("\n1. 首次载入（空数据库）")
    print(f"   阶段：{'，'.join(f'{k} {v:.1f} 秒' for k, v in report.phases.items())}")
    print(f"{'写入方式':<30}{'条/秒':>10}{'用时（秒）':>12}")
    print(f"{'neo4j-admin 自身（同一批 CSV）':<26}{items / tool:>12,.0f}{tool:>12.1f}")
    print(f"{'本项目首次载入（全过程）':<26}{items / ours:>12,.0f}{ours:>12.1f}")
    print(f"比值（本项目 ÷ neo4j-admin）：{tool / ours:.2f}（目标 ≥ 0.8）")

    # 2. incremental sync vs the plain loader, both into the emptied database
    with Neo4jStore.from_settings(settings, ontology).open() as target:
        plain_s, sync_s = [], []

        def run_plain() -> None:
            target.clear()
            plain_s.append(plain_load(source, settings, ontology, batch))
            assert target.node_counts() == source.node_counts(), "普通加载器写入的数量与源不一致"

        def run_sync() -> None:
            target.clear()
            synced = sync_graph(source, target)
            assert synced.in_step, "同步后数量与源不一致"
            sync_s.append(synced.seconds)

        for repeat in range(args.repeats):  # the order alternates, so a drift in the machine's load hits both
            for run in (run_plain, run_sync) if repeat % 2 == 0 else (run_sync, run_plain):
                run()
            print(f"   普通加载器 {plain_s[-1]:.1f} 秒，增量同步 {sync_s[-1]:.1f} 秒", flush=True)
        plain, ours = statistics.median(plain_s), statistics.median(sync_s)
        print(f"\n2. 增量同步写入空数据库 vs 普通 UNWIND CREATE 加载器（{args.repeats} 次交替，中位数）")
        print(f"{'写入方式':<30}{'条/秒':>10}{'用时（秒）':>12}")
        print(f"{'普通 UNWIND CREATE 加载器':<28}{items / plain:>12,.0f}{plain:>12.1f}")
        print(f"{'kg sync（差异写入）':<28}{items / ours:>12,.0f}{ours:>12.1f}")
        print(f"比值（kg sync ÷ 普通加载器）：{plain / ours:.2f}（目标 ≥ 0.8）")

        # 3. after edits, and with nothing to do
        with tempfile.TemporaryDirectory() as tmp:
            edited, count = edited_copy(settings.db_path, Path(tmp), args.edit_share, seed=7)
            after = sync_graph(edited, target)
            assert after.in_step, "改动后同步的数量与源不一致"
            changes = sum(after.changes[k] for k in ("nodes_created", "nodes_deleted", "relationships_created",
                                                     "relationships_deleted"))
            again = sync_graph(edited, target)
            edited.close()
        print(f"\n3. 改动 {count:,} 条培训记录（改 1/3、删 1/3、增 1/3）后同步")
        print(f"   用时 {after.seconds:.1f} 秒，节点与关系增删 {changes:,} 处、写入属性 {after.changes['properties_set']:,} 个；"
              f"普通加载器重写全图 {plain:.1f} 秒（{plain / after.seconds:.1f} 倍）")
        print(f"   再同步一次：用时 {again.seconds:.1f} 秒，改动 {sum(again.changes.values())} 处（应为 0）")
    source.close()


if __name__ == "__main__":
    main()
