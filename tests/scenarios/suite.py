"""The role-scenario suite of ``roles.yaml``: cadres imported through ``kg``, ranked, and scored against the plan.

Why a suite of its own: the offline evaluation scores the ranker against the sample generator's hidden
interests, which cannot tell whether a financial regulator is offered finance.  Here each scenario states,
from the plan and ``ontology/requirements.yaml``, the topics a curriculum designer would expect first; the
figures (:func:`score`) are computed from the catalogue's own data (a course's ``covers`` and declared
audience in ``corpora/sample``, the topic hierarchy of ``ontology/topics.ttl``), never from the ranker's
internals, so they can fail.

Two halves, kept apart on purpose:

* :func:`import_rows` turns scenarios into ``Cadre`` and ``TrainingRecord`` rows (JSON Lines, the project's
  import format), and :func:`rank_suite` builds a temporary embedded store from the sample catalogue plus
  those rows with ``kg.build``, builds the search index with ``python -m recommender index`` and asks
  ``recommender.service.Recommender`` for every scenario and intent.  :func:`rank_suite` touches only
  interfaces present in older checkouts too, so ``bench/personalisation.py`` runs this file as a script
  inside an older commit's tree on the very same rows::

      python tests/scenarios/suite.py rank --rows DIR --home DIR --out ranked.json

* :class:`Oracle` and :func:`score` judge ranked lists (from any ranker, or a constant list).
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import os
import subprocess
import sys
from collections import Counter
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

__all__ = [
    "SUITE_PATH",
    "Intent",
    "Oracle",
    "Scenario",
    "Scores",
    "Suite",
    "constant_lists",
    "import_rows",
    "load_suite",
    "rank_suite",
    "score",
    "target_checks",
    "write_rows",
]

SUITE_PATH = Path(__file__).with_name("roles.yaml")
#: Files :func:`write_rows` writes and :func:`rank_suite` imports, in this order (records refer to cadres).
ROW_FILES = ("cadres.jsonl", "records.jsonl")
#: A completed online course is logged with this many minutes per 学时 (the usual 45-minute class period).
MINUTES_PER_HOUR = 45


@dataclass(frozen=True)
class Scenario:
    """One fictional cadre and what a designer expects first for them."""

    id: str
    kind: str  # job | control
    description: str
    organisation: str
    category: str
    groups: tuple[str, ...]
    domain: str | None
    born: int
    history: tuple[Mapping[str, Any], ...]
    expect: tuple[str, ...]
    section: str
    basis: str

    @property
    def cadre_id(self) -> str:
        return f"cadre:scn-{self.id}"


@dataclass(frozen=True)
class Intent:
    """A free-text wish of one scenario's cadre, and the topics an item must cover to match it."""

    id: str
    cadre: str  # scenario id
    text: str
    topics: tuple[str, ...]


@dataclass(frozen=True)
class Suite:
    today: dt.date
    region: str
    k: int
    targets: Mapping[str, float]
    scenarios: tuple[Scenario, ...]
    intents: tuple[Intent, ...]

    def scenario(self, scenario_id: str) -> Scenario:
        return next(s for s in self.scenarios if s.id == scenario_id)


def load_suite(path: Path = SUITE_PATH) -> Suite:
    """Read ``roles.yaml``; a scenario's ``history`` may name a template of ``histories``."""
    data = yaml.safe_load(path.read_text(encoding="utf-8"))
    templates = data.get("histories") or {}
    scenarios = []
    for entry in data["scenarios"]:
        history = entry.get("history") or []
        if isinstance(history, str):
            if history not in templates:
                raise KeyError(f"情景 {entry['id']} 的 history『{history}』不在 histories 中")
            history = templates[history] or []
        scenarios.append(Scenario(
            id=entry["id"], kind=entry.get("kind", "job"), description=entry["description"],
            organisation=entry["organisation"], category=entry["category"], groups=tuple(entry.get("groups") or ()),
            domain=entry.get("domain"), born=int(entry.get("born", 1976)), history=tuple(history),
            expect=tuple(entry["expect"]), section=str(entry["section"]), basis=entry["basis"],
        ))
    intents = tuple(Intent(i["id"], i["cadre"], i["text"], tuple(i["topics"])) for i in data["intents"])
    return Suite(today=data["today"], region=data["region"], k=int(data["k"]), targets=data["targets"],
                 scenarios=tuple(scenarios), intents=intents)


# ── rows for kg import ──

def read_catalogue(corpus_dir: Path) -> dict[str, dict[str, Any]]:
    """Every row of the catalogue's JSON Lines files, by id."""
    rows: dict[str, dict[str, Any]] = {}
    for path in sorted(corpus_dir.glob("*.jsonl")):
        with path.open(encoding="utf-8") as handle:
            for line in handle:
                if line.strip():
                    row = json.loads(line)
                    rows[row["id"]] = row
    return rows


def _record_row(spec: Mapping[str, Any], courses: Mapping[str, Mapping[str, Any]]) -> dict[str, Any]:
    """A scenario's history entry as a TrainingRecord row (see the header of ``roles.yaml``)."""
    spec = dict(spec)
    date = spec.pop("date")
    row: dict[str, Any] = {"date": date.isoformat() if isinstance(date, dt.date) else str(date), "completed": True}
    course_id = spec.pop("course", None)
    if course_id is not None:
        course = courses[course_id]
        row["forCourse"] = course_id
        if course["deliveryMode"] == "网络":
            row |= {"mode": "网络自学", "viaPlatform": course["onPlatform"], "testPassed": True,
                    "minutes": round(course["hours"] * MINUTES_PER_HOUR)}
        else:
            row |= {"mode": "集中培训", "situation": "脱产培训", "hours": course["hours"]}
    platform = spec.pop("platform", None)
    if platform is not None:
        row["viaPlatform"] = platform
    return row | spec


def import_rows(suite: Suite, courses: Mapping[str, Mapping[str, Any]]) -> tuple[list[dict[str, Any]], list[dict[str, Any]]]:
    """Cadre rows and TrainingRecord rows for every scenario, in the project's import format."""
    cadres, records = [], []
    for scenario in suite.scenarios:
        cadre = {"type": "Cadre", "id": scenario.cadre_id, "name": f"情景干部·{scenario.id}", "isSample": True,
                 "category": scenario.category, "inGroup": list(scenario.groups), "organisation": scenario.organisation,
                 "region": suite.region, "birthYear": scenario.born}
        if scenario.domain:
            cadre["positionDomain"] = scenario.domain
        cadres.append(cadre)
        for number, spec in enumerate(scenario.history, start=1):
            records.append({"type": "TrainingRecord", "id": f"record:scn-{scenario.id}-{number:03d}",
                            "ofCadre": scenario.cadre_id, **_record_row(spec, courses)})
    return cadres, records


def write_rows(suite: Suite, courses: Mapping[str, Mapping[str, Any]], directory: Path) -> list[Path]:
    """Write :func:`import_rows` as the JSON Lines files of :data:`ROW_FILES`."""
    directory.mkdir(parents=True, exist_ok=True)
    paths = []
    for name, rows in zip(ROW_FILES, import_rows(suite, courses)):
        path = directory / name
        path.write_text("".join(json.dumps(r, ensure_ascii=False) + "\n" for r in rows), encoding="utf-8")
        paths.append(path)
    return paths


# ── ranking (with whatever kg / recommender are importable) ──

def rank_suite(suite: Suite, rows_dir: Path, home: Path) -> dict[str, dict[str, list[str]]]:
    """Build a store under ``home`` from the sample catalogue and the rows in ``rows_dir`` (``kg.build``), build
    the search index as an administrator would (``python -m recommender index``), then rank the top ``k``
    items of every scenario (no intent) and every intent.  Returns item ids by id.

    ``GANXUN_HOME`` points at ``home`` while ranking, because the recommender opens the persisted index from
    the configured home; the previous value is restored afterwards."""
    from kg.build import build_graph, import_files
    from kg.config import REPO_ROOT, Settings
    from kg.ontology import load_ontology
    from kg.store import open_store
    from recommender.service import Recommender

    home.mkdir(parents=True, exist_ok=True)
    env = {"GANXUN_HOME": str(home), "GANXUN_STORE": "embedded"}
    settings = Settings.from_env(env)
    ontology = load_ontology()
    with open_store("embedded", settings, ontology) as store:
        build_graph(store, [REPO_ROOT / "corpora" / "sample"], ontology)
        import_files(store, [rows_dir / name for name in ROW_FILES], ontology)
    indexed = subprocess.run([sys.executable, "-m", "recommender", "index"], cwd=REPO_ROOT, capture_output=True, text=True,
                             env={k: v for k, v in os.environ.items() if not k.startswith("GANXUN_")} | env)
    if indexed.returncode != 0:
        raise RuntimeError(f"python -m recommender index 失败（退出码 {indexed.returncode}）：{indexed.stderr[-2000:]}")
    ranked: dict[str, dict[str, list[str]]] = {"scenarios": {}, "intents": {}}
    previous = {key: os.environ.get(key) for key in env}
    os.environ.update(env)
    try:
        with open_store("embedded", settings, ontology) as store:
            recommender = Recommender.open(settings, store=store)
            for scenario in suite.scenarios:
                answer = recommender.recommend(scenario.cadre_id, k=suite.k, today=suite.today)
                ranked["scenarios"][scenario.id] = [item.item_id for item in answer.items]
            for intent in suite.intents:
                answer = recommender.recommend(suite.scenario(intent.cadre).cadre_id, k=suite.k, intent=intent.text,
                                               today=suite.today)
                ranked["intents"][intent.id] = [item.item_id for item in answer.items]
    finally:
        for key, value in previous.items():
            if value is None:
                os.environ.pop(key, None)
            else:
                os.environ[key] = value
    return ranked


def constant_lists(suite: Suite, courses: Mapping[str, Mapping[str, Any]]) -> dict[str, dict[str, list[str]]]:
    """The same answer for everyone: the ``k`` published courses with the most enrolments (ties by id)."""
    published = [c for c in courses.values() if c.get("type") == "Course" and c.get("status") == "已发布"]
    top = [c["id"] for c in sorted(published, key=lambda c: (-(c.get("enrolments") or 0), c["id"]))[: suite.k]]
    return {"scenarios": {s.id: list(top) for s in suite.scenarios}, "intents": {i.id: list(top) for i in suite.intents}}


# ── judging ──

class Oracle:
    """What the catalogue itself says about an item: the topics it covers and the audience it declares."""

    def __init__(self, catalogue: Mapping[str, Mapping[str, Any]], broader: Iterable[tuple[str, str]]) -> None:
        self.catalogue = catalogue
        children: dict[str, set[str]] = {}
        for child, parent in broader:
            children.setdefault(parent, set()).add(child)
        self._children = children

    def narrower_or_self(self, topics: Iterable[str]) -> set[str]:
        """The topics and every topic below them."""
        seen: set[str] = set()
        stack = list(topics)
        while stack:
            topic = stack.pop()
            if topic not in seen:
                seen.add(topic)
                stack.extend(self._children.get(topic, ()))
        return seen

    def topics_of(self, item_id: str) -> set[str]:
        row = self.catalogue.get(item_id, {})
        return set(row.get("covers", ())) | set(row.get("illustrates", ()))

    def covers(self, item_id: str, topics: Iterable[str]) -> bool:
        """Whether the item covers one of ``topics`` or a narrower topic of one."""
        return bool(self.topics_of(item_id) & self.narrower_or_self(topics))

    def excludes(self, item_id: str, category: str, groups: Iterable[str]) -> bool:
        """Whether the item declares an audience (categories and groups) that names neither the cadre's
        category nor any of their groups."""
        row = self.catalogue.get(item_id, {})
        declared = set(row.get("audienceCategory", ())) | set(row.get("audienceGroup", ()))
        return bool(declared) and not declared & ({category} | set(groups))

    def admissible(self, category: str, groups: Iterable[str]) -> list[str]:
        """Published courses whose audience admits the cadre."""
        groups = tuple(groups)
        return [i for i, r in self.catalogue.items() if r.get("type") == "Course" and r.get("status") == "已发布"
                and not self.excludes(i, category, groups)]


@dataclass
class Scores:
    """The suite's figures for one set of ranked lists (shares in [0, 1])."""

    n_scenarios: int
    coverage_at_10: float
    coverage_at_3: float
    job_coverage_at_10: float
    job_coverage_at_3: float
    control_coverage_at_10: float
    max_first_share: float
    first_item: str
    distinct_share: float
    distinct_items: int
    slots: int
    audience_violations: int
    intent_hit_at_3: float
    missed_at_10: list[str] = field(default_factory=list)
    missed_at_3: list[str] = field(default_factory=list)
    violations: list[tuple[str, str]] = field(default_factory=list)  # (list id, item id)
    intent_misses: list[str] = field(default_factory=list)


def _share(hits: Sequence[bool]) -> float:
    return sum(hits) / len(hits) if hits else 0.0


def score(suite: Suite, ranked: Mapping[str, Mapping[str, Sequence[str]]], oracle: Oracle) -> Scores:
    """Judge ranked lists (``{"scenarios": {id: items}, "intents": {id: items}}``) against the suite.

    Coverage@n: share of scenarios with an item in the first n covering an expected topic (or a narrower
    one).  First-item share: the largest share of scenarios given one same first item.  Distinct share:
    distinct items over ``k`` slots per scenario.  Audience violations: items, in scenario and intent lists,
    whose declared audience excludes the cadre.  Intent hit: share of intents with an item in the first 3
    covering one of the intent's topics.
    """
    k = suite.k
    lists = {s.id: list(ranked["scenarios"].get(s.id, []))[:k] for s in suite.scenarios}
    hit10 = {s.id: any(oracle.covers(i, s.expect) for i in lists[s.id]) for s in suite.scenarios}
    hit3 = {s.id: any(oracle.covers(i, s.expect) for i in lists[s.id][:3]) for s in suite.scenarios}
    jobs = [s.id for s in suite.scenarios if s.kind == "job"]
    controls = [s.id for s in suite.scenarios if s.kind == "control"]
    firsts = Counter(items[0] for items in lists.values() if items)
    first_item, first_count = firsts.most_common(1)[0] if firsts else ("", 0)
    distinct = {i for items in lists.values() for i in items}
    slots = k * len(suite.scenarios)
    violations = [(s.id, i) for s in suite.scenarios for i in lists[s.id] if oracle.excludes(i, s.category, s.groups)]
    intent_hits = {}
    for intent in suite.intents:
        cadre = suite.scenario(intent.cadre)
        items = list(ranked["intents"].get(intent.id, []))[:k]
        violations += [(intent.id, i) for i in items if oracle.excludes(i, cadre.category, cadre.groups)]
        intent_hits[intent.id] = any(oracle.covers(i, intent.topics) for i in items[:3])
    return Scores(
        n_scenarios=len(suite.scenarios),
        coverage_at_10=_share(list(hit10.values())),
        coverage_at_3=_share(list(hit3.values())),
        job_coverage_at_10=_share([hit10[s] for s in jobs]),
        job_coverage_at_3=_share([hit3[s] for s in jobs]),
        control_coverage_at_10=_share([hit10[s] for s in controls]),
        max_first_share=first_count / len(suite.scenarios),
        first_item=first_item,
        distinct_share=len(distinct) / slots,
        distinct_items=len(distinct),
        slots=slots,
        audience_violations=len(violations),
        intent_hit_at_3=_share(list(intent_hits.values())),
        missed_at_10=[s for s, hit in hit10.items() if not hit],
        missed_at_3=[s for s, hit in hit3.items() if not hit],
        violations=violations,
        intent_misses=[i for i, hit in intent_hits.items() if not hit],
    )


def target_checks(suite: Suite, scores: Scores) -> dict[str, tuple[float, str, bool]]:
    """Each target of ``roles.yaml``: (measured value, the target in words, met or not)."""
    t = suite.targets
    return {
        "coverage_at_10": (scores.coverage_at_10, f"≥ {t['coverage_at_10']:.0%}", scores.coverage_at_10 >= t["coverage_at_10"]),
        "coverage_at_3": (scores.coverage_at_3, f"≥ {t['coverage_at_3']:.0%}", scores.coverage_at_3 >= t["coverage_at_3"]),
        "max_first_share": (scores.max_first_share, f"≤ {t['max_first_share']:.0%}", scores.max_first_share <= t["max_first_share"]),
        "distinct_share": (scores.distinct_share, f"≥ {t['min_distinct_share']:.0%}", scores.distinct_share >= t["min_distinct_share"]),
        "audience_violations": (scores.audience_violations, f"≤ {t['max_audience_violations']}",
                                scores.audience_violations <= t["max_audience_violations"]),
        "intent_hit_at_3": (scores.intent_hit_at_3, f"≥ {t['intent_hit_at_3']:.0%}", scores.intent_hit_at_3 >= t["intent_hit_at_3"]),
    }


def main(argv: Sequence[str] | None = None) -> None:
    """``rank --rows DIR --home DIR --out FILE [--suite FILE]``: rank the suite with the importable code."""
    parser = argparse.ArgumentParser(description="情景评测：用当前可导入的 kg / recommender 为每个情景排序")
    sub = parser.add_subparsers(dest="command", required=True)
    rank = sub.add_parser("rank")
    rank.add_argument("--rows", type=Path, required=True, help="write_rows 写出的导入文件所在目录")
    rank.add_argument("--home", type=Path, required=True, help="临时 GANXUN_HOME（图库与向量缓存）")
    rank.add_argument("--out", type=Path, required=True, help="排序结果 JSON")
    rank.add_argument("--suite", type=Path, default=SUITE_PATH)
    args = parser.parse_args(argv)
    suite = load_suite(args.suite)
    args.out.write_text(json.dumps(rank_suite(suite, args.rows, args.home), ensure_ascii=False), encoding="utf-8")


if __name__ == "__main__":
    sys.exit(main())
