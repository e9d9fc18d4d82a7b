"""NSMC raw (e9t/nsmc ``raw/``): 712,383 Naver movie reviews with their 1-10 star rating.

Local layout (``$RH_DATA_DIR/nsmc_raw_derived``): ``nsmc_raw_reviews.tsv.gz``, TSV with header
``review_id movie_id rating date review`` (no quoting; some reviews contain a bare ``\\r``, read as a space).

Target: ``sentiment`` = ``(rating - 5.5) / 4.5`` in [-1, 1]. Splits are by ``movie_id``, never by row:
the sorted distinct movie ids are permuted with ``numpy.random.default_rng(seed)`` and the first
``round(eval_fraction * n_movies)`` form the eval side, so no film is on both sides. Sample sizes per side
(``max_samples``) are seeded draws of rows from that side.

Reading: the file is parsed with pyarrow's C++ CSV reader (about a second); rows with the wrong column
count, a non-integer id, an unparseable or out-of-range rating or an empty review are counted per reason
with their line numbers, never turned into labels. The validated table is cached as Arrow IPC in
:func:`~.common.cache_dir` (``$RH_CACHE_DIR``; key = path, size, mtime and parser version), so later loads
take a fraction of a second.

Hub route: no default Hub id (the Hub's ``nsmc`` has binary labels and no ratings or movie ids);
``source=<Hub id>`` must have ``review_id``, ``movie_id``, ``rating`` and ``review`` columns.
"""

from __future__ import annotations

import gzip
import hashlib
import json
import logging
import os
from pathlib import Path

from .common import (
    FileIssues,
    IssueLog,
    SourceSpec,
    cache_dir,
    load_hub_split,
    require_columns,
    resolve_source,
    sample_indices,
    table_to_dataset,
)

logger = logging.getLogger(__name__)

SPEC = SourceSpec(
    name="nsmc",
    folder="nsmc_raw_derived",
    files={"all": "nsmc_raw_reviews.tsv.gz"},
    expected="NSMC raw: nsmc_raw_reviews.tsv.gz (TSV with header review_id, movie_id, rating, date, review)",
)
COLUMNS = ("review_id", "movie_id", "rating", "date", "review")
PARSER_VERSION = 1


def _validate(table, fi: FileIssues, bad_lines: list[int], header_lines: int):
    """Validate a string table; count bad rows in ``fi``; return the clean typed table."""
    import numpy as np
    import pyarrow as pa
    import pyarrow.compute as pc

    rid, mid, rat = table["review_id"], table["movie_id"], table["rating"]
    review = pc.utf8_trim_whitespace(pc.replace_substring(table["review"], "\r", " "))
    rid_ok = pc.utf8_is_digit(rid)
    mid_ok = pc.utf8_is_digit(mid)
    rat_digit = pc.utf8_is_digit(rat)
    rat_int = pc.cast(pc.if_else(rat_digit, rat, pa.scalar("0")), pa.int64())
    rat_range = pc.and_(pc.greater_equal(rat_int, 1), pc.less_equal(rat_int, 10))
    review_ok = pc.greater(pc.utf8_length(review), 0)
    blank = pc.and_(
        pc.equal(pc.utf8_length(rid), 0),
        pc.and_(pc.equal(pc.utf8_length(mid), 0), pc.equal(pc.utf8_length(rat), 0)),
    )
    ok = pc.and_(pc.and_(rid_ok, mid_ok), pc.and_(pc.and_(rat_digit, rat_range), review_ok))
    ok_np = ok.to_numpy(zero_copy_only=False) if hasattr(ok, "to_numpy") else np.asarray(ok)
    bad_idx = np.flatnonzero(~ok_np)
    if len(bad_idx):
        skipped = sorted(bad_lines)
        checks = [
            ("blank line", blank),
            ("review_id/movie_id is not an integer", pc.invert(pc.and_(rid_ok, mid_ok))),
            ("unparseable rating (not an integer)", pc.invert(rat_digit)),
            ("rating out of range 1..10", pc.invert(rat_range)),
            ("empty review", pc.invert(review_ok)),
        ]
        checks = [(r, c.to_numpy(zero_copy_only=False)) for r, c in checks]
        for k in bad_idx.tolist():
            line = k + 1 + header_lines
            for s in skipped:  # physical line: shift past rows the CSV reader already rejected
                if s <= line:
                    line += 1
                else:
                    break
            for reason, mask in checks:
                if mask[k]:
                    fi.bad(line, reason)
                    break
    keep = pa.array(ok_np)
    out = pa.table(
        {
            "review_id": pc.cast(pc.filter(rid, keep), pa.int64()),
            "movie_id": pc.cast(pc.filter(mid, keep), pa.int64()),
            "rating": pc.cast(pc.filter(rat_int, keep), pa.int8()),
            "review": pc.filter(review, keep),
        }
    )
    fi.kept = out.num_rows
    return out


def parse_nsmc_file(path: Path, fi: FileIssues):
    """Parse and validate the raw TSV(.gz); returns a table (review_id, movie_id, rating, review)."""
    import pyarrow as pa
    import pyarrow.csv as pcsv

    opener = gzip.open if path.suffix == ".gz" else open
    with opener(path, "rb") as fh:
        raw = fh.read()
    if raw.startswith(b"\xef\xbb\xbf"):
        raw = raw[3:]
    # A bare \r inside a review would end the row for the CSV reader; it is a line break in the text.
    raw = raw.replace(b"\r\n", b"\n").replace(b"\r", b" ")
    first = raw.split(b"\n", 1)[0].decode("utf-8", "replace").split("\t")
    if first != list(COLUMNS):
        raise ValueError(
            f"{path}: expected header {list(COLUMNS)}, got {first[:8]}; expected {SPEC.expected}"
        )
    bad_lines: list[int] = []

    def on_bad(row) -> str:
        line = row.number if row.number is not None else None
        fi.bad(line, f"expected {row.expected_columns} tab-separated columns, got {row.actual_columns}")
        if line is not None:
            bad_lines.append(line)
        return "skip"

    try:
        table = pcsv.read_csv(
            pa.BufferReader(raw),
            read_options=pcsv.ReadOptions(use_threads=False, block_size=16 << 20),
            parse_options=pcsv.ParseOptions(
                delimiter="\t",
                quote_char=False,
                escape_char=False,
                newlines_in_values=False,
                ignore_empty_lines=False,
                invalid_row_handler=on_bad,
            ),
            convert_options=pcsv.ConvertOptions(
                column_types={c: pa.string() for c in COLUMNS}, strings_can_be_null=False
            ),
        )
    except pa.ArrowInvalid as e:
        raise ValueError(f"{path}: cannot parse as {SPEC.expected}: {e}") from e
    fi.rows = table.num_rows + fi.n_malformed
    return _validate(table, fi, bad_lines, header_lines=1)


def _cache_paths(path: Path, cache: str | os.PathLike | None) -> tuple[Path, Path]:
    st = path.stat()
    key = f"{path.resolve()}|{st.st_size}|{st.st_mtime_ns}|v{PARSER_VERSION}"
    digest = hashlib.sha256(key.encode()).hexdigest()[:20]
    base = cache_dir(cache) / f"nsmc_{digest}"
    return base.with_suffix(".arrow"), base.with_suffix(".issues.json")


def read_nsmc_table(
    path: Path, issues: IssueLog, *, use_cache: bool = True, cache: str | os.PathLike | None = None
):
    """The validated NSMC table, from the Arrow cache when it is current, else parsed (and cached)."""
    import pyarrow as pa
    import pyarrow.feather as feather

    if use_cache:
        arrow_path, issues_path = _cache_paths(path, cache)
        if arrow_path.is_file() and issues_path.is_file():
            try:
                fi = FileIssues.from_dict(json.loads(issues_path.read_text(encoding="utf-8")))
                table = feather.read_table(arrow_path, memory_map=True)
                issues.add(fi)
                issues.close(fi, "nsmc")
                return table
            except (OSError, ValueError, KeyError, pa.ArrowException) as e:
                logger.warning("ignoring unreadable NSMC cache %s: %s", arrow_path, e)
    fi = issues.open(path)
    table = parse_nsmc_file(path, fi)
    issues.close(fi, "nsmc")
    if use_cache:
        try:
            arrow_path.parent.mkdir(parents=True, exist_ok=True)
            tmp = arrow_path.with_suffix(f".tmp{os.getpid()}")
            feather.write_feather(table, tmp, compression="uncompressed")
            os.replace(tmp, arrow_path)
            issues_path.write_text(json.dumps(fi.to_dict()), encoding="utf-8")
        except OSError as e:  # read-only home etc.: caching is an optimisation only
            logger.warning("could not write the NSMC cache in %s: %s", arrow_path.parent, e)
    return table


def _hub_table(res, split: str, issues: IssueLog):
    import pyarrow as pa

    ds = load_hub_split(res, split)
    require_columns(ds, ["review_id", "movie_id", "rating", "review"], res)
    t = ds.with_format("arrow")[:]
    fi = issues.open(f"hub:{res.hub_id}/{split}", unit="item")
    fi.rows = t.num_rows
    strings = pa.table({c: t[c].cast(pa.string()) for c in ("review_id", "movie_id", "rating", "review")})
    out = _validate(strings, fi, [], header_lines=0)
    issues.close(fi, "nsmc")
    return out


def movie_split(movie_ids, eval_fraction: float, seed: int):
    """Boolean ``is_eval`` per row from a seeded split of the distinct movie ids (a movie is on one side)."""
    import numpy as np

    if not 0.0 < eval_fraction < 1.0:
        raise ValueError(f"eval_fraction must be in (0, 1), got {eval_fraction}")
    ids = np.asarray(movie_ids)
    uniq = np.unique(ids)
    if len(uniq) < 2:
        raise ValueError(f"cannot split {len(uniq)} movie(s) into train and eval")
    n_eval = min(max(1, round(eval_fraction * len(uniq))), len(uniq) - 1)
    eval_movies = uniq[np.random.default_rng(seed).permutation(len(uniq))[:n_eval]]
    return np.isin(ids, eval_movies)


def _to_dataset(table, split_label: str):
    import pyarrow as pa
    import pyarrow.compute as pc

    n = table.num_rows
    sentiment = pc.divide(pc.subtract(pc.cast(table["rating"], pa.float64()), 5.5), 4.5)
    return table_to_dataset(
        {
            "id": pc.cast(table["review_id"], pa.string()),
            "group": pc.binary_join_element_wise("nsmc:movie:", pc.cast(table["movie_id"], pa.string()), ""),
            "text": table["review"],
            "language": pa.array(["ko"] * n, pa.string()),
            "source": pa.array(["nsmc"] * n, pa.string()),
            "split": pa.array([split_label] * n, pa.string()),
            "sentiment": pc.cast(sentiment, pa.float32()),
        },
        n,
    )


def load_nsmc_splits(
    *,
    eval_fraction: float = 0.1,
    seed: int = 0,
    max_train: int | None = None,
    max_eval: int | None = None,
    data_dir: str | os.PathLike | None = None,
    source: str | os.PathLike | None = None,
    issues: IssueLog | None = None,
    use_cache: bool = True,
    cache: str | os.PathLike | None = None,
    sides: tuple[str, ...] = ("train", "eval"),
) -> dict:
    """``{"train": Dataset, "eval": Dataset}`` split by movie; ``max_*`` draw seeded row samples per side."""
    import numpy as np

    from .common import EmptySplitError

    issues = issues if issues is not None else IssueLog()
    res = resolve_source(SPEC, data_dir=data_dir, source=source)
    if res.kind == "hub":
        table = _hub_table(res, "train", issues)
    else:
        table = read_nsmc_table(res.file("all"), issues, use_cache=use_cache, cache=cache)
    is_eval = movie_split(table["movie_id"].to_numpy(), eval_fraction, seed)
    out = {}
    for name, mask, k, sub in (("train", ~is_eval, max_train, 1), ("eval", is_eval, max_eval, 2)):
        if name not in sides:
            continue
        idx = np.flatnonzero(mask)
        pick = sample_indices(len(idx), k, seed + sub)
        if pick is not None:
            idx = idx[np.asarray(pick, dtype=np.int64)]
        if len(idx) == 0:
            raise EmptySplitError(
                f"nsmc/{name}: the split is empty (max_samples={k}, eval_fraction={eval_fraction})"
            )
        out[name] = _to_dataset(table.take(idx), name)
    return out


def load_nsmc(
    split: str = "train",
    *,
    eval_fraction: float = 0.1,
    seed: int = 0,
    max_samples: int | None = None,
    data_dir: str | os.PathLike | None = None,
    source: str | os.PathLike | None = None,
    issues: IssueLog | None = None,
    use_cache: bool = True,
    cache: str | os.PathLike | None = None,
):
    """One side (``"train"``/``"eval"``) of the seeded movie split, ``max_samples`` rows at most."""
    if split not in ("train", "eval"):
        raise ValueError(f"NSMC split must be 'train' or 'eval' (a seeded movie split), got {split!r}")
    kw = {"max_train": max_samples} if split == "train" else {"max_eval": max_samples}
    return load_nsmc_splits(
        eval_fraction=eval_fraction,
        seed=seed,
        data_dir=data_dir,
        source=source,
        issues=issues,
        use_cache=use_cache,
        cache=cache,
        sides=(split,),
        **kw,
    )[split]
