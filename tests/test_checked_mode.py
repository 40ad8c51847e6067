"""Checked mode: the first call on each new path is compared with eager PyTorch; a difference
raises MismatchError naming the output and the path."""

from __future__ import annotations

import pytest
import torch
import torch.nn as nn

import dycl_jax
from dycl_jax.errors import MismatchError
from tests.rewrite import dynamic_models as dm


def test_checked_mode_compares_each_new_path_once() -> None:
    torch.manual_seed(0)
    m = dm.EarlyExit(threshold=0.45).eval()
    cm = dycl_jax.convert(m, config=dycl_jax.Config(check=True))
    g = torch.Generator().manual_seed(0)
    calls = []
    cls = type(m)

    class Counting(cls):  # type: ignore[misc,valid-type]  # eager calls made by checked mode
        def __call__(self, *a, **k):
            calls.append(1)
            return super().__call__(*a, **k)

    m.__class__ = Counting  # (forward itself unchanged: the converted program stays)
    inputs = [(torch.randn(1, 8, generator=g) * s,) for s in (0.05, 0.5, 3.0, 10.0) * 3]
    for args in inputs:
        cm(*args)
    assert 2 <= len(calls) < len(inputs)  # one eager call per distinct path
    assert len(cm._checked_paths) == len(calls)


def test_checked_mode_raises_on_a_difference() -> None:
    class Gate(nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.lin = nn.Linear(4, 4)

        def forward(self, x):
            h = self.lin(x)
            if h.sum() > 0:
                h = h * 2
            return h

    torch.manual_seed(0)
    m = Gate().eval()
    cm = dycl_jax.convert(m, config=dycl_jax.Config(check=True))
    x = torch.ones(1, 4)
    cm(x)

    # Make eager PyTorch compute something else than what was converted (a call wrapper the
    # conversion does not see); the next new path's comparison must catch it.
    class Off(Gate):
        def __call__(self, *a, **k):
            return super().__call__(*a, **k) + 1

    m.__class__ = Off
    with pytest.raises(MismatchError, match=r"differs from eager PyTorch: out: 4 of 4 values"):
        cm(-x)
