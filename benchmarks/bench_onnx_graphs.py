"""Where one text's time goes on the ONNX path: each encoder graph and the Red Heart model graph timed apart, the
whole ``pipeline(...)`` call beside them, and the model graph's kernel time by operator type.

The split says which lever is next for single-text latency: the encoders, the model graph (many small operators at
batch 1), or the Python around them (tokenization, windows, result formulas: the call minus the graphs). Operator
shares come from onnxruntime's own profiler on the model graph alone.

    python benchmarks/bench_onnx_graphs.py [--model DIR] [--precision int8|fp32] [--runs 100] [--json out.json]
    python benchmarks/bench_onnx_graphs.py --isa avx2   # onnxruntime held to its AVX2 kernels (CPUID masked)
"""

from __future__ import annotations

import argparse
import collections
import json
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

from transformers import pipeline

import redheart  # noqa: F401  (registers the ethics-emotion task)
from redheart.onnx_backend.export import token_inputs
from redheart.onnx_backend.graph import ENCODER_OUTPUT, model_routes, route_key
from redheart.pipelines.isa_hold import add_isa_argument, limit_isa, onnx_hold_refusal
from redheart.pipelines.precision import machine_info, machine_line
from redheart.pipelines.stage_metrics import quantile

DEFAULT_TEXT = "I broke a promise to a friend to work overtime, and now I regret it."


def _median_ms(call, runs: int, warmup: int) -> float:
    """p50 wall time of ``call()`` in ms, after ``warmup`` untimed calls."""
    for _ in range(warmup):
        call()
    times = []
    for _ in range(runs):
        started = time.perf_counter()
        call()
        times.append((time.perf_counter() - started) * 1e3)
    return quantile(sorted(times), 0.5)


def operator_shares(model_file: Path, feeds: dict[str, Any], runs: int) -> tuple[int, dict[str, float]]:
    """The graph's node count and each operator type's share of its kernel time over ``runs`` profiled runs."""
    import onnx
    import onnxruntime as ort

    nodes = len(onnx.load(str(model_file), load_external_data=False).graph.node)
    with tempfile.TemporaryDirectory() as scratch:
        options = ort.SessionOptions()
        options.enable_profiling = True
        options.profile_file_prefix = str(Path(scratch) / "profile")
        session = ort.InferenceSession(str(model_file), options, providers=["CPUExecutionProvider"])
        for _ in range(runs):
            session.run(None, feeds)
        events = json.loads(Path(session.end_profiling()).read_text())
    by_op: collections.Counter[str] = collections.Counter()
    for event in events:
        if event.get("cat") == "Node" and event["name"].endswith("_kernel_time"):
            by_op[event["args"]["op_name"]] += event["dur"]
    total = sum(by_op.values()) or 1
    return nodes, {op: value / total for op, value in by_op.most_common()}


def measure(model: str | None, precision: str, text: str, runs: int, warmup: int) -> dict[str, Any]:
    """Timings of one text: per encoder graph, the model graph, and the whole pipeline call (ms, p50)."""
    kwargs = {"model": model} if model else {}
    pipe = pipeline("ethics-emotion", backend="onnx", onnx_precision=precision, **kwargs)
    runner, encoders = pipe.onnx, pipe.encoders
    route = model_routes(encoders.languages)[0]
    tensors = [t.numpy() for t in token_inputs(encoders, route, [text])]
    model_feeds: dict[str, Any] = {}
    parts: dict[str, float] = {}
    for i, name in enumerate(route):
        ids, mask = tensors[2 * i], tensors[2 * i + 1]
        parts[f"encoder {name}"] = _median_ms(
            lambda n=name, a=ids, m=mask: runner.encode(n, a, m), runs, warmup
        )
        model_feeds[f"{name}_{ENCODER_OUTPUT}"] = runner.encode(name, ids, mask)
        model_feeds[f"{name}_attention_mask"] = mask
    model_feeds["language_ids"] = tensors[-1]
    key = route_key(route)
    model_session = runner.model_sessions[key]
    parts["model graph"] = _median_ms(lambda: model_session.run(None, model_feeds), runs, warmup)
    call = _median_ms(lambda: pipe(text), runs, warmup)
    model_file = runner.folder / runner.manifest["routes"][key]["files"][precision]
    nodes, shares = operator_shares(model_file, model_feeds, max(10, runs // 2))
    return {
        "route": key,
        "tokens": {name: int(tensors[2 * i + 1].sum()) for i, name in enumerate(route)},
        "parts_ms": parts,
        "pipeline_call_ms": call,
        "outside_graphs_ms": call - sum(parts.values()),
        "model_graph_nodes": nodes,
        "model_graph_operator_shares": shares,
    }


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--model", default=None, help="model folder or Hub id (default: the shipped model)")
    parser.add_argument("--precision", choices=("int8", "fp32"), default="int8")
    parser.add_argument("--text", default=DEFAULT_TEXT)
    parser.add_argument("--runs", type=int, default=100, help="timed calls per part")
    parser.add_argument("--warmup", type=int, default=20)
    parser.add_argument("--json", default=None)
    add_isa_argument(parser)
    args = parser.parse_args(argv)
    if args.runs < 1 or args.warmup < 0:
        parser.error("--runs must be >= 1 and --warmup >= 0")
    refusal = onnx_hold_refusal(args.isa)
    if refusal:
        parser.error(refusal)
    limit_isa(args.isa)
    info = machine_info(f"onnx-{args.precision}")
    print(machine_line(info), flush=True)
    result = measure(args.model, args.precision, args.text, args.runs, args.warmup)
    tokens = ", ".join(f"{name} {count}" for name, count in result["tokens"].items())
    print(
        f"one text ({tokens} tokens), route {result['route']!r}, onnx {args.precision}, p50 of {args.runs} runs:"
    )
    for part, ms in result["parts_ms"].items():
        print(f"  {part:<28} {ms:8.2f} ms")
    print(f"  {'outside the graphs':<28} {result['outside_graphs_ms']:8.2f} ms")
    print(f"  {'pipeline call':<28} {result['pipeline_call_ms']:8.2f} ms")
    print(f"model graph: {result['model_graph_nodes']} nodes; kernel time by operator type:")
    for op, share in list(result["model_graph_operator_shares"].items())[:12]:
        print(f"  {op:<28} {share:7.1%}")
    if args.json:
        payload = {"meta": {**info, "precision": args.precision, "runs": args.runs}, "result": result}
        Path(args.json).write_text(json.dumps(payload, indent=2) + "\n", encoding="utf-8")
    return 0


if __name__ == "__main__":
    sys.exit(main())
