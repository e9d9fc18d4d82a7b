"""The ``redheart`` console script: ``serve`` and ``analyze-corpus`` are dispatched to their modules."""

from __future__ import annotations

from pathlib import Path

import pytest

from redheart.cli import COMMANDS, main


def test_the_console_script_is_the_dispatcher():
    tomllib = pytest.importorskip("tomllib", reason="tomllib is in the standard library from Python 3.11")
    pyproject = tomllib.loads(
        (Path(__file__).resolve().parents[1] / "pyproject.toml").read_text(encoding="utf-8")
    )
    assert pyproject["project"]["scripts"]["redheart"] == "redheart.cli:main"
    assert "redheart.corpus" in pyproject["tool"]["setuptools"]["packages"]


def test_the_redheart_command_dispatches_serve_and_analyze_corpus(capsys):
    assert main([]) == 0
    out = capsys.readouterr().out
    assert all(command in out for command in COMMANDS) and "serve" in out and "analyze-corpus" in out
    assert main(["train"]) == 2 and "unknown command 'train'" in capsys.readouterr().err
    with pytest.raises(SystemExit) as exited:
        main(["serve", "--help"])
    assert exited.value.code == 0 and "--max-pending-texts" in capsys.readouterr().out
    with pytest.raises(SystemExit) as exited:
        main(["analyze-corpus", "--help"])
    out = capsys.readouterr().out
    assert exited.value.code == 0 and "--shard-size" in out and "redheart analyze-corpus IN OUT" in out
