"""Loading corpora into a store: read every file, validate everything, then write once.

Nothing is written while any file has a problem, and the write itself is one atomic store operation, so a
build or import either lands whole or leaves the store as it was.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path

from tqdm import tqdm

from kg.model import Edge, Node
from kg.ontology import Ontology
from kg.readers import SUPPORTED_SUFFIXES, SourceRow, read_rows
from kg.store.base import Store, WriteSummary
from kg.validate import Issue, LabelsOf, ValidationResult, validate_rows

__all__ = ["BuildFailed", "build_graph", "corpus_files", "import_files", "load_files"]


class BuildFailed(Exception):
    """Validation found problems; nothing was written.  ``issues`` lists every one of them."""

    def __init__(self, issues: list[Issue]) -> None:
        self.issues = issues
        files = sorted({i.file for i in issues})
        super().__init__(f"校验未通过：{len(issues)} 个问题，涉及 {len(files)} 个文件；未写入任何数据")


@dataclass
class LoadReport:
    files: list[Path]
    nodes: list[Node]
    edges: list[Edge]
    written: WriteSummary


def corpus_files(paths: Iterable[Path]) -> list[Path]:
    """Files to load from the given files and folders, folders read recursively in name order."""
    files: list[Path] = []
    for path in paths:
        if path.is_dir():
            files.extend(sorted(p for p in path.rglob("*") if p.suffix.lower() in SUPPORTED_SUFFIXES))
        elif path.exists():
            files.append(path)
    return files


def load_files(
    files: Sequence[Path],
    ontology: Ontology,
    existing_label: Callable[[str], str | None] = lambda _id: None,
    default_type: str | None = None,
    progress: bool = False,
    *,
    existing_labels: LabelsOf | None = None,
) -> ValidationResult:
    """Read and validate the files together, so references may cross files.  Ids the files do not declare are
    resolved with ``existing_labels`` in bulk, or else ``existing_label`` (see :func:`kg.validate.validate_rows`)."""
    rows: list[SourceRow] = []
    for path in tqdm(files, desc="读取语料", unit="个文件", disable=not progress):
        rows.extend(read_rows(path, ontology, default_type))
    return validate_rows(rows, ontology, existing_label, existing_labels=existing_labels)


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


def import_files(
    store: Store,
    files: Sequence[Path],
    ontology: Ontology,
    default_type: str | None = None,
    progress: bool = False,
) -> LoadReport:
    """Merge files into the existing graph; they may refer to nodes already stored, which are looked up with one
    bulk ``labels_of`` for the whole import."""
    result = load_files(files, ontology, default_type=default_type, progress=progress, existing_labels=store.labels_of)
    if not result.ok:
        raise BuildFailed(result.issues)
    written = store.write(result.nodes, result.edges, progress=progress)
    return LoadReport(list(files), result.nodes, result.edges, written)
