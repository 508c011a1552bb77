"""Hour crediting and compliance: how many 学时 each record earns, and whether the cadre meets the rules.

All figures come from ``ontology/rules.yaml``:

* 网络自学 earns hours only on a platform the 组织人事部门 recognise (规划 一、注 2), by that platform's
  crediting rule (``platform_crediting``: tiers by minutes, minutes per 学时, or the course's own hours;
  a bonus for a passed test; completion required) — the mechanics of 学时互认.  A record with hours and no
  course is a total the platform has already credited (a quarterly certified total); it counts as certified
  where the platform's rule says ``certified_totals: true``, and not at all otherwise;
* 集中培训 counts in the four situations of note 1 (and as a class — 班次 — attended by organisation);
* each hour rule of the cadre's hour group is checked over its period (this year, or the plan window):
  已达标 when met, 进度正常 when not yet met but the pace so far reaches it by the period's end, 未达标
  otherwise; a rule whose figure is null is reported as 未设置 and never guessed;
* the 领导班子 rule: a systematic theory and party-spirit training every 2–3 years, and enough days in five;
* plausibility flags for patterns auto-play scripts leave (too many online hours in a day, minutes far
  above the course's length).  Flags do not change credit: a person decides.

Records dated after ``today`` are ignored everywhere, so a report "as of" a past date is exact.
"""

from __future__ import annotations

import datetime as dt
from collections import defaultdict
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field, replace
from typing import Any, ClassVar

import numpy as np

from recommender.labelled import Labelled
from recommender.learner.profile import CadreProfile, Record
from recommender.catalogue.snapshot import CatalogueSnapshot
from recommender.dates import add_years

__all__ = [
    "MINUTES_PER_CLASS_HOUR",
    "STATUSES",
    "Credit",
    "HourReport",
    "LeadershipCompliance",
    "PlausibilityFlag",
    "RuleCompliance",
    "credit_mode_mask",
    "credit_record",
    "estimate_credit",
    "hour_report",
    "leadership_compliance",
    "plausibility_flags",
    "rule_compliance",
]

#: One 学时 is a 45-minute class period; used to compare minutes watched with a course's length.
MINUTES_PER_CLASS_HOUR = 45
_STATUS_MET, _STATUS_ON_TRACK, _STATUS_SHORT, _STATUS_UNSET = "已达标", "进度正常", "未达标", "未设置"
#: Every status a rule can read, for reports that count them.
STATUSES = (_STATUS_MET, _STATUS_ON_TRACK, _STATUS_SHORT, _STATUS_UNSET)
_PERIOD_LABELS = {"year": "每年", "plan_window": "规划期"}


@dataclass(frozen=True)
class Credit:
    """What one record earns: credited 学时, days (集中培训), whether it counts, and why, in Chinese."""

    hours: float
    days: float
    counted: bool
    reason: str


def _round(value: float) -> float:
    return round(value + 1e-9, 2)


def _online_credit(record: Record, snapshot: CatalogueSnapshot) -> Credit:
    rules = snapshot.ontology.rules
    course = snapshot.course_pos.get(record.course) if record.course else None
    platform_id = record.platform or (snapshot.course_platform[course] if course is not None else None)
    if platform_id is None:
        return Credit(0.0, 0.0, False, "记录未注明网络培训平台，无法认定网络自学学时（规划 一、注 2）")
    platform = snapshot.platforms.get(platform_id)
    if platform is None:
        return Credit(0.0, 0.0, False, f"平台『{platform_id}』不在平台目录中，网络自学学时不予认定（规划 一、注 2）")
    if rules.get("online_requires_recognised_platform", {}).get("value", True) and not platform.recognised:
        return Credit(0.0, 0.0, False, f"平台『{platform.name}』未被组织人事部门认可，网络自学学时不予认定（规划 一、注 2）")
    rule = rules.get("platform_crediting", {}).get(platform.credit_rule or "")
    if rule is None:
        return Credit(0.0, 0.0, False, f"平台『{platform.name}』未配置学时认定规则（rules.yaml platform_crediting），学时不予认定")
    rule_name = rule.get("name", platform.credit_rule)
    if rule.get("requires_completion", True) and not record.completed:
        return Credit(0.0, 0.0, False, f"未完成学习，按『{rule_name}』不认定学时")
    if course is None and record.hours is not None:
        if not rule.get("certified_totals"):
            return Credit(0.0, 0.0, False, f"平台『{platform.name}』的认定规则『{rule_name}』不接受平台报送的学时合计"
                                           "（rules.yaml platform_crediting 的 certified_totals），学时不予认定")
        return Credit(_round(record.hours), 0.0, True,
                      f"{platform.name}·{rule_name}：平台核定的网络自学学时 {_round(record.hours):g} 学时（学时互认）")
    minutes = record.minutes or 0.0
    if "tiers" in rule:
        tiers = sorted(rule["tiers"], key=lambda t: -float(t["min_minutes"]))
        base = next((float(t["hours"]) for t in tiers if minutes >= float(t["min_minutes"])), 0.0)
        how = f"学习 {minutes:g} 分钟认定 {base:g} 学时"
    elif rule.get("minutes_per_hour"):
        base = minutes / float(rule["minutes_per_hour"])
        how = f"学习 {minutes:g} 分钟按每 {rule['minutes_per_hour']} 分钟 1 学时折算为 {_round(base):g} 学时"
    elif rule.get("use_course_hours"):
        if course is None:
            return Credit(0.0, 0.0, False, f"记录未关联课程，无法按『{rule.get('name')}』认定课程标定学时")
        base = float(snapshot.course_hours[course])
        how = f"认定课程标定学时 {base:g} 学时"
    else:
        return Credit(0.0, 0.0, False, f"平台『{platform.name}』的认定规则没有给出折算方法，学时不予认定")
    bonus = float(rule.get("test_passed_bonus") or 0.0) if record.test_passed else 0.0
    if bonus:
        how += f"，测试合格加 {bonus:g} 学时"
    return Credit(_round(base + bonus), 0.0, True, f"{platform.name}·{rule.get('name', platform.credit_rule)}：{how}")


def _concentrated_credit(record: Record, snapshot: CatalogueSnapshot) -> Credit:
    vocab = snapshot.vocab
    if not record.completed:
        return Credit(0.0, 0.0, False, "集中培训未完成，不计学时")
    if record.situation is not None and record.situation not in vocab.concentrated_situations:
        return Credit(0.0, 0.0, False, f"情形『{record.situation}』不属于规划 一、注 1 所列集中培训的四种情形，不计入集中培训")
    if record.situation is None and record.klass is None:
        return Credit(0.0, 0.0, False, "记录未注明集中培训情形，也未关联班次，不计入集中培训（规划 一、注 1）")
    per_day = vocab.hours_per_day
    if record.hours is not None:
        hours = record.hours
    elif record.days is not None:
        hours = record.days * per_day
    elif record.course and record.course in snapshot.course_pos:
        hours = float(snapshot.course_hours[snapshot.course_pos[record.course]])
    else:
        return Credit(0.0, 0.0, False, "记录既无学时也无天数，无法计入集中培训")
    days = record.days if record.days is not None else hours / per_day
    what = record.situation or "班次学习"
    return Credit(_round(hours), _round(days), True, f"集中培训（{what}）计 {_round(hours):g} 学时")


def credit_record(record: Record, snapshot: CatalogueSnapshot) -> Credit:
    """The 学时 a record earns under the plan's notes 1–2 and its platform's crediting rule."""
    vocab = snapshot.vocab
    if record.mode == vocab.online_mode:
        return _online_credit(record, snapshot)
    if record.mode == vocab.concentrated_mode:
        return _concentrated_credit(record, snapshot)
    return Credit(0.0, 0.0, False, f"培训方式『{record.mode}』无法识别，应为『{vocab.concentrated_mode}』或『{vocab.online_mode}』")


def credit_mode_mask(snapshot: CatalogueSnapshot, mode: str) -> np.ndarray:
    """Courses whose hours would be credited under ``mode``: online courses as 网络自学, the rest as 集中培训."""
    return snapshot.course_online if mode == snapshot.vocab.online_mode else ~snapshot.course_online


def estimate_credit(snapshot: CatalogueSnapshot, course: int) -> tuple[str, float]:
    """(mode, 学时) a cadre would earn by completing ``course`` in full: online courses on their platform's
    rule (no test bonus assumed), other courses as 集中培训 at their own hours."""
    vocab = snapshot.vocab
    hours = float(snapshot.course_hours[course])
    if snapshot.course_online[course]:
        record = Record(id="", date=dt.date.min, mode=vocab.online_mode, minutes=hours * MINUTES_PER_CLASS_HOUR,
                        completed=True, course=snapshot.course_ids[course])
        credit = _online_credit(record, snapshot) if snapshot.course_platform[course] else Credit(hours, 0.0, True, "")
        return vocab.online_mode, credit.hours
    return vocab.concentrated_mode, hours


# ───────────────────────────────────────────── compliance ─────────────────────────────────────────────


@dataclass(frozen=True)
class RuleCompliance(Labelled):
    """One hour rule for one cadre: progress, shortfall now, and the shortfall projected at period end."""

    rule_id: str
    name: str
    mode: str
    period: str
    start: dt.date
    end: dt.date
    required_hours: float | None
    required_days: float | None
    earned_hours: float
    earned_days: float
    projected_hours: float
    section: str
    verified: bool
    source: str
    remaining_this_year: float | None

    LABELS: ClassVar[dict[str, str]] = {
        "rule_id": "规则编号", "name": "规则", "mode": "培训方式", "period_label": "周期", "start": "起始日期",
        "end": "截止日期", "required_label": "要求学时", "required_days": "要求天数", "earned_hours": "已获学时",
        "earned_days": "已获天数", "progress": "完成进度", "shortfall": "差额学时", "projected_hours": "预计期末学时",
        "projected_shortfall": "预计期末差额", "remaining_this_year": "本年度尚需学时", "status": "状态",
        "section": "规划条目", "verified": "规划原文已核实", "source": "来源",
    }

    @property
    def unset(self) -> bool:
        return self.required_hours is None

    @property
    def met(self) -> bool:
        if self.unset:
            return False
        by_days = self.required_days is not None and self.earned_days >= self.required_days
        return self.earned_hours >= self.required_hours or by_days

    @property
    def on_track(self) -> bool:
        """Not met yet, but the pace so far reaches the requirement by the period's end."""
        return not self.unset and not self.met and self.projected_hours >= self.required_hours

    @property
    def status(self) -> str:
        if self.unset:
            return _STATUS_UNSET
        return _STATUS_MET if self.met else _STATUS_ON_TRACK if self.on_track else _STATUS_SHORT

    @property
    def required_label(self) -> float | str:
        return _STATUS_UNSET if self.required_hours is None else self.required_hours

    @property
    def period_label(self) -> str:
        label = _PERIOD_LABELS.get(self.period, self.period)
        return f"{label}（{self.start.year}—{self.end.year}年）" if self.period == "plan_window" else f"{label}（{self.start.year}年）"

    @property
    def progress(self) -> float | None:
        if self.unset:
            return None
        return 1.0 if self.met or not self.required_hours else min(1.0, self.earned_hours / self.required_hours)

    @property
    def shortfall(self) -> float | None:
        return None if self.unset else (0.0 if self.met else _round(self.required_hours - self.earned_hours))

    @property
    def projected_shortfall(self) -> float | None:
        if self.unset:
            return None
        return 0.0 if self.met else _round(max(0.0, self.required_hours - self.projected_hours))


def _period(rule: Mapping[str, Any], rules: Mapping[str, Any], today: dt.date) -> tuple[dt.date, dt.date]:
    if rule.get("period") == "plan_window":
        window = rules["plan_window"]
        return dt.date(int(window["start_year"]), 1, 1), dt.date(int(window["end_year"]), 12, 31)
    return dt.date(today.year, 1, 1), dt.date(today.year, 12, 31)


def project(earned: float, start: dt.date, end: dt.date, today: dt.date) -> float:
    """Hours at ``end`` if the pace from ``start`` to ``today`` (inclusive) holds: earned × total / elapsed.

    Examples
    --------
    >>> round(project(10, dt.date(2026, 1, 1), dt.date(2026, 12, 31), dt.date(2026, 7, 1)), 2)  # 182 of 365 days
    20.05
    """
    if today >= end:
        return earned
    elapsed = (today - start).days + 1
    if elapsed <= 0:
        return earned
    total = (end - start).days + 1
    return earned * total / elapsed


def rule_compliance(
    rule: Mapping[str, Any], credited: Sequence[tuple[Record, Credit]], rules: Mapping[str, Any], today: dt.date
) -> RuleCompliance:
    """Check one hour rule against credited records (only those of the rule's mode, within its period)."""
    start, end = _period(rule, rules, today)
    until = min(today, end)
    hours = days = 0.0
    for record, credit in credited:
        if credit.counted and record.mode == rule.get("mode") and start <= record.date <= until:
            hours += credit.hours
            days += credit.days
    required = None if rule.get("min_hours") is None else float(rule["min_hours"])
    compliance = RuleCompliance(
        rule_id=str(rule.get("id", "")),
        name=str(rule.get("name", "")),
        mode=str(rule.get("mode", "")),
        period=str(rule.get("period", "year")),
        start=start,
        end=end,
        required_hours=required,
        required_days=None if rule.get("min_days") is None else float(rule["min_days"]),
        earned_hours=_round(hours),
        earned_days=_round(days),
        projected_hours=_round(project(hours, start, end, today)),
        section=str(rule.get("section", "")),
        verified=bool(rule.get("verified", False)),
        source=str(rule.get("source", "")),
        remaining_this_year=None,
    )
    if compliance.unset or today > end:
        return compliance
    years_left = end.year - today.year + 1
    remaining = _round(compliance.shortfall / years_left) if compliance.shortfall else 0.0
    return replace(compliance, remaining_this_year=remaining)


@dataclass(frozen=True)
class LeadershipCompliance(Labelled):
    """The 领导班子 rule: one systematic theory + party-spirit training every 2–3 years, days over five."""

    rule_id: str
    name: str
    last_date: dt.date | None
    last_what: str
    due_by: dt.date | None
    max_gap_years: float
    days_in_window: float
    required_days: float
    window_years: float
    window_start: dt.date
    today: dt.date
    section: str

    #: ``{years}`` is the rule's window (``window_years``), filled in by :meth:`to_dict`
    LABELS: ClassVar[dict[str, str]] = {
        "rule_id": "规则编号", "name": "规则", "last_date": "最近一次系统培训", "last_what": "培训名称",
        "due_by": "下次最迟", "days_in_window": "近 {years} 年累计天数", "required_days": "要求天数", "status": "状态",
        "section": "规划条目",
    }

    def to_dict(self) -> dict[str, Any]:
        """The labelled dict, the window's length taken from the rule rather than fixed in a label."""
        return {label.format(years=f"{self.window_years:g}"): value for label, value in super().to_dict().items()}

    @property
    def overdue(self) -> bool:
        return self.due_by is None or self.today > self.due_by

    @property
    def status(self) -> str:
        problems = []
        if self.last_date is None:
            problems.append("尚无系统培训记录")
        elif self.overdue:
            problems.append(f"距上次系统培训已超过 {self.max_gap_years:g} 年")
        if self.days_in_window < self.required_days:
            problems.append(f"近 {self.window_years:g} 年累计 {self.days_in_window:g} 天，少于 {self.required_days:g} 天")
        return _STATUS_MET if not problems else "；".join(problems)


def leadership_compliance(
    rule: Mapping[str, Any], credited: Sequence[tuple[Record, Credit]], snapshot: CatalogueSnapshot, today: dt.date
) -> LeadershipCompliance:
    """Systematic training = a counted 集中培训 record, attended as a class (班次) or as 脱产培训, at an
    institution of the listed types, whose course (or one of whose class's courses) is under the listed
    topic branches.  A 中心组学习 session or a lecture is training, but not "systematic" in 三（二）'s sense."""
    types = set(rule.get("counts_institution_types", []))
    under = [snapshot.topic_pos[t] for t in rule.get("counts_topics_under", []) if t in snapshot.topic_pos]
    window_years = float(rule.get("window_years", 5))
    window_start = add_years(today, -window_years)

    def qualifies(record: Record) -> str | None:
        if record.klass and record.klass in snapshot.classes:
            info = snapshot.classes[record.klass]
            institution, courses, what = info.institution, info.courses, info.name
        elif record.situation == snapshot.vocab.full_time_situation and record.course in snapshot.course_pos:
            pos = snapshot.course_pos[record.course]
            institution, courses, what = snapshot.course_institution[pos], (record.course,), snapshot.course_name[pos]
        else:
            return None
        if institution not in snapshot.institutions or snapshot.institutions[institution].institution_type not in types:
            return None
        for course in courses:
            pos = snapshot.course_pos.get(course)
            if pos is not None and any(snapshot.up[t, under].any() for t in snapshot.topics_of(pos)):
                return what
        return None

    last: tuple[dt.date, str] | None = None
    days = 0.0
    for record, credit in credited:
        if not credit.counted or record.mode != snapshot.vocab.concentrated_mode:
            continue
        what = qualifies(record)
        if what is None:
            continue
        if last is None or record.date >= last[0]:
            last = (record.date, what)
        if window_start < record.date <= today:
            days += credit.days
    gap = float(rule.get("max_gap_years", 3))
    return LeadershipCompliance(
        rule_id=str(rule.get("id", "")),
        name=str(rule.get("name", "")),
        last_date=last[0] if last else None,
        last_what=last[1] if last else "",
        due_by=add_years(last[0], gap) if last else None,
        max_gap_years=gap,
        days_in_window=_round(days),
        required_days=float(rule.get("min_days_in_window", 0)),
        window_years=window_years,
        window_start=window_start,
        today=today,
        section=str(rule.get("section", "")),
    )


@dataclass(frozen=True)
class PlausibilityFlag(Labelled):
    """A pattern that watch-time alone cannot explain; for a person to look at, not an automatic penalty."""

    kind: str
    date: dt.date
    record_ids: tuple[str, ...]
    value: float
    limit: float
    message: str

    LABELS: ClassVar[dict[str, str]] = {"date": "日期", "message": "说明", "record_ids": "相关记录"}


def plausibility_flags(records: Iterable[Record], snapshot: CatalogueSnapshot) -> list[PlausibilityFlag]:
    """Days with more online hours than ``max_online_hours_per_day``, and records whose minutes exceed the
    course's length (学时 × 45 minutes) by more than ``max_minutes_ratio``."""
    limits = snapshot.ontology.rules.get("plausibility", {})
    per_day_limit = limits.get("max_online_hours_per_day")
    ratio_limit = limits.get("max_minutes_ratio")
    flags: list[PlausibilityFlag] = []
    by_day: dict[dt.date, list[Record]] = defaultdict(list)
    for record in records:
        if record.mode != snapshot.vocab.online_mode or not record.minutes:
            continue
        by_day[record.date].append(record)
        pos = snapshot.course_pos.get(record.course or "")
        if ratio_limit and pos is not None and snapshot.course_hours[pos] > 0:
            length = float(snapshot.course_hours[pos]) * MINUTES_PER_CLASS_HOUR
            if record.minutes > length * float(ratio_limit):
                flags.append(PlausibilityFlag(
                    "minutes_ratio", record.date, (record.id,), _round(record.minutes / length), float(ratio_limit),
                    f"学习时长 {record.minutes:g} 分钟为课程时长（{length:g} 分钟）的 {record.minutes / length:.1f} 倍，超过 {ratio_limit} 倍",
                ))
    if per_day_limit:
        for day, items in sorted(by_day.items()):
            hours = sum(r.minutes or 0.0 for r in items) / 60.0
            if hours > float(per_day_limit):
                flags.append(PlausibilityFlag(
                    "daily_online_hours", day, tuple(r.id for r in items), _round(hours), float(per_day_limit),
                    f"当天网络学习 {hours:.1f} 小时（{len(items)} 门课程），超过每日 {per_day_limit} 小时",
                ))
    return sorted(flags, key=lambda f: (f.date, f.kind))


@dataclass(frozen=True)
class UncreditedRecord(Labelled):
    record_id: str
    date: dt.date
    mode: str
    reason: str

    LABELS: ClassVar[dict[str, str]] = {"record_id": "记录编号", "date": "日期", "mode": "培训方式", "reason": "原因"}


@dataclass(frozen=True)
class HourReport(Labelled):
    """Everything about a cadre's hours as of ``today``."""

    cadre_id: str
    today: dt.date
    hour_group: str | None
    rules: tuple[RuleCompliance, ...]
    leadership: tuple[LeadershipCompliance, ...]
    flags: tuple[PlausibilityFlag, ...]
    uncredited: tuple[UncreditedRecord, ...]
    credits: dict[str, Credit] = field(default_factory=dict, repr=False)

    LABELS: ClassVar[dict[str, str]] = {
        "cadre_id": "干部编号", "today": "统计日期", "hour_group": "学时分组", "rules": "学时要求",
        "leadership": "领导班子培训要求", "flags": "可疑学习行为", "uncredited": "未认定学时的记录",
    }

    def rule(self, mode: str, period: str | None = None) -> RuleCompliance | None:
        """The rule for a training mode (and period), if the cadre's hour group has one."""
        return next((r for r in self.rules if r.mode == mode and (period is None or r.period == period)), None)


def hour_report(profile: CadreProfile, snapshot: CatalogueSnapshot, today: dt.date) -> HourReport:
    """Credit every record up to ``today`` and check each rule that applies to the cadre."""
    rules = snapshot.ontology.rules
    records = [r for r in profile.records if r.date <= today]
    credited = [(r, credit_record(r, snapshot)) for r in records]
    hour_rules = tuple(
        rule_compliance(rule, credited, rules, today)
        for rule in rules.get("hour_rules", [])
        if rule.get("hour_group") == profile.hour_group
    )
    leadership = tuple(
        leadership_compliance(rule, credited, snapshot, today)
        for rule in rules.get("leadership_rules", [])
        if rule.get("applies_to_group") in profile.group_ids
    )
    return HourReport(
        cadre_id=profile.cadre_id,
        today=today,
        hour_group=profile.hour_group,
        rules=hour_rules,
        leadership=leadership,
        flags=tuple(plausibility_flags(records, snapshot)),
        uncredited=tuple(UncreditedRecord(r.id, r.date, r.mode, c.reason) for r, c in credited if not c.counted),
        credits={r.id: c for r, c in credited},
    )
