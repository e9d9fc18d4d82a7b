"""TimeTravel (Qin et al. 2019): counterfactual story rewriting on ROCStories.

Local layout (``$RH_DATA_DIR/timetravel``): ``dev_data.json``, JSON lines with ``story_id``, ``premise``,
``initial``, ``counterfactual``, ``original_ending`` and ``edited_ending`` (three human rewrites joined by
``<SEP>``). Only the dev part is here; the catalog splits it seeded into train/eval by story.

Mapping: ``text`` = premise + initial + original ending (what happened); ``alternatives`` = premise +
counterfactual + each edited ending (what would have happened instead). ``regret`` stays None: the data
set says how the story would have gone, not whether that would have been better, so there is no honest
regret label. Regret on these rows is derived at training time from the model's own utility,
``max(0, max_a u(alternative a) - u(text))`` (docs/DESIGN.md: regret.potential), i.e. they supervise the
regret head only through the utility head that ETHICS grounds. The edited endings lack the space after a
sentence end ("culture.He had"); it is restored.

Hub route: no default Hub id; ``source=<Hub id>`` must have the same columns.
"""

from __future__ import annotations

import json
import re
from typing import Any

from .common import (
    IssueLog,
    ResolvedSource,
    Rows,
    SourceSpec,
    clean_text,
    load_hub_split,
    read_text,
)
from .loader import LoadOptions, SetReader, load

SPEC = SourceSpec(
    name="timetravel",
    folder="timetravel",
    files={"dev": "dev_data.json"},
    expected="TimeTravel: dev_data.json (JSON lines: story_id, premise, initial, counterfactual, "
    "original_ending, edited_ending joined by <SEP>)",
)
_FIELDS = ("premise", "initial", "counterfactual", "original_ending", "edited_ending")
_MISSING_SPACE = re.compile(r"([.!?])(?=[A-Z])")


def _fix_spacing(s: str) -> str:
    return _MISSING_SPACE.sub(r"\1 ", s)


def read_timetravel(split: str, res: ResolvedSource, issues: IssueLog) -> Rows:
    if res.kind == "hub":
        ds = load_hub_split(res, split)
        fi = issues.open(f"hub:{res.hub_id}/{split}", unit="item")
        records = list(enumerate(ds.to_list(), start=1))
    else:
        path = res.file(split)
        fi = issues.open(path)
        records = []
        lines = read_text(path).split("\n")
        if lines and lines[-1] == "":
            lines.pop()
        for i, line in enumerate(lines, start=1):
            if not line.strip():
                fi.rows += 1
                fi.bad(i, "blank line")
                continue
            try:
                records.append((i, json.loads(line)))
            except json.JSONDecodeError:
                fi.rows += 1
                fi.bad(i, "invalid JSON")
    rows = Rows()
    for line, item in records:
        fi.rows += 1
        if not isinstance(item, dict):
            fi.bad(line, "item is not a JSON object")
            continue
        parts = {k: clean_text(item.get(k)) for k in _FIELDS}
        empty = [k for k, v in parts.items() if not v]
        if empty:
            fi.bad(line, "missing or empty field(s): " + ", ".join(empty))
            continue
        endings = [_fix_spacing(clean_text(e)) for e in parts["edited_ending"].split("<SEP>")]
        endings = [e for e in endings if e]
        if not endings:
            fi.bad(line, "no edited ending")
            continue
        story = str(item.get("story_id") or f"{split}:{line}")
        premise = parts["premise"]
        rows.add(
            id=story,
            group=f"timetravel:{story}",
            text=f"{premise} {parts['initial']} {parts['original_ending']}",
            language="en",
            source="timetravel",
            split=split,
            alternatives=[f"{premise} {parts['counterfactual']} {e}" for e in endings],
        )
        fi.kept += 1
    issues.close(fi, f"timetravel/{split}")
    return rows


READER = SetReader("timetravel", SPEC, read_timetravel)


def load_timetravel(split: str = "dev", **options: Any):
    """TimeTravel original ``split`` (locally only "dev"): stories with counterfactual alternatives.

    ``options``: the fields of :class:`~.loader.LoadOptions` (``data_dir``, ``max_samples``, ...).
    """
    return load(READER, split, LoadOptions(**options))
