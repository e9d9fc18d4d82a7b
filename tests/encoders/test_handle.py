"""EncoderHandle: the one place that says how many content tokens fit a window."""

from __future__ import annotations

import pytest

from redheart.encoders.handle import EncoderHandle, token_groups


def _handle(max_tokens: int, prefix: tuple[int, ...] = (0,), suffix: tuple[int, ...] = (2,)) -> EncoderHandle:
    spec = {"model_name_or_path": "x", "hidden_size": 8, "languages": ["*"]}
    return EncoderHandle("x", spec, "x", None, None, None, max_tokens, prefix, suffix, pad_id=1)


@pytest.mark.parametrize(
    ("max_tokens", "max_length", "expected"),
    [
        (128, None, 126),  # the encoder's own window, less [CLS] and [SEP]
        (128, 64, 62),  # a shorter window asked for
        (128, 512, 126),  # a longer one is capped at what the encoder takes
        (128, 2, 1),  # never below one content token
    ],
)
def test_content_budget(max_tokens, max_length, expected):
    assert _handle(max_tokens).content_budget(max_length) == expected


def test_content_budget_counts_every_special_token():
    assert _handle(32, prefix=(0, 5), suffix=(2,)).content_budget() == 29


@pytest.mark.parametrize(
    ("lengths", "max_tokens", "expected"),
    [
        ([420, 418, 410, 300, 52, 50], 1024, [(0, 2), (2, 4), (4, 6)]),  # rows x longest row <= 1024
        ([1200, 5], 1024, [(0, 1), (1, 2)]),  # a row longer than the cap runs alone
        ([52] * 16, 1024, [(0, 16)]),  # 832 tokens: one call
        ([3, 9, 2], 18, [(0, 2), (2, 3)]),  # the longest row so far counts, not the first
        ([3, 2], None, [(0, 2)]),  # no cap: one call
    ],
)
def test_token_groups(lengths, max_tokens, expected):
    groups = token_groups(lengths, max_tokens)
    assert [(g.start, g.stop) for g in groups] == expected
