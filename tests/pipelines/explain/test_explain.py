"""SURD explanations over clause subsets (``redheart.pipelines.explain``).

The known-answer tests run the exact algorithm on designed judgements: ``analyze`` is a deterministic
function of which clauses a text contains (one clause decides / an AND / an XOR of two), so the right
decomposition is known in advance. They exercise the whole path (clauses -> subset texts -> batched calls ->
discretised judgement -> joint distribution -> SURD), not a stand-in for the model; the model itself runs in
the last tests, through the real tiny pipeline.
"""

from __future__ import annotations

import json
import math

import numpy as np
import pytest

from redheart.pipelines.explain import (
    clause_count,
    explain_from_values,
    explain_text,
    plan_clauses,
    split_clauses,
    subset_masks,
    subset_text,
)
from redheart.training.data.surd_targets import surd_labels, surd_shares

CLAUSES = ["I lied to my parents,", "and I went to the movies", "because my friend asked me."]
TEXT = " ".join(CLAUSES)


def _designed(rule, counter: list | None = None):
    """``analyze`` for designed judgements: ethical score 0.9 or 0.1 from a rule on the clauses present."""

    def analyze(texts: list[str]) -> list[dict]:
        if counter is not None:
            counter.append(len(texts))
        out = []
        for text in texts:
            present = [c in text for c in CLAUSES]
            out.append({"integrated": {"ethical_score": 0.1 if rule(*present) else 0.9}})
        return out

    return analyze


# --- clauses --------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("친구와의 약속을 어기고 야근을 했다", ["친구와의 약속을 어기고", "야근을 했다"]),
        ("시험에 떨어져서 슬프고 속상하다.", ["시험에 떨어져서", "슬프고", "속상하다."]),
        ("회사에서 억울한 일을 당했지만 참았다.", ["회사에서 억울한 일을 당했지만", "참았다."]),
        ("비가 오는데 우산이 없었다", ["비가 오는데", "우산이 없었다"]),
        (
            "경찰서에 가서 지갑을 맡겼다. 그리고 집에 왔다.",
            ["경찰서에 가서", "지갑을 맡겼다.", "그리고 집에 왔다."],
        ),
        ("최고의 광고였다고 말했다", ["최고의 광고였다고 말했다"]),  # noun -고 and quotative -다고 stay
        (
            "학교에서 보고서를 썼다",
            ["학교에서 보고서를 썼다"],
        ),  # -에서 and the noun 보고서 are not -아서/-어서
        (
            "I broke my promise to a friend and worked late.",
            ["I broke my promise to a friend", "and worked late."],
        ),
        (TEXT, CLAUSES),
        ("It cost 3,000 dollars but I paid.", ["It cost 3,000 dollars", "but I paid."]),
        ("Wow! That was great.", ["Wow!", "That was great."]),
        ("A, b c", ["A, b c"]),  # a one-letter piece is merged into its neighbour
        ("   ", []),
    ],
)
def test_split_clauses(text, expected):
    assert split_clauses(text) == expected


def test_clause_cap_merges_adjacent_clauses_and_says_so():
    text = "One two, three four, five six, seven eight, nine ten, eleven twelve, thirteen fourteen."
    plan = plan_clauses(text, max_clauses=4)
    assert plan.n == 4 and plan.original_count == 7 and plan.merged
    assert " ".join(plan.clauses).split() == text.split()  # nothing lost, order kept
    info = plan.cap_info()
    assert info["n_subsets"] == 15 and info["clauses_found"] == 7 and info["merged"]
    exp = explain_text(text, _designed(lambda *p: False), max_clauses=4)
    assert exp["cap"]["merged"] and exp["n_clauses"] == 4 and exp["n_subsets"] == 15
    with pytest.raises(ValueError, match="max_clauses"):
        plan_clauses(text, max_clauses=13)


def test_subset_texts_keep_clause_order():
    assert subset_masks(3) == list(range(1, 8))
    assert subset_text(CLAUSES, 0b101) == "I lied to my parents, because my friend asked me."


# --- known answers --------------------------------------------------------------------------------------


def test_a_judgement_decided_by_one_clause_is_unique_to_it():
    calls: list[int] = []
    exp = explain_text(TEXT, _designed(lambda a, b, c: a, calls))
    json.dumps(exp, allow_nan=False)
    assert exp["status"] == "ok" and exp["n_subsets"] == 7 and sum(calls) == 7
    shares = exp["shares"]
    assert math.isclose(sum(shares.values()), 1.0, abs_tol=1e-12)
    assert shares["leak"] < 1e-12 and shares["synergistic"] < 1e-12
    assert shares["unique"] > 0.97  # the rest: the redundancy of never-all-absent clauses (module doc)
    roles = [c["role"] for c in exp["per_clause"]]
    assert roles == ["alone", "none", "none"]
    assert exp["groups"][0] == {"kind": "unique", "clauses": [0], "share": pytest.approx(shares["unique"])}
    # with the empty text's judgement supplied the indicators are independent and the answer is exact
    exact = explain_text(TEXT, _designed(lambda a, b, c: a), empty_judgement=0.9)
    assert exact["shares"]["unique"] == pytest.approx(1.0, abs=1e-12)
    assert exact["per_clause"][0]["unique"] == pytest.approx(1.0, abs=1e-12)


def test_a_judgement_that_needs_two_clauses_together_is_synergy():
    exp = explain_text(TEXT, _designed(lambda a, b, c: a and c))
    assert exp["status"] == "ok" and exp["dominant"] == "synergistic"
    assert exp["shares"]["unique"] < 1e-12 and exp["shares"]["leak"] < 1e-12
    assert [c["role"] for c in exp["per_clause"]] == ["jointly", "none", "jointly"]
    assert exp["groups"][0]["kind"] == "synergistic" and exp["groups"][0]["clauses"] == [0, 2]
    # exact AND gate with independent clauses: R = I(T; one input) = 0.311 bits, S = 0.5 bits, H = 0.811 bits
    exact = explain_text(TEXT, _designed(lambda a, b, c: a and c), empty_judgement=0.9)
    h = -(0.25 * math.log2(0.25) + 0.75 * math.log2(0.75))
    assert exact["entropy_bits"] == pytest.approx(h)
    assert exact["shares"]["synergistic"] == pytest.approx(0.5 / h, abs=1e-9)
    assert exact["shares"]["redundant"] == pytest.approx(1 - 0.5 / h, abs=1e-9)


def test_an_xor_of_two_clauses_is_pure_synergy_with_the_empty_text():
    exp = explain_text(TEXT, _designed(lambda a, b, c: a != b), empty_judgement=0.9)
    assert exp["shares"]["synergistic"] == pytest.approx(1.0, abs=1e-12)
    assert [c["role"] for c in exp["per_clause"]] == ["jointly", "jointly", "none"]


def test_constant_judgement_has_a_documented_result_and_no_label():
    exp = explain_text(TEXT, _designed(lambda *p: False))
    json.dumps(exp, allow_nan=False)
    assert exp["status"] == "constant" and exp["shares"] is None and "H(judgement) = 0" in exp["reason"]
    assert len(exp["subsets"]) == 7 and {s["state"] for s in exp["subsets"]} == {2}
    assert surd_shares(TEXT, _designed(lambda *p: False)) is None
    single = explain_text("One clause only.", _designed(lambda *p: True))
    assert single["status"] == "single_clause" and single["shares"] is None


def test_fixed_bins_ignore_small_moves_and_range_bins_follow_them():
    def analyze(texts):  # clause 0 nudges the valence by 0.1, within the "neutral" third
        return [
            {"analysis": {"emotion": {"sentiment": 0.05 + (0.1 if CLAUSES[0] in t else 0.0)}}} for t in texts
        ]

    fixed = explain_text(TEXT, analyze, judgement="valence")
    assert fixed["status"] == "constant" and fixed["judgement"]["edges"] == pytest.approx(
        [-1, -1 / 3, 1 / 3, 1]
    )
    ranged = explain_text(TEXT, analyze, judgement="valence", binning="range")
    assert ranged["status"] == "ok" and [c["role"] for c in ranged["per_clause"]] == ["alone", "none", "none"]
    tiny = explain_text(TEXT, analyze, judgement="valence", binning="range", min_spread=0.2)
    assert tiny["status"] == "constant" and "min_spread" in tiny["reason"]


def test_custom_judgement_callable():
    exp = explain_text(
        TEXT, lambda texts: [len(t) for t in texts], judgement=float, value_range=(0, 120), bins=2
    )
    assert exp["status"] == "ok" and exp["judgement"]["name"] == "float"
    with pytest.raises(ValueError, match="needs value_range"):
        explain_text(TEXT, lambda texts: [len(t) for t in texts], judgement=float)


# --- labels for the neural SURD head --------------------------------------------------------------------


def test_surd_labels_batch_and_deduplicate():
    calls: list[int] = []
    texts = [TEXT, TEXT, "Single.", CLAUSES[0] + " " + CLAUSES[2]]
    labels, status = surd_labels(texts, _designed(lambda a, b, c: a, calls), batch_size=4)
    assert status == ["ok", "ok", "single_clause", "ok"]
    assert labels.shape == (4, 4) and labels.dtype == np.float32
    assert np.all(labels[2] == -100)
    np.testing.assert_allclose(labels[[0, 1, 3]].sum(axis=1), 1.0, atol=1e-6)
    assert labels[0][1] > 0.97  # [redundant, unique, synergistic, leak]
    assert max(calls) <= 4 and sum(calls) == 7  # the 3 subsets of the 2-clause text are among the 7 of TEXT
    assert surd_shares(TEXT, _designed(lambda a, b, c: a)) == pytest.approx(labels[0].tolist(), abs=1e-6)


def test_bad_inputs():
    with pytest.raises(ValueError, match="one result per text"):
        explain_text(TEXT, lambda texts: texts[:-1])
    with pytest.raises(ValueError, match="unknown judgement"):
        explain_text(TEXT, _designed(lambda *p: True), judgement="kindness")
    with pytest.raises(ValueError, match="has no 'integrated.ethical_score'"):
        explain_text(TEXT, lambda texts: [{} for _ in texts])
    with pytest.raises(ValueError, match="7 non-empty subsets"):
        explain_from_values(CLAUSES, [0.1, 0.2])
    with pytest.raises(ValueError, match="bins"):
        explain_text(TEXT, _designed(lambda *p: True), bins=1)
    with pytest.raises(TypeError):
        explain_text(None, _designed(lambda *p: True))
    given = explain_text("whatever", _designed(lambda a, b, c: b), clauses=CLAUSES)
    assert given["clause_source"] == "given" and [c["role"] for c in given["per_clause"]][1] == "alone"


# --- the real pipeline ----------------------------------------------------------------------------------


@pytest.mark.parametrize("text", ["친구와의 약속을 어기고 야근을 했지만 후회는 없다.", TEXT])
def test_explain_through_the_real_pipeline(tiny_pipeline, text):
    exp = explain_text(text, tiny_pipeline)  # the pipeline maps a list of texts to a list of results
    json.dumps(exp, allow_nan=False)
    assert exp["n_clauses"] == 3 and exp["n_subsets"] == 7 and len(exp["subsets"]) == 7
    assert exp["status"] in ("ok", "constant")  # random weights: the ethical score barely moves
    # the valence's own spread, cut into 3 states, always has something to decompose
    exp = explain_text(text, tiny_pipeline, judgement="valence", binning="range", min_spread=1e-9)
    assert exp["status"] == "ok" and sum(exp["shares"].values()) == pytest.approx(1.0)
    labels, status = surd_labels(
        [text, "짧다."], tiny_pipeline, judgement="valence", binning="range", min_spread=1e-9
    )
    assert status == ["ok", "single_clause"]
    np.testing.assert_allclose(
        labels[0], [exp["shares"][k] for k in ("redundant", "unique", "synergistic", "leak")], atol=1e-6
    )


def test_clause_count_is_the_planned_count_without_merging():
    texts = [
        "The dog barked.",
        "I lied, but it saved her feelings.",
        "I woke up early, and I made coffee, but the milk was sour, so I drank tea, and then I left.",
        " ".join(["오늘은 정말 행복한 하루였다, 그런데 부모님께 거짓말을 해서 마음이 무겁다."] * 40),
    ]
    for text in texts:
        for cap in (2, 6, 12):
            assert clause_count(text, cap) == plan_clauses(text, max_clauses=cap).n
    assert [clause_count(t) for t in texts] == [1, 2, 5, 6]
