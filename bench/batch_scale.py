"""The nightly batch at province scale: cadres/s with 1 and 2 Dask workers on the same cadres in one run.

    python -m corpora scale --courses 100000 --cadres 1000000 --records-per-cadre 20 --out var/scale-1m
    python bench/batch_scale.py --corpus var/scale-1m [--cadres 200000] [--peer 20000] [--workers 1,2]
                                [--work var/bench-batch] [--nodes 1,4,16] [--cores 16]

Builds (once, reused while the parameters match) an embedded store with the corpus's catalogue and its first
``--cadres`` cadres and their records, written straight through ``Store.write`` in large batches (the generated
rows are trusted; ``kg build`` would validate 4 million records one by one).  Then, on that store in one run:

* the batch (``recommender.batch.run.run_batch``) on a Dask ``LocalCluster`` of 1 worker and of 2 workers over every
  cadre (full runs, ``incremental=False``): cadres/s and the 2-to-1 ratio;
* an incremental re-run with nothing changed (every cadre read and fingerprinted, none recomputed);
* the client-side SQLite ingest alone (the read view filled from the Parquet parts), which a cluster does not
  spread: its cadres/s bounds any cluster's rate;
* the batch as it was before (``recommender/batch/run.py`` at f52a3ad, read from git by ``bench/frozen.py``: a ``multiprocessing`` pool, one store call per cadre,
  the parent writing every row) with the same worker counts on the first ``--peer`` cadres;
* the projection to 1M and 10M cadres on clusters of ``--nodes`` machines of ``--cores`` cores, from the measured
  per-worker rate and the measured 2-worker efficiency, capped by the ingest rate.

The load average is printed beside every figure: the machine is shared, so ratios count more than absolute rates.
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import os
import sqlite3
import sys
import time
from collections.abc import Iterator
from itertools import islice
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
sys.path.insert(0, str(Path(__file__).resolve().parent))

from frozen import module_at  # noqa: E402
from corpora.cadres import AS_OF  # noqa: E402
from kg.model import Edge, Node  # noqa: E402
from kg.ontology import Ontology, load_ontology  # noqa: E402
from kg.store.embedded import EmbeddedStore  # noqa: E402
from recommender.batch import run as batch_run  # noqa: E402
from recommender.batch.blocks import BlockResult  # noqa: E402
from recommender.catalogue.snapshot import load_snapshot  # noqa: E402
from recommender.service import Recommender  # noqa: E402

#: The peer: the batch as it was before issue 16 (a multiprocessing pool, one store call per cadre, the parent
#: writing every row), read from git.
batch_before = module_at("f52a3ad", "recommender/batch/run.py", "batch_before")

TARGETS = {"cadres_per_s": 500.0, "two_to_one": 1.7}
_WRITE_BATCH = 200_000


def _graph_rows(rows: Iterator[dict[str, Any]], ontology: Ontology) -> Iterator[tuple[Node, list[Edge]]]:
    """Corpus rows as nodes and edges: relationship fields (the ontology's) become edges, the rest properties."""
    rel = ontology.relationship_types
    for row in rows:
        label, node_id = row.pop("type"), row.pop("id")
        fields = ontology.classes[label].fields
        edges: list[Edge] = []
        props: dict[str, Any] = {}
        for name, value in row.items():
            if name in rel:
                values = value if isinstance(value, list) else [value]
                ordered = fields.get(name) is not None and fields[name].ordered
                edges += [Edge(node_id, rel[name], v, {"ord": i} if ordered else {}) for i, v in enumerate(values) if v]
            else:
                props[name] = value
        yield Node(node_id, label, props), edges


def _jsonl(path: Path) -> Iterator[dict[str, Any]]:
    with path.open(encoding="utf-8") as handle:
        for line in handle:
            if line.strip():
                yield json.loads(line)


def _records_of_first(path: Path, cadre_ids: set[str]) -> Iterator[dict[str, Any]]:
    """Records of the given cadres; the generator writes them cadre by cadre, so reading stops after the last."""
    seen_any = False
    for row in _jsonl(path):
        if row["ofCadre"] in cadre_ids:
            seen_any = True
            yield row
        elif seen_any:
            return


def _write(store: EmbeddedStore, pairs: Iterator[tuple[Node, list[Edge]]]) -> int:
    total = 0
    while batch := list(islice(pairs, _WRITE_BATCH)):
        store.write([n for n, _ in batch], [e for _, edges in batch for e in edges])
        total += len(batch)
    return total


def prepare(corpus: Path, work: Path, cadres: int) -> tuple[EmbeddedStore, dict[str, Any]]:
    """The benchmark's store: catalogue and first ``cadres`` cadres of ``corpus``, reused when the parameters match."""
    ontology = load_ontology()
    text_labels = [c.name for c in ontology.classes.values() if not c.personal]
    params = {"corpus": str(corpus.resolve()), "cadres": cadres, "size": (corpus / "records.jsonl").stat().st_size}
    marker, db = work / "params.json", work / "graph.db"
    if marker.exists() and db.exists() and json.loads(marker.read_text())["params"] == params:
        return EmbeddedStore(db, text_labels=text_labels).open(), json.loads(marker.read_text())
    work.mkdir(parents=True, exist_ok=True)
    db.unlink(missing_ok=True)
    store = EmbeddedStore(db, text_labels=text_labels).open()
    started = time.perf_counter()
    concept_nodes, concept_edges = ontology.concept_graph()
    store.write(concept_nodes, concept_edges)
    catalogue = _write(store, _graph_rows((r for name in ("institutions.jsonl", "courses.jsonl") for r in _jsonl(corpus / name)), ontology))
    chosen = list(islice(_jsonl(corpus / "cadres.jsonl"), cadres))
    ids = {row["id"] for row in chosen}
    _write(store, _graph_rows(iter(chosen), ontology))
    records = _write(store, _graph_rows(_records_of_first(corpus / "records.jsonl", ids), ontology))
    info = {"params": params, "catalogue_rows": catalogue, "cadres": len(chosen), "records": records,
            "load_seconds": round(time.perf_counter() - started, 1)}
    marker.write_text(json.dumps(info))
    return store, info


def load() -> str:
    return "/".join(f"{x:.1f}" for x in os.getloadavg())


def _ingest_rate(path: Path) -> float:
    """Cadres/s of filling a fresh SQLite read view from the run's Parquet parts, the one serial step of a run."""
    parquet = batch_run.batch_parquet(path)
    parts = sorted((parquet / "cadres").iterdir())
    target = path.with_name("ingest-only.sqlite")
    target.unlink(missing_ok=True)
    conn = sqlite3.connect(target)
    conn.executescript(batch_run._SCHEMA)
    started = time.perf_counter()
    cadres = 0
    for part in parts:
        number = int(part.stem.split("-")[1])
        with sqlite3.connect(path) as read:
            n = read.execute("SELECT count(*) FROM cadres WHERE part = ?", (number,)).fetchone()[0]
        batch_run._ingest(conn, parquet, BlockResult(number, n, n, 0, 0, 0, 0.0))
        cadres += n
    conn.commit()
    seconds = time.perf_counter() - started
    conn.close()
    target.unlink()
    return cadres / seconds


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--corpus", type=Path, required=True, help="a directory written by python -m corpora scale")
    parser.add_argument("--cadres", type=int, default=200_000)
    parser.add_argument("--peer", type=int, default=20_000, help="cadres for the old batch (0: skip it)")
    parser.add_argument("--workers", default="1,2")
    parser.add_argument("--work", type=Path, default=Path("var/bench-batch"))
    parser.add_argument("--nodes", default="1,4,16")
    parser.add_argument("--cores", type=int, default=16)
    parser.add_argument("--block-size", type=int, default=batch_run.BLOCK_SIZE)
    args = parser.parse_args()
    counts = [int(w) for w in args.workers.split(",")]

    store, info = prepare(args.corpus, args.work, args.cadres)
    print(f"store: {info['cadres']:,} cadres, {info['records']:,} records, {info['catalogue_rows']:,} catalogue rows "
          f"(loaded in {info['load_seconds']} s when built)")
    started = time.perf_counter()
    snapshot = load_snapshot(store)
    print(f"snapshot: {snapshot.n_courses:,} courses in {time.perf_counter() - started:.1f} s; load {load()}")
    recommender = Recommender(snapshot, store, today=AS_OF)
    ids = [n.id for n in store.nodes("Cadre")]

    rates: dict[int, float] = {}
    steady: dict[int, float] = {}
    print(f"\n{'run':<34}{'cadres':>10}{'seconds':>10}{'cadres/s':>10}  load (1/5/15 min)")
    for workers in counts:
        path = args.work / f"batch-{workers}.sqlite"
        marks: list[tuple[float, int]] = []
        started = time.perf_counter()
        summary = batch_run.run_batch(recommender, ids, k=10, path=path, workers=workers, engine="dask", progress=False,
                                      incremental=False, block_size=args.block_size,
                                      on_progress=lambda done, _total: marks.append((time.perf_counter(), done)))
        rates[workers] = summary.rate
        # after the first block: the cluster is up, every worker holds its snapshot; what a long run converges to
        (t0, d0), (t1, d1) = marks[min(workers, len(marks) - 1) - 1], marks[-1]
        steady[workers] = (d1 - d0) / (t1 - t0) if t1 > t0 else summary.rate
        print(f"{'Dask, ' + str(workers) + ' worker(s), full':<34}{summary.cadres:>10,}{summary.seconds:>10.1f}"
              f"{summary.rate:>10.1f}  {load()}  (start-up to first block {marks[0][0] - started:.1f} s; "
              f"steady {steady[workers]:.1f} cadres/s)")
    last = args.work / f"batch-{counts[-1]}.sqlite"
    again = batch_run.run_batch(recommender, ids, k=10, path=last, workers=counts[-1], engine="dask", progress=False,
                                block_size=args.block_size)
    print(f"{'Dask, ' + str(counts[-1]) + ' worker(s), incremental':<34}{again.cadres:>10,}{again.seconds:>10.1f}"
          f"{again.rate:>10.1f}  {load()}  (recomputed {again.computed:,}, carried {again.carried:,})")
    ingest = _ingest_rate(last)
    print(f"{'client SQLite ingest alone':<34}{len(ids):>10,}{len(ids) / ingest:>10.1f}{ingest:>10.1f}  {load()}")
    peer_rates: dict[int, float] = {}
    if args.peer:
        sample = ids[:args.peer]
        for workers in counts:
            old = batch_before.run_batch(recommender, sample, k=10, path=args.work / f"before-{workers}.sqlite",
                                         workers=workers, progress=False,
                                         store_factory=lambda: EmbeddedStore(store.path, store.text_labels).open())
            peer_rates[workers] = old.rate
            print(f"{'before (multiprocessing), ' + str(workers):<34}{old.cadres:>10,}{old.seconds:>10.1f}"
                  f"{old.rate:>10.1f}  {load()}")

    one, two = steady.get(1), steady.get(2)
    print()
    if one and two:
        print(f"2 workers / 1 worker, steady: {two / one:.2f}× (target ≥ {TARGETS['two_to_one']}×); "
              f"whole runs {rates[2] / rates[1]:.2f}×")
    best = max(steady.values())
    print(f"best steady rate on this machine: {best:.1f} cadres/s (target ≥ {TARGETS['cadres_per_s']:.0f})")
    if peer_rates:
        for workers in counts:
            if workers in peer_rates:
                print(f"{workers} worker(s): new {steady[workers]:.1f} steady ({rates[workers]:.1f} whole run) / before "
                      f"{peer_rates[workers]:.1f} cadres/s = {steady[workers] / peer_rates[workers]:.2f}×")
    per_worker = one or best / max(counts)
    efficiency = min(1.0, two / (2 * one)) if one and two else 1.0
    print(f"\nprojection: per-worker {per_worker:.1f} cadres/s × workers × efficiency {efficiency:.2f} (measured 2-worker), "
          f"capped by the client's ingest {ingest:.0f} cadres/s")
    print(f"{'nodes × cores':<16}{'cadres/s':>12}{'1M':>14}{'10M':>14}")
    for nodes in (int(n) for n in args.nodes.split(",")):
        rate = min(per_worker * nodes * args.cores * efficiency, ingest)
        print(f"{f'{nodes} × {args.cores}':<16}{rate:>12,.0f}{_duration(1_000_000 / rate):>14}{_duration(10_000_000 / rate):>14}")
    print(f"{'this machine':<16}{best:>12,.0f}{_duration(1_000_000 / best):>14}{_duration(10_000_000 / best):>14}")


def _duration(seconds: float) -> str:
    return f"{seconds / 3600:.1f} h" if seconds >= 3600 else f"{seconds / 60:.1f} min"


if __name__ == "__main__":
    main()
