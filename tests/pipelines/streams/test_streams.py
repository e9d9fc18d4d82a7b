"""Stream analysis (``redheart.pipelines.streams``): smoothing, bands, periods and SURD on streams with known truth."""

from __future__ import annotations

import dataclasses
import datetime as dt
import json

import numpy as np
import pytest

from redheart.configuration_redheart.labels import CORE_LABELS, EKMAN_GROUPS, GOEMOTIONS_LABELS
from redheart.pipelines.streams import (
    DEFAULT_SIGNALS,
    StreamOptions,
    StreamReadings,
    analyze_readings,
    analyze_stream_results,
    check_stream_request,
    readings_from_results,
    stream_timestamps,
)


def _rmse(a, b) -> float:
    return float(np.sqrt(np.mean((np.asarray(a) - np.asarray(b)) ** 2)))


def _json_ok(out: dict) -> None:
    json.dumps(out, allow_nan=False)


def _result(valence: float, core: dict[str, float], regret: float) -> dict:
    """A per-item result shaped like the ethics-emotion pipeline's (only the keys streams read)."""
    labels = {label: 0.01 for label in GOEMOTIONS_LABELS}
    for group, p in core.items():
        labels[EKMAN_GROUPS[group][0]] = p
    return {
        "analysis": {
            "emotion": {
                "labels": labels,
                "kote": {f"k{i}": 0.1 for i in range(44)},
                "core": dict(core),
                "sentiment": valence,
            },
            "regret": {"potential": regret, "model_potential": regret, "source": "model"},
        },
        "integrated": {"overall_sentiment": valence},
    }


def _synthetic_results(seed: int, n: int = 300, noise: float = 0.25, drift: float = 0.02):
    """True trajectories: squashed random walks (0.8 tanh for valence, 0.15 + 0.7 sigmoid for probabilities)
    over irregular times; readings = truth + noise whose variance has the Bernoulli shape."""
    rng = np.random.default_rng(seed)
    t = np.cumsum(rng.exponential(1.0, n))
    gaps = np.diff(t, prepend=t[0])
    truth = {}
    for name in DEFAULT_SIGNALS:
        walk = rng.normal(0, 0.5) + np.cumsum(rng.normal(size=n) * np.sqrt(drift * gaps))
        truth[name] = 0.8 * np.tanh(walk) if name == "valence" else 0.15 + 0.7 / (1 + np.exp(-walk))
    results = []
    for k in range(n):
        read = {}
        for name, x in truth.items():
            sd = noise * np.sqrt(1 - x[k] ** 2 if name == "valence" else x[k] * (1 - x[k]))
            lo, hi = (-1.0, 1.0) if name == "valence" else (0.0, 1.0)
            read[name] = float(np.clip(x[k] + sd * rng.normal(), lo, hi))
        results.append(_result(read["valence"], {c: read[c] for c in CORE_LABELS}, read["regret"]))
    return t, truth, results


# --- smoothing ------------------------------------------------------------------------------------------


def test_smoothed_estimate_beats_the_raw_readings():
    t, truth, results = _synthetic_results(0)
    out = analyze_stream_results(results, t)
    _json_ok(out)
    assert out["n_items"] == len(results) and out["signals"] == list(DEFAULT_SIGNALS)
    ratios, coverages = [], []
    for name in DEFAULT_SIGNALS:
        raw = out["readings"][name]["value"]
        smooth = out["smoothed"][name]["mean"]
        assert out["readings"][name]["variance_source"] == "bernoulli"
        ratios.append(_rmse(smooth, truth[name]) / _rmse(raw, truth[name]))
        assert ratios[-1] < 0.7, name
        lo, hi = np.array(out["smoothed"][name]["lower"]), np.array(out["smoothed"][name]["upper"])
        assert np.all(lo <= smooth) and np.all(smooth <= hi)
        coverages.append(np.mean((truth[name] >= lo) & (truth[name] <= hi)))
    assert np.mean(ratios) < 0.6
    assert min(coverages) > 0.7 and np.mean(coverages) > 0.85  # nominal 95 %; the truth is not a random walk


def test_relative_variances_get_their_scale_by_maximum_likelihood():
    rng = np.random.default_rng(1)
    n, q = 400, 0.02
    t = np.cumsum(rng.exponential(1.0, n))
    gaps = np.diff(t, prepend=t[0])
    truth = np.cumsum(rng.normal(size=n) * np.sqrt(q * gaps))
    rel = rng.uniform(0.2, 2.0, n)  # the relative noise level of each reading
    y = truth + rng.normal(size=n) * np.sqrt(0.05 * rel)  # true variance = 0.05 * rel
    readings = StreamReadings.from_arrays(["x"], y[:, None], rel[:, None])
    out = analyze_readings(readings, t, run_surd=False, spectrum=False)
    noise = out["noise"]["x"]
    assert 0.05 / 1.6 < noise["obs_scale"] < 0.05 * 1.6
    assert q / 2 < noise["process_var"] < q * 2
    smooth = np.array(out["smoothed"]["x"]["mean"])
    assert _rmse(smooth, truth) < 0.6 * _rmse(y, truth)
    # fixed parameters are used as given
    fixed = analyze_readings(readings, t, process_var=q, obs_scale=0.05, run_surd=False, spectrum=False)
    assert fixed["noise"]["x"]["process_var"] == q and fixed["noise"]["x"]["obs_scale_source"] == "given"


def test_model_variances_by_the_delta_method():
    core = {c: 0.2 + 0.05 * i for i, c in enumerate(CORE_LABELS)}
    results = [_result(0.6, core, 0.3), _result(-0.2, core, 0.7), _result(0.0, core, 0.5)]
    n_emotion = 28 + 44 + 1
    unc = [{"emotion": np.full(n_emotion, 0.5), "regret": np.array([2.0, 1.0])} for _ in results]
    unc[1]["emotion"][-1] = 4.0
    r = readings_from_results(results, uncertainty=unc, temperatures={"emotion_logits": 2.0})
    assert set(r.variance_source) == {"model"}
    var = dict(zip(r.names, r.variances.T, strict=True))
    np.testing.assert_allclose(var["valence"], [(1 - 0.36) ** 2 * 0.5, (1 - 0.04) ** 2 * 4.0, 0.5])
    np.testing.assert_allclose(var["regret"], [(0.3 * 0.7) ** 2 * 2.0, (0.7 * 0.3) ** 2 * 2.0, 0.25**2 * 2.0])
    p = core["joy"]  # the group's arg-max member carries p; temperature 2 divides the slope
    np.testing.assert_allclose(var["joy"], (p * (1 - p) / 2.0) ** 2 * 0.5)
    # the pipeline's tensors are found too; one item without them -> Bernoulli for the whole stream
    with_tensors = [dict(res, tensors={"uncertainty": u}) for res, u in zip(results, unc, strict=True)]
    assert set(readings_from_results(with_tensors).variance_source) == {"model"}
    with_tensors[2].pop("tensors")
    fallback = readings_from_results(with_tensors)
    assert set(fallback.variance_source) == {"bernoulli"}
    np.testing.assert_allclose(fallback.variances[:, 0], [1 - 0.36, 1 - 0.04, 1.0])
    core_var = fallback.variances[:, fallback.index("joy")]
    np.testing.assert_allclose(core_var, core["joy"] * (1 - core["joy"]))


# --- irregular time -------------------------------------------------------------------------------------


def test_irregular_gaps_widen_the_band_and_loosen_the_state():
    rng = np.random.default_rng(2)
    y = np.r_[np.full(30, 0.2), np.full(31, 0.8)] + 0.02 * rng.normal(size=61)
    readings = StreamReadings.from_arrays(["joy"], y[:, None], np.full((61, 1), 0.01))
    regular = np.arange(61.0)
    silence = np.r_[np.arange(30.0), 229.0 + np.arange(31.0)]  # 200 time units between items 29 and 30
    runs = {
        name: analyze_readings(readings, t, process_var=1e-3, obs_scale=1.0, run_surd=False)["smoothed"][
            "joy"
        ]
        for name, t in (("regular", regular), ("silence", silence))
    }
    # the gap's process noise is added before the reading after it: that reading dominates its estimate
    assert runs["silence"]["filtered_variance"][30] > 2 * runs["regular"]["filtered_variance"][30]
    assert (
        abs(runs["silence"]["filtered_mean"][30] - y[30])
        < 0.1
        < abs(runs["regular"]["filtered_mean"][30] - y[30])
    )
    # and the smoothed band around the silence is wider than in the regular stream
    width = {k: np.array(r["upper"]) - np.array(r["lower"]) for k, r in runs.items()}
    assert (
        width["silence"][29] > 1.2 * width["regular"][29]
        and width["silence"][30] > 1.2 * width["regular"][30]
    )
    out = analyze_readings(readings, silence, process_var=1e-3, obs_scale=1.0, run_surd=False)
    assert out["time"]["gaps"]["max"] == 200.0 and out["time"]["unit"] == "given"


def test_datetime_timestamps_are_seconds_since_the_first():
    start = dt.datetime(2024, 3, 1, 9, 0, 0)
    offsets = np.cumsum(np.random.default_rng(3).exponential(3600.0, 20))
    stamps = [start + dt.timedelta(seconds=float(s)) for s in offsets]
    t, unit, origin = stream_timestamps(stamps, 20)
    assert unit == "second" and origin.startswith("2024-03-01T")
    np.testing.assert_allclose(t, offsets - offsets[0], atol=1e-5)
    t_iso, _, _ = stream_timestamps([s.isoformat() for s in stamps], 20)
    np.testing.assert_allclose(t_iso, t)
    t64, _, _ = stream_timestamps(np.array(stamps, dtype="datetime64[us]"), 20)
    np.testing.assert_allclose(t64, t)
    t_index, unit, _ = stream_timestamps(None, 5)
    assert unit == "item" and list(t_index) == [0, 1, 2, 3, 4]


# --- periodicity ----------------------------------------------------------------------------------------


@pytest.mark.parametrize("series", ["smoothed", "raw"])
def test_a_planted_period_is_found_on_irregular_times(series):
    rng = np.random.default_rng(4)
    n, period = 300, 12.0
    t = np.cumsum(rng.uniform(0.4, 1.6, n))
    truth = 0.5 + 0.3 * np.sin(2 * np.pi * t / period)
    y = np.clip(truth + 0.15 * rng.normal(size=n), 0, 1)
    flat = np.clip(0.3 + 0.15 * rng.normal(size=n), 0, 1)  # no period at all
    readings = StreamReadings.from_arrays(["sadness", "fear"], np.column_stack([y, flat]))
    out = analyze_readings(readings, t, spectrum_series=series, run_surd=False)
    spec = out["spectrum"]
    assert spec["status"] == "ok" and spec["series"] == series
    top = spec["periods"]["sadness"][0]
    assert abs(top["period"] - period) / period < 0.08
    assert spec["strongest"]["signal"] == "sadness"
    assert all(p["relative_power"] < top["relative_power"] for p in spec["periods"]["fear"])
    assert all(p["period"] <= spec["span"] / 2 for ps in spec["periods"].values() for p in ps)


def test_short_streams_explain_why_there_is_no_spectrum_or_surd():
    rng = np.random.default_rng(5)
    readings = StreamReadings.from_arrays(
        list(DEFAULT_SIGNALS), rng.uniform(0.1, 0.9, (6, len(DEFAULT_SIGNALS)))
    )
    out = analyze_readings(readings, np.arange(6.0))
    _json_ok(out)
    assert out["spectrum"]["status"] == "skipped" and "at least 8 items" in out["spectrum"]["reason"]
    assert out["surd"]["status"] == "skipped" and "too few items for SURD" in out["surd"]["reason"]
    assert len(out["smoothed"]["valence"]["mean"]) == 6
    # an explicit bin count that the stream cannot support: SURD's own explanation
    readings = StreamReadings.from_arrays(
        list(DEFAULT_SIGNALS), rng.uniform(0.1, 0.9, (40, len(DEFAULT_SIGNALS)))
    )
    out = analyze_readings(readings, surd_bins=6)
    assert out["surd"]["status"] == "skipped" and "too few samples for the bin count" in out["surd"]["reason"]


def test_constant_target_is_reported_not_raised():
    rng = np.random.default_rng(6)
    vals = rng.uniform(0.1, 0.9, (50, 3))
    vals[:, 2] = 0.4
    readings = StreamReadings.from_arrays(["valence", "sadness", "regret"], vals)
    out = analyze_readings(readings, surd_agents=["valence", "sadness"])
    assert out["surd"]["status"] == "skipped" and "constant" in out["surd"]["reason"]


# --- SURD over the stream -------------------------------------------------------------------------------


def test_surd_finds_the_signal_that_drives_next_step_regret():
    rng = np.random.default_rng(7)
    n = 400
    vals = rng.uniform(0.05, 0.95, (n, 4))  # valence (rescaled below), sadness, anger, regret
    vals[:, 0] = 2 * vals[:, 0] - 1
    vals[1:, 3] = np.clip(
        vals[:-1, 1] + 0.01 * rng.normal(size=n - 1), 0, 1
    )  # regret_{k+1} follows sadness_k
    readings = StreamReadings.from_arrays(["valence", "sadness", "anger", "regret"], vals)
    out = analyze_readings(readings, np.cumsum(rng.exponential(1.0, n)))
    _json_ok(out)
    s = out["surd"]
    assert s["status"] == "ok" and s["target"] == "regret" and s["agents"] == ["valence", "sadness", "anger"]
    assert s["lag"] == 1 and s["series"] == "raw" and s["bins"] == 4
    assert abs(sum(s["shares"].values()) - 1) < 1e-9
    summary = {a["agent"]: a for a in s["agent_summary"]}
    assert summary["sadness"]["unique"] > 0.8 * s["decomposition"]["total_mi"]
    assert summary["sadness"]["unique"] > 10 * max(summary["valence"]["unique"], summary["anger"]["unique"])
    assert s["dominant"] == "unique"
    # without regret among the signals the default target is valence
    out = analyze_readings(readings.select(["valence", "sadness", "anger"]))
    assert out["surd"]["target"] == "valence"


# --- bad input ------------------------------------------------------------------------------------------


def test_bad_input_raises_clear_errors():
    rng = np.random.default_rng(8)
    results = [_result(0.1, {c: 0.3 for c in CORE_LABELS}, 0.2) for _ in range(12)]
    with pytest.raises(ValueError, match="length mismatch: 12 items but 11 timestamps"):
        analyze_stream_results(results, list(range(11)))
    with pytest.raises(ValueError, match="strictly increasing"):
        analyze_stream_results(results, [0, 1, 2, 3, 3, 5, 6, 7, 8, 9, 10, 11])
    with pytest.raises(ValueError, match="strictly increasing"):
        analyze_stream_results(results, list(range(12))[::-1])
    with pytest.raises(ValueError, match="NaN or infinite"):
        analyze_stream_results(results, [0.0] * 11 + [np.nan])
    with pytest.raises(ValueError, match="at least 3 items"):
        analyze_stream_results(results[:2])
    with pytest.raises(ValueError, match="unknown signal"):
        analyze_stream_results(results, surd_agents=["valence", "guilt"])
    with pytest.raises(ValueError, match="surd_lag must be a positive integer"):
        analyze_stream_results(results, surd_lag=0)
    with pytest.raises(ValueError, match="leak the future"):
        analyze_stream_results(results, surd_series="smoothed")
    with pytest.raises(ValueError, match="error entry"):
        analyze_stream_results([*results[:3], {"error": {"type": "InputError", "message": "empty"}}])
    with pytest.raises(ValueError, match="no 'analysis.emotion.sentiment'"):
        bad = json.loads(json.dumps(results))
        del bad[4]["analysis"]["emotion"]["sentiment"]
        analyze_stream_results(bad)
    with pytest.raises(ValueError, match="non-finite"):
        StreamReadings.from_arrays(["joy"], np.r_[rng.uniform(size=5), np.nan][:, None])
    with pytest.raises(ValueError, match="dates/times"):
        stream_timestamps(["yesterday", "today"], 2)
    # short streams work when the noise parameters are given
    out = analyze_stream_results(results[:2], process_var=0.01, obs_scale=1.0)
    assert out["n_items"] == 2 and out["spectrum"]["status"] == "skipped"


def test_a_request_can_be_checked_before_the_model_runs():
    check_stream_request(12, list(range(12)), surd_agents=["valence", "fear"], surd_lag=2)
    with pytest.raises(ValueError, match="length mismatch"):
        check_stream_request(12, list(range(10)))
    with pytest.raises(ValueError, match="strictly increasing"):
        check_stream_request(3, [2.0, 1.0, 3.0])
    with pytest.raises(ValueError, match="unknown signal 'guilt'"):
        check_stream_request(12, surd_target="guilt")
    with pytest.raises(ValueError, match="at least 3 items"):
        check_stream_request(2)
    with pytest.raises(TypeError, match="unknown stream analysis options"):
        check_stream_request(12, surd_lags=2)


def test_options_are_one_validated_dataclass():
    t, _, results = _synthetic_results(5, n=40)
    options = StreamOptions(surd_lag=2, surd_agents=("valence", "anger"), spectrum=False)
    assert analyze_stream_results(results, t, options) == analyze_stream_results(
        results, t, surd_lag=2, surd_agents=("valence", "anger"), spectrum=False
    )
    # keywords override the options object; the object itself cannot change
    out = analyze_stream_results(results, t, options, run_surd=False)
    assert out["surd"]["reason"] == "run_surd=False" and out["spectrum"]["reason"] == "spectrum=False"
    with pytest.raises(dataclasses.FrozenInstanceError):
        options.surd_lag = 3  # type: ignore[misc]
    assert StreamOptions.parse({"band_z": 2.0}, top_periods=1) == StreamOptions(band_z=2.0, top_periods=1)
    for bad, match in [
        ({"band_z": 0}, "band_z must be a positive number"),
        ({"spectrum_series": "filtered"}, "spectrum_series"),
        ({"surd_series": "smoothed"}, "leak the future"),
        ({"top_periods": 0}, "top_periods"),
        ({"min_relative_power": 2.0}, r"min_relative_power must be in \[0, 1\]"),
    ]:
        with pytest.raises(ValueError, match=match):
            StreamOptions(**bad)
    with pytest.raises(TypeError, match="unknown stream analysis options"):
        StreamOptions.parse(surd_lags=2)
    # what depends on the stream is checked against it
    resolved = StreamOptions(process_var={n: 0.1 for n in DEFAULT_SIGNALS}).resolve(DEFAULT_SIGNALS, 12)
    assert resolved.surd_target == "regret" and resolved.surd_agents == ("valence", "sadness", "anger")
    assert resolved.process_var.tolist() == [0.1] * len(DEFAULT_SIGNALS) and resolved.obs_scale is None
    assert StreamOptions().resolve(("valence", "joy"), 12).surd_target == "valence"
    with pytest.raises(ValueError, match="surd_bins must be 'auto' or an integer >= 2"):
        StreamOptions(surd_bins=1).resolve(DEFAULT_SIGNALS, 12)
    StreamOptions(surd_bins=1, run_surd=False).resolve(DEFAULT_SIGNALS, 12)  # SURD options unused


# --- the real pipeline ----------------------------------------------------------------------------------


DIARY = [
    "오늘은 친구를 만나서 정말 기뻤다.",
    "I missed the deadline and my boss was angry.",
    "시험에 떨어져서 슬프다.",
    "We went for a walk because the weather was nice.",
    "부모님께 거짓말을 해서 마음이 무겁다.",
    "I helped a stranger and felt proud.",
    "회사에서 억울한 일을 당했지만 참았다.",
    "The movie was fun!",
    "동생이 도와줘서 고마웠다.",
    "I broke my promise to a friend and worked late.",
    "날씨가 좋아서 산책을 했다.",
    "I am not sure the decision was right.",
]


def test_stream_through_the_real_pipeline(tiny_pipeline):
    timestamps = [0.0, 1.0, 1.5, 4.0, 4.2, 9.0, 10.0, 10.5, 13.0, 20.0, 21.0, 22.5]
    stream = getattr(tiny_pipeline, "analyze_stream", None)
    try:
        out = stream(DIARY, timestamps)
    except NotImplementedError:  # the pipeline method is still the seam: run what it will wrap
        out = analyze_stream_results(tiny_pipeline(DIARY, return_tensors=True), timestamps)
    _json_ok(out)
    assert out["n_items"] == len(DIARY) and out["signals"] == list(DEFAULT_SIGNALS)
    for name in DEFAULT_SIGNALS:
        sm = out["smoothed"][name]
        assert len(sm["mean"]) == len(DIARY)
        assert all(lo <= m <= hi for lo, m, hi in zip(sm["lower"], sm["mean"], sm["upper"], strict=True))
    assert out["spectrum"]["status"] in ("ok", "skipped")
    assert out["surd"]["status"] in ("ok", "skipped") and out["surd"]["target"] == "regret"
    if out["surd"]["status"] == "skipped":
        assert out["surd"]["reason"]
