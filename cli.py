"""``redheart <command>``: the console script. ``serve`` starts the REST server (``serving/cli.py``);
``analyze-corpus`` analyses a corpus into Parquet shards (``corpus/cli.py``).

Each command's module is imported only when it runs, so ``redheart serve`` never imports pyarrow and
``redheart analyze-corpus`` never imports the web frameworks. ``python -m redheart`` is the main job (analyse
a few texts), not this dispatcher.
"""

from __future__ import annotations

import importlib
import sys

#: command -> (module, function taking argv, one-line description).
COMMANDS = {
    "serve": ("redheart.serving.cli", "serve_main", "serve the model over HTTP (REST, /metrics, /monitor)"),
    "analyze-corpus": (
        "redheart.corpus.cli",
        "main",
        "analyse a corpus (JSONL/CSV/TSV/Parquet/Hub) into resumable Parquet shards",
    ),
}


def usage() -> str:
    width = max(map(len, COMMANDS))
    lines = ["usage: redheart <command> [options]   (redheart <command> --help)", "", "commands:"]
    lines += [f"  {name:<{width}}  {description}" for name, (_, _, description) in COMMANDS.items()]
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    """Dispatch ``argv[0]`` to its command; no command (or ``-h``) prints the commands."""
    argv = list(sys.argv[1:] if argv is None else argv)
    if not argv or argv[0] in ("-h", "--help"):
        print(usage())
        return 0
    command, rest = argv[0], argv[1:]
    if command not in COMMANDS:
        print(f"redheart: unknown command {command!r} (commands: {', '.join(COMMANDS)})", file=sys.stderr)
        return 2
    module, function, _ = COMMANDS[command]
    code = getattr(importlib.import_module(module), function)(rest)
    return int(code or 0)


if __name__ == "__main__":
    sys.exit(main())
