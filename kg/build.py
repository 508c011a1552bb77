"""Loading corpora into a store: read every file, validate everything, then write once.

Nothing is written while any file has a problem, and the write itself is one atomic store operation, so a
build or import either lands whole or leaves the store as it was.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field, replace
from pathlib import Path

from tqdm import tqdm

from kg.model import Edge, Node
from kg.ontology import Ontology
from kg.readers import SUPPORTED_SUFFIXES, NamesOf, SourceRow, read_file
from kg.store.base import Store, WriteSummary
from kg.validate import Issue, LabelsOf, ValidationResult, validate_rows

__all__ = ["PENDING_TAGS", "BuildFailed", "RowTagger", "TagEvidence", "build_graph", "corpus_files", "import_files", "load_files"]


class BuildFailed(Exception):
    """Validation found problems; nothing was written.  ``issues`` lists every one of them; ``notes`` say how
    each file was read (encoding, profile, header row)."""

    def __init__(self, issues: list[Issue], notes: list[str] | None = None) -> None:
        self.issues = issues
        self.notes = notes or []
        files = sorted({i.file for i in issues})
        super().__init__(f"校验未通过：{len(issues)} 个问题，涉及 {len(files)} 个文件；未写入任何数据")


@dataclass
class LoadReport:
    files: list[Path]
    nodes: list[Node]
    edges: list[Edge]
    written: WriteSummary
    notes: list[str] = field(default_factory=list)
    suggested: int = 0


@dataclass(frozen=True)
class TagEvidence:
    """Provenance of a topic tag the import wrote without a person: ``status`` is ``suggested`` (the item came
    untagged) or ``doubtful`` (its own tag has little support); kept as the tag edge's properties."""

    topic: str
    status: str
    confidence: float


#: Tag statuses that wait for a person (``api.review``); a tag edge without ``tag`` is the catalogue's own.
PENDING_TAGS = ("suggested", "doubtful")

RowTagger = Callable[[list[SourceRow]], list[list[TagEvidence]]]
"""Given the rows of searchable items, the tags to write with their provenance, one list per row: empty to keep
the row's own tags as they are.  The recommender provides it (``kg`` never imports the recommender)."""


def corpus_files(paths: Iterable[Path]) -> list[Path]:
    """Files to load from the given files and folders, folders read recursively in name order."""
    files: list[Path] = []
    for path in paths:
        if path.is_dir():
            files.extend(sorted(p for p in path.rglob("*") if p.suffix.lower() in SUPPORTED_SUFFIXES))
        elif path.exists():
            files.append(path)
    return files


def read_files(
    files: Sequence[Path],
    ontology: Ontology,
    default_type: str | None = None,
    progress: bool = False,
    *,
    profile: str | None = None,
    names_of: NamesOf | None = None,
) -> tuple[list[SourceRow], list[str]]:
    """Every row of the files and the notes on how each file was read.  A cell or statement that names a node
    (a platform, a teacher) finds it among the stored ones (``names_of``) or those an earlier file of the same
    import declares; xAPI statement files are read last, so the platforms and courses of the import come first."""
    rows: list[SourceRow] = []
    notes: list[str] = []
    stored: dict[str, dict[str, str]] = {}
    declared: dict[str, dict[str, str]] = {}

    def names(class_name: str) -> dict[str, str]:
        if class_name not in stored:
            stored[class_name] = dict(names_of(class_name)) if names_of else {}
        return {**stored[class_name], **declared.get(class_name, {})}

    for path in tqdm(sorted(files, key=lambda p: p.suffix.lower() == ".json"), desc="读取语料", unit="个文件",
                     disable=not progress):
        read = read_file(path, ontology, default_type, profile, names)
        rows.extend(read.rows)
        notes.extend(read.notes)
        for row in read.rows:
            if row.data and isinstance(row.data.get("name"), str) and isinstance(row.data.get("id"), str):
                declared.setdefault(str(row.data.get("type")), {})[row.data["name"]] = row.data["id"]
    return rows, notes


def validate_read_rows(
    rows: list[SourceRow],
    ontology: Ontology,
    existing_label: Callable[[str], str | None] = lambda _id: None,
    *,
    existing_labels: LabelsOf | None = None,
) -> ValidationResult:
    """Validate rows together, so references may cross files; the reader's own problems come first, and the
    validator's report on a field the reader already explained (a name no node has) is left out as a repeat."""
    result = validate_rows(rows, ontology, existing_label, existing_labels=existing_labels)
    own = [Issue(r.file, r.line, f, m) for r in rows for f, m in r.problems]
    if not own:
        return result
    explained = {(i.file, i.line, i.field) for i in own}
    bad = {(i.file, i.line) for i in own}
    issues = own + [i for i in result.issues if (i.file, i.line, i.field) not in explained]
    bad_ids = {str(r.data.get("id")) for r in rows if (r.file, r.line) in bad and r.data}
    nodes = [n for n in result.nodes if n.id not in bad_ids]
    return ValidationResult(nodes, [e for e in result.edges if e.src not in bad_ids], issues)


def load_files(
    files: Sequence[Path],
    ontology: Ontology,
    existing_label: Callable[[str], str | None] = lambda _id: None,
    default_type: str | None = None,
    progress: bool = False,
    *,
    existing_labels: LabelsOf | None = None,
) -> ValidationResult:
    """Read and validate the files together.  Ids the files do not declare are resolved with
    ``existing_labels`` in bulk, or else ``existing_label`` (see :func:`kg.validate.validate_rows`)."""
    rows, _notes = read_files(files, ontology, default_type, progress)
    return validate_read_rows(rows, ontology, existing_label, existing_labels=existing_labels)


def build_graph(
    store: Store,
    corpus_dirs: Iterable[Path],
    ontology: Ontology,
    progress: bool = False,
) -> LoadReport:
    """Replace the store's graph with the ontology's concept schemes plus every corpus file."""
    concept_nodes, concept_edges = ontology.concept_graph()
    concept_labels = {n.id: n.label for n in concept_nodes}
    files = corpus_files(corpus_dirs)
    result = load_files(files, ontology, concept_labels.get, progress=progress)
    if not result.ok:
        raise BuildFailed(result.issues)
    nodes = concept_nodes + result.nodes
    edges = concept_edges + result.edges
    written = store.write(nodes, edges, replace=True, progress=progress)
    return LoadReport(files, nodes, edges, written)


def stored_names(store: Store) -> NamesOf:
    """Names of stored nodes of a class → their ids, for cells that name a teacher, institution or platform."""
    return lambda class_name: {str(n.props["name"]): n.id for n in store.nodes(class_name) if n.props.get("name")}


def _tag_rows(rows: list[SourceRow], ontology: Ontology, tagger: RowTagger,
              stored: Callable[[list[str]], Mapping[str, str]]) -> dict[tuple[str, str], TagEvidence]:
    """Ask ``tagger`` about every searchable row; write its tags into the rows (so that validation sees an
    untagged item's suggested topics) and answer the provenance of each (item, topic) it wrote.

    A row without topics for an item already ``stored`` is not asked about: the write replaces a node's outgoing
    edges whole, so a suggested tag would silently swap out the item's confirmed topics and its other links (a
    platform export without a topic column).  Such a row is refused for its missing topics instead, as an
    untagged row always was, which loses nothing."""
    fields = {spec.name: next((f.name for f in spec.fields.values() if f.target_class == "Topic"), None)
              for spec in ontology.data_classes if spec.searchable}
    searchable = [(k, r.data, topics) for k, r in enumerate(rows)
                  if r.data and (topics := fields.get(str(r.data.get("type")))) and r.data.get("id")]
    untagged = [str(data["id"]) for _, data, topics in searchable if not data.get(topics)]
    known = stored(untagged) if untagged else {}
    wanted = [k for k, data, topics in searchable if data.get(topics) or str(data["id"]) not in known]
    provenance: dict[tuple[str, str], TagEvidence] = {}
    for k, tags in zip(wanted, tagger([rows[k] for k in wanted])):
        if not tags:
            continue
        data = dict(rows[k].data or {})
        data[fields[str(data["type"])] or ""] = [t.topic for t in tags]
        rows[k] = replace(rows[k], data=data)
        provenance.update({(str(data["id"]), t.topic): t for t in tags})
    return provenance


def import_files(
    store: Store,
    files: Sequence[Path],
    ontology: Ontology,
    default_type: str | None = None,
    progress: bool = False,
    *,
    profile: str | None = None,
    tagger: RowTagger | None = None,
) -> LoadReport:
    """Merge files into the existing graph; they may refer to nodes already stored, which are looked up with one
    bulk ``labels_of`` for the whole import.  ``profile`` names the column mapping of CSV/XLSX files (else it is
    found from each header); ``tagger`` suggests topics for untagged items, written with their provenance."""
    rows, notes = read_files(files, ontology, default_type, progress, profile=profile, names_of=stored_names(store))
    provenance = _tag_rows(rows, ontology, tagger, store.labels_of) if tagger else {}
    result = validate_read_rows(rows, ontology, existing_labels=store.labels_of)
    if not result.ok:
        raise BuildFailed(result.issues, notes)
    edges = [replace(e, props={**e.props, "tag": p.status, "confidence": round(p.confidence, 3)})
             if (p := provenance.get((e.src, e.dst))) else e for e in result.edges]
    written = store.write(result.nodes, edges, progress=progress)
    return LoadReport(list(files), result.nodes, edges, written, notes, len({k[0] for k in provenance}))
