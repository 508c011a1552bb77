"""Scale mode: a large synthetic catalogue and population for benchmarks, streamed to disk.

Course texts here are assembled from the topic scheme's labels — fine for timing, not for reading.  The
cadres and their personas come from the same generator as the sample; only the record sampler is lighter
(topic by interest, then a course of that topic), because weighing 100,000 courses per cadre would make a
million cadres take hours.
"""

from __future__ import annotations

import datetime as dt
import json
import random
import shutil
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from tqdm import tqdm

from corpora.cadres import AS_OF, Catalogue, CadreGenerator, _cumulative, _draw, write_cadres
from kg.ontology import Ontology

__all__ = ["write_scale_corpus"]

_COURSE_TYPES = [("专题课", "面授", ["讲授"]), ("案例课", "面授", ["案例式", "研讨式"]), ("网络课程", "网络", ["讲授"]),
                 ("现场教学", "面授", ["现场教学", "体验式"])]
_LECTURERS = ["专职教师", "领导干部", "专家学者", "基层干部", "先进典型"]


def _synthetic_courses(ontology: Ontology, count: int, institutions: list[str], platforms: list[str], seed: int) -> Iterator[dict[str, Any]]:
    nodes, _ = ontology.concept_graph()
    topics = [n for n in nodes if n.label == "Topic"]
    rng = random.Random(f"scale-courses:{seed}")
    for index in range(count):
        topic = rng.choice(topics)
        second = rng.choice(topics)
        course_type, mode, methods = rng.choice(_COURSE_TYPES)
        created = dt.date(2019, 1, 1) + dt.timedelta(days=rng.randrange(2800))
        modified = created + dt.timedelta(days=rng.randrange(max(1, (AS_OF - created).days)))
        row = {
            "type": "Course", "id": f"course:s{index:07d}",
            "name": f"{topic.props['name']}（第 {index % 97 + 1} 讲）",
            "description": f"围绕{topic.props['name']}，结合{second.props['name']}开展{course_type}教学。{topic.props.get('definition', '')}",
            "courseType": course_type, "deliveryMode": mode, "teachingMethod": methods,
            "lecturerType": rng.choice(_LECTURERS), "hours": rng.choice([0.5, 1, 2, 3]) if mode == "网络" else rng.choice([2, 3, 4]),
            "isCase": course_type == "案例课", "status": "已发布" if rng.random() < 0.9 else rng.choice(["草稿", "审核中", "已退出"]),
            "version": 1 if modified == created else rng.randint(2, 4),
            "dateCreated": created.isoformat(), "dateModified": modified.isoformat(),
            "rating": round(rng.uniform(3.2, 4.9), 1), "ratingCount": rng.randint(20, 3000),
            "completionRate": round(rng.uniform(0.55, 0.99), 2), "enrolments": rng.randint(50, 50000),
            "expertScore": rng.randint(60, 98), "politicalReview": True, "qualityReview": True,
            "covers": sorted({topic.id, second.id}), "offeredBy": rng.choice(institutions),
        }
        if mode == "网络":
            row["onPlatform"] = rng.choice(platforms)
        yield row


class _ScaleGenerator(CadreGenerator):
    """Same cadres and personas; records drawn topic-first so each cadre costs the same at any catalogue size."""

    def __init__(self, *args: Any, records_per_cadre: int = 20, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.records_per_cadre = records_per_cadre
        self.platform_ids = sorted(self.catalogue.platforms)

    def _records(self, cadre, rng: random.Random) -> list[dict[str, Any]]:
        if cadre.persona == "new_recruit":
            return []
        topics = [t for t in self.topics if t in self.catalogue.by_topic]
        cumulative = _cumulative([cadre.interests.get(t, 0.0) for t in topics])
        records = []
        for number in range(1, self.records_per_cadre + 1):
            course_id = rng.choice(self.catalogue.by_topic[_draw(topics, cumulative, rng)])
            course = self.catalogue.courses[course_id]
            date = dt.date(2023, 1, 1) + dt.timedelta(days=rng.randrange((self.as_of - dt.date(2023, 1, 1)).days))
            record = {"type": "TrainingRecord", "id": f"record:{cadre.row['id'][6:]}-{number:03d}", "ofCadre": cadre.row["id"],
                      "forCourse": course_id, "date": date.isoformat(), "completed": rng.random() < 0.93}
            if course["deliveryMode"] == "网络":
                record |= {"mode": "网络自学", "viaPlatform": course.get("onPlatform") or rng.choice(self.platform_ids),
                           "minutes": round(course["hours"] * 45 * rng.uniform(0.8, 1.2)), "testPassed": rng.random() < 0.7}
            else:
                record |= {"mode": "集中培训", "situation": rng.choice(["脱产培训", "中心组学习", "集中宣讲"]), "hours": course["hours"]}
            records.append(record)
        return records


def write_scale_corpus(ontology: Ontology, sample_dir: Path, out: Path, courses: int, cadres: int,
                       records_per_cadre: int, seed: int) -> dict[str, int]:
    """Write institutions (copied from the sample), synthetic courses, cadres and records into ``out``."""
    out.mkdir(parents=True, exist_ok=True)
    shutil.copyfile(sample_dir / "institutions.jsonl", out / "institutions.jsonl")
    base = [json.loads(line) for line in (out / "institutions.jsonl").open(encoding="utf-8") if line.strip()]
    institutions = sorted(r["id"] for r in base if r["type"] == "Institution")
    platforms = {r["id"]: r for r in base if r["type"] == "Platform"}
    by_topic: dict[str, list[str]] = {}
    light: dict[str, dict[str, Any]] = {}
    with (out / "courses.jsonl").open("w", encoding="utf-8") as handle:
        for row in tqdm(_synthetic_courses(ontology, courses, institutions, sorted(platforms), seed), total=courses, desc="生成课程", unit="门"):
            handle.write(json.dumps(row, ensure_ascii=False) + "\n")
            if row["status"] == "已发布":
                light[row["id"]] = {"hours": row["hours"], "deliveryMode": row["deliveryMode"], "onPlatform": row.get("onPlatform")}
                for topic in row["covers"]:
                    by_topic.setdefault(topic, []).append(row["id"])
    catalogue = Catalogue(courses=light, by_topic=by_topic, online=[], face_to_face=[], platforms=platforms, classes=[], institutions={})
    generator = _ScaleGenerator(ontology, catalogue, seed=seed, records_per_cadre=records_per_cadre)
    with (out / "cadres.jsonl").open("w", encoding="utf-8") as c_out, (out / "records.jsonl").open("w", encoding="utf-8") as r_out, \
            tqdm(total=cadres, desc="生成干部与记录", unit="人") as bar:
        _, n_records = write_cadres(generator, cadres, c_out, r_out, bar)
    return {"courses": courses, "cadres": cadres, "records": n_records}
