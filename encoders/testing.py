"""Encoders built locally for tests and benchmarks (no Hub access needed).

* :func:`build_base_encoder` -- a production encoder's *shape* (``BASE_ENCODER_SHAPES`` of
  :mod:`redheart.configuration_redheart.presets`: real hidden sizes, layers, heads, vocabulary sizes, position
  limits) with **random weights** and a tokenizer trained locally with the ``tokenizers`` library (WordPiece for
  the ELECTRA/BERT shapes, byte-level BPE with RoBERTa's special tokens for the RoBERTa shape). Their outputs
  mean nothing; their cost is that of the real encoders, which is what benchmarks need.
* :func:`build_tiny_encoder` -- a BERT- or RoBERTa-architecture encoder of any small hidden size for fast
  tests; :func:`build_tiny_system` saves a ``tiny``-preset Red Heart model on two of them.

Every builder saves a normal Hugging Face folder (``config.json``, ``model.safetensors``, ``tokenizer.json``...)
and returns its path, so tests and benchmarks load them back through the real loading code
(:class:`~redheart.encoders.bank.EncoderBank`). Builds are deterministic: the same arguments and seed give
byte-identical files. Base-size folders are cached under ``$RH_CACHE_DIR/local-encoders`` (default
``~/.cache/redheart/local-encoders``); a folder counts as complete only once its ``redheart_local_encoder.json``
marker is written.

The tokenizers are trained on text from the data folder (``RH_DATA_DIR``: GoEmotions EN, KOTE, GoEmotions KO)
when it is available, else on the small built-in :data:`SAMPLE_SENTENCES`.
"""

from __future__ import annotations

import csv
import json
import os
import shutil
import tempfile
from collections.abc import Iterable, Iterator
from pathlib import Path
from typing import Any

import torch
from tokenizers import Tokenizer, decoders, models, normalizers, pre_tokenizers, processors, trainers
from transformers import AutoConfig, AutoModel, PretrainedConfig, PreTrainedTokenizerFast

from ..cache import cache_dir
from ..configuration_redheart.presets import BASE_ENCODER_SHAPES, PRODUCTION_ENCODERS, preset_kwargs

MARKER = "redheart_local_encoder.json"

_WORDPIECE_SPECIALS = ["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]"]
_BPE_SPECIALS = ["<s>", "<pad>", "</s>", "<unk>", "<mask>"]
#: Architecture of each encoder of the ``tiny`` preset (its hidden sizes and languages come from the preset).
_TINY_FAMILIES = {"enc_a": "bert", "enc_b": "roberta"}

#: Fallback training text (Korean and English) when no data folder is available.
SAMPLE_SENTENCES: tuple[str, ...] = (
    "친구와의 약속을 어기고 야근을 했다.",
    "오늘은 정말 행복한 하루였다.",
    "그 사람의 말에 너무 화가 났다.",
    "부모님께 거짓말을 해서 마음이 무겁다.",
    "시험에 떨어져서 슬프고 속상하다.",
    "동생이 도와줘서 고마웠다.",
    "회사에서 억울한 일을 당했지만 참았다.",
    "오랜만에 만난 친구와 밤새 이야기했다.",
    "길에서 지갑을 주워 경찰서에 맡겼다.",
    "이번 결정이 옳았는지 모르겠다.",
    "영화가 생각보다 재미있었다.",
    "날씨가 좋아서 산책을 했다.",
    "I broke my promise to a friend and worked late.",
    "Today was a genuinely happy day.",
    "I was so angry at what he said.",
    "I lied to my parents and I feel guilty about it.",
    "I failed the exam and I am sad.",
    "My brother helped me and I am grateful.",
    "I found a wallet on the street and returned it.",
    "I am not sure the decision was right.",
    "The movie was better than I expected!",
    "The weather was nice so we went for a walk.",
    "Thanks for sharing, this made my day :)",
    "That is honestly the worst idea I have heard.",
)


def default_cache_dir() -> Path:
    """``$RH_CACHE_DIR/local-encoders`` if set, else ``~/.cache/redheart/local-encoders``."""
    return cache_dir("local-encoders")


def read_tsv_column(path: Path, column: int, limit: int) -> Iterator[str]:
    """Non-empty values of one column of the first ``limit`` rows of a TSV file (no quoting, as in the data)."""
    with path.open(encoding="utf-8") as handle:
        for i, row in enumerate(csv.reader(handle, delimiter="\t", quoting=csv.QUOTE_NONE)):
            if i >= limit:
                return
            if len(row) > column and row[column].strip():
                yield row[column]


def data_corpus(data_dir: str | Path | None = None, lines_per_source: int = 3000) -> list[str]:
    """Korean and English lines from the data folder (``RH_DATA_DIR``), or :data:`SAMPLE_SENTENCES`."""
    root = data_dir or os.environ.get("RH_DATA_DIR")
    if not root or not Path(root).is_dir():
        return list(SAMPLE_SENTENCES)
    root = Path(root)
    sources = (
        (root / "goemotions_en" / "train.tsv", 0),
        (root / "kote" / "val.tsv", 1),
        (root / "goemotions_ko" / "train.tsv", 0),
    )
    lines: list[str] = []
    for path, column in sources:
        if path.is_file():
            lines.extend(read_tsv_column(path, column, lines_per_source))
    return lines or list(SAMPLE_SENTENCES)


def tokenizer_kind(family: str) -> str:
    """``"bpe"`` for the RoBERTa family (byte-level BPE), else ``"wordpiece"`` (BERT, ELECTRA)."""
    return "bpe" if family == "roberta" else "wordpiece"


def _continuation_pieces(tokenizer: Tokenizer, lines: Iterable[str]) -> list[str]:
    """``##c`` for every character ``c`` that continues a pre-tokenised word of ``lines``, sorted.

    ``tokenizers``' WordPiece trainer numbers these pieces in hash-map order, which changes from run to run
    and, through tie-breaks between equally frequent merges, changes which merges are learnt. Declared up
    front they get fixed ids, and the trained vocabulary is the same on every run.
    """
    inner: set[str] = set()
    for line in lines:
        normalised = tokenizer.normalizer.normalize_str(line)
        for word, _ in tokenizer.pre_tokenizer.pre_tokenize_str(normalised):
            inner.update(word[1:])
    return ["##" + char for char in sorted(inner)]


def _without_added_tokens(tokenizer: Tokenizer, contents: set[str]) -> Tokenizer:
    """``tokenizer`` with the added tokens ``contents`` removed (they stay ordinary vocabulary entries)."""
    data = json.loads(tokenizer.to_str())
    data["added_tokens"] = [token for token in data["added_tokens"] if token["content"] not in contents]
    return Tokenizer.from_str(json.dumps(data))


def _train_wordpiece(lines: list[str], vocab_size: int) -> Tokenizer:
    tok = Tokenizer(models.WordPiece(unk_token="[UNK]"))
    tok.normalizer = normalizers.BertNormalizer(
        clean_text=True, handle_chinese_chars=True, strip_accents=False, lowercase=False
    )
    tok.pre_tokenizer = pre_tokenizers.BertPreTokenizer()
    continuations = _continuation_pieces(tok, lines)
    trainer = trainers.WordPieceTrainer(
        vocab_size=vocab_size, special_tokens=[*_WORDPIECE_SPECIALS, *continuations]
    )
    tok.train_from_iterator(lines, trainer)
    tok = _without_added_tokens(tok, set(continuations))
    cls_id, sep_id = tok.token_to_id("[CLS]"), tok.token_to_id("[SEP]")
    tok.post_processor = processors.TemplateProcessing(
        single="[CLS] $A [SEP]",
        pair="[CLS] $A [SEP] $B:1 [SEP]:1",
        special_tokens=[("[CLS]", cls_id), ("[SEP]", sep_id)],
    )
    tok.decoder = decoders.WordPiece()
    return tok


def _train_bpe(lines: list[str], vocab_size: int) -> Tokenizer:
    tok = Tokenizer(models.BPE())
    tok.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    trainer = trainers.BpeTrainer(
        vocab_size=vocab_size,
        special_tokens=_BPE_SPECIALS,
        initial_alphabet=pre_tokenizers.ByteLevel.alphabet(),
    )
    tok.train_from_iterator(lines, trainer)
    tok.post_processor = processors.RobertaProcessing(
        ("</s>", 2), ("<s>", 0), trim_offsets=True, add_prefix_space=False
    )
    tok.decoder = decoders.ByteLevel()
    return tok


def train_tokenizer(
    kind: str, corpus: Iterable[str], vocab_size: int, model_max_length: int
) -> PreTrainedTokenizerFast:
    """A WordPiece (BERT/ELECTRA-style) or byte-level BPE (RoBERTa-style) fast tokenizer trained on ``corpus``.

    Deterministic: the same corpus and size give the same vocabulary and ids.
    """
    lines = list(corpus)
    if kind == "wordpiece":
        tok = _train_wordpiece(lines, vocab_size)
        specials = {
            "unk_token": "[UNK]",
            "pad_token": "[PAD]",
            "cls_token": "[CLS]",
            "sep_token": "[SEP]",
            "mask_token": "[MASK]",
        }
    elif kind == "bpe":
        tok = _train_bpe(lines, vocab_size)
        specials = {
            "bos_token": "<s>",
            "eos_token": "</s>",
            "unk_token": "<unk>",
            "pad_token": "<pad>",
            "cls_token": "<s>",
            "sep_token": "</s>",
            "mask_token": "<mask>",
        }
    else:
        raise ValueError(f"tokenizer kind must be 'wordpiece' or 'bpe', got {kind!r}")
    return PreTrainedTokenizerFast(tokenizer_object=tok, model_max_length=model_max_length, **specials)


def _save(
    out_dir: Path, model: torch.nn.Module, tokenizer: PreTrainedTokenizerFast, info: dict[str, Any]
) -> Path:
    out_dir.parent.mkdir(parents=True, exist_ok=True)
    staging = Path(tempfile.mkdtemp(prefix=f".{out_dir.name}-", dir=out_dir.parent))
    try:
        model.save_pretrained(staging)
        tokenizer.save_pretrained(staging)
        (staging / MARKER).write_text(json.dumps(info, indent=2) + "\n", encoding="utf-8")
        if out_dir.exists():
            shutil.rmtree(out_dir)
        staging.rename(out_dir)
    finally:
        if staging.exists():
            shutil.rmtree(staging, ignore_errors=True)
    return out_dir


def _random_model(family: str, config_kwargs: dict[str, Any], seed: int) -> torch.nn.Module:
    config = AutoConfig.for_model(family, **config_kwargs)
    torch.manual_seed(seed)
    return AutoModel.from_config(config).eval()


def base_encoder_config(name: str) -> PretrainedConfig:
    """The architecture config of production encoder ``name`` (``BASE_ENCODER_SHAPES``), without weights."""
    if name not in BASE_ENCODER_SHAPES:
        raise ValueError(f"unknown base encoder {name!r}; choose one of {sorted(BASE_ENCODER_SHAPES)}")
    family, shape = BASE_ENCODER_SHAPES[name]
    return AutoConfig.for_model(family, **shape)


def build_base_encoder(
    name: str,
    out_dir: str | Path | None = None,
    *,
    corpus: Iterable[str] | None = None,
    tokenizer_vocab_size: int = 16000,
    seed: int = 0,
    force: bool = False,
) -> Path:
    """A folder with a base-size encoder of ``BASE_ENCODER_SHAPES[name]``, random weights (cached)."""
    if name not in BASE_ENCODER_SHAPES:
        raise ValueError(f"unknown base encoder {name!r}; choose one of {sorted(BASE_ENCODER_SHAPES)}")
    family, shape = BASE_ENCODER_SHAPES[name]
    out = Path(out_dir) if out_dir is not None else default_cache_dir() / f"{name}-base-random-s{seed}"
    if (out / MARKER).is_file() and not force:
        return out
    cfg = dict(shape)
    limit = cfg["max_position_embeddings"] - (cfg.get("pad_token_id", 0) + 1 if family == "roberta" else 0)
    lines = list(corpus) if corpus is not None else data_corpus()
    vocab_size = min(tokenizer_vocab_size, cfg["vocab_size"])
    tokenizer = train_tokenizer(tokenizer_kind(family), lines, vocab_size, limit)
    if len(tokenizer) > cfg["vocab_size"]:
        raise ValueError(
            f"trained tokenizer has {len(tokenizer)} tokens, more than the architecture's {cfg['vocab_size']}"
        )
    model = _random_model(family, cfg, seed)
    info = {
        "kind": "base",
        "name": name,
        "family": family,
        "seed": seed,
        "random_weights": True,
        "tokenizer_vocab": len(tokenizer),
        "corpus_lines": len(lines),
    }
    return _save(out, model, tokenizer, info)


def build_tiny_encoder(
    out_dir: str | Path,
    *,
    family: str = "bert",
    hidden_size: int = 24,
    num_layers: int = 2,
    num_heads: int = 2,
    max_position: int = 128,
    vocab_size: int = 600,
    corpus: Iterable[str] | None = None,
    seed: int = 0,
) -> Path:
    """A small BERT- or RoBERTa-architecture encoder with random weights and its own trained tokenizer."""
    if family not in ("bert", "roberta"):
        raise ValueError(f"family must be 'bert' or 'roberta', got {family!r}")
    lines = list(corpus) if corpus is not None else list(SAMPLE_SENTENCES)
    limit = max_position - 2 if family == "roberta" else max_position
    tokenizer = train_tokenizer(tokenizer_kind(family), lines, vocab_size, limit)
    cfg: dict[str, Any] = {
        "vocab_size": len(tokenizer),
        "hidden_size": hidden_size,
        "num_hidden_layers": num_layers,
        "num_attention_heads": num_heads,
        "intermediate_size": 2 * hidden_size,
        "max_position_embeddings": max_position,
    }
    if family == "roberta":
        cfg.update(pad_token_id=1, bos_token_id=0, eos_token_id=2, type_vocab_size=1)
    model = _random_model(family, cfg, seed)
    info = {
        "kind": "tiny",
        "family": family,
        "hidden_size": hidden_size,
        "seed": seed,
        "random_weights": True,
    }
    return _save(Path(out_dir), model, tokenizer, info)


def base_encoder_entries(folders: dict[str, Path], max_length: int = 512) -> dict[str, dict[str, Any]]:
    """``RedHeartConfig.encoders`` entries of the 330m preset pointed at locally built folders."""
    entries = {}
    for name, spec in PRODUCTION_ENCODERS.items():
        entries[name] = {**spec, "model_name_or_path": str(folders[name]), "max_length": max_length}
    return entries


def build_tiny_system(
    out_dir: str | Path,
    *,
    seed: int = 0,
    max_length: int = 128,
    encoders: dict[str, dict[str, Any]] | None = None,
    **config_overrides: Any,
) -> Path:
    """A saved tiny Red Heart model (``tiny`` preset) whose two encoders are tiny local folders; returns its path.

    The encoders have the ``tiny`` preset's hidden sizes and languages (``enc_a``: BERT architecture, 24-d, every
    language; ``enc_b``: RoBERTa architecture, 16-d, Korean). ``encoders`` replaces the entries; other keyword
    arguments override config fields.
    """
    from ..configuration_redheart.config import RedHeartConfig
    from ..modeling_redheart.modeling import RedHeartModel

    out = Path(out_dir)
    if encoders is None:
        encoders = {}
        for offset, (name, spec) in enumerate(preset_kwargs("tiny")["encoders"].items()):
            folder = build_tiny_encoder(
                out / name, family=_TINY_FAMILIES[name], hidden_size=spec["hidden_size"], seed=seed + offset
            )
            encoders[name] = {**spec, "model_name_or_path": str(folder), "max_length": max_length}
    config = RedHeartConfig.from_preset("tiny", encoders=encoders, **config_overrides)
    torch.manual_seed(seed)
    model = RedHeartModel(config).eval()
    model.save_pretrained(out / "model")
    return out / "model"
