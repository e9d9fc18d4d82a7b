"""``python -m redheart.onnx_backend OUT_DIR [--model M] [--precision int8 fp32]``: export to ONNX, report differences."""

from __future__ import annotations

import argparse
import json

from .export import describe_differences, export_onnx
from .manifest import PRECISIONS


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m redheart.onnx_backend",
        description="Export a Red Heart model and its encoders to ONNX (fp32 and int8), checked against torch.",
    )
    parser.add_argument("out_dir", help="folder to write (must be empty or absent)")
    parser.add_argument(
        "--model", default=None, help="saved model folder or Hub id (default: the shipped model)"
    )
    parser.add_argument("--precision", nargs="+", choices=PRECISIONS, default=list(PRECISIONS))
    parser.add_argument(
        "--int8-scope", choices=("encoders", "all"), default="encoders", help="what int8 quantizes"
    )
    parser.add_argument("--overwrite", action="store_true", help="replace a non-empty OUT_DIR")
    args = parser.parse_args(argv)
    from transformers import pipeline

    from .. import pipelines  # noqa: F401  (registers the task)

    pipe = pipeline("ethics-emotion", model=args.model)
    manifest = export_onnx(
        pipe.model,
        pipe.encoders,
        args.out_dir,
        args.precision,
        quantize_scope=args.int8_scope,
        overwrite=args.overwrite,
    )
    print(describe_differences(manifest))
    print(json.dumps({"out_dir": args.out_dir, "routes": list(manifest["routes"])}))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
