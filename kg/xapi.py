"""Study records as xAPI statements, the format learning platforms and LRSs speak.

Import: a ``.json`` file holding an array of statements (or ``{"statements": [...]}`` as an LRS answers, or one
statement) is checked statement by statement with ralph-malph's pydantic models of xAPI 1.0.3 — not with
hand-written checks — and each statement whose verb makes a record (``import_profiles.yaml`` ``xapi.verbs``)
becomes one 培训记录 row: actor → cadre, object → course, verb and result → completed / test passed, duration →
minutes, the platform id in context.extensions, else the name in context.platform → the platform (so that 学时互认 credits each record by its own platform's rule),
timestamp → the date in Beijing time.  The rows then go through the same validation as any file, so a statement
naming a cadre or course the graph does not hold is reported with its file and ordinal, never dropped.
Statements with other verbs (launched, initialized …) are counted in the file's note and skipped.

Export: :func:`record_statements` writes every record back as a statement; the record's id and the fields xAPI
has no place for (mode, hours, days, situation, class) travel in ``context.extensions`` under this ontology's
property IRIs, so an export imported again gives the same graph.
"""

from __future__ import annotations

import datetime as dt
import json
import uuid
from collections import Counter
from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import yaml
from pydantic import ValidationError

from kg.encodings import UndecodableFile, decode_text
from kg.model import Edge, Node
from kg.ontology import GX, ONTOLOGY_DIR, Ontology

__all__ = ["RECORD_CLASS", "XapiRead", "read_statements", "record_statements"]

RECORD_CLASS = "TrainingRecord"
#: Record fields carried in context.extensions (xAPI has no place of its own for them).  The platform's id travels
#: there too: context.platform holds only a name, and two platforms may share one; on import the id wins.
_EXTENSION_FIELDS = ("mode", "hours", "days", "situation", "inClass", "viaPlatform")
_RECORD_ID = str(GX["recordId"])


def _config(directory: Path = ONTOLOGY_DIR) -> dict[str, Any]:
    return yaml.safe_load((directory / "import_profiles.yaml").read_text(encoding="utf-8"))["xapi"]


class XapiRead:
    """The rows of one statements file (``(ordinal, data | None, problem)``) and its note."""

    def __init__(self) -> None:
        self.rows: list[tuple[int, dict[str, Any] | None, str | None]] = []
        self.note = ""


def _statements(path: Path) -> list[Any]:
    """The statements of a file; nesting deeper than the JSON parser's recursion limit is a ValueError (a
    problem of the file), not an uncaught RecursionError."""
    text = decode_text(path.read_bytes(), ("utf_8",)).text
    try:
        data = json.loads(text) if text.strip() else []
    except RecursionError:
        raise ValueError("JSON 嵌套层数过深，无法读取；xAPI 陈述不会有这样深的嵌套") from None
    if isinstance(data, dict):
        data = data.get("statements", [data]) if "statements" in data or "verb" in data else [data]
    if not isinstance(data, list):
        raise ValueError("应为 xAPI 陈述的数组，或含 statements 数组的对象")
    return data


def _pydantic_problem(exc: ValidationError) -> str:
    first = exc.errors()[0]
    where = ".".join(str(p) for p in first["loc"] if not str(p).startswith("Base"))
    return f"不是合法的 xAPI 陈述：{where or '（整体）'} {first['msg']}（共 {exc.error_count()} 处）"


def read_statements(path: Path, ontology: Ontology) -> XapiRead:
    """One statements file as record rows; a file that is not JSON at all is one problem at ordinal 0."""
    from ralph.models.xapi.base.statements import BaseXapiStatement

    cfg = _config()
    verbs: dict[str, dict[str, Any]] = cfg["verbs"]
    zone = ZoneInfo(cfg["timezone"])
    out = XapiRead()
    try:
        statements = _statements(path)
    except (UndecodableFile, ValueError) as exc:
        what = f"不是合法的 JSON（{exc.msg}，第 {exc.lineno} 行）" if isinstance(exc, json.JSONDecodeError) else str(exc)
        out.rows.append((0, None, what))
        return out
    if not statements:
        out.rows.append((0, None, "文件中没有任何 xAPI 陈述"))
        return out
    skipped: Counter[str] = Counter()
    for ordinal, raw in enumerate(statements, start=1):
        if not isinstance(raw, dict):
            out.rows.append((ordinal, None, f"应为一个 JSON 对象（xAPI 陈述），实际为 {type(raw).__name__}"))
            continue
        try:
            statement = BaseXapiStatement.model_validate(raw)
        except ValidationError as exc:
            out.rows.append((ordinal, None, _pydantic_problem(exc)))
            continue
        verb = str(statement.verb.id)
        if verb not in verbs:
            skipped[verb.rsplit("/", 1)[-1]] += 1
            continue
        out.rows.append((ordinal, *_record(statement, raw, verbs[verb], ontology, zone)))
    made = sum(1 for _, data, _ in out.rows if data is not None)
    out.note = f"{path.name}：xAPI 陈述 {len(statements)} 条，生成培训记录 {made} 条"
    if skipped:
        out.note += "；跳过不计学时的陈述 " + "、".join(f"{v} {n} 条" for v, n in sorted(skipped.items()))
    return out


def _record(statement: Any, raw: Mapping[str, Any], verb: Mapping[str, Any], ontology: Ontology,
            zone: ZoneInfo) -> tuple[dict[str, Any] | None, str | None]:
    account = getattr(statement.actor, "account", None)
    if account is None:
        return None, "actor 应以 account（平台账号，name 为干部编号）标识学员；mbox、openid 无法对应到干部"
    cadre = str(account.name)
    row: dict[str, Any] = {"type": RECORD_CLASS, "ofCadre": cadre if cadre.startswith("cadre:") else f"cadre:{cadre}"}
    target = ontology.id_of(str(getattr(statement.object, "id", "")))
    if target is not None and target.startswith("course:"):
        row["forCourse"] = target
    elif target is None or not target.startswith(("record:", "class:", "platform:")):
        return None, f"object.id『{getattr(statement.object, 'id', '')}』不是本图谱中课程的 IRI（应为 {ontology.iri('course:编号')}）"
    row.update({k: v for k, v in verb.items() if k in ("completed", "testPassed")})
    result = statement.result
    if result is not None:
        if result.completion is not None:
            row["completed"] = bool(result.completion)
        if result.success is not None:
            row["testPassed"] = bool(result.success)
        if result.duration is not None:
            row["minutes"] = round(result.duration.total_seconds() / 60, 2)
    context = statement.context
    extensions: Mapping[str, Any] = (raw.get("context") or {}).get("extensions") or {}
    if context is not None and context.platform:
        row["viaPlatform"] = str(context.platform)
    for name in _EXTENSION_FIELDS:
        value = extensions.get(str(GX[name]))
        if value is not None:
            row[name] = value
    # a statement is online study unless its extensions say otherwise; the mode's wording is rules.yaml's
    row.setdefault("mode", ontology.rules_section("vocabulary")["record_modes"]["roles"]["online"])
    when = statement.timestamp or statement.stored
    if when is None:
        return None, "缺少 timestamp（学习时间），无法确定完成日期"
    row["date"] = (when if when.tzinfo else when.replace(tzinfo=zone)).astimezone(zone).date().isoformat()
    record_id = extensions.get(_RECORD_ID)
    row["id"] = str(record_id) if record_id else f"record:xapi-{statement.id}" if statement.id else None
    return row, None


def record_statements(nodes: Iterable[Node], edges: Iterable[Edge], ontology: Ontology,
                      platform_names: Mapping[str, str]) -> list[dict[str, Any]]:
    """xAPI statements (as JSON-ready dicts, each validated with ralph's model) of the training records given;
    ``platform_names`` maps platform ids to the names written in ``context.platform``."""
    from ralph.models.xapi.base.statements import BaseXapiStatement

    cfg = _config()
    verbs = cfg["export_verbs"]
    rel = {ontology.relationship_types[f]: f for f in ("ofCadre", "forCourse", "viaPlatform", "inClass")}
    links: dict[str, dict[str, str]] = {}
    for e in edges:
        if e.type in rel:
            links.setdefault(e.src, {})[rel[e.type]] = e.dst
    out = []
    for node in nodes:
        if node.label != RECORD_CLASS:
            continue
        p, linked = node.props, links.get(node.id, {})
        passed, completed = p.get("testPassed"), bool(p.get("completed"))
        verb = verbs["passed"] if passed else verbs["failed"] if passed is False and completed else \
            verbs["completed"] if completed else verbs["attempted"]
        result: dict[str, Any] = {"completion": completed}
        if passed is not None:
            result["success"] = bool(passed)
        if p.get("minutes") is not None:
            result["duration"] = f"PT{round(float(p['minutes']) * 60)}S"
        extensions: dict[str, Any] = {_RECORD_ID: node.id}
        for name in _EXTENSION_FIELDS:
            value = linked.get(name, p.get(name))
            if value is not None:
                extensions[str(GX[name])] = value
        context: dict[str, Any] = {"extensions": extensions}
        if "viaPlatform" in linked:
            context["platform"] = platform_names.get(linked["viaPlatform"], linked["viaPlatform"])
        target = linked.get("forCourse") or node.id
        statement = {
            "id": str(uuid.uuid5(uuid.NAMESPACE_URL, str(ontology.iri(node.id)))),
            "actor": {"objectType": "Agent", "account": {"homePage": cfg["home_page"], "name": linked.get("ofCadre", "")}},
            "verb": {"id": verb, "display": {"zh-CN": cfg["verbs"][verb]["name"]}},
            "object": {"objectType": "Activity", "id": str(ontology.iri(target))},
            "result": result,
            "context": context,
            "timestamp": dt.datetime.fromisoformat(f"{p['date']}T00:00:00+08:00").isoformat(),
        }
        BaseXapiStatement.model_validate(statement)
        out.append(statement)
    return out
