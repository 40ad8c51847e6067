"""The model's structure changed after convert: a parameter-free layer swapped into or appended to
an ``nn.Sequential`` / ``nn.ModuleList``, and an attribute that was absent at capture
(``hasattr(self, "bias_shift")``) set later. Neither is an attribute read any capture recorded
a value for; both must be followed as eager PyTorch follows them."""

from __future__ import annotations

import torch
import torch.nn as nn

import dycl_jax
from dycl_jax.testing import assert_same


def _xs() -> list[torch.Tensor]:
    g = torch.Generator().manual_seed(0)
    return [torch.randn(2, 4, generator=g) * s for s in (1.0, -1.0, 3.0)]


def _check(m: nn.Module, cm: dycl_jax.ConvertedModel) -> None:
    for x in _xs():
        with torch.no_grad():
            assert_same(cm(x), m(x))


class PlainSequential(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.seq = nn.Sequential(nn.Linear(4, 4), nn.ReLU(), nn.Linear(4, 4))

    def forward(self, x):
        y = self.seq(x)
        return y if y.sum() > 0 else -y


class ActivationList(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.lin = nn.Linear(4, 4)
        self.acts = nn.ModuleList([nn.ReLU()])

    def forward(self, x):
        y = self.acts[0](self.lin(x))
        return y if y.mean() > 0 else y * 2


def test_layers_swapped_into_or_appended_to_containers_after_convert_are_followed() -> None:
    torch.manual_seed(0)
    m = PlainSequential().eval()
    cm = dycl_jax.convert(m)
    _check(m, cm)
    m.seq[1] = nn.Tanh()
    _check(m, cm)
    m.seq.append(nn.Sigmoid())
    _check(m, cm)
    m.seq.append(nn.Linear(4, 4))  # parameters the converted model has not seen yet
    _check(m, cm)
    torch.manual_seed(1)
    n = ActivationList().eval()
    cn = dycl_jax.convert(n)
    _check(n, cn)
    n.acts[0] = nn.Tanh()
    _check(n, cn)


class OptionalOffset(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.lin = nn.Linear(4, 4)

    def forward(self, x):
        y = self.lin(x)
        if hasattr(self, "bias_shift"):  # a calibration offset attached later
            y = y + self.bias_shift
        scale = getattr(self, "scale", None)
        if scale is not None:
            y = y * scale
        return y if y.sum() > 0 else -y


def test_attributes_absent_at_capture_and_set_later_are_followed() -> None:
    torch.manual_seed(0)
    m = OptionalOffset().eval()
    cm = dycl_jax.convert(m)
    _check(m, cm)
    m.bias_shift = torch.ones(4)
    _check(m, cm)
    m.scale = -2.0
    _check(m, cm)
    del m.bias_shift
    _check(m, cm)
    compiles = cm.stats.compiles
    _check(m, cm)  # nothing changed: nothing traced again
    assert cm.stats.compiles == compiles


class PointerToggledInForward(nn.Module):
    """forward points ``self.cur`` at one of two submodules every call: reading it is guarded as
    the attribute it is, and the model's containers did not change, so nothing recompiles once
    both are compiled."""

    def __init__(self) -> None:
        super().__init__()
        self.a, self.b = nn.Linear(4, 4), nn.Linear(4, 4)
        self.cur = self.a

    def forward(self, x):
        h = self.cur(x)
        self.cur = self.b if h.sum() > 0 else self.a
        return h


def test_a_submodule_pointer_set_in_forward_does_not_recompile_every_call() -> None:
    torch.manual_seed(0)
    m, n = PointerToggledInForward().eval(), PointerToggledInForward().eval()
    n.load_state_dict(m.state_dict())
    cm = dycl_jax.convert(n)
    xs = _xs()
    for _ in range(2):
        for x in xs:
            with torch.no_grad():
                assert_same(cm(x), m(x))
    compiles = cm.stats.compiles
    for _ in range(3):
        for x in xs:
            with torch.no_grad():
                assert_same(cm(x), m(x))
    assert cm.stats.compiles == compiles


def test_container_edits_that_write_their_table_directly_are_followed() -> None:
    torch.manual_seed(0)
    m = PlainSequential().eval()
    cm = dycl_jax.convert(m)
    _check(m, cm)
    m.seq.insert(1, nn.Tanh())  # Sequential.insert writes _modules itself
    _check(m, cm)
    torch.manual_seed(1)
    n = ActivationList().eval()
    cn = dycl_jax.convert(n)
    _check(n, cn)
    n.acts.insert(0, nn.Sigmoid())
    _check(n, cn)
