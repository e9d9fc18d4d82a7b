"""ONNX backend: export of every route, the pipeline's ``backend="onnx"``, int8, version checks, the command line."""

from __future__ import annotations

import json
import shutil
import subprocess
import sys

import numpy as np
import pytest
import torch
from transformers import pipeline

pytest.importorskip("onnxruntime")
pytest.importorskip("onnxscript")

from redheart.onnx_backend import OnnxVersionError, export_onnx, load_runner, model_fingerprint  # noqa: E402
from redheart.onnx_backend.graph import model_routes  # noqa: E402
from redheart.onnx_backend.manifest import MANIFEST  # noqa: E402

TEXTS = [
    "I broke a promise to a friend to work overtime.",
    "오늘 동생이 시험에 합격해서 너무 기뻤다",
    "ok",
    " ".join(["I kept thinking about what I had said to my sister that night."] * 12),  # several windows
]


@pytest.fixture(scope="module")
def exported(tiny_pipeline, tmp_path_factory):
    folder = tmp_path_factory.mktemp("onnx") / "tiny"
    manifest = export_onnx(tiny_pipeline.model, tiny_pipeline.encoders, folder, progress=False)
    return folder, manifest


def _numbers(value, prefix=""):
    """Every number of a result, by path (to compare two results field by field)."""
    if isinstance(value, dict):
        return {k: v for key, item in value.items() for k, v in _numbers(item, f"{prefix}.{key}").items()}
    if isinstance(value, list):
        return {k: v for i, item in enumerate(value) for k, v in _numbers(item, f"{prefix}[{i}]").items()}
    if isinstance(value, (int, float)) and not isinstance(value, bool):
        return {prefix: float(value)}
    return {}


def test_every_route_is_exported_with_its_differences_to_torch(exported, tiny_pipeline):
    folder, manifest = exported
    assert list(manifest["routes"]) == ["enc_a", "enc_a+enc_b"]  # English, and Korean (both encoders)
    assert [tuple(r["route"]) for r in manifest["routes"].values()] == model_routes(
        tiny_pipeline.encoders.languages
    )
    for route in manifest["routes"].values():
        assert set(route["files"]) == {"fp32", "int8"}
        assert max(route["max_abs_diff"]["fp32"].values()) < 1e-4
        assert all(np.isfinite(v) for v in route["max_abs_diff"]["int8"].values())
        assert (folder / route["files"]["int8"]).stat().st_size > 0
    # one graph per encoder, its two layers fused into onnxruntime's transformer kernels (BERT and RoBERTa)
    assert [(name, e["model_type"]) for name, e in manifest["encoders"].items()] == [
        ("enc_a", "bert"),
        ("enc_b", "roberta"),
    ]
    for encoder in manifest["encoders"].values():
        assert encoder["fused"]["Attention"] == 2 and encoder["fused"]["SkipLayerNormalization"] == 4
        assert all((folder / f).is_file() for f in (*encoder["files"].values(), *encoder["weights"]["int8"]))
    on_disk = json.loads((folder / MANIFEST).read_text(encoding="utf-8"))
    assert on_disk["fingerprint"] == model_fingerprint(
        tiny_pipeline.model, {n: tiny_pipeline.encoders[n].model for n in tiny_pipeline.encoders}
    )


def test_onnx_fp32_pipeline_gives_the_torch_results(exported, tiny_system, tiny_pipeline):
    folder, _ = exported
    onnx = pipeline(
        "ethics-emotion", model=str(tiny_system), backend="onnx", onnx_folder=folder, onnx_precision="fp32"
    )
    expected, got = tiny_pipeline(TEXTS), onnx(TEXTS)
    assert got[3]["metadata"]["chunks"]["count"] > 1  # windows are batched and aggregated the same way
    for want, have in zip(expected, got, strict=True):
        assert have["metadata"]["model"]["backend"] == "onnx-fp32"
        assert want["metadata"]["model"]["backend"] == "torch"
        a, b = _numbers(want["analysis"]), _numbers(have["analysis"])
        assert a.keys() == b.keys()
        worst = max(abs(a[k] - b[k]) for k in a)
        assert worst < 1e-4, worst
        assert [t["label"] for t in want["analysis"]["emotion"]["top"]] == [
            t["label"] for t in have["analysis"]["emotion"]["top"]
        ]


def test_int8_pipeline_stays_close_and_reports_its_backend(exported, tiny_system, tiny_pipeline):
    folder, _ = exported
    int8 = pipeline("ethics-emotion", model=str(tiny_system), backend="onnx", onnx_folder=folder)
    result = int8(TEXTS[0])
    assert result["metadata"]["model"]["backend"] == "onnx-int8"
    want = tiny_pipeline(TEXTS[0])["analysis"]["emotion"]["labels"]
    have = result["analysis"]["emotion"]["labels"]
    assert max(abs(want[k] - have[k]) for k in want) < 0.05  # random tiny weights: rounding stays small


def test_a_folder_of_another_model_or_version_is_refused(exported, tiny_pipeline, tmp_path):
    folder, manifest = exported
    model, encoders = tiny_pipeline.model, tiny_pipeline.encoders
    other = tmp_path / "other"
    shutil.copytree(folder, other)
    with torch.no_grad():
        parameter = next(model.parameters())
        kept = parameter.clone()
        parameter.add_(1.0)
        try:
            with pytest.raises(OnnxVersionError, match=f"{MANIFEST}.*another model version"):
                load_runner(model, encoders, other)
        finally:
            parameter.copy_(kept)
    stale = {**manifest, "format_version": 0}
    (other / MANIFEST).write_text(json.dumps(stale), encoding="utf-8")
    with pytest.raises(OnnxVersionError, match="format version 0"):
        load_runner(model, encoders, other)
    without_encoder = {**manifest, "encoders": {"enc_a": manifest["encoders"]["enc_a"]}}
    (other / MANIFEST).write_text(json.dumps(without_encoder), encoding="utf-8")
    with pytest.raises(OnnxVersionError, match="reads encoder 'enc_b', which has no graph entry"):
        load_runner(model, encoders, other)
    (other / MANIFEST).write_text(json.dumps(manifest), encoding="utf-8")
    (other / manifest["encoders"]["enc_a"]["files"]["int8"]).unlink()
    with pytest.raises(FileNotFoundError, match="enc_a.int8.onnx.*encoder 'enc_a' is missing"):
        load_runner(model, encoders, other)
    (other / MANIFEST).write_text("{not json", encoding="utf-8")
    with pytest.raises(OnnxVersionError, match="unreadable"):
        load_runner(model, encoders, other)


def test_bad_backend_options_are_clear_errors(tiny_system, exported):
    with pytest.raises(ValueError, match="backend must be one of"):
        pipeline("ethics-emotion", model=str(tiny_system), backend="tensorrt")
    with pytest.raises(ValueError, match="cache_size"):
        pipeline(
            "ethics-emotion", model=str(tiny_system), backend="onnx", onnx_folder=exported[0], cache_size=8
        )
    with pytest.raises(ValueError, match="onnx precision"):
        pipeline(
            "ethics-emotion",
            model=str(tiny_system),
            backend="onnx",
            onnx_folder=exported[0],
            onnx_precision="int4",
        )


def test_export_command_line_writes_a_checked_folder(tiny_system, tmp_path):
    out = tmp_path / "export"
    done = subprocess.run(
        [
            sys.executable,
            "-m",
            "redheart.onnx_backend",
            str(out),
            "--model",
            str(tiny_system),
            "--precision",
            "fp32",
        ],
        capture_output=True,
        text=True,
        timeout=600,
    )
    assert done.returncode == 0, done.stderr[-2000:]
    manifest = json.loads((out / MANIFEST).read_text(encoding="utf-8"))
    assert all(set(r["files"]) == {"fp32"} for r in manifest["routes"].values())
    # the printed differences are the manifest's, recomputed here from the exported graphs run by hand
    import onnxruntime as ort

    from redheart.onnx_backend.export import CHECK_TEXTS, token_inputs
    from redheart.onnx_backend.graph import InferenceGraph

    def session(file):
        return ort.InferenceSession(str(out / file), providers=["CPUExecutionProvider"])

    pipe = pipeline("ethics-emotion", model=str(tiny_system))
    route = manifest["routes"]["enc_a"]
    graph = InferenceGraph(pipe.model, {n: pipe.encoders[n].model for n in pipe.encoders}, ("enc_a",)).eval()
    ids, mask, languages = token_inputs(pipe.encoders, ("enc_a",), CHECK_TEXTS)
    encoder = session(manifest["encoders"]["enc_a"]["files"]["fp32"])
    (states,) = encoder.run(["hidden_states"], {"input_ids": ids.numpy(), "attention_mask": mask.numpy()})
    feeds = {
        "enc_a_hidden_states": states,
        "enc_a_attention_mask": mask.numpy(),
        "language_ids": languages.numpy(),
    }
    results = session(route["files"]["fp32"]).run(route["outputs"], feeds)
    with torch.inference_mode():
        expected = graph.named_outputs(ids, mask, languages)
    for name, value in zip(route["outputs"], results, strict=True):
        assert float(np.abs(value - expected[name].numpy()).max()) == pytest.approx(
            route["max_abs_diff"]["fp32"][name], abs=1e-6
        )
    assert "enc_a fp32: largest" in done.stdout
    again = subprocess.run(
        [sys.executable, "-m", "redheart.onnx_backend", str(out), "--model", str(tiny_system)],
        capture_output=True,
        text=True,
        timeout=600,
    )
    assert again.returncode != 0 and "not empty" in again.stderr


def test_corpus_analysis_runs_on_the_onnx_backend(exported, tiny_system, tiny_pipeline, tmp_path):
    """``analyze-corpus --backend onnx``: the same rows as torch (fp32 graphs), the backend recorded per run."""
    import pyarrow.parquet as pq

    from redheart.corpus.cli import build_parser, job_from_args
    from redheart.corpus.reading import Columns, CorpusSource
    from redheart.corpus.run import CorpusJob, analyze_corpus

    source = tmp_path / "in.jsonl"
    source.write_text(
        "\n".join(json.dumps({"text": t}, ensure_ascii=False) for t in TEXTS + [""]), encoding="utf-8"
    )
    onnx = pipeline(
        "ethics-emotion",
        model=str(tiny_system),
        backend="onnx",
        onnx_folder=exported[0],
        onnx_precision="fp32",
    )
    outputs = {}
    for name, pipe in (("torch", tiny_pipeline), ("onnx", onnx)):
        corpus = CorpusSource.from_path(source, columns=Columns("text", None))
        manifest = analyze_corpus(CorpusJob(corpus, tmp_path / name, progress=False), pipe=pipe)
        assert manifest["model"]["backend"] == ("torch" if name == "torch" else "onnx-fp32")
        outputs[name] = pq.read_table(tmp_path / name).to_pylist()
    assert [r["error"] is not None for r in outputs["onnx"]] == [False] * len(TEXTS) + [True]
    for a, b in zip(outputs["torch"], outputs["onnx"], strict=True):
        for key, value in a.items():
            if isinstance(value, float):
                assert abs(value - b[key]) < 1e-4, key
            else:
                assert value == b[key], key
    parser = build_parser()
    job = job_from_args(parser.parse_args([str(source), str(tmp_path / "x"), "--backend", "onnx"]), parser)
    assert (job.backend, job.onnx_precision) == ("onnx", "int8")


def test_int8_quantizes_the_encoders_but_their_gelu_fed_products_and_keeps_the_model_float(exported):
    """scope="encoders": encoder products and fused attention become int8, except the products fed by a GELU; the
    Red Heart model's graphs stay float32."""
    from collections import Counter

    import onnx

    folder, manifest = exported

    def nodes(file):
        return onnx.load(str(folder / file), load_external_data=False).graph.node

    for entry in manifest["encoders"].values():
        source, quantized = nodes(entry["files"]["fp32"]), nodes(entry["files"]["int8"])
        kinds = {n.name: n.op_type for n in quantized}
        producer = {output: node for node in source for output in node.output}
        gelu_fed = [
            n.name for n in source if n.op_type == "MatMul" and producer[n.input[0]].op_type == "BiasGelu"
        ]
        others = [n.name for n in source if n.op_type == "MatMul" and n.name not in gelu_fed]
        assert (
            len(gelu_fed) == len(others) / 2 == 2
        )  # per layer: down-projection; attention output, up-projection
        assert all(kinds.get(name) == "MatMul" for name in gelu_fed)  # left in float32
        assert all(kinds.get(f"{name}_quant") == "MatMulInteger" for name in others)
        assert Counter(kinds.values())["QAttention"] == 2 and "Attention" not in kinds.values()
    for route in manifest["routes"].values():
        assert route["files"]["int8"] == route["files"]["fp32"]  # one float32 model graph serves both
        ops = {n.op_type for n in nodes(route["files"]["int8"])}
        assert not ops & {"MatMulInteger", "DynamicQuantizeLinear", "QAttention"}


@pytest.mark.data
def test_evaluation_through_onnx_matches_torch(tiny_system, exported, tmp_path):
    """`evaluate --backend onnx` (fp32 graphs) reads the same tokens as torch -- here with no training record, so
    each encoder's own window -- and gives the same metrics up to float rounding."""
    import os

    from redheart.training.evaluate import evaluate_model

    data_dir = os.environ.get("RH_DATA_DIR")
    if not data_dir:
        pytest.skip("RH_DATA_DIR is not set (the evaluation sets live in the data folder)")
    common = {"data_dir": data_dir, "max_per_set": 24, "cache_dir": str(tmp_path), "progress": False}
    quiet = {"print_fn": lambda *a, **k: None}
    torch_results = evaluate_model(tiny_system, **common, **quiet)
    onnx_results = evaluate_model(
        tiny_system, **common, **quiet, backend="onnx", onnx_folder=str(exported[0]), onnx_precision="fp32"
    )
    scored = 0
    for name, metrics in torch_results["metrics"].items():
        for key, value in metrics.items():
            if isinstance(value, float) and key in ("macro_f1", "accuracy", "pairwise_accuracy"):
                assert onnx_results["metrics"][name][key] == pytest.approx(value, abs=0.02), (name, key)
                scored += 1
    assert scored >= 8, torch_results["metrics"]
