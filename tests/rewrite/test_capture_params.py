"""Capture reads parameters as they are and lifts only those a region uses to graph inputs;
where that could not be exact (a parameter's memory reached without the parameter, an in-place
write, weights tied under two names) it traces every parameter as an input instead. Either way
the converted model follows weights edited after convert."""

from __future__ import annotations

import torch
import torch.nn as nn

import dycl_jax
from dycl_jax.capture.trace import _lift_params
from dycl_jax.compat import make_fx
from dycl_jax.testing import assert_same


class Wide(nn.Module):
    """Twenty layers; each region uses one or two of them."""

    def __init__(self) -> None:
        super().__init__()
        self.layers = nn.ModuleList(nn.Linear(4, 4) for _ in range(20))
        self.norm = nn.LayerNorm(4)

    def forward(self, x):
        for i, layer in enumerate(self.layers):
            x = torch.tanh(layer(x))
            if x.sum() > 2.0:
                return self.norm(x), i
        return x, -1


class DataAlias(nn.Module):
    """Reads a weight through .data (the same memory, another tensor object)."""

    def __init__(self) -> None:
        super().__init__()
        self.lin = nn.Linear(4, 4)
        self.other = nn.Linear(4, 4)

    def forward(self, x):
        w = self.lin.weight.data
        h = x @ w.t() + self.lin.bias
        if h.sum() > 0:
            h = self.other(h)
        return h


class Tied(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.a = nn.Linear(4, 4)
        self.b = nn.Linear(4, 4)
        self.b.weight = self.a.weight

    def forward(self, x):
        h = self.a(x)
        if h.sum() > 0:
            h = self.b(h)
        return h


def _runners(cm: dycl_jax.ConvertedModel) -> list:
    return [r for p in cm.session.programs.values() for r in p.runners]


def test_regions_take_only_the_parameters_they_use() -> None:
    torch.manual_seed(0)
    m = Wide().eval()
    cm = dycl_jax.convert(m)
    for s in (0.1, 1.0, 5.0):
        x = torch.full((1, 4), s)
        assert_same(cm(x), m(x))
    for r in _runners(cm):
        for e in r.cache.values():
            assert len(e.captured.param_names) <= 2, e.captured.param_names  # one layer's


def test_lifting_declines_what_it_cannot_do_exactly() -> None:
    lin = nn.Linear(4, 4)
    names = ("weight", "bias")
    values = (lin.weight.detach(), lin.bias.detach())

    def graph(f):
        return make_fx(f, tracing_mode="fake", allow_non_fake_inputs=True)(torch.ones(1, 4))

    lifted = graph(lambda x: x @ values[0].t() + values[1])
    assert _lift_params(lifted, names, values) == ("weight", "bias")
    assert [n.op for n in lifted.graph.nodes][:3] == ["placeholder"] * 3
    view = values[0][0]  # made before tracing: the parameter's memory, another tensor object
    alias = graph(lambda x: x * view)
    assert _lift_params(alias, names, values) is None
    data = graph(lambda x: x @ values[0].data.t())  # .data inside the trace is an op on it
    assert _lift_params(data, names, values) == ("weight",)
    written = graph(lambda x: values[1].add_(1.0) + x)
    assert _lift_params(written, names, values) is None


def test_weights_edited_after_convert_are_followed() -> None:
    for cls in (Wide, DataAlias, Tied):
        torch.manual_seed(0)
        m = cls().eval()
        cm = dycl_jax.convert(m)
        xs = [torch.randn(1, 4) * s for s in (0.3, 1.0, 3.0)]
        for x in xs:
            assert_same(cm(x), m(x))
        with torch.no_grad():
            for p in m.parameters():
                p.mul_(-1.5)  # in place: the converted model sees the new version
        for x in xs:
            assert_same(cm(x), m(x))


def test_gradients_through_apply_match_torch_with_tied_weights() -> None:
    import jax
    import numpy as np

    torch.manual_seed(0)
    m = Tied().eval()
    cm = dycl_jax.convert(m)
    x = torch.ones(1, 4)

    def loss(params):
        return cm.apply(params, x).sum()

    grads = jax.grad(loss)(cm.params)
    m.zero_grad()
    m(x).sum().backward()
    # tied: torch accumulates both uses into one tensor; dycl_jax gives each name its share
    got = np.asarray(grads["a.weight"]) + np.asarray(grads.get("b.weight", 0.0))
    np.testing.assert_allclose(got, m.a.weight.grad.numpy(), rtol=1e-5, atol=1e-6)
