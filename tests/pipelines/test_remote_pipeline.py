"""The Hub route: a saved folder runs as ``pipeline(..., trust_remote_code=True)`` where redheart is absent."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import textwrap

import pytest
from transformers import pipeline

import redheart  # noqa: F401
from redheart.modeling_redheart.remote_code import ENTRY_MODULES, flatten_sources

# Run in a fresh interpreter whose import system refuses `redheart` (as on a machine without the library).
NO_REDHEART = textwrap.dedent(
    """
    import importlib.abc, json, os, sys

    class NoRedHeart(importlib.abc.MetaPathFinder):
        def find_spec(self, name, path=None, target=None):
            if name == "redheart" or name.startswith("redheart."):
                raise ModuleNotFoundError(f"No module named {name!r} (blocked by the test)")
            return None

    sys.meta_path.insert(0, NoRedHeart())
    sys.path = [p for p in sys.path if p not in ("", os.getcwd())]
    from transformers import pipeline
    """
)
SCRIPT = NO_REDHEART + textwrap.dedent(
    """
    model_dir, resaved = sys.argv[1], sys.argv[2]
    pipe = pipeline("ethics-emotion", model=model_dir, trust_remote_code=True)
    inferred = pipeline(model=model_dir, trust_remote_code=True)  # the task comes from custom_pipelines
    results = pipe(["친구와의 약속을 어기고 야근을 했다.", "I broke my promise."], alternatives=[None, ["I kept it."]])
    pipe.save_pretrained(resaved)  # flat mode: re-ship the code that was loaded
    again = pipeline("ethics-emotion", model=resaved, trust_remote_code=True)("I broke my promise.")
    print(json.dumps({
        "pipeline_module": type(pipe).__module__, "inferred": type(inferred).__name__,
        "model_module": type(pipe.model).__module__, "results": results, "again": again,
        "redheart_imported": sorted(m for m in sys.modules if m == "redheart" or m.startswith("redheart.")),
    }))
    """
)


@pytest.fixture(scope="module")
def system(tiny_system):
    return tiny_system


def _run_without_redheart(script: str, *args: str, cwd) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "-c", script, *args],
        capture_output=True,
        text=True,
        timeout=240,
        cwd=cwd,
        env={**os.environ, "HF_MODULES_CACHE": str(cwd / "modules"), "PYTHONPATH": ""},
    )


def test_remote_code_pipeline_without_redheart(system, tmp_path):
    proc = _run_without_redheart(SCRIPT, str(system), str(tmp_path / "resaved"), cwd=tmp_path)
    assert proc.returncode == 0, proc.stderr[-4000:]
    out = json.loads(proc.stdout.strip().splitlines()[-1])
    assert out["redheart_imported"] == []
    assert (
        out["pipeline_module"].startswith("transformers_modules.")
        and out["inferred"] == "EthicsEmotionPipeline"
    )
    assert out["model_module"].startswith("transformers_modules.")
    ko, en = out["results"]
    assert (
        ko["metadata"]["language"]["detected"] == "ko"
        and en["analysis"]["regret"]["source"] == "alternatives"
    )
    saved = json.loads((tmp_path / "resaved" / "config.json").read_text())
    assert "ethics-emotion" in saved["custom_pipelines"]
    assert (tmp_path / "resaved" / "pipelines_windows.py").is_file()

    # The library gives the same numbers as the shipped code.
    local = pipeline("ethics-emotion", model=str(system))
    expected = local(
        ["친구와의 약속을 어기고 야근을 했다.", "I broke my promise."], alternatives=[None, ["I kept it."]]
    )
    for got, want in zip(out["results"], expected, strict=True):
        assert got["analysis"]["emotion"]["labels"] == pytest.approx(
            want["analysis"]["emotion"]["labels"], abs=1e-6
        )
        assert got["integrated"] == pytest.approx(want["integrated"], abs=1e-6)
    assert out["again"]["integrated"] == pytest.approx(local("I broke my promise.")["integrated"], abs=1e-6)


def test_installed_library_wins_in_process(system):
    """With redheart imported, its registered classes are used, with or without trust_remote_code
    (transformers prefers explicitly registered local code); the saved folder's own task is hidden from it."""
    for trust in (None, True):
        pipe = pipeline("ethics-emotion", model=str(system), trust_remote_code=trust)
        assert type(pipe).__module__ == "redheart.pipelines.ethics_emotion"
        assert type(pipe.model).__module__ == "redheart.modeling_redheart.modeling"


def test_flattening_ships_what_runs_at_import_and_rewrites_every_relative_import():
    files = flatten_sources(ENTRY_MODULES, "redheart")
    assert "pipelines_ethics_emotion.py" in files
    # the clause splitter (every result's clause count) ships; the decomposition and streams do not
    assert [n for n in files if n.startswith(("pipelines_streams", "pipelines_explain"))] == [
        "pipelines_explain_clauses.py"
    ]
    for name, source in files.items():  # imports inside functions too: each names a shipped flat module
        for line in source.splitlines():
            if line.lstrip().startswith("from ."):
                assert f"{line.split()[1][1:]}.py" in files, (name, line)


# Streams and explanations are imported lazily by the pipeline, so the saved folder ships without them (only the
# clause splitter, which every result uses for its clause count).
OPTIONAL_PARTS_SCRIPT = NO_REDHEART + textwrap.dedent(
    """
    pipe = pipeline("ethics-emotion", model=sys.argv[1], trust_remote_code=True)
    calls = {
        "analyze_stream": lambda: pipe.analyze_stream(["I broke my promise.", "I kept it.", "I am sorry."]),
        "explain": lambda: pipe("I lied, but it saved her feelings.", explain=True),
    }
    errors = {}
    for name, call in calls.items():
        try:
            call()
            errors[name] = None
        except Exception as exc:
            errors[name] = [type(exc).__name__, str(exc)]
    # Once the library can be imported, the shipped pipeline takes the parts from it.
    sys.meta_path[:] = [f for f in sys.meta_path if not isinstance(f, NoRedHeart)]
    stream = calls["analyze_stream"]()
    print(json.dumps({"errors": errors, "pipeline_module": type(pipe).__module__, "stream": stream}))
    """
)


def test_saved_folder_ships_only_the_per_text_pipeline(system, tmp_path):
    shipped = sorted(p.name for p in system.glob("*.py"))
    assert "pipelines_ethics_emotion.py" in shipped and "pipelines_windows.py" in shipped
    assert [n for n in shipped if n.startswith(("pipelines_streams", "pipelines_explain"))] == [
        "pipelines_explain_clauses.py"
    ]

    proc = _run_without_redheart(OPTIONAL_PARTS_SCRIPT, str(system), cwd=tmp_path)
    assert proc.returncode == 0, proc.stderr[-4000:]
    out = json.loads(proc.stdout.strip().splitlines()[-1])
    for feature in ("analyze_stream", "explain"):
        kind, message = out["errors"][feature]
        assert (
            kind == "ImportError"
            and "needs the redheart library installed (pip install red-heart)" in message
        )
        assert "ships only the per-text pipeline" in message
    assert out["pipeline_module"].startswith("transformers_modules.")
    assert out["stream"]["n_items"] == 3 and out["stream"]["signals"][0] == "valence"
