"""好课程 / 好教材 nomination lists: configuration, the exact optimiser and the rule audit.

A year's lists maximise the total score (:mod:`recommender.analytics.scoring`) over eligible candidates —
published, through every gate, not nominated in an earlier year — subject to:

* exactly the configured number of courses and of textbooks;
* case items ≥ the configured share, either on each list or over both lists together (``quota_mode``,
  stated in every output);
* at least ``min_per_branch`` courses on each top-level branch of the plan's topic scheme (a course counts
  for every branch its topics lie in);
* at most ``max_per_institution`` items (courses and textbooks together) from one institution.

The defaults are ``rules.yaml``'s ``nomination`` block.  Before solving, candidates are thinned without
loss: items alike in every constraint (same list, case flag, branches and institution) are interchangeable
except for their score, so only the best ``min(list size, institution cap)`` of each such group can appear
in an optimal list.  This keeps the model at a few thousand columns at 100,000 candidates.
"""

from __future__ import annotations

import datetime as dt
import math
from collections import Counter
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np
from scipy import sparse

from kg.ontology import Ontology, load_ontology

from recommender.analytics.errors import InputError, RuleError
from recommender.analytics.exports import ID_HEADERS, Table
from recommender.analytics.scoring import (
    KIND_CLASS, Candidate, check_weights, component_labels, min_coverage, score_candidates, scoring_rules,
)
from recommender.analytics.solver import Family, explain_infeasible, explanation, solve, whole
from recommender.catalogue.snapshot import CatalogueSnapshot
from recommender.catalogue.vocabulary import Vocabulary

__all__ = [
    "NominationConfig",
    "NominationModel",
    "NominationResult",
    "RuleCheck",
    "audit_selection",
    "availability",
    "candidate_table",
    "optimise_nominations",
    "quota_modes",
    "thin_pool",
]

def quota_modes(ontology: Ontology | None = None) -> Mapping[str, str]:
    """The readings of the case quota ``nomination.quota_mode`` may name, each with the sentence every report
    states (``rules.yaml`` ``vocabulary.quota_modes``): ``per_list`` — each list on its own, ``combined`` — both
    lists together."""
    return Vocabulary.from_ontology(ontology or load_ontology()).quota_modes


@dataclass(frozen=True)
class NominationConfig:
    """The rules one year's lists obey.  Build it with :meth:`from_rules` and override what a user sets."""

    year: int
    courses: int
    textbooks: int
    case_share_min: float
    quota_mode: str
    max_per_institution: int | None
    min_per_branch: int
    gates: tuple[str, ...]
    weights: Mapping[str, float]
    previous: frozenset[str] = frozenset()
    courses_total: int | None = None
    textbooks_total: int | None = None
    years: int | None = None
    section: str = ""
    min_coverage: float = 0.0

    @classmethod
    def from_rules(cls, rules: Mapping[str, Any] | None = None, **overrides: Any) -> "NominationConfig":
        """The ``nomination`` block of rules.yaml, with keyword overrides (``courses=80``, ``quota_mode=…``)."""
        rules = load_ontology().rules if rules is None else rules
        block = rules.get("nomination")
        if not isinstance(block, Mapping):
            raise RuleError("rules.yaml 缺少 nomination 配置")
        per_year = block.get("per_year") or {}
        try:
            values = dict(
                year=dt.date.today().year, courses=int(per_year["courses"]), textbooks=int(per_year["textbooks"]),
                case_share_min=float(block["case_share_min"]), quota_mode=str(block["quota_mode"]),
                max_per_institution=None if block.get("max_per_institution") is None else int(block["max_per_institution"]),
                min_per_branch=int(block.get("min_per_branch") or 0), gates=tuple(block.get("gates") or ()),
                weights=dict(block.get("weights") or {}), courses_total=block.get("courses_total"),
                textbooks_total=block.get("textbooks_total"), years=block.get("years"), section=str(block.get("section", "")),
                min_coverage=min_coverage(rules),
            )
        except (KeyError, TypeError, ValueError) as exc:
            raise RuleError(f"rules.yaml 的 nomination 配置不完整或类型不对：{exc}") from exc
        values.update(overrides)
        values["previous"] = frozenset(values.get("previous") or ())
        values["gates"] = tuple(values["gates"])
        config = cls(**values)
        config.validate()
        return config

    def validate(self) -> None:
        modes = quota_modes()
        if self.quota_mode not in modes:
            raise InputError(f"案例占比口径 quota_mode 应为 {'、'.join(modes)} 之一，实际为『{self.quota_mode}』")
        for name, value in (("courses", self.courses), ("textbooks", self.textbooks), ("min_per_branch", self.min_per_branch)):
            if value < 0:
                raise InputError(f"{name} 应为非负整数，实际为 {value}")
        if not 0 <= self.case_share_min <= 1:
            raise InputError(f"案例占比下限 case_share_min 应在 0–1 之间，实际为 {self.case_share_min}")
        if self.max_per_institution is not None and self.max_per_institution < 1:
            raise InputError(f"每个机构上限 max_per_institution 应为正整数，实际为 {self.max_per_institution}")
        check_weights(self.weights)

    @property
    def quota_text(self) -> str:
        """The sentence that states which reading of the case quota this configuration uses."""
        return quota_modes()[self.quota_mode]

    def case_minimums(self) -> dict[str, int]:
        """Minimum case items: per list (``course``/``textbook``) or over both (``all``)."""
        def need(n: int) -> int:
            return math.ceil(self.case_share_min * n - 1e-6)

        if self.quota_mode == "per_list":
            return {"course": need(self.courses), "textbook": need(self.textbooks)}
        return {"all": need(self.courses + self.textbooks)}

    def rules_used(self, ontology: Ontology | None = None) -> list[tuple[str, str]]:
        labels = component_labels(ontology)
        total = sum(self.weights.values())  # weights are relative: each is shown as its share of the score
        ontology = ontology or load_ontology()
        plan = (f"规划{self.section}：{self.years} 年内约 {self.courses_total} 门好课程、{self.textbooks_total} 种好教材"
                if self.years else "")
        return [
            ("年度", str(self.year)),
            ("名额", f"好课程 {self.courses} 门、好教材 {self.textbooks} 种" + (f"（{plan}）" if plan else "")),
            ("案例占比", f"不低于 {100 * self.case_share_min:.1f} %；口径：{self.quota_text}"),
            ("一级主题覆盖", f"每个一级主题分支至少 {self.min_per_branch} 门课程"),
            ("机构上限", "不限" if self.max_per_institution is None else f"每个机构至多 {self.max_per_institution} 项（课程与教材合计）"),
            ("推荐门槛", "、".join(ontology.property_labels.get(g, g) for g in self.gates) or "无"),
            ("往年已入选", f"{len(self.previous)} 项，不再入选"),
            ("推荐指标权重（占总分）", "；".join(f"{labels.get(k, k)} {100 * v / total:.1f} %" for k, v in self.weights.items())),
            *scoring_rules(self.weights, self.min_coverage, ontology),
        ]


@dataclass(frozen=True)
class RuleCheck:
    """One rule checked against a list."""

    rule: str
    requirement: str
    actual: str
    passed: bool

    def to_dict(self) -> dict[str, Any]:
        return {"规则": self.rule, "要求": self.requirement, "实际": self.actual, "是否满足": self.passed}


def _kind_label(kind: str, ontology: Ontology) -> str:
    return ontology.classes[KIND_CLASS[kind]].label


def audit_selection(catalogue: CatalogueSnapshot, config: NominationConfig, items: Sequence[Candidate],
                    ontology: Ontology | None = None) -> list[RuleCheck]:
    """Every nomination rule checked against a selection (used to prove an optimised list, and by the
    check mode to audit a hand-made one)."""
    ontology = ontology or catalogue.ontology
    courses = [c for c in items if c.kind == "course"]
    textbooks = [c for c in items if c.kind == "textbook"]
    checks = [
        RuleCheck(f"好{_kind_label('course', ontology)}数量", f"{config.courses} 门", f"{len(courses)} 门", len(courses) == config.courses),
        RuleCheck(f"好{_kind_label('textbook', ontology)}数量", f"{config.textbooks} 种", f"{len(textbooks)} 种",
                  len(textbooks) == config.textbooks),
    ]
    groups = {"course": courses, "textbook": textbooks, "all": list(items)}
    names = {"course": "好课程名单", "textbook": "好教材名单", "all": "两张名单合计"}
    for key, need in config.case_minimums().items():
        have = sum(c.is_case for c in groups[key])
        share = f"{100 * have / len(groups[key]):.1f} %" if groups[key] else "—"
        checks.append(RuleCheck(f"案例占比（{names[key]}）", f"至少 {need} 项（{config.quota_text}）",
                                f"{have} 项，占 {share}", have >= need))
    for branch in catalogue.tree.branches:
        have = sum(branch in c.branches for c in courses)
        checks.append(RuleCheck(f"一级主题覆盖：{catalogue.topic_name(branch)}", f"至少 {config.min_per_branch} 门课程",
                                f"{have} 门", have >= config.min_per_branch))
    if config.max_per_institution is not None:
        per = Counter(c.institution for c in items if c.institution)
        over = {i: n for i, n in per.items() if n > config.max_per_institution}
        actual = ("；".join(f"{catalogue.institution_name(i)} {n} 项" for i, n in sorted(over.items())) if over
                  else f"最多 {max(per.values(), default=0)} 项")
        checks.append(RuleCheck("机构上限", f"每个机构至多 {config.max_per_institution} 项", actual, not over))
    gate_failed = [c for c in items if c.gate_failures]
    checks.append(RuleCheck("推荐门槛", "全部通过：" + "、".join(ontology.property_labels.get(g, g) for g in config.gates),
                            "；".join(f"{c.id} 未{'、'.join(c.gate_failures)}" for c in gate_failed) or "全部通过",
                            not gate_failed))
    unpublished = [c.id for c in items if not c.published]
    checks.append(RuleCheck("发布状态", "均为已发布", "、".join(unpublished) or "均已发布", not unpublished))
    repeated = [c.id for c in items if c.id in config.previous]
    checks.append(RuleCheck("往年已入选", "不含往年已入选项目", "、".join(repeated) or "无", not repeated))
    return checks


class NominationModel:
    """The 0–1 model over a pool of candidates: one column per candidate, one family per rule."""

    def __init__(self, catalogue: CatalogueSnapshot, config: NominationConfig, pool: Sequence[Candidate],
                 available: Mapping[str, Any], ontology: Ontology) -> None:
        self.catalogue, self.config, self.pool, self.ontology = catalogue, config, list(pool), ontology
        self.available = available
        self.families = self._families()

    def _incidence(self, groups: Sequence[str], members: Callable[[Candidate], Iterable[str]]) -> sparse.csr_matrix:
        """One row per group, a 1 where a candidate belongs to it (built in one pass over the pool)."""
        index = {g: r for r, g in enumerate(groups)}
        rows, cols = [], []
        for col, candidate in enumerate(self.pool):
            for group in members(candidate):
                if group in index:
                    rows.append(index[group])
                    cols.append(col)
        return sparse.csr_matrix((np.ones(len(rows)), (rows, cols)), shape=(len(groups), len(self.pool)))

    def _families(self) -> list[Family]:
        config, pool, avail = self.config, self.pool, self.available
        kinds = self._incidence(list(KIND_CLASS), lambda c: (c.kind,))
        families = []
        for kind, need in (("course", config.courses), ("textbook", config.textbooks)):
            label = f"好{_kind_label(kind, self.ontology)}数量"
            unit = "门" if kind == "course" else "种"

            def count_text(row: int, got: float, gap: float, x: np.ndarray, label: str = label, need: int = need,
                           unit: str = unit, kind: str = kind) -> str:
                if got > need:
                    return f"{label}超出名额：满足其他规则至少需要 {whole(got)} {unit}，名额只有 {need} {unit}（多 {whole(gap)} {unit}）"
                return (f"{label}不足：需要 {need} {unit}，最多只能选出 {whole(got)} {unit}（差 {whole(gap)} {unit}；"
                        f"通过门槛且未曾入选的候选共 {avail['count'][kind]} {unit}）")

            families.append(Family(f"count:{kind}", label, kinds[list(KIND_CLASS).index(kind)], need, need, count_text))
        minimums = config.case_minimums()
        keys = list(minimums)
        names = {"course": "案例课程", "textbook": "案例教材", "all": "案例课程与案例教材（合计）"}

        def case_text(row: int, got: float, gap: float, x: np.ndarray) -> str:
            key = keys[row]
            return (f"{names[key]}不足：需要至少 {minimums[key]} 项，最多只能选出 {whole(got)} 项（差 {whole(gap)} 项；"
                    f"通过门槛且未曾入选的{names[key]}共 {avail['case'][key]} 项；口径：{config.quota_text}）")

        case_rows = self._incidence(keys, lambda c: (c.kind, "all") if c.is_case else ())
        families.append(Family("case", "案例占比", case_rows, [minimums[k] for k in keys], np.inf, case_text))
        branches = self.catalogue.tree.branches
        if config.min_per_branch and branches:
            def branch_text(row: int, got: float, gap: float, x: np.ndarray) -> str:
                name = self.catalogue.topic_name(branches[row])
                return (f"一级主题『{name}』课程不足：需要至少 {config.min_per_branch} 门，与其他规则折中后只能选入 "
                        f"{whole(got)} 门（候选 {avail['branch'].get(branches[row], 0)} 门）")

            rows = self._incidence(branches, lambda c: c.branches if c.kind == "course" else ())
            families.append(Family("branch", "一级主题覆盖", rows, config.min_per_branch, np.inf, branch_text))
        if config.max_per_institution is not None:
            cap = config.max_per_institution
            counts = Counter(c.institution for c in pool if c.institution)
            binding = sorted(i for i, n in counts.items() if n > cap)
            if binding:
                def cap_text(row: int, got: float, gap: float, x: np.ndarray) -> str:
                    return (f"机构上限：『{self.catalogue.institution_name(binding[row])}』至多 {cap} 项，"
                            f"与其他规则折中后仍需选入 {whole(got)} 项")

                rows = self._incidence(binding, lambda c: (c.institution,))
                families.append(Family("institution", "机构上限", rows, -np.inf, cap, cap_text))
        return families

    @classmethod
    def explain(cls, catalogue: CatalogueSnapshot, config: NominationConfig, candidates: Sequence[Candidate],
                available: Mapping[str, Any], ontology: Ontology, time_limit: float) -> tuple[list[str], list[str]]:
        """(labels of the conflicting rules, Chinese reasons) for lists drawn from ``candidates``.

        Explaining needs models without some of the rules, where thinning is not exact; instead, candidates
        alike in every rule are merged into one integer column bounded by their number — exact for
        feasibility, and a few thousand columns however many candidates there are.
        """
        groups: dict[tuple, list[Candidate]] = {}
        for c in candidates:
            groups.setdefault(_signature(c), []).append(c)
        model = cls(catalogue, config, [members[0] for members in groups.values()], available, ontology)
        sizes = np.array([len(members) for members in groups.values()], dtype=float)
        conflict, shortfalls = explain_infeasible(len(model.pool), model.families, upper=sizes, time_limit=time_limit)
        return [f.label for f in conflict], explanation(conflict, shortfalls, "符合全部规则的名单")


def availability(catalogue: CatalogueSnapshot, config: NominationConfig, eligible: Sequence[Candidate]) -> dict[str, Any]:
    """Counts of eligible candidates, quoted in explanations."""
    count = Counter(c.kind for c in eligible)
    case = Counter(c.kind for c in eligible if c.is_case)
    branch = Counter(b for c in eligible if c.kind == "course" for b in c.branches)
    return {"count": {k: count.get(k, 0) for k in KIND_CLASS},
            "case": {"course": case.get("course", 0), "textbook": case.get("textbook", 0), "all": sum(case.values())},
            "branch": dict(branch)}


def _signature(c: Candidate) -> tuple:
    """What the rules see of a candidate: its list, case flag, branches and institution."""
    return (c.kind, c.is_case, c.branches, c.institution)


def thin_pool(candidates: Sequence[Candidate], config: NominationConfig, keep: Iterable[str] = ()) -> list[Candidate]:
    """Drop candidates that cannot be in any optimal list (see the module docstring); ``keep`` are never
    dropped.  Candidates come best first, so each group keeps its best."""
    kept_ids = set(keep)
    quota = {"course": config.courses, "textbook": config.textbooks}
    seen: Counter = Counter()
    out = []
    for c in candidates:
        if c.id in kept_ids:
            out.append(c)
            continue
        key = _signature(c)
        limit = quota[c.kind]
        if c.institution and config.max_per_institution is not None:
            limit = min(limit, config.max_per_institution)
        if seen[key] < limit:
            seen[key] += 1
            out.append(c)
    return out


@dataclass
class NominationResult:
    """A year's lists (or why none exists), the rule checks that prove them, and solver figures."""

    config: NominationConfig
    feasible: bool
    courses: list[Candidate] = field(default_factory=list)
    textbooks: list[Candidate] = field(default_factory=list)
    checks: list[RuleCheck] = field(default_factory=list)
    reasons: list[str] = field(default_factory=list)
    conflict: list[str] = field(default_factory=list)
    eligible: dict[str, int] = field(default_factory=dict)
    variables: int = 0
    solve_seconds: float = 0.0
    proven_optimal: bool = True
    demand_note: str = ""
    generated: dt.date = field(default_factory=dt.date.today)

    @property
    def total_score(self) -> float:
        return sum(c.score for c in self.courses + self.textbooks)

    @property
    def title(self) -> str:
        return f"{self.config.year} 年度好课程、好教材推荐名单"

    def rules_used(self) -> list[tuple[str, str]]:
        return self.config.rules_used() + [("需求数据", self.demand_note)]

    def tables(self) -> list[Table]:
        if not self.feasible:
            return [Table("无可行名单", ["原因"], [[r] for r in self.reasons])]
        return [candidate_table("好课程名单", self.courses), candidate_table("好教材名单", self.textbooks),
                Table("规则核对", ["规则", "要求", "实际", "是否满足"],
                      [[c.rule, c.requirement, c.actual, c.passed] for c in self.checks])]

    def to_dict(self) -> dict[str, Any]:
        return {"title": self.title, "年度": self.config.year, "可行": self.feasible,
                "规则": dict(self.rules_used()), "案例占比口径": self.config.quota_text,
                "好课程": [c.to_dict() for c in self.courses], "好教材": [c.to_dict() for c in self.textbooks],
                "总分": round(self.total_score, 2), "规则核对": [c.to_dict() for c in self.checks],
                "原因": self.reasons, "冲突规则": self.conflict, "可选候选数": self.eligible,
                "模型变量数": self.variables, "求解用时秒": round(self.solve_seconds, 3), "已证明最优": self.proven_optimal}


def candidate_table(title: str, items: Sequence[Candidate]) -> Table:
    """A list as a table: the id column is headed 编号 so the check mode can read an exported list back."""
    labels = component_labels()
    keys = list(labels)
    headers = ["序号", ID_HEADERS[0], "名称", "机构", "一级主题", "案例", "总分"] + [f"{labels[k]}得分" for k in keys]
    rows = []
    for n, c in enumerate(items, start=1):
        points = {p.key: round(p.points, 2) if p.value is not None and c.rated else "无数据" for p in c.components}
        rows.append([n, c.id, c.name, c.institution_name, c.branch_names, c.is_case,
                     round(c.score, 2) if c.rated else "无数据"]
                    + [points.get(k, "—") for k in keys])
    return Table(title, headers, rows)


def demand_note(demand: Mapping[str, float] | None) -> str:
    return ("学员差距分析：各主题被判定为知识差距的干部人数" if demand
            else "未提供需求数据：『学习需求』指标不参与计分，其余权重按比例放大")


def prepare(catalogue: CatalogueSnapshot, config: NominationConfig | None, demand: Mapping[str, float] | None,
            candidates: Sequence[Candidate] | None, as_of: dt.date | None,
            ontology: Ontology) -> tuple[NominationConfig, list[Candidate]]:
    """The config (from rules.yaml unless given) and all candidates scored under it, best first."""
    config = config or NominationConfig.from_rules(ontology.rules)
    config.validate()
    if candidates is None:
        candidates = score_candidates(catalogue, config.weights, demand, gates=config.gates, as_of=as_of, ontology=ontology)
    return config, sorted(candidates, key=lambda c: c.rank_key)


def optimise_nominations(
    catalogue: CatalogueSnapshot,
    config: NominationConfig | None = None,
    *,
    demand: Mapping[str, float] | None = None,
    candidates: Sequence[Candidate] | None = None,
    as_of: dt.date | None = None,
    time_limit: float = 60.0,
    thin: bool = True,
    ontology: Ontology | None = None,
) -> NominationResult:
    """The year's lists with the highest total score under every rule, or the reasons none exists.

    ``candidates`` (already scored, e.g. by :func:`score_candidates`) skips scoring; ``thin=False`` solves
    over every eligible candidate (same optimum, slower — the benchmark compares both).
    """
    ontology = ontology or catalogue.ontology
    config, scored = prepare(catalogue, config, demand, candidates, as_of, ontology)
    eligible = [c for c in scored if c.eligible and c.id not in config.previous]
    available = availability(catalogue, config, eligible)
    pool = thin_pool(eligible, config) if thin else eligible
    model = NominationModel(catalogue, config, pool, available, ontology)
    result = NominationResult(config, False, eligible=dict(available["count"]), variables=len(pool),
                              demand_note=demand_note(demand))
    solution = solve(len(pool), model.families, np.array([c.score for c in pool]), time_limit=time_limit)
    result.solve_seconds = solution.seconds
    if solution.x is None:
        result.conflict, result.reasons = NominationModel.explain(catalogue, config, eligible, available, ontology,
                                                                  time_limit)
        return result
    chosen = [pool[i] for i in solution.chosen]
    result.feasible = True
    result.proven_optimal = solution.status == "optimal"
    result.courses = [c for c in chosen if c.kind == "course"]
    result.textbooks = [c for c in chosen if c.kind == "textbook"]
    result.checks = audit_selection(catalogue, config, chosen, ontology)
    return result
