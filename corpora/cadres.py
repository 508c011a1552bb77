"""A seeded generator of sample cadres and their training records.

Cadres are personal data, so the sample ones are generated, never written by hand and never committed.
Each cadre gets a hidden *persona* that decides how they study — on track, behind on hours, never touching
some required topics, a leadership member past the 2–3-year window, a new recruit with no records, or an
auto-play "gamer" — and a hidden set of interests.  Records are drawn from those interests and the course
catalogue's popularity alone: the generator knows nothing of the recommender's scoring, so the recommender
can be evaluated honestly on what cadres study after a cut-off date.

Records are of three kinds, as platforms and organisation departments exchange them: a course studied
(online with minutes, credited by the platform's rule; or face to face with hours), a class attended
(脱产培训, with days and hours), and certified totals (a platform's quarterly credited 网络自学 hours, the
year's 中心组学习 hours) that carry ``hours`` and no course.

The output is a stream: one cadre and their records at a time, so a million cadres need no more memory
than ten.
"""

from __future__ import annotations

import bisect
import datetime as dt
import json
import random
from collections import defaultdict
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, TextIO

from kg.ontology import Ontology

__all__ = ["AS_OF", "Catalogue", "CadreGenerator", "PERSONAS", "read_catalogue", "write_cadres"]

AS_OF = dt.date(2026, 11, 15)
"""Records stop at this date: a fixed date keeps the output identical for the same seed on any day."""

PERSONAS = {
    "on_track": 0.42,
    "behind": 0.24,
    "narrow": 0.16,
    "new_recruit": 0.07,
    "gamer": 0.03,
    "overdue": 0.08,
}
_CATEGORY_WEIGHTS = {
    "category:county-leader": 0.18,
    "category:civil-servant-senior": 0.12,
    "category:soe-leader": 0.08,
    "category:pi-manager-senior": 0.07,
    "category:township-leader": 0.17,
    "category:civil-servant-junior": 0.20,
    "category:soe-other-manager": 0.08,
    "category:professional": 0.10,
}
_SURNAMES = "王李张刘陈杨黄赵吴周徐孙马朱胡郭何高林罗郑梁谢宋唐许韩冯邓曹彭曾肖田董袁潘于蒋蔡余杜叶程苏魏吕丁任沈姚卢姜崔钟谭陆汪范金石廖贾夏韦付方白邹孟熊秦邱江尹薛闫段雷侯龙史陶黎贺顾毛郝龚邵万钱严覃武戴莫孔向汤"
_GIVEN = "建国海燕晓东志强丽华文博思远雅琴宏伟明辉秀英春梅卫东新民慧敏佳怡子涵浩然俊杰雨萱振华玉兰红霞国庆立新永刚晓峰静怡欣然嘉怡"
_REGIONS = [
    "浙江省杭州市", "浙江省湖州市安吉县", "广东省深圳市", "广东省清远市", "四川省成都市", "四川省凉山彝族自治州", "河南省郑州市",
    "河南省开封市兰考县", "江苏省苏州市", "甘肃省定西市", "贵州省遵义市", "江西省吉安市", "陕西省延安市", "山东省临沂市",
    "福建省龙岩市", "湖北省黄冈市", "北京市", "上海市浦东新区",
]


@dataclass
class Catalogue:
    """What the generator needs of the catalogue: published courses by topic, platforms and classes."""

    courses: dict[str, dict[str, Any]]
    by_topic: dict[str, list[str]]
    online: list[str]
    face_to_face: list[str]
    platforms: dict[str, dict[str, Any]]
    classes: list[dict[str, Any]]
    institutions: dict[str, dict[str, Any]]


def read_catalogue(corpus_dirs: list[Path]) -> Catalogue:
    """Published courses, platforms, classes and institutions from the catalogue's JSON Lines files."""
    rows: list[dict[str, Any]] = []
    for directory in corpus_dirs:
        for path in sorted(directory.glob("*.jsonl")):
            with path.open(encoding="utf-8") as handle:
                rows.extend(json.loads(line) for line in handle if line.strip())
    courses = {r["id"]: r for r in rows if r["type"] == "Course" and r["status"] == "已发布"}
    by_topic: dict[str, list[str]] = defaultdict(list)
    for course in courses.values():
        for topic in course["covers"]:
            by_topic[topic].append(course["id"])
    return Catalogue(
        courses=courses,
        by_topic=dict(by_topic),
        online=sorted(c for c, r in courses.items() if r["deliveryMode"] == "网络"),
        face_to_face=sorted(c for c, r in courses.items() if r["deliveryMode"] != "网络"),
        platforms={r["id"]: r for r in rows if r["type"] == "Platform"},
        classes=[r for r in rows if r["type"] == "TrainingClass"],
        institutions={r["id"]: r for r in rows if r["type"] == "Institution"},
    )


@dataclass
class _Cadre:
    row: dict[str, Any]
    persona: str
    interests: dict[str, float] = field(default_factory=dict)


class CadreGenerator:
    """Deterministic for a given seed, catalogue and ontology."""

    def __init__(self, ontology: Ontology, catalogue: Catalogue, seed: int = 7, as_of: dt.date = AS_OF) -> None:
        self.ontology = ontology
        self.catalogue = catalogue
        self.seed = seed
        self.as_of = as_of
        nodes, edges = ontology.concept_graph()
        self.labels = {n.id: n.props.get("name", n.id) for n in nodes}
        self.hour_groups = {n.id: n.props.get("hourGroup") for n in nodes if n.label == "CadreCategory"}
        self.domains = sorted(n.id for n in nodes if n.label == "PositionDomain")
        self.groups = sorted(n.id for n in nodes if n.label == "TargetGroup")
        self.topics = sorted(n.id for n in nodes if n.label == "Topic")
        self.broader = {e.src: e.dst for e in edges if e.type == ontology.relationship_types["broader"]}
        self.requirements = ontology.requirements
        recognised = [p for p, r in catalogue.platforms.items() if r["recognised"]]
        self.recognised_platforms = sorted(recognised)
        self.unrecognised_platforms = sorted(p for p in catalogue.platforms if p not in recognised)
        self._popularity = {c: (r.get("enrolments") or 100) ** 0.5 * (r.get("rating") or 4.0) for c, r in catalogue.courses.items()}

    # ── cadres ──
    def cadres(self, count: int) -> Iterator[tuple[dict[str, Any], list[dict[str, Any]]]]:
        """Yield (cadre row, record rows) for ``count`` cadres."""
        for index in range(count):
            rng = random.Random(f"{self.seed}:{index}")
            cadre = self._cadre(index, rng)
            yield cadre.row, self._records(cadre, rng)

    def _cadre(self, index: int, rng: random.Random) -> _Cadre:
        persona = rng.choices(list(PERSONAS), weights=list(PERSONAS.values()))[0]
        category = rng.choices(list(_CATEGORY_WEIGHTS), weights=list(_CATEGORY_WEIGHTS.values()))[0]
        birth_year = rng.randint(1965, 1996)
        groups: set[str] = set()
        leadership_level = None
        if persona == "new_recruit":
            category, birth_year = "category:civil-servant-junior", rng.randint(1998, 2003)
            groups.add("group:new-civil-servant")
        if persona == "overdue" or (category in ("category:county-leader", "category:township-leader") and rng.random() < 0.45):
            if category not in ("category:county-leader", "category:township-leader"):
                category = "category:county-leader"
            groups.add("group:leadership-member")
            leadership_level = rng.choice(["市", "县", "县", "省"]) if category == "category:county-leader" else "县"
            if rng.random() < 0.3:
                groups.add("group:top-leader")
        if birth_year >= 1986:
            groups.add("group:young-cadre")
        domain = self._domain_for(category, rng)
        if category == "category:soe-leader":
            groups.add("group:soe-leader-group")
        if category == "category:professional":
            groups.add("group:professional-talent")
        if domain == "domain:grassroots-governance":
            groups.add("group:grassroots-cadre")
            if rng.random() < 0.3:
                groups.add("group:village-secretary")
        if category == "category:civil-servant-senior" and rng.random() < 0.25:
            groups.add("group:department-head")
        if domain == "domain:organization" and rng.random() < 0.5:
            groups.add("group:party-affairs")
        if domain == "domain:publicity" and rng.random() < 0.3:
            groups.add("group:theory-backbone")
        for group, share in (("group:female-cadre", 0.36), ("group:ethnic-minority-cadre", 0.08), ("group:non-party-cadre", 0.05)):
            if rng.random() < share:
                groups.add(group)
        groups &= set(self.groups)
        region = rng.choice(_REGIONS)
        row: dict[str, Any] = {
            "type": "Cadre",
            "id": f"cadre:{index + 1:07d}",
            "name": rng.choice(_SURNAMES) + "".join(rng.sample(_GIVEN, 2)),
            "isSample": True,
            "category": category,
            "positionDomain": domain,
            "inGroup": sorted(groups),
            "organisation": f"{region}{self.labels.get(domain, domain)}部门（样例）",
            "region": region,
            "birthYear": birth_year,
        }
        if leadership_level:
            row["leadershipLevel"] = leadership_level
        cadre = _Cadre(row, persona)
        cadre.interests = self._interests(cadre, rng)
        return cadre

    def _domain_for(self, category: str, rng: random.Random) -> str:
        if category in ("category:soe-leader", "category:soe-other-manager"):
            return "domain:soe-management"
        if category == "category:township-leader" and rng.random() < 0.6:
            return "domain:grassroots-governance"
        return rng.choice(self.domains)

    def required_topics(self, cadre_row: dict[str, Any]) -> list[str]:
        """Topics the requirements file asks of this cadre (essential or optional, merged)."""
        req = self.requirements
        entries = list(req.get("all_cadres", []))
        entries += req.get("categories", {}).get(cadre_row["category"], [])
        for group in cadre_row["inGroup"]:
            entries += req.get("groups", {}).get(group, [])
        entries += req.get("domains", {}).get(cadre_row["positionDomain"], [])
        return sorted({e["topic"] for e in entries if e.get("level") == "essential"})

    def _interests(self, cadre: _Cadre, rng: random.Random) -> dict[str, float]:
        """Hidden topic affinities: most required topics, some personal interests; the narrow persona skips
        a share of the required ones entirely."""
        required = self.required_topics(cadre.row)
        weights = {t: 0.15 for t in self.topics}
        skipped = set(rng.sample(required, k=max(1, int(len(required) * 0.45)))) if cadre.persona == "narrow" else set()
        for topic in required:
            weights[topic] = 0.0 if topic in skipped else rng.uniform(1.0, 3.0)
        for topic in rng.sample(self.topics, k=5):
            if topic not in skipped:
                weights[topic] = max(weights[topic], rng.uniform(1.5, 4.0))
        for topic in skipped:
            for child, parent in self.broader.items():
                if parent == topic:
                    weights[child] = 0.0
        return weights

    # ── records ──
    def _course_weights(self, cadre: _Cadre, pool: list[str]) -> list[float]:
        interests = cadre.interests
        return [
            max(interests.get(t, 0.0) for t in self.catalogue.courses[c]["covers"]) * self._popularity[c] + 1e-9
            if all(interests.get(t, 0.15) > 0 for t in self.catalogue.courses[c]["covers"])
            else 0.0
            for c in pool
        ]

    def _records(self, cadre: _Cadre, rng: random.Random) -> list[dict[str, Any]]:
        if cadre.persona == "new_recruit":
            return []
        records: list[dict[str, Any]] = []
        online_pool = self.catalogue.online
        online_weights = _cumulative(self._course_weights(cadre, online_pool))
        f2f_pool = self.catalogue.face_to_face
        f2f_weights = _cumulative(self._course_weights(cadre, f2f_pool))
        group = self.hour_groups.get(cadre.row["category"], "B")
        taken: set[str] = set()
        for year in range(2023, self.as_of.year + 1):
            year_end = min(dt.date(year, 12, 31), self.as_of)
            share = (year_end - dt.date(year, 1, 1)).days / 365
            recent = year >= self.as_of.year - 1
            low, high = _ONLINE_TARGET[cadre.persona]
            target = rng.uniform(low, high) * share * (0.55 if cadre.persona == "behind" and year == self.as_of.year else 1.0)
            records += self._online_year(cadre, rng, year, year_end, target, online_pool, online_weights, taken, recent)
            records += self._concentrated_year(cadre, rng, year, year_end, group, f2f_pool, f2f_weights, taken, recent)
        records.sort(key=lambda r: (r["date"], r.get("forCourse", ""), r.get("inClass", ""), r.get("viaPlatform", "")))
        return [
            {"type": "TrainingRecord", "id": f"record:{cadre.row['id'].split(':')[1]}-{number:03d}", **record}
            for number, record in enumerate(records, start=1)
        ]

    def _pick(self, pool: list[str], cumulative: list[float], rng: random.Random, taken: set[str], count: int) -> list[str]:
        """Up to ``count`` courses the cadre has not taken yet, drawn by interest × popularity."""
        chosen: list[str] = []
        if not pool or not cumulative or cumulative[-1] <= 0:
            return chosen
        for _ in range(count * 8):
            if len(chosen) == count:
                break
            course_id = _draw(pool, cumulative, rng)
            if course_id not in taken:
                taken.add(course_id)
                chosen.append(course_id)
        return chosen

    def _platform(self, rng: random.Random) -> str:
        if self.unrecognised_platforms and rng.random() < 0.06:
            return rng.choice(self.unrecognised_platforms)
        return rng.choice(self.recognised_platforms)

    def _online_year(self, cadre, rng, year, year_end, target, pool, cumulative, taken, recent) -> list[dict[str, Any]]:
        """Catalogue courses studied online (with minutes, crediting by the platform's rule), then the year's
        target as quarterly platform-certified totals (学时互认: recognised platforms exchange credited hours).

        The totals carry the whole target: the generator does not know what a platform's rule credits for a
        course (a tiered rule gives 1 学时 for a 2-学时 course), so subtracting course hours would leave an
        on-track persona short by an amount the persona never meant.  On-track cadres report only from recognised
        platforms; the others sometimes from an unrecognised app, whose hours do not count."""
        records: list[dict[str, Any]] = []
        days = max(1, (year_end - dt.date(year, 1, 1)).days)
        gamer_day = dt.date(year, 1, 1) + dt.timedelta(days=rng.randrange(days))
        for course_id in self._pick(pool, cumulative, rng, taken, rng.randint(4, 8) if recent else 1):
            course = self.catalogue.courses[course_id]
            gamer = cadre.persona == "gamer"
            date = gamer_day if gamer else dt.date(year, 1, 1) + dt.timedelta(days=rng.randrange(days))
            minutes = round(course["hours"] * 45 * (rng.uniform(2.0, 3.5) if gamer else rng.uniform(0.75, 1.25)))
            completed = rng.random() < 0.93
            records.append({
                "ofCadre": cadre.row["id"], "forCourse": course_id, "viaPlatform": course.get("onPlatform") or self._platform(rng),
                "mode": "网络自学", "date": date.isoformat(), "minutes": minutes, "completed": completed,
                "testPassed": completed and rng.random() < 0.7,
            })
        quarters = [q for q in range(1, 5) if dt.date(year, 3 * q, 28) <= year_end]
        for quarter in quarters:
            hours = round(target / len(quarters) * 2) / 2
            if hours > 0:
                platform = rng.choice(self.recognised_platforms) if cadre.persona == "on_track" else self._platform(rng)
                records.append({"ofCadre": cadre.row["id"], "viaPlatform": platform, "mode": "网络自学",
                                "date": dt.date(year, 3 * quarter, 28).isoformat(), "hours": hours, "completed": True})
        return records

    def _concentrated_year(self, cadre, rng, year, year_end, group, pool, cumulative, taken, recent) -> list[dict[str, Any]]:
        """A class (脱产培训), a few course-level sessions, and the year's 中心组学习 as one certified total."""
        records: list[dict[str, Any]] = []
        leader = "group:leadership-member" in cadre.row["inGroup"]
        scale = {"on_track": rng.uniform(1.0, 1.3), "behind": rng.uniform(0.3, 0.7), "narrow": rng.uniform(0.9, 1.2),
                 "gamer": rng.uniform(0.5, 0.9), "overdue": rng.uniform(0.8, 1.1)}[cadre.persona]
        target = _CONCENTRATED_PER_YEAR[group] * scale * ((year_end - dt.date(year, 1, 1)).days / 365)
        hours = 0.0
        classes = [c for c in self.catalogue.classes if c["startDate"][:4] == str(year) and c["endDate"] <= year_end.isoformat()]
        if classes and cadre.persona != "overdue" and rng.random() < (0.75 if leader else 0.45):
            klass = rng.choice(classes)
            start, end = dt.date.fromisoformat(klass["startDate"]), dt.date.fromisoformat(klass["endDate"])
            days = min((end - start).days + 1, 60)
            class_hours = sum(self.catalogue.courses[c]["hours"] for c in klass["includesCourse"] if c in self.catalogue.courses)
            records.append({"ofCadre": cadre.row["id"], "inClass": klass["id"], "mode": "集中培训", "situation": "脱产培训",
                            "date": klass["endDate"], "days": days, "hours": round(max(class_hours, days * 6.0), 1), "completed": True})
            hours += records[-1]["hours"]
            taken.update(klass["includesCourse"])
        days = max(1, (year_end - dt.date(year, 1, 1)).days)
        for course_id in self._pick(pool, cumulative, rng, taken, rng.randint(1, 3) if recent else 1):
            course = self.catalogue.courses[course_id]
            situation = rng.choice(["集中宣讲", "脱产培训", "网络专题培训"])
            date = dt.date(year, 1, 1) + dt.timedelta(days=rng.randrange(days))
            records.append({"ofCadre": cadre.row["id"], "forCourse": course_id, "mode": "集中培训", "situation": situation,
                            "date": date.isoformat(), "hours": course["hours"], "completed": True})
            hours += course["hours"]
        if target - hours >= 1:
            records.append({"ofCadre": cadre.row["id"], "mode": "集中培训", "situation": "中心组学习",
                            "date": year_end.isoformat(), "hours": round(target - hours), "completed": True})
        return records


_ONLINE_TARGET = {"on_track": (52, 75), "behind": (8, 38), "narrow": (45, 70), "gamer": (55, 80), "overdue": (48, 70)}
_CONCENTRATED_PER_YEAR = {"A": 115, "B": 92, "C": 40}


def _cumulative(weights: list[float]) -> list[float]:
    total, result = 0.0, []
    for w in weights:
        total += w
        result.append(total)
    return result


def _draw(pool: list[str], cumulative: list[float], rng: random.Random) -> str:
    return pool[min(bisect.bisect_left(cumulative, rng.random() * cumulative[-1]), len(pool) - 1)]


def write_cadres(generator: CadreGenerator, count: int, cadres_out: TextIO, records_out: TextIO, progress: Any = None) -> tuple[int, int]:
    """Stream ``count`` cadres and their records to two JSON Lines files; returns (cadres, records)."""
    n_records = 0
    for cadre, records in generator.cadres(count):
        cadres_out.write(json.dumps(cadre, ensure_ascii=False) + "\n")
        for record in records:
            records_out.write(json.dumps(record, ensure_ascii=False) + "\n")
        n_records += len(records)
        if progress is not None:
            progress.update(1)
    return count, n_records
