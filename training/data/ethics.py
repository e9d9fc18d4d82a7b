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

from functools import partial
from typing import Any

from .common import (
    IssueLog,
    ResolvedSource,
    Rows,
    SourceSpec,
    clean_text,
    iter_csv,
    load_hub_split,
    parse_binary,
    require_columns,
)
from .loader import LoadOptions, SetReader, load
from .schema import FRAMEWORKS, acceptable_from_ethics, pair_regret

HUB_ID = "hendrycks/ethics"
_HUB_SPLITS = {"test": "validation"}


def _ethics_spec(framework: str, name: str, expected: str, files: dict[str, str] | None = None) -> SourceSpec:
    """ETHICS ``framework``'s folder and Hub config; ``files`` default to ``<framework>_{train,test}.csv``."""
    return SourceSpec(
        name=name,
        folder=f"ethics/{framework}",
        files=files or {split: f"{framework}_{split}.csv" for split in ("train", "test")},
        expected=expected,
        hub_id=HUB_ID,
        hub_config=framework,
        hub_splits=_HUB_SPLITS,
    )


SPECS: dict[str, SourceSpec] = {
    "commonsense": _ethics_spec(
        "commonsense",
        "ethics_commonsense",
        "ETHICS commonsense: cm_test.csv (CSV header label,input,is_short,edited; label 1 = wrong)",
        files={"test": "cm_test.csv"},
    ),
    "justice": _ethics_spec(
        "justice", "ethics_justice", "ETHICS justice: justice_{train,test}.csv (CSV header label,scenario)"
    ),
    "deontology": _ethics_spec(
        "deontology",
        "ethics_deontology",
        "ETHICS deontology: deontology_{train,test}.csv (CSV header label,scenario,excuse)",
    ),
    "virtue": _ethics_spec(
        "virtue",
        "ethics_virtue",
        "ETHICS virtue: virtue_{train,test}.csv (CSV header label,scenario; scenario = 'text [SEP] trait')",
    ),
    "utilitarianism": _ethics_spec(
        "utilitarianism",
        "ethics_util",
        "ETHICS utilitarianism: util_{train,test}.csv (CSV, no header: more pleasant, less pleasant)",
        files={"train": "util_train.csv", "test": "util_test.csv"},
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


#: One reader per acceptability framework.
READERS: dict[str, SetReader] = {
    framework: SetReader(SPECS[framework].name, SPECS[framework], partial(read_ethics, framework))
    for framework in FRAMEWORKS
}


def load_ethics(framework: str, split: str = "train", **options: Any):
    """ETHICS ``framework`` (commonsense/justice/deontology/virtue), original ``split`` (train/test).

    ``options``: the fields of :class:`~.loader.LoadOptions` (``data_dir``, ``max_samples``, ...).
    """
    if framework not in READERS:
        raise ValueError(f"framework must be one of {FRAMEWORKS}, got {framework!r}")
    return load(READERS[framework], split, LoadOptions(**options))


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


def read_util(split: str, res: ResolvedSource, issues: IssueLog) -> Rows:
    """Pairwise utility rows of one original split (see :func:`util_rows`)."""
    return util_rows(read_util_pairs(split, res, issues), split)


def read_util_regret(split: str, res: ResolvedSource, issues: IssueLog) -> Rows:
    """Regret rows of one original split (see :func:`util_regret_rows`)."""
    return util_regret_rows(read_util_pairs(split, res, issues), split)


UTIL_READER = SetReader("ethics_util", SPECS["utilitarianism"], read_util)
UTIL_REGRET_READER = SetReader("ethics_util_regret", SPECS["utilitarianism"], read_util_regret)


def load_ethics_util(split: str = "train", *, as_regret: bool = False, **options: Any):
    """ETHICS utilitarianism pairs (``as_regret=False``) or their two regret rows per pair (``True``).

    ``options``: the fields of :class:`~.loader.LoadOptions` (``data_dir``, ``max_samples``, ...).
    """
    return load(UTIL_REGRET_READER if as_regret else UTIL_READER, split, LoadOptions(**options))
