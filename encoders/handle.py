"""One loaded encoder: its model and tokenizer, and the token-level I/O the pipeline windows over.

Windows (:mod:`redheart.pipelines.windows`) are cut from each encoder's :class:`TokenizedText`; the handle
adds the encoder's special tokens around a window's content tokens and runs the model on padded rows.
"""

from __future__ import annotations

from collections.abc import Sequence
from contextlib import nullcontext
from dataclasses import dataclass, field
from typing import Any

import torch
import torch.nn.functional as F


@dataclass(frozen=True)
class TokenizedText:
    """One encoder's content tokens of a text (no special tokens) and each token's start character."""

    ids: tuple[int, ...]
    starts: tuple[int, ...]


@dataclass
class EncoderHandle:
    """One loaded encoder: model, tokenizer, and what the pipeline needs to window and report it."""

    name: str
    spec: dict[str, Any]
    source: str
    revision: str | None
    model: Any
    tokenizer: Any
    max_tokens: int
    prefix_ids: tuple[int, ...]
    suffix_ids: tuple[int, ...]
    pad_id: int
    frozen: bool = True
    device: torch.device = field(default_factory=lambda: torch.device("cpu"))

    @property
    def languages(self) -> list[str]:
        return list(self.spec["languages"])

    @property
    def num_special(self) -> int:
        return len(self.prefix_ids) + len(self.suffix_ids)

    def content_budget(self, max_length: int | None = None) -> int:
        """Content tokens of one window of ``max_length`` tokens (None, or more than the encoder takes: its own
        window), the special tokens left out; at least 1, so that every text keeps a token."""
        window = self.max_tokens if max_length is None else min(max_length, self.max_tokens)
        return max(1, window - self.num_special)

    def describe(self) -> dict[str, Any]:
        """JSON-safe identity of this encoder (for output metadata and cache keys)."""
        return {
            "name": self.name,
            "model_name_or_path": self.spec["model_name_or_path"],
            "revision": self.spec.get("revision"),
            "resolved_revision": self.revision,
            "hidden_size": self.spec["hidden_size"],
            "languages": self.languages,
            "max_tokens": self.max_tokens,
        }

    def tokenize(self, texts: Sequence[str]) -> list[TokenizedText]:
        """Content tokens (no special tokens, no truncation) and their start characters, per text."""
        encoded = self.tokenizer(
            list(texts), add_special_tokens=False, return_offsets_mapping=True, verbose=False
        )
        return [
            TokenizedText(tuple(ids), tuple(start for start, _ in offsets))
            for ids, offsets in zip(encoded["input_ids"], encoded["offset_mapping"], strict=True)
        ]

    def with_specials(self, content_ids: Sequence[int]) -> list[int]:
        return [*self.prefix_ids, *content_ids, *self.suffix_ids]

    def pad(self, rows: Sequence[Sequence[int]]) -> tuple[torch.Tensor, torch.Tensor]:
        """``(input_ids, attention_mask)`` of ``rows`` of token ids, right-padded with this tokenizer's pad id."""
        length = max(len(row) for row in rows)
        ids = torch.full((len(rows), length), self.pad_id, dtype=torch.long)
        mask = torch.zeros((len(rows), length), dtype=torch.long)
        for i, row in enumerate(rows):
            ids[i, : len(row)] = torch.tensor(row, dtype=torch.long)
            mask[i, : len(row)] = 1
        return ids, mask

    def run(
        self, rows: Sequence[Sequence[int]], max_tokens: int | None = None
    ) -> tuple[torch.Tensor, torch.Tensor]:
        """Pad ``rows`` of token ids (special tokens included) and return ``(last_hidden_state, mask)``.

        With ``max_tokens`` the encoder reads consecutive groups of rows of at most that many padded tokens (one
        row at least) and their states are padded back into one batch: on a CPU, long rows run faster per row a
        few at a time (their activations stay in cache). Positions past a row's length hold zeros then.
        """
        groups = token_groups([len(row) for row in rows], max_tokens)
        parts = [self._run_padded([rows[i] for i in group]) for group in groups]
        if len(parts) == 1:
            return parts[0]
        length = max(hidden.shape[1] for hidden, _ in parts)
        hidden = torch.cat([F.pad(h, (0, 0, 0, length - h.shape[1])) for h, _ in parts])
        mask = torch.cat([F.pad(m, (0, length - m.shape[1])) for _, m in parts])
        return hidden, mask

    def _run_padded(self, rows: Sequence[Sequence[int]]) -> tuple[torch.Tensor, torch.Tensor]:
        ids, mask = self.pad(rows)
        context = torch.inference_mode() if self.frozen else nullcontext()
        with context:
            out = self.model(input_ids=ids.to(self.device), attention_mask=mask.to(self.device))
        return out.last_hidden_state, mask.to(self.device)


def token_groups(lengths: Sequence[int], max_tokens: int | None) -> list[range]:
    """Consecutive index ranges of ``lengths`` whose rows x longest length stays within ``max_tokens`` (a row longer
    than that alone); one range of everything when ``max_tokens`` is None."""
    if max_tokens is None:
        return [range(len(lengths))]
    groups, start, longest = [], 0, 0
    for i, length in enumerate(lengths):
        longest = max(longest, length)
        if i > start and (i + 1 - start) * longest > max_tokens:
            groups.append(range(start, i))
            start, longest = i, length
    groups.append(range(start, len(lengths)))
    return groups
