"""Auto-tagging: which plan topics a course, textbook or case is about, with a calibrated confidence.

Three pieces of evidence per (item, topic), all grounded in the plan and the tagged catalogue:

* **neighbours** — among the item's ``neighbours`` most similar tagged examples (cosine of item vectors, the
  item itself left out), the share that carry the topic, weighted by ``exp((s - s_max)/τ)``.  The examples are
  the tagged catalogue twice over: each item with its description, and its bare title — an imported
  catalogue often has nothing but titles, and a title is nearer to another title than to a described item;
* **label** — how close the item's vector comes to the topic's own text (its preferred label with its SKOS
  definition, which cites the plan, and with its synonyms), relative to the closest topic, over ``label_scale``;
* **lexical** — the longest of the topic's label and synonyms that occurs in the text (in characters, up to
  ``LEXICAL_CHARS``, as a share of it), unless that occurrence lies inside a longer label of another topic
  found in the same text (经济 inside 习近平经济思想 is evidence for the latter only).

A logistic regression over these three features (plus a bias) turns them into a probability that a tag
applies.  It is fitted, each time a tagger is built, on the tagged catalogue itself — described items and
bare titles, every item left out of its own neighbourhood — so the confidence is calibrated on the catalogue it
will judge and on the titles an import brings.  Texts are encoded in batches with the serving encoder (one call
per ``ENCODE_BATCH`` texts), which is what makes a whole import quick (``bench/tagging_quality.py``).

An item is flagged as probably mis-tagged when none of its tags is supported: a tag's support is the best
confidence of the tag or any narrower topic (a broad tag is borne out by its specific sub-topics, never the
other way round).  With ``flag_below=0.05`` on the sample catalogue, 2.8 % of items as tagged are flagged
and 97 % of items whose tags were swapped for a topic of another branch are caught.

``python -m recommender tag-check FILES`` runs :func:`check_files` on corpus files before or after an
import (``kg`` does not import the recommender: data flows one way).
"""

from __future__ import annotations

import hashlib
import os
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

import numpy as np
from scipy.optimize import minimize

from kg.ontology import Ontology
from kg.readers import read_rows
from recommender.search.documents import Document, document_from_row
from recommender.search.service import SearchService

__all__ = ["TagIssue", "TopicSuggestion", "TopicTagger", "check_files"]

FEATURES = ("neighbours", "label", "lexical")
#: A label match counts fully from this many characters on (枫桥经验 is surer evidence than 法治).  Chosen, with
#: ``neighbours`` and ``temperature``, by leave-one-out top-1 on the sample catalogue's bare titles (0.834 against
#: 0.831 for 6 characters; τ 0.03 and 0.1 gave 0.80 and 0.77), not on the benchmark's titles.
LEXICAL_CHARS = 4
#: Texts per encoder call: batching is what makes tagging a whole import fast.
ENCODE_BATCH = 64
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
    def from_service(cls, service: SearchService, exclude: Iterable[str] = (), **params: float) -> TopicTagger:
        """A tagger over ``service``'s topics and tagged catalogue, calibrated on that catalogue.  Items in
        ``exclude`` (those whose tags a person has not confirmed) are not examples."""
        tagger = cls(service, **params)
        tagger._prepare(frozenset(exclude))
        return tagger

    # ── preparation ──
    def _prepare(self, exclude: frozenset[str] = frozenset()) -> None:
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
        self._lexicon = sorted(((w, self._column[t]) for t in self.topic_ids for w in set(self._labels[t]) if len(w) >= 2),
                               key=lambda wt: -len(wt[0]))
        tagged = [d for d in self.service.documents
                  if d.id not in exclude and any(t in self._column for t in d.topics)]
        ids, full = self.service.document_vectors([d.id for d in tagged])
        by_id = {d.id: d for d in tagged}
        titles = self._encode_cached("titles", [by_id[i].title for i in ids])
        # examples: every tagged item described (rows 0..n-1), then as a bare title (rows n..2n-1)
        self._ids = list(ids)
        self._row = {item_id: i for i, item_id in enumerate(self._ids)}
        self._vectors = np.vstack([full, titles]).astype(np.float32)
        self._example_titles = [by_id[i].title for i in ids] * 2
        tags = np.zeros((len(ids), len(self.topic_ids)), dtype=np.float64)
        for i, item_id in enumerate(ids):
            for t in by_id[item_id].topics:
                if t in self._column:
                    tags[i, self._column[t]] = 1.0
        self._tags = np.vstack([tags, tags])
        self.weights = self._fit([by_id[i].text for i in ids], [by_id[i].title for i in ids], titles, full)

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
        pairs = self._encode_cached("topic-texts", texts).reshape(len(self.topic_ids), 2, -1).mean(axis=1)
        return (pairs / np.linalg.norm(pairs, axis=1, keepdims=True)).astype(np.float32)

    def _encode_cached(self, name: str, texts: list[str]) -> np.ndarray:
        """Unit passage vectors of ``texts``, kept beside the index per text (by hash, per model), so a worker
        encodes the topics and the catalogue's titles once, and after an import only the new titles."""
        cache = self.service.index_dir / f"{name}-{self.service.model_fingerprint[-16:]}.npz"
        known: dict[str, np.ndarray] = {}
        if cache.is_file():
            with np.load(cache) as stored:
                known = dict(zip(stored["keys"].tolist(), stored["vectors"]))
        keys = [hashlib.sha256(t.encode("utf-8")).hexdigest()[:20] for t in texts]
        missing = sorted({k: t for k, t in zip(keys, texts) if k not in known}.items())
        if missing:
            known.update(zip([k for k, _ in missing], self._encode([t for _, t in missing])))
            cache.parent.mkdir(parents=True, exist_ok=True)
            partial = cache.with_suffix(f".{os.getpid()}.npz")
            np.savez(partial, keys=np.array(list(known)), vectors=np.vstack(list(known.values())))
            partial.replace(cache)  # atomic: a worker reading it sees the old file or the new one
        if not texts:
            return np.zeros((0, self.service.encoder.dim), dtype=np.float32)
        return np.vstack([known[k] for k in keys]).astype(np.float32)

    def _encode(self, texts: Sequence[str]) -> np.ndarray:
        """Unit passage vectors, ``ENCODE_BATCH`` texts per encoder call."""
        if not texts:
            return np.zeros((0, self.service.encoder.dim), dtype=np.float32)
        parts = [self.service.encoder.passage(list(texts[i:i + ENCODE_BATCH])) for i in range(0, len(texts), ENCODE_BATCH)]
        vectors = np.vstack(parts).astype(np.float32)
        return vectors / np.maximum(np.linalg.norm(vectors, axis=1, keepdims=True), 1e-12)

    def _lexical(self, texts: Sequence[str]) -> np.ndarray:
        """Per (text, topic): the longest label of the topic found in the text, as a share of ``LEXICAL_CHARS``,
        skipping an occurrence that lies inside a longer label already found (labels are tried longest first)."""
        out = np.zeros((len(texts), len(self.topic_ids)), dtype=np.float64)
        for i, text in enumerate(texts):
            taken = np.zeros(len(text) + 1, dtype=bool)
            for word, column in self._lexicon:
                start = text.find(word)
                while start >= 0:
                    if not taken[start:start + len(word)].all():
                        out[i, column] = max(out[i, column], min(len(word), LEXICAL_CHARS) / LEXICAL_CHARS)
                        taken[start:start + len(word)] = True
                        break
                    start = text.find(word, start + 1)
        return out

    def _features(self, vectors: np.ndarray, texts: Sequence[str], exclude: Sequence[int | None]) -> np.ndarray:
        """Feature tensor ``(items, topics, len(FEATURES) + 1)``; ``exclude`` names each item's own row."""
        sims = vectors @ self._vectors.T
        n = len(self._ids)
        for i, row in enumerate(exclude):
            if row is not None:
                sims[i, [row, row + n]] = -np.inf
        k = min(self.neighbours, max(len(self._vectors) - 2, 1))
        top = np.argpartition(-sims, k - 1, axis=1)[:, :k] if sims.shape[1] > k else np.argsort(-sims, axis=1)
        top_s = np.take_along_axis(sims, top, axis=1)
        weights = np.exp((top_s - top_s.max(axis=1, keepdims=True)) / self.temperature)
        weights[~np.isfinite(top_s)] = 0.0
        weights /= np.maximum(weights.sum(axis=1, keepdims=True), 1e-12)
        neighbours = np.einsum("nk,nkt->nt", weights, self._tags[top])
        closeness = vectors @ self._topic_vectors.T
        label = (closeness - closeness.max(axis=1, keepdims=True)) / self.label_scale
        lexical = self._lexical(texts)
        return np.stack([neighbours, label, lexical, np.ones_like(label)], axis=-1)

    def _fit(self, texts: Sequence[str], titles: Sequence[str], title_vectors: np.ndarray,
             full_vectors: np.ndarray) -> np.ndarray:
        """Logistic regression (L2 1e-4, L-BFGS) of "item carries topic" on leave-one-out features of every tagged
        item, once described and once as a bare title."""
        own = list(range(len(self._ids)))
        x = np.concatenate([self._features(full_vectors, texts, own), self._features(title_vectors, titles, own)])
        x = x.reshape(-1, len(FEATURES) + 1)
        y = self._tags.reshape(-1)
        penalty = np.r_[np.full(len(FEATURES), 1e-4), 0.0]

        def loss(w: np.ndarray) -> tuple[float, np.ndarray]:
            p = np.clip(_sigmoid(x @ w), 1e-12, 1 - 1e-12)
            value = -np.mean(y * np.log(p) + (1 - y) * np.log(1 - p)) + float(penalty @ w**2)
            return value, x.T @ (p - y) / len(y) + 2 * penalty * w

        result = minimize(loss, np.zeros(x.shape[1]), jac=True, method="L-BFGS-B")
        return result.x

    # ── use ──
    def _vectors_of(self, docs: Sequence[Document]) -> np.ndarray:
        """Unit vectors of the documents: the index's own for an unchanged catalogue item, else the mean of its
        chunks, every new chunk of the batch encoded together."""
        out = np.zeros((len(docs), self._vectors.shape[1]), dtype=np.float32)
        fresh: list[int] = []
        for i, doc in enumerate(docs):
            stored = self.service.document(doc.id) if doc.id else None
            if stored is not None and stored.content_hash == doc.content_hash:
                out[i] = self.service.document_vector(doc.id)
            else:
                fresh.append(i)
        chunks = [c for i in fresh for c in (docs[i].chunks or (docs[i].text,))]
        encoded = self._encode(chunks)
        at = 0
        for i in fresh:
            n = len(docs[i].chunks or (docs[i].text,))
            mean = encoded[at:at + n].mean(axis=0)
            out[i] = mean / max(float(np.linalg.norm(mean)), 1e-12)
            at += n
        return out

    def confidences(self, docs: Sequence[Document]) -> np.ndarray:
        """Probability per (document, topic), topics in :attr:`topic_ids` order; each item is left out."""
        if not docs:
            return np.zeros((0, len(self.topic_ids)))
        vectors = self._vectors_of(docs)
        features = self._features(vectors, [d.text for d in docs], [self._row.get(d.id) for d in docs])
        return _sigmoid(features @ self.weights)

    def suggestions_from(self, probabilities: np.ndarray, k: int = 3) -> tuple[TopicSuggestion, ...]:
        """The ``k`` likeliest topics of one row of :meth:`confidences`, best first."""
        return self._suggestions(probabilities, k)

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

    def explain(self, docs: Sequence[Document], k: int = 5, examples: int = 2) -> list[list[dict[str, Any]]]:
        """The ``k`` likeliest topics of each document with the evidence a reviewer reads: the confidence, the
        topic's plan section and SKOS definition, the label words found in the text, and the nearest tagged
        catalogue items that carry the topic (title and cosine)."""
        if not docs:
            return []
        props = self.service.topic_props
        vectors = self._vectors_of(docs)
        texts = [d.text for d in docs]
        features = self._features(vectors, texts, [self._row.get(d.id) for d in docs])
        probabilities = _sigmoid(features @ self.weights)
        sims = vectors @ self._vectors.T
        n = len(self._ids)
        out = []
        for i, doc in enumerate(docs):
            row = self._row.get(doc.id)
            if row is not None:
                sims[i, [row, row + n]] = -np.inf
            order = np.argsort(-sims[i])
            found = []
            for s in self.suggestions_from(probabilities[i], k):
                column = self._column[s.topic]
                words = [w for w in self._labels[s.topic] if len(w) >= 2 and w in texts[i]]
                near, seen = [], set()
                for j in order[: self.neighbours * 4]:
                    title = self._example_titles[j]
                    if self._tags[j, column] and title not in seen:
                        near.append({"title": title, "similarity": round(float(sims[i, j]), 3)})
                        seen.add(title)
                    if len(near) == examples:
                        break
                found.append({"topic": s.topic, "label": s.label, "confidence": round(s.confidence, 3),
                              "plan_section": props[s.topic].get("planSection", ""),
                              "definition": props[s.topic].get("definition", ""), "words": words, "examples": near})
            out.append(found)
        return out

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
