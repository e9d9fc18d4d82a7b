"""RedHeartModel: outputs, masked losses, routing, gradients, switches and bad input."""

from __future__ import annotations

import copy

import pytest
import torch

from redheart.configuration_redheart import RedHeartConfig
from redheart.modeling_redheart import RedHeartModel

from conftest import make_inputs, make_labels


def test_outputs_cover_the_design_table(tiny_model, tiny_config):
    out = tiny_model(**make_inputs(tiny_config))
    b = 4
    assert out.emotion_probs.shape == (b, 28) and out.kote_probs.shape == (b, 44)
    assert out.emotion_core.shape == (b, 7) and out.emotion_cultural.shape == (b, 3)
    assert out.bentham_elements.shape == (b, 10) and out.acceptability_probs.shape == (b, 4)
    for probs in (
        out.emotion_probs,
        out.kote_probs,
        out.emotion_core,
        out.emotion_cultural,
        out.bentham_elements,
        out.acceptability_probs,
        out.regret_potential,
        out.confidence,
        out.surd_shares,
    ):
        assert ((probs >= 0) & (probs <= 1)).all()
    assert ((out.sentiment >= -1) & (out.sentiment <= 1)).all()
    torch.testing.assert_close(out.surd_shares.sum(-1), torch.ones(b))
    assert out.loss is None and out.task_losses is None
    assert out.parts == ("fusion", "backbone", "heads", "dsp", "analyzers", "kalman", "utility")
    # core groups are the documented max over member probabilities
    joy = [tiny_config.emotion_labels.index(n) for n in ("joy", "amusement", "love", "caring")]
    assert (out.emotion_core[:, 3] >= out.emotion_probs[:, joy].amax(-1) - 1e-6).all()


def test_utility_is_the_documented_hedonic_sum(tiny_model, tiny_config):
    out = tiny_model(**make_inputs(tiny_config))
    signs = torch.tensor(tiny_config.bentham_signs)
    torch.testing.assert_close(out.utility, (signs * out.bentham_weights * out.bentham_elements).sum(-1))


def test_any_subset_of_encoders(tiny_model, tiny_config):
    only_b = make_inputs(tiny_config, encoders=["enc_b"], lengths=(6,))
    out = tiny_model(**only_b)
    assert out.emotion_probs.shape == (4, 28)
    both = tiny_model(**make_inputs(tiny_config))
    assert not torch.allclose(out.emotion_probs, both.emotion_probs)


def test_masked_losses_skip_missing_tasks(tiny_model, tiny_config):
    inputs = make_inputs(tiny_config)
    labels = make_labels(tiny_config)
    out = tiny_model(**inputs, **labels)
    assert {
        "emotion",
        "kote",
        "sentiment",
        "utility",
        "acceptability",
        "regret",
        "surd",
        "confidence",
    } <= set(out.task_losses)
    assert torch.isfinite(out.loss)
    only_emotion = {"emotion_labels": labels["emotion_labels"]}
    out = tiny_model(**inputs, **only_emotion)
    assert set(out.task_losses) == {"emotion", "confidence", "bentham_range", "load_balancing"}
    all_missing = {"regret_labels": torch.full((4,), -100.0)}
    out = tiny_model(**inputs, **all_missing)
    assert "regret" not in out.task_losses


def test_missing_rows_do_not_change_the_loss(tiny_model, tiny_config):
    """A row marked -100 contributes nothing: changing its (ignored) inputs' label row leaves the loss as is."""
    inputs = make_inputs(tiny_config)
    labels = {"emotion_labels": make_labels(tiny_config)["emotion_labels"]}
    a = tiny_model(**inputs, **labels).task_losses["emotion"]
    partial = labels["emotion_labels"].clone()
    partial[1] = -100
    b = tiny_model(**inputs, emotion_labels=partial).task_losses["emotion"]
    assert not torch.isclose(a, b)
    rows = labels["emotion_labels"][2:].clone()
    sub = {k: {n: v[2:] for n, v in d.items()} if isinstance(d, dict) else d[2:] for k, d in inputs.items()}
    sub["modality_features"] = {k: v[2:] for k, v in inputs["modality_features"].items()}
    c = tiny_model(**sub, emotion_labels=rows).task_losses["emotion"]
    ref = labels["emotion_labels"].clone()
    ref[:2] = -100
    d = tiny_model(**inputs, emotion_labels=ref).task_losses["emotion"]
    torch.testing.assert_close(c, d)


def test_every_parameter_gets_a_gradient(tiny_config):
    torch.manual_seed(0)
    model = RedHeartModel(tiny_config).train()
    out = model(**make_inputs(tiny_config, batch=16), **make_labels(tiny_config, batch=16))
    out.loss.backward()
    missing = [n for n, p in model.named_parameters() if p.grad is None or not p.grad.abs().sum() > 0]
    assert missing == []


def test_routing_spreads_over_experts_after_training(tiny_config):
    torch.manual_seed(0)
    model = RedHeartModel(tiny_config).train()
    optimiser = torch.optim.AdamW(model.parameters(), lr=3e-3)
    inputs, labels = make_inputs(tiny_config, batch=32), make_labels(tiny_config, batch=32)
    for _ in range(15):
        optimiser.zero_grad()
        model(**inputs, **labels).loss.backward()
        optimiser.step()
    model.eval()
    load = model(**make_inputs(tiny_config, batch=64, seed=5)).expert_load
    assert (load > 0).all(), f"an expert received no example: {load.tolist()}"
    assert load.max() < 0.75, f"routing collapsed onto one expert: {load.tolist()}"


def test_optimisation_lowers_the_loss(tiny_config):
    torch.manual_seed(0)
    model = RedHeartModel(tiny_config).train()
    optimiser = torch.optim.AdamW(model.parameters(), lr=1e-3)
    inputs, labels = make_inputs(tiny_config, batch=8), make_labels(tiny_config, batch=8)
    losses = []
    for _ in range(20):
        optimiser.zero_grad()
        loss = model(**inputs, **labels).loss
        loss.backward()
        optimiser.step()
        losses.append(loss.item())
    assert losses[-1] < losses[0] - 0.1, losses


@pytest.mark.parametrize(
    ("switches", "parts"),
    [
        ({"use_analyzers": False}, ("fusion", "backbone", "heads", "utility")),
        ({"use_heads": False}, ("fusion", "backbone", "dsp", "analyzers", "utility")),
        ({"use_auxiliary": False}, ("fusion", "backbone", "heads", "analyzers")),
    ],
)
def test_parts_can_be_switched_off(switches, parts):
    config = RedHeartConfig.from_preset("tiny", **switches)
    model = RedHeartModel(config).eval()
    modality = config.use_auxiliary and config.use_analyzers
    out = model(**make_inputs(config, modality=modality), **make_labels(config))
    assert out.parts == parts
    assert torch.isfinite(out.loss)
    assert (out.confidence is None) == (not config.use_auxiliary)


def _bad(config, mutate):
    inputs = make_inputs(config)
    mutate(inputs)
    return inputs


BAD_INPUTS = [
    (lambda x: x["encoder_hidden_states"].update(nope=torch.zeros(4, 3, 8)), "unknown encoder"),
    (lambda x: x["encoder_hidden_states"].update(enc_a=torch.zeros(4, 7, 99)), "enc_a"),
    (lambda x: x["encoder_hidden_states"].update(enc_a=torch.zeros(7, 24)), "enc_a"),
    (lambda x: x["encoder_attention_mask"].update(enc_a=torch.ones(4, 6)), "encoder_attention_mask"),
    (lambda x: x["encoder_attention_mask"].pop("enc_b"), "enc_b"),
    (lambda x: x["encoder_hidden_states"]["enc_a"].__setitem__((0, 0, 0), float("nan")), "NaN"),
    (lambda x: x["encoder_hidden_states"]["enc_b"].__setitem__((1, 0, 0), float("inf")), "NaN or inf"),
    (
        lambda x: x["encoder_attention_mask"].update(enc_a=torch.zeros(4, 7), enc_b=torch.zeros(4, 5)),
        "no unmasked",
    ),
    (lambda x: x["modality_features"].update(audio=torch.zeros(4, 10, 3)), "audio"),
    (lambda x: x["modality_features"].update(biosignals=torch.full((4, 16), float("nan"))), "biosignals"),
    (lambda x: x["modality_features"].update(video=torch.zeros(4, 1)), "unknown keys"),
    (lambda x: x.update(language_ids=torch.tensor([0, 1, 2, 7])), "language_ids"),
    (lambda x: x["encoder_hidden_states"].update(enc_b=torch.zeros(3, 5, 16)), "batch"),
]


@pytest.mark.parametrize(("mutate", "message"), BAD_INPUTS)
def test_bad_inputs_raise_clear_errors(tiny_model, tiny_config, mutate, message):
    reference = tiny_model(**make_inputs(tiny_config)).emotion_probs
    state = copy.deepcopy(tiny_model.state_dict())
    with pytest.raises((ValueError, TypeError), match=message):
        tiny_model(**_bad(tiny_config, mutate))
    assert all(torch.equal(state[k], v) for k, v in tiny_model.state_dict().items())
    torch.testing.assert_close(tiny_model(**make_inputs(tiny_config)).emotion_probs, reference)


BAD_LABELS = [
    ({"emotion_labels": torch.full((4, 28), 2.0)}, "emotion_labels"),
    ({"emotion_labels": torch.full((4, 28), 0.5)}, r"emotion_labels has values outside \{0, 1\}"),
    ({"acceptability_labels": torch.full((4, 4), 1.5)}, r"acceptability_labels has values outside \[0, 1\]"),
    ({"emotion_labels": torch.zeros(4, 27)}, "shape"),
    ({"sentiment_labels": torch.tensor([0.0, 3.0, 0.0, 0.0])}, "sentiment_labels"),
    ({"regret_labels": torch.tensor([0.0, float("nan"), 0.0, 0.0])}, "NaN"),
    ({"surd_labels": torch.full((4, 4), 0.5)}, "sum to 1"),
    ({"utility_pairs": torch.tensor([[0, 9]])}, "utility_pairs"),
    ({"utility_pairs": torch.tensor([[1, 1]])}, "different"),
    ({"kote_labels": torch.cat([torch.full((4, 1), -100.0), torch.zeros(4, 43)], dim=1)}, "partly"),
]


@pytest.mark.parametrize(("labels", "message"), BAD_LABELS)
def test_bad_labels_raise_clear_errors(tiny_model, tiny_config, labels, message):
    with pytest.raises(ValueError, match=message):
        tiny_model(**make_inputs(tiny_config), **labels)


def test_soft_acceptability_targets_are_the_bce_of_their_probability(tiny_model, tiny_config):
    """A distilled set's acceptability target is a teacher's probability: its loss is the BCE against it."""
    soft = torch.full((4, 4), -100.0)
    soft[:, 1] = torch.tensor([0.25, 0.5, 0.75, 0.9])
    out = tiny_model(**make_inputs(tiny_config), acceptability_labels=soft)
    p = out.acceptability_probs[:, 1].double()
    expected = -(soft[:, 1] * p.log() + (1 - soft[:, 1]) * (1 - p).log()).mean().float()
    torch.testing.assert_close(out.task_losses["acceptability"], expected, rtol=1e-4, atol=1e-5)


def test_too_many_tokens_is_rejected(tiny_model, tiny_config):
    inputs = make_inputs(tiny_config, lengths=(400, 200))
    with pytest.raises(ValueError, match="max_fused_tokens"):
        tiny_model(**inputs)


def test_bf16_autocast_training_step(tiny_config):
    """Mixed-precision training (``train.mixed_precision: bf16``) runs forward and backward with finite values."""
    torch.manual_seed(0)
    model = RedHeartModel(tiny_config).train()
    with torch.autocast("cpu", dtype=torch.bfloat16):
        output = model(**make_inputs(tiny_config), **make_labels(tiny_config))
    output.loss.backward()
    assert torch.isfinite(output.loss)
    assert all(torch.isfinite(p.grad).all() for p in model.parameters() if p.grad is not None)
