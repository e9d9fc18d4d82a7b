"""The SURD benchmark scores what the pipeline reports: its error equals one computed here from the exact shares."""

from __future__ import annotations

import json

import numpy as np
import pytest
from transformers import pipeline

from redheart.configuration_redheart.labels import SURD_SHARES
from redheart.encoders.testing import build_tiny_system
from redheart.pipelines.explain import plan_clauses
from redheart.training.data.surd_targets import surd_labels

TEXTS = [
    "I lied, but it saved her feelings.",
    "I broke my promise to a friend and worked late.",
    "오늘은 비가 와서 우울했고 일도 많았다.",
    "She smiled at the kids, but the rain ruined the picnic, so we went home.",
    "He stole the bread because his family was hungry.",
    "친구와의 약속을 어기고 야근을 했다.",
]
TABLE = {"2": [0.3, 0.6, 0.1, 0.0], "3": [0.2, 0.3, 0.5, 0.0]}


def test_reported_and_head_errors_match_an_independent_computation(tmp_path, load_benchmark):
    model_dir = build_tiny_system(tmp_path / "model", surd_clause_shares=TABLE)
    texts_file = tmp_path / "texts.txt"
    texts_file.write_text("\n".join(TEXTS), encoding="utf-8")
    options = ["--binning", "range", "--min-spread", "1e-9"]  # a tiny model's judgement varies little
    out = tmp_path / "surd.json"
    bench = load_benchmark("eval_surd_head")
    report = bench.main(
        ["--model", str(model_dir), "--texts-file", str(texts_file), "--json", str(out), *options]
    )
    assert json.loads(out.read_text()) == json.loads(json.dumps(report))

    pipe = pipeline("ethics-emotion", model=str(model_dir))
    exact, status = surd_labels(TEXTS, pipe, binning="range", min_spread=1e-9)
    scored = [i for i, s in enumerate(status) if s == "ok"]
    assert scored, "no text with a non-constant judgement"
    rows = [TABLE[str(min(plan_clauses(TEXTS[i]).n, 3))] for i in scored]
    heads = [
        pipe(TEXTS[i], return_tensors=True)["tensors"]["surd_shares"].reshape(-1).tolist() for i in scored
    ]
    group = report["groups"]["all"]
    assert group["scored"] == len(scored)
    assert group["reported_by"] == {"clause_count": len(scored)}
    assert group["mae"]["overall"] == pytest.approx(np.abs(exact[scored] - rows).mean(), abs=1e-9)
    assert group["head_mae"]["overall"] == pytest.approx(np.abs(exact[scored] - heads).mean(), abs=1e-6)
    for j, share in enumerate(SURD_SHARES):
        assert group["mae"][share] == pytest.approx(np.abs(exact[scored, j] - np.array(rows)[:, j]).mean())
