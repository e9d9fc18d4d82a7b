"""The absorbed attention forms (analyzer cross-attention, task pooling) equal the projected forms they replace."""

from __future__ import annotations

import pytest
import torch
from torch import nn

from redheart.configuration_redheart import RedHeartConfig
from redheart.modeling_redheart.attention import RedHeartAttention
from redheart.modeling_redheart.backbone import TaskAttentionPooling


def _randomise(module: nn.Module, seed: int) -> None:
    gen = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for param in module.parameters():  # biases too: the absorbed forms must carry them exactly
            param.copy_(torch.randn(param.shape, generator=gen) * 0.3)


def _grads(module: nn.Module) -> dict[str, torch.Tensor]:
    return {name: p.grad.clone() for name, p in module.named_parameters()}


@pytest.mark.parametrize("attn", ["sdpa", "eager"])
def test_absorbed_cross_attention_equals_projected(attn):
    config = RedHeartConfig.from_preset("tiny")
    config._attn_implementation = attn
    module = RedHeartAttention(config, hidden_size=32, num_heads=4, dropout=0.0).train()
    _randomise(module, 0)
    gen = torch.Generator().manual_seed(1)
    queries = torch.randn(3, 2, 32, generator=gen, requires_grad=True)
    context = torch.randn(3, 19, 32, generator=gen, requires_grad=True)
    mask = torch.ones(3, 19, dtype=torch.bool)
    mask[1, 11:] = False
    mask[2, :5] = False
    assert queries.shape[1] < module.head_dim  # forward() takes the absorbed form here

    results = {}
    for name, fn in (("absorbed", module.forward), ("projected", module.projected_attention)):
        module.zero_grad()
        queries.grad = context.grad = None
        out = fn(queries, context, mask)
        (out * torch.linspace(-1, 1, out.numel()).view_as(out)).sum().backward()
        results[name] = (out.detach(), _grads(module), queries.grad.clone(), context.grad.clone())
    (a_out, a_grads, a_gq, a_gc), (p_out, p_grads, p_gq, p_gc) = results["absorbed"], results["projected"]
    torch.testing.assert_close(a_out, p_out, atol=1e-5, rtol=1e-4)
    torch.testing.assert_close(a_gq, p_gq, atol=1e-5, rtol=1e-4)
    torch.testing.assert_close(a_gc, p_gc, atol=1e-5, rtol=1e-4)
    for name in p_grads:
        torch.testing.assert_close(a_grads[name], p_grads[name], atol=1e-4, rtol=1e-4, msg=name)


def test_task_pooling_equals_projected_keys_and_values():
    pooling = TaskAttentionPooling(hidden_size=16, num_tasks=4, eps=1e-12)
    _randomise(pooling, 2)
    gen = torch.Generator().manual_seed(3)
    tokens = torch.randn(2, 9, 16, generator=gen)
    mask = torch.ones(2, 9, dtype=torch.bool)
    mask[0, 6:] = False
    # the projected form: every token mapped to num_tasks keys and values
    keys = pooling.key(tokens).view(2, 9, 4, 16)
    values = pooling.value(tokens).view(2, 9, 4, 16)
    scores = torch.einsum("td,bltd->btl", pooling.queries, keys) * 16**-0.5
    weights = scores.masked_fill(~mask[:, None, :], torch.finfo(scores.dtype).min).softmax(dim=-1)
    expected = pooling.norm(torch.einsum("btl,bltd->btd", weights, values))
    torch.testing.assert_close(pooling(tokens, mask), expected, atol=1e-5, rtol=1e-4)


def test_absorbed_form_runs_in_bfloat16():
    config = RedHeartConfig.from_preset("tiny")
    module = RedHeartAttention(config, hidden_size=32, num_heads=4, dropout=0.0).eval()
    _randomise(module, 4)
    queries, context = torch.randn(2, 2, 32), torch.randn(2, 40, 32)
    reference = module(queries, context, None)
    low = module.to(torch.bfloat16)(queries.bfloat16(), context.bfloat16(), None)
    assert low.dtype == torch.bfloat16
    torch.testing.assert_close(low.float(), reference, atol=0.1, rtol=0.05)
