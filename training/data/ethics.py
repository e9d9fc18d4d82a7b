"""ETHICS (Hendrycks et al. 2021): commonsense, justice, deontology, virtue, utilitarianism.

Local layout (``$RH_DATA_DIR/ethics``): ``commonsense/cm_test.csv`` (+ unlabelled ``cm_ambig.csv``; there is
no ``cm_train`` here), ``{justice,deontology,virtue}/<name>_{train,test}.csv``, and
``utilitarianism/util_{train,test}.csv`` (no header; column 0 is the MORE pleasant scenario).

Mapping onto the unified schema:

* commonsense: ``text`` = ``input``; label 1 = wrong -> ``acceptable`` 0.0, label 0 -> 1.0.
  ``cm_ambig.csv`` has no labels and is not used. Short examples come as consecutive minimal pairs
  ("I told my baby I loved/hated her ..."); consecutive short rows share a ``group`` so a seeded split never
  puts the two halves of a pair on different sides (heuristic: pairs are in file order, as in ETHICS).
* justice: ``text`` = ``scenario``; label 1 = reasonable -> ``acceptable`` 1.0.
* deontology: ``text`` = ``scenario + " " + excuse`` (a request/role followed by the response, e.g.
  "Aren't you supposed to be painting the house? No because the paint already peeled off."); label 1 =
  the excuse is reasonable -> 1.0. Rows of one scenario share a group.
* virtue: ``"scenario [SEP] trait"`` -> ``"scenario This shows the trait: trait."``; label 1 = the trait
  fits the behaviour -> 1.0. NB: this is "is the character attribution apt", not "is the act acceptable".
* utilitarianism (``ethics_util``): ``text`` = the more pleasant scenario, ``utility_worse`` = the less
  pleasant one (pairwise ranking target for ``bentham.utility``).
* utilitarianism as regret (``ethics_util_regret``): each pair gives two rows with rank utilities
  u(better) = 1, u(worse) = 0 and regret = max(0, u(best alternative) - u(chosen)): choosing the worse
  scenario (``text`` = worse, ``alternatives`` = [better]) -> regret 1.0; choosing the better one -> 0.0.

Hub route (online): ``hendrycks/ethics`` with config = framework (``utilitarianism`` for util; columns
``baseline``/``less_pleasant``); our ``test`` = its ``validation`` split (its ``test`` is the hard test set).
Untested offline; column names are checked.
"""

from __future__ import annotations

import os

from .common import (
    IssueLog,
    ResolvedSource,
    Rows,
    SourceSpec,
    clean_text,
    iter_csv,
    load_hub_split,
    load_unified,
    parse_binary,
    require_columns,
)
from .schema import FRAMEWORKS, acceptable_from_ethics, pair_regret

HUB_ID = "hendrycks/ethics"
_HUB_SPLITS = {"test": "validation"}

SPECS: dict[str, SourceSpec] = {
    "commonsense": SourceSpec(
        name="ethics_commonsense",
        folder="ethics/commonsense",
        files={"test": "cm_test.csv"},
        expected="ETHICS commonsense: cm_test.csv (CSV header label,input,is_short,edited; label 1 = wrong)",
        hub_id=HUB_ID,
        hub_config="commonsense",
        hub_splits=_HUB_SPLITS,
    ),
    "justice": SourceSpec(
        name="ethics_justice",
        folder="ethics/justice",
        files={"train": "justice_train.csv", "test": "justice_test.csv"},
        expected="ETHICS justice: justice_{train,test}.csv (CSV header label,scenario)",
        hub_id=HUB_ID,
        hub_config="justice",
        hub_splits=_HUB_SPLITS,
    ),
    "deontology": SourceSpec(
        name="ethics_deontology",
        folder="ethics/deontology",
        files={"train": "deontology_train.csv", "test": "deontology_test.csv"},
        expected="ETHICS deontology: deontology_{train,test}.csv (CSV header label,scenario,excuse)",
        hub_id=HUB_ID,
        hub_config="deontology",
        hub_splits=_HUB_SPLITS,
    ),
    "virtue": SourceSpec(
        name="ethics_virtue",
        folder="ethics/virtue",
        files={"train": "virtue_train.csv", "test": "virtue_test.csv"},
        expected="ETHICS virtue: virtue_{train,test}.csv (CSV header label,scenario; scenario = 'text [SEP] trait')",
        hub_id=HUB_ID,
        hub_config="virtue",
        hub_splits=_HUB_SPLITS,
    ),
    "utilitarianism": SourceSpec(
        name="ethics_util",
        folder="ethics/utilitarianism",
        files={"train": "util_train.csv", "test": "util_test.csv"},
        expected="ETHICS utilitarianism: util_{train,test}.csv (CSV, no header: more pleasant, less pleasant)",
        hub_id=HUB_ID,
        hub_config="utilitarianism",
        hub_splits=_HUB_SPLITS,
    ),
}

_HEADERS = {
    "commonsense": ["label", "input", "is_short", "edited"],
    "justice": ["label", "scenario"],
    "deontology": ["label", "scenario", "excuse"],
    "virtue": ["label", "scenario"],
}
_VIRTUE_SEP = " [SEP] "


def virtue_text(scenario: str) -> str:
    """``"scenario [SEP] trait"`` -> ``"scenario This shows the trait: trait."`` (ValueError without [SEP])."""
    if "[SEP]" not in scenario:
        raise ValueError("virtue scenario has no '[SEP] trait' part")
    text, _, trait = scenario.rpartition("[SEP]")
    text, trait = clean_text(text), clean_text(trait)
    if not text or not trait:
        raise ValueError("virtue scenario or trait is empty")
    return f"{text} This shows the trait: {trait}."


# --------------------------------------------------------------------------------------------- frameworks


def read_ethics(framework: str, split: str, res: ResolvedSource, issues: IssueLog) -> Rows:
    """One framework's original split (``train``/``test``) as unified rows with ``acceptable`` targets."""
    if framework not in FRAMEWORKS:
        raise ValueError(f"framework must be one of {FRAMEWORKS}, got {framework!r}")
    name = SPECS[framework].name
    cols = _HEADERS[framework]
    rows = Rows()
    if res.kind == "hub":
        ds = load_hub_split(res, split)
        require_columns(ds, cols[:2] if framework != "deontology" else cols, res)
        fi = issues.open(f"hub:{res.hub_id}/{framework}/{split}", unit="item")
        values = [list(ds[c]) for c in cols if c in ds.column_names]
        fi.rows = len(ds)
        records = ((i + 1, [v[i] for v in values]) for i in range(len(ds)))
    else:
        path = res.file(split)
        fi = issues.open(path)
        records = iter_csv(path, len(cols), fi, header=cols)
    short_seen = 0
    for line, rec in records:
        try:
            label = parse_binary(rec[0])
        except ValueError as e:
            fi.bad(line, str(e))
            continue
        group = f"{name}:{split}:{line}"
        try:
            if framework == "commonsense":
                text = clean_text(rec[1])
                if len(rec) > 2 and str(rec[2]).strip() in ("True", "true", "1"):
                    group = f"{name}:{split}:short_pair:{short_seen // 2}"
                    short_seen += 1
            elif framework == "justice":
                text = clean_text(rec[1])
            elif framework == "deontology":
                scenario, excuse = clean_text(rec[1]), clean_text(rec[2])
                if not scenario or not excuse:
                    raise ValueError("empty scenario or excuse")
                text = f"{scenario} {excuse}"
                group = f"{name}:{split}:scenario:{scenario}"
            else:  # virtue
                text = virtue_text(str(rec[1]))
                group = f"{name}:{split}:scenario:{clean_text(str(rec[1]).rpartition('[SEP]')[0])}"
        except ValueError as e:
            fi.bad(line, str(e))
            continue
        if not text:
            fi.bad(line, "empty text")
            continue
        rows.add(
            id=f"{split}:{line}",
            group=group,
            text=text,
            language="en",
            source=name,
            split=split,
            acceptability_framework=framework,
            acceptable=acceptable_from_ethics(framework, label),
        )
        fi.kept += 1
    issues.close(fi, f"{name}/{split}")
    return rows


def load_ethics(
    framework: str,
    split: str = "train",
    *,
    data_dir: str | os.PathLike | None = None,
    source: str | os.PathLike | None = None,
    issues: IssueLog | None = None,
    max_samples: int | None = None,
    seed: int = 0,
    split_label: str | None = None,
):
    """ETHICS ``framework`` (commonsense/justice/deontology/virtue), original ``split`` (train/test)."""
    if framework not in FRAMEWORKS:
        raise ValueError(f"framework must be one of {FRAMEWORKS}, got {framework!r}")
    return load_unified(
        SPECS[framework], lambda res, log: read_ethics(framework, split, res, log),
        split=split, data_dir=data_dir, source=source, issues=issues, max_samples=max_samples, seed=seed,
        split_label=split_label, what=f"{SPECS[framework].name}/{split}",
    )  # fmt: skip


# --------------------------------------------------------------------------------------------- utilitarianism


def read_util_pairs(split: str, res: ResolvedSource, issues: IssueLog) -> list[tuple[int, str, str]]:
    """``[(line, better, worse), ...]``: valid pairs (both non-empty and different)."""
    if res.kind == "hub":
        ds = load_hub_split(res, split)
        require_columns(ds, ["baseline", "less_pleasant"], res)
        fi = issues.open(f"hub:{res.hub_id}/utilitarianism/{split}", unit="item")
        fi.rows = len(ds)
        records = (
            (i + 1, [b, w]) for i, (b, w) in enumerate(zip(ds["baseline"], ds["less_pleasant"], strict=True))
        )
    else:
        path = res.file(split)
        fi = issues.open(path)
        records = iter_csv(path, 2, fi)
    out = []
    for line, (better, worse) in records:
        better, worse = clean_text(better), clean_text(worse)
        if not better or not worse:
            fi.bad(line, "empty scenario")
            continue
        if better == worse:
            fi.bad(line, "both scenarios identical (no preference)")
            continue
        out.append((line, better, worse))
        fi.kept += 1
    issues.close(fi, f"ethics_util/{split}")
    return out


def util_rows(pairs: list[tuple[int, str, str]], split: str) -> Rows:
    """Pairwise utility rows: ``text`` = more pleasant, ``utility_worse`` = less pleasant."""
    rows = Rows()
    for line, better, worse in pairs:
        rows.add(
            id=f"{split}:{line}",
            group=f"ethics_util:{split}:{line}",
            text=better,
            language="en",
            source="ethics_util",
            split=split,
            utility_worse=worse,
        )
    return rows


def util_regret_rows(pairs: list[tuple[int, str, str]], split: str) -> Rows:
    """Two regret rows per pair (rank utilities 1/0): chose worse -> regret 1.0, chose better -> 0.0."""
    rows = Rows()
    for line, better, worse in pairs:
        group = f"ethics_util:{split}:{line}"
        for chosen, alt, tag, u_chosen, u_alt in (
            (worse, better, "worse", 0, 1),
            (better, worse, "better", 1, 0),
        ):
            rows.add(
                id=f"{split}:{line}:chose_{tag}",
                group=group,
                text=chosen,
                language="en",
                source="ethics_util_regret",
                split=split,
                alternatives=[alt],
                regret=pair_regret(u_chosen, u_alt),
            )
    return rows


def load_ethics_util(
    split: str = "train",
    *,
    data_dir: str | os.PathLike | None = None,
    source: str | os.PathLike | None = None,
    issues: IssueLog | None = None,
    max_samples: int | None = None,
    seed: int = 0,
    split_label: str | None = None,
    as_regret: bool = False,
):
    """ETHICS utilitarianism pairs (``as_regret=False``) or their two regret rows per pair (``True``)."""
    to_rows = util_regret_rows if as_regret else util_rows
    name = "ethics_util_regret" if as_regret else "ethics_util"
    return load_unified(
        SPECS["utilitarianism"], lambda res, log: to_rows(read_util_pairs(split, res, log), split),
        split=split, data_dir=data_dir, source=source, issues=issues, max_samples=max_samples, seed=seed,
        split_label=split_label, what=f"{name}/{split}",
    )  # fmt: skip
