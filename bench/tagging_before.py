"""Frozen copy of recommender/search/tagging.py before issue 15 (git HEAD f52a3ad), kept only so that
bench/tagging_quality.py can print the old tagger beside the new one.  Not imported by the service.

Auto-tagging: which plan topics a course, textbook or case is about, with a calibrated confidence.

Three pieces of evidence per (item, topic):

* **neighbours** — among the item's ``neighbours`` most similar tagged catalogue items (cosine of item
  vectors, the item itself left out), the share that carry the topic, weighted by ``exp((s - s_max)/τ)``;
* **label** — how close the item's vector comes to the topic's own text (its preferred label with its
  definition, and with its synonyms), relative to the closest topic, divided by ``label_scale``;
* **lexical** — whether the topic's label or one of its synonyms occurs in the text.

A logistic regression over these three features (plus a bias) turns them into a probability that a tag
applies.  It is fitted, each time a tagger is built, on the tagged catalogue itself with every item left out
of its own neighbourhood, so the confidence is calibrated on the catalogue it will judge.  On the sample
catalogue (829 items, 118 topics) the best suggestion is one of an item's tags for 84 % of items.

An item is flagged as probably mis-tagged when none of its tags is supported: a tag's support is the best
confidence of the tag or any narrower topic (a broad tag is borne out by its specific sub-topics, never the
other way round).  With ``flag_below=0.05`` on the sample catalogue, 2.8 % of items as tagged are flagged
and 97 % of items whose tags were swapped for a topic of another branch are caught.

``python -m recommender tag-check FILES`` runs :func:`check_files` on corpus files before or after an
import (``kg`` does not import the recommender: data flows one way).
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Literal

import numpy as np
from scipy.optimize import minimize

from kg.ontology import Ontology
from kg.readers import read_rows
from recommender.search.documents import Document, document_from_row
from recommender.search.service import SearchService

__all__ = ["TagIssue", "TopicSuggestion", "TopicTagger", "check_files"]

FEATURES = ("neighbours", "label", "lexical")
Problem = Literal["untagged", "mistagged"]


@dataclass(frozen=True)
class TopicSuggestion:
    """A topic for an item and the probability that the tag applies (0–1)."""

    topic: str
    label: str
    confidence: float


@dataclass(frozen=True)
class TagIssue:
    """An item whose tags look wrong or are missing, with what it probably is about.

    ``tags`` pairs each given tag with its support; ``source`` is ``file:line`` when read from a file.
    """

    item_id: str
    kind: str
    title: str
    problem: Problem
    tags: tuple[tuple[str, float], ...]
    suggestions: tuple[TopicSuggestion, ...]
    source: str | None = None

    @property
    def message(self) -> str:
        """A one-line Chinese explanation for reports."""
        proposed = "、".join(f"{s.label}（{s.topic}，{s.confidence:.0%}）" for s in self.suggestions)
        if self.problem == "untagged":
            return f"未标注主题；建议：{proposed}"
        given = "、".join(f"{t}（支持度 {c:.0%}）" for t, c in self.tags)
        return f"现有主题 {given} 与内容不符，可能标错；建议：{proposed}"


def _sigmoid(z: np.ndarray) -> np.ndarray:
    return 1.0 / (1.0 + np.exp(-z))


@dataclass
class TopicTagger:
    """Suggests topics for texts and checks given tags; build it with :meth:`from_service`."""

    service: SearchService
    neighbours: int = 10
    temperature: float = 0.01
    label_scale: float = 0.02
    flag_below: float = 0.05
    topic_ids: list[str] = field(init=False)
    weights: np.ndarray = field(init=False)

    @classmethod
    def from_service(cls, service: SearchService, **params: float) -> TopicTagger:
        """A tagger over ``service``'s topics and tagged catalogue, calibrated on that catalogue."""
        tagger = cls(service, **params)
        tagger._prepare()
        return tagger

    # ── preparation ──
    def _prepare(self) -> None:
        props = self.service.topic_props
        if not props:
            raise ValueError("主题体系为空：请先构建图谱（python -m kg build）")
        self.topic_ids = sorted(props)
        self._column = {t: i for i, t in enumerate(self.topic_ids)}
        self._labels = {t: [props[t].get("name", "")] + list(props[t].get("altLabels") or ()) for t in self.topic_ids}
        self._topic_vectors = self._encode_topics()
        # narrower[t] = mask of t and every topic below it
        self._narrower = np.zeros((len(self.topic_ids),) * 2, dtype=bool)
        for t in self.topic_ids:
            for u in self.service.narrower_topics(t):
                if u in self._column:
                    self._narrower[self._column[t], self._column[u]] = True
        tagged = [d for d in self.service.documents if any(t in self._column for t in d.topics)]
        self._ids, self._vectors = self.service.document_vectors([d.id for d in tagged])
        self._row = {item_id: i for i, item_id in enumerate(self._ids)}
        self._tags = np.zeros((len(self._ids), len(self.topic_ids)), dtype=np.float64)
        for i, doc in enumerate(tagged):
            for t in doc.topics:
                if t in self._column:
                    self._tags[i, self._column[t]] = 1.0
        self.weights = self._fit([d.text for d in tagged])

    def _topic_texts(self) -> list[str]:
        props = self.service.topic_props
        texts = []
        for t in self.topic_ids:
            name = props[t].get("name", "")
            texts.append(f"{name}：{props[t].get('definition', '')}")
            texts.append(f"{name}（{'、'.join(props[t].get('altLabels') or ())}）")
        return texts

    def _encode_topics(self) -> np.ndarray:
        """One unit vector per topic (mean of its two texts), cached beside the index by content hash."""
        texts = self._topic_texts()
        key = hashlib.sha256("\n".join(texts + [self.service.model_fingerprint]).encode("utf-8")).hexdigest()[:16]
        cache = self.service.index_dir / f"topics-{key}.npy"
        if cache.is_file():
            return np.load(cache)
        pairs = self.service.encoder.passage(texts).reshape(len(self.topic_ids), 2, -1).mean(axis=1)
        vectors = (pairs / np.linalg.norm(pairs, axis=1, keepdims=True)).astype(np.float32)
        cache.parent.mkdir(parents=True, exist_ok=True)
        for old in cache.parent.glob("topics-*.npy"):
            old.unlink(missing_ok=True)
        np.save(cache, vectors)
        return vectors

    def _features(self, vectors: np.ndarray, texts: Sequence[str], exclude: Sequence[int | None]) -> np.ndarray:
        """Feature tensor ``(items, topics, len(FEATURES) + 1)``; ``exclude`` names each item's own row."""
        sims = vectors @ self._vectors.T
        for i, row in enumerate(exclude):
            if row is not None:
                sims[i, row] = -np.inf
        k = min(self.neighbours, max(len(self._ids) - 1, 1))
        top = np.argpartition(-sims, k - 1, axis=1)[:, :k] if sims.shape[1] > k else np.argsort(-sims, axis=1)
        top_s = np.take_along_axis(sims, top, axis=1)
        weights = np.exp((top_s - top_s.max(axis=1, keepdims=True)) / self.temperature)
        weights[~np.isfinite(top_s)] = 0.0
        weights /= np.maximum(weights.sum(axis=1, keepdims=True), 1e-12)
        neighbours = np.einsum("nk,nkt->nt", weights, self._tags[top])
        closeness = vectors @ self._topic_vectors.T
        label = (closeness - closeness.max(axis=1, keepdims=True)) / self.label_scale
        lexical = np.array(
            [[any(word in text for word in self._labels[t] if len(word) >= 2) for t in self.topic_ids] for text in texts],
            dtype=np.float64,
        )
        return np.stack([neighbours, label, lexical, np.ones_like(label)], axis=-1)

    def _fit(self, texts: Sequence[str]) -> np.ndarray:
        """Logistic regression (L2 1e-4, L-BFGS) of "item carries topic" on leave-one-out features."""
        x = self._features(self._vectors, texts, list(range(len(self._ids)))).reshape(-1, len(FEATURES) + 1)
        y = self._tags.reshape(-1)
        penalty = np.r_[np.full(len(FEATURES), 1e-4), 0.0]

        def loss(w: np.ndarray) -> tuple[float, np.ndarray]:
            p = np.clip(_sigmoid(x @ w), 1e-12, 1 - 1e-12)
            value = -np.mean(y * np.log(p) + (1 - y) * np.log(1 - p)) + float(penalty @ w**2)
            return value, x.T @ (p - y) / len(y) + 2 * penalty * w

        result = minimize(loss, np.zeros(x.shape[1]), jac=True, method="L-BFGS-B")
        return result.x

    # ── use ──
    def _vector_of(self, doc: Document) -> np.ndarray:
        stored = self.service.document(doc.id)
        if stored is not None and stored.content_hash == doc.content_hash:
            return self.service.document_vector(doc.id)
        chunks = self.service.encoder.passage(list(doc.chunks))
        mean = chunks.mean(axis=0)
        return mean / np.linalg.norm(mean)

    def confidences(self, docs: Sequence[Document]) -> np.ndarray:
        """Probability per (document, topic), topics in :attr:`topic_ids` order; each item is left out."""
        if not docs:
            return np.zeros((0, len(self.topic_ids)))
        vectors = np.vstack([self._vector_of(d) for d in docs])
        features = self._features(vectors, [d.text for d in docs], [self._row.get(d.id) for d in docs])
        return _sigmoid(features @ self.weights)

    def _suggestions(self, probabilities: np.ndarray, k: int) -> tuple[TopicSuggestion, ...]:
        props = self.service.topic_props
        order = np.argsort(-probabilities, kind="stable")[:k]
        return tuple(
            TopicSuggestion(self.topic_ids[j], props[self.topic_ids[j]].get("name", ""), float(probabilities[j]))
            for j in order
        )

    def suggest(self, text: str, k: int = 3) -> list[TopicSuggestion]:
        """The ``k`` likeliest topics for a free text (title and description), best first."""
        text = (text or "").strip()
        if not text:
            raise ValueError("待标注文本不能为空")
        doc = Document(id="", kind="", title=text, description="", chunks=(text,))
        return list(self._suggestions(self.confidences([doc])[0], k))

    def suggest_for(self, doc: Document, k: int = 3) -> list[TopicSuggestion]:
        """The ``k`` likeliest topics for a catalogue item, judged without its own tags."""
        return list(self._suggestions(self.confidences([doc])[0], k))

    def support(self, probabilities: np.ndarray, topic: str) -> float:
        """Best confidence of ``topic`` or any narrower topic; 0 for a topic outside the scheme."""
        column = self._column.get(topic)
        return 0.0 if column is None else float(probabilities[self._narrower[column]].max())

    def check(self, docs: Iterable[Document], sources: Sequence[str | None] | None = None, k: int = 3) -> list[TagIssue]:
        """Untagged items, and items none of whose tags is supported (support < ``flag_below``)."""
        docs = list(docs)
        sources = list(sources) if sources is not None else [None] * len(docs)
        issues: list[TagIssue] = []
        for doc, source, probabilities in zip(docs, sources, self.confidences(docs)):
            tags = tuple((t, self.support(probabilities, t)) for t in doc.topics)
            if not tags:
                problem: Problem | None = "untagged"
            elif max(s for _, s in tags) < self.flag_below:
                problem = "mistagged"
            else:
                problem = None
            if problem is not None:
                issues.append(TagIssue(doc.id, doc.kind, doc.title, problem, tags,
                                       self._suggestions(probabilities, k), source))
        return issues


def check_files(paths: Iterable[Path], tagger: TopicTagger, ontology: Ontology) -> tuple[int, list[TagIssue]]:
    """Read corpus files (any format ``kg.readers`` reads) and check the tags of their searchable rows.

    Returns the number of rows checked and the issues, each with its ``file:line``.  Rows that cannot be
    parsed are left to ``python -m kg validate``.
    """
    docs: list[Document] = []
    sources: list[str] = []
    for path in paths:
        for row in read_rows(Path(path), ontology):
            doc = document_from_row(row.data, ontology) if row.data is not None else None
            if doc is not None:
                docs.append(doc)
                sources.append(f"{row.file}:{row.line}")
    return len(docs), tagger.check(docs, sources)
