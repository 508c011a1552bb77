"""Does a merge import into the embedded store scale linearly?  ``python -m kg import`` at 10k and 100k rows.

Why: the full-text rows used to be deleted ``WHERE id = ?`` on an unindexed FTS5 column, a scan of the whole
table per imported row, so a merge import was quadratic (5k rows 3.5 s, 10k 18.9 s, 20k 82.7 s, 100k never
finished).  Now they are deleted by rowid (see :mod:`kg.store.embedded`).

What runs, for each size N (default 10,000 and 100,000):

1. The scale generator's synthetic courses (``corpora.scale``, the corpus ``python -m corpora scale`` writes; its
   courses are valid against the shapes), the first N rows of one generated file.
2. **ganxun**: a fresh embedded store holding the concept schemes and the sample institutions and platforms (what
   the courses refer to), then :func:`kg.build.import_files` on the N courses, the path of ``python -m kg import``:
   read, validate (every reference resolved in one bulk ``labels_of``), one atomic merge write.  The write is also
   timed on its own.
3. **peer**: plain SQLite, same machine, same run, same rows: parse each JSON line and ``executemany`` it into a
   fresh WAL file with an id-keyed table and a trigram FTS5 table, in one transaction.  It shows how much of any
   growth is SQLite's own (B-trees and the FTS index getting deeper, the page cache filling) rather than ganxun's.

Printed: each time, and the ratio t(large) / (large/small × t(small)) for both — 1.0 is exactly linear; the target
for ganxun is at most 2.  Run it on a quiet machine; it uses one core::

    python bench/import_scale.py [--sizes 10000 100000] [--seed 7]
"""

from __future__ import annotations

import argparse
import json
import shutil
import sqlite3
import sys
import tempfile
import time
from itertools import islice
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from corpora.scale import write_scale_corpus  # noqa: E402
from kg.build import build_graph, import_files  # noqa: E402
from kg.config import REPO_ROOT  # noqa: E402
from kg.ontology import Ontology, load_ontology  # noqa: E402
from kg.store.embedded import EmbeddedStore  # noqa: E402

SAMPLE_DIR = REPO_ROOT / "corpora" / "sample"


def generate(ontology: Ontology, work: Path, sizes: list[int], seed: int) -> tuple[Path, dict[int, Path]]:
    """The referenced institutions in ``base/``, and one courses file per size (prefixes of one generated file)."""
    corpus = work / "corpus"
    write_scale_corpus(ontology, SAMPLE_DIR, corpus, courses=max(sizes), cadres=0, records_per_cadre=0, seed=seed)
    base = work / "base"
    base.mkdir()
    shutil.copyfile(corpus / "institutions.jsonl", base / "institutions.jsonl")
    files = {}
    for size in sizes:
        files[size] = work / f"courses-{size}.jsonl"
        with (corpus / "courses.jsonl").open(encoding="utf-8") as source, files[size].open("w", encoding="utf-8") as out:
            out.writelines(islice(source, size))
    return base, files


def time_ganxun(ontology: Ontology, base: Path, courses: Path, db: Path) -> tuple[float, float, int]:
    """Seconds for the whole import and for its store write alone, and the number of nodes imported."""
    text_labels = [c.name for c in ontology.classes.values() if not c.personal]
    with EmbeddedStore(db, text_labels=text_labels) as store:
        build_graph(store, [base], ontology)
        write = store.write
        spent: list[float] = []

        def timed_write(*args, **kwargs):
            started = time.perf_counter()
            try:
                return write(*args, **kwargs)
            finally:
                spent.append(time.perf_counter() - started)

        store.write = timed_write  # the instance's write, timed; import_files calls it once
        started = time.perf_counter()
        report = import_files(store, [courses], ontology)
        total = time.perf_counter() - started
        assert len(report.nodes) == sum(1 for _ in courses.open(encoding="utf-8")), "导入的节点数与行数不符"
        assert store.node_counts()["Course"] == len(report.nodes)
    return total, sum(spent), len(report.nodes)


def time_peer(courses: Path, db: Path) -> float:
    """Plain SQLite: the same rows parsed and inserted with executemany, one transaction."""
    started = time.perf_counter()
    conn = sqlite3.connect(db, isolation_level=None)
    conn.execute("PRAGMA journal_mode=WAL")
    conn.execute("PRAGMA synchronous=FULL")
    conn.execute("CREATE TABLE nodes (id TEXT PRIMARY KEY, label TEXT NOT NULL, props TEXT NOT NULL) WITHOUT ROWID")
    conn.execute("CREATE VIRTUAL TABLE node_text USING fts5(id UNINDEXED, label UNINDEXED, body, tokenize='trigram')")
    rows = [json.loads(line) for line in courses.open(encoding="utf-8")]
    conn.execute("BEGIN IMMEDIATE")
    conn.executemany(
        "INSERT INTO nodes VALUES (?,?,?)",
        [(r["id"], r["type"], json.dumps(r, ensure_ascii=False, sort_keys=True)) for r in rows],
    )
    conn.executemany(
        "INSERT INTO node_text(id, label, body) VALUES (?,?,?)",
        [(r["id"], r["type"], f"{r['name']}\n{r['description']}") for r in rows],
    )
    conn.execute("COMMIT")
    conn.close()
    return time.perf_counter() - started


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sizes", type=int, nargs=2, default=[10_000, 100_000], metavar=("SMALL", "LARGE"))
    parser.add_argument("--seed", type=int, default=7)
    args = parser.parse_args()
    small, large = sorted(args.sizes)
    ontology = load_ontology()
    with tempfile.TemporaryDirectory(prefix="ganxun-import-scale-") as tmp:
        work = Path(tmp)
        base, files = generate(ontology, work, [small, large], args.seed)
        results: dict[int, dict[str, float]] = {}
        for size in (small, large):
            total, write, count = time_ganxun(ontology, base, files[size], work / f"ganxun-{size}.db")
            peer = time_peer(files[size], work / f"peer-{size}.db")
            results[size] = {"import": total, "write": write, "peer": peer}
            print(f"{count:>9,} 行：kg import {total:7.2f} 秒（其中写入 {write:6.2f} 秒）；SQLite 直接插入 {peer:6.2f} 秒", flush=True)
    factor = large / small

    def ratio(key: str) -> float:
        return results[large][key] / (factor * results[small][key])

    print(f"kg import   t({large:,}) / ({factor:g} × t({small:,})) = {ratio('import'):.2f}（目标 ≤ 2）")
    print(f"  其中写入  t({large:,}) / ({factor:g} × t({small:,})) = {ratio('write'):.2f}")
    print(f"SQLite 对照 t({large:,}) / ({factor:g} × t({small:,})) = {ratio('peer'):.2f}")


if __name__ == "__main__":
    main()
