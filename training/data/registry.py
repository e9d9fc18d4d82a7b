"""Named train/eval splits of every data set, from one :class:`DataConfig`.

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
import os
import time
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any

from . import ethics, goemotions, kosbi_square, kote, nsmc, timetravel
from .common import (
    DEFAULT_MAX_MALFORMED_FRACTION,
    IssueLog,
    Rows,
    finish_rows,
    resolve_source,
    split_rows,
    stable_seed,
)

logger = logging.getLogger(__name__)

#: Mixing weights (relative sampling probabilities) of the default training mixture; 0 = not built.
#: Roughly proportional to sqrt(rows) (temperature-2 sampling, so small sets are not drowned and not
#: repeated tens of times per pass); GoEmotions KO is halved (machine translation); ethics_util_regret is
#: derived from the same pairs as ethics_util. SQuARe/KoSBi-EN/SQuARe-EN: 0 (see kosbi_square.py).
DEFAULT_WEIGHTS: dict[str, float] = {
    "goemotions_en": 1.0,
    "goemotions_ko": 0.5,
    "kote": 0.3,
    "ethics_commonsense": 0.3,
    "ethics_justice": 0.7,
    "ethics_deontology": 0.65,
    "ethics_virtue": 0.8,
    "ethics_util": 0.55,
    "ethics_util_regret": 0.55,
    "kosbi": 0.35,
    "kosbi_en": 0.0,
    "square": 0.0,
    "square_en": 0.0,
    "nsmc": 1.5,
    "timetravel": 0.2,
}
DEFAULT_EVAL_FRACTION: dict[str, float] = {
    "kote": 0.2,
    "ethics_commonsense": 0.2,
    "kosbi": 0.2,
    "kosbi_en": 0.2,
    "square": 0.2,
    "square_en": 0.2,
    "nsmc": 0.1,
    "timetravel": 0.2,
}
#: Per-set row caps of the train side (None = all). NSMC's 712k rows are sampled by default.
DEFAULT_MAX_SAMPLES: dict[str, int | None] = {"nsmc": 100_000}
DEFAULT_MAX_EVAL_SAMPLES: dict[str, int | None] = {"nsmc": 10_000}

#: Set -> the tasks whose targets it supplies (schema.TASK_FIELDS keys).
SET_TASKS: dict[str, tuple[str, ...]] = {
    "goemotions_en": ("emotion", "sentiment"),
    "goemotions_ko": ("emotion", "sentiment"),
    "kote": ("kote",),
    "ethics_commonsense": ("acceptability",),
    "ethics_justice": ("acceptability",),
    "ethics_deontology": ("acceptability",),
    "ethics_virtue": ("acceptability",),
    "ethics_util": ("utility",),
    "ethics_util_regret": ("regret",),
    "kosbi": ("acceptability",),
    "kosbi_en": ("acceptability",),
    "square": ("sensitive_question",),
    "square_en": ("sensitive_question",),
    "nsmc": ("sentiment",),
    "timetravel": (),
}
SETS: tuple[str, ...] = tuple(DEFAULT_WEIGHTS)


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


# --------------------------------------------------------------------------------------------- builders


class _Ctx:
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


def _goemotions(language: str):
    def build(ctx: _Ctx, name: str) -> dict[str, Any]:
        res = resolve_source(goemotions.SPECS[language], **ctx.src(name))
        return {
            side: ctx.finish(name, side, goemotions.read_goemotions(language, orig, res, ctx.issues))
            for side, orig in (("train", "train"), ("eval", "dev"))
        }

    return build


def _kote(ctx: _Ctx, name: str) -> dict[str, Any]:
    res = resolve_source(kote.SPEC, **ctx.src(name))
    if res.kind == "hub":  # the Hub has official splits
        return {
            side: ctx.finish(name, side, kote.read_kote(orig, res, ctx.issues))
            for side, orig in (("train", "train"), ("eval", "val"))
        }
    return ctx.seeded(name, kote.read_kote("val", res, ctx.issues))


def _ethics(framework: str):
    def build(ctx: _Ctx, name: str) -> dict[str, Any]:
        res = resolve_source(ethics.SPECS[framework], **ctx.src(name))
        if framework == "commonsense" and res.kind == "local":  # no cm_train locally
            return ctx.seeded(name, ethics.read_ethics(framework, "test", res, ctx.issues))
        return {
            side: ctx.finish(name, side, ethics.read_ethics(framework, orig, res, ctx.issues))
            for side, orig in (("train", "train"), ("eval", "test"))
        }

    return build


def _util(as_regret: bool):
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


def _kosbi(language: str):
    def build(ctx: _Ctx, name: str) -> dict[str, Any]:
        res = resolve_source(kosbi_square.KOSBI_SPEC, **ctx.src(name))
        rows = kosbi_square.read_kosbi(
            "valid", res, ctx.issues, language=language, include_context=ctx.cfg.kosbi_include_context
        )
        return ctx.seeded(name, rows, split_key="kosbi")  # same split for ko and en

    return build


def _square(language: str):
    def build(ctx: _Ctx, name: str) -> dict[str, Any]:
        res = resolve_source(kosbi_square.SQUARE_SPEC, **ctx.src(name))
        return ctx.seeded(
            name, kosbi_square.read_square("valid", res, ctx.issues, language=language), "square"
        )

    return build


def _nsmc(ctx: _Ctx, name: str) -> dict[str, Any]:
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


def _timetravel(ctx: _Ctx, name: str) -> dict[str, Any]:
    res = resolve_source(timetravel.SPEC, **ctx.src(name))
    return ctx.seeded(name, timetravel.read_timetravel("dev", res, ctx.issues))


BUILDERS: dict[str, Callable[[_Ctx, str], dict[str, Any]]] = {
    "goemotions_en": _goemotions("en"),
    "goemotions_ko": _goemotions("ko"),
    "kote": _kote,
    "ethics_commonsense": _ethics("commonsense"),
    "ethics_justice": _ethics("justice"),
    "ethics_deontology": _ethics("deontology"),
    "ethics_virtue": _ethics("virtue"),
    "ethics_util": _util(False),
    "ethics_util_regret": _util(True),
    "kosbi": _kosbi("ko"),
    "kosbi_en": _kosbi("en"),
    "square": _square("ko"),
    "square_en": _square("en"),
    "nsmc": _nsmc,
    "timetravel": _timetravel,
}
assert set(BUILDERS) == set(SETS) == set(SET_TASKS)


def build_set(
    name: str, config: DataConfig | None = None, *, issues: IssueLog | None = None
) -> dict[str, Any]:
    """``{"train": Dataset, "eval": Dataset}`` of one named set."""
    if name not in BUILDERS:
        raise KeyError(f"unknown data set {name!r}; known: {list(SETS)}")
    cfg = config or DataConfig()
    issues = issues if issues is not None else IssueLog(cfg.max_malformed_fraction)
    return BUILDERS[name](_Ctx(cfg, issues), name)


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
        if name not in BUILDERS:
            raise KeyError(f"unknown data set {name!r}; known: {list(SETS)}")
        t0 = time.perf_counter()
        out = BUILDERS[name](ctx, name)
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


def data_dir_from_env() -> str | None:
    """``$RH_DATA_DIR`` or None (helper for scripts and tests)."""
    return os.environ.get("RH_DATA_DIR") or None
