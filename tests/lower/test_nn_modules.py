"""End to end: eval-mode nn modules and functional ops, captured with the core-ATen recipe,
lowered, jitted, and compared with PyTorch. Covers what the per-op table cannot: the graphs the
decompositions really produce (e.g. 'same' padding, MHA, RNN layers, F.interpolate)."""

from __future__ import annotations

import jax
import numpy as np
import pytest
import torch
import torch.nn as nn
import torch.nn.functional as F
from torch.func import functionalize

from dycl_jax import lower
from dycl_jax.compat import core_aten_decompositions, make_fx, mkldnn_disabled, tree_leaves
from dycl_jax.errors import MissingLoweringError


def _run(fn, *inputs, rtol=1e-4, atol=1e-4):
    flat_fn = lambda *a: tuple(tree_leaves(fn(*a)))  # noqa: E731
    expected = flat_fn(*inputs)
    # mkldnn off: otherwise CPU LSTM decomposes to aten.mkldnn_rnn_layer instead of core ops
    with mkldnn_disabled():
        gm = make_fx(
            functionalize(flat_fn),
            decomposition_table=core_aten_decompositions(),
            tracing_mode="fake",
            record_stack_traces=True,
        )(*inputs)
    try:
        lower.check_supported(gm)
    except MissingLoweringError as e:  # another op family not lowered yet: not this test's subject
        pytest.skip(f"needs {e.overload}")
    with jax.enable_x64(True):
        got = jax.jit(lower.to_jax(gm))(*[t.numpy() for t in inputs])
    assert len(got) == len(expected)
    for g, e in zip(got, expected):
        np.testing.assert_allclose(np.asarray(g), e.detach().numpy(), rtol=rtol, atol=atol)


def _module(m, *inputs, **tol):
    m.eval()
    names = [k for k, _ in m.named_parameters()] + [k for k, _ in m.named_buffers()]
    state = [t.detach() for _, t in m.named_parameters()] + [t for _, t in m.named_buffers()]

    def fn(*args):
        with torch.no_grad():
            return torch.func.functional_call(
                m, dict(zip(names, args[: len(names)])), args[len(names) :]
            )

    _run(fn, *state, *inputs, **tol)


def _bn(m):
    m.running_mean.uniform_(-1, 1)
    m.running_var.uniform_(0.5, 2)
    return m


X4, X3 = torch.randn(2, 3, 16, 16), torch.randn(2, 3, 20)
MODULES = {
    "conv1d": lambda: (nn.Conv1d(3, 4, 3, stride=2, padding=1), X3),
    "conv1d_same_dil": lambda: (nn.Conv1d(3, 4, 4, padding="same", dilation=2), X3),
    "conv2d_groups": lambda: (nn.Conv2d(3, 6, 3, stride=2, padding=1, groups=3, bias=False), X4),
    "conv2d_same": lambda: (nn.Conv2d(3, 6, 4, padding="same"), X4),
    "convT2d": lambda: (nn.ConvTranspose2d(3, 4, 3, stride=2, padding=1, output_padding=1), X4),
    "linear": lambda: (nn.Linear(16, 5), X4),
    "bn2d": lambda: (_bn(nn.BatchNorm2d(3)), X4),
    "bn1d": lambda: (_bn(nn.BatchNorm1d(3)), X3),
    "layernorm": lambda: (nn.LayerNorm(16), X4),
    "groupnorm": lambda: (nn.GroupNorm(3, 3), X4),
    "embedding": lambda: (nn.Embedding(10, 4, padding_idx=0), torch.randint(0, 10, (2, 5))),
    "maxpool2d": lambda: (nn.MaxPool2d(3, 2, 1), X4),
    "maxpool2d_ceil": lambda: (nn.MaxPool2d(3, 2, ceil_mode=True), X4),
    "maxpool1d": lambda: (nn.MaxPool1d(3, 2), X3),
    "avgpool2d": lambda: (nn.AvgPool2d(3, 2, 1, ceil_mode=True, count_include_pad=False), X4),
    "avgpool1d": lambda: (nn.AvgPool1d(3, 2), X3),
    "adaptive_avg": lambda: (nn.AdaptiveAvgPool2d((5, 7)), X4),
    "adaptive_avg1": lambda: (nn.AdaptiveAvgPool2d(1), X4),
    "adaptive_max": lambda: (nn.AdaptiveMaxPool2d((5, 7)), X4),
    "dropout": lambda: (nn.Dropout(0.5), X4),
    "mha": lambda: (nn.MultiheadAttention(16, 4), *[torch.randn(5, 2, 16)] * 3),
    "encoder": lambda: (nn.TransformerEncoderLayer(16, 4, 32), torch.randn(5, 2, 16)),
    "encoder_bf_nf": lambda: (
        nn.TransformerEncoderLayer(16, 4, 32, batch_first=True, norm_first=True),
        torch.randn(2, 5, 16),
    ),
    "decoder": lambda: (
        nn.TransformerDecoderLayer(16, 4, 32),
        torch.randn(5, 2, 16),
        torch.randn(6, 2, 16),
    ),
    "rnn_cell": lambda: (nn.RNNCell(4, 6), torch.randn(3, 4)),
    "gru_cell": lambda: (nn.GRUCell(4, 6), torch.randn(3, 4)),
    "lstm_cell": lambda: (nn.LSTMCell(4, 6), torch.randn(3, 4)),
    "rnn": lambda: (nn.RNN(4, 6, num_layers=2), torch.randn(5, 3, 4)),
    "gru": lambda: (
        nn.GRU(4, 6, num_layers=2, batch_first=True, bidirectional=True),
        torch.randn(3, 5, 4),
    ),
    "lstm": lambda: (
        nn.LSTM(4, 6, num_layers=2, batch_first=True, bidirectional=True),
        torch.randn(3, 5, 4),
    ),
}


@pytest.mark.parametrize("name", sorted(MODULES))
def test_module(name: str) -> None:
    torch.manual_seed(0)
    m, *inputs = MODULES[name]()
    _module(m, *inputs)


FUNCTIONS = {
    "sdpa": lambda q, k, v: F.scaled_dot_product_attention(q, k, v),
    "sdpa_causal": lambda q, k, v: F.scaled_dot_product_attention(q, k, v, is_causal=True),
    "one_hot": lambda q, k, v: F.one_hot((q.abs() * 3).long().clamp(max=4), 5),
    "pad_constant": lambda q, k, v: F.pad(q, (1, 2, 3, -1), value=0.5),
    "pad_reflect": lambda q, k, v: F.pad(q, (1, 2, 3, 1), mode="reflect"),
    "pad_replicate": lambda q, k, v: F.pad(q, (1, 2, 3, 1), mode="replicate"),
    "interp_nearest": lambda q, k, v: F.interpolate(q, scale_factor=2, mode="nearest"),
    "interp_nearest_size": lambda q, k, v: F.interpolate(q, size=(7, 9), mode="nearest"),
    "interp_bilinear": lambda q, k, v: F.interpolate(q, size=(7, 9), mode="bilinear"),
    "interp_bilinear_ac": lambda q, k, v: F.interpolate(
        q, scale_factor=2, mode="bilinear", align_corners=True
    ),
    "views": lambda q, k, v: (
        q.view(2, 4, 40),
        q.reshape(8, -1),
        q.permute(0, 2, 3, 1).reshape(2, -1),
        q.transpose(1, 2),
        q[:, :1].expand(2, 5, 5, 8),
        q[:, :1].squeeze(1),
        q.unsqueeze(-1),
        q.flatten(1),
        q.mT,
        q[None, ..., None],
        q.unflatten(1, (2, 2)),
        q.movedim(1, -1),
    ),
    "cat_split": lambda q, k, v: (
        torch.cat([q, k], 1),
        torch.stack([q, k], 0),
        *q.split(3, 2),
        *q.chunk(2, 3),
        *q.split([1, 3], 1),
        *q.unbind(1),
    ),
    "slicing": lambda q, k, v: (
        q.narrow(2, 1, 3),
        q.select(1, 0),
        q[..., 1:-1:2],
        q[:, -1],
        q[:, 2:100],
        q.flip(1),
        q.roll(2, 3),
        q.repeat(1, 2, 1, 1),
        q.tril(),
        q.triu(1),
        q.diagonal(0, 2, 3),
    ),
    "gather_scatter": lambda q, k, v: (
        q.gather(3, (k.abs() * 3).long().clamp(max=7)),
        q.scatter(3, (k.abs() * 3).long().clamp(max=7)[..., :1], 1.0),
        q.scatter_add(3, (k.abs() * 3).long().clamp(max=7), v),
    ),
    "index": lambda q, k, v: (
        q[torch.tensor([1, -1])],
        q[:, torch.tensor([0, 2])],
        q[..., torch.tensor([[1], [3]])],
    ),
    "index_put": lambda q, k, v: _setitems(q.clone(), k),
    "masked_fill_where": lambda q, k, v: (q.masked_fill(k > 0, -1.0), torch.where(k > 0, q, v)),
}


def _setitems(y, k):
    y[:, torch.tensor([0, 2])] = 0.0
    y[1] = 2.0
    y[:, 1:3] += 1
    y[k > 0.5] = -3.0
    y[torch.tensor([0, 1, 0])] += 1.0
    return y


@pytest.mark.parametrize("name", sorted(FUNCTIONS))
def test_function(name: str) -> None:
    torch.manual_seed(0)
    q, k, v = torch.randn(2, 4, 5, 8), torch.randn(2, 4, 5, 8), torch.randn(2, 4, 5, 8)
    _run(FUNCTIONS[name], q, k, v)
