"""``python -m kg``: build, validate, import, inspect and export the knowledge graph."""

from __future__ import annotations

import sys
import time
from pathlib import Path

import click

from kg.build import BuildFailed, build_graph, corpus_files, import_files, load_files
from kg.config import Settings
from kg.ontology import load_ontology
from kg.rdf import FORMATS, graph_from_rdf, graph_to_rdf, serialize
from kg.store import STORES, StoreError, open_store


def _fail(message: str) -> None:
    click.echo(message, err=True)
    sys.exit(1)


def _report_issues(exc: BuildFailed) -> None:
    for issue in exc.issues:
        click.echo(f"  ✗ {issue}", err=True)
    _fail(str(exc))


def _print_counts(title: str, counts: dict[str, int], labels: dict[str, str]) -> None:
    click.echo(title)
    for key, value in sorted(counts.items(), key=lambda kv: (-kv[1], kv[0])):
        click.echo(f"  {labels.get(key, key):<12} {key:<18} {value:>9,}")


@click.group()
@click.option("--store", "store_name", type=click.Choice(STORES), default=None, help="存储后端（默认取 GANXUN_STORE，缺省为 embedded）")
@click.pass_context
def main(ctx: click.Context, store_name: str | None) -> None:
    """干训知识图谱：构建、校验、导入、统计与导出。"""
    ctx.obj = {"store": store_name, "settings": Settings.from_env()}


def _open(ctx: click.Context):
    try:
        return open_store(ctx.obj["store"], ctx.obj["settings"])
    except StoreError as exc:
        _fail(f"无法打开存储：{exc}")


@main.command()
@click.option("--corpus", "corpora", multiple=True, type=click.Path(path_type=Path), help="语料目录或文件（可多次给出；默认为样例目录与生成目录）")
@click.pass_context
def build(ctx: click.Context, corpora: tuple[Path, ...]) -> None:
    """用本体的主题体系与全部语料重建图谱（全部通过校验才写入）。"""
    settings: Settings = ctx.obj["settings"]
    ontology = load_ontology()
    started = time.perf_counter()
    with _open(ctx) as store:
        try:
            report = build_graph(store, corpora or settings.corpora, ontology, progress=True)
        except BuildFailed as exc:
            _report_issues(exc)
        labels = {c.name: c.label for c in ontology.classes.values()}
        click.echo(f"已构建：{len(report.files)} 个文件，{len(report.nodes):,} 个节点，{len(report.edges):,} 条关系，"
                   f"用时 {time.perf_counter() - started:.1f} 秒（存储：{store.name}）")
        _print_counts("节点：", store.node_counts(), labels)


@main.command()
@click.argument("paths", nargs=-1, type=click.Path(exists=True, path_type=Path))
@click.option("--type", "default_type", default=None, help="CSV/XLSX 没有 type 列时，所有行的类（如 Course）")
def validate(paths: tuple[Path, ...], default_type: str | None) -> None:
    """只校验、不写入：报告每个文件的全部问题。"""
    settings = Settings.from_env()
    ontology = load_ontology()
    files = corpus_files(paths or settings.corpora)
    concept_nodes, _ = ontology.concept_graph()
    result = load_files(files, ontology, {n.id: n.label for n in concept_nodes}.get, default_type, progress=True)
    if not result.ok:
        _report_issues(BuildFailed(result.issues))
    click.echo(f"校验通过：{len(files)} 个文件，{len(result.nodes):,} 个节点，{len(result.edges):,} 条关系")


@main.command(name="import")
@click.argument("paths", nargs=-1, required=True, type=click.Path(exists=True, path_type=Path))
@click.option("--type", "default_type", default=None, help="CSV/XLSX 没有 type 列时，所有行的类（如 Course）")
@click.option("--profile", default=None, help="CSV/XLSX 的列映射配置（ontology/import_profiles.yaml；默认按表头自动识别）")
@click.pass_context
def import_(ctx: click.Context, paths: tuple[Path, ...], default_type: str | None, profile: str | None) -> None:
    """把文件合并进现有图谱（全部通过校验才写入）。CSV 可为 UTF-8（带或不带 BOM）或 GB18030/GBK。"""
    with _open(ctx) as store:
        try:
            report = import_files(store, corpus_files(paths), load_ontology(), default_type, progress=True, profile=profile)
        except BuildFailed as exc:
            for note in exc.notes:
                click.echo(f"  · {note}", err=True)
            _report_issues(exc)
        for note in report.notes:
            click.echo(f"  · {note}")
        click.echo(f"已导入：{len(report.nodes):,} 个节点，{len(report.edges):,} 条关系")


@main.command()
@click.pass_context
def stats(ctx: click.Context) -> None:
    """各类节点与关系的数量。"""
    ontology = load_ontology()
    with _open(ctx) as store:
        labels = {c.name: c.label for c in ontology.classes.values()}
        nodes = store.node_counts()
        if not nodes:
            _fail("图谱为空：请先运行 python -m kg build")
        _print_counts(f"节点（共 {sum(nodes.values()):,}）：", nodes, labels)
        edges = store.edge_counts()
        rel_labels = {rel: ontology.property_labels.get(p, p) for p, rel in ontology.relationship_types.items()}
        _print_counts(f"关系（共 {sum(edges.values()):,}）：", edges, rel_labels)


@main.command()
@click.option("--format", "fmt", type=click.Choice(sorted(FORMATS)), default="turtle", show_default=True)
@click.option("--output", "-o", type=click.Path(path_type=Path), required=True)
@click.option("--include-personal/--catalogue-only", default=False, help="是否包含干部与培训记录（个人数据）")
@click.pass_context
def export(ctx: click.Context, fmt: str, output: Path, include_personal: bool) -> None:
    """导出为 Turtle 或 JSON-LD（含 schema.org 术语）。"""
    ontology = load_ontology()
    with _open(ctx) as store:
        personal = {c.name for c in ontology.classes.values() if c.personal}
        nodes = [n for n in store.nodes() if include_personal or n.label not in personal]
        keep = {n.id for n in nodes}
        edges = [e for e in store.edges() if e.src in keep and e.dst in keep]
    text = serialize(graph_to_rdf(nodes, edges, ontology), fmt)
    output.parent.mkdir(parents=True, exist_ok=True)
    tmp = output.with_suffix(output.suffix + ".tmp")
    tmp.write_text(text, encoding="utf-8")
    tmp.replace(output)
    click.echo(f"已导出 {len(nodes):,} 个节点、{len(edges):,} 条关系到 {output}")


@main.command(name="import-rdf")
@click.argument("path", type=click.Path(exists=True, path_type=Path))
@click.pass_context
def import_rdf(ctx: click.Context, path: Path) -> None:
    """读回一份 Turtle / JSON-LD 导出，替换现有图谱。"""
    from rdflib import Graph

    ontology = load_ontology()
    g = Graph()
    g.parse(path, format="json-ld" if path.suffix in (".jsonld", ".json") else "turtle")
    nodes, edges = graph_from_rdf(g, ontology)
    with _open(ctx) as store:
        store.write(nodes, edges, replace=True, progress=True)
    click.echo(f"已读入 {len(nodes):,} 个节点、{len(edges):,} 条关系")


def _open_named(name: str, settings: Settings):
    try:
        return open_store(name, settings)
    except StoreError as exc:
        _fail(f"无法打开存储（{name}）：{exc}")


def _print_sync_table(title: str, labels: dict[str, str], source: dict, before: dict, after: dict) -> None:
    click.echo(f"{title:<26}{'源':>10}{'同步前':>10}{'同步后':>10}")
    for key in sorted(set(source) | set(before) | set(after)):
        click.echo(f"  {labels.get(key, key):<10}{key:<16}{source.get(key, 0):>10,}{before.get(key, 0):>10,}{after.get(key, 0):>10,}")
    click.echo(f"  {'合计':<26}{sum(source.values()):>10,}{sum(before.values()):>10,}{sum(after.values()):>10,}")


def _first_load_line(report) -> str:
    phases = report.phases
    return (f"首次载入（neo4j-admin database import full）：节点 {report.changes['nodes_created']:,}，"
            f"关系 {report.changes['relationships_created']:,}；写出 CSV {phases['csv']:.1f} 秒，"
            f"neo4j-admin {phases['import']:.1f} 秒，停止与重启服务器 {phases['restart']:.1f} 秒，"
            f"约束与索引 {phases['schema']:.1f} 秒；共 {report.seconds:.1f} 秒")


@main.command()
@click.option("--import/--no-import", "use_import", default=None,
              help="首次载入是否用 neo4j-admin（默认：目标数据库为空、服务器由 scripts/neo4j-dev 在本机运行且图不小于 --import-min 时自动使用）")
@click.option("--import-min", type=int, default=500_000, show_default=True,
              help="自动选用 neo4j-admin 的最小规模（节点与关系条数）：更小的图经 Bolt 写入更快（重启与建索引是固定开销，见 bench/neo4j_sync.py）")
@click.pass_context
def sync(ctx: click.Context, use_import: bool | None, import_min: int) -> None:
    """把嵌入式存储中的图谱同步到 Neo4j（只写差异，分批提交；重复运行不会改动任何数据）。

    目标数据库为空、服务器可以停下（本机由 scripts/neo4j-dev 运行）且图足够大时，首次载入改用 neo4j-admin 批量导入。"""
    from kg.neo4j_import import first_load, local_server
    from kg.sync import sync_graph

    settings: Settings = ctx.obj["settings"]
    ontology = load_ontology()
    with _open_named("embedded", settings) as source:
        if source.is_empty():
            _fail(f"源图谱为空（{settings.db_path}）：请先运行 python -m kg build")
        with _open_named("neo4j", settings) as target:
            click.echo(f"源：嵌入式存储 {settings.db_path}；目标：Neo4j {settings.neo4j_uri}（数据库 {settings.neo4j_database}）")
            try:
                size = sum(source.node_counts().values()) + sum(source.edge_counts().values())
                wanted = use_import is True or (use_import is None and size >= import_min)
                server = local_server(settings) if wanted and target.node_total() == 0 else None
                if use_import and server is None:
                    _fail("无法用 neo4j-admin 首次载入：目标数据库不是空的，或服务器不是本机 scripts/neo4j-dev 运行的"
                          "（其他服务器见 python -m kg neo4j-import --csv-only）")
                if server is not None:
                    report = first_load(source, settings, ontology, server=server, progress=True)
                else:
                    report = sync_graph(source, target, progress=True)
            except StoreError as exc:
                _fail(f"同步失败：{exc}")
    labels = {c.name: c.label for c in ontology.classes.values()}
    rel_labels = {rel: ontology.property_labels.get(p, p) for p, rel in ontology.relationship_types.items()}
    _print_sync_table("节点", labels, report.source_nodes, report.before_nodes, report.after_nodes)
    _print_sync_table("关系", rel_labels, report.source_edges, report.before_edges, report.after_edges)
    names = {
        "nodes_created": "新建节点", "nodes_deleted": "删除节点", "relationships_created": "新建关系",
        "relationships_deleted": "删除关系", "properties_set": "写入属性", "labels_added": "增加标签",
        "labels_removed": "移除标签",
    }
    if report.method == "import":
        click.echo(_first_load_line(report))
    else:
        click.echo("本次变更：" + "，".join(f"{names[k]} {report.changes.get(k, 0):,}" for k in names)
                   + f"；用时 {report.seconds:.1f} 秒")
    if not report.changed:
        click.echo("Neo4j 已与嵌入式存储一致，本次没有写入任何数据")
    if not report.in_step:
        _fail("同步后 Neo4j 的节点或关系数量与源不一致，请检查上表")


@main.command(name="neo4j-import")
@click.option("--out", "directory", type=click.Path(path_type=Path), default=None,
              help="CSV 文件目录（默认 $GANXUN_HOME/neo4j-import）")
@click.option("--csv-only", is_flag=True, help="只写出 CSV 与 import.args，并打印在数据库服务器上运行的 neo4j-admin 命令")
@click.option("--keep", is_flag=True, help="导入后保留 CSV 文件")
@click.pass_context
def neo4j_import(ctx: click.Context, directory: Path | None, csv_only: bool, keep: bool) -> None:
    """用 neo4j-admin database import full 把嵌入式图谱首次载入空的 Neo4j 数据库（之后用 kg sync 增量同步）。"""
    from kg.neo4j_import import first_load, local_server, write_import_files

    settings: Settings = ctx.obj["settings"]
    directory = directory or settings.home / "neo4j-import"
    with _open_named("embedded", settings) as source:
        if source.is_empty():
            _fail(f"源图谱为空（{settings.db_path}）：请先运行 python -m kg build")
        try:
            if csv_only:
                files = write_import_files(source, directory, progress=True)
                click.echo(f"已写出 {sum(files.nodes.values()):,} 个节点、{sum(files.edges.values()):,} 条关系到 {directory}"
                           f"（{sum(a.startswith(('--nodes=', '--relationships=')) for a in files.args)} 个文件，参数在 import.args）")
                click.echo("在数据库服务器上：停止数据库，把该目录复制过去，在其中运行")
                click.echo(f"  {files.command(settings.neo4j_database)}")
                click.echo("再启动数据库并运行 python -m kg --store neo4j stats（连接时建立约束与索引）；"
                           "CSV 无法表示的空列表随后用 python -m kg sync 补齐")
                return
            server = local_server(settings)
            if server is None:
                _fail(f"Neo4j {settings.neo4j_uri} 不是本机 scripts/neo4j-dev 运行的服务器，不能由这里停下："
                      "请用 --csv-only 写出文件，在服务器上运行 neo4j-admin")
            report = first_load(source, settings, load_ontology(), server=server, directory=directory, keep=keep,
                                progress=True)
        except StoreError as exc:
            _fail(f"首次载入失败：{exc}")
    click.echo(_first_load_line(report))
    if not report.in_step:
        _fail("载入后 Neo4j 的节点或关系数量与源不一致")


@main.command()
@click.argument("name", required=False)
def queries(name: str | None) -> None:
    """打印课程设计人员的命名 Cypher 查询（可粘贴到 Neo4j Browser）；不给名字时列出全部。"""
    from kg.cypher import LIBRARY

    ontology = load_ontology()
    if name is None:
        for query in LIBRARY.values():
            click.echo(f"{query.name:<30} {query.title}：{query.description}")
        return
    if name not in LIBRARY:
        _fail(f"没有名为『{name}』的查询；可用：{'、'.join(LIBRARY)}")
    click.echo(LIBRARY[name].browser_text(ontology))
