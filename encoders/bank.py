"""The bank of a Red Heart config's external text encoders: load each enabled entry and run them.

:class:`EncoderBank` loads every enabled entry of ``config.encoders`` with :func:`~.loading.load_encoder`
(strict: see there), runs different encoders of one batch concurrently on a thread pool, and keeps an optional
LRU :class:`~.feature_cache.FeatureCache` of per-window features. ``bank.encode_texts(texts)`` returns
``{"encoder_hidden_states": {...}, "encoder_attention_mask": {...}}``, exactly the keyword arguments of
``RedHeartModel.forward``.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import torch

from .adapters import resolve_adapters
from .errors import EncoderConfigError
from .feature_cache import FeatureCache
from .handle import EncoderHandle
from .loading import load_encoder


class EncoderBank(Mapping[str, EncoderHandle]):
    """The loaded encoders of a Red Heart config, by name (config order), with an optional feature cache.

    specs: ``config.encoders`` (disabled entries are skipped) or a subset; ``names`` restricts further.
    dtype: ``"auto"`` (the fastest dtype the device computes natively, whatever the stored dtype), ``"float32"``,
        ``"bfloat16"`` or ``"float16"`` (see :func:`~.loading.load_encoder`); another value is a ValueError.
    workers: threads used to run different encoders of one batch concurrently (1 = one after another).
    cache_size: LRU entries of per-window encoder features (0 = no cache).
    """

    def __init__(
        self,
        specs: Mapping[str, dict[str, Any]],
        *,
        names: Sequence[str] | None = None,
        device: torch.device | str | None = None,
        dtype: Any = "auto",
        device_map: Any = None,
        frozen: bool = True,
        trust_remote_code: bool = False,
        local_files_only: bool = False,
        workers: int = 1,
        cache_size: int = 0,
    ) -> None:
        enabled = [n for n, spec in specs.items() if spec.get("enabled", True)]
        if names is not None:
            unknown = sorted(set(names) - set(enabled))
            if unknown:
                raise EncoderConfigError(f"encoders {unknown} are not enabled entries; enabled: {enabled}")
            enabled = [n for n in enabled if n in names]
        if not enabled:
            raise EncoderConfigError("no enabled encoder to load")
        if workers < 1:
            raise ValueError(f"workers must be >= 1, got {workers}")
        self._handles = {
            name: load_encoder(
                name,
                specs[name],
                device=device,
                dtype=dtype,
                device_map=device_map,
                frozen=frozen,
                trust_remote_code=trust_remote_code,
                local_files_only=local_files_only,
            )
            for name in enabled
        }
        self.workers = workers
        self._pool = (
            ThreadPoolExecutor(max_workers=workers, thread_name_prefix="redheart-encoder")
            if workers > 1
            else None
        )
        self.cache = FeatureCache(cache_size) if cache_size else None
        #: Optional :class:`~redheart.pipelines.stage_metrics.StageMetrics`; when set, each encoder call
        #: is timed as ``encoder:<name>``.
        self.metrics: Any = None

    @classmethod
    def from_config(cls, config: Any, **kwargs: Any) -> EncoderBank:
        """Load the enabled encoders of a ``RedHeartConfig`` (relative adapter paths: from the model's folder)."""
        return cls(resolve_adapters(config.encoders, getattr(config, "name_or_path", None)), **kwargs)

    def __getitem__(self, name: str) -> EncoderHandle:
        return self._handles[name]

    def __iter__(self) -> Iterator[str]:
        return iter(self._handles)

    def __len__(self) -> int:
        return len(self._handles)

    @property
    def executor(self) -> ThreadPoolExecutor | None:
        """The thread pool of ``workers`` threads (None with one worker); tasks on it must not wait on each other."""
        return self._pool

    @property
    def languages(self) -> dict[str, list[str]]:
        return {name: handle.languages for name, handle in self._handles.items()}

    def encode(
        self,
        name: str,
        rows: Sequence[Sequence[int]],
        keys: Sequence[tuple] | None = None,
        max_tokens: int | None = None,
    ) -> tuple[torch.Tensor, torch.Tensor]:
        """Hidden states and mask of one encoder for ``rows`` of token ids; cached per row when keys are given;
        run in groups of at most ``max_tokens`` padded tokens (:meth:`EncoderHandle.run`)."""
        if self.metrics is None:
            return self._encode(name, rows, keys, max_tokens)
        with self.metrics.time(f"encoder:{name}"):
            return self._encode(name, rows, keys, max_tokens)

    def _encode(
        self,
        name: str,
        rows: Sequence[Sequence[int]],
        keys: Sequence[tuple] | None,
        max_tokens: int | None,
    ) -> tuple[torch.Tensor, torch.Tensor]:
        handle = self._handles[name]
        if self.cache is None or keys is None:
            return handle.run(rows, max_tokens)
        full_keys = [(key, name, handle.revision, len(row)) for key, row in zip(keys, rows, strict=True)]
        found = [self.cache.get(key) for key in full_keys]
        todo = [i for i, value in enumerate(found) if value is None]
        if todo:
            hidden, _ = handle.run([rows[i] for i in todo], max_tokens)
            for j, i in enumerate(todo):
                found[i] = hidden[j, : len(rows[i])].detach().to("cpu", copy=True)
                self.cache.put(full_keys[i], found[i])
        length = max(len(row) for row in rows)
        states = found[0].new_zeros((len(rows), length, found[0].shape[-1]))
        mask = torch.zeros((len(rows), length), dtype=torch.long)
        for i, value in enumerate(found):
            states[i, : value.shape[0]] = value
            mask[i, : value.shape[0]] = 1
        return states.to(handle.device), mask.to(handle.device)

    def encode_many(
        self, requests: Mapping[str, Sequence[Sequence[int]]], keys: Sequence[tuple] | None = None
    ) -> dict[str, tuple[torch.Tensor, torch.Tensor]]:
        """Run several encoders on their rows (same examples, own tokens); concurrently if ``workers > 1``."""
        if self._pool is None or len(requests) < 2:
            return {name: self.encode(name, rows, keys) for name, rows in requests.items()}
        futures = {name: self._pool.submit(self.encode, name, rows, keys) for name, rows in requests.items()}
        return {name: future.result() for name, future in futures.items()}

    def encode_texts(self, texts: Sequence[str], names: Sequence[str] | None = None) -> dict[str, dict]:
        """``RedHeartModel.forward`` inputs for short texts: each encoder reads the text truncated to its limit."""
        if isinstance(texts, str):
            texts = [texts]
        chosen = list(names) if names is not None else list(self._handles)
        requests = {}
        for name in chosen:
            handle = self._handles[name]
            budget = handle.content_budget()
            requests[name] = [handle.with_specials(t.ids[:budget]) for t in handle.tokenize(texts)]
        out = self.encode_many(requests)
        return {
            "encoder_hidden_states": {name: hidden for name, (hidden, _) in out.items()},
            "encoder_attention_mask": {name: mask for name, (_, mask) in out.items()},
        }

    def describe(self) -> list[dict[str, Any]]:
        return [handle.describe() for handle in self._handles.values()]
