"""A first load of an empty Neo4j database through Neo4j's own bulk importer, ``neo4j-admin database import full``.

Why: the importer writes the store files directly, with no transactions, and loads several times faster than any
Bolt writer (``kg sync`` writes only differences, which is right for every later sync, not for the first one).
It needs the database stopped and empty, so it is a first-load tool: :func:`first_load` refuses a database that
holds any node.

What it writes, from the source store (the embedded one), into one directory:

* node files per class and property set, ``nodes-<Class>-<n>.csv``: ``id:ID``, ``:LABEL`` (the class and
  :data:`~kg.cypher.NODE_LABEL`), one typed column per property (``long``, ``double``, ``boolean``, ``string`` and
  their arrays, typed from the values themselves, so 1 and 1.0 stay apart as they do through Bolt) and the content
  hash :data:`~kg.cypher.HASH_PROPERTY` that later syncs compare; one file per property set means no row has an
  empty cell, so an empty cell never has to mean "absent";
* relationship files per type and property set, ``relationships-<TYPE>-<n>.csv``: ``:START_ID``, ``:END_ID``,
  ``:TYPE`` and the properties;
* the bookkeeping node with the graph's version stamp, raised by one;
* ``import.args``: the importer's arguments, one a line.  Every cell is quoted (quotes doubled, RFC 4180), arrays
  are joined with U+001F, which no text in a list may contain, and files with a line break in a value are named
  to ``--multiline-fields`` (that mode is slow, so only those).

A value CSV cannot carry (an empty list: an empty array cell imports as no property) is left out of the files and
set through Bolt after the import.  Constraints and indexes are created after the import, by opening the store
(the same statements :mod:`kg.cypher` gives every connect).

Who stops the server: with the development server, ``scripts/neo4j-dev import DIR`` (stop, import, start;
Community Neo4j has one user database and no ``STOP DATABASE``).  :func:`local_server` says whether that script
runs the server at ``NEO4J_URI``; for any other server the operator runs the importer (README, "Neo4j 后端").
"""

from __future__ import annotations

import csv
import math
import os
import re
import shutil
import subprocess
import time
from collections import Counter, defaultdict
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO, Any
from urllib.parse import urlsplit

from tqdm import tqdm

from kg.config import REPO_ROOT, Settings
from kg.cypher import HASH_PROPERTY, META_KEY, META_LABEL, NODE_LABEL
from kg.model import Edge, Node
from kg.ontology import Ontology
from kg.store.base import Store, StoreError
from kg.store.neo4j import Neo4jStore, edge_hash, node_hash
from kg.sync import SyncReport

__all__ = ["ImportFiles", "ImportUnsupported", "LocalServer", "first_load", "local_server", "write_import_files"]

ARRAY_DELIMITER = "\x1f"
"""Between the elements of an array cell (and the labels of ``:LABEL``): the unit separator, never in real text."""

_PROPERTY = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*$")  # a header names it as name:type, so no ':' or ','
_LONG = range(-(2**63), 2**63)
_LOCAL_HOSTS = {"127.0.0.1", "localhost", "::1"}
_SCRIPT = REPO_ROOT / "scripts" / "neo4j-dev"
_TOOL_SECONDS = re.compile(r"neo4j-admin import seconds: ([0-9.]+)")


class ImportUnsupported(StoreError):
    """A graph the CSV files cannot carry exactly (the message names the node or edge and the property)."""


@dataclass
class ImportFiles:
    """What :func:`write_import_files` wrote: the directory, the importer's arguments and the counts."""

    directory: Path
    args: list[str]
    nodes: Counter[str] = field(default_factory=Counter)
    edges: Counter[str] = field(default_factory=Counter)
    node_patches: dict[str, list[dict[str, Any]]] = field(default_factory=dict)  # label → rows for patch_nodes
    edge_patches: dict[str, list[dict[str, Any]]] = field(default_factory=dict)  # type → rows for patch_edges
    seconds: float = 0.0

    def command(self, database: str = "neo4j") -> str:
        """The command an operator runs in :attr:`directory` on the database server (the database stopped)."""
        return " ".join(["neo4j-admin database import full", database, "--overwrite-destination=true", *self.args])


def _kind(owner: str, key: str, value: Any) -> str | None:
    """The CSV column type of a value (``long``, ``double[]`` …); None for an empty list, which is patched."""
    if isinstance(value, bool):
        return "boolean"
    if isinstance(value, int):
        if value not in _LONG:
            raise ImportUnsupported(f"{owner} 的属性『{key}』超出 64 位整数范围：{value}")
        return "long"
    if isinstance(value, float):
        return "double"
    if isinstance(value, str):
        return "string"
    if isinstance(value, (list, tuple)):
        if not value:
            return None
        kinds = {_kind(owner, key, v) for v in value}
        if len(kinds) != 1 or next(iter(kinds)).endswith("[]"):
            raise ImportUnsupported(f"{owner} 的属性『{key}』是混合类型或嵌套的列表")
        return f"{kinds.pop()}[]"
    raise ImportUnsupported(f"{owner} 的属性『{key}』的值类型为 {type(value).__name__}：CSV 无法表示")


def _float(value: float) -> str:
    if math.isnan(value):
        return "NaN"
    if math.isinf(value):
        return "Infinity" if value > 0 else "-Infinity"
    return repr(value)


def _cell(owner: str, key: str, value: Any) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, float):
        return _float(value)
    if isinstance(value, (list, tuple)):
        cells = [_cell(owner, key, v) for v in value]
        if any(ARRAY_DELIMITER in c for c in cells):
            raise ImportUnsupported(f"{owner} 的属性『{key}』的列表元素含有分隔符 U+001F")
        return ARRAY_DELIMITER.join(cells)
    return str(value)


_HEADER_SAFE: set[str] = set()  # property names already matched against _PROPERTY


def _columns(owner: str, props: Mapping[str, Any]) -> tuple[tuple[tuple[str, str], ...], dict[str, Any]]:
    """The (name, type) columns of the properties CSV can carry, sorted, and those it cannot (to patch)."""
    columns, patch = [], {}
    for key in sorted(props):
        if key not in _HEADER_SAFE:
            if not _PROPERTY.match(key):
                raise ImportUnsupported(f"{owner} 的属性名『{key}』不能写进 CSV 表头")
            _HEADER_SAFE.add(key)
        kind = _kind(owner, key, props[key])
        if kind is None:
            patch[key] = props[key]
        else:
            columns.append((key, kind))
    return tuple(columns), patch


class _Files:
    """One open CSV writer per (kind, name, column set); remembers which files hold a line break."""

    def __init__(self, directory: Path) -> None:
        self.directory = directory
        self.open: dict[tuple[str, str, tuple], tuple[IO[str], Any, str]] = {}
        self.numbers: Counter[tuple[str, str]] = Counter()
        self.multiline: set[str] = set()
        self.order: list[tuple[str, str]] = []  # (--nodes / --relationships, file name) in creation order

    def writer(self, kind: str, name: str, columns: tuple, header: list[str]) -> tuple[Any, str]:
        key = (kind, name, columns)
        if key not in self.open:
            number = self.numbers[(kind, name)]
            self.numbers[(kind, name)] += 1
            file_name = f"{kind}-{name}-{number}.csv"
            handle = (self.directory / file_name).open("w", encoding="utf-8", newline="")
            handle.write(",".join(header) + "\n")  # names checked against _PROPERTY: nothing to quote
            self.open[key] = (handle, csv.writer(handle, quoting=csv.QUOTE_ALL, lineterminator="\n"), file_name)
            self.order.append((kind, file_name))
        _handle, writer, file_name = self.open[key]
        return writer, file_name

    def row(self, kind: str, name: str, columns: tuple, header: list[str], cells: list[str]) -> None:
        writer, file_name = self.writer(kind, name, columns, header)
        if file_name not in self.multiline and any("\n" in c or "\r" in c for c in cells):
            self.multiline.add(file_name)
        writer.writerow(cells)

    def close(self) -> None:
        for handle, _writer, _name in self.open.values():
            handle.close()


def _header(columns: Iterable[tuple[str, str]]) -> list[str]:
    return [f"{key}:{kind}" for key, kind in columns]


def write_import_files(source: Store, directory: Path, *, version: int = 1, progress: bool = False) -> ImportFiles:
    """Write ``source``'s whole graph as the importer's CSV files into ``directory`` (emptied first), the
    bookkeeping node stamped ``version``; see the module docstring for the layout.  A directory that holds
    anything but an earlier import (no ``import.args``) is refused, not emptied."""
    started = time.perf_counter()
    if directory.exists():
        if any(directory.iterdir()) and not (directory / "import.args").exists():
            raise StoreError(f"目录 {directory} 不是空的，也不是先前写出的导入目录：请换一个目录")
        shutil.rmtree(directory)
    directory.mkdir(parents=True)
    total = sum(source.node_counts().values()) + sum(source.edge_counts().values())
    result = ImportFiles(directory, [])
    node_patches: dict[str, list[dict[str, Any]]] = defaultdict(list)
    edge_patches: dict[str, list[dict[str, Any]]] = defaultdict(list)
    files = _Files(directory)
    try:
        with tqdm(total=total, desc="写出 CSV", unit="条", disable=not progress) as bar:
            for node in source.nodes():
                _node_row(node, files, result.nodes, node_patches)
                bar.update()
            for edge in source.edges():
                _edge_row(edge, files, result.edges, edge_patches)
                bar.update()
        files.row("nodes", "meta", (), ["key", "version:long", ":LABEL"], [META_KEY, str(version), META_LABEL])
    finally:
        files.close()
    result.args = [f"--array-delimiter=U+{ord(ARRAY_DELIMITER):04X}", "--bad-tolerance=0"]
    result.args += [f"--{kind}={name}" for kind, name in files.order]
    if files.multiline:
        result.args += ["--multiline-fields-format=v2", f"--multiline-fields={','.join(sorted(files.multiline))}"]
    (directory / "import.args").write_text("\n".join(result.args) + "\n", encoding="utf-8")
    result.node_patches, result.edge_patches = dict(node_patches), dict(edge_patches)
    result.seconds = time.perf_counter() - started
    return result


def _node_row(node: Node, files: _Files, counts: Counter[str], patches: dict[str, list[dict[str, Any]]]) -> None:
    owner = f"节点 {node.id}"
    columns, patch = _columns(owner, node.props)
    header = ["id:ID", ":LABEL", *_header(columns), f"{HASH_PROPERTY}:long"]
    cells = [node.id, f"{node.label}{ARRAY_DELIMITER}{NODE_LABEL}"]
    cells += [_cell(owner, key, node.props[key]) for key, _kind_ in columns]
    # the hash of what the file holds: a node still to be patched does not look synced to a later kg sync
    written = {key: node.props[key] for key, _kind_ in columns}
    cells.append(str(node_hash(node.label, written)))
    files.row("nodes", node.label, columns, header, cells)
    counts[node.label] += 1
    if patch:
        patches[node.label].append({"id": node.id, "props": {**patch, HASH_PROPERTY: node_hash(node.label, node.props)}})


_BARE_EDGE = [":START_ID", ":END_ID", ":TYPE"]


def _edge_row(edge: Edge, files: _Files, counts: Counter[str], patches: dict[str, list[dict[str, Any]]]) -> None:
    counts[edge.type] += 1
    if not edge.props:  # most relationships: three cells, no hash
        files.row("relationships", edge.type, ((), False), _BARE_EDGE, [edge.src, edge.dst, edge.type])
        return
    owner = f"关系 {edge.src} -[{edge.type}]-> {edge.dst}"
    columns, patch = _columns(owner, edge.props)
    hashed = edge_hash({key: edge.props[key] for key, _kind_ in columns})  # as for nodes: what the file holds
    header = [*_BARE_EDGE, *_header(columns)] + ([f"{HASH_PROPERTY}:long"] if hashed is not None else [])
    cells = [edge.src, edge.dst, edge.type, *(_cell(owner, key, edge.props[key]) for key, _kind_ in columns)]
    if hashed is not None:
        cells.append(str(hashed))
    files.row("relationships", edge.type, (columns, hashed is not None), header, cells)
    if patch:
        patches[edge.type].append({"src": edge.src, "dst": edge.dst, "props": {**patch, HASH_PROPERTY: edge_hash(edge.props)}})


# ─────────────────────────────── the server that can be stopped ───────────────────────────────


@dataclass(frozen=True)
class LocalServer:
    """The development server ``scripts/neo4j-dev`` runs on this machine at the port of ``NEO4J_URI``: the one
    server a first load may stop.  The script's own settings (``GANXUN_NEO4J_HOME``, ``GANXUN_NEO4J_STATE`` …)
    come from ``environment`` (the process's when :func:`local_server` is given none), the port and password from
    the connection settings."""

    port: int
    password: str | None
    environment: Mapping[str, str] = field(default_factory=dict)

    def _env(self) -> dict[str, str]:
        env = {**self.environment, "NEO4J_BOLT_PORT": str(self.port)}
        if self.password is not None:
            env["NEO4J_PASSWORD"] = self.password  # the restarted server keeps the password the client uses
        return env

    def _run(self, *args: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run([str(_SCRIPT), *args], env=self._env(), capture_output=True, text=True, check=False)

    def manages(self) -> bool:
        return _SCRIPT.exists() and self._run("import", "/", "--check").returncode == 0

    def stop(self) -> subprocess.Popen[str]:
        """Begin stopping the server (it takes seconds; the caller writes the CSV files meanwhile)."""
        return subprocess.Popen([str(_SCRIPT), "stop"], env=self._env(), stdout=subprocess.DEVNULL,
                                stderr=subprocess.PIPE, text=True)

    def start(self) -> None:
        done = self._run("start")
        if done.returncode != 0:
            raise StoreError(f"scripts/neo4j-dev start 失败：{_last_line(done.stderr)}")

    def load(self, directory: Path) -> float:
        """Import ``directory`` with the server stopped and start it again; returns the importer's own seconds."""
        done = self._run("import", str(directory))
        if done.returncode != 0:
            raise StoreError(f"neo4j-admin 导入失败（日志 {directory / 'import.log'}）：{_last_line(done.stderr)}")
        found = _TOOL_SECONDS.search(done.stderr)
        return float(found.group(1)) if found else math.nan


def _last_line(text: str) -> str:
    lines = [line for line in text.strip().splitlines() if line.strip()]
    return lines[-1] if lines else "（无输出）"


def local_server(settings: Settings, environment: Mapping[str, str] | None = None) -> LocalServer | None:
    """The :class:`LocalServer` at ``NEO4J_URI`` when ``scripts/neo4j-dev`` runs it here, else None (a remote
    server, or one this project did not start: nothing here may stop it)."""
    parts = urlsplit(settings.neo4j_uri)
    if parts.hostname not in _LOCAL_HOSTS:
        return None
    server = LocalServer(parts.port or 7687, settings.neo4j_password, dict(os.environ if environment is None else environment))
    return server if server.manages() else None


def first_load(
    source: Store,
    settings: Settings,
    ontology: Ontology,
    *,
    server: LocalServer,
    directory: Path | None = None,
    keep: bool = False,
    progress: bool = False,
) -> SyncReport:
    """Load ``source`` into the empty database at ``NEO4J_URI`` with ``neo4j-admin``, then create the schema and
    set what CSV could not carry.  ``phases``: ``csv`` (writing the files, while the server stops), ``import``
    (the importer's own run), ``restart`` (the rest of stopping and starting the server), ``schema`` (constraints
    and indexes, awaited), ``patch``.  The files go to ``directory`` (default ``$GANXUN_HOME/neo4j-import``) and
    are removed afterwards unless ``keep``."""
    started = time.perf_counter()
    directory = directory or settings.home / "neo4j-import"
    with Neo4jStore.from_settings(settings, ontology) as target:
        if target.node_total():
            raise StoreError(
                f"Neo4j 数据库『{settings.neo4j_database}』不是空的：neo4j-admin 只能载入空数据库，请用 python -m kg sync 增量同步"
            )
        report = SyncReport(source.node_counts(), source.edge_counts(), target.node_counts(), target.edge_counts(),
                            method="import")
        version = target.version() + 1
    stopping = server.stop()
    clock = time.perf_counter()
    try:
        files = write_import_files(source, directory, version=version, progress=progress)
    except BaseException:
        stopping.wait()
        server.start()
        raise
    report.phases["csv"] = time.perf_counter() - clock
    if stopping.wait() != 0:
        raise StoreError(f"scripts/neo4j-dev stop 失败：{_last_line(stopping.stderr.read() if stopping.stderr else '')}")
    clock = time.perf_counter()
    report.phases["import"] = server.load(directory)
    report.phases["restart"] = time.perf_counter() - clock - report.phases["import"]
    clock = time.perf_counter()
    with Neo4jStore.from_settings(settings, ontology).open() as target:  # opening creates constraints and indexes
        report.phases["schema"], clock = time.perf_counter() - clock, time.perf_counter()
        for label, rows in sorted(files.node_patches.items()):
            for start in range(0, len(rows), target.batch_size):
                target.write_delta("patch_nodes", label, rows[start : start + target.batch_size])
        for rel, rows in sorted(files.edge_patches.items()):
            for start in range(0, len(rows), target.batch_size):
                target.write_delta("patch_edges", rel, rows[start : start + target.batch_size])
        report.phases["patch"] = time.perf_counter() - clock
        report.after_nodes, report.after_edges = target.node_counts(), target.edge_counts()
    report.changes.update(nodes_created=sum(files.nodes.values()), relationships_created=sum(files.edges.values()))
    if not keep:
        shutil.rmtree(directory, ignore_errors=True)
    report.seconds = time.perf_counter() - started
    return report
