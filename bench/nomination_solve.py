"""Benchmark: nomination optimiser solve time at 1k, 10k and 100k candidates (target ≤ 5 s at 100k).

The catalogue is the scale corpus (``corpora.scale``: synthetic courses on the plan's topics, the sample's
institutions) plus the sample's textbooks, read and validated like any import and turned into the
catalogue snapshot.  Candidates are scored once; then, per size and quota reading, the optimiser runs
after a warm-up ``--repeat`` times and the median is reported — for the thinned model (what
``optimise_nominations`` does) and for the full model over every eligible candidate, which serves as the
exact reference: both objectives must agree.  "Solve" is building the HiGHS model and solving it; "call"
is the whole ``optimise_nominations`` call on scored candidates (eligibility, thinning, model, solve and
the rule audit).  Run it on an otherwise idle machine; the figures vary with the CPU.

    python bench/nomination_solve.py                 # 100,000 courses, corpus cached under $GANXUN_HOME/bench
    python bench/nomination_solve.py --courses 20000 --repeat 3
"""

from __future__ import annotations

import random
import statistics
import sys
import time
from pathlib import Path

import click

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from corpora.scale import write_scale_corpus  # noqa: E402
from kg.build import load_files  # noqa: E402
from kg.config import REPO_ROOT, Settings  # noqa: E402
from kg.ontology import load_ontology  # noqa: E402
from recommender.analytics.nominations import NominationConfig, optimise_nominations, quota_modes  # noqa: E402
from recommender.analytics.scoring import Candidate, score_candidates  # noqa: E402
from recommender.catalogue.snapshot import CatalogueSnapshot  # noqa: E402

SAMPLE = REPO_ROOT / "corpora" / "sample"


def build_catalogue(courses: int, workdir: Path, seed: int) -> tuple[CatalogueSnapshot, float]:
    ontology = load_ontology()
    corpus = workdir / f"scale-{courses}-{seed}"
    if not (corpus / "courses.jsonl").exists():
        write_scale_corpus(ontology, SAMPLE, corpus, courses, 0, 0, seed)
    started = time.perf_counter()
    concept_nodes, concept_edges = ontology.concept_graph()
    files = [corpus / "institutions.jsonl", corpus / "courses.jsonl", *sorted(SAMPLE.glob("*-textbooks.jsonl"))]
    result = load_files(files, ontology, {n.id: n.label for n in concept_nodes}.get)
    if not result.ok:
        raise SystemExit(f"语料校验失败：{result.issues[:3]}")
    catalogue = CatalogueSnapshot.from_graph(concept_nodes + result.nodes, concept_edges + result.edges, ontology)
    return catalogue, time.perf_counter() - started


def median_run(catalogue: CatalogueSnapshot, config: NominationConfig, candidates: list[Candidate], thin: bool,
               repeat: int, time_limit: float, warm_up: bool = True) -> tuple[float, float, float, int, bool]:
    """(median model-and-solve seconds, median whole-call seconds, objective, variables, proven optimal)."""
    if warm_up:
        optimise_nominations(catalogue, config, candidates=candidates, thin=thin, time_limit=time_limit)
    solves, calls, last = [], [], None
    for _ in range(repeat):
        started = time.perf_counter()
        last = optimise_nominations(catalogue, config, candidates=candidates, thin=thin, time_limit=time_limit)
        calls.append(time.perf_counter() - started)
        solves.append(last.solve_seconds)
        if not last.feasible:
            raise SystemExit("\n".join(last.reasons))
    return statistics.median(solves), statistics.median(calls), last.total_score, last.variables, last.proven_optimal


@click.command()
@click.option("--courses", default=100_000, show_default=True, help="合成课程数（另加样例教材）")
@click.option("--repeat", default=5, show_default=True, help="每种情形重复次数（取中位数）")
@click.option("--full-repeat", default=1, show_default=True, help="全量模型（精确参照）的重复次数")
@click.option("--full-limit", default=300.0, show_default=True, help="全量模型的求解时限（秒）")
@click.option("--seed", default=7, show_default=True)
@click.option("--workdir", type=click.Path(path_type=Path), default=None, help="语料缓存目录（默认 $GANXUN_HOME/bench）")
def main(courses: int, repeat: int, full_repeat: int, full_limit: float, seed: int, workdir: Path | None) -> None:
    workdir = workdir or Settings.from_env().home / "bench"
    catalogue, load_seconds = build_catalogue(courses, workdir, seed)
    print(f"目录：{len(catalogue.courses):,} 门课程、{len(catalogue.textbooks):,} 种教材、{len(catalogue.institutions)} 个机构"
          f"（读取与校验 {load_seconds:.1f} 秒）")
    scoring = []
    for _ in range(3):
        started = time.perf_counter()
        scored = score_candidates(catalogue, as_of=catalogue_day(catalogue))
        scoring.append(time.perf_counter() - started)
    print(f"评分：{len(scored):,} 个候选，中位 {statistics.median(scoring):.2f} 秒（3 次）")
    textbooks = [c for c in scored if c.kind == "textbook"]
    courses_only = [c for c in scored if c.kind == "course"]
    rng = random.Random(seed)
    sizes = sorted({n for n in (1_000, 10_000, len(scored)) if n <= len(scored)})
    header = (f"{'候选数':>9} {'口径':<9} {'变量(精简)':>10} {'求解中位(秒)':>12} {'调用中位(秒)':>12} "
              f"{'变量(全量)':>10} {'全量求解(秒)':>12} {'全量/精简':>9} {'目标一致':>8}")
    print(header)
    for size in sizes:
        subset = textbooks + (courses_only if size >= len(scored) else rng.sample(courses_only, size - len(textbooks)))
        for mode in quota_modes():
            config = NominationConfig.from_rules(quota_mode=mode)
            thin = median_run(catalogue, config, subset, True, repeat, 60.0)
            full = median_run(catalogue, config, subset, False, full_repeat, full_limit, warm_up=False)
            same = "是" if abs(thin[2] - full[2]) <= 1e-6 * max(1.0, abs(full[2])) else "否"
            if not (thin[4] and full[4]):
                same += "（未证明最优）"
            print(f"{len(subset):>9,} {mode:<9} {thin[3]:>10,} {thin[0]:>12.3f} {thin[1]:>12.3f} "
                  f"{full[3]:>10,} {full[0]:>12.3f} {full[0] / thin[0]:>9.1f} {same:>8}")


def catalogue_day(catalogue: CatalogueSnapshot):
    """A fixed scoring day (the latest revision in the catalogue) so runs are comparable."""
    return max(c.date_modified for c in catalogue.courses.values() if c.date_modified)


if __name__ == "__main__":
    main()
