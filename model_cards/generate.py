"""Generate a model card (``README.md``) for a saved Red Heart model from its evaluation results.

``python -m redheart.model_cards.generate RESULTS_JSON MODEL_DIR`` writes ``MODEL_DIR/README.md`` from
``template.md``: the encoder that produced the results, which outputs are trained / derived / latent (from
``config.trained_tasks``), every metric with its sample size, the published anchors side by side, the decision
thresholds and how they were chosen, calibration, and the training run's data, steps, time and memory.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path
from typing import Any

from ..training.data.catalog import SET_TASKS
from ..training.metrics import BOOTSTRAP_RESAMPLES

TEMPLATE = Path(__file__).resolve().parent / "template.md"

#: Output -> (task it depends on, how it is grounded when that task is trained, kind when trained).
OUTPUTS = [
    ("emotion.labels", "emotion", "GoEmotions EN + KO (28 labels, focal loss)", "trained"),
    ("emotion.kote", "kote", "KOTE (44 labels, focal loss)", "trained"),
    ("emotion.core", "emotion", "max of each Ekman group's GoEmotions probabilities", "derived"),
    (
        "emotion.cultural",
        "kote",
        "documented compositions of KOTE probabilities (jeong, han, chemyeon)",
        "derived",
    ),
    ("emotion.sentiment", "sentiment", "GoEmotions sentiment grouping + NSMC star ratings (MSE)", "trained"),
    ("bentham.elements", None, "no labelled data: shaped only through utility/acceptability", "latent"),
    ("bentham.utility", "utility", "ETHICS utilitarianism pairs (pairwise logistic loss)", "trained"),
    (
        "bentham.acceptability",
        "acceptability",
        "ETHICS commonsense/justice/deontology/virtue + KoSBi (BCE); goemotions_ko_ethics, where trained on: "
        "Korean comments with a teacher's judgement of their English originals (soft BCE targets)",
        "trained",
    ),
    (
        "regret.potential",
        "regret",
        "ETHICS utilitarianism pairs as choices (Huber; 1 = chose the less pleasant)",
        "trained",
    ),
    (
        "regret.scenarios",
        "utility",
        "mean +/- spread of the predicted utility (spread trained by the pairwise loss)",
        "derived",
    ),
    (
        "surd",
        "surd",
        "exact SURD targets: median shares per clause count (two or more clauses), else the neural head",
        "trained",
    ),
    (
        "integrated.confidence",
        "confidence",
        "predicts whether the top emotion is a gold label (BCE); ECE measured",
        "trained",
    ),
]

METRIC_ORDER = [
    "macro_f1",
    "micro_f1",
    "pairwise_accuracy",
    "accuracy",
    "ece",
    "mae",
    "pearson_r",
    "mean_shift",
]
EVAL_LABELS = {
    "goemotions_en_dev": "GoEmotions EN dev (28 labels)",
    "goemotions_ko_dev": "GoEmotions KO dev (28 labels, machine-translated)",
    "kote_heldout": "KOTE held-out part (44 labels)",
    "ethics_util_test": "ETHICS utilitarianism test (pairs)",
    "ethics_commonsense_heldout": "ETHICS commonsense, held-out part of cm_test",
    "ethics_justice_test": "ETHICS justice test",
    "ethics_deontology_test": "ETHICS deontology test",
    "ethics_virtue_test": "ETHICS virtue test",
    "kosbi_heldout": "KoSBi held-out contexts (commonsense)",
    "nsmc_heldout": "NSMC held-out movies, ratings 1-4 vs 9-10",
    "ethics_util_regret_test": "ETHICS util test as regret (chose the worse)",
    "confidence_calibration": "confidence calibration, GoEmotions EN+KO dev",
    "crosslingual_agreement": "Korean vs English acceptability on the same comments (GoEmotions dev and its "
    "translation; mean over the four frameworks)",
    "surd_head_heldout": "reported SURD shares (clause-count table) vs exact SURD, held-out fifth of distillation texts",
}
EVAL_TASK = {
    "goemotions_en_dev": "emotion",
    "goemotions_ko_dev": "emotion",
    "kote_heldout": "kote",
    "ethics_util_test": "utility",
    "ethics_commonsense_heldout": "acceptability",
    "ethics_justice_test": "acceptability",
    "ethics_deontology_test": "acceptability",
    "ethics_virtue_test": "acceptability",
    "kosbi_heldout": "acceptability",
    "nsmc_heldout": "sentiment",
    "ethics_util_regret_test": "regret",
    "confidence_calibration": "confidence",
    "crosslingual_agreement": "acceptability",
    "surd_head_heldout": "surd",
}
EVAL_SOURCE = {
    "ethics_commonsense_heldout": "ethics_commonsense",
    "ethics_justice_test": "ethics_justice",
    "ethics_deontology_test": "ethics_deontology",
    "ethics_virtue_test": "ethics_virtue",
    "kosbi_heldout": "kosbi",
    "nsmc_heldout": "nsmc",
    "goemotions_en_dev": "goemotions_en",
    "goemotions_ko_dev": "goemotions_ko",
    "kote_heldout": "kote",
    "ethics_util_test": "ethics_util",
    "ethics_util_regret_test": "ethics_util_regret",
}


def _fmt(value: Any) -> str:
    return f"{value:.3f}" if isinstance(value, float) else str(value)


def outputs_table(trained: list[str], composition: dict[str, int]) -> str:
    rows = ["| output | status | grounded by |", "|---|---|---|"]
    for output, task, grounded, kind in OUTPUTS:
        if task is None or task not in trained:
            status = "latent (untrained)" if kind != "latent" else "latent"
            how = grounded if kind == "latent" else f"would be: {grounded}; not trained in this model"
        else:
            status, how = kind, grounded
        if output == "bentham.acceptability" and task in trained and composition:
            used = [s for s in composition if "acceptability" in SET_TASKS.get(s, ())]
            how += f" -- trained here on: {', '.join(used)}"
        rows.append(f"| `{output}` | {status} | {how} |")
    return "\n".join(rows)


def results_table(results: dict[str, Any]) -> str:
    trained = set(results.get("trained_tasks", []))
    composition = (results.get("training") or {}).get("composition") or {}
    rows = [
        "| evaluation | metric | this model | 95 % interval | anchor (BERT-base) | n | trained on this set? |",
        "|---|---|---|---|---|---|---|",
    ]
    for name, metrics in results["metrics"].items():
        anchor = results.get("anchors", {}).get(name)
        n = metrics.get("n", metrics.get("n_pairs", ""))
        source = EVAL_SOURCE.get(name)
        on_set = (
            "yes" if source in composition else ("n/a" if source is None else "no (zero-shot for this set)")
        )
        if EVAL_TASK.get(name) not in trained:
            on_set = "task not trained (latent output)"
        majority = metrics.get("majority_baseline")
        if majority is None and "positive_share" in metrics:
            majority = max(metrics["positive_share"], 1 - metrics["positive_share"])
        for key in METRIC_ORDER:
            if key in metrics:
                a = f"{anchor['value']:.3f}" if anchor and anchor["metric"] == key else ""
                value = _fmt(metrics[key])
                if key == "accuracy" and majority is not None:
                    value += f" (majority class {majority:.3f})"
                if key == "mae" and "mean_shares_mae" in metrics:
                    value += f" (always the mean shares: {metrics['mean_shares_mae']:.3f})"
                if key == "macro_f1" and "majority_baseline" in metrics:
                    # a constant guess of the majority class (share p) scores p / (1 + p) here
                    value += f" (majority guess {majority / (1 + majority):.3f})"
                ci = metrics.get("ci95", {}).get(key)
                interval = f"{ci[0]:.3f} - {ci[1]:.3f}" if ci else ""
                rows.append(
                    f"| {EVAL_LABELS.get(name, name)} | {key} | {value} | {interval} | {a} | {n} | {on_set} |"
                )
    for name, why in results.get("not_evaluated", {}).items():
        rows.append(f"| {name} | -- | not evaluated | | | | {why} |")
    return "\n".join(rows)


def gap_text(results: dict[str, Any]) -> str:
    m = results["metrics"]
    parts = []
    if "goemotions_en_dev" in m:
        parts.append(f"GoEmotions EN macro-F1 {m['goemotions_en_dev']['macro_f1']:.3f} vs 0.46")
    if "ethics_util_test" in m:
        parts.append(f"ETHICS utilitarianism {m['ethics_util_test']['pairwise_accuracy']:.3f} vs 0.734")
    if "ethics_commonsense_heldout" in m:
        parts.append(f"commonsense {m['ethics_commonsense_heldout']['accuracy']:.3f} vs 0.865")
    if not parts:
        return ""
    comp = (results.get("training") or {}).get("composition") or {}
    n = sum(comp.values()) if comp else None
    how = (
        "tunes only LoRA adapters of its encoder, together with a small model,"
        if encoder_tuned(results)
        else "keeps its encoder frozen and trains a small model on cached features"
    )
    return (
        "Gap: "
        + "; ".join(parts)
        + ". The anchors fine-tune a 110M-parameter encoder end to end on the full training "
        f"sets; this model {how}"
        + (f" from {n:,} training examples" if n else "")
        + ", so lower numbers are expected; the commonsense anchor also trains on cm_train, which is not available here."
    )


def encoder_tuned(results: dict[str, Any]) -> bool:
    """Whether the model's encoders were trained with it (LoRA adapters), from the training run's record."""
    return ((results.get("training") or {}).get("features") or {}).get("mode") == "lora"


def training_text(results: dict[str, Any]) -> str:
    tr = results.get("training") or {}
    lines = []
    if tr.get("composition"):
        lines.append(
            "Training examples per data set: "
            + ", ".join(f"{k} {v:,}" for k, v in tr["composition"].items())
            + "."
        )
    if tr.get("tasks"):
        lines.append(f"Supervised tasks: {', '.join(tr['tasks'])}.")
    if tr.get("step") is not None:
        wall = tr.get("wall_seconds")
        lines.append(f"Optimiser steps: {tr['step']}" + (f", training loop {wall:.0f} s." if wall else "."))
    feats = tr.get("features") or {}
    for name, st in (feats.get("stores") or {}).items():
        lines.append(
            f"Encoder `{name}` frozen; features cached in `{st.get('folder')}` ({st.get('cached_texts'):,} texts)."
        )
    mem = tr.get("memory") or {}
    if mem:
        act = mem.get("activations_saved_for_backward_mib")
        lines.append(
            f"Memory ({mem.get('device')}): weights {mem.get('weights_mib', 0):.1f} MiB, gradients "
            f"{mem.get('gradients_mib', 0):.1f} MiB, optimizer state {mem.get('optimizer_state_mib', 0):.1f} MiB, "
            f"activations {act if act is None else f'{act:.1f}'} MiB per micro-batch of {mem.get('micro_batch_size')}."
        )
    averaged = results.get("averaged")
    if averaged:
        sources = ", ".join(
            f"`{src}` ({share:.2f})"
            for src, share in zip(averaged["sources"], averaged["weights"], strict=True)
        )
        errors = ", ".join(f"{n} {e:.4f}" for n, e in averaged["lora_update_error"].items())
        lines.append(
            f"Weights: the weighted mean of {len(averaged['sources'])} trained models of one lineage "
            f"(`python -m redheart.training.average`): {sources}"
            + (f"; relative error of the averaged LoRA updates {errors}" if errors else "")
            + ". The run figures above are the last model's."
        )
    return "\n\n".join(lines) or "No training information was saved with this model."


def render(results: dict[str, Any], model_dir: str | Path) -> str:
    template = TEMPLATE.read_text(encoding="utf-8")
    encoders = results.get("encoders", {})
    enc = (
        "; ".join(
            f"`{n}` = `{e['model_name_or_path']}` (revision {e.get('revision') or 'n/a'}, {e['hidden_size']}-d, languages "
            f"{', '.join(e['languages'])})"
            for n, e in encoders.items()
        )
        or "unknown"
    )
    langs = sorted(
        {x for e in encoders.values() for x in (["en", "ko"] if "*" in e["languages"] else e["languages"])}
    )
    shape = results.get("preset_shape", {})
    trained = results.get("trained_tasks", [])
    thr = results.get("thresholds", {})
    src = results.get("threshold_source", {})
    threshold_text = (
        "Decision thresholds (one per label, chosen on a validation part held out of the training data, never "
        "on the reported sets): "
        + "; ".join(
            f"{k} {min(v):.2f}-{max(v):.2f}, mean {sum(v) / len(v):.2f} ({src.get(k, '')})"
            for k, v in ((k, v if isinstance(v, list) else [v]) for k, v in thr.items())
        )
    )
    cal = results["metrics"].get("confidence_calibration")
    calibration_text = (
        f"Calibration: expected calibration error of `confidence` {cal['ece']:.3f} ({cal['n_bins']} bins, n={cal['n']}; "
        f"mean confidence {cal['mean_confidence']:.3f} vs top-1 accuracy {cal['top1_accuracy']:.3f})."
        if cal
        else "Calibration: not measured (no confidence output or no GoEmotions evaluation)."
    )
    values = {
        "title": f"Red Heart ({Path(str(results.get('model_dir', model_dir))).name})",
        "languages_yaml": "[" + ", ".join(langs) + "]",
        "encoder_sentence": enc,
        "model_sentence": f"{shape.get('parameters', 0):,} own parameters (backbone width {shape.get('backbone_hidden')}, "
        f"{shape.get('backbone_layers')} layers), "
        + (
            "encoders tuned with LoRA (the adapters ship in `encoders/` and are merged at load)."
            if encoder_tuned(results)
            else "encoders frozen."
        ),
        "model_dir": str(
            results.get("model_dir", model_dir)
        ),  # where it is used from, not where it was written
        "trained_tasks": json.dumps(trained),
        "outputs_table": outputs_table(trained, (results.get("training") or {}).get("composition") or {}),
        "results_table": results_table(results),
        "bootstrap_resamples": str(BOOTSTRAP_RESAMPLES),
        "threshold_text": threshold_text,
        "calibration_text": calibration_text,
        "gap_text": gap_text(results),
        "metric_backend": results.get("metric_backend", "numpy"),
        "training_text": training_text(results),
    }
    for key, value in values.items():
        template = template.replace("{{" + key + "}}", value)
    return template


def write_model_card(results_json: str | Path, model_dir: str | Path) -> Path:
    """Render the card for ``results_json`` into ``model_dir/README.md`` and return its path."""
    results_path, folder = Path(results_json), Path(model_dir)
    if not results_path.is_file():
        raise FileNotFoundError(
            f"results file {str(results_path)!r} does not exist (run redheart.training.evaluate)"
        )
    if not (folder / "config.json").is_file():
        raise FileNotFoundError(f"{folder}: no config.json; expected a saved Red Heart model folder")
    results = json.loads(results_path.read_text(encoding="utf-8"))
    if "metrics" not in results:
        raise ValueError(
            f"{results_path}: no 'metrics' key; expected the JSON written by redheart.training.evaluate"
        )
    out = folder / "README.md"
    out.write_text(render(results, folder), encoding="utf-8")
    return out


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(
        prog="python -m redheart.model_cards.generate", description=__doc__.split("\n")[0]
    )
    p.add_argument("results_json")
    p.add_argument("model_dir")
    args = p.parse_args(argv)
    try:
        print(write_model_card(args.results_json, args.model_dir))
    except (FileNotFoundError, ValueError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    return 0


if __name__ == "__main__":
    sys.exit(main())
