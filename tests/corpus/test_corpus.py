"""``redheart analyze-corpus`` end to end: values equal the pipeline's, 1 and 2 processes write the same rows, a
killed run resumes to the same output, bad rows keep their place with an error, settings are checked on rerun."""

from __future__ import annotations

import gzip
import json
import math
import socket
import subprocess
import sys
import time
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from transformers import pipeline

from redheart.corpus.cli import main as corpus_main
from redheart.corpus.flatten import analysis_columns
from redheart.corpus.reading import Columns, CorpusSource
from redheart.corpus.run import AnalysisOptions, CorpusJob, analyze_corpus
from redheart.corpus.shards import MANIFEST_NAME, OptionsMismatchError
from redheart.encoders.testing import SAMPLE_SENTENCES, build_tiny_system

NSMC = Path("nsmc_raw_derived") / "nsmc_raw_reviews.tsv.gz"
LONG_TEXT = " ".join(["I promised to help my friend move, but I stayed at work late and felt guilty."] * 12)


def _jsonl(path: Path, rows: list) -> Path:
    with open(path, "wb") as out:
        for row in rows:
            out.write(row if isinstance(row, bytes) else json.dumps(row, ensure_ascii=False).encode())
            out.write(b"\n")
    return path


def _run(source: Path, out: Path, pipe, **job) -> dict:
    columns = Columns(job.pop("text_column", "text"), job.pop("id_column", "id"))
    limit = job.pop("limit", None)
    corpus = CorpusSource.from_path(source, columns=columns, limit=limit)
    return analyze_corpus(CorpusJob(corpus, out, progress=False, **job), pipe=pipe)


def _rows(out: Path) -> list[dict]:
    """Every output row, sorted by id (then row)."""
    rows = pq.read_table(out).to_pylist()
    return sorted(rows, key=lambda r: (str(r["id"]), r["row"]))


def _assert_same_rows(got: list[dict], want: list[dict], tol: float = 1e-5) -> None:
    assert len(got) == len(want)
    for a, b in zip(got, want, strict=True):
        assert a.keys() == b.keys()
        for key in a:
            if isinstance(a[key], float) and isinstance(b[key], float):
                assert math.isclose(a[key], b[key], rel_tol=tol, abs_tol=tol), (a["id"], key, a[key], b[key])
            else:
                assert a[key] == b[key], (a["id"], key)


def _nsmc_reviews(data_dir: Path, count: int) -> list[dict]:
    with gzip.open(data_dir / NSMC, "rt", encoding="utf-8") as handle:
        header = handle.readline().rstrip("\n").split("\t")
        rows = []
        for line in handle:
            rows.append(dict(zip(header, line.rstrip("\n").split("\t"), strict=True)))
            if len(rows) == count:
                return rows
    return rows


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture(scope="module")
def calibrated_system(tmp_path_factory) -> Path:
    """A tiny model with decision thresholds and a utility reference (so the decided-label and percentile columns
    hold values)."""
    from redheart.configuration_redheart import RedHeartConfig

    config = RedHeartConfig.from_preset("tiny")
    return build_tiny_system(
        tmp_path_factory.mktemp("calibrated"),
        max_length=48,
        decision_thresholds={
            "emotion": [0.5] * len(config.emotion_labels),
            "kote": [0.45] * len(config.kote_labels),
        },
        utility_reference=[-2.0 + 0.04 * k for k in range(101)],
    )


def test_rows_equal_the_pipeline(calibrated_system, tmp_path):
    texts = [
        "친구와의 약속을 어기고 야근을 했다.",
        "I returned the wallet with all the money inside.",
        "오늘 team 회의에서 칭찬을 받았다",
        LONG_TEXT,  # several windows: the aggregated result
        "🙂🙂",
    ]
    source = _jsonl(tmp_path / "c.jsonl", [{"id": f"t{i}", "text": t} for i, t in enumerate(texts)])
    pipe = pipeline("ethics-emotion", model=str(calibrated_system))
    manifest = _run(source, tmp_path / "out", pipe, shard_size=2, batch_size=2)
    rows = {r["id"]: r for r in pq.read_table(tmp_path / "out").to_pylist()}
    direct = pipeline("ethics-emotion", model=str(calibrated_system))(texts)  # a fresh, independent pipeline
    assert manifest["rows"] == 5 and manifest["errors"] == 0 and len(manifest["shards"]) == 3
    for i, (text, want) in enumerate(zip(texts, direct, strict=True)):
        row, analysis = rows[f"t{i}"], want["analysis"]
        assert (row["row"], row["text"], row["error"]) == (i, text, None)
        assert row["language"] == want["metadata"]["language"]["detected"]
        assert row["chunks"] == want["metadata"]["chunks"]["count"]
        assert row["emotion.predicted"] == analysis["emotion"]["predicted"]
        assert row["emotion.kote_predicted"] == analysis["emotion"]["kote_predicted"]
        close = {"rel": 1e-5, "abs": 1e-6}
        assert row["emotion.labels.joy"] == pytest.approx(analysis["emotion"]["labels"]["joy"], **close)
        assert row["emotion.kote.슬픔"] == pytest.approx(analysis["emotion"]["kote"]["슬픔"], **close)
        assert row["emotion.cultural.han"] == pytest.approx(analysis["emotion"]["cultural"]["han"], **close)
        assert row["bentham.utility"] == pytest.approx(analysis["bentham"]["utility"], **close)
        assert row["bentham.utility_percentile"] == pytest.approx(
            analysis["bentham"]["utility_percentile"], **close
        )
        assert row["bentham.acceptability.justice"] == pytest.approx(
            analysis["bentham"]["acceptability"]["justice"], **close
        )
        assert row["surd.shares.leak"] == pytest.approx(analysis["surd"]["shares"]["leak"], **close)
        for key, value in want["integrated"].items():
            assert row[f"integrated.{key}"] == pytest.approx(value, **close)
        for column in analysis_columns(pipe.model.config):  # and every other float column
            if pa.types.is_floating(column.type):
                value = want
                for part in column.path:
                    value = value[part]
                assert row[column.name] == pytest.approx(value, **close), column.name
    assert rows["t3"]["chunks"] > 1
    written = json.loads((tmp_path / "out" / MANIFEST_NAME).read_text(encoding="utf-8"))
    assert written["model"]["name_or_path"] == str(calibrated_system.resolve())
    assert written["labels"]["emotion.labels"] == list(pipe.model.config.emotion_labels)


def test_bad_rows_keep_their_place_and_the_others_are_unaffected(tiny_pipeline, tmp_path):
    good = ["정말 재미있는 영화였다", "I kept my promise.", "지루했다"]
    rows = [
        {"id": "g0", "text": good[0]},
        b'{"id": "bad-utf8", "text": "\xc3\x28"}',
        {"id": "empty", "text": "   "},
        {"id": "g1", "text": good[1]},
        {"id": "number", "text": 42},
        {"id": "null", "text": None},
        {"id": "dict", "text": {"text": "nested"}},
        {"id": "long", "text": "가" * 300},
        {"id": "g2", "text": good[2]},
    ]
    source = _jsonl(tmp_path / "c.jsonl", rows)
    manifest = _run(
        source, tmp_path / "out", tiny_pipeline, shard_size=4, options=AnalysisOptions(max_chars=200)
    )
    out = {r["row"]: r for r in pq.read_table(tmp_path / "out").to_pylist()}
    assert len(out) == 9 and manifest["errors"] == 6
    errors = {r["row"]: r["error"] for r in out.values() if r["error"]}
    assert "not valid UTF-8" in errors[1] and out[1]["id"] is None
    assert errors[2].startswith("InputError: empty or whitespace-only")
    assert errors[4] == "InputTypeError: got int; expected a non-empty string"
    assert errors[5] == "InputTypeError: got None; expected a non-empty string"
    assert errors[6] == "InputTypeError: got dict; expected a non-empty string"
    assert "300 characters, more than max_chars=200" in errors[7] and out[7]["text"] == "가" * 300
    for row in errors:
        assert out[row]["emotion.sentiment"] is None and out[row]["language"] is None
    direct = tiny_pipeline(good)
    for row, want in zip((0, 3, 8), direct, strict=True):
        assert out[row]["error"] is None
        assert out[row]["emotion.sentiment"] == pytest.approx(
            want["analysis"]["emotion"]["sentiment"], abs=1e-6
        )
        assert out[row]["integrated.confidence"] == pytest.approx(want["integrated"]["confidence"], abs=1e-6)


def test_a_missing_text_column_is_a_clear_error_before_any_model_loads(tmp_path, capsys):
    path = tmp_path / "reviews.csv"
    path.write_text("review_id,review\n1,좋다\n", encoding="utf-8")
    code = corpus_main([str(path), str(tmp_path / "out"), "--model", str(tmp_path / "no-model")])
    err = capsys.readouterr().err
    assert code == 2
    assert str(path) in err and "no column 'text'" in err and "'review_id', 'review'" in err


def test_another_model_or_options_in_the_same_output_is_refused(tiny_pipeline, calibrated_system, tmp_path):
    source = _jsonl(
        tmp_path / "c.jsonl", [{"id": str(i), "text": t} for i, t in enumerate(SAMPLE_SENTENCES[:3])]
    )
    out = tmp_path / "out"
    _run(source, out, tiny_pipeline, shard_size=2)
    with pytest.raises(OptionsMismatchError, match="options.truncation: 'chunk' there, 'first' now"):
        _run(source, out, tiny_pipeline, shard_size=2, options=AnalysisOptions(truncation="first"))
    other = pipeline("ethics-emotion", model=str(calibrated_system))
    with pytest.raises(OptionsMismatchError, match="model.config_sha256") as caught:
        _run(source, out, other, shard_size=2)
    assert "--overwrite" in str(caught.value)
    # The shards hold the settings too: without the manifest the rerun is refused all the same.
    (out / MANIFEST_NAME).unlink()
    with pytest.raises(OptionsMismatchError, match="part-00000.parquet"):
        _run(source, out, tiny_pipeline, shard_size=3)
    assert _run(source, out, other, shard_size=2, overwrite=True)["last_run"]["analysed_rows"] == 3


def test_a_killed_run_resumes_to_the_uninterrupted_output(tiny_system, tiny_pipeline, tmp_path, capsys):
    texts = [f"{s} ({i})" for i, s in enumerate(SAMPLE_SENTENCES * 3)][:40]
    source = _jsonl(tmp_path / "c.jsonl", [{"id": f"r{i:02d}", "text": t} for i, t in enumerate(texts)])
    reference = tmp_path / "reference"
    _run(source, reference, tiny_pipeline, shard_size=4)

    out = tmp_path / "out"
    command = [sys.executable, "-m", "redheart.corpus", str(source), str(out), "--model", str(tiny_system)]
    command += ["--id-column", "id", "--shard-size", "4", "--batch-size", "1", "--no-progress"]
    process = subprocess.Popen(command, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    deadline = time.monotonic() + 240
    while not (out / "part-00000.parquet").exists():
        assert process.poll() is None, process.stderr.read().decode()
        assert time.monotonic() < deadline, "the first shard was never written"
        time.sleep(0.01)
    process.kill()  # SIGKILL: no cleanup of any kind
    process.wait()
    process.stderr.close()
    written = sorted(p.name for p in out.glob("part-*.parquet"))
    assert len(written) < 10 and not (out / MANIFEST_NAME).exists(), "the run ended before it could be killed"

    # Damage on top of the kill: a truncated final shard, a leftover .tmp, a shard holding other rows.
    part = out / "part-00000.parquet"
    part.write_bytes(part.read_bytes()[:100])
    (out / "part-00005.parquet").unlink(missing_ok=True)
    (out / "part-00005.parquet.tmp").write_bytes(b"half a shard")
    (out / "part-00007.parquet").write_bytes((reference / "part-00006.parquet").read_bytes())
    kept = {p.name: p.stat().st_mtime_ns for p in out.glob("part-*.parquet") if p.name in written[1:]}
    kept.pop("part-00007.parquet", None)
    manifest = _run(source, out, tiny_pipeline, shard_size=4)
    notes = capsys.readouterr().err
    assert f"{part} is corrupt" in notes and "redoing shard 0" in notes
    assert "part-00005.parquet.tmp is an interrupted write" in notes
    assert "part-00007.parquet holds 4 rows from row 24, expected 4 from row 28" in notes
    assert manifest["last_run"]["resumed_rows"] == 4 * len(kept)
    assert {p.name: p.stat().st_mtime_ns for p in out.glob("part-*.parquet") if p.name in kept} == kept
    assert not list(out.glob("*.tmp"))
    _assert_same_rows(_rows(out), _rows(reference))
    again = _run(source, out, tiny_pipeline, shard_size=4)  # complete: nothing to do
    assert again["last_run"]["analysed_rows"] == 0 and again["last_run"]["resumed_rows"] == 40


@pytest.mark.data
@pytest.mark.slow
def test_one_and_two_processes_write_identical_rows(data_dir, tiny_system, tiny_pipeline, tmp_path):
    """Real NSMC reviews, read straight from the data set's .tsv.gz; 2 processes via `accelerate launch`."""
    source = data_dir / NSMC
    reviews = _nsmc_reviews(data_dir, 40)
    one = tmp_path / "one"
    options = {"text_column": "review", "id_column": "review_id", "limit": 40, "shard_size": 10}
    _run(source, one, tiny_pipeline, **options)
    two = tmp_path / "two"
    # `accelerate launch` (its module: the same command, whatever PATH holds); --multi_gpu is its torchrun launcher.
    command = [sys.executable, "-m", "accelerate.commands.launch", "--multi_gpu", "--num_processes", "2"]
    command += ["--num_machines", "1"]
    command += ["--mixed_precision", "no", "--dynamo_backend", "no", "--main_process_port", str(_free_port())]
    command += ["-m", "redheart.corpus", str(source), str(two), "--model", str(tiny_system), "--limit", "40"]
    command += ["--text-column", "review", "--id-column", "review_id", "--shard-size", "10", "--no-progress"]
    run = subprocess.run(command, capture_output=True, text=True, timeout=300)
    assert run.returncode == 0, run.stderr[-3000:]
    manifest = json.loads((two / MANIFEST_NAME).read_text(encoding="utf-8"))
    assert manifest["last_run"]["processes"] == 2
    assert sorted({s["process"] for s in manifest["shards"]}) == [0, 1]
    assert manifest["rows"] == 40 and [s["rows"] for s in manifest["shards"]] == [10] * 4
    rows = _rows(two)
    assert [r["text"] for r in sorted(rows, key=lambda r: r["row"])] == [r["review"] for r in reviews]
    assert sorted(r["id"] for r in rows) == sorted(r["review_id"] for r in reviews)
    _assert_same_rows(rows, _rows(one))
