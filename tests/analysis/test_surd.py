"""Exact SURD: known answers, invariants, input errors and the paper's energy-cascade signals."""

from __future__ import annotations

import importlib
import json
from itertools import permutations

import numpy as np
import pytest

from redheart.analysis import (
    ConstantTargetError,
    surd,
    surd_from_distribution,
    surd_from_samples,
)
from redheart.analysis.binning import discretize

ATOL = 1e-9


def _joint(fn, n_agents: int = 2) -> np.ndarray:
    """Exact p(t, a1, .., an) for uniform independent bits and a deterministic target t = fn(bits)."""
    p = np.zeros((2,) * (n_agents + 1))
    for bits in np.ndindex(*(2,) * n_agents):
        p[(fn(*bits), *bits)] += 1.0
    return p / p.sum()


def _entropy(p: np.ndarray) -> float:
    nz = p[p > 0]
    return float(-(nz * np.log2(nz)).sum())


def _random_distribution(rng: np.random.Generator, shape: tuple[int, ...]) -> np.ndarray:
    p = rng.random(shape) ** 3  # skewed, with near-empty cells
    return p / p.sum()


# --- known answers on exact distributions ------------------------------------------------------------


def test_duplicated_input_is_pure_redundancy():
    p = np.zeros((2, 2, 2))
    p[0, 0, 0] = p[1, 1, 1] = 0.5  # agents A0 = A1 = T: one bit, all of it shared
    res = surd_from_distribution(p)
    assert res.redundant[(0, 1)] == pytest.approx(1.0, abs=ATOL)
    assert res.unique_total == pytest.approx(0.0, abs=ATOL)
    assert res.synergistic_total == pytest.approx(0.0, abs=ATOL)
    assert res.shares()["redundant"] == pytest.approx(1.0, abs=ATOL)
    assert res.dominant() == "redundant"


def test_copy_of_one_agent_is_pure_unique():
    res = surd_from_distribution(_joint(lambda a, b: a))
    assert res.unique[(0,)] == pytest.approx(1.0, abs=ATOL)
    assert res.unique[(1,)] == pytest.approx(0.0, abs=ATOL)
    assert res.redundant_total == pytest.approx(0.0, abs=ATOL)
    assert res.synergistic_total == pytest.approx(0.0, abs=ATOL)
    assert res.leak == pytest.approx(0.0, abs=ATOL)


def test_copy_with_many_irrelevant_agents_is_not_synergy():
    # ties between the copied agent and every superset of it must resolve to the lower order
    res = surd_from_distribution(_joint(lambda a, b, c, d: b, 4))
    assert res.unique[(1,)] == pytest.approx(1.0, abs=ATOL)
    assert res.synergistic_total == pytest.approx(0.0, abs=ATOL)


def test_xor_is_pure_synergy():
    res = surd_from_distribution(_joint(lambda a, b: a ^ b))
    assert res.synergistic[(0, 1)] == pytest.approx(1.0, abs=ATOL)
    assert res.unique_total + res.redundant_total == pytest.approx(0.0, abs=ATOL)
    assert res.mutual_information[(0,)] == pytest.approx(0.0, abs=ATOL)
    assert res.mutual_information[(0, 1)] == pytest.approx(1.0, abs=ATOL)
    assert res.shares() == pytest.approx({"redundant": 0, "unique": 0, "synergistic": 1, "leak": 0}, abs=ATOL)


def test_known_answers_from_samples():
    rng = np.random.default_rng(0)
    a, b = rng.integers(0, 2, 20000), rng.integers(0, 2, 20000)
    agents = np.column_stack([a, b])
    assert surd_from_samples(a ^ b, agents).shares()["synergistic"] > 0.99
    assert surd_from_samples(a, agents).unique[(0,)] > 0.99
    assert surd_from_samples(a, np.column_stack([a, a])).shares()["redundant"] > 0.99


def test_independent_noise_leaks_almost_everything():
    rng = np.random.default_rng(1)
    n = 50000
    res = surd(rng.normal(size=n), rng.normal(size=(n, 2)), bins=4)
    assert res.leak > 0.99
    assert res.shares()["leak"] > 0.99


def test_lagged_driver_is_found_at_its_lag():
    rng = np.random.default_rng(2)
    n = 40000
    x, z = rng.normal(size=n), rng.normal(size=n)
    y = np.roll(x, 2) + 0.3 * rng.normal(size=n)  # y[t] follows x[t-2]
    at_lag2 = surd(y, np.column_stack([x, z]), lags=2, bins=6)
    at_lag1 = surd(y, np.column_stack([x, z]), lags=1, bins=6)
    assert at_lag2.unique[(0,)] > 0.5 * at_lag2.entropy_target
    assert at_lag1.unique[(0,)] < 0.1 * at_lag1.entropy_target
    assert at_lag2.lags == (2, 2)
    summary = at_lag2.agent_summary()
    assert summary[0].total > 10 * summary[1].total


def test_per_agent_lags():
    rng = np.random.default_rng(3)
    n = 40000
    x, z = rng.normal(size=n), rng.normal(size=n)
    y = np.roll(x, 3) + np.roll(z, 1) + 0.2 * rng.normal(size=n)  # x acts after 3 steps, z after 1
    matched = surd(y, [x, z], lags=[3, 1], bins=6)
    mismatched = surd(y, [x, z], lags=[3, 3], bins=6)
    assert matched.lags == (3, 1)
    assert matched.leak < 0.75 * mismatched.leak
    assert matched.mutual_information[(1,)] > 0.15 * matched.entropy_target
    assert mismatched.mutual_information[(1,)] < 0.01 * mismatched.entropy_target


# --- invariants ---------------------------------------------------------------------------------------


@pytest.mark.parametrize("seed", range(5))
def test_parts_sum_to_mutual_information_and_leak_is_conditional_entropy(seed):
    rng = np.random.default_rng(seed)
    shape = tuple(int(s) for s in rng.integers(2, 5, size=4))  # target + 3 agents
    p = _random_distribution(rng, shape)
    res = surd_from_distribution(p)
    parts = res.redundant_total + res.unique_total + res.synergistic_total
    h_t = _entropy(p.sum(axis=(1, 2, 3)))
    h_t_given_a = _entropy(p) - _entropy(p.sum(axis=0))
    assert res.entropy_target == pytest.approx(h_t, abs=ATOL)
    assert parts == pytest.approx(res.mutual_information[(0, 1, 2)], abs=1e-9)
    assert parts == pytest.approx(h_t - h_t_given_a, abs=1e-9)
    assert res.leak == pytest.approx(h_t_given_a / h_t, abs=1e-9)
    assert sum(res.shares().values()) == pytest.approx(1.0, abs=1e-12)
    assert sum(res.term_shares().values()) == pytest.approx(1.0, abs=1e-9)
    assert sum(s.total for s in res.agent_summary()) == pytest.approx(res.total_mi, abs=1e-9)
    assert min(res.shares().values()) >= 0


def test_invariant_to_agent_order():
    rng = np.random.default_rng(7)
    p = _random_distribution(rng, (3, 2, 3, 4))
    base = surd_from_distribution(p)
    for perm in permutations(range(3)):
        res = surd_from_distribution(np.transpose(p, (0, *(a + 1 for a in perm))))

        def back(key, perm=perm):  # agent k of the permuted array is agent perm[k] of the original
            return tuple(sorted(perm[k] for k in key))

        for terms, base_terms in (
            (res.redundant, base.redundant),
            (res.unique, base.unique),
            (res.synergistic, base.synergistic),
        ):
            assert {back(k): v for k, v in terms.items()} == pytest.approx(base_terms, abs=1e-12)


def test_series_invariant_to_agent_order():
    rng = np.random.default_rng(8)
    n = 5000
    a = rng.normal(size=(n, 3))
    y = np.roll(a[:, 0] + a[:, 1] * a[:, 2], 1)
    r1 = surd(y, a, bins=4, agent_names=["x", "y", "z"])
    r2 = surd(y, a[:, [2, 0, 1]], bins=4, agent_names=["z", "x", "y"])
    assert r2.term_shares()["U[x]"] == pytest.approx(r1.term_shares()["U[x]"], abs=1e-12)
    assert r2.term_shares()["S[z+x]"] == pytest.approx(r1.term_shares()["S[x+z]"], abs=1e-12)
    assert r2.shares() == pytest.approx(r1.shares(), abs=1e-12)


def test_max_order_caps_the_evaluated_subsets():
    rng = np.random.default_rng(3)
    n = 20000
    a = rng.integers(0, 2, size=(n, 5))
    t = a[:, 0] ^ a[:, 1] ^ a[:, 2]  # third-order synergy, invisible at order 2
    full = surd_from_samples(t, a)
    capped = surd_from_samples(t, a, max_order=2)
    assert not full.truncated and full.synergistic[(0, 1, 2)] > 0.95
    assert capped.truncated and capped.max_order == 2 and capped.notes
    assert max(len(k) for k in capped.synergistic) == 2
    assert max(len(k) for k in capped.mutual_information) == 2
    assert capped.leak > 0.95  # the information is out of reach at order 2: reported as leak
    assert sum(capped.shares().values()) == pytest.approx(1.0)


def test_large_agent_sets_use_per_subset_histograms(monkeypatch):
    surd_mod = importlib.import_module("redheart.analysis.surd")  # the module, not the function

    rng = np.random.default_rng(4)
    n = 4000
    a = rng.normal(size=(n, 4))
    y = np.roll(a[:, 1], 1) + 0.5 * rng.normal(size=n)
    in_one_piece = surd(y, a, bins=5, max_order=2)
    monkeypatch.setattr(surd_mod, "MAX_JOINT_CELLS", 10)
    per_subset = surd(y, a, bins=5, max_order=2)
    assert per_subset.term_shares() == pytest.approx(in_one_piece.term_shares(), abs=1e-12)
    with pytest.raises(ValueError, match="max_order"):
        surd(y, a, bins=5)  # full order and a joint histogram over the limit


def test_result_serialises_and_summarises():
    res = surd_from_distribution(_joint(lambda a, b: a & b), agent_names=["left", "right"])
    data = json.loads(json.dumps(res.to_dict()))
    assert data["agents"] == ["left", "right"]
    assert set(data["synergistic"]) == {"left+right"}
    assert data["units"] == "bits"
    assert [s.name for s in res.agent_summary()] == ["left", "right"]
    # AND is symmetric: both agents take the same part
    left, right = res.agent_summary()
    assert left.total == pytest.approx(right.total)


def test_quantile_binning_balances_states():
    x = np.random.default_rng(5).exponential(size=10000)
    eq_codes, n_eq = discretize(x, 5, "equal")
    q_codes, n_q = discretize(x, 5, "quantile")
    assert n_eq == n_q == 5
    assert np.bincount(q_codes).min() > 1900
    assert np.bincount(eq_codes).max() > 7000
    binary = np.r_[np.zeros(900), np.ones(100)]
    assert discretize(binary, 4, "quantile")[1] == 2  # tied edges merge, both states survive


# --- bad input ----------------------------------------------------------------------------------------


def test_constant_target_is_a_clear_error():
    rng = np.random.default_rng(6)
    with pytest.raises(ConstantTargetError, match="H\\(T\\) = 0"):
        surd(np.ones(500), rng.normal(size=(500, 2)), bins=3)
    p = np.zeros((2, 2, 2))
    p[0] = 0.25
    with pytest.raises(ConstantTargetError):
        surd_from_distribution(p)
    assert issubclass(ConstantTargetError, ValueError)


def test_too_few_samples_for_bins_names_the_numbers():
    rng = np.random.default_rng(9)
    with pytest.raises(ValueError, match=r"too few samples.*50 samples for 100 agent-state cells"):
        surd_from_samples(rng.normal(size=50), rng.normal(size=(50, 2)), bins=10)
    # the same data is fine with coarser bins, or when the guard is relaxed
    surd_from_samples(rng.normal(size=50), rng.normal(size=(50, 2)), bins=3)
    surd_from_samples(rng.normal(size=50), rng.normal(size=(50, 2)), bins=10, min_samples_per_cell=0)


@pytest.mark.parametrize(
    ("target", "agents", "kwargs", "match"),
    [
        (np.arange(10.0), np.ones((9, 2)), {}, "length mismatch"),
        (np.arange(10.0), np.ones((2, 10)), {}, "transpose"),
        (np.r_[np.nan, np.arange(9.0)], np.ones((10, 1)), {}, "target contains 1 NaN"),
        (
            np.arange(10.0),
            np.c_[np.ones(10), np.r_[np.inf, np.ones(9)]],
            {},
            "agents contains 0 NaN and 1 infinite",
        ),
        (np.arange(10.0), [np.ones(10), np.ones(9)], {}, "different lengths"),
        (np.arange(10.0), np.ones((10, 2)), {"lags": -1}, "non-negative"),
        (np.arange(10.0), np.ones((10, 2)), {"lags": [1, 2, 3]}, "one per agent"),
        (np.arange(10.0), np.ones((10, 2)), {"lags": 9}, "too short"),
        (np.arange(10.0), np.ones((10, 2)), {"binning": "log"}, "binning"),
        (np.arange(10.0), np.ones((10, 2)), {"bins": 0}, "bins"),
        (np.arange(10.0), np.ones((10, 2)), {"bins": [3, 3]}, "expected 3"),
        (np.arange(10.0), np.ones((10, 2)), {"max_order": 0}, "max_order"),
        (np.arange(10.0), np.ones((10, 2)), {"agent_names": ["a"]}, "agent_names"),
    ],
)
def test_bad_series_input(target, agents, kwargs, match):
    with pytest.raises(ValueError, match=match):
        surd(target, agents, **{"bins": 2, **kwargs})


def test_bad_distribution_input():
    with pytest.raises(ValueError, match="negative"):
        surd_from_distribution(np.array([[0.5, -0.1], [0.3, 0.3]]))
    with pytest.raises(ValueError, match="agent axis"):
        surd_from_distribution(np.array([0.5, 0.5]))
    with pytest.raises(ValueError, match="NaN"):
        surd_from_distribution(np.array([[0.5, np.nan], [0.3, 0.3]]))
    with pytest.raises(ValueError, match="sums to zero"):
        surd_from_distribution(np.zeros((2, 2)))


# --- the SURD paper's energy-cascade signals ----------------------------------------------------------


@pytest.fixture(scope="module")
def energy_cascade(data_dir) -> np.ndarray:
    path = data_dir / "surd_reference" / "energy_cascade_signals.mat"
    if not path.is_file():
        pytest.skip(f"energy-cascade signals not found at {path}")
    from scipy.io import loadmat

    x = loadmat(path)["X"]
    assert x.shape[0] == 4
    return x


@pytest.mark.data
def test_energy_cascade_decomposition(energy_cascade):
    """Qualitative agreement with the paper: the cascade runs from large to small scales.

    Σ1 (largest scale) is caused uniquely only by itself, and no smaller scale has unique causality on
    a larger one, while the next-larger scale drives Σ3 uniquely (forward cascade Σ2 → Σ3).
    """
    x = energy_cascade
    names = ["S1", "S2", "S3", "S4"]
    results = [surd(x[k], x.T, lags=10, bins=10, agent_names=names) for k in range(4)]
    for res in results:
        parts = res.redundant_total + res.unique_total + res.synergistic_total
        assert parts == pytest.approx(res.mutual_information[(0, 1, 2, 3)], abs=1e-9)
        assert sum(res.shares().values()) == pytest.approx(1.0)
        assert 0.0 < res.leak < 1.0
    target1 = results[0]
    unique1 = {k[0]: v / target1.entropy_target for k, v in target1.unique.items()}
    assert unique1[0] > 0.1
    assert max(unique1[1], unique1[2], unique1[3]) < 0.01
    for target, res in enumerate(results):
        for source in range(target + 1, 4):  # smaller scale -> larger scale: no unique causality
            assert res.unique[(source,)] / res.entropy_target < 0.01
    target3 = results[2]
    assert max(target3.unique, key=target3.unique.__getitem__) == (1,)
