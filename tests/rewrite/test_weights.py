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
