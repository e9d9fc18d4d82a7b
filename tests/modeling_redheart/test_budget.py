"""The parameter budget of docs/DESIGN.md, measured from the real modules (330m built on the meta device)."""

from __future__ import annotations

import pytest

from redheart.configuration_redheart import RedHeartConfig
from redheart.modeling_redheart.budget import base_encoder_parameters, parameter_breakdown

SPEC_M = {
    ("backbone", "total"): 50,
    ("heads", "total"): 80,
    ("analyzers", "total"): 170,
    ("auxiliary", "total"): 30,
    ("heads", "emotion"): 22,
    ("heads", "bentham"): 20,
    ("heads", "regret"): 22,
    ("heads", "surd"): 16,
    ("analyzers", "emotion"): 50,
    ("analyzers", "bentham"): 45,
    ("analyzers", "regret"): 50,
    ("analyzers", "surd"): 25,
    ("auxiliary", "dsp"): 10,
    ("auxiliary", "kalman"): 5,
    ("auxiliary", "utility"): 15,
}


@pytest.fixture(scope="module")
def breakdown_330m():
    return parameter_breakdown(RedHeartConfig.from_preset("330m"), base_encoder_parameters())


@pytest.mark.parametrize(("group", "part"), list(SPEC_M))
def test_330m_parts_within_5_percent(breakdown_330m, group, part):
    measured = breakdown_330m["groups"][group][part] / 1e6
    assert abs(measured - SPEC_M[group, part]) <= 0.05 * SPEC_M[group, part], (
        f"{group}.{part}: {measured:.2f}M"
    )


def test_330m_totals(breakdown_330m):
    assert breakdown_330m["other"] == 0, "every parameter belongs to a budgeted part"
    assert abs(breakdown_330m["own_total"] / 1e6 - 330) <= 0.05 * 330
    assert breakdown_330m["system_total"] >= 675e6
    assert set(breakdown_330m["encoders"]) == {"kcelectra", "roberta", "klue_bert"}


def test_tiny_is_tiny():
    assert parameter_breakdown(RedHeartConfig.from_preset("tiny"))["own_total"] < 5e6
