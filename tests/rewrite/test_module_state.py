"""Module state read inside regions follows the module after convert (guards), and names bound
by except/import or read through closures reach regions correctly."""

from __future__ import annotations

import torch
import torch.nn as nn
import torch.nn.functional as F

import dycl_jax
from dycl_jax.testing import assert_same


class Head(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.lin = nn.Linear(4, 4)
        self.temperature = 1.0

    def forward(self, x):
        return self.lin(x) / self.temperature


class Sweep(nn.Module):
    """Early exit on a threshold, a temperature in a submodule, a Python list of weights."""

    def __init__(self) -> None:
        super().__init__()
        self.blocks = nn.ModuleList(nn.Linear(4, 4) for _ in range(3))
        self.head = Head()
        self.threshold = 0.9
        self.mix = [1.0, 0.5]

    def forward(self, x):
        for i, blk in enumerate(self.blocks):
            x = torch.tanh(blk(x)) * self.mix[0] + x * self.mix[1]
            logits = self.head(x)
            conf = F.softmax(logits, dim=-1).max()
            if conf > self.threshold:
                return logits, i
        return logits, -1


def test_attributes_changed_after_convert_are_followed() -> None:
    torch.manual_seed(0)
    m = Sweep().eval()
    cm = dycl_jax.convert(m)
    x = torch.randn(1, 4)
    exits = set()
    for threshold, temperature, mix in [
        (0.9, 1.0, [1.0, 0.5]),
        (0.0, 1.0, [1.0, 0.5]),
        (0.9, 0.05, [1.0, 0.5]),
        (0.9, 1.0, [2.0, -1.0]),
        (0.9, 1.0, [1.0, 0.5]),
    ]:
        m.threshold, m.head.temperature, m.mix = threshold, temperature, mix
        want = m(x)
        assert_same(cm(x), want)
        exits.add(want[1])
    assert len(exits) >= 2, exits


def test_returning_to_an_old_attribute_value_reuses_its_compile() -> None:
    torch.manual_seed(0)
    m = Sweep().eval()
    cm = dycl_jax.convert(m)
    x = torch.randn(1, 4)
    for t in (0.9, 0.1, 0.9, 0.1):
        m.threshold = t
        assert_same(cm(x), m(x))
    first = cm.stats.compiles
    for t in (0.9, 0.1):
        m.threshold = t
        assert_same(cm(x), m(x))
    assert cm.stats.compiles == first


class Exit(Exception):
    def __init__(self, k: int) -> None:
        super().__init__(k)
        self.k = k


class ExceptAndImport(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.lin = nn.Linear(4, 4)

    def forward(self, x):
        import torch.nn.functional as G

        n = 0
        try:
            h = self.lin(x)
            if h.sum() > 0:
                raise Exit(2)
        except Exit as e:
            return G.relu(h) + e.k
        step = 1

        def scale(z):
            return z * (n + step)

        for _ in range(3):
            h = torch.tanh(h)
            n = n + 1  # bookkeeping between two trace statements; scale reads it
            h = scale(h)
        return h


def test_except_as_import_and_closure_reads_reach_regions() -> None:
    torch.manual_seed(1)
    m = ExceptAndImport().eval()
    cm = dycl_jax.convert(m)
    seen = set()
    for s in (1.0, -1.0, 3.0, -3.0):
        x = torch.ones(1, 4) * s
        assert_same(cm(x), m(x))
        seen.add(bool(m.lin(x).sum() > 0))  # the path: raised and caught, or the loop
    assert seen == {True, False}
