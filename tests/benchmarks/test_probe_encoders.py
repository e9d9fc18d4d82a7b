"""The KOTE linear probe runs alone on the shipped model's kote_heldout rows and writes its JSON (real data; a
cheap stand-in encoder replaces e5 so the test does not spend minutes encoding)."""

from __future__ import annotations

import hashlib
import json
import shutil

import numpy as np
import pytest

from redheart.pipelines.registration import DEFAULT_MODEL_DIR
from redheart.training.metrics import SHRINKAGE_WEIGHTS


def _load_probe(load_benchmark, monkeypatch):
    probe = load_benchmark("probe_encoders")
    calls = []

    def hashed_bigrams(texts: list[str]) -> np.ndarray:
        out = np.zeros((len(texts), 64), dtype=np.float32)
        for i, t in enumerate(texts):
            for a, b in zip(t, t[1:], strict=False):
                out[i, hashlib.md5((a + b).encode()).digest()[0] % 64] += 1
        return out / np.maximum(np.linalg.norm(out, axis=1, keepdims=True), 1e-9)

    def fake() -> object:
        calls.append(1)
        return probe.Encoder("e5", "fake", hashed_bigrams, lambda ts: ([len(t) for t in ts], 0))

    monkeypatch.setitem(probe.FACTORIES, "e5", fake)
    return probe, calls


def test_kote_probe_alone_on_the_models_rows(tmp_path, data_dir, monkeypatch, capsys, load_benchmark):
    probe, calls = _load_probe(load_benchmark, monkeypatch)
    shipped = json.loads((DEFAULT_MODEL_DIR / "eval_results.json").read_text())
    out = tmp_path / "probe.json"
    argv = ["--sets", "kote", "--encoders", "e5", "--train-samples", "600", "--c-grid", "0.01", "0.1"]
    argv += ["--data-dir", str(data_dir), "--cache-dir", str(tmp_path / "cache"), "--json", str(out)]
    assert probe.main(argv) == 0
    record = json.loads(out.read_text())
    kote = record["sets"]["kote"]
    assert kote["n_eval"] == shipped["sizes"]["kote"]["evaluated"] == 1000
    assert kote["n_train"] == 600 and kote["labels"] == 44 and kote["checked_against_eval_results"]
    assert set(record["probes"]) == {"e5"} and set(record["probes"]["e5"]) == {"kote"}
    result = record["probes"]["e5"]["kote"]
    assert 0 < result["macro_f1"] < 1 and 0 < result["micro_f1"] < 1 and result["c"] in (0.01, 0.1)
    assert result["shrink_weight"] in SHRINKAGE_WEIGHTS and 0 < result["macro_f1_shrunk"] < 1
    assert record["model"]["figures"]["kote"]["macro_f1"] == shipped["metrics"]["kote_heldout"]["macro_f1"]
    printed = capsys.readouterr().out
    assert "KOTE held-out (n=1,000)" in printed and "red-heart-small-e5" in printed

    # a rerun reads the cached embeddings: the encoder is never loaded
    assert probe.main(argv) == 0
    assert len(calls) == 1
    assert json.loads(out.read_text())["probes"]["e5"]["kote"]["macro_f1"] == result["macro_f1"]


def test_kote_probe_refuses_rows_that_differ_from_the_models(tmp_path, data_dir, monkeypatch, load_benchmark):
    probe, _ = _load_probe(load_benchmark, monkeypatch)
    model = tmp_path / "model"
    model.mkdir()
    for name in ("config.json", "redheart_training.json"):
        shutil.copyfile(DEFAULT_MODEL_DIR / name, model / name)
    results = json.loads((DEFAULT_MODEL_DIR / "eval_results.json").read_text())
    results["sizes"]["kote"]["evaluated"] = 999
    (model / "eval_results.json").write_text(json.dumps(results))
    argv = ["--sets", "kote", "--encoders", "e5", "--data-dir", str(data_dir), "--model-dir", str(model)]
    with pytest.raises(SystemExit, match="1000 evaluated rows here but 999"):
        probe.main([*argv, "--cache-dir", str(tmp_path / "cache")])
