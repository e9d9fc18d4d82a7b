"""Sliding windows over one text that every routed encoder can read at once.

Encoders tokenise differently, so a window is a *character* span: each encoder reads its own tokens whose
start offset lies in the span. Windows are cut greedily: from the current start, each encoder could take
``budget`` more tokens; the window ends where the first encoder runs out (the *limiting* encoder), so no
encoder exceeds its budget. The next window starts ``overlap`` limiting-encoder tokens before the end
(always moving forward). Each text is tokenised once per encoder; windows slice those token ids, so no
text is tokenised twice.

Aggregation (in the pipeline): a window's weight is the number of content tokens it holds, summed over
the encoders that read it; a multi-window text's outputs are the weight-averaged window outputs.
"""

from __future__ import annotations

from bisect import bisect_left
from dataclasses import dataclass

from .encoders_handle import TokenizedText

#: The smallest per-window content-token budget allowed (a window must make progress through the text).
MIN_BUDGET = 4


@dataclass(frozen=True)
class Window:
    """Characters ``[start, end)`` of a text and, per encoder, the token index range ``[a, b)`` it reads."""

    start: int
    end: int
    spans: dict[str, tuple[int, int]]

    @property
    def weight(self) -> int:
        """Content tokens in the window, summed over encoders (the aggregation weight)."""
        return sum(b - a for a, b in self.spans.values())


def plan_windows(
    tokens: dict[str, TokenizedText],
    budgets: dict[str, int],
    text_length: int,
    overlap: int = 0,
    limit: int | None = None,
) -> tuple[list[Window], bool]:
    """Cut a text into windows; return ``(windows, complete)``.

    ``budgets`` gives each encoder's content tokens per window; ``overlap`` is in tokens of the limiting
    encoder; ``limit`` stops after that many windows (``complete`` is then False if text was left over).
    """
    for name, budget in budgets.items():
        if budget < MIN_BUDGET:
            raise ValueError(
                f"encoder {name!r}: {budget} content tokens per window is too few (min {MIN_BUDGET})"
            )
    if overlap < 0:
        raise ValueError(f"overlap must be >= 0 tokens, got {overlap}")
    windows: list[Window] = []
    pos = 0
    while True:
        firsts = {name: bisect_left(t.starts, pos) for name, t in tokens.items()}
        end, limiter = text_length, None
        for name, t in tokens.items():
            k = firsts[name] + budgets[name]
            if k < len(t.starts):
                cut = t.starts[k]
                if cut <= pos:  # more than `budget` tokens start at one character: move to the next one
                    cut = next((s for s in t.starts[k:] if s > pos), text_length)
                if cut < end:
                    end, limiter = cut, name
        spans = {
            name: (firsts[name], min(bisect_left(t.starts, end), firsts[name] + budgets[name]))
            for name, t in tokens.items()
        }
        windows.append(Window(pos, end, spans))
        if limiter is None:
            return windows, True
        if limit is not None and len(windows) >= limit:
            return windows, False
        a, b = spans[limiter]
        starts = tokens[limiter].starts
        index = max(a + 1, b - overlap)
        nxt = starts[index] if index < len(starts) else end
        pos = nxt if pos < nxt <= end else end
