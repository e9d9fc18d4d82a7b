"""`python -m redheart.training.distil_acceptability` on the tiny model and the first rows of the real GoEmotions
files: every target against the teacher pipeline's own output on the English row, the Korean text of the same
row, the rotating framework; then the distilled folder as the ``goemotions_ko_ethics`` training set (soft targets
kept, the GoEmotions groups, malformed lines counted), and the refusals."""

from __future__ import annotations

import json
import shutil

import numpy as np
import pytest

from redheart.configuration_redheart.labels import ACCEPTABILITY_FRAMEWORKS

ROWS = 10


@pytest.fixture
def small_goemotions(data_dir, tmp_path):
    """A data folder with the first ROWS rows of each GoEmotions EN/KO split (and their label files)."""
    root = tmp_path / "data"
    for folder, label_file in (("goemotions_en", "labels.txt"), ("goemotions_ko", "label.txt")):
        (root / folder).mkdir(parents=True)
        shutil.copyfile(data_dir / folder / label_file, root / folder / label_file)
        for split in ("train", "dev"):
            lines = (data_dir / folder / f"{split}.tsv").read_text(encoding="utf-8").splitlines()[:ROWS]
            (root / folder / f"{split}.tsv").write_text("\n".join(lines) + "\n", encoding="utf-8")
    return root


def test_targets_are_the_teachers_judgement_of_the_english_row(small_goemotions, tiny_system, tmp_path):
    from transformers import pipeline

    import redheart  # noqa: F401  (registers the task)
    from redheart.training.distil_acceptability import TEACHER_RECORD, main

    out = tmp_path / "distilled"
    argv = ["--teacher", str(tiny_system), "--out", str(out), "--data-dir", str(small_goemotions)]
    assert main([*argv, "--max-rows", "6", "--no-progress"]) == 0
    teacher = pipeline("ethics-emotion", model=str(tiny_system), dtype="float32")
    for split in ("train", "dev"):
        rows = [
            json.loads(line) for line in (out / f"{split}.jsonl").read_text(encoding="utf-8").splitlines()
        ]
        assert len(rows) == 6 and [r["position"] for r in rows] == sorted(r["position"] for r in rows)
        english = (
            (small_goemotions / "goemotions_en" / f"{split}.tsv").read_text(encoding="utf-8").splitlines()
        )
        korean = (
            (small_goemotions / "goemotions_ko" / f"{split}.tsv").read_text(encoding="utf-8").splitlines()
        )
        for row in rows:
            p = row["position"]
            assert row["framework"] == ACCEPTABILITY_FRAMEWORKS[p % 4]
            assert row["text"] == korean[p].split("\t")[0].strip()
            said = teacher(english[p].split("\t")[0])["analysis"]["bentham"]["acceptability"]
            assert row["acceptable"] == pytest.approx(said[row["framework"]], abs=1e-5)
    record = json.loads((out / TEACHER_RECORD).read_text())
    assert record["train"]["rows"] == 6 and record["train"]["of"] == ROWS and record["dtype"] == "float32"
    assert sum(t["n"] for t in record["dev"]["targets"].values()) == 6


def test_distilled_folder_is_a_training_set_with_soft_targets(tmp_path):
    from redheart.training.collate import ExampleTable
    from redheart.training.data import DataConfig, build_set
    from redheart.training.data.common import DataNotFoundError

    folder = tmp_path / "distilled"
    folder.mkdir()
    rows = [
        {"position": 3, "text": "약속을 어겼다", "framework": "justice", "acceptable": 0.25},
        {"position": 4, "text": "고마워요", "framework": "deontology", "acceptable": 0.875},
    ]
    bad = ['{"position": 5, "text": "x", "framework": "etiquette", "acceptable": 0.5}', "not json"]
    (folder / "train.jsonl").write_text("\n".join([*map(json.dumps, rows), *bad]) + "\n", encoding="utf-8")
    (folder / "dev.jsonl").write_text(json.dumps({**rows[0], "position": 0}) + "\n", encoding="utf-8")
    config = DataConfig(sources={"goemotions_ko_ethics": str(folder)}, max_malformed_fraction=0.6)
    sides = build_set("goemotions_ko_ethics", config)
    train = sides["train"]
    assert train["group"] == ["goemotions:train:3", "goemotions:train:4"]  # GoEmotions' own groups
    assert set(train["language"]) == {"ko"} and sides["eval"]["group"] == ["goemotions:dev:0"]
    table = ExampleTable.from_dataset(train)
    column = [ACCEPTABILITY_FRAMEWORKS.index(r["framework"]) for r in rows]
    assert table.acceptability[[0, 1], column] == pytest.approx([0.25, 0.875])  # soft, not rounded to 0/1
    assert np.sum(table.acceptability != -100) == 2  # one framework per comment

    with pytest.raises(DataNotFoundError, match="distil_acceptability"):
        build_set("goemotions_ko_ethics", DataConfig(data_dir=str(tmp_path)))


def test_misaligned_translations_and_constant_targets_are_refused(small_goemotions, tiny_system, tmp_path):
    from redheart.training.distil_acceptability import DistillationError, _spread, distil_acceptability

    korean = small_goemotions / "goemotions_ko" / "train.tsv"
    korean.write_text("\n".join(korean.read_text(encoding="utf-8").splitlines()[1:]) + "\n", encoding="utf-8")
    with pytest.raises(DistillationError, match="not row-aligned"):
        distil_acceptability(tiny_system, tmp_path / "out", data_dir=str(small_goemotions), progress=False)
    with pytest.raises(DistillationError, match="the same justice acceptability"):
        _spread(["justice"] * 3, np.array([0.7, 0.7, 0.7]), "train")
