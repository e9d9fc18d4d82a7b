"""The Hugging Face Space entry point: Red Heart's Gradio app (``serving/gradio_app.py``).

A Space runs ``python app.py`` from the repository root after installing ``requirements.txt``; the model is
``$REDHEART_MODEL`` (a Hub id or folder; unset: the default model). This file sits in the package root, so
where the library is not installed it loads this folder itself as the ``redheart`` package.
"""

from __future__ import annotations

import importlib.util
import sys
from pathlib import Path


def import_redheart() -> None:
    """``import redheart``, or load this folder as ``redheart`` when the library is not installed."""
    if importlib.util.find_spec("redheart") is not None:
        return
    root = Path(__file__).resolve().parent
    spec = importlib.util.spec_from_file_location(
        "redheart", root / "__init__.py", submodule_search_locations=[str(root)]
    )
    module = importlib.util.module_from_spec(spec)
    sys.modules["redheart"] = module
    spec.loader.exec_module(module)


if __name__ == "__main__":
    import_redheart()
    from redheart.serving.gradio_app import main

    main()
