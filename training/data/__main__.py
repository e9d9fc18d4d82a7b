"""The data report: ``python -m redheart.training.data [--data-dir DIR] [--json FILE] [--seed N]``.

Builds the default splits of the catalog and prints :func:`~.report.format_report` (``--json`` also writes
the report dict). It lives here, not in ``report.py``, so that the report never imports the catalog.
"""

from __future__ import annotations

import argparse
import json
import sys
from typing import Any

from .catalog import DataConfig, build_splits
from .report import data_report, format_report


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(
        prog="python -m redheart.training.data", description="Red Heart data report (default DataConfig)"
    )
    p.add_argument("--data-dir", default=None, help="data folder (default: $RH_DATA_DIR)")
    p.add_argument("--seed", type=int, default=None)
    p.add_argument("--json", default=None, help="also write the report dict to this JSON file")
    args = p.parse_args(argv)
    d: dict[str, Any] = {"data_dir": args.data_dir}
    if args.seed is not None:
        d["seed"] = args.seed
    rep = data_report(build_splits(DataConfig.from_dict(d)))
    print(format_report(rep))
    if args.json:
        with open(args.json, "w", encoding="utf-8") as fh:
            json.dump(rep, fh, ensure_ascii=False, indent=1)
    return 0


if __name__ == "__main__":
    sys.exit(main())
