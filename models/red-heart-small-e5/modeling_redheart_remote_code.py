"""Ship Red Heart's code inside a saved folder, so it loads with `trust_remote_code=True` where the library is absent.

transformers' dynamic-module loader copies the file named in `auto_map` and, recursively, the files it imports
with `from .name import ...`, all from one flat folder. Red Heart's code lives in sub-packages, so saving flattens
it: module `redheart.modeling_redheart.heads` becomes `modeling_redheart_heads.py`, a package's `__init__` takes the
package's name (`modeling_redheart.py`), and every relative import is rewritten to point at the flat name.

Only the modules imported when the entry modules are imported are shipped: an import inside a function is a
lazy, optional part (the pipeline's streams and explanations) that the saved folder leaves out; such an
import is still rewritten, so it finds its module whenever that module was shipped anyway.
"""

from __future__ import annotations

import ast
import importlib.util
import shutil
import sys
from pathlib import Path

#: Entry modules shipped with a saved model (relative to the `redheart` package) and what they provide.
AUTO_MAP = {
    "AutoConfig": "configuration_redheart.RedHeartConfig",
    "AutoModel": "modeling_redheart.RedHeartModel",
}
#: The `ethics-emotion` pipeline, shipped so that `pipeline(..., trust_remote_code=True)` finds it.
PIPELINE_ENTRY = "pipelines.ethics_emotion"
ENTRY_MODULES = ("configuration_redheart", "modeling_redheart", PIPELINE_ENTRY)
#: `custom_pipelines` of a saved config.json (written when the pipeline code is shipped).
CUSTOM_PIPELINES = {
    "ethics-emotion": {
        "impl": "pipelines_ethics_emotion.EthicsEmotionPipeline",
        "pt": ["AutoModel"],
        "type": "text",
    },
}


def flat_name(module: str, root: str) -> str:
    """`redheart.modeling_redheart.heads` -> `modeling_redheart_heads` (root = `redheart`)."""
    return module[len(root) + 1 :].replace(".", "_")


def _module_file(module: str) -> Path:
    spec = importlib.util.find_spec(module)
    if spec is None or spec.origin is None:
        raise ImportError(f"cannot find the source of module {module!r}")
    return Path(spec.origin)


def _resolve(module: str, is_package: bool, node: ast.ImportFrom) -> str:
    package = module if is_package else module.rsplit(".", 1)[0]
    for _ in range(node.level - 1):
        package = package.rsplit(".", 1)[0]
    return f"{package}.{node.module}" if node.module else package


def _relative_imports(module: str) -> tuple[Path, list[tuple[ast.ImportFrom, str, bool]]]:
    """The module's file and its relative imports: (node, target module, runs when the module is imported)."""
    path = _module_file(module)
    is_package = path.name == "__init__.py"
    tree = ast.parse(path.read_text(encoding="utf-8"))
    found = []
    todo: list[tuple[ast.AST, bool]] = [(tree, True)]
    while todo:
        node, at_import = todo.pop()
        if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef, ast.Lambda)):
            at_import = False  # its body runs when called, not when the module is imported
        if isinstance(node, ast.ImportFrom) and node.level > 0:
            if node.module is None:
                raise ValueError(
                    f"{path}: `from . import name` cannot be shipped as remote code; import from a module"
                )
            found.append((node, _resolve(module, is_package, node), at_import))
        todo.extend((child, at_import) for child in ast.iter_child_nodes(node))
    return path, found


def flatten_sources(entries: tuple[str, ...], root: str) -> dict[str, str]:
    """Return {flat file name: rewritten source} for the entry modules and the modules they import relatively
    at import time (not inside functions)."""
    todo, done, files = [f"{root}.{e}" for e in entries], set(), {}
    while todo:
        module = todo.pop()
        if module in done:
            continue
        done.add(module)
        path, imports = _relative_imports(module)
        lines = path.read_text(encoding="utf-8").splitlines()
        # Rewrite from the bottom so earlier line numbers stay valid.
        for node, target, at_import in sorted(imports, key=lambda item: item[0].lineno, reverse=True):
            names = ", ".join(a.name + (f" as {a.asname}" if a.asname else "") for a in node.names)
            indent = lines[node.lineno - 1][: node.col_offset]
            lines[node.lineno - 1 : node.end_lineno] = [
                f"{indent}from .{flat_name(target, root)} import {names}"
            ]
            if at_import:
                todo.append(target)
        files[f"{flat_name(module, root)}.py"] = "\n".join(lines) + "\n"
    return files


def export_remote_code(save_directory: str | Path, entries: tuple[str, ...] = ENTRY_MODULES) -> list[str]:
    """Write the flattened code of `entries` into `save_directory`; return the file names written.

    When this code itself runs from a flattened folder (a model loaded with `trust_remote_code`), its sibling
    files are already flat and are copied as they are.
    """
    save_directory = Path(save_directory)
    save_directory.mkdir(parents=True, exist_ok=True)
    package = __name__.rsplit(".", 2)
    if len(package) == 3 and package[1] == "modeling_redheart":  # running from the library: flatten it
        files = flatten_sources(entries, package[0])
        for name, source in files.items():
            (save_directory / name).write_text(source, encoding="utf-8")
        return sorted(files)
    # Flat mode: the siblings of this file, plus entry modules the loader cached in another folder. The
    # pipeline's code is there only if it was loaded; without it the model is saved without the pipeline.
    sources = {p.name: p for p in Path(__file__).parent.glob("*.py") if p.name != "__init__.py"}
    for entry in entries:
        flat = entry.replace(".", "_")
        if f"{flat}.py" not in sources:
            loaded = [
                m
                for name, m in sys.modules.items()
                if name.endswith(f".{flat}") and getattr(m, "__file__", None)
            ]
            if not loaded:
                if entry == PIPELINE_ENTRY:
                    continue
                raise FileNotFoundError(f"cannot find the code of {entry!r} to ship with the model")
            # The loader caches each entry module with the files it imports in a folder of its own.
            for path in Path(loaded[-1].__file__).parent.glob("*.py"):
                if path.name != "__init__.py":
                    sources.setdefault(path.name, path)
    for name, path in sorted(sources.items()):
        if path.resolve() != (save_directory / name).resolve():
            shutil.copyfile(path, save_directory / name)
    return sorted(sources)
