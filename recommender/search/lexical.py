"""The lexical half of search: jieba tokens, BM25 over them, and reciprocal rank fusion with the dense half.

Why both: the encoder finds a course from a paraphrase that shares no words with it, while BM25 is precise on
names, numbers and rare terms the encoder blurs.  Reciprocal rank fusion (Cormack et al., SIGIR 2009)
combines the two rankings without calibrating their scores against each other.
"""

from __future__ import annotations

import hashlib
import logging
import re
from collections.abc import Iterable, Mapping, Sequence
from typing import Any

__all__ = ["Tokenizer", "build_bm25", "load_bm25", "rrf_fuse"]

_TOKEN_OK = re.compile(r"[\w\u4e00-\u9fff]", re.UNICODE)
#: Function words that carry no topic; single characters and a few frequent particles.
_STOPWORDS = frozenset(
    "的 了 和 与 及 或 在 是 为 对 把 被 从 向 以 等 中 上 下 之 其 这 那 也 都 就 而 并 又 由 于 将 让 使 "
    "如何 怎么 怎样 什么 哪些 一个 一些 有关 关于 我们 我 你 他 她 它 请 想 要 能 会 可以 进行 相关".split()
)


class Tokenizer:
    """jieba in search mode with the topic scheme's labels as whole words, minus punctuation and stopwords.

    A private ``jieba.Tokenizer`` keeps the added words out of jieba's global dictionary.  ``fingerprint``
    changes when the added words do, so a stored BM25 index made with other words is rebuilt.
    """

    def __init__(self, words: Iterable[str] = ()) -> None:
        import jieba

        jieba.setLogLevel(logging.WARNING)
        self._words = tuple(sorted({w.strip() for w in words if w and len(w.strip()) > 1}))
        self._jieba = jieba.Tokenizer()
        for word in self._words:
            self._jieba.add_word(word)
        self.fingerprint = hashlib.sha256(
            ("\n".join(self._words) + f"|jieba {jieba.__version__}").encode("utf-8")
        ).hexdigest()[:16]

    def __call__(self, text: str) -> list[str]:
        tokens = (t.strip().lower() for t in self._jieba.lcut_for_search(text or ""))
        return [t for t in tokens if t and _TOKEN_OK.search(t) and t not in _STOPWORDS]

    @classmethod
    def for_topics(cls, topic_props: Iterable[Mapping[str, Any]]) -> Tokenizer:
        """A tokenizer that knows every topic label and synonym as a word."""
        words: list[str] = []
        for props in topic_props:
            words.append(str(props.get("name") or ""))
            words.extend(str(a) for a in props.get("altLabels") or ())
        return cls(w for word in words for w in re.split(r"[、，,“”\"《》（）()\s]+", word))


def build_bm25(tokenizer: Tokenizer, texts: Sequence[str]) -> Any:
    """A BM25 index (``bm25s``) over ``texts`` in order; an empty text still takes its row."""
    import bm25s

    retriever = bm25s.BM25()
    corpus = [tokenizer(text) or [""] for text in texts]
    if corpus:
        retriever.index(corpus, show_progress=False)
    return retriever


def load_bm25(path: str) -> Any:
    """A BM25 index saved with ``retriever.save(path)``."""
    import bm25s

    return bm25s.BM25.load(path, show_progress=False)


def rrf_fuse(
    rankings: Sequence[Sequence[str]], k: int = 60, weights: Sequence[float] | None = None
) -> list[tuple[str, float]]:
    """Reciprocal rank fusion: ``Σ wᵢ / (k + rankᵢ(d))`` over the rankings that contain ``d``, best first.

    Ties keep the order of first appearance (rankings earlier in the list win), so results are stable.

    >>> rrf_fuse([["a", "b"], ["b", "c"]], k=1)
    [('b', 0.8333333333333333), ('a', 0.5), ('c', 0.3333333333333333)]
    """
    weights = weights or [1.0] * len(rankings)
    scores: dict[str, float] = {}
    for ranking, weight in zip(rankings, weights):
        for rank, item in enumerate(ranking, start=1):
            scores[item] = scores.get(item, 0.0) + weight / (k + rank)
    order = {item: i for i, item in enumerate(dict.fromkeys(x for r in rankings for x in r))}
    return sorted(scores.items(), key=lambda kv: (-kv[1], order[kv[0]]))


