"""Check mode: audit a hand-made nomination list against the rules and propose the fewest swaps.

The list (CSV or XLSX with a 编号 column, or ids) is checked rule by rule with the same audit the optimiser
uses.  If it does not comply, a 0–1 model over the listed items plus every eligible candidate finds the
smallest number of changes (items taken out plus items put in) that makes the list comply; among the
fixes of that size it keeps the one with the highest total score.  Listed items that fail a gate, are not
published or were nominated in an earlier year must go.  Changes of the same list are paired into swaps.
"""

from __future__ import annotations

import datetime as dt
from collections import Counter
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
from scipy import sparse

from kg.ontology import Ontology

from recommender.analytics.exports import Table, read_id_column
from recommender.analytics.nominations import (
    NominationConfig,
    NominationModel,
    RuleCheck,
    audit_selection,
    availability,
    candidate_table,
    demand_note,
    prepare,
    thin_pool,
)
from recommender.analytics.scoring import Candidate
from recommender.analytics.solver import Family, solve
from recommender.catalogue.snapshot import CatalogueSnapshot

__all__ = ["Change", "NominationAudit", "Swap", "check_nomination_list"]


@dataclass(frozen=True)
class Change:
    """One item taken out of (移出) or put into (加入) the list, and why."""

    action: str
    id: str
    name: str
    kind: str
    score: float
    reason: str

    def to_dict(self) -> dict[str, Any]:
        return {"操作": self.action, "编号": self.id, "名称": self.name, "类型": self.kind, "总分": round(self.score, 2),
                "原因": self.reason}


@dataclass(frozen=True)
class Swap:
    """A removal paired with an addition of the same list (either may be missing when sizes change)."""

    out: Change | None
    into: Change | None

    @property
    def text(self) -> str:
        if self.out and self.into:
            return f"用『{self.into.name}』替换『{self.out.name}』（移出：{self.out.reason}；加入：{self.into.reason}）"
        if self.out:
            return f"移出『{self.out.name}』（{self.out.reason}）"
        return f"加入『{self.into.name}』（{self.into.reason}）" if self.into else ""

    def to_dict(self) -> dict[str, Any]:
        return {"移出": self.out.to_dict() if self.out else None, "加入": self.into.to_dict() if self.into else None,
                "说明": self.text}


@dataclass
class NominationAudit:
    """The audit of one hand-made list and the smallest fix."""

    config: NominationConfig
    listed: list[str]
    unknown: list[str]
    duplicates: list[str]
    checks: list[RuleCheck]
    swaps: list[Swap] = field(default_factory=list)
    fixable: bool = True
    reasons: list[str] = field(default_factory=list)
    proposed: list[Candidate] = field(default_factory=list)
    solve_seconds: float = 0.0
    demand_note: str = ""
    generated: dt.date = field(default_factory=dt.date.today)

    @property
    def compliant(self) -> bool:
        return all(c.passed for c in self.checks)

    @property
    def changes(self) -> int:
        return sum((s.out is not None) + (s.into is not None) for s in self.swaps)

    @property
    def title(self) -> str:
        return f"{self.config.year} 年度推荐名单合规审查"

    def rules_used(self) -> list[tuple[str, str]]:
        return self.config.rules_used() + [("需求数据", self.demand_note)]

    def tables(self) -> list[Table]:
        tables = [Table("规则核对", ["规则", "要求", "实际", "是否满足"],
                        [[c.rule, c.requirement, c.actual, c.passed] for c in self.checks])]
        if self.swaps:
            tables.append(Table("调整建议", ["序号", "移出编号", "移出名称", "移出原因", "加入编号", "加入名称", "加入原因"], [
                [n, s.out.id if s.out else "", s.out.name if s.out else "", s.out.reason if s.out else "",
                 s.into.id if s.into else "", s.into.name if s.into else "", s.into.reason if s.into else ""]
                for n, s in enumerate(self.swaps, start=1)]))
        if self.reasons:
            tables.append(Table("无法调整的原因", ["原因"], [[r] for r in self.reasons]))
        if self.proposed:
            tables.append(candidate_table("调整后名单", self.proposed))
        return tables

    def to_dict(self) -> dict[str, Any]:
        return {"title": self.title, "合规": self.compliant, "名单编号": self.listed, "无效编号": self.unknown,
                "重复编号": self.duplicates, "案例占比口径": self.config.quota_text,
                "规则核对": [c.to_dict() for c in self.checks], "调整次数": self.changes,
                "调整建议": [s.to_dict() for s in self.swaps], "可调整": self.fixable, "原因": self.reasons,
                "调整后名单": [c.to_dict() for c in self.proposed], "规则": dict(self.rules_used())}


class _Reasons:
    """Why an item leaves or joins, read from how the list's valid items break the rules."""

    def __init__(self, catalogue: CatalogueSnapshot, config: NominationConfig, items: Sequence[Candidate]) -> None:
        self.catalogue, self.config = catalogue, config
        per_kind = Counter(c.kind for c in items)
        self.quota = {"course": config.courses, "textbook": config.textbooks}
        self.over = {k for k in self.quota if per_kind[k] > self.quota[k]}
        self.short = {k for k in self.quota if per_kind[k] < self.quota[k]}
        groups = {"course": [c for c in items if c.kind == "course"], "textbook": [c for c in items if c.kind == "textbook"],
                  "all": list(items)}
        self.case_short = {k for k, need in config.case_minimums().items() if sum(c.is_case for c in groups[k]) < need}
        self.branch_short = {b for b in catalogue.tree.branches
                             if sum(b in c.branches for c in groups["course"]) < config.min_per_branch}
        cap = config.max_per_institution
        per_inst = Counter(c.institution for c in items if c.institution)
        self.over_inst = {i for i, n in per_inst.items() if cap is not None and n > cap}

    def _case_short_for(self, item: Candidate) -> bool:
        return item.kind in self.case_short or "all" in self.case_short

    def removal(self, item: Candidate) -> str:
        if item.gate_failures:
            return "未" + "、".join(item.gate_failures)
        if not item.published:
            return "未发布"
        if not item.rated:
            return f"评价数据不足（数据覆盖度 {100 * item.coverage:.1f} %），不计总分"
        if item.id in self.config.previous:
            return "往年已入选"
        if item.institution in self.over_inst:
            return f"『{self.catalogue.institution_name(item.institution)}』超出机构上限"
        if item.kind in self.over:
            return "超出名额"
        if not item.is_case and self._case_short_for(item):
            return "腾出名额以提高案例占比"
        return "腾出名额以满足一级主题覆盖等规则"

    def addition(self, item: Candidate) -> str:
        if item.is_case and self._case_short_for(item):
            return "案例项目，补足案例占比"
        missing = [b for b in item.branches if b in self.branch_short] if item.kind == "course" else []
        if missing:
            return "补足一级主题『" + "、".join(self.catalogue.topic_name(b) for b in missing) + "』"
        if item.kind in self.short:
            return "补足名额"
        return "得分最高的合规候选"


def _swaps(removed: list[Candidate], added: list[Candidate], reasons: _Reasons) -> list[Swap]:
    swaps = []
    for kind in ("course", "textbook"):
        outs = sorted((c for c in removed if c.kind == kind), key=lambda c: (c.eligible, c.score, c.id))
        ins = sorted((c for c in added if c.kind == kind), key=lambda c: (-c.score, c.id))
        for n in range(max(len(outs), len(ins))):
            out = outs[n] if n < len(outs) else None
            into = ins[n] if n < len(ins) else None
            swaps.append(Swap(
                Change("移出", out.id, out.name, kind, out.score, reasons.removal(out)) if out else None,
                Change("加入", into.id, into.name, kind, into.score, reasons.addition(into)) if into else None,
            ))
    return swaps


def check_nomination_list(
    catalogue: CatalogueSnapshot,
    source: str | Path | Iterable[str],
    config: NominationConfig | None = None,
    *,
    demand: Mapping[str, float] | None = None,
    candidates: Sequence[Candidate] | None = None,
    as_of: dt.date | None = None,
    time_limit: float = 60.0,
    ontology: Ontology | None = None,
) -> NominationAudit:
    """Audit a list (a CSV/XLSX path or ids) and, if it breaks a rule, propose the fewest changes."""
    ontology = ontology or catalogue.ontology
    ids = read_id_column(source) if isinstance(source, (str, Path)) else [str(i).strip() for i in source]
    config, scored = prepare(catalogue, config, demand, candidates, as_of, ontology)
    by_id = {c.id: c for c in scored}
    counts = Counter(ids)
    unknown = [i for i in counts if i not in by_id]
    duplicates = [i for i, n in counts.items() if n > 1]
    listed = [i for i in counts if i in by_id]
    items = [by_id[i] for i in listed]
    checks = audit_selection(catalogue, config, items, ontology)
    checks.insert(0, RuleCheck("编号有效", "均为课程或教材编号", "、".join(unknown) or "全部有效", not unknown))
    checks.insert(1, RuleCheck("无重复", "每项只出现一次", "、".join(duplicates) or "无重复", not duplicates))
    audit = NominationAudit(config, ids, unknown, duplicates, checks, demand_note=demand_note(demand))
    if audit.compliant:
        audit.proposed = items
        return audit
    eligible = [c for c in scored if c.eligible and c.id not in config.previous]
    in_list = set(listed)
    considered = [c for c in scored if c.id in in_list or (c.eligible and c.id not in config.previous)]
    pool = thin_pool(considered, config, keep=in_list)
    model = NominationModel(catalogue, config, pool, availability(catalogue, config, eligible), ontology)
    upper = np.array([0.0 if not c.eligible or c.id in config.previous else 1.0 for c in pool])
    cost = np.array([-1.0 if c.id in in_list else 1.0 for c in pool])  # changes = |list| + cost · x
    fewest = solve(len(pool), model.families, cost, maximise=False, upper=upper, time_limit=time_limit)
    audit.solve_seconds = fewest.seconds
    if fewest.x is None:
        audit.fixable = False
        _, audit.reasons = NominationModel.explain(catalogue, config, eligible, model.available, ontology, time_limit)
        return audit
    budget = Family("changes", "调整数量", sparse.csr_matrix(cost.reshape(1, -1)), -np.inf, round(fewest.objective),
                    lambda *_: "")
    best = solve(len(pool), [*model.families, budget], np.array([c.score for c in pool]), upper=upper,
                 time_limit=time_limit)
    audit.solve_seconds += best.seconds
    chosen = best.chosen if best.x is not None else fewest.chosen
    keep = {pool[i].id for i in chosen}
    removed = [c for c in items if c.id not in keep]
    added = [pool[i] for i in chosen if pool[i].id not in in_list]
    staying = [c for c in items if c.eligible and c.id not in config.previous]  # the others must go anyway
    audit.swaps = _swaps(removed, added, _Reasons(catalogue, config, staying))
    audit.proposed = [pool[i] for i in chosen]
    return audit
