"""Korean acceptability distilled from English judgements: GoEmotions KO comments, each with the acceptability a
teacher model gives its English original.

Why: acceptability is supervised in English by ETHICS (four frameworks, about 90,000 rows) but in Korean only by
KoSBi (social-bias statements), so the model's Korean judgements drift toward "acceptable" and follow its English
ones on the same comments only loosely (``crosslingual_agreement`` in ``training/evaluate.py``). GoEmotions KO
translates GoEmotions EN row by row, so the teacher's judgement of an English comment is a soft target for its
Korean translation: what the model would say if it read Korean as well as English.

Local layout: a folder written by ``python -m redheart.training.distil_acceptability`` (not part of the data
folder: pass it as ``data.sources.goemotions_ko_ethics``), with ``train.jsonl`` / ``dev.jsonl`` -- one JSON object
per line: ``position`` (the comment's row in that GoEmotions split), ``text`` (Korean), ``framework`` (one of the
four), ``acceptable`` (the teacher's probability, in [0, 1]) -- and ``teacher.json`` (which model, on what).

Rows: ``group`` = ``goemotions:<split>:<position>``, the group of the GoEmotions rows themselves, so a training
run's validation part holds out the same comments here as in GoEmotions; ``acceptable`` is a probability, which
the BCE loss takes as a soft target.
"""

from __future__ import annotations

import json

from ...configuration_redheart.labels import ACCEPTABILITY_FRAMEWORKS
from .common import IssueLog, ResolvedSource, Rows, SourceSpec, clean_text, read_text
from .loader import SetReader

NAME = "goemotions_ko_ethics"
SPEC = SourceSpec(
    name=NAME,
    folder=NAME,
    files={"train": "train.jsonl", "dev": "dev.jsonl"},
    expected="train.jsonl/dev.jsonl (one JSON object per line: position, text, framework, acceptable in [0, 1]), "
    "written by `python -m redheart.training.distil_acceptability`",
)


def read_distilled(split: str, res: ResolvedSource, issues: IssueLog) -> Rows:
    """One split of the distilled folder as unified rows (a line that is not a valid row is counted malformed)."""
    if res.kind == "hub":
        raise ValueError(
            f"{NAME}: distilled targets are a local folder (the teacher's outputs), not a Hub data set"
        )
    path = res.file(split)
    fi = issues.open(path)
    rows = Rows()
    for line, raw in enumerate(read_text(path).splitlines(), start=1):
        if not raw.strip():
            continue
        fi.rows += 1
        try:
            item = json.loads(raw)
            position, text = int(item["position"]), clean_text(item["text"])
            framework, acceptable = item["framework"], float(item["acceptable"])
        except (ValueError, KeyError, TypeError) as exc:
            fi.bad(line, f"not a distilled row ({type(exc).__name__}: {exc})")
            continue
        if not text or framework not in ACCEPTABILITY_FRAMEWORKS or not 0.0 <= acceptable <= 1.0:  # NaN too
            fi.bad(line, "empty text, unknown framework or acceptable outside [0, 1]")
            continue
        rows.add(
            id=f"{split}:{position}",
            group=f"goemotions:{split}:{position}",
            text=text,
            language="ko",
            source=NAME,
            split=split,
            acceptability_framework=framework,
            acceptable=acceptable,
        )
        fi.kept += 1
    issues.close(fi, f"{NAME}/{split}")
    return rows


READER = SetReader(NAME, SPEC, read_distilled)
