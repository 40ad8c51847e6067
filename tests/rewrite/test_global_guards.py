"""Module globals read by code a region runs but does not name itself (a submodule's forward), when
forward also changes the same global every call: the entries read are guarded, not the whole
dict, so a call counter in it recompiles nothing while a changed setting is still followed."""

from __future__ import annotations

import torch
import torch.nn as nn

import dycl_jax
from dycl_jax.testing import assert_same

STATS = {"calls": 0, "scale": 2.0}


class _Scaled(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.lin = nn.Linear(4, 4)

    def forward(self, x):
        return self.lin(x) * STATS["scale"]


class CountsCalls(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.sub = _Scaled()
        self.out = nn.Linear(4, 4)

    def forward(self, x):
        STATS["calls"] += 1
        h = self.sub(x)
        if h.sum() > 0:
            h = self.out(h)
        return h


def test_a_global_dict_counter_does_not_recompile_and_a_setting_in_it_is_followed() -> None:
    torch.manual_seed(0)
    m = CountsCalls().eval()
    cm = dycl_jax.convert(m)
    g = torch.Generator().manual_seed(0)
    xs = [torch.randn(1, 4, generator=g) * s for s in (1.0, -1.0, 3.0)]

    def check() -> None:
        for x in xs:
            with torch.no_grad():
                assert_same(cm(x), m(x))

    check()
    compiles = cm.stats.compiles
    check()
    assert cm.stats.compiles == compiles
    try:
        STATS["scale"] = -0.5
        check()
    finally:
        STATS["scale"] = 2.0
    check()
