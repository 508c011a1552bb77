"""The catalogue as searchable documents: courses, textbooks and cases with the metadata filters need.

Which classes are searchable is the ontology's call (``gx:searchable``), and which relation carries an
item's topics is read from its shape (the field whose target class is the topic class: ``covers`` for
courses and textbooks, ``illustrates`` for cases), so a new searchable class needs no code here.

A document is embedded as one or more chunks.  The encoder reads at most 512 tokens, and a long
description would be truncated silently, so texts longer than :data:`MAX_CHUNK_CHARS` are cut at sentence
ends into chunks that each repeat the title; a document's dense score is the best of its chunks.
"""

from __future__ import annotations

import hashlib
import re
from collections import defaultdict
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any

from kg.ontology import Ontology
from kg.store.base import Store

__all__ = [
    "CASE_CLASS",
    "MAX_CHUNK_CHARS",
    "TOPIC_CLASS",
    "Document",
    "chunk_text",
    "document_from_row",
    "load_documents",
    "searchable_classes",
    "topic_field",
]

#: Class of the topic scheme's concepts (an identifier, not a label).
TOPIC_CLASS = "Topic"
#: A case study is a case by definition; courses and textbooks say so in their ``isCase`` field.
CASE_CLASS = "CaseStudy"
#: Longest chunk, in characters, handed to the encoder (Chinese runs about one token per character).
MAX_CHUNK_CHARS = 400
_SENTENCE_END = re.compile(r"(?<=[。！？；!?;])")


@dataclass(frozen=True)
class Document:
    """One searchable catalogue item: its text, its chunks and the metadata that filters read.

    ``topics`` are topic ids in the order the store returns them; ``institution`` is the id of the
    offering institution (``offeredBy``) or None; ``hours`` and ``delivery_mode`` exist for courses only.
    """

    id: str
    kind: str
    title: str
    description: str
    topics: tuple[str, ...] = ()
    institution: str | None = None
    delivery_mode: str | None = None
    is_case: bool = False
    hours: float | None = None
    status: str | None = None
    chunks: tuple[str, ...] = field(default=(), compare=False)

    @property
    def text(self) -> str:
        """Title and description, the text BM25 and auto-tagging read."""
        return f"{self.title}。{self.description}" if self.description else self.title

    @property
    def content_hash(self) -> str:
        """Digest of what the encoder sees: unchanged text means the stored vectors are still right."""
        digest = hashlib.sha256()
        for chunk in self.chunks:
            digest.update(chunk.encode("utf-8"))
            digest.update(b"\x00")
        return digest.hexdigest()

    def meta(self) -> dict[str, Any]:
        """The filterable fields as a plain dict (for the index manifest and the API)."""
        return {
            "kind": self.kind,
            "title": self.title,
            "topics": list(self.topics),
            "institution": self.institution,
            "deliveryMode": self.delivery_mode,
            "isCase": self.is_case,
            "hours": self.hours,
            "status": self.status,
        }


def searchable_classes(ontology: Ontology) -> list[str]:
    """Class names the ontology marks ``gx:searchable``, sorted."""
    return sorted(spec.name for spec in ontology.classes.values() if spec.searchable)


def topic_field(ontology: Ontology, class_name: str) -> str | None:
    """The field of ``class_name`` whose values are topics (``covers``, ``illustrates``), if any."""
    for spec in ontology.classes[class_name].fields.values():
        if spec.target_class == TOPIC_CLASS:
            return spec.name
    return None


def chunk_text(title: str, description: str, max_chars: int = MAX_CHUNK_CHARS) -> tuple[str, ...]:
    """Cut ``title。description`` into chunks of at most ``max_chars``, each starting with the title.

    Cuts fall at sentence ends (。！？；); a single sentence longer than the budget is cut hard.
    The title is repeated so that every chunk still says what it belongs to.
    """
    description = (description or "").strip()
    whole = f"{title}。{description}" if description else title
    if len(whole) <= max_chars:
        return (whole,)
    budget = max(max_chars - len(title) - 1, max_chars // 2)
    pieces: list[str] = []
    for sentence in (s for s in _SENTENCE_END.split(description) if s):
        while len(sentence) > budget:
            pieces.append(sentence[:budget])
            sentence = sentence[budget:]
        pieces.append(sentence)
    chunks: list[str] = []
    current = ""
    for piece in pieces:
        if current and len(current) + len(piece) > budget:
            chunks.append(current)
            current = ""
        current += piece
    if current:
        chunks.append(current)
    return tuple(f"{title}。{chunk}" for chunk in chunks)


def _hours(value: Any) -> float | None:
    return float(value) if isinstance(value, (int, float)) and not isinstance(value, bool) else None


def _build(
    node_id: str,
    kind: str,
    props: Mapping[str, Any],
    topics: Iterable[str],
    institution: str | None,
    max_chars: int,
) -> Document:
    title = str(props.get("name") or "").strip()
    description = str(props.get("description") or "").strip()
    return Document(
        id=node_id,
        kind=kind,
        title=title,
        description=description,
        topics=tuple(topics),
        institution=institution,
        delivery_mode=props.get("deliveryMode"),
        is_case=bool(props.get("isCase", kind == CASE_CLASS)),
        hours=_hours(props.get("hours")),
        status=props.get("status"),
        chunks=chunk_text(title, description, max_chars),
    )


def load_documents(store: Store, ontology: Ontology, max_chars: int = MAX_CHUNK_CHARS) -> list[Document]:
    """Every searchable item in the store as a :class:`Document`, sorted by id.

    Edges are read once per relationship type (not once per node), so this stays quick on a large store.
    """
    offered_by = ontology.relationship_types["offeredBy"]
    institutions = {e.src: e.dst for e in store.edges(type=offered_by)}
    documents: list[Document] = []
    for kind in searchable_classes(ontology):
        topics: dict[str, list[str]] = defaultdict(list)
        field_name = topic_field(ontology, kind)
        if field_name is not None:
            rel = ontology.relationship_types[field_name]
            for edge in store.edges(type=rel):
                topics[edge.src].append(edge.dst)
        for node in store.nodes(kind):
            documents.append(
                _build(node.id, kind, node.props, topics.get(node.id, ()), institutions.get(node.id), max_chars)
            )
    documents.sort(key=lambda d: d.id)
    return documents


def document_from_row(row: Mapping[str, Any], ontology: Ontology, max_chars: int = MAX_CHUNK_CHARS) -> Document | None:
    """A corpus-file row (as :func:`kg.readers.read_rows` gives it) as a document; None if not searchable."""
    kind = str(row.get("type") or "")
    spec = ontology.classes.get(kind)
    if spec is None or not spec.searchable or not row.get("id"):
        return None
    field_name = topic_field(ontology, kind)
    raw_topics = row.get(field_name) if field_name else None
    topics = [raw_topics] if isinstance(raw_topics, str) else list(raw_topics or [])
    institution = row.get("offeredBy") if isinstance(row.get("offeredBy"), str) else None
    return _build(str(row["id"]), kind, row, topics, institution, max_chars)
