"""Recommender speed at scale: single-cadre latency, batch throughput and snapshot memory.

    python bench/recommend_speed.py [--courses 100000] [--cadres 20000] [--records-per-cadre 20]
                                    [--work DIR] [--sample 500] [--batch 2000] [--workers 1,2]

Builds (once, reused afterwards) a scale corpus with ``corpora/scale.py`` and an embedded store from it,
then measures, on the same store in one run:

* snapshot load time and memory (tracemalloc: Python objects and numpy buffers the snapshot keeps);
* ``Recommender.recommend(cadre, k=10)`` latency, no free-text intent, so no model encoding — after a
  warm-up, over a seeded random sample of cadres; p50 / p99 / mean, and how much of it is fetching the
  cadre's records from the store;
* batch throughput (``run_batch``) in cadres per second for each worker count.

Targets (DESIGN.md, 2-core machine): p50 ≤ 20 ms, p99 ≤ 50 ms, ≥ 500 cadres/s.  Per-cadre work does not
depend on how many cadres are stored (records are fetched by index), so a store with fewer cadres than
the full million gives the same per-cadre figures up to a deeper B-tree; the table says what was built.
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import os
import random
import statistics
import sys
import time
import tracemalloc
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from corpora.scale import write_scale_corpus  # noqa: E402
from kg.build import build_graph  # noqa: E402
from kg.config import REPO_ROOT  # noqa: E402
from kg.ontology import load_ontology  # noqa: E402
from kg.store.embedded import EmbeddedStore  # noqa: E402
from recommender.batch.run import run_batch  # noqa: E402
from recommender.learner.profile import fetch_profile  # noqa: E402
from recommender.service import Recommender  # noqa: E402
from recommender.catalogue.snapshot import load_snapshot  # noqa: E402

TODAY = dt.date(2026, 11, 15)
TARGETS = {"p50_ms": 20.0, "p99_ms": 50.0, "cadres_per_s": 500.0}


def prepare(work: Path, courses: int, cadres: int, per_cadre: int, seed: int) -> EmbeddedStore:
    """The scale corpus and a store built from it, reused when the parameters match."""
    ontology = load_ontology()
    params = {"courses": courses, "cadres": cadres, "records_per_cadre": per_cadre, "seed": seed}
    marker = work / "params.json"
    db = work / "graph.db"
    text_labels = [c.name for c in ontology.classes.values() if not c.personal]
    if marker.exists() and json.loads(marker.read_text()) == params and db.exists():
        return EmbeddedStore(db, text_labels=text_labels).open()
    corpus = work / "corpus"
    started = time.perf_counter()
    write_scale_corpus(ontology, REPO_ROOT / "corpora" / "sample", corpus, courses, cadres, per_cadre, seed)
    print(f"生成语料 {time.perf_counter() - started:.0f} 秒", flush=True)
    for suffix in ("", "-wal", "-shm"):
        Path(f"{db}{suffix}").unlink(missing_ok=True)
    store = EmbeddedStore(db, text_labels=text_labels).open()
    started = time.perf_counter()
    build_graph(store, [corpus], ontology, progress=True)
    print(f"构建存储 {time.perf_counter() - started:.0f} 秒", flush=True)
    marker.write_text(json.dumps(params))
    return store


def snapshot_memory(store: EmbeddedStore) -> tuple[float, float]:
    """(load seconds, MiB held) — loaded twice: once timed, once traced (tracing slows loading)."""
    started = time.perf_counter()
    load_snapshot(store)
    seconds = time.perf_counter() - started
    tracemalloc.start()
    before = tracemalloc.get_traced_memory()[0]
    snapshot = load_snapshot(store)
    held = tracemalloc.get_traced_memory()[0] - before
    tracemalloc.stop()
    del snapshot
    return seconds, held / 2**20


def latency(recommender: Recommender, cadres: list[str], warmup: int) -> dict[str, float]:
    for cadre in cadres[:warmup]:
        recommender.recommend(cadre, k=10)
    totals, cpu, fetches = [], [], []
    for cadre in cadres[warmup:]:
        started = time.perf_counter()
        fetch_profile(recommender.store, recommender.snapshot, cadre, until=TODAY)
        fetches.append(time.perf_counter() - started)
        started, started_cpu = time.perf_counter(), time.process_time()
        recommender.recommend(cadre, k=10)
        totals.append(time.perf_counter() - started)
        cpu.append(time.process_time() - started_cpu)
    ms, cpu_ms = np.array(totals) * 1e3, np.array(cpu) * 1e3
    return {"p50_ms": float(np.percentile(ms, 50)), "p99_ms": float(np.percentile(ms, 99)), "mean_ms": float(ms.mean()),
            "cpu_p50_ms": float(np.percentile(cpu_ms, 50)), "cpu_p99_ms": float(np.percentile(cpu_ms, 99)),
            "fetch_p50_ms": float(np.percentile(np.array(fetches) * 1e3, 50)), "n": len(ms)}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--courses", type=int, default=100_000)
    parser.add_argument("--cadres", type=int, default=20_000)
    parser.add_argument("--records-per-cadre", type=int, default=20)
    parser.add_argument("--seed", type=int, default=7)
    parser.add_argument("--work", type=Path, default=Path(os.environ.get("GANXUN_HOME", REPO_ROOT / "var")) / "bench-recommend")
    parser.add_argument("--sample", type=int, default=500, help="cadres timed for latency (after --warmup)")
    parser.add_argument("--warmup", type=int, default=50)
    parser.add_argument("--batch", type=int, default=2000, help="cadres per batch-throughput run")
    parser.add_argument("--workers", default="1,2", help="worker counts to time, comma-separated")
    parser.add_argument("--repeat", type=int, default=3, help="batch runs per worker count (median reported)")
    args = parser.parse_args()
    args.work.mkdir(parents=True, exist_ok=True)

    store = prepare(args.work, args.courses, args.cadres, args.records_per_cadre, args.seed)
    counts = store.node_counts()
    load_s, mib = snapshot_memory(store)
    snapshot = load_snapshot(store)
    recommender = Recommender(snapshot, store, today=TODAY)
    ids = [n.id for n in store.nodes("Cadre")]
    rng = random.Random(args.seed)
    sample = rng.sample(ids, min(len(ids), args.sample + args.warmup))
    lat = latency(recommender, sample, args.warmup)
    batch_ids = rng.sample(ids, min(len(ids), args.batch))
    rates: dict[int, float] = {}
    cpu_per_cadre: list[float] = []
    for workers in (int(w) for w in args.workers.split(",")):
        runs = []
        for _ in range(args.repeat):
            started_cpu = time.process_time()
            runs.append(run_batch(recommender, batch_ids, k=10, today=TODAY, path=args.work / f"batch-{workers}.sqlite",
                                  progress=False, workers=workers,
                                  store_factory=lambda: EmbeddedStore(store.path, text_labels=store.text_labels).open()).rate)
            if workers == 1:
                cpu_per_cadre.append((time.process_time() - started_cpu) / len(batch_ids))
        rates[workers] = statistics.median(runs)

    load = os.getloadavg()
    print()
    print(f"推荐速度基准：{counts.get('Course', 0):,} 门课程（已发布 {int(snapshot.course_published.sum()):,}），"
          f"{counts.get('Cadre', 0):,} 名干部，{counts.get('TrainingRecord', 0):,} 条记录；"
          f"CPU {os.cpu_count()} 核，测量结束时负载 {load[0]:.1f}")
    rows = [
        ("单人推荐 p50（毫秒）", lat["p50_ms"], TARGETS["p50_ms"], "≤"),
        ("单人推荐 p99（毫秒）", lat["p99_ms"], TARGETS["p99_ms"], "≤"),
        ("单人推荐均值（毫秒）", lat["mean_ms"], None, ""),
        ("其中读取本人记录 p50（毫秒）", lat["fetch_p50_ms"], None, ""),
    ]
    rows += [("单人推荐 CPU 时间 p50（毫秒）", lat["cpu_p50_ms"], None, ""),
             ("单人推荐 CPU 时间 p99（毫秒）", lat["cpu_p99_ms"], None, "")]
    rows += [(f"批量吞吐，{w} 进程（人/秒）", r, TARGETS["cadres_per_s"], "≥") for w, r in rates.items()]
    if cpu_per_cadre:
        rows.append(("按单进程 CPU 时间折算 2 核（人/秒）", 2 / statistics.median(cpu_per_cadre), TARGETS["cadres_per_s"], "≥"))
    rows += [("目录快照内存（MiB）", mib, None, ""), ("目录快照加载（秒）", load_s, None, "")]
    print(f"{'指标':<28}{'实测':>12}{'目标':>10}{'实测/目标':>12}")
    for name, value, target, sense in rows:
        ratio = f"{value / target:>11.2f}" if target else f"{'':>11}"
        verdict = ("✓" if (value <= target if sense == "≤" else value >= target) else "✗") if target else ""
        print(f"{name:<28}{value:>12.1f}{(sense + format(target, 'g')) if target else '':>10}{ratio} {verdict}")
    best = max(rates.values())
    print(f"按最快吞吐 {best:.0f} 人/秒，100 万名干部批量推荐约需 {1_000_000 / best / 60:.0f} 分钟"
          f"（单人耗时与库中干部总数无关，只随本人记录数增长；本次库中 {counts.get('Cadre', 0):,} 人）")
    print(f"延迟样本 {lat['n']} 人（预热 {args.warmup} 人），无自由文本意向，不含模型编码；"
          f"吞吐为 {args.repeat} 次运行的中位数，每次 {len(batch_ids):,} 人")


if __name__ == "__main__":
    main()
