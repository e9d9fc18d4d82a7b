"""`python -m redheart [TEXT ...]`: the main job -- analyse texts with Red Heart's shipped default model.

The default is the model folder shipped with the library (`models/red-heart-small-e5`, the task's default in
`pipeline("ethics-emotion")`): it loads in seconds, with no training. `--model` names another saved folder or Hub
id, e.g. the quick local model `python -m redheart.training.quick_model` trains in about 15 minutes.
"""

from __future__ import annotations

import argparse
import json
import sys

from .pipelines.quantization import QUANTIZATIONS

EXAMPLES = (
    "친구와의 약속을 어기고 야근을 했다",
    "I lied to my best friend to avoid hurting her feelings.",
    "오늘 동생이 시험에 합격해서 너무 기뻤다",
    "I returned the wallet I found, with all the money still inside.",
)


def summary(text: str, result: dict) -> str:
    """One readable block per text; the full result is printed as JSON with --json."""
    a, i = result["analysis"], result["integrated"]
    top = ", ".join(f"{t['label']} {t['score']:.2f}" for t in a["emotion"]["top"])
    kote = ", ".join(f"{t['label']} {t['score']:.2f}" for t in a["emotion"].get("kote_top", []))
    accept = ", ".join(f"{k} {v:.2f}" for k, v in a["bentham"]["acceptability"].items())
    decided = a["emotion"].get("predicted")
    emotions = f"{', '.join(decided) or 'none'} (top: {top})" if decided is not None else top
    utility = f"utility {a['bentham']['utility']:.2f}"
    if "utility_percentile" in a["bentham"]:
        utility += f" (above {100 * a['bentham']['utility_percentile']:.0f}% of ETHICS scenarios)"
    return "\n".join(
        [
            f"> {text}",
            f"  language {result['metadata']['language']['detected']}; emotions: {emotions}",
            f"  KOTE: {kote}" if kote else "  KOTE: -",
            f"  sentiment {a['emotion']['sentiment']:+.2f}; {utility}; acceptability: {accept}",
            f"  regret potential {i['regret_potential']:.2f}; ethical score {i['ethical_score']:.2f}; "
            f"confidence {i['confidence']:.2f}",
        ]
    )


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m redheart", description=__doc__.split("\n")[0])
    parser.add_argument("texts", nargs="*", help="texts to analyse (default: Korean and English examples)")
    parser.add_argument("--model", help="a saved Red Heart folder or Hub id (default: the shipped model)")
    parser.add_argument("--json", action="store_true", help="print the full analyses as JSON")
    parser.add_argument(
        "--quantize",
        choices=QUANTIZATIONS,
        default=None,
        help="int8: linear layers as dynamic int8 (faster on CPUs without native bf16, e.g. AVX2)",
    )
    args = parser.parse_args(argv)

    from transformers import pipeline

    from .pipelines.registration import DEFAULT_MODEL_DIR

    model = args.model or str(DEFAULT_MODEL_DIR)
    if args.model is None and not (DEFAULT_MODEL_DIR / "config.json").is_file():
        print(
            f"error: the shipped default model is missing ({DEFAULT_MODEL_DIR}); reinstall red-heart, or pass "
            "--model (e.g. the folder printed by `python -m redheart.training.quick_model`)",
            file=sys.stderr,
        )
        return 2
    pipe = pipeline("ethics-emotion", model=model, quantize=args.quantize)
    texts = args.texts or list(EXAMPLES)
    results = pipe(texts)
    if args.json:
        print(json.dumps(results, ensure_ascii=False, indent=2))
    else:
        print(f"Red Heart analysis with {model}\n")
        print("\n\n".join(summary(t, r) for t, r in zip(texts, results, strict=True)))
        untrained = results[0]["metadata"].get("untrained", [])
        if untrained:
            print(
                f"\nUntrained (not supervised by any data set) and shown for completeness: {', '.join(untrained)}"
            )
    return 0


if __name__ == "__main__":
    sys.exit(main())
