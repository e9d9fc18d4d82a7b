"""Target checks and the data report.

* :func:`check_target_variance` refuses (raises :class:`TargetVarianceError`) a field whose labelled targets
  in a data set do not vary; :func:`check_heads` does it per training head over all sets that supply it
  (acceptability per framework). training (``prepare.py``) calls it before building the heads.
* :func:`data_report` gives counts and label balance per split, set and task, plus the malformed/skipped
  rows per file; :func:`format_report` prints it as tables.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Any

from ...configuration_redheart.tasks import MULTILABEL_TASKS, TASK_LABELS
from .schema import FRAMEWORKS, GOEMOTIONS_LABELS, KOTE_LABELS, TASK_FIELDS

#: Heads that training may build (the labelled tasks of the model), and the schema field holding their targets.
HEAD_FIELDS: dict[str, str] = {task: TASK_FIELDS[task] for task in TASK_LABELS}
_MULTI_HOT = {"emotion": GOEMOTIONS_LABELS, "kote": KOTE_LABELS}
_BINARY = {"acceptable", "sensitive_question"}


class TargetVarianceError(ValueError):
    """A head's targets are missing or constant: training it would fit a constant."""


def _columns(dataset, fields: Iterable[str]):
    """A pyarrow Table with ``fields`` of ``dataset`` (indices mappings applied)."""
    return dataset.select_columns(list(fields)).with_format("arrow")[:]


def target_stats(dataset, field: str) -> dict[str, Any]:
    """Counts and balance of one target field (null = not labelled)."""
    import numpy as np
    import pyarrow.compute as pc

    if field not in TASK_FIELDS.values():
        raise KeyError(f"{field!r} is not a target field; known: {sorted(set(TASK_FIELDS.values()))}")
    cols = [field] + (["text"] if field == "utility_worse" else [])
    if field == "acceptable":
        cols.append("acceptability_framework")
    if field == "regret":
        cols.append("alternatives")
    t = _columns(dataset, cols)
    col = t[field]
    n = t.num_rows
    valid = pc.is_valid(col)
    n_lab = int(pc.sum(valid).as_py() or 0)
    out: dict[str, Any] = {"rows": n, "labelled": n_lab}
    if field in _MULTI_HOT:
        names = _MULTI_HOT[field]
        if n_lab:
            arr = pc.filter(col, valid).combine_chunks().flatten().to_numpy(zero_copy_only=False)
            m = arr.reshape(n_lab, len(names)).astype(np.int64)
            pos = m.sum(axis=0)
            out["positives"] = dict(zip(names, pos.tolist(), strict=True))
            out["labels_per_row"] = float(m.sum(axis=1).mean())
            out["never_positive"] = [names[i] for i in np.flatnonzero(pos == 0)]
            out["always_positive"] = [names[i] for i in np.flatnonzero(pos == n_lab)]
            out["varying_labels"] = int(((pos > 0) & (pos < n_lab)).sum())
            order = np.argsort(pos)
            out["rarest"] = [(names[i], int(pos[i])) for i in order[:3]]
            out["most_common"] = [(names[i], int(pos[i])) for i in order[::-1][:3]]
        return out
    if field == "utility_worse":
        if n_lab:
            sub = t.filter(valid)
            same = int(pc.sum(pc.equal(sub["text"], sub[field])).as_py() or 0)
            out["pairs"] = n_lab
            out["degenerate_pairs"] = same
        return out
    if field == "surd":
        if n_lab:
            arr = pc.filter(col, valid).combine_chunks().flatten().to_numpy(zero_copy_only=False)
            m = arr.reshape(n_lab, -1).astype(np.float64)
            out["std"] = m.std(axis=0).tolist()
        return out
    if n_lab:
        v = pc.filter(col, valid).to_numpy(zero_copy_only=False).astype(np.float64)
        out.update(mean=float(v.mean()), std=float(v.std()), min=float(v.min()), max=float(v.max()))
        if field in _BINARY or field == "regret":
            out["positive_rate"] = float((v > 0.5).mean())
        if field == "sentiment":
            out["share_pos"] = float((v > 0).mean())
            out["share_neg"] = float((v < 0).mean())
            out["share_zero"] = float((v == 0).mean())
        if field == "acceptable":
            fw = pc.filter(t["acceptability_framework"], valid).to_pylist()
            per = {}
            for f in sorted(set(fw), key=lambda x: (FRAMEWORKS.index(x) if x in FRAMEWORKS else 99, str(x))):
                sel = np.array([x == f for x in fw])
                per[f] = {"labelled": int(sel.sum()), "acceptable_rate": float(v[sel].mean())}
            out["per_framework"] = per
    if field == "regret":
        alt_only = pc.and_(pc.invert(valid), pc.is_valid(t["alternatives"]))
        out["alternatives_without_regret_label"] = int(pc.sum(alt_only).as_py() or 0)
    return out


def _varies(field: str, st: Mapping[str, Any]) -> tuple[bool, str]:
    n = st["labelled"]
    if n < 2:
        return False, f"{n} labelled row(s)"
    if field in _MULTI_HOT:
        if st["varying_labels"] == 0:
            return False, "every labelled row has the same label vector"
        return True, ""
    if field == "utility_worse":
        if st["pairs"] - st["degenerate_pairs"] < 1:
            return False, "no pair with two different scenarios"
        return True, ""
    if field == "surd":
        if max(st["std"]) == 0:
            return False, "all SURD target vectors are identical"
        return True, ""
    if st["std"] == 0:
        return False, f"all {n} labelled targets equal {st['mean']:g}"
    return True, ""


def _refuse(head: str | None, field: str, name: str | None, detail: str) -> TargetVarianceError:
    h = f"head '{head}'" if head else "this head"
    where = f"data set '{name}'" if name else "the data set"
    return TargetVarianceError(
        f"refusing to train {h}: target field '{field}' in {where} has no variance ({detail}). A head trained "
        f"on constant or missing targets learns a constant; fix the data/mixture or switch the head off."
    )


def check_target_variance(
    dataset, field: str, *, name: str | None = None, head: str | None = None
) -> dict[str, Any]:
    """Raise :class:`TargetVarianceError` (naming head, field and data set) if ``field``'s labelled targets
    in ``dataset`` are missing or constant; return :func:`target_stats` otherwise.

    For ``acceptable``, each framework present must vary on its own (each framework is its own output).
    For ``utility_worse`` (pairwise ranking) there must be a pair of two different scenarios.
    """
    st = target_stats(dataset, field)
    ok, detail = _varies(field, st)
    if not ok:
        raise _refuse(head, field, name, detail)
    if field == "acceptable":
        for fw, s in st["per_framework"].items():
            if s["labelled"] < 2 or s["acceptable_rate"] in (0.0, 1.0):
                raise _refuse(
                    head,
                    field,
                    f"{name or 'dataset'} (framework {fw})",
                    f"{s['labelled']} rows, acceptable rate {s['acceptable_rate']:.2f}",
                )
    return st


def check_heads(datasets: Mapping[str, Any], heads: Iterable[str] | None = None) -> dict[str, dict[str, Any]]:
    """Check every head's targets over all sets in ``datasets`` that label it (train.py: the train side).

    ``heads`` defaults to every head some set labels. A requested head no set labels, or whose combined
    targets do not vary, raises :class:`TargetVarianceError`. Returns per head: the combined stats and the
    sets that supply it.
    """
    import datasets as hf_datasets

    requested = list(heads) if heads is not None else list(HEAD_FIELDS)
    unknown = [h for h in requested if h not in HEAD_FIELDS]
    if unknown:
        raise KeyError(f"unknown head(s) {unknown}; known: {list(HEAD_FIELDS)}")
    out = {}
    for head in requested:
        field = HEAD_FIELDS[head]
        keep = ["text", "acceptability_framework", "alternatives", field]
        keep = list(dict.fromkeys(keep))
        parts, names = [], []
        for name, ds in datasets.items():
            sub = ds.select_columns(keep)
            n_lab = len(sub) - sub.with_format("arrow")[:][field].null_count
            if n_lab:
                parts.append(sub)
                names.append(name)
        if not parts:
            if heads is None:
                continue  # nothing labels it and it was not asked for
            raise TargetVarianceError(
                f"refusing to train head '{head}': no data set among {list(datasets)} supplies targets for "
                f"field '{field}'. Switch the head off or add a labelled data set."
            )
        combined = parts[0] if len(parts) == 1 else hf_datasets.concatenate_datasets(parts)
        st = check_target_variance(combined, field, name="+".join(names), head=head)
        out[head] = {"field": field, "sets": names, "stats": st}
    return out


# --------------------------------------------------------------------------------------------- report


def data_report(splits, issues=None) -> dict[str, Any]:
    """Counts and label balance per split, set and task, plus malformed/skipped rows per file.

    ``splits``: a :class:`~.catalog.DataSplits` or ``{"train": {set: Dataset}, "eval": {...}}``.
    """
    if hasattr(splits, "train"):
        sides = {"train": splits.train, "eval": splits.eval}
        issues = issues if issues is not None else splits.issues
        timings = dict(getattr(splits, "timings", {}) or {})
    else:
        sides = dict(splits)
        timings = {}
    rep: dict[str, Any] = {"splits": {}, "totals": {}, "tasks": {}}
    for side, sets in sides.items():
        rep["splits"][side] = {}
        for name, ds in sets.items():
            entry: dict[str, Any] = {"rows": len(ds), "tasks": {}}
            langs = ds.select_columns(["language"]).with_format("arrow")[:]["language"].unique().to_pylist()
            entry["languages"] = sorted(langs)
            for task, field in TASK_FIELDS.items():
                st = target_stats(ds, field)
                if st["labelled"] or (field == "regret" and st.get("alternatives_without_regret_label")):
                    entry["tasks"][task] = st
            rep["splits"][side][name] = entry
        rep["totals"][side] = sum(e["rows"] for e in rep["splits"][side].values())
        per_task: dict[str, int] = {}
        for e in rep["splits"][side].values():
            for task, st in e["tasks"].items():
                per_task[task] = per_task.get(task, 0) + st["labelled"]
        rep["tasks"][side] = per_task
    rep["issues"] = issues.to_dict() if issues is not None else {}
    rep["malformed_total"] = sum(sum(f["malformed"].values()) for f in rep["issues"].values())
    if timings:
        rep["timings_s"] = {k: round(v, 3) for k, v in timings.items()}
    return rep


def _balance(task: str, st: Mapping[str, Any]) -> str:
    if task in MULTILABEL_TASKS:
        rare = ", ".join(f"{n} {c}" for n, c in st.get("rarest", []))
        common = ", ".join(f"{n} {c}" for n, c in st.get("most_common", []))
        never = st.get("never_positive") or []
        s = f"{st.get('labels_per_row', 0):.2f} labels/row; top: {common}; rarest: {rare}"
        return s + (f"; never positive: {len(never)}" if never else "")
    if task == "sentiment":
        return (
            f"mean {st['mean']:+.3f} sd {st['std']:.3f}; pos {st['share_pos']:.1%} neg {st['share_neg']:.1%} "
            f"zero {st['share_zero']:.1%}"
        )
    if task == "acceptability":
        return "; ".join(
            f"{fw} {s['labelled']} rows, {s['acceptable_rate']:.1%} acceptable"
            for fw, s in st["per_framework"].items()
        )
    if task == "utility":
        return f"{st['pairs']} pairs (text preferred over utility_worse)"
    if task == "regret":
        extra = st.get("alternatives_without_regret_label", 0)
        s = f"mean {st['mean']:.3f}, regret=1 {st['positive_rate']:.1%}" if st["labelled"] else "no labels"
        return s + (f"; {extra} rows with alternatives, regret derived at training time" if extra else "")
    if task == "sensitive_question":
        return f"{st['positive_rate']:.1%} sensitive"
    if task == "surd":
        return f"std {st.get('std')}"
    return ""


def format_report(report: Mapping[str, Any]) -> str:
    """The report as plain-text tables."""
    lines: list[str] = []
    for side, sets in report["splits"].items():
        lines.append(f"== {side}: {report['totals'][side]:,} rows")
        lines.append(f"{'set':<20} {'rows':>8} {'lang':<5} {'task':<18} {'labelled':>8}  balance")
        for name, e in sets.items():
            tasks = e["tasks"] or {"(none)": None}
            first = True
            for task, st in tasks.items():
                head = f"{name:<20} {e['rows']:>8,} {','.join(e['languages']):<5}" if first else " " * 35
                if st is None:
                    lines.append(f"{head} {'-':<18} {'-':>8}  no targets")
                else:
                    lines.append(f"{head} {task:<18} {st['labelled']:>8,}  {_balance(task, st)}")
                first = False
        per_task = ", ".join(f"{t} {n:,}" for t, n in report["tasks"][side].items())
        lines.append(f"-- labelled rows per task ({side}): {per_task}")
        lines.append("")
    lines.append(f"== files: {report.get('malformed_total', 0)} malformed row(s) in total")
    for path, f in report.get("issues", {}).items():
        bad = sum(f["malformed"].values())
        skipped = sum(f["skipped"].values())
        lines.append(f"{path}: {f['rows']:,} rows, {f['kept']:,} kept, {bad} malformed, {skipped} skipped")
        for reason, n in f["malformed"].items():
            where = ", ".join(str(x) for x in f["malformed_lines"].get(reason, []))
            lines.append(f"    malformed x{n}: {reason} ({f['unit']}s {where})")
        for reason, n in f["skipped"].items():
            lines.append(f"    skipped x{n}: {reason}")
    if report.get("timings_s"):
        lines.append("")
        lines.append("== load time (s): " + ", ".join(f"{k} {v:.2f}" for k, v in report["timings_s"].items()))
    return "\n".join(lines)
