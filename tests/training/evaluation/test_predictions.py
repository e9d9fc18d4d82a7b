"""Predictions from token ids in torch (the evaluation's ``quantize="int8"`` path): the same outputs as the
pipeline's own torch path on the same texts, quantized or not."""

from __future__ import annotations

import numpy as np
import pytest
from transformers import pipeline

import redheart  # noqa: F401  (registers the task)
from redheart.configuration_redheart.tasks import LANGUAGE_IDS
from redheart.training.collate import ExampleTable
from redheart.training.evaluation.predictions import TorchRunner
from redheart.training.predict import predict_from_tokens

TEXTS = ["I broke my promise to a friend.", "친구와의 약속을 어겼다.", "Helping a neighbour move today."]
LANGUAGES = ["en", "ko", "en"]
COMPARED = ("emotion_probs", "kote_probs", "sentiment", "acceptability_probs", "utility", "confidence")


def _table(texts: list[str], languages: list[str]) -> ExampleTable:
    n = len(texts)
    empty = np.zeros((n, 1), dtype=np.float32)
    return ExampleTable(
        text=list(texts),
        worse=[None] * n,
        language=np.array([LANGUAGE_IDS[x] for x in languages]),
        source=np.zeros(n, dtype=np.int64),
        emotion=empty,
        kote=empty,
        sentiment=np.zeros(n),
        acceptability=empty,
        regret=np.zeros(n),
        surd=empty,
    )


@pytest.mark.parametrize("quantize", [None, "int8"])
def test_the_torch_runner_gives_the_pipelines_outputs(tiny_system, quantize):
    pipe = pipeline("ethics-emotion", model=str(tiny_system), dtype="float32", quantize=quantize)
    runner = TorchRunner(pipe.model, pipe.encoders, quantize)
    # one text per call on both sides: int8 activations are scaled per call, so batch-mates would shift them
    predicted = predict_from_tokens(runner, pipe.encoders, _table(TEXTS, LANGUAGES), None, batch_size=1)
    results = pipe(TEXTS, return_tensors=True, batch_size=1)
    compared = 0
    for i, result in enumerate(results):
        assert result["metadata"]["chunks"]["count"] == 1  # one window: its outputs are the text's
        for name in COMPARED:
            expected = result["tensors"].get(name)
            if expected is None or name not in predicted:
                continue
            np.testing.assert_allclose(predicted[name][i], expected.float().numpy(), atol=1e-4, err_msg=name)
            compared += 1
    assert compared >= 3 * len(TEXTS)
    assert runner.describe() == {"backend": "torch", "quantize": quantize}
