"""The set table (:data:`CATALOG`) and the named train/eval splits it makes from one :class:`DataConfig`.

===========================  =======  ====================================================================
set                          tasks    train / eval
===========================  =======  ====================================================================
``goemotions_en``            emotion, sentiment        official train / dev
``goemotions_ko``            emotion, sentiment        official train / dev (machine-translated EN rows)
``kote``                     kote                      seeded split of val (``eval_fraction``, by row)
``ethics_commonsense``       acceptability             seeded split of cm_test (no cm_train here; minimal
                                                       pairs kept together)
``ethics_justice``           acceptability             official train / test
``ethics_deontology``        acceptability             official train / test
``ethics_virtue``            acceptability             official train / test
``ethics_util``              utility (pairwise)        official train / test
``ethics_util_regret``       regret                    official train / test (two rows per util pair)
``kosbi`` (``kosbi_en``)     acceptability (ko / en)   seeded split of valid by context
``goemotions_ko_ethics``     acceptability (soft)      distilled train / dev: GoEmotions KO comments with a
                                                       teacher's judgement of the English originals (weight 0)
``square`` (``square_en``)   sensitive_question        seeded split of valid by question (weight 0)
``nsmc``                     sentiment                 seeded split by movie_id; sampled sizes
``timetravel``               (alternatives; regret     seeded split of dev by story
                             derived at training time)
===========================  =======  ====================================================================

Seeds: every seeded split uses ``stable_seed(config.seed, <set>)`` (so each set has its own stream and
adding a set does not move another set's split); row samples use ``stable_seed(seed, <set>, <side>)``.
Splits are made before sampling, so ``max_samples`` never moves a row from one side to the other.
"""

from __future__ import annotations

import dataclasses
import logging
import time
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any

from . import distilled_acceptability, ethics, goemotions, kosbi_square, kote, nsmc, timetravel
from .common import (
    DEFAULT_MAX_MALFORMED_FRACTION,
    IssueLog,
    Rows,
    finish_rows,
    resolve_source,
    split_rows,
    stable_seed,
)
from .loader import SetReader

logger = logging.getLogger(__name__)

#: ``(context, set name) -> {"train": Dataset, "eval": Dataset}``: how one set's sides are made.
Builder = Callable[["_Ctx", str], dict[str, Any]]


# --------------------------------------------------------------------------------------------- builders


def _read_sides(
    ctx: _Ctx,
    name: str,
    reader: SetReader,
    *,
    official: Mapping[str, str] | None = None,
    seeded_from: str | None = None,
    split_key: str | None = None,
) -> dict[str, Any]:
    """The sides of a set read by ``reader``: its ``official`` splits (side -> original split) when the source
    has them all (a Hub source, or a folder whose spec lists them), else a seeded group split of the original
    split ``seeded_from`` (``split_key`` names its seed stream; default: the set's name)."""
    res = resolve_source(reader.spec, **ctx.src(name))
    if official is not None and (res.kind == "hub" or set(official.values()) <= set(reader.spec.files)):
        return {
            side: ctx.finish(name, side, reader.read(original, res, ctx.issues))
            for side, original in official.items()
        }
    return ctx.seeded(name, reader.read(seeded_from, res, ctx.issues), split_key)


def _sides(reader: SetReader, **how: Any) -> Builder:
    """A builder of :func:`_read_sides` for a fixed ``reader``."""

    def build(ctx: _Ctx, name: str) -> dict[str, Any]:
        return _read_sides(ctx, name, reader, **how)

    return build


def _kosbi(language: str) -> Builder:
    """KoSBi's sides: one seeded split by context, the same for ko and en (``DataConfig.kosbi_include_context``)."""

    def build(ctx: _Ctx, name: str) -> dict[str, Any]:
        reader = kosbi_square.kosbi_reader(language, include_context=ctx.cfg.kosbi_include_context)
        return _read_sides(ctx, name, reader, seeded_from="valid", split_key="kosbi")

    return build


def _util(as_regret: bool) -> Builder:
    """ETHICS utilitarianism's official train/test as pairs, or as two regret rows per pair (``as_regret``)."""

    def build(ctx: _Ctx, name: str) -> dict[str, Any]:
        # util pairs and util regret rows share the parsed pairs (and the source of ethics_util, unless
        # ethics_util_regret has its own)
        src = ctx.src(name) if ctx.cfg.sources.get(name) else ctx.src("ethics_util")
        res = resolve_source(ethics.SPECS["utilitarianism"], **src)
        out = {}
        for side, orig in (("train", "train"), ("eval", "test")):
            key = ("util_pairs", str(res.path or res.hub_id), orig)
            if key not in ctx.memo:
                ctx.memo[key] = ethics.read_util_pairs(orig, res, ctx.issues)
            pairs = ctx.memo[key]
            rows = ethics.util_regret_rows(pairs, side) if as_regret else ethics.util_rows(pairs, side)
            out[side] = ctx.finish(name, side, rows)
        return out

    return build


def _nsmc(ctx: _Ctx, name: str) -> dict[str, Any]:
    """NSMC's sides: a seeded split by movie of its one file, sampled per side (see ``nsmc.py``)."""
    cfg = ctx.cfg
    return nsmc.load_nsmc_splits(
        eval_fraction=cfg.eval_fraction.get(name, 0.1),
        seed=stable_seed(cfg.seed, name),
        max_train=cfg.max_samples.get(name),
        max_eval=cfg.max_eval_samples.get(name),
        issues=ctx.issues,
        use_cache=cfg.use_cache,
        cache=cfg.cache_dir,
        **ctx.src(name),
    )


# --------------------------------------------------------------------------------------------- the set table


@dataclass(frozen=True)
class SetEntry:
    """One row of the set table: the tasks the set supervises (``schema.TASK_FIELDS`` keys), its default
    mixing weight, how its sides are built, the language of its texts, and its defaults for
    ``DataConfig``'s per-set dicts."""

    tasks: tuple[str, ...]
    weight: float
    build: Builder
    language: str = "en"
    eval_fraction: float | None = None
    max_samples: int | None = None
    max_eval_samples: int | None = None


_DEV = {"train": "train", "eval": "dev"}
_TEST = {"train": "train", "eval": "test"}
_VAL = {"train": "train", "eval": "val"}

#: Every data set. Default mixing weights (relative sampling probabilities; 0 = not built) are roughly
#: proportional to sqrt(rows) (temperature-2 sampling, so small sets are not drowned and not repeated tens of
#: times per pass); GoEmotions KO is halved (machine translation); ethics_util_regret is derived from the same
#: pairs as ethics_util. SQuARe/KoSBi-EN/SQuARe-EN: 0 (see kosbi_square.py). NSMC's 712k rows are sampled.
#: goemotions_ko_ethics: 0, a teacher's outputs rather than data (see distilled_acceptability.py).
CATALOG: dict[str, SetEntry] = {
    "goemotions_en": SetEntry(("emotion", "sentiment"), 1.0, _sides(goemotions.READERS["en"], official=_DEV)),
    "goemotions_ko": SetEntry(
        ("emotion", "sentiment"), 0.5, _sides(goemotions.READERS["ko"], official=_DEV), language="ko"
    ),
    "kote": SetEntry(
        ("kote",),
        0.3,
        _sides(kote.READER, official=_VAL, seeded_from="val"),
        language="ko",
        eval_fraction=0.2,
    ),
    "ethics_commonsense": SetEntry(
        ("acceptability",),
        0.3,
        _sides(ethics.READERS["commonsense"], official=_TEST, seeded_from="test"),
        eval_fraction=0.2,
    ),
    "ethics_justice": SetEntry(("acceptability",), 0.7, _sides(ethics.READERS["justice"], official=_TEST)),
    "ethics_deontology": SetEntry(
        ("acceptability",), 0.65, _sides(ethics.READERS["deontology"], official=_TEST)
    ),
    "ethics_virtue": SetEntry(("acceptability",), 0.8, _sides(ethics.READERS["virtue"], official=_TEST)),
    "ethics_util": SetEntry(("utility",), 0.55, _util(False)),
    "ethics_util_regret": SetEntry(("regret",), 0.55, _util(True)),
    "kosbi": SetEntry(("acceptability",), 0.35, _kosbi("ko"), language="ko", eval_fraction=0.2),
    "goemotions_ko_ethics": SetEntry(
        ("acceptability",),
        0.0,
        _sides(distilled_acceptability.READER, official=_DEV),
        language="ko",
    ),
    "kosbi_en": SetEntry(("acceptability",), 0.0, _kosbi("en"), eval_fraction=0.2),
    "square": SetEntry(
        ("sensitive_question",),
        0.0,
        _sides(kosbi_square.square_reader("ko"), seeded_from="valid", split_key="square"),
        language="ko",
        eval_fraction=0.2,
    ),
    "square_en": SetEntry(
        ("sensitive_question",),
        0.0,
        _sides(kosbi_square.square_reader("en"), seeded_from="valid", split_key="square"),
        eval_fraction=0.2,
    ),
    "nsmc": SetEntry(
        ("sentiment",),
        1.5,
        _nsmc,
        language="ko",
        eval_fraction=0.1,
        max_samples=100_000,
        max_eval_samples=10_000,
    ),
    "timetravel": SetEntry((), 0.2, _sides(timetravel.READER, seeded_from="dev"), eval_fraction=0.2),
}
SETS: tuple[str, ...] = tuple(CATALOG)
SET_TASKS: dict[str, tuple[str, ...]] = {name: entry.tasks for name, entry in CATALOG.items()}
SET_LANGUAGES: dict[str, str] = {name: entry.language for name, entry in CATALOG.items()}
DEFAULT_WEIGHTS: dict[str, float] = {name: entry.weight for name, entry in CATALOG.items()}
DEFAULT_EVAL_FRACTION: dict[str, float] = {
    name: entry.eval_fraction for name, entry in CATALOG.items() if entry.eval_fraction is not None
}
DEFAULT_MAX_SAMPLES: dict[str, int | None] = {
    name: entry.max_samples for name, entry in CATALOG.items() if entry.max_samples is not None
}
DEFAULT_MAX_EVAL_SAMPLES: dict[str, int | None] = {
    name: entry.max_eval_samples for name, entry in CATALOG.items() if entry.max_eval_samples is not None
}


@dataclass
class DataConfig:
    """Everything that decides which rows end up where. Plain values, so it maps 1:1 to a YAML section.

    ``sources`` overrides where a set comes from (a local folder, or a Hub id when online), see
    :func:`~.common.resolve_source`; ``data_dir`` (else ``$RH_DATA_DIR``) is the local data folder.
    ``sets`` = which sets to build (default: every set with a positive weight).
    """

    data_dir: str | None = None
    seed: int = 42
    sets: list[str] | None = None
    weights: dict[str, float] = field(default_factory=lambda: dict(DEFAULT_WEIGHTS))
    eval_fraction: dict[str, float] = field(default_factory=lambda: dict(DEFAULT_EVAL_FRACTION))
    max_samples: dict[str, int | None] = field(default_factory=lambda: dict(DEFAULT_MAX_SAMPLES))
    max_eval_samples: dict[str, int | None] = field(default_factory=lambda: dict(DEFAULT_MAX_EVAL_SAMPLES))
    sources: dict[str, str] = field(default_factory=dict)
    max_malformed_fraction: float = DEFAULT_MAX_MALFORMED_FRACTION
    kosbi_include_context: bool = True
    use_cache: bool = True
    cache_dir: str | None = None
    stopping_strategy: str = "all_exhausted"
    mixture_size: int | None = None

    @classmethod
    def from_dict(cls, d: Mapping[str, Any] | None) -> DataConfig:
        """Build from a mapping (e.g. the ``data:`` section of a training YAML); dict fields are merged
        into the defaults, unknown keys are an error."""
        d = dict(d or {})
        names = {f.name for f in dataclasses.fields(cls)}
        unknown = sorted(set(d) - names)
        if unknown:
            raise ValueError(f"unknown data config key(s) {unknown}; known: {sorted(names)}")
        cfg = cls()
        for k, v in d.items():
            cur = getattr(cfg, k)
            if isinstance(cur, dict) and isinstance(v, Mapping):
                merged = dict(cur)
                merged.update(v)
                setattr(cfg, k, merged)
            else:
                setattr(cfg, k, v)
        cfg.validate()
        return cfg

    def to_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)

    def selected_sets(self) -> list[str]:
        if self.sets is not None:
            return list(self.sets)
        return [s for s in SETS if self.weights.get(s, 0.0) > 0]

    def validate(self) -> None:
        for key in ("weights", "eval_fraction", "max_samples", "max_eval_samples", "sources"):
            bad = sorted(set(getattr(self, key)) - set(SETS))
            if bad:
                raise ValueError(f"data config {key}: unknown set(s) {bad}; known: {list(SETS)}")
        if self.sets is not None:
            bad = sorted(set(self.sets) - set(SETS))
            if bad:
                raise ValueError(f"data config sets: unknown set(s) {bad}; known: {list(SETS)}")
        for k, w in self.weights.items():
            if w is None or w < 0:
                raise ValueError(f"data config weights[{k!r}] must be >= 0, got {w}")
        for k, f in self.eval_fraction.items():
            if not 0 < f < 1:
                raise ValueError(f"data config eval_fraction[{k!r}] must be in (0, 1), got {f}")


@dataclass
class DataSplits:
    """The built named splits: ``train[set]`` and ``eval[set]`` are unified-schema Datasets."""

    train: dict[str, Any]
    eval: dict[str, Any]
    issues: IssueLog
    config: DataConfig
    timings: dict[str, float] = field(default_factory=dict)

    def mixture(self, *, split: str = "train", **kw):
        """The weighted, seeded interleave of one side (see :func:`~.mixture.mix_datasets`)."""
        from .mixture import mix_datasets

        sets = self.train if split == "train" else self.eval
        kw.setdefault("seed", self.config.seed)
        kw.setdefault("stopping_strategy", self.config.stopping_strategy)
        kw.setdefault("num_samples", self.config.mixture_size if split == "train" else None)
        return mix_datasets(sets, {k: self.config.weights.get(k, 0.0) for k in sets}, **kw)

    def report(self) -> dict[str, Any]:
        from .report import data_report

        return data_report(self)


# --------------------------------------------------------------------------------------------- building


class _Ctx:
    """What every builder of one ``build_splits`` call shares: the config, the issue log, parsed files."""

    def __init__(self, cfg: DataConfig, issues: IssueLog) -> None:
        self.cfg = cfg
        self.issues = issues
        self.memo: dict[Any, Any] = {}

    def src(self, name: str) -> dict[str, Any]:
        return {"data_dir": self.cfg.data_dir, "source": self.cfg.sources.get(name)}

    def finish(self, name: str, side: str, rows: Rows):
        limits = self.cfg.max_samples if side == "train" else self.cfg.max_eval_samples
        return finish_rows(
            rows,
            split_label=side,
            max_samples=limits.get(name),
            seed=stable_seed(self.cfg.seed, name, side),
            what=f"{name}/{side}",
        )

    def seeded(self, name: str, rows: Rows, split_key: str | None = None) -> dict[str, Any]:
        frac = self.cfg.eval_fraction.get(name, 0.2)
        train, ev = split_rows(rows, frac, stable_seed(self.cfg.seed, split_key or name))
        return {"train": self.finish(name, "train", train), "eval": self.finish(name, "eval", ev)}


def build_set(
    name: str, config: DataConfig | None = None, *, issues: IssueLog | None = None
) -> dict[str, Any]:
    """``{"train": Dataset, "eval": Dataset}`` of one named set."""
    if name not in CATALOG:
        raise KeyError(f"unknown data set {name!r}; known: {list(SETS)}")
    cfg = config or DataConfig()
    issues = issues if issues is not None else IssueLog(cfg.max_malformed_fraction)
    return CATALOG[name].build(_Ctx(cfg, issues), name)


def build_splits(
    config: DataConfig | Mapping[str, Any] | None = None, *, sets: Iterable[str] | None = None
) -> DataSplits:
    """Build the named train/eval splits of every selected set (``sets`` overrides ``config.sets``)."""
    cfg = config if isinstance(config, DataConfig) else DataConfig.from_dict(config)
    cfg.validate()
    names = list(sets) if sets is not None else cfg.selected_sets()
    if not names:
        raise ValueError("no data set selected (all weights are 0 and no sets= given)")
    issues = IssueLog(cfg.max_malformed_fraction)
    ctx = _Ctx(cfg, issues)
    train, ev, timings = {}, {}, {}
    t_all = time.perf_counter()
    for name in names:
        if name not in CATALOG:
            raise KeyError(f"unknown data set {name!r}; known: {list(SETS)}")
        t0 = time.perf_counter()
        out = CATALOG[name].build(ctx, name)
        train[name], ev[name] = out["train"], out["eval"]
        timings[name] = time.perf_counter() - t0
        logger.info(
            "data set %s: %d train / %d eval rows (%.2fs)",
            name,
            len(train[name]),
            len(ev[name]),
            timings[name],
        )
    timings["total"] = time.perf_counter() - t_all
    return DataSplits(train=train, eval=ev, issues=issues, config=cfg, timings=timings)
