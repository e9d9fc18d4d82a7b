"""Loaders on the real data in RH_DATA_DIR: row counts per the data README, label ranges, mappings."""

from __future__ import annotations

import csv
import json
import re

import numpy as np
import pytest

from redheart.training.data import (
    IssueLog,
    load_ethics,
    load_ethics_util,
    load_goemotions,
    load_kosbi,
    load_kote,
    load_square,
    load_timetravel,
)
from redheart.training.data.nsmc import SPEC as NSMC_SPEC
from redheart.training.data.nsmc import movie_split, read_nsmc_table

pytestmark = pytest.mark.data


def _arr(ds, field):
    """A column as numpy (multi-hot lists as an (n, width) matrix), through Arrow (fast)."""
    col = ds.select_columns([field]).with_format("arrow")[:][field].combine_chunks()
    if hasattr(col, "flatten") and ds.features[field].__class__.__name__ == "List":
        return col.flatten().to_numpy(zero_copy_only=False).reshape(len(ds), -1)
    return col.to_numpy(zero_copy_only=False)


@pytest.mark.parametrize("language", ["en", "ko"])
def test_goemotions_counts_and_labels(data_dir, language):
    for split, n in (("train", 43_410), ("dev", 5_426)):
        issues = IssueLog()
        ds = load_goemotions(language, split, data_dir=data_dir, issues=issues)
        assert len(ds) == n and issues.n_malformed == 0
        emo = _arr(ds, "emotion")
        assert emo.shape == (n, 28) and set(np.unique(emo)) == {0, 1}
        assert emo.sum(axis=1).min() >= 1  # every example has a label
        sent = _arr(ds, "sentiment")
        assert sent.min() == -1.0 and sent.max() == 1.0
        assert set(ds.unique("language")) == {language} and set(ds.unique("split")) == {split}
        assert ds.features["kote"].length == 44 and ds[0]["kote"] is None and ds[0]["acceptable"] is None


def test_goemotions_en_ko_are_row_aligned(data_dir):
    en = load_goemotions("en", "dev", data_dir=data_dir)
    ko = load_goemotions("ko", "dev", data_dir=data_dir)
    assert en["group"] == ko["group"]
    assert (_arr(en, "emotion") == _arr(ko, "emotion")).all()
    assert en[1]["id"] == "ee84bjg" and en[1]["emotion"][4] == 1 and en[1]["emotion"][27] == 1


def test_kote_counts_and_labels(data_dir):
    ds = load_kote("val", data_dir=data_dir)
    assert len(ds) == 5_000
    k = _arr(ds, "kote")
    assert k.shape == (5_000, 44) and set(np.unique(k)) == {0, 1} and k.sum(axis=1).min() >= 1
    first = ds[0]  # "5954 ... 0,6,10,22,23,36"
    assert first["id"] == "5954" and [i for i, v in enumerate(first["kote"]) if v] == [0, 6, 10, 22, 23, 36]
    assert first["emotion"] is None and first["language"] == "ko"


@pytest.mark.parametrize(
    "framework,split,n",
    [
        ("commonsense", "test", 3_885),
        ("justice", "train", 21_791),
        ("justice", "test", 2_704),
        ("deontology", "train", 18_164),
        ("deontology", "test", 3_596),
        ("virtue", "train", 28_245),
        ("virtue", "test", 4_975),
    ],
)
def test_ethics_frameworks(data_dir, framework, split, n):
    ds = load_ethics(framework, split, data_dir=data_dir)
    assert len(ds) == n
    acc = _arr(ds, "acceptable")
    assert set(np.unique(acc)) == {0.0, 1.0}
    assert set(ds.unique("acceptability_framework")) == {framework}


def test_ethics_label_directions(data_dir):
    cm = load_ethics("commonsense", "test", data_dir=data_dir)
    # cm_test rows 1/2: "... loved her ..." label 0 (fine), "... hated her ..." label 1 (wrong)
    assert cm[0]["text"].endswith("loved her when she cried.") and cm[0]["acceptable"] == 1.0
    assert cm[1]["text"].endswith("hated her when she cried.") and cm[1]["acceptable"] == 0.0
    assert cm[0]["group"] == cm[1]["group"] != cm[2]["group"]  # a minimal pair stays together
    virtue = load_ethics("virtue", "test", data_dir=data_dir)
    assert virtue[0]["text"].endswith("This shows the trait: trustful.") and virtue[0]["acceptable"] == 1.0
    assert "[SEP]" not in virtue[0]["text"]
    deon = load_ethics("deontology", "test", data_dir=data_dir)
    assert deon[0]["text"] == (
        "Aren't you supposed to be painting the house? No because the paint already peeled off."
    )


def test_ethics_util_pairs_and_regret(data_dir):
    with open(data_dir / "ethics/utilitarianism/util_test.csv", encoding="utf-8", newline="") as fh:
        first = next(csv.reader(fh))
    for split, n in (("train", 13_738), ("test", 4_808)):
        pairs = load_ethics_util(split, data_dir=data_dir)
        assert len(pairs) == n
        assert pairs[0]["utility_worse"] is not None and pairs[0]["regret"] is None
    assert (pairs[0]["text"], pairs[0]["utility_worse"]) == (first[0], first[1])  # column 0 = more pleasant
    reg = load_ethics_util("test", data_dir=data_dir, as_regret=True)
    assert len(reg) == 2 * 4_808
    a, b = reg[0], reg[1]
    assert (a["text"], a["alternatives"], a["regret"]) == (first[1], [first[0]], 1.0)  # chose the worse
    assert (b["text"], b["alternatives"], b["regret"]) == (first[0], [first[1]], 0.0)  # chose the better
    assert a["group"] == b["group"] and a["utility_worse"] is None


def test_kosbi_and_square(data_dir):
    issues = IssueLog()
    kosbi = load_kosbi("valid", data_dir=data_dir, issues=issues)
    ids = kosbi["id"]
    assert sum(i.endswith(":sentence") for i in ids) == 3_421
    items = json.loads((data_dir / "kosbi_square/kosbi_valid.json").read_text(encoding="utf-8"))
    contexts = {re.sub(r"^#+\s*", "", x["context"].strip()) for x in items}
    fi = next(iter(issues.files.values()))
    assert sum(i.endswith(":context") for i in ids) + fi.n_skipped == len(contexts)
    assert set(kosbi.unique("acceptability_framework")) == {"commonsense"}
    assert set(np.unique(_arr(kosbi, "acceptable"))) == {0.0, 1.0}
    assert not any(t.startswith("#") for t in kosbi["text"])
    square = load_square("valid", data_dir=data_dir)
    assert len(square) == 6_882
    assert square.unique("acceptable") == [None]  # SQuARe is not an acceptability label
    assert sorted(square.unique("sensitive_question")) == [0.0, 1.0]


def test_timetravel(data_dir):
    ds = load_timetravel("dev", data_dir=data_dir)
    assert len(ds) == 1_871
    assert all(len(a) == 3 for a in ds["alternatives"])
    assert ds.unique("regret") == [None]
    first = ds[0]
    assert first["text"].startswith("Ryan was called by his friend") and first["text"].endswith(
        "Ryan got fired."
    )
    assert all(
        a.startswith("Ryan was called by his friend to skip work one day. But Ryan")
        for a in first["alternatives"]
    )
    assert "day.At" not in first["alternatives"][0]


def test_nsmc_full_parse_and_movie_split(data_dir, tmp_path_factory):
    issues = IssueLog()
    table = read_nsmc_table(
        data_dir / NSMC_SPEC.folder / NSMC_SPEC.files["all"], issues, cache=tmp_path_factory.mktemp("c")
    )
    assert table.num_rows == 712_383 and issues.n_malformed == 0
    ratings = table["rating"].to_numpy()
    assert ratings.min() == 1 and ratings.max() == 10
    movies = table["movie_id"].to_numpy()
    is_eval = movie_split(movies, 0.1, seed=7)
    assert not set(movies[is_eval]) & set(movies[~is_eval])  # no movie on both sides
    assert 0.05 < is_eval.mean() < 0.15
    assert (movie_split(movies, 0.1, seed=7) == is_eval).all()
    assert not (movie_split(movies, 0.1, seed=8) == is_eval).all()


def test_every_loader_is_the_generic_load_of_its_reader(data_dir):
    """``load(reader, split, LoadOptions)`` is what every ``load_*`` runs: same rows for the same options."""
    from redheart.training.data import LoadOptions, ethics, goemotions, kote, load, timetravel

    options = {"data_dir": data_dir, "max_samples": 40, "seed": 3, "split_label": "x"}
    cases = [
        (goemotions.READERS["ko"], "dev", lambda **kw: load_goemotions("ko", "dev", **kw)),
        (kote.READER, "val", lambda **kw: load_kote("val", **kw)),
        (ethics.READERS["virtue"], "test", lambda **kw: load_ethics("virtue", "test", **kw)),
        (ethics.UTIL_REGRET_READER, "test", lambda **kw: load_ethics_util("test", as_regret=True, **kw)),
        (timetravel.READER, "dev", lambda **kw: load_timetravel("dev", **kw)),
    ]
    for reader, split, direct in cases:
        generic = load(reader, split, LoadOptions(**options))
        assert generic.to_list() == direct(**options).to_list(), reader.name
        assert len(generic) == 40 and generic.unique("split") == ["x"]
    with pytest.raises(TypeError, match="max_sample"):
        load_kote("val", data_dir=data_dir, max_sample=3)  # an option LoadOptions does not have
