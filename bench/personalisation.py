"""Recommendations that fit the person: the role-scenario suite on today's ranker, an older one and a constant list.

    python bench/personalisation.py [--old c4164e4] [--also REV ...] [--work DIR] [--detail]

The suite is ``tests/scenarios/roles.yaml`` (scenarios written from the plan and the requirements, each with
the topics a curriculum designer expects first, and 20 free-text intents); the figures and their
definitions are those of ``tests/scenarios/suite.py``.  Side by side, in one run and on the very same
import rows:

* **current** — the working tree as it is (``git describe --dirty`` names it);
* **old** — the ranker at ``--old`` (default ``c4164e4``), extracted with ``git archive`` into a temporary
  folder and run there as a subprocess of ``tests/scenarios/suite.py rank``.  The role data the scenarios
  need (``ontology/roles.ttl``, ``requirements.yaml``, ``shapes.ttl``: the new position domains and a cadre
  without a position) are copied over that tree's, so both rankers read the same roles; everything else —
  code, rules, topics, catalogue — is the old commit's;
* ``--also REV`` adds a column for any other commit the same way (e.g. ``HEAD``, the last commit before
  uncommitted work);
* **constant** — the same most-enrolled published top 10 for everyone.

Every ranker builds its own temporary embedded store from the sample catalogue plus the scenario rows through
``kg.build`` (the project's import path) and encodes the catalogue once for the intents with the local model.
HR / NDCG against the sample generator's hidden interests are not recomputed here (they need the 2,000
generated cadres and a full build): they are ``python -m recommender evaluate``.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from kg.ontology import load_ontology  # noqa: E402
from tests.scenarios.suite import (  # noqa: E402
    SUITE_PATH,
    Oracle,
    Scores,
    Suite,
    constant_lists,
    load_suite,
    read_catalogue,
    score,
    target_checks,
    write_rows,
)

SUITE_SCRIPT = ROOT / "tests" / "scenarios" / "suite.py"
#: Role data the scenarios depend on, laid over an older tree so its ranker sees the same roles.
ROLE_FILES = ("ontology/roles.ttl", "ontology/requirements.yaml", "ontology/shapes.ttl")
ROWS = [
    ("coverage_at_10", "岗位缺口覆盖@10", "percent"),
    ("coverage_at_3", "岗位缺口覆盖@3", "percent"),
    ("job_coverage_at_10", "  其中岗位情景@10", "percent"),
    ("job_coverage_at_3", "  其中岗位情景@3", "percent"),
    ("control_coverage_at_10", "  对照情景@10", "percent"),
    ("max_first_share", "同一首条最多占", "percent"),
    ("distinct_share", "不同条目/推荐位", "percent"),
    ("audience_violations", "受众不符条目数", "count"),
    ("intent_hit_at_3", "意向命中@3", "percent"),
]


def _git(*args: str) -> str:
    return subprocess.run(["git", *args], cwd=ROOT, check=True, capture_output=True, text=True).stdout.strip()


def _extract(rev: str, into: Path) -> Path:
    """The tree of ``rev`` (``git archive``, no worktree metadata touched), with today's role data over it."""
    into.mkdir(parents=True)
    archive = subprocess.run(["git", "archive", "--format=tar", rev], cwd=ROOT, check=True, capture_output=True).stdout
    subprocess.run(["tar", "-x", "-C", str(into)], input=archive, check=True)
    for name in ROLE_FILES:
        shutil.copyfile(ROOT / name, into / name)
    return into


def _rank(tree: Path, rows: Path, work: Path, label: str) -> tuple[dict, float]:
    """Run ``suite.py rank`` with ``tree``'s code first on the path; returns its lists and the seconds taken."""
    out = work / f"ranked-{label}.json"
    env = dict(os.environ, PYTHONPATH=str(tree))
    env.pop("GANXUN_HOME", None)
    started = time.perf_counter()
    done = subprocess.run([sys.executable, str(SUITE_SCRIPT), "rank", "--rows", str(rows), "--home", str(work / f"home-{label}"),
                           "--out", str(out), "--suite", str(SUITE_PATH)], cwd=tree, env=env, capture_output=True, text=True)
    if done.returncode != 0:
        raise SystemExit(f"{label} 排序失败（退出码 {done.returncode}）：\n{done.stderr[-4000:]}")
    return json.loads(out.read_text(encoding="utf-8")), time.perf_counter() - started


def _cell(value: float, kind: str) -> str:
    return f"{value:.0%}" if kind == "percent" else f"{value:g}"


def print_table(suite: Suite, columns: list[tuple[str, Scores]]) -> None:
    width = max(14, *(len(label) + 2 for label, _ in columns))
    print(f"{'指标':<16}" + "".join(f"{label:>{width}}" for label, _ in columns) + f"{'目标':>10}")
    checks = [target_checks(suite, scores) for _, scores in columns]
    for key, name, kind in ROWS:
        target = checks[0][key][1] if key in checks[0] else ""
        cells = []
        for (_, scores), check in zip(columns, checks):
            mark = "" if key not in check else (" ✓" if check[key][2] else " ✗")
            cells.append(f"{_cell(getattr(scores, key), kind) + mark:>{width}}")
        print(f"{name:<16}" + "".join(cells) + f"{target:>10}")
    print(f"{'首条最多的条目':<16}" + "".join(f"{s.first_item.split(':')[-1]:>{width}}" for _, s in columns))
    print(f"{'不同条目数':<16}" + "".join(f"{f'{s.distinct_items}/{s.slots}':>{width}}" for _, s in columns))


def print_detail(suite: Suite, label: str, scores: Scores) -> None:
    print(f"\n[{label}] 前 10 未覆盖：{', '.join(scores.missed_at_10) or '无'}")
    print(f"[{label}] 前 3 未覆盖：{', '.join(scores.missed_at_3) or '无'}")
    print(f"[{label}] 意向未命中：{', '.join(scores.intent_misses) or '无'}")
    shown = ", ".join(f"{where}:{item.split(':')[-1]}" for where, item in scores.violations[:12])
    print(f"[{label}] 受众不符（前 12 条）：{shown or '无'}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--old", default="c4164e4", help="对照的旧提交（默认 c4164e4）")
    parser.add_argument("--also", nargs="*", default=[], help="再加几列其他提交（如 HEAD）")
    parser.add_argument("--work", type=Path, default=None, help="工作目录（默认临时目录，结束后删除）")
    parser.add_argument("--detail", action="store_true", help="列出未覆盖的情景、未命中的意向与受众不符的条目")
    args = parser.parse_args()

    suite = load_suite()
    catalogue = read_catalogue(ROOT / "corpora" / "sample")
    ontology = load_ontology()
    _, edges = ontology.concept_graph()
    broader = ontology.relationship_types["broader"]
    oracle = Oracle(catalogue, [(e.src, e.dst) for e in edges if e.type == broader])

    work = args.work or Path(tempfile.mkdtemp(prefix="ganxun-personalisation-"))
    try:
        rows = work / "rows"
        write_rows(suite, catalogue, rows)
        current = f"当前 {_git('describe', '--always', '--dirty')}"
        runs = [(current, ROOT)] + [(rev, _extract(rev, work / f"tree-{rev}")) for rev in [args.old, *args.also]]
        columns: list[tuple[str, Scores]] = []
        for label, tree in runs:
            ranked, seconds = _rank(tree, rows, work, label.split()[-1])
            print(f"{label}: {len(suite.scenarios)} 个情景 + {len(suite.intents)} 条意向，用时 {seconds:.0f} 秒（含建库与编码）",
                  file=sys.stderr)
            columns.append((label, score(suite, ranked, oracle)))
        columns.append(("常量热门前10", score(suite, constant_lists(suite, catalogue), oracle)))
    finally:
        if args.work is None:
            shutil.rmtree(work, ignore_errors=True)

    controls = sum(s.kind == "control" for s in suite.scenarios)
    print(f"情景 {len(suite.scenarios)} 个（对照 {controls} 个）、意向 {len(suite.intents)} 条、k = {suite.k}、统计日期 {suite.today}")
    print_table(suite, columns)
    print("HR / NDCG（按样例生成器隐藏兴趣的时间切分离线评估）见 `python -m recommender evaluate`，此处不重算。")
    if args.detail:
        for label, scores in columns:
            print_detail(suite, label, scores)


if __name__ == "__main__":
    main()
