"""Bad input: missing folders/files, malformed rows, empty splits, constant targets (temp files only)."""

from __future__ import annotations

import gzip
import json

import pytest

from redheart.training.data import (
    DataNotFoundError,
    EmptySplitError,
    IssueLog,
    MalformedDataError,
    TargetVarianceError,
    build_splits,
    check_heads,
    check_target_variance,
    data_report,
    format_report,
    load_ethics,
    load_goemotions,
    load_kote,
    load_nsmc_splits,
    load_timetravel,
)
from redheart.training.data.common import table_to_dataset
from redheart.training.data.schema import GOEMOTIONS_LABELS


@pytest.fixture
def no_env(monkeypatch):
    monkeypatch.delenv("RH_DATA_DIR", raising=False)


def _goemotions_dir(tmp_path, train_lines):
    d = tmp_path / "goemotions_en"
    d.mkdir()
    (d / "labels.txt").write_text("\n".join(GOEMOTIONS_LABELS) + "\n", encoding="utf-8")
    (d / "train.tsv").write_text("\n".join(train_lines) + "\n", encoding="utf-8")
    return d


# --------------------------------------------------------------------------------------------- missing


def test_missing_data_dir_names_path_and_env(tmp_path, monkeypatch):
    missing = tmp_path / "nowhere"
    monkeypatch.setenv("RH_DATA_DIR", str(missing))
    with pytest.raises(DataNotFoundError) as e:
        load_goemotions("en", "train")
    msg = str(e.value)
    assert str(missing) in msg and "RH_DATA_DIR" in msg and "goemotions_en" in msg


def test_missing_set_folder_names_path_and_expectation(tmp_path, no_env):
    with pytest.raises(DataNotFoundError) as e:
        load_kote("val", data_dir=tmp_path)
    msg = str(e.value)
    assert str(tmp_path / "kote") in msg and "val.tsv" in msg and "RH_DATA_DIR" in msg


def test_missing_file_names_file(tmp_path, no_env):
    (tmp_path / "kote").mkdir()
    with pytest.raises(DataNotFoundError) as e:
        load_kote("val", data_dir=tmp_path)
    assert str(tmp_path / "kote" / "val.tsv") in str(e.value)


def test_absent_split_is_explained(tmp_path, no_env):
    (tmp_path / "ethics" / "commonsense").mkdir(parents=True)
    with pytest.raises(DataNotFoundError) as e:
        load_ethics("commonsense", "train", data_dir=tmp_path)
    assert "no split 'train'" in str(e.value) and "cm_test.csv" in str(e.value)


def test_no_local_data_and_no_hub_id(no_env):
    with pytest.raises(DataNotFoundError) as e:
        load_timetravel("dev")
    assert "RH_DATA_DIR" in str(e.value) and "no default Hub id" in str(e.value)


def test_source_that_is_neither_folder_nor_hub_id(tmp_path, no_env):
    with pytest.raises(DataNotFoundError) as e:
        load_kote("val", source=str(tmp_path / "missing" / "folder"))
    assert "neither an existing folder nor a Hub id" in str(e.value)


def test_explicit_local_source_folder(tmp_path, no_env):
    d = tmp_path / "anywhere"
    d.mkdir()
    (d / "val.tsv").write_text("1\t좋아요\t1,4\n2\t별로\t0\n", encoding="utf-8")
    ds = load_kote("val", source=d)
    assert len(ds) == 2 and ds[0]["kote"][1] == 1 and ds[0]["kote"][4] == 1


# --------------------------------------------------------------------------------------------- malformed


def test_malformed_tsv_rows_are_counted_not_labelled(tmp_path, no_env):
    lines = [
        "good one\t0\tid1",
        "too few columns\t3",  # line 2
        "out of range\t28\tid3",  # line 3
        "\t5\tid4",  # line 4: empty text
        "not a number\tx\tid5",  # line 5
        "good two\t1,27\tid6",
        "with extra\t1\tid7\tEXTRA",  # line 7
        "",  # line 8: blank line in the middle
        "good three\t17\tid9",
    ]
    _goemotions_dir(tmp_path, lines)
    issues = IssueLog(max_malformed_fraction=1.0)
    ds = load_goemotions("en", "train", data_dir=tmp_path, issues=issues)
    assert ds["id"] == ["id1", "id6", "id9"]
    (fi,) = issues.files.values()
    assert fi.rows == 9 and fi.kept == 3 and fi.n_malformed == 6
    assert fi.malformed_lines["expected 3 tab-separated columns, got 2"] == [2]
    assert fi.malformed_lines["expected 3 tab-separated columns, got 4"] == [7]
    assert fi.malformed_lines["label id out of range 0..27"] == [3]
    assert fi.malformed_lines["empty text"] == [4]
    assert fi.malformed_lines["blank line"] == [8]
    assert any("'x'" in r for r in fi.malformed)
    rep = data_report({"train": {"goemotions_en": ds}}, issues)
    (entry,) = rep["issues"].values()
    assert sum(entry["malformed"].values()) == 6 and rep["malformed_total"] == 6
    text = format_report(rep)
    assert "6 malformed" in text and "label id out of range 0..27 (lines 3)" in text


def test_too_many_malformed_rows_raise(tmp_path, no_env):
    _goemotions_dir(tmp_path, ["ok\t0\ta", "bad\t99\tb", "bad\t98\tc"])
    with pytest.raises(MalformedDataError, match="2 of 3 rows"):
        load_goemotions("en", "train", data_dir=tmp_path)


def test_all_rows_malformed_is_an_empty_split(tmp_path, no_env):
    _goemotions_dir(tmp_path, ["bad\t99\tb", "bad\t\tc"])
    with pytest.raises(EmptySplitError, match="no usable rows"):
        load_goemotions("en", "train", data_dir=tmp_path, issues=IssueLog(1.0))


def test_empty_file_is_an_empty_split(tmp_path, no_env):
    _goemotions_dir(tmp_path, [])
    (tmp_path / "goemotions_en" / "train.tsv").write_text("", encoding="utf-8")
    with pytest.raises(EmptySplitError):
        load_goemotions("en", "train", data_dir=tmp_path)


def test_wrong_label_file_order_is_refused(tmp_path, no_env):
    d = _goemotions_dir(tmp_path, ["ok\t0\ta"])
    (d / "labels.txt").write_text("\n".join(reversed(GOEMOTIONS_LABELS)), encoding="utf-8")
    with pytest.raises(ValueError, match="label names/order differ"):
        load_goemotions("en", "train", data_dir=tmp_path)


def test_malformed_nsmc_rows(tmp_path, no_env):
    d = tmp_path / "nsmc_raw_derived"
    d.mkdir()
    body = [
        "review_id\tmovie_id\trating\tdate\treview",
        "1\t100\t10\t03.11.21\t최고",
        "2\t100\tten\t03.11.21\t별점이 글자",  # line 3: unparseable rating
        "3\t101\t11\t03.11.21\t범위 밖",  # line 4
        "4\t101\t3\t03.11.21",  # line 5: 4 columns
        "5\t102\t7\t03.11.21\t   ",  # line 6: empty review
        "6\t102\t1\t03.11.21\t줄바꿈\r있는 리뷰",  # a bare \r stays inside the review
        "7\tabc\t5\t03.11.21\t영화 id 오류",  # line 8
        "8\t103\t6\t03.11.21\t괜찮음",
        "9\t104\t2\t03.11.21\t별로",
    ]
    with gzip.open(d / "nsmc_raw_reviews.tsv.gz", "wt", encoding="utf-8", newline="") as fh:
        fh.write("\n".join(body) + "\n")
    issues = IssueLog(max_malformed_fraction=1.0)
    out = load_nsmc_splits(data_dir=tmp_path, eval_fraction=0.25, seed=0, issues=issues, use_cache=False)
    fi = next(iter(issues.files.values()))
    assert fi.rows == 9 and fi.kept == 4 and fi.n_malformed == 5
    assert fi.malformed_lines["unparseable rating (not an integer)"] == [3]
    assert fi.malformed_lines["rating out of range 1..10"] == [4]
    assert fi.malformed_lines["expected 5 tab-separated columns, got 4"] == [5]
    assert fi.malformed_lines["empty review"] == [6]
    assert fi.malformed_lines["review_id/movie_id is not an integer"] == [8]
    rows = {r["id"]: r for side in out.values() for r in side}
    assert set(rows) == {"1", "6", "8", "9"}
    assert rows["1"]["sentiment"] == 1.0 and rows["6"]["sentiment"] == -1.0
    assert "\r" not in rows["6"]["text"]


def test_nsmc_cache_keeps_issue_counts(tmp_path, no_env):
    d = tmp_path / "nsmc_raw_derived"
    d.mkdir()
    body = ["review_id\tmovie_id\trating\tdate\treview"] + [
        f"{i}\t{i % 5}\t{1 + i % 10}\td\tr{i}" for i in range(40)
    ]
    body.append("99\t1\tbad\td\tx")
    with gzip.open(d / "nsmc_raw_reviews.tsv.gz", "wt", encoding="utf-8") as fh:
        fh.write("\n".join(body) + "\n")
    for _ in range(2):  # parse + write cache, then read cache
        issues = IssueLog()
        out = load_nsmc_splits(
            data_dir=tmp_path, eval_fraction=0.2, seed=1, issues=issues, cache=tmp_path / "c"
        )
        assert next(iter(issues.files.values())).n_malformed == 1
        assert len(out["train"]) + len(out["eval"]) == 40
    assert list((tmp_path / "c").glob("nsmc_*.arrow"))


def test_malformed_ethics_and_timetravel(tmp_path, no_env):
    d = tmp_path / "ethics" / "justice"
    d.mkdir(parents=True)
    (d / "justice_train.csv").write_text(
        'label,scenario\n1,"ok, fine"\n2,bad label\n0,\n1,"multi\nline ok"\n', encoding="utf-8"
    )
    issues = IssueLog(1.0)
    ds = load_ethics("justice", "train", data_dir=tmp_path, issues=issues)
    assert ds["text"] == ["ok, fine", "multi\nline ok"] and ds["acceptable"] == [1.0, 1.0]
    fi = next(iter(issues.files.values()))
    assert fi.malformed_lines == {"label is not 0/1": [3], "empty text": [4]}

    t = tmp_path / "timetravel"
    t.mkdir()
    good = {
        "story_id": "s1",
        "premise": "P.",
        "initial": "I.",
        "counterfactual": "C.",
        "original_ending": "O.",
        "edited_ending": "E1.Next<SEP>E2.<SEP>E3.",
    }
    (t / "dev_data.json").write_text(
        json.dumps(good) + "\n{not json\n" + json.dumps({**good, "story_id": "s2", "premise": ""}) + "\n",
        encoding="utf-8",
    )
    issues = IssueLog(1.0)
    ds = load_timetravel("dev", data_dir=tmp_path, issues=issues)
    assert len(ds) == 1 and ds[0]["alternatives"][0] == "P. C. E1. Next" and ds[0]["regret"] is None
    fi = next(iter(issues.files.values()))
    assert fi.malformed_lines == {"invalid JSON": [2], "missing or empty field(s): premise": [3]}


# --------------------------------------------------------------------------------------------- variance


def _toy(**cols):
    n = len(next(iter(cols.values())))
    base = {
        "id": [str(i) for i in range(n)],
        "group": [str(i) for i in range(n)],
        "text": [f"t{i}" for i in range(n)],
        "language": ["en"] * n,
        "source": ["toy"] * n,
        "split": ["train"] * n,
    }
    base.update(cols)
    return table_to_dataset(base, n)


def test_constant_targets_are_refused_with_names():
    ds = _toy(sentiment=[0.5, 0.5, 0.5, None])
    with pytest.raises(TargetVarianceError) as e:
        check_target_variance(ds, "sentiment", name="toyset", head="sentiment")
    assert "head 'sentiment'" in str(e.value) and "'toyset'" in str(e.value) and "'sentiment'" in str(e.value)
    assert check_target_variance(_toy(sentiment=[0.5, -0.5]), "sentiment")["labelled"] == 2

    same = [1] + [0] * 27
    with pytest.raises(TargetVarianceError, match="same label vector"):
        check_target_variance(_toy(emotion=[same, same]), "emotion", name="toy")

    acc = _toy(
        acceptable=[1.0, 0.0, 1.0, 1.0], acceptability_framework=["justice", "justice", "virtue", "virtue"]
    )
    with pytest.raises(TargetVarianceError, match="framework virtue"):
        check_target_variance(acc, "acceptable", name="toy", head="acceptability")

    with pytest.raises(TargetVarianceError, match="no data set"):
        check_heads({"toy": _toy(sentiment=[0.1, 0.2])}, heads=["surd"])
    with pytest.raises(TargetVarianceError, match="0 labelled"):
        check_target_variance(_toy(regret=[None, None]), "regret", name="toy")


def test_empty_selection_errors(no_env):
    with pytest.raises(ValueError, match="no data set selected"):
        build_splits({"weights": dict.fromkeys(["goemotions_en", "nsmc"], 0.0), "sets": []})
    with pytest.raises(ValueError, match="unknown set"):
        build_splits({"weights": {"not_a_set": 1.0}})
