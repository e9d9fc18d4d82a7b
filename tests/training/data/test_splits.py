"""Named splits, seeds, NSMC movie split, target variance, mixtures and the report on the real data."""

from __future__ import annotations

import pytest

from redheart.training.data import (
    SET_TASKS,
    DataConfig,
    build_set,
    build_splits,
    check_heads,
    check_target_variance,
    composition,
    format_report,
    mix_datasets,
)
from redheart.training.data.schema import TASK_FIELDS

pytestmark = pytest.mark.data

SMALL = {  # keep the tests fast: cap every set; seeded splits are made before the caps
    "max_samples": {s: 3_000 for s in SET_TASKS},
    "max_eval_samples": {s: 1_000 for s in SET_TASKS},
}
HEADS = ["emotion", "kote", "sentiment", "acceptability", "utility", "regret"]


@pytest.fixture(scope="module")
def cache(tmp_path_factory) -> str:
    return str(tmp_path_factory.mktemp("rh_cache"))


@pytest.fixture(scope="module")
def splits(data_dir, cache):
    return build_splits(
        DataConfig.from_dict({**SMALL, "data_dir": str(data_dir), "seed": 42, "cache_dir": cache})
    )


def test_default_sets_are_built(splits):
    expected = {s for s, w in DataConfig().weights.items() if w > 0}
    assert set(splits.train) == set(splits.eval) == expected
    for side, sets in (("train", splits.train), ("eval", splits.eval)):
        for name, ds in sets.items():
            assert 0 < len(ds) <= (3_000 if side == "train" else 1_000), name
            assert ds.unique("split") == [side] and ds.unique("source") == [name]
    assert len(splits.train["nsmc"]) == 3_000 and len(splits.eval["kote"]) == 1_000


def test_no_group_on_both_sides(splits):
    for name in splits.train:
        train_groups = set(splits.train[name]["group"])
        eval_groups = set(splits.eval[name]["group"])
        assert not train_groups & eval_groups, name
    nsmc_train = {g for g in splits.train["nsmc"]["group"]}
    assert all(g.startswith("nsmc:movie:") for g in nsmc_train)


def test_seeded_splits_are_reproducible(splits, data_dir, cache):
    names = ["kote", "ethics_commonsense", "kosbi", "nsmc", "timetravel"]
    again = build_splits(
        DataConfig.from_dict({**SMALL, "data_dir": str(data_dir), "seed": 42, "cache_dir": cache}), sets=names
    )
    other = build_splits(
        DataConfig.from_dict({**SMALL, "data_dir": str(data_dir), "seed": 43, "cache_dir": cache}), sets=names
    )
    for name in names:
        for side in ("train", "eval"):
            assert getattr(again, side)[name]["id"] == getattr(splits, side)[name]["id"], (name, side)
        assert set(other.eval[name]["id"]) != set(splits.eval[name]["id"]), name


def test_caps_do_not_move_rows_between_sides(data_dir, cache):
    full = build_set("kote", DataConfig(data_dir=str(data_dir), cache_dir=cache))
    capped = build_set(
        "kote", DataConfig.from_dict({"data_dir": str(data_dir), "max_eval_samples": {"kote": 100}})
    )
    assert len(full["train"]) == 4_000 and len(full["eval"]) == 1_000  # 80/20 of the 5,000 val rows
    assert len(capped["eval"]) == 100 and set(capped["eval"]["id"]) <= set(full["eval"]["id"])


def test_every_head_has_varying_targets(splits):
    out = check_heads(splits.train, heads=HEADS)
    assert set(out["acceptability"]["sets"]) == {
        "ethics_commonsense",
        "ethics_justice",
        "ethics_deontology",
        "ethics_virtue",
        "kosbi",
    }
    assert set(out["sentiment"]["sets"]) == {"goemotions_en", "goemotions_ko", "nsmc"}
    for side in ("train", "eval"):
        for name, tasks in SET_TASKS.items():
            if name not in splits.train:
                continue
            for task in tasks:
                check_target_variance(getattr(splits, side)[name], TASK_FIELDS[task], name=name, head=task)


def test_mixture_is_seeded_and_weighted(splits):
    weights = {"goemotions_en": 2.0, "kote": 1.0, "ethics_util": 1.0}
    sets = {k: splits.train[k] for k in weights}
    a = mix_datasets(sets, weights, seed=3, stopping_strategy="all_exhausted", num_samples=2_000)
    b = mix_datasets(sets, weights, seed=3, stopping_strategy="all_exhausted", num_samples=2_000)
    assert len(a) == 2_000 and a["id"] == b["id"] and a.features == splits.train["kote"].features
    comp = composition(a)
    assert set(comp) == set(weights)
    assert 0.42 < comp["goemotions_en"] / 2_000 < 0.58  # weight 2 of 4
    c = mix_datasets(sets, weights, seed=4, stopping_strategy="all_exhausted", num_samples=2_000)
    assert c["id"] != a["id"]
    whole = splits.mixture(split="eval", stopping_strategy="all_exhausted_without_replacement")
    assert len(whole) == sum(len(d) for d in splits.eval.values())


def test_report(splits):
    rep = splits.report()
    assert set(rep["splits"]) == {"train", "eval"}
    assert rep["splits"]["train"]["goemotions_en"]["tasks"]["emotion"]["labelled"] == 3_000
    assert rep["splits"]["train"]["timetravel"]["tasks"]["regret"]["alternatives_without_regret_label"] > 0
    assert rep["malformed_total"] == 0 and rep["issues"]
    acc = rep["splits"]["eval"]["ethics_virtue"]["tasks"]["acceptability"]["per_framework"]["virtue"]
    assert 0 < acc["acceptable_rate"] < 1
    text = format_report(rep)
    for name in splits.train:
        assert name in text


def test_catalog_is_the_one_set_table():
    """Every per-set default is read off one row of ``CATALOG``; its tasks and languages are known names."""
    from redheart.configuration_redheart.tasks import LANGUAGE_IDS
    from redheart.training.data import CATALOG, DEFAULT_WEIGHTS, SET_LANGUAGES, SETS

    assert SETS == tuple(CATALOG) == tuple(DEFAULT_WEIGHTS) == tuple(SET_TASKS) == tuple(SET_LANGUAGES)
    assert set(SET_LANGUAGES.values()) == set(LANGUAGE_IDS)
    for name, entry in CATALOG.items():
        assert set(entry.tasks) <= set(TASK_FIELDS), name
        assert DataConfig().weights[name] == entry.weight
        assert DataConfig().eval_fraction.get(name) == entry.eval_fraction


def test_report_runs_as_the_package_and_does_not_import_the_catalog():
    import subprocess
    import sys

    run = subprocess.run(
        [sys.executable, "-m", "redheart.training.data", "--help"], capture_output=True, text=True
    )
    assert run.returncode == 0 and "python -m redheart.training.data" in run.stdout
    code = "import sys, redheart.training.data.report; print('redheart.training.data.catalog' in sys.modules)"
    check = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert check.stdout.strip() == "False", check.stderr[-2000:]
