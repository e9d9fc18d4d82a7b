"""Weighted, seeded mixing of the unified-schema data sets into one training stream.

:func:`mix_datasets` shuffles every set (seeded), optionally caps it at ``max_samples`` rows, and interleaves
them with ``datasets.interleave_datasets`` using the normalised weights as sampling probabilities. The
stopping strategy decides the length of one pass over the mixture:

* ``"all_exhausted"`` (default): oversample until every set has been seen once (small sets repeat);
* ``"first_exhausted"``: stop when the first set runs out (no repeats; large sets are cut);
* ``"all_exhausted_without_replacement"``: every row exactly once, mixing proportions drift as sets run out.

``num_samples`` cuts the mixture to a fixed length (e.g. an epoch budget).
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Mapping
from typing import Any

from .common import sample_indices, stable_seed


def normalise_weights(names: list[str], weights: Mapping[str, float]) -> dict[str, float]:
    """Weights of ``names`` as probabilities; every name needs a weight >= 0, their sum must be > 0."""
    missing = [n for n in names if n not in weights]
    if missing:
        raise ValueError(f"no mixing weight for data set(s) {missing}; weights given: {dict(weights)}")
    bad = {n: weights[n] for n in names if weights[n] is None or weights[n] < 0}
    if bad:
        raise ValueError(f"mixing weights must be >= 0, got {bad}")
    total = float(sum(weights[n] for n in names))
    if total <= 0:
        raise ValueError(f"all mixing weights are 0 for {names}")
    return {n: float(weights[n]) / total for n in names}


def mix_datasets(
    datasets: Mapping[str, Any],
    weights: Mapping[str, float],
    *,
    seed: int = 42,
    max_samples: Mapping[str, int | None] | None = None,
    stopping_strategy: str = "all_exhausted",
    num_samples: int | None = None,
    shuffle: bool = True,
):
    """Interleave ``datasets`` (name -> unified-schema Dataset) with probabilities from ``weights``.

    Sets with weight 0 are left out; ``max_samples[name]`` caps a set (seeded sample) before mixing.
    Returns a ``datasets.Dataset`` with the same features.
    """
    import datasets as hf_datasets

    names = [n for n in datasets if weights.get(n, 0.0) and weights[n] > 0]
    if not names:
        raise ValueError(
            f"nothing to mix: no data set among {list(datasets)} has a positive weight {dict(weights)}"
        )
    probs = normalise_weights(names, weights)
    parts = []
    for name in names:
        ds = datasets[name]
        if len(ds) == 0:
            raise ValueError(f"data set {name!r} is empty; cannot mix it")
        cap = (max_samples or {}).get(name)
        pick = sample_indices(len(ds), cap, stable_seed(seed, name, "mix_cap"))
        if pick is not None:
            ds = ds.select(pick)
        if shuffle:
            ds = ds.shuffle(seed=stable_seed(seed, name, "mix_shuffle"))
        parts.append(ds)
    if len(parts) == 1:
        mixed = parts[0]
    else:
        mixed = hf_datasets.interleave_datasets(
            parts,
            probabilities=[probs[n] for n in names],
            seed=seed,
            stopping_strategy=stopping_strategy,
        )
    if num_samples is not None and num_samples < len(mixed):
        mixed = mixed.select(range(num_samples))
    return mixed


def composition(dataset) -> dict[str, int]:
    """Rows per ``source`` in a (mixed) dataset."""
    col = dataset.select_columns(["source"]).with_format("arrow")[:]["source"]
    return dict(sorted(Counter(col.to_pylist()).items()))
