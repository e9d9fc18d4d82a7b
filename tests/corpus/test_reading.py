"""The corpus reader and shard plan: formats, bad rows kept as errors, column checks, row selection (no model)."""

from __future__ import annotations

import gzip
import json

import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from redheart.corpus.reading import ColumnError, Columns, CorpusInputError, CorpusSource
from redheart.corpus.shards import ShardPlan


def _jsonl(path, values) -> None:
    """Write lines: dicts as JSON, bytes as they are."""
    with open(path, "wb") as out:
        for value in values:
            out.write(value if isinstance(value, bytes) else json.dumps(value, ensure_ascii=False).encode())
            out.write(b"\n")


def _read(path, **options):
    return list(CorpusSource.from_path(path, **options).records())


def test_jsonl_bad_lines_keep_their_row_with_an_error(tmp_path):
    path = tmp_path / "c.jsonl"
    _jsonl(
        path,
        [
            {"id": "a", "text": "좋은 영화"},
            b'{"id": "b", "text": "\xff\xfe"}',
            b"",
            b"{not json",
            b"[1, 2]",
            {"id": "f", "body": "no text field"},
            {"id": 7, "text": 5},
            {"id": "h", "text": "last"},
        ],
    )
    records = _read(path, columns=Columns("text", "id"))
    assert [r.row for r in records] == list(range(8))
    assert (records[0].id, records[0].text, records[0].error) == ("a", "좋은 영화", None)
    assert "line 2 is not valid UTF-8" in records[1].error and records[1].text is None
    assert "line 3 is blank" in records[2].error
    assert "line 4 is not valid JSON" in records[3].error
    assert "is a JSON list, not an object" in records[4].error
    assert "has no field 'text'" in records[5].error and "'body'" in records[5].error
    # A non-string text is passed on as read: the pipeline refuses it by type, in its place.
    assert (records[6].id, records[6].text, records[6].error) == ("7", 5, None)
    assert records[7].text == "last"


def test_csv_and_tsv_rows(tmp_path):
    csv_path = tmp_path / "c.csv"
    csv_path.write_bytes(b'id,text\n1,"a quoted, text\nover two lines"\n2,bad \xff byte\n3\n4,fine\n')
    records = _read(csv_path, columns=Columns("text", "id"))
    assert [r.row for r in records] == [0, 1, 2, 3]
    assert records[0].text == "a quoted, text\nover two lines" and records[0].id == "1"
    assert "not valid UTF-8 (byte 0xff)" in records[1].error
    assert "has 1 fields, the header has 2" in records[2].error
    assert (records[3].id, records[3].text) == ("4", "fine")
    # TSV is read without quoting (NSMC's reviews start with quote marks): one line, one row.
    tsv_path = tmp_path / "c.tsv.gz"
    with gzip.open(tsv_path, "wb") as out:
        out.write('id\treview\r\n1\t"인용으로 시작\r\n2\t둘째 "리뷰 \r 안의 CR\n'.encode() + b"3\t\xff\n")
    records = _read(tsv_path, columns=Columns("review", "id"))
    assert [(r.id, r.text) for r in records[:2]] == [("1", '"인용으로 시작'), ("2", '둘째 "리뷰 \r 안의 CR')]
    assert "c.tsv.gz line 4: the text field is not valid UTF-8" in records[2].error
    headless = tmp_path / "h.tsv"
    headless.write_text("x\t첫째\ny\t둘째\n", encoding="utf-8")
    assert [r.text for r in _read(headless, columns=Columns("1"), header=False)] == ["첫째", "둘째"]


@pytest.mark.parametrize("kind", ["jsonl", "csv", "parquet"])
def test_a_missing_text_column_names_the_file_and_its_columns(tmp_path, kind):
    path = tmp_path / f"c.{kind}"
    if kind == "jsonl":
        _jsonl(path, [{"review_id": 1, "review": "x"}])
    elif kind == "csv":
        path.write_text("review_id,review\n1,x\n", encoding="utf-8")
    else:
        pq.write_table(pa.table({"review_id": [1], "review": ["x"]}), path)
    source = CorpusSource.from_path(path)
    with pytest.raises(ColumnError) as caught:
        source.check()
    message = str(caught.value)
    assert str(path) in message and "'text'" in message and "'review_id', 'review'" in message
    with pytest.raises(ColumnError, match="'rid'"):
        CorpusSource.from_path(path, columns=Columns("review", "rid")).check()


def test_unknown_format_and_missing_input_are_refused(tmp_path):
    (tmp_path / "c.xlsx").write_bytes(b"x")
    with pytest.raises(CorpusInputError, match="unknown corpus format '.xlsx'"):
        CorpusSource.from_path(tmp_path / "c.xlsx")
    with pytest.raises(CorpusInputError, match="no such file"):
        CorpusSource.from_path(tmp_path / "nowhere.jsonl")
    with pytest.raises(CorpusInputError, match="no file matches"):
        CorpusSource.from_path(str(tmp_path / "*.parquet"))


def test_a_folder_is_read_in_name_order_with_rows_numbered_across_files(tmp_path):
    _jsonl(tmp_path / "a.jsonl", [{"text": "one"}, {"text": "two"}])
    (tmp_path / "b.csv").write_text("text\nthree\n", encoding="utf-8")
    (tmp_path / "notes.txt").write_text("ignored", encoding="utf-8")
    records = _read(tmp_path)
    assert [(r.row, r.id, r.text) for r in records] == [(0, 0, "one"), (1, 1, "two"), (2, 2, "three")]
    assert [r.text for r in _read(tmp_path, limit=2)] == ["one", "two"]


def test_a_process_decodes_only_its_shards_and_counts_every_row(tmp_path):
    path = tmp_path / "c.parquet"
    pq.write_table(
        pa.table({"text": [f"t{i}" for i in range(50)], "k": list(range(50))}), path, row_group_size=7
    )
    source = CorpusSource.from_path(path, columns=Columns("text", "k"))
    assert source.known_rows() == 50
    plan = ShardPlan(10, process_index=1, num_processes=2)
    stream = source.records(plan)
    records = list(stream)
    assert [r.row for r in records] == [*range(10, 20), *range(30, 40)]
    assert records[0].id == "10" and records[0].text == "t10"  # ids are stored as text
    assert stream.rows == 50 and plan.own_rows(50) == 20
    limited = CorpusSource.from_path(path, limit=25).records(plan)
    assert [r.row for r in limited][-1] == 19 and limited.rows == 25


def test_shard_plan():
    plan = ShardPlan(10, process_index=0, num_processes=3)
    assert plan.count(0) == 0 and plan.count(31) == 4
    assert [k for k in range(4) if plan.owner(k) == 0] == [0, 3]
    assert 5 in plan and 15 not in plan and 30 in plan
    assert plan.overlaps(10, 30) is False and plan.overlaps(25, 31) is True
    assert plan.own_rows(31) == 10 + 1
    assert list(plan.rows(3, 31)) == [30]
    with pytest.raises(ValueError):
        ShardPlan(0)
