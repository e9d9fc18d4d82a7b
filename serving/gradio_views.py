"""What the Gradio app shows of one result: tables for its bar charts, a summary and the clause explanation.

Pure functions of a result of ``pipelines/analysis.schema.json`` (no Gradio import), so they are tested without
a browser; the face views are empty for a result without a photo. Charts are long tables (one row per bar) that ``gr.BarPlot`` draws; numbers a person reads rather
than compares (utility, confidence, what is untrained) go into the summary text.
"""

from __future__ import annotations

from typing import Any

import pandas as pd

SCENARIOS = ("optimistic", "neutral", "pessimistic")
CLAUSE_COLUMNS = ["clause", "text", "role", "unique", "redundant", "synergistic"]
FACE_COLUMNS = ["face", "expression", "score", "x", "y", "width", "height"]


def bars(values: dict[str, float], label: str = "label", value: str = "value") -> pd.DataFrame:
    """One row per bar, in the given order."""
    return pd.DataFrame({label: list(values), value: [float(v) for v in values.values()]})


def emotion_bars(result: dict[str, Any]) -> pd.DataFrame:
    """The 28 GoEmotions probabilities, largest first (the chart sorts by value as well)."""
    labels = result["analysis"]["emotion"]["labels"]
    ordered = dict(sorted(labels.items(), key=lambda item: -item[1]))
    return bars(ordered, "emotion", "probability")


def element_bars(result: dict[str, Any]) -> pd.DataFrame:
    """The 10 Bentham elements in [0, 1] (latent: no labelled data exists for them)."""
    return bars(result["analysis"]["bentham"]["elements"], "element", "value")


def acceptability_bars(result: dict[str, Any]) -> pd.DataFrame:
    """Acceptability per ETHICS framework (commonsense, justice, deontology, virtue)."""
    return bars(result["analysis"]["bentham"]["acceptability"], "framework", "acceptability")


def regret_bars(result: dict[str, Any]) -> pd.DataFrame:
    """Regret under the optimistic / neutral / pessimistic utility of the choice (empty without alternatives)."""
    scenarios = result["analysis"]["regret"]["scenarios"]
    values = {name: scenarios[name]["regret"] for name in SCENARIOS if scenarios[name]["regret"] is not None}
    return bars(values, "scenario", "regret")


def utility_bars(result: dict[str, Any]) -> pd.DataFrame:
    """The choice's utility under each scenario next to each alternative's utility: why regret is what it is."""
    regret = result["analysis"]["regret"]
    rows = [
        {"option": f"choice ({name})", "utility": regret["scenarios"][name]["utility"]} for name in SCENARIOS
    ]
    for i, alternative in enumerate(regret.get("alternatives", [])):
        rows.append(
            {
                "option": f"alternative {i + 1}: {shorten(alternative['text'])}",
                "utility": alternative["utility"],
            }
        )
    return pd.DataFrame(rows, columns=["option", "utility"])


def utility_range(result: dict[str, Any]) -> list[float]:
    """The utility chart's y range: from zero (or below it) to the largest utility, so every bar shows."""
    values = utility_bars(result)["utility"]
    low, high = min(0.0, float(values.min())), max(0.0, float(values.max()))
    pad = 0.05 * (high - low or 1.0)
    return [low - (pad if low < 0 else 0.0), high + pad]


def surd_bars(result: dict[str, Any]) -> pd.DataFrame:
    """SURD shares (redundant, unique, synergistic, leak; they sum to 1)."""
    return bars(result["analysis"]["surd"]["shares"], "share", "value")


def face_bars(result: dict[str, Any]) -> pd.DataFrame:
    """Each face's 7 expression probabilities (faces left to right; empty without an image or a face)."""
    faces = result["analysis"]["emotion"].get("face") or []
    rows = [
        {
            "expression": label if len(faces) == 1 else f"{label} (face {n})",
            "probability": float(value),
            "face": f"face {n}",
        }
        for n, face in enumerate(faces, 1)
        for label, value in face["probabilities"].items()
    ]
    return pd.DataFrame(rows, columns=["expression", "probability", "face"])


def face_table(result: dict[str, Any]) -> pd.DataFrame:
    """Per face: its top expression with its probability and its box in the photo's pixels."""
    faces = result["analysis"]["emotion"].get("face") or []
    rows = [
        [n, face["top"]["label"], round(face["top"]["score"], 3), *(face["box"][k] for k in FACE_COLUMNS[3:])]
        for n, face in enumerate(faces, 1)
    ]
    return pd.DataFrame(rows, columns=FACE_COLUMNS)


def face_text(result: dict[str, Any]) -> str | None:
    """What the photo added (None without one): the faces' top expressions and how far they moved the reading."""
    emotion, integrated = result["analysis"]["emotion"], result["integrated"]
    if "face" not in emotion:
        return None
    if not emotion["face"]:
        return f"**Faces** none: {emotion['face_fusion']['note']}"
    tops = ", ".join(
        f"{n}: {face['top']['label']} {face['top']['score']:.2f}" for n, face in enumerate(emotion["face"], 1)
    )
    effect = integrated["face_effect"]
    moved = f"valence {effect['overall_sentiment']:+.2f}"
    if effect.get("confidence") is not None:
        moved += f", confidence {effect['confidence']:+.2f}"
    return f"**Faces** {tops} · the photo moved {moved}"


def clause_table(result: dict[str, Any]) -> pd.DataFrame:
    """Per clause of an explained text: its role and its unique / redundant / synergistic share of H."""
    explanation = result["analysis"]["surd"].get("explanation") or {}
    rows = [
        [
            c["index"],
            c["text"],
            c["role"],
            round(c["unique"], 3),
            round(c["redundant"], 3),
            round(c["synergistic"], 3),
        ]
        for c in explanation.get("per_clause", [])
    ]
    if not rows:  # not decomposed: still list the clauses the text was split into
        rows = [[c["index"], c["text"], "", None, None, None] for c in explanation.get("clauses", [])]
    return pd.DataFrame(rows, columns=CLAUSE_COLUMNS)


def explanation_text(result: dict[str, Any]) -> str:
    """What the clause explanation says, or how to get one."""
    surd = result["analysis"]["surd"]
    explanation = surd.get("explanation")
    if not explanation:
        return "Switch **explain** on for the exact SURD over the text's clauses (one model run per clause subset)."
    judgement = explanation["judgement"]
    head = (
        f"**{explanation['n_clauses']} clauses, {explanation['n_subsets']} subsets**; judgement "
        f"`{judgement['name']}` in {judgement['bins']} states ({judgement['binning']} bins)."
    )
    if explanation["status"] != "ok":
        return f"{head}\n\nStatus **{explanation['status']}**: {explanation.get('reason', '')}"
    groups = ", ".join(
        f"{group['kind']} {{{', '.join(str(i) for i in group['clauses'])}}} {group['share']:.0%}"
        for group in explanation.get("groups", [])[:4]
    )
    return (
        f"{head}\n\nExact SURD: dominant **{explanation['dominant']}**; H(judgement) = "
        f"{explanation['entropy_bits']:.3f} bits. Largest terms: {groups or 'none above 1%'}."
    )


def summary_text(result: dict[str, Any]) -> str:
    """The headline numbers and their grounding, in a few lines of Markdown."""
    analysis, integrated, metadata = result["analysis"], result["integrated"], result["metadata"]
    emotion, bentham, regret = analysis["emotion"], analysis["bentham"], analysis["regret"]
    top = ", ".join(f"{item['label']} {item['score']:.2f}" for item in emotion["top"]) or "none"
    cultural = ", ".join(f"{name} {value:.2f}" for name, value in emotion["cultural"].items())
    confidence = integrated.get("confidence")
    regret_line = f"**Regret** {regret['potential']:.2f} ({regret['source']}"
    if regret["source"] == "alternatives":
        best = regret["alternatives"][regret["best_alternative"]]
        regret_line += f"; best alternative: “{shorten(best['text'])}”, raw regret {regret['raw_regret']:.2f}"
    regret_line += ")"
    lines = [
        f"**Language** {metadata['language']['detected']} · **valence** {emotion['sentiment']:+.2f} · "
        f"**top emotions** {top}",
        f"**Korean cultural emotions** {cultural}",
        f"**Utility** {bentham['utility']:.2f} ± {bentham['utility_std']:.2f} · **ethical score** "
        f"{integrated['ethical_score']:.2f} · **confidence** "
        + ("n/a" if confidence is None else f"{confidence:.2f}"),
        regret_line,
        f"**SURD** ({analysis['surd']['source'].replace('_', ' ')}) · causal clarity {integrated['causal_clarity']:.2f}",
    ]
    faces = face_text(result)
    if faces is not None:
        lines.insert(1, faces)
    for key, meaning in (("untrained", "Not trained in this model"), ("latent", "Latent by design")):
        paths = metadata.get(key, [])
        if paths:
            lines.append(f"*{meaning}: " + ", ".join(path.removeprefix("analysis.") for path in paths) + ".*")
    return "\n\n".join(lines)


def shorten(text: str, limit: int = 40) -> str:
    return text if len(text) <= limit else text[: limit - 1] + "…"


__all__ = [
    "acceptability_bars",
    "clause_table",
    "element_bars",
    "emotion_bars",
    "explanation_text",
    "face_bars",
    "face_table",
    "face_text",
    "regret_bars",
    "summary_text",
    "surd_bars",
    "utility_bars",
    "utility_range",
]
