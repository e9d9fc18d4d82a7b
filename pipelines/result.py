"""From aggregated model outputs to the pipeline's JSON result: documented formulas and grounding metadata.

Formulas (all inputs are ``RedHeartModel`` outputs; see docs/DESIGN.md "What each output means"):

* **Windows.** A text cut into several windows gets, for every output, the weighted mean of its window
  outputs, the weight being the window's content tokens summed over encoders. ``emotion.core`` and
  ``emotion.cultural`` are then recomputed from the averaged fine labels with the model's own documented
  compositions; ``utility_std`` is the spread of the window mixture,
  ``sqrt(sum_w w * (std_w^2 + (u_w - u)^2))``.
* **Regret with alternatives.** ``u``/``s`` are the utility mean/std of the chosen text and of each
  alternative; the best alternative ``b`` has the largest mean. Raw regret ``r = max(0, u_b - u_c)``
  (decision-theoretic regret); ``potential = 1 - exp(-r / sqrt(s_c^2 + s_b^2))`` -- 0 when the choice is at
  least as good, approaching 1 as the best alternative beats it by many predicted standard deviations.
  Scenarios move the chosen text's utility to ``u_c + s_c`` (optimistic), ``u_c`` (neutral) and
  ``u_c - s_c`` (pessimistic), the alternatives staying at their means, and apply the same formula.
* **Regret without alternatives.** ``potential`` is the model's regret head; scenarios report the three
  utilities and ``regret: null`` (regret needs something to compare with).
* **Integrated.** ``overall_sentiment`` = ``emotion.sentiment`` (valence in [-1, 1]);
  ``ethical_score`` = mean of ``bentham.acceptability`` over the frameworks; ``regret_potential`` =
  ``regret.potential``; ``causal_clarity`` = 1 - ``surd.shares.leak``; ``confidence`` = the utility module's
  calibrated confidence (``null`` when ``use_auxiliary`` is off).
* **SURD shares.** A text of two or more clauses (``explain/clauses.clause_count``, capped as the exact
  explanation caps them) gets the median exact shares of the distillation texts with as many clauses
  (``config.surd_clause_shares``, source ``clause_count``): on held-out texts the clause count predicts the exact
  shares better than the neural head's one pass does (docs/DESIGN.md "SURD, exactly"). Otherwise (one clause, or
  no table) the neural head's shares are reported (source ``neural_head``).

Grounding: each output path is ``trained`` (its task is in ``config.trained_tasks``), ``untrained`` (it is
not: the number comes from unsupervised weights), ``latent`` (no supervision exists for it by design:
``bentham.elements`` and ``bentham.weights``) or ``unavailable`` (the part that produces it is off). When audio
or biosignals reach the model (``"dsp"`` in ``metadata.parts``), every output the DSP encoder feeds
(``DSP_DEPENDENT``: the emotion analyzer's outputs and the confidence, which reads its summary) is
``untrained``: no training data set has audio or biosignals, so the DSP encoder's weights are never supervised.

Images: ``pipelines/image/`` adds the faces (``analysis.emotion.face``, status ``pretrained``) and fuses them
into ``emotion.core`` and ``integrated`` by the rule written out in ``pipelines/image/fusion.py``; a text-only
result is exactly what this module builds.
"""

from __future__ import annotations

import math
from typing import Any

import torch

from ..configuration_redheart.labels import CORE_LABELS, CULTURAL_LABELS, SURD_SHARES

SCHEMA_VERSION = "1.0"
AGGREGATION = "token-weighted mean over windows (weight = content tokens summed over encoders)"

#: Per-window model outputs the pipeline aggregates (``RedHeartOutput`` field names).
OUTPUT_FIELDS = (
    "emotion_probs",
    "kote_probs",
    "emotion_core",
    "emotion_cultural",
    "sentiment",
    "bentham_elements",
    "bentham_weights",
    "utility",
    "utility_std",
    "acceptability_probs",
    "regret_potential",
    "surd_shares",
    "confidence",
)


def window_outputs(output: Any) -> dict[str, torch.Tensor | None]:
    """The batched per-window tensors of a ``RedHeartOutput`` the pipeline reads: the :data:`OUTPUT_FIELDS`
    and, per task, the Kalman-fused variance as ``uncertainty_<task>`` (streams use it as observation noise).

    One home for this list: the torch path and the exported ONNX graph (``onnx_backend``) both produce it.
    """
    out: dict[str, torch.Tensor | None] = {name: getattr(output, name) for name in OUTPUT_FIELDS}
    for task, variance in (output.uncertainty or {}).items():
        out[f"uncertainty_{task}"] = variance
    return out


#: Output path -> the training task that supervises it (None: latent by design).
GROUNDING_TASKS: dict[str, str | None] = {
    "analysis.emotion.labels": "emotion",
    "analysis.emotion.top": "emotion",
    "analysis.emotion.core": "emotion",
    "analysis.emotion.kote": "kote",
    "analysis.emotion.kote_top": "kote",
    "analysis.emotion.predicted": "emotion",
    "analysis.emotion.kote_predicted": "kote",
    "analysis.emotion.cultural": "kote",
    "analysis.emotion.sentiment": "sentiment",
    "analysis.bentham.elements": None,
    "analysis.bentham.weights": None,
    "analysis.bentham.utility": "utility",
    "analysis.bentham.utility_std": "utility",
    "analysis.bentham.utility_percentile": "utility",
    "analysis.bentham.acceptability": "acceptability",
    "analysis.regret.potential": "regret",
    "analysis.regret.model_potential": "regret",
    "analysis.regret.scenarios": "utility",
    "analysis.regret.alternatives": "utility",
    "analysis.surd.shares": "surd",
    "integrated.overall_sentiment": "sentiment",
    "integrated.ethical_score": "acceptability",
    "integrated.regret_potential": "regret",
    "integrated.causal_clarity": "surd",
    "integrated.confidence": "confidence",
}


#: Outputs that depend on the DSP encoder when audio or biosignals are given (see the module doc).
DSP_DEPENDENT = (
    "analysis.emotion.labels",
    "analysis.emotion.top",
    "analysis.emotion.core",
    "analysis.emotion.kote",
    "analysis.emotion.kote_top",
    "analysis.emotion.predicted",
    "analysis.emotion.kote_predicted",
    "analysis.emotion.cultural",
    "analysis.emotion.sentiment",
    "integrated.overall_sentiment",
    "integrated.confidence",
)
DSP_UNTRAINED = (
    "reads audio/biosignal features through the DSP encoder, which no training data set supervises"
)


def aggregate_windows(
    rows: list[dict[str, torch.Tensor | None]], weights: list[int], derived: Any = None
) -> dict:
    """Combine per-window outputs of one text (see the module doc); returns float64 tensors (or None)."""
    if not rows:
        raise ValueError("no windows to aggregate")
    if len(rows) == 1:
        return {key: None if value is None else value.double() for key, value in rows[0].items()}
    w = torch.tensor([max(int(x), 1) for x in weights], dtype=torch.float64)
    w = w / w.sum()
    out: dict[str, torch.Tensor | None] = {}
    for key in rows[0]:
        if rows[0][key] is None:
            out[key] = None
            continue
        stacked = torch.stack([row[key].double() for row in rows])
        out[key] = (w.view(-1, *([1] * (stacked.dim() - 1))) * stacked).sum(0)
    utilities = torch.stack([row["utility"].double() for row in rows])
    stds = torch.stack([row["utility_std"].double() for row in rows])
    out["utility_std"] = (w * (stds**2 + (utilities - out["utility"]) ** 2)).sum().sqrt()
    if derived is not None:
        out["emotion_core"] = derived.core(out["emotion_probs"][None])[0]
        out["emotion_cultural"] = derived.cultural(out["kote_probs"][None])[0]
    return out


def _finite(path: str, value: float) -> float:
    value = float(value)
    if not math.isfinite(value):
        raise RuntimeError(
            f"the model produced a non-finite value for {path}; this is a bug, please report it"
        )
    return value


def _named(path: str, labels: list[str] | tuple[str, ...], values: torch.Tensor) -> dict[str, float]:
    return {label: _finite(f"{path}.{label}", v) for label, v in zip(labels, values.tolist(), strict=True)}


def top_labels(scores: dict[str, float], top_k: int | None, threshold: float | None) -> list[dict[str, Any]]:
    """Labels sorted by score, those ``>= threshold`` (if given), at most ``top_k`` (if given)."""
    ranked = sorted(scores.items(), key=lambda item: item[1], reverse=True)
    if threshold is not None:
        ranked = [item for item in ranked if item[1] >= threshold]
    if top_k is not None:
        ranked = ranked[:top_k]
    return [{"label": label, "score": score} for label, score in ranked]


def squash_regret(raw: float, scale: float) -> float:
    """``1 - exp(-raw / scale)``: raw regret in utility units to [0, 1)."""
    return 1.0 - math.exp(-max(raw, 0.0) / max(scale, 1e-12))


def regret_section(
    chosen: dict, alternatives: list[dict] | None, alternative_texts: list[str] | None
) -> tuple[dict[str, Any], str]:
    """``analysis.regret`` and the task that grounds its ``potential`` ("regret" or "utility")."""
    mu, sd = float(chosen["utility"]), float(chosen["utility_std"])
    model_potential = _finite("analysis.regret.model_potential", chosen["regret_potential"])
    shifts = {"optimistic": 1.0, "neutral": 0.0, "pessimistic": -1.0}
    section: dict[str, Any] = {"model_potential": model_potential, "utility": {"mean": mu, "std": sd}}
    if not alternatives:
        section["potential"] = model_potential
        section["source"] = "model"
        section["scenarios"] = {name: {"utility": mu + k * sd, "regret": None} for name, k in shifts.items()}
        return section, "regret"
    means = [float(a["utility"]) for a in alternatives]
    best = max(range(len(means)), key=means.__getitem__)
    best_mu, best_sd = means[best], float(alternatives[best]["utility_std"])
    scale = math.sqrt(sd**2 + best_sd**2)
    section["potential"] = squash_regret(best_mu - mu, scale)
    section["source"] = "alternatives"
    section["raw_regret"] = max(0.0, best_mu - mu)
    section["best_alternative"] = best
    section["scenarios"] = {}
    for name, k in shifts.items():
        utility = mu + k * sd
        section["scenarios"][name] = {
            "utility": utility,
            "raw_regret": max(0.0, best_mu - utility),
            "regret": squash_regret(best_mu - utility, scale),
        }
    section["alternatives"] = [
        {
            "text": text,
            "utility": float(a["utility"]),
            "utility_std": float(a["utility_std"]),
            "raw_regret": max(0.0, float(a["utility"]) - mu),
        }
        for text, a in zip(alternative_texts or [""] * len(alternatives), alternatives, strict=True)
    ]
    return section, "utility"


def predicted_labels(scores: dict[str, float], thresholds: list[float]) -> list[str]:
    """The decided label set: every label at or above its own threshold, highest score first."""
    chosen = [(s, label) for (label, s), t in zip(scores.items(), thresholds, strict=True) if s >= t]
    return [label for _, label in sorted(chosen, key=lambda item: -item[0])]


def utility_percentile(utility: float, reference: list[float]) -> float:
    """Share of the reference scenarios with lower utility: `reference` holds K+1 quantiles at levels k/K,
    linearly interpolated, clamped to [0, 1]."""
    levels = [k / (len(reference) - 1) for k in range(len(reference))]
    if utility <= reference[0]:
        return 0.0
    if utility >= reference[-1]:
        return 1.0
    for k in range(1, len(reference)):
        low, high = reference[k - 1], reference[k]
        if utility <= high:
            frac = 0.0 if high == low else (utility - low) / (high - low)
            return levels[k - 1] + frac * (levels[k] - levels[k - 1])
    return 1.0


def grounding(trained_tasks: list[str], regret_task: str, available: dict[str, bool]) -> dict[str, dict]:
    """Status of every output path (trained / untrained / latent / unavailable) and its task."""
    out = {}
    for path, task in GROUNDING_TASKS.items():
        if path in ("analysis.regret.potential", "integrated.regret_potential"):
            task = regret_task
        if not available.get(path, True):
            status = "unavailable"
        elif task is None:
            status = "latent"
        else:
            status = "trained" if task in trained_tasks else "untrained"
        out[path] = {"status": status, "task": task}
    return out


def clause_count_row(table: dict[str, list[float]], clauses: int | None) -> list[float] | None:
    """The shares of ``config.surd_clause_shares`` for ``clauses`` clauses: the row of the largest count not above
    it (``None`` when there is none, e.g. one clause)."""
    counts = [int(k) for k in table if clauses is not None and int(k) <= clauses]
    return table[str(max(counts))] if counts else None


def surd_section(config: Any, head_shares: dict[str, float], clauses: int | None) -> dict[str, Any]:
    """``analysis.surd``: the clause-count table's shares when it has a row for the text, else the neural head's."""
    row = clause_count_row(getattr(config, "surd_clause_shares", None) or {}, clauses)
    if row is not None:
        return {
            "shares": dict(zip(SURD_SHARES, row, strict=True)),
            "source": "clause_count",
            "clauses": clauses,
        }
    return {"shares": head_shares, "source": "neural_head", "clauses": clauses}


def build_result(
    config: Any,
    main: dict,
    alternatives: list[dict] | None,
    alternative_texts: list[str] | None,
    metadata: dict[str, Any],
    top_k: int | None = 3,
    threshold: float | None = None,
    clauses: int | None = None,
) -> dict[str, Any]:
    """The JSON-safe result of one text (``analysis``, ``integrated``, ``metadata``); ``clauses``: the text's
    clause count (``pipelines/explain/clauses.clause_count``), which selects the SURD shares."""
    labels = _named("analysis.emotion.labels", config.emotion_labels, main["emotion_probs"])
    kote = _named("analysis.emotion.kote", config.kote_labels, main["kote_probs"])
    acceptability = _named(
        "analysis.bentham.acceptability", config.acceptability_frameworks, main["acceptability_probs"]
    )
    surd = surd_section(config, _named("analysis.surd.shares", SURD_SHARES, main["surd_shares"]), clauses)
    shares = surd["shares"]
    sentiment = _finite("analysis.emotion.sentiment", main["sentiment"])
    regret, regret_task = regret_section(main, alternatives, alternative_texts)
    confidence = (
        None if main.get("confidence") is None else _finite("integrated.confidence", main["confidence"])
    )
    analysis = {
        "emotion": {
            "labels": labels,
            "top": top_labels(labels, top_k, threshold),
            "kote": kote,
            "kote_top": top_labels(kote, top_k, threshold),
            "core": _named("analysis.emotion.core", CORE_LABELS, main["emotion_core"]),
            "cultural": _named("analysis.emotion.cultural", CULTURAL_LABELS, main["emotion_cultural"]),
            "sentiment": sentiment,
        },
        "bentham": {
            "elements": _named(
                "analysis.bentham.elements", config.bentham_elements, main["bentham_elements"]
            ),
            "weights": _named("analysis.bentham.weights", config.bentham_elements, main["bentham_weights"]),
            "utility": _finite("analysis.bentham.utility", main["utility"]),
            "utility_std": _finite("analysis.bentham.utility_std", main["utility_std"]),
            "acceptability": acceptability,
        },
        "regret": regret,
        "surd": surd,
    }
    integrated = {
        "overall_sentiment": sentiment,
        "ethical_score": sum(acceptability.values()) / len(acceptability),
        "regret_potential": regret["potential"],
        "causal_clarity": 1.0 - shares["leak"],
        "confidence": confidence,
    }
    thresholds = getattr(config, "decision_thresholds", None) or {}
    if "emotion" in thresholds:
        analysis["emotion"]["predicted"] = predicted_labels(labels, thresholds["emotion"])
    if "kote" in thresholds:
        analysis["emotion"]["kote_predicted"] = predicted_labels(kote, thresholds["kote"])
    reference = getattr(config, "utility_reference", None)
    if reference:
        percentile = utility_percentile(analysis["bentham"]["utility"], reference)
        analysis["bentham"]["utility_percentile"] = percentile
    trained = list(getattr(config, "trained_tasks", []) or [])
    available = {
        "integrated.confidence": confidence is not None,
        "analysis.emotion.predicted": "emotion" in thresholds,
        "analysis.emotion.kote_predicted": "kote" in thresholds,
        "analysis.bentham.utility_percentile": bool(reference),
    }
    status = grounding(trained, regret_task, available)
    if "dsp" in metadata.get("parts", ()):
        for path in DSP_DEPENDENT:
            if path in status and status[path]["status"] == "trained":
                status[path] = {**status[path], "status": "untrained", "source": DSP_UNTRAINED}
    meta = dict(metadata)
    meta["grounding"] = status
    meta["untrained"] = sorted(p for p, s in status.items() if s["status"] == "untrained")
    meta["latent"] = sorted(p for p, s in status.items() if s["status"] == "latent")
    meta["trained_tasks"] = trained
    meta["formulas"] = {
        "aggregation": AGGREGATION,
        "regret": "1 - exp(-max(0, u_best_alt - u_chosen) / sqrt(std_chosen^2 + std_best^2))"
        if alternatives
        else "regret head (no alternatives given)",
        "ethical_score": "mean acceptability over frameworks",
        "causal_clarity": "1 - surd leak",
        "overall_sentiment": "emotion.sentiment",
    }
    meta["schema_version"] = SCHEMA_VERSION
    return {"analysis": analysis, "integrated": integrated, "metadata": meta}
