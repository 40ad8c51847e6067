"""A forward argument iterated on the host (``list(x)``, ``a, b = x``, ``max(list(x), key=...)``)
gives 0-d tensors in PyTorch. The converted model receives it as a numpy view, whose iteration
gives numpy scalars (no ``.float()``, float64 arithmetic): its items must be arrays as well."""

from __future__ import annotations

import functools
import heapq
import itertools

import torch
import torch.nn as nn

import dycl_jax
from dycl_jax.testing import assert_same


class PickSmallest(nn.Module):
    def forward(self, x):
        m = max(list(x), key=lambda t: -t)
        return m.float() / 3, sorted(list(x), key=lambda t: -t)[0].float()  # noqa: C414


class Unpacked(nn.Module):
    def forward(self, x):
        a, b, c, d = x
        return a.float() * 2 + d, list(x), tuple(x)[1].double()


def test_items_of_an_argument_iterated_on_the_host_are_tensors() -> None:
    for m in (PickSmallest().eval(), Unpacked().eval()):
        cm = dycl_jax.convert(m)
        for x in (torch.tensor([5, 2, -1, 3]), torch.tensor([0.5, -2.0, 7.0, 1.0])):
            assert_same(cm(x), m(x))


class ReduceOverTensors(nn.Module):
    """Standard-library functional tools over tensors: functools.reduce with a torch op and with a
    lambda applying layers, heapq.nlargest keyed by a torch function."""

    def __init__(self) -> None:
        super().__init__()
        self.layers = nn.ModuleList(nn.Linear(3, 3) for _ in range(2))

    def forward(self, x):
        fused = functools.reduce(torch.maximum, [x * 2, x - 1, -x])
        h = functools.reduce(lambda h, f: f(h), self.layers, fused)
        top = torch.stack(heapq.nlargest(2, h.unbind(0), key=torch.norm))
        return top if top.sum() > 0 else -top


def test_functional_standard_library_tools_over_tensors_match_eager() -> None:
    torch.manual_seed(0)
    m = ReduceOverTensors().eval()
    cm = dycl_jax.convert(m)
    g = torch.Generator().manual_seed(0)
    for s in (1.0, -1.0, 4.0):
        x = torch.randn(4, 3, generator=g) * s
        with torch.no_grad():
            assert_same(cm(x), m(x))


class LazyIterators(nn.Module):
    """map / filter / itertools iterators over tensors consumed by list, min, sum, sorted."""

    def __init__(self) -> None:
        super().__init__()
        self.head = nn.Linear(3, 3)

    def forward(self, x):
        outs = torch.stack(list(map(self.head, x.unbind(0))))
        low = min(map(torch.norm, x.unbind(0)))
        total = sum(filter(lambda t: t.shape[0] == 3, x.unbind(0)))
        firsts = sorted(itertools.islice(x.unbind(0), 2), key=lambda t: t.sum().item())
        return outs, low, total, torch.stack(firsts)


def test_lazy_iterators_over_tensors_consumed_by_builtins_match_eager() -> None:
    torch.manual_seed(0)
    m = LazyIterators().eval()
    cm = dycl_jax.convert(m)
    g = torch.Generator().manual_seed(0)
    for s in (1.0, -1.0, 4.0):
        x = torch.randn(4, 3, generator=g) * s
        with torch.no_grad():
            assert_same(cm(x), m(x))
