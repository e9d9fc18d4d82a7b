"""What the Gradio app shows of a result (charts' tables, summary, clause explanation), and the Space's files."""

from __future__ import annotations

import asyncio
import copy
import io
import re
import subprocess
import sys
from pathlib import Path

import pytest

pytest.importorskip("pandas", reason="pandas comes with gradio (pip install -e '.[serving]')")

from redheart.configuration_redheart.labels import ACCEPTABILITY_FRAMEWORKS, SURD_SHARES  # noqa: E402
from redheart.pipelines.explain.explanation import explain_from_values  # noqa: E402
from redheart.serving import gradio_views as views  # noqa: E402

ROOT = Path(__file__).resolve().parents[2]
KO = "친구와의 약속을 어기고 야근을 했다, 하지만 팀을 도왔다"
ALTERNATIVES = ["약속을 지키고 친구를 만났다", "친구에게 미리 사정을 말했다"]


@pytest.fixture(scope="module")
def result(tiny_pipeline):
    return tiny_pipeline(KO, alternatives=ALTERNATIVES)


@pytest.fixture(scope="module")
def explained(result):
    """The result with a decomposed (status "ok") clause explanation: one clause decides, another is redundant."""
    out = copy.deepcopy(result)
    clauses = ["친구와의 약속을 어기고", "야근을 했다,", "하지만 팀을 도왔다"]
    out["analysis"]["surd"]["explanation"] = explain_from_values(
        clauses, [0.9, 0.1, 0.9, 0.5, 0.9, 0.5, 0.9], judgement_name="ethical_score", value_range=(0.0, 1.0)
    )
    return out


def test_chart_tables_hold_every_bar_in_a_readable_order(result):
    emotions = views.emotion_bars(result)
    assert len(emotions) == 28 and list(emotions["probability"]) == sorted(
        emotions["probability"], reverse=True
    )
    assert len(views.element_bars(result)) == 10
    assert list(views.acceptability_bars(result)["framework"]) == list(ACCEPTABILITY_FRAMEWORKS)
    surd = views.surd_bars(result)
    assert list(surd["share"]) == list(SURD_SHARES) and surd["value"].sum() == pytest.approx(1.0)
    regret = views.regret_bars(result)
    assert list(regret["scenario"]) == list(views.SCENARIOS) and regret["regret"].between(0, 1).all()


def test_utility_chart_puts_the_choice_next_to_its_alternatives(result):
    table = views.utility_bars(result)
    assert len(table) == 3 + len(ALTERNATIVES)
    assert table["option"].iloc[3].startswith("alternative 1: ")
    low, high = views.utility_range(result)
    assert low <= min(0.0, table["utility"].min()) and high >= table["utility"].max()


def test_without_alternatives_regret_has_no_bars_and_the_summary_says_why(tiny_pipeline):
    alone = tiny_pipeline(KO)
    assert views.regret_bars(alone).empty
    assert len(views.utility_bars(alone)) == 3
    assert "(model)" in views.summary_text(alone)


def test_summary_names_the_headline_numbers_and_what_is_untrained(result):
    text = views.summary_text(result)
    bentham = result["analysis"]["bentham"]
    assert f"**Utility** {bentham['utility']:.2f} ± {bentham['utility_std']:.2f}" in text
    assert "**Language** ko" in text and "best alternative" in text
    assert "Not trained in this model" in text  # the tiny system is untrained
    assert "Latent by design: bentham.elements, bentham.weights" in text


def test_clause_explanation_lists_roles_and_the_largest_terms(explained, result):
    table = views.clause_table(explained)
    assert list(table.columns) == views.CLAUSE_COLUMNS
    assert list(table["role"]) == ["alone", "jointly", "redundantly"]
    text = views.explanation_text(explained)
    assert "dominant **unique**" in text and re.search(r"unique \{0\} 41%", text)
    assert "Switch **explain** on" in views.explanation_text(result)
    assert views.clause_table(result).empty


@pytest.fixture(scope="module")
def photo_pipeline(tiny_system, face_analyzer):
    from transformers import pipeline

    return pipeline("ethics-emotion", model=str(tiny_system), face_analyzer=face_analyzer)


def test_a_photo_gives_a_face_chart_a_face_table_and_a_summary_line(photo_pipeline, astronaut_png, result):
    photo = photo_pipeline(KO, image=astronaut_png)
    bars = views.face_bars(photo)
    assert len(bars) == 7 and bars.loc[bars["probability"].idxmax(), "expression"] == "happy"
    table = views.face_table(photo)
    assert list(table.columns) == views.FACE_COLUMNS and table.loc[0, "expression"] == "happy"
    assert table.loc[0, "width"] > 50
    assert "**Faces** 1: happy" in views.summary_text(
        photo
    ) and "the photo moved valence +" in views.face_text(photo)
    assert (
        views.face_bars(result).empty and views.face_table(result).empty and views.face_text(result) is None
    )
    no_face = copy.deepcopy(photo)
    no_face["analysis"]["emotion"]["face"] = []
    no_face["analysis"]["emotion"]["face_fusion"] = {"applied": False, "faces": 0, "note": "no face found"}
    assert views.face_text(no_face) == "**Faces** none: no face found" and views.face_bars(no_face).empty


def test_the_app_sends_the_photo_and_fills_the_face_outputs(photo_pipeline, astronaut_png):
    pytest.importorskip("gradio", reason="gradio is not installed (pip install -e '.[serving]')")
    import numpy as np
    from PIL import Image

    from redheart.serving.gradio_app import build_app
    from redheart.serving.service import AnalysisService

    photo = np.asarray(Image.open(io.BytesIO(astronaut_png)).convert("RGB"))

    async def main():
        service = AnalysisService(pipeline=photo_pipeline)
        try:
            app = build_app(service)
            (analyse,) = {f.fn for f in app.fns.values() if getattr(f.fn, "__name__", "") == "analyse"}
            with_photo = await analyse(KO, "", False, "ethical_score", "range", photo)
            return with_photo, await analyse(KO, "", False, "ethical_score", "range", None)
        finally:
            await service.aclose()

    with_photo, text_only = asyncio.run(main())
    summary, _, faces, face_rows = with_photo[:4]
    assert "**Faces** 1: happy" in summary and len(faces.value["data"]) == 7
    assert face_rows.loc[0, "expression"] == "happy"
    assert "**Faces**" not in text_only[0] and text_only[3].empty


def test_space_requirements_cover_the_library_and_the_app():
    import tomllib

    project = tomllib.loads((ROOT / "pyproject.toml").read_text(encoding="utf-8"))["project"]
    lines = (ROOT / "requirements.txt").read_text(encoding="utf-8").splitlines()
    required = {
        re.split(r"[<>=\[ ;]", line)[0].lower() for line in lines if line and not line.startswith("#")
    }
    wanted = {re.split(r"[<>=\[ ;]", dep)[0].lower() for dep in project["dependencies"]}
    assert wanted <= required and {"gradio", "prometheus-client"} <= required
    card = (ROOT / "serving" / "space" / "README.md").read_text(encoding="utf-8")
    assert "sdk: gradio" in card and "app_file: app.py" in card


def test_space_entry_point_imports_the_library_from_its_own_folder():
    """Where the library is not installed (a Space), app.py loads the repository root as `redheart`."""
    if ROOT not in Path(views.__file__).resolve().parents:
        pytest.skip("the library is installed from elsewhere, so app.py would not need its fallback")
    script = (
        "import importlib.util, sys\n"
        "sys.meta_path[:] = [f for f in sys.meta_path if 'editable' not in repr(f).lower()]\n"
        "assert importlib.util.find_spec('redheart') is None\n"
        f"spec = importlib.util.spec_from_file_location('space_app', {str(ROOT / 'app.py')!r})\n"
        "app = importlib.util.module_from_spec(spec)\n"
        "spec.loader.exec_module(app)\n"
        "app.import_redheart()\n"
        "import redheart.serving.gradio_views\n"
        "print(redheart.serving.gradio_views.__file__)\n"
    )
    done = subprocess.run(
        [sys.executable, "-c", script], capture_output=True, text=True, timeout=120, cwd="/"
    )
    assert done.returncode == 0, done.stderr
    assert Path(done.stdout.strip()) == ROOT / "serving" / "gradio_views.py"
