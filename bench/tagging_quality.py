"""Tagging quality and speed on real public item titles (``tests/fixtures/tagging/items.jsonl``).

121 titles written from public catalogues (中国干部网络学院 / 党校 course titles, 全国干部学习培训教材 and other
study books, well-known cases, on-site teaching sites of several kinds, ten of them red-resource sites), each
with the plan topics that would be right.  A suggestion is a hit when it is one of them.  The tagger sees only
the title, as an import of a bare catalogue gives it.

Printed side by side, per branch (the top concept of the first expected topic; red-resource sites apart) and per
kind: top-1 and top-3 accuracy of the tagger now, of the tagger before issue 15 (``recommender/search/tagging.py`` at
commit f52a3ad, read from git by ``bench/frozen.py``), and of the best constant answer (the one topic, or three topics, right most
often in that group).  Then batch throughput: items tagged per second by ``confidences`` over the whole set,
median of 3 runs after a warm-up, encoding included.

    python bench/tagging_quality.py [--home DIR]
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import time
from collections import Counter, defaultdict
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
#: The commit whose tagger is the peer: the last before issue 15.
TAGGER_BEFORE = "f52a3ad"
sys.path.insert(0, str(ROOT))

from kg.build import build_graph  # noqa: E402
from kg.config import Settings  # noqa: E402
from kg.ontology import load_ontology  # noqa: E402
from kg.store import open_store  # noqa: E402
from recommender.search.documents import Document  # noqa: E402
from recommender.search.service import SearchService  # noqa: E402
from recommender.search.tagging import TopicTagger  # noqa: E402

ITEMS = ROOT / "tests" / "fixtures" / "tagging" / "items.jsonl"
SAMPLE = ROOT / "corpora" / "sample"
RED = "红色资源"


def load_items() -> list[dict]:
    return [json.loads(line) for line in ITEMS.read_text(encoding="utf-8").splitlines() if line.strip()]


def _service(home: Path) -> SearchService:
    settings = Settings.from_env({"GANXUN_HOME": str(home), "GANXUN_CORPORA": str(SAMPLE)})
    with open_store(settings=settings) as store:
        if store.is_empty():
            build_graph(store, [SAMPLE], load_ontology())
        return SearchService.open(store, settings, update=True)


def _docs(items: list[dict]) -> list[Document]:
    return [Document(id=f"bench:{k}", kind="", title=i["title"], description="", chunks=(i["title"],))
            for k, i in enumerate(items)]


def branch_of(service: SearchService, topic: str) -> str:
    """The Chinese name of the top concept above ``topic``."""
    props = service.topic_props
    tops = [t for t in props if not any(t in service.narrower_topics(u) for u in props if u != t)]
    top = next((t for t in tops if topic in service.narrower_topics(t)), topic)
    return props[top].get("name", top)


def _accuracy(items: list[dict], ranked: list[list[str]], k: int) -> float:
    return sum(bool(set(r[:k]) & set(i["topics"])) for i, r in zip(items, ranked)) / max(len(items), 1)


def _constant(items: list[dict], k: int) -> float:
    """Best constant answer: the k topics most often right in the group (greedy, exact for k = 1)."""
    chosen: list[str] = []
    left = list(items)
    for _ in range(k):
        counts = Counter(t for i in left for t in i["topics"])
        if not counts:
            break
        best = counts.most_common(1)[0][0]
        chosen.append(best)
        left = [i for i in left if best not in i["topics"]]
    return sum(bool(set(chosen) & set(i["topics"])) for i in items) / max(len(items), 1)


def _ranked(tagger, docs: list[Document]) -> list[list[str]]:
    probabilities = tagger.confidences(docs)
    return [[tagger.topic_ids[j] for j in (-p).argsort(kind="stable")[:3]] for p in probabilities]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--home", type=Path, default=ROOT / "var" / "bench-tagging")
    args = parser.parse_args()
    service = _service(args.home)
    items = load_items()
    docs = _docs(items)

    sys.path.insert(0, str(ROOT / "bench"))
    from frozen import module_at

    OldTagger = module_at(TAGGER_BEFORE, "recommender/search/tagging.py", "tagging_before").TopicTagger

    started = time.perf_counter()
    new = TopicTagger.from_service(service)
    built_new = time.perf_counter() - started
    started = time.perf_counter()
    old = OldTagger.from_service(service)
    built_old = time.perf_counter() - started
    ranked_new, ranked_old = _ranked(new, docs), _ranked(old, docs)

    groups: dict[str, list[int]] = defaultdict(list)
    for k, item in enumerate(items):
        groups["分支·" + (RED if item.get("group") == RED else branch_of(service, item["topics"][0]))].append(k)
        groups["类别·" + item["kind"]].append(k)
    groups["全部"] = list(range(len(items)))
    groups["红色资源以外"] = [k for k, i in enumerate(items) if i.get("group") != RED]

    print(f"{len(items)} 个条目（{len(groups['红色资源以外'])} 个在红色资源以外）；只用标题")
    header = f"{'组':<16}{'条目':>5}{'现在 top1':>11}{'top3':>7}{'改前 top1':>11}{'top3':>7}{'常数 top1':>11}{'top3':>7}"
    print(header)
    for name in sorted(groups, key=lambda n: (n not in ("全部", "红色资源以外"), n)):
        sel = [items[k] for k in groups[name]]
        rn = [ranked_new[k] for k in groups[name]]
        ro = [ranked_old[k] for k in groups[name]]
        print(f"{name:<16}{len(sel):>5}{_accuracy(sel, rn, 1):>11.2f}{_accuracy(sel, rn, 3):>7.2f}"
              f"{_accuracy(sel, ro, 1):>11.2f}{_accuracy(sel, ro, 3):>7.2f}{_constant(sel, 1):>11.2f}{_constant(sel, 3):>7.2f}")

    outside = [items[k] for k in groups["红色资源以外"]]
    top1 = _accuracy(outside, [ranked_new[k] for k in groups["红色资源以外"]], 1)
    top3 = _accuracy(outside, [ranked_new[k] for k in groups["红色资源以外"]], 3)
    print(f"\n红色资源以外：top-1 {top1:.2f}（目标 ≥ 0.60），top-3 {top3:.2f}（目标 ≥ 0.85）")

    def speed(tagger) -> float:
        tagger.confidences(docs[:8])  # warm-up
        runs = []
        for _ in range(3):
            started = time.perf_counter()
            tagger.confidences(docs)
            runs.append(time.perf_counter() - started)
        return len(docs) / statistics.median(runs)

    def encoder_only() -> float:
        """The serving encoder alone on the same titles, batched: the ceiling the tagger's rate is read against
        (on a shared machine both move with the load)."""
        runs = []
        for _ in range(3):
            started = time.perf_counter()
            for i in range(0, len(docs), 64):
                service.encoder.passage([d.title for d in docs[i:i + 64]])
            runs.append(time.perf_counter() - started)
        return len(docs) / statistics.median(runs)

    rate_new, rate_old, ceiling = speed(new), speed(old), encoder_only()
    print(f"批量标注（含编码，3 次中位数）：现在 {rate_new:.0f} 条/秒，改前 {rate_old:.0f} 条/秒，"
          f"比值 {rate_new / rate_old:.1f}（目标 ≥ 100 条/秒）；同一次运行中编码器本身 {ceiling:.0f} 条/秒，"
          f"现在为其 {rate_new / ceiling:.0%}")
    print(f"构建标注器：现在 {built_new:.1f} 秒，改前 {built_old:.1f} 秒")
    misses = [(items[k]["title"], ranked_new[k][0]) for k in groups["红色资源以外"]
              if ranked_new[k][0] not in items[k]["topics"]]
    print(f"\n红色资源以外 top-1 未命中 {len(misses)} 个：")
    for title, got in misses:
        print(f"  {title} → {service.topic_props[got].get('name')}")


if __name__ == "__main__":
    main()
