"""Regions take only the parameters they use as inputs, and the converted model follows weights
edited after convert: read through .data, tied under two names, or spread over many layers."""

from __future__ import annotations

import pytest
import torch
import torch.nn as nn

import dycl_jax
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


class WritesWeight(nn.Module):
    """Writes its own weight through a view inside forward (weight clipping)."""

    def __init__(self) -> None:
        super().__init__()
        self.lin = nn.Linear(4, 4)

    def forward(self, x):
        with torch.no_grad():
            self.lin.weight.view(-1).mul_(0.5)
        h = self.lin(x)
        if h.sum() > 0:
            h = h * 2
        return h


class ScaleInLambda(nn.Module):
    """A parameter's value read inside a lambda (where forward is not split)."""

    def __init__(self) -> None:
        super().__init__()
        self.lin = nn.Linear(4, 4)
        self.scale = nn.Parameter(torch.tensor(2.0))

    def forward(self, x):
        f = lambda t: t * self.scale.item()  # noqa: E731
        h = f(self.lin(x))
        if h.sum() > 0:
            h = h + 1
        return h


def test_in_place_writes_to_parameters_are_refused_and_leave_the_model_alone() -> None:
    m = WritesWeight().eval()
    before = m.lin.weight.detach().clone()
    with pytest.raises(dycl_jax.DyclError, match="in-place write to module state"):
        dycl_jax.convert(m)(torch.ones(1, 4))
    torch.testing.assert_close(m.lin.weight.detach(), before)


def test_parameter_values_read_where_forward_is_not_split_never_go_stale() -> None:
    torch.manual_seed(0)
    m = ScaleInLambda().eval()
    cm = dycl_jax.convert(m)
    x = torch.ones(1, 4)
    try:
        assert_same(cm(x), m(x))
        with torch.no_grad():
            m.scale.fill_(-3.0)
        assert_same(cm(x), m(x))
    except dycl_jax.DyclError:
        pass  # refused (a value read dycl_jax cannot split there): never a stale result


# A layer the root registers that a child reads through a module-level global, not through
# its own attributes: the child's regions are traced with the child's parameters only, so the
# capture must notice the global layer's weight baked in and trace again with all of them.
_GLOBAL_LAYER = nn.Linear(4, 4)


class _ReadsGlobalLayer(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.lin = nn.Linear(4, 4)

    def forward(self, x):
        h = _GLOBAL_LAYER(self.lin(x))
        if h.sum() > 0:
            h = _GLOBAL_LAYER(h) * 2
        return h


class _Helper:
    """A plain object holding a layer (not a module: its parameters are not the child's)."""

    def __init__(self, layer: nn.Module) -> None:
        self.layer = layer

    def __call__(self, x):
        return self.layer(x)


class _ReadsThroughHelper(nn.Module):
    def __init__(self, layer: nn.Module) -> None:
        super().__init__()
        self.helper = _Helper(layer)
        self.lin = nn.Linear(4, 4)

    def forward(self, x):
        h = self.helper(self.lin(x))
        if h.sum() > 0:
            h = -h
        return h


class _Outer(nn.Module):
    def __init__(self, child: nn.Module, layer: nn.Module) -> None:
        super().__init__()
        self.child = child
        self.layer = layer  # registered here, so it is among the model's parameters

    def forward(self, x):
        h = self.child(x)
        if h.mean() > 0:
            h = h + 1
        return h


class _WritesGlobalLayer(nn.Module):
    def forward(self, x):
        with torch.no_grad():
            _GLOBAL_LAYER.weight.mul_(0.5)
        h = _GLOBAL_LAYER(x)
        if h.sum() > 0:
            h = h * 2
        return h


@pytest.mark.parametrize("how", ["global", "helper"])
def test_parameters_read_outside_the_regions_modules_are_inputs_too(how: str) -> None:
    torch.manual_seed(0)
    layer = _GLOBAL_LAYER if how == "global" else nn.Linear(4, 4)
    child = _ReadsGlobalLayer() if how == "global" else _ReadsThroughHelper(layer)
    m = _Outer(child, layer).eval()
    cm = dycl_jax.convert(m)
    xs = [torch.randn(1, 4) * s for s in (0.3, 1.0, 3.0, -3.0)]
    for x in xs:
        assert_same(cm(x), m(x))
    for r in _runners(cm):
        for e in r.cache.values():
            for n in e.captured.gm.graph.nodes:  # weights are inputs, never constants
                assert n.op != "get_attr", (r.name, n.target)
    with torch.no_grad():
        layer.weight.mul_(-2.0)  # in place: the converted model follows
    for x in xs:
        assert_same(cm(x), m(x))


def test_writes_to_a_parameter_read_through_a_global_are_refused_and_leave_it_alone() -> None:
    m = _Outer(_WritesGlobalLayer(), _GLOBAL_LAYER).eval()
    before = _GLOBAL_LAYER.weight.detach().clone()
    with pytest.raises(dycl_jax.DyclError, match="in-place write to module state"):
        dycl_jax.convert(m)(torch.ones(1, 4))
    torch.testing.assert_close(_GLOBAL_LAYER.weight.detach(), before)


class _DeviceOfGlobalLayer(nn.Module):
    """Reads only the device of a layer outside its own modules (the common
    ``next(m.parameters()).device`` idiom), then makes a tensor there."""

    def forward(self, x):
        h = x + torch.ones(4, device=next(_GLOBAL_LAYER.parameters()).device)
        h = h + torch.zeros(4, device=_GLOBAL_LAYER.weight.device)
        if h.sum() > 0:
            h = h * 2
        return h


def test_the_device_of_a_parameter_outside_the_regions_modules() -> None:
    m = _Outer(_DeviceOfGlobalLayer(), _GLOBAL_LAYER).eval()
    cm = dycl_jax.convert(m)
    for s in (-3.0, 3.0):
        x = torch.full((1, 4), s)
        assert_same(cm(x), m(x))


class _MetadataOfHeldLayer(nn.Module):
    """Reads only metadata of a layer held by a plain helper object (not one of its modules):
    its device, whether it is a meta tensor, its shape. The capture must see the real ones."""

    def __init__(self, layer: nn.Module) -> None:
        super().__init__()
        self.lin = nn.Linear(4, 4)
        self.helper = _Helper(layer)

    def forward(self, x):
        w = self.helper.layer.weight
        y = self.lin(x)
        if w.device.type == "cpu" and not w.is_meta and str(w.device) == "cpu":
            y = y + w.shape[0]
        if y.sum() > 0:
            y = -y
        return y


def test_metadata_of_a_parameter_outside_the_regions_modules_is_the_real_one() -> None:
    torch.manual_seed(0)
    layer = nn.Linear(4, 4)
    m = _Outer(_MetadataOfHeldLayer(layer), layer).eval()
    cm = dycl_jax.convert(m)
    for s in (-3.0, 3.0):
        x = torch.full((1, 4), s)
        with torch.no_grad():
            assert_same(cm(x), m(x))
