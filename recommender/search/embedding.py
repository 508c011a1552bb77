"""Loading the sentence encoder used by the recommender, strictly offline.

The service must never download model weights at run time (production hosts
and CI have no model hub), so every load here is ``local_files_only``. The
default model is multilingual-e5-small rebuilt on disk by
``python -m scripts.model_build``; ``GANXUN_MODEL`` may name any other
sentence-transformers model that is already on disk (a folder, or a name that
is present in the local Hugging Face cache).

E5 models expect a ``"query: "`` / ``"passage: "`` prefix; the helpers
:func:`encode_queries` and :func:`encode_passages` apply the prompts that the
model folder declares, so callers never hand-build prefixes.
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np

if TYPE_CHECKING:  # pragma: no cover - import only for type checkers
    from sentence_transformers import SentenceTransformer

#: Environment variable that overrides where the default model is built/read.
MODEL_DIR_ENV = "GANXUN_MODEL_DIR"
#: Environment variable naming any sentence-transformers model to use instead.
MODEL_ENV = "GANXUN_MODEL"
#: Where the default model lives when ``GANXUN_MODEL_DIR`` is not set.
DEFAULT_MODEL_DIR = Path.home() / ".cache" / "ganxun" / "models" / "multilingual-e5-small"
#: Prompt names declared in the model folder's config_sentence_transformers.json.
QUERY_PROMPT_NAME = "query"
PASSAGE_PROMPT_NAME = "passage"
#: Batch size used by the encode helpers (a good CPU default for short texts).
DEFAULT_BATCH_SIZE = 32

_BUILD_HINT = "python -m scripts.model_build"


class ModelNotFoundError(RuntimeError):
    """Raised when the encoder is not on disk; the message says how to build it."""


def default_model_dir() -> Path:
    """Return the folder of the default model: ``$GANXUN_MODEL_DIR`` or the cache.

    This is the single place that resolves the default location; the builder
    (:mod:`scripts.model_build`) imports it so both always agree.
    """
    override = os.environ.get(MODEL_DIR_ENV, "").strip()
    return Path(override).expanduser() if override else DEFAULT_MODEL_DIR


def resolve_model_source(name_or_path: str | None = None) -> str:
    """Pick the model to load: the argument, else ``$GANXUN_MODEL``, else the default dir."""
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
    """Load the sentence encoder from local files only (``HF_HUB_OFFLINE=1`` semantics).

    ``name_or_path`` wins over ``$GANXUN_MODEL``, which wins over the default
    folder. Raises :class:`ModelNotFoundError` (Chinese message) when the model
    is not available locally, instead of trying the network.
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
    return np.ascontiguousarray(vectors, dtype=np.float32).reshape(len(texts), -1)


def encode_queries(
    model: SentenceTransformer, texts: Sequence[str], batch_size: int = DEFAULT_BATCH_SIZE
) -> np.ndarray:
    """Embed search queries (E5 ``"query: "`` prompt); shape ``(n, dim)``, unit rows."""
    return _encode(model, texts, QUERY_PROMPT_NAME, batch_size)


def encode_passages(
    model: SentenceTransformer, texts: Sequence[str], batch_size: int = DEFAULT_BATCH_SIZE
) -> np.ndarray:
    """Embed documents such as course descriptions (``"passage: "`` prompt); unit rows."""
    return _encode(model, texts, PASSAGE_PROMPT_NAME, batch_size)
