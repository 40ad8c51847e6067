"""Python statements around region splits that must keep Python's semantics on the host."""

from __future__ import annotations

import pytest
import torch
import torch.nn as nn

import dycl_jax
from dycl_jax.testing import run_all_paths


class DelAfterUse(nn.Module):
    def forward(self, x):
        h = x * 2
        y = h + 1
        del h
        if y.sum() > 0:
            y = y * 2
        return y


class DelUnderCondition(nn.Module):
    def forward(self, x):
        y = x + 1
        if x.sum() > 0:
            del y
            return x * 3
        return y


class DelAfterStagedIf(nn.Module):
    def forward(self, x):
        tmp = x * 2
        if tmp.sum() > 0:
            x = tmp
        del tmp
        return x


class DelInLoop(nn.Module):
    def __init__(self):
        super().__init__()
        self.l = nn.Linear(3, 3)

    def forward(self, x):
        for _ in range(3):
            h = self.l(x)
            if h.sum() > 0:
                x = h
            del h
        return x


class DelSeveral(nn.Module):
    def forward(self, x):
        a, b = x + 1, x - 1
        out = a if (a.sum() > b.sum() * 2) else b
        del a, b
        return out * 2


@pytest.mark.parametrize(
    "cls", [DelAfterUse, DelUnderCondition, DelAfterStagedIf, DelInLoop, DelSeveral]
)
def test_del_of_a_region_computed_name(cls: type[nn.Module]) -> None:
    """`del h` reads h's binding: the region computing h hands it to the host statement."""
    torch.manual_seed(0)
    m = cls().eval()
    cm = dycl_jax.convert(m)
    inputs = [
        (torch.randn(1, 3) * s + b,) for s, b in ((1, 2), (1, -2), (0.1, 0), (2, 0.5), (1, 5))
    ]
    paths = run_all_paths(m, cm, inputs)
    assert len(paths) >= 2
