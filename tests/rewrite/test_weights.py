"""Parameters and buffers written in place after convert (an optimizer step, load_state_dict,
an edit under no_grad) are followed: the next call reloads them."""

from __future__ import annotations

import torch

import dycl_jax
from dycl_jax.testing import assert_same
from tests.rewrite import dynamic_models as dm


def test_weights_changed_in_place_after_convert_are_followed() -> None:
    torch.manual_seed(0)
    m = dm.SkipGate().eval()
    cm = dycl_jax.convert(m)
    x = torch.randn(2, 6, generator=torch.Generator().manual_seed(1)) * 4
    assert_same(cm(x), m(x))
    with torch.no_grad():
        m.a.weight.mul_(-1)
        m.gate.bias.add_(3)
    assert_same(cm(x), m(x))
    m.load_state_dict({k: v * 0.5 for k, v in m.state_dict().items()})
    assert_same(cm(x), m(x))
    opt = torch.optim.SGD(m.parameters(), lr=0.1)
    m.train()
    m(x).sum().backward()
    opt.step()
    m.eval()
    assert_same(cm(x), m(x))


def test_regions_close_over_weights_until_they_change() -> None:
    """Compiled regions take their parameters as constants (no per-call arguments) while the
    weights stay as convert saw them; captures and calls never count as a change. After an
    in-place edit they are passed as arguments, and the results follow the new weights."""
    torch.manual_seed(0)
    m = dm.SkipGate().eval()
    cm = dycl_jax.convert(m)
    g = torch.Generator().manual_seed(1)
    xs = [torch.randn(2, 6, generator=g) * s for s in (0.1, 4.0, -4.0)]
    for x in xs * 2:
        assert_same(cm(x), m(x))
    entries = [e for p in cm.programs for r in p.runners for e in r.cache.values()]
    assert cm.session.freeze_params
    assert entries and all(e.frozen is not None for e in entries if e.jitted is not None)
    with torch.no_grad():
        m.a.weight.mul_(-1)
    for x in xs:
        assert_same(cm(x), m(x))
    assert not cm.session.freeze_params


class _ConvBlocks(torch.nn.Module):
    """Four identical convolution blocks with an early exit after each: regions whose compute
    dwarfs their dispatch."""

    def __init__(self) -> None:
        super().__init__()
        self.blocks = torch.nn.ModuleList(
            torch.nn.Sequential(torch.nn.Conv2d(16, 16, 3, padding=1), torch.nn.ReLU())
            for _ in range(4)
        )

    def forward(self, x):
        for i, block in enumerate(self.blocks):
            x = block(x)
            if x.mean() > 0.6:
                return x, i
        return x, -1


def test_costly_regions_keep_weights_as_arguments_and_share_one_executable() -> None:
    """Closing over weights saves dispatch only where it matters; a region whose work is
    above runner.FREEZE_MAX_WORK keeps them as arguments, so isomorphic blocks over different
    module instances compile once."""
    torch.manual_seed(0)
    m = _ConvBlocks().eval()
    cm = dycl_jax.convert(m)
    xs = [torch.randn(1, 16, 32, 32) * s + b for s, b in ((1, 0), (1, 3), (3, 1))]
    for x in xs:
        assert_same(cm(x), m(x))
    entries = [e for p in cm.programs for r in p.runners for e in r.cache.values()]
    compute = [e for e in entries if e.jitted is not None]
    assert len(compute) >= 4 and all(e.frozen is None for e in compute)
    assert len({id(e.jitted) for e in compute}) < len(compute)  # blocks share executables
