"""Frozen-encoder feature cache: every text's encoder hidden states are computed once and kept on disk.

Features are exactly what the pipeline feeds the model for a short text (``redheart.encoders``): the
encoder entry is loaded with the pipeline's strict :func:`~redheart.encoders.load_encoder`
(aliases ``redheart:minilm`` / ``redheart:e5-small`` included), each text is tokenised without a prefix,
its content tokens are cut to ``max_length`` minus the special tokens, the special tokens are put back, and
``last_hidden_state`` of all tokens is stored. Longer texts are truncated here (the pipeline windows them).

Storage: one folder per encoder key under the cache root, ``<encoder-slug>-<key>/``, where the key hashes the
encoder's ``model_name_or_path``, its revision (the configured one, else the resolved one: an alias's package
version or a local folder's file fingerprint), ``max_length``, the stored dtype and this format's version.
Inside, ``shard-NNNNN/`` folders are ``datasets`` ``save_to_disk`` outputs of a ``Dataset.map`` over the new
texts (columns ``key`` = SHA-1 of the text, ``hidden`` = the flattened ``[tokens, hidden]`` matrix, ``length``);
a later run encodes only texts that no shard holds. Shards are memory-mapped Arrow, read without copies.
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
import re
import shutil
import tempfile
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np
import torch

from ..cache import cache_dir

logger = logging.getLogger(__name__)

FORMAT_VERSION = 1
DONE_MARKER = "_complete"


def default_cache_root(explicit: str | os.PathLike | None = None) -> Path:
    """``explicit``, else ``$RH_CACHE_DIR/features``, else ``~/.cache/redheart/features``."""
    if explicit:
        return Path(explicit).expanduser()
    return cache_dir("features")


def text_key(text: str) -> str:
    return hashlib.sha1(text.encode("utf-8")).hexdigest()


def encoder_cache_key(spec: dict[str, Any], revision: str | None, max_length: int, dtype: str) -> str:
    payload = {
        "model_name_or_path": spec["model_name_or_path"],
        "revision": revision,
        "max_length": int(max_length),
        "dtype": dtype,
        "format": FORMAT_VERSION,
    }
    return hashlib.sha256(json.dumps(payload, sort_keys=True).encode()).hexdigest()[:16]


def _slug(name: str) -> str:
    return re.sub(r"[^A-Za-z0-9._-]+", "_", name.rstrip("/").split("/")[-1] or name)[:60]


def resolve_encoder_revision(spec: dict[str, Any]) -> str | None:
    """The revision the cache is keyed by, without loading the model (alias version / folder fingerprint), with the
    adapter's checksum when the entry has one (as :func:`~redheart.encoders.load_encoder` reports it)."""
    from ..encoders import ALIAS_PREFIX, local_fingerprint, resolve_source
    from ..encoders.adapters import weights_sha256

    name = spec["model_name_or_path"]
    if spec.get("revision"):
        revision = spec["revision"]
    elif name.startswith(ALIAS_PREFIX):
        revision = resolve_source(name)[1]
    elif Path(name).is_dir():
        revision = local_fingerprint(name)
    else:
        revision = None
    if spec.get("adapter"):
        revision = f"{revision}+adapter-{weights_sha256(spec['adapter'])[:12]}"
    return revision


class FeatureStore:
    """Cached hidden states of one encoder (see the module docstring).

    ``ensure(texts)`` encodes the texts no shard holds yet (with a progress bar) and saves them as a new shard;
    ``batch(texts)`` returns padded ``(hidden [B, L, H] float32, mask [B, L] long)`` for the model.
    ``encoded`` / ``reused`` count texts encoded / found in the cache by this object.
    """

    def __init__(
        self,
        name: str,
        spec: dict[str, Any],
        *,
        cache_root: str | os.PathLike | None = None,
        max_length: int | None = None,
        dtype: str = "float16",
        batch_size: int = 64,
        progress: bool = True,
    ) -> None:
        if dtype not in ("float16", "float32"):
            raise ValueError(f"feature dtype must be float16 or float32, got {dtype!r}")
        self.name = name
        self.spec = dict(spec)
        self.max_length = int(max_length or spec.get("max_length") or 512)
        self.dtype = dtype
        self.batch_size = int(batch_size)
        self.progress = progress
        self.hidden_size = int(spec["hidden_size"])
        self.revision = resolve_encoder_revision(self.spec)
        self.key = encoder_cache_key(self.spec, self.revision, self.max_length, dtype)
        self.root = default_cache_root(cache_root) / f"{_slug(spec['model_name_or_path'])}-{self.key}"
        self._handle = None
        self._index: dict[str, tuple[int, int]] = {}
        self._chunks: list[tuple[np.ndarray, np.ndarray]] = []  # (flat values [T*H], row offsets [n+1])
        self._datasets: list[Any] = []
        self.encoded = 0
        self.reused = 0
        self.encode_seconds = 0.0
        self.reload()

    # ------------------------------------------------------------------------------------------------ disk
    def _meta(self) -> dict[str, Any]:
        return {
            "encoder": self.spec["model_name_or_path"],
            "revision": self.revision,
            "max_length": self.max_length,
            "dtype": self.dtype,
            "hidden_size": self.hidden_size,
            "format": FORMAT_VERSION,
        }

    def shard_dirs(self) -> list[Path]:
        if not self.root.is_dir():
            return []
        return sorted(p for p in self.root.glob("shard-*") if (p / DONE_MARKER).is_file())

    def reload(self) -> None:
        """(Re)read every complete shard (memory-mapped) and index its texts."""
        import datasets

        self._index.clear()
        self._chunks.clear()
        self._datasets.clear()
        for shard in self.shard_dirs():
            ds = datasets.load_from_disk(str(shard))
            self._datasets.append(ds)
            table = ds.data.table
            keys = table.column("key").to_pylist()
            row = 0
            for chunk in table.column("hidden").chunks:
                offsets = chunk.offsets.to_numpy()
                values = chunk.values.to_numpy(zero_copy_only=False)
                cid = len(self._chunks)
                self._chunks.append((values, offsets))
                for r in range(len(chunk)):
                    self._index.setdefault(keys[row + r], (cid, r))
                row += len(chunk)

    def __contains__(self, text: str) -> bool:
        return text_key(text) in self._index

    def __len__(self) -> int:
        return len(self._index)

    # ------------------------------------------------------------------------------------------------ encoding
    def handle(self):
        """The loaded encoder (the pipeline's loader; strict about weights and hidden size)."""
        if self._handle is None:
            from ..encoders import load_encoder

            self._handle = load_encoder(self.name, self.spec, frozen=True)
        return self._handle

    def ensure(self, texts: Sequence[str], desc: str | None = None, part: tuple[int, int] = (0, 1)) -> int:
        """Encode the texts the cache lacks and save them as a new shard; return how many were encoded.

        ``part=(index, count)``: encode only every ``count``-th missing text from the ``index``-th (processes of
        one run share the work, each writing its own shard; call :meth:`reload` once all are done).
        """
        import datasets

        missing: dict[str, str] = {}
        for text in texts:
            key = text_key(text)
            if key not in self._index and key not in missing:
                missing[key] = text
        self.reused += len({text_key(t) for t in texts}) - len(missing)
        index, count = part
        if count > 1:  # by key: the same parts in every process, whatever order its texts came in
            missing = {k: missing[k] for k in sorted(missing)[index::count]}
        if not missing:
            return 0
        start = time.perf_counter()
        handle = self.handle()
        budget = handle.content_budget(self.max_length)
        keys = list(missing)
        tokens = handle.tokenize([missing[k] for k in keys])
        rows = [handle.with_specials(t.ids[:budget]) for t in tokens]
        order = np.argsort([len(r) for r in rows], kind="stable")  # similar lengths per batch: little padding
        ds = datasets.Dataset.from_dict({"key": [keys[i] for i in order], "ids": [rows[i] for i in order]})
        np_dtype = np.float16 if self.dtype == "float16" else np.float32

        def encode(batch: dict[str, list]) -> dict[str, list]:
            hidden, mask = handle.run(batch["ids"])
            hidden = hidden.float().cpu().numpy().astype(np_dtype)
            lengths = mask.sum(dim=1).tolist()
            return {
                "key": batch["key"],
                "hidden": [hidden[i, :n].reshape(-1) for i, n in enumerate(lengths)],
                "length": lengths,
            }

        features = datasets.Features(
            {
                "key": datasets.Value("string"),
                "hidden": datasets.List(datasets.Value(self.dtype)),
                "length": datasets.Value("int32"),
            }
        )
        self.root.mkdir(parents=True, exist_ok=True)
        for stale in self.root.glob(".shard-*"):  # left by an interrupted run (a live one is younger)
            if time.time() - stale.stat().st_mtime > 6 * 3600:
                shutil.rmtree(stale, ignore_errors=True)
        meta_path = self.root / "store.json"
        if not meta_path.is_file():
            meta_path.write_text(json.dumps(self._meta(), indent=2) + "\n", encoding="utf-8")
        staging = Path(tempfile.mkdtemp(prefix=".shard-", dir=self.root))
        try:
            was_enabled = datasets.is_progress_bar_enabled()
            if not self.progress:
                datasets.disable_progress_bars()
            try:
                out = ds.map(
                    encode,
                    batched=True,
                    batch_size=self.batch_size,
                    remove_columns=["ids"],
                    features=features,
                    desc=desc
                    or f"Encoding {len(keys):,} texts with {self.name} ({self.spec['model_name_or_path']})",
                    cache_file_name=str(staging / "map.arrow"),
                )
                out.save_to_disk(str(staging / "data"))
            finally:
                if was_enabled and not self.progress:
                    datasets.enable_progress_bars()
            del out
            final = self.root / f"shard-{time.time_ns():020d}-{os.getpid()}"
            (staging / "data").rename(final)
            (final / DONE_MARKER).write_text(json.dumps({**self._meta(), "texts": len(keys)}) + "\n")
        finally:
            shutil.rmtree(staging, ignore_errors=True)
        self.encoded += len(keys)
        self.encode_seconds += time.perf_counter() - start
        self.reload()
        return len(keys)

    # ------------------------------------------------------------------------------------------------ reading
    def features(self, text: str) -> np.ndarray:
        """``[tokens, hidden]`` of one cached text (a view; KeyError if the text was never encoded)."""
        try:
            cid, row = self._index[text_key(text)]
        except KeyError:
            raise KeyError(
                f"text not in the feature cache of encoder {self.name!r} ({self.root}); call ensure() first: "
                f"{text[:80]!r}"
            ) from None
        values, offsets = self._chunks[cid]
        return values[offsets[row] : offsets[row + 1]].reshape(-1, self.hidden_size)

    def batch(self, texts: Sequence[str | None]) -> tuple[torch.Tensor, torch.Tensor]:
        """Padded hidden states and mask; a ``None`` text (not routed to this encoder) gets an all-zero mask."""
        feats = [None if t is None else self.features(t) for t in texts]
        length = max([f.shape[0] for f in feats if f is not None] or [1])
        hidden = np.zeros((len(texts), length, self.hidden_size), dtype=np.float32)
        mask = np.zeros((len(texts), length), dtype=np.int64)
        for i, f in enumerate(feats):
            if f is not None:
                hidden[i, : f.shape[0]] = f
                mask[i, : f.shape[0]] = 1
        return torch.from_numpy(hidden), torch.from_numpy(mask)

    def stats(self) -> dict[str, Any]:
        return {
            "encoder": self.spec["model_name_or_path"],
            "revision": self.revision,
            "folder": str(self.root),
            "cached_texts": len(self),
            "encoded_now": self.encoded,
            "reused": self.reused,
            "encode_seconds": round(self.encode_seconds, 1),
        }


def build_stores(
    cfg, model_config, texts_by_language: dict[int, list[str]], accelerator, print_fn
) -> dict[str, FeatureStore]:
    """Feature stores of the enabled encoders, filled with every text routed to them.

    ``cfg`` is the :class:`~.config.TrainConfig` (its ``features`` section); ``accelerator`` None = one process.
    Several processes share the encoding (each its part of the missing texts, in its own shard), then every
    process reads all shards.
    """
    from ..encoders.adapters import resolve_adapters
    from .collate import routes

    stores = {}
    routing = routes(model_config.encoders)
    specs = resolve_adapters(model_config.encoders, getattr(model_config, "name_or_path", None))
    for name, spec in specs.items():
        if not spec["enabled"]:
            continue
        store = FeatureStore(
            name,
            spec,
            cache_root=cfg.features.cache_dir,
            max_length=cfg.features.max_length,
            dtype=cfg.features.dtype,
            batch_size=cfg.features.batch_size,
            progress=cfg.train.progress,
        )
        texts = [t for lang, items in texts_by_language.items() if name in routing[lang] for t in items]
        world = 1 if accelerator is None else accelerator.num_processes
        rank = 0 if accelerator is None else accelerator.process_index
        if world > 1:  # every process must partition the same missing set: read the cache in one state
            accelerator.wait_for_everyone()
            store.reload()
            accelerator.wait_for_everyone()
        n = store.ensure(texts, part=(rank, world))
        if world > 1:
            accelerator.wait_for_everyone()
            store.reload()
        print_fn(
            f"Feature cache {name}: {store.root} -- {n:,} texts encoded now"
            + (f" by process 0 of {world}" if world > 1 else "")
            + f", {store.reused:,} reused ({len(store):,} cached)"
        )
        stores[name] = store
    return stores
