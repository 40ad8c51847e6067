"""A Python number that takes a new value on every call of a region (a decoding loop's
position, an ODE solver's step size): after a few values the region takes it as a 0-d array, so
a new value does not compile again; where the number must stay a Python value (a promotion it
changes, a shape) the region specialises on it as before. Exact either way."""

from __future__ import annotations

import torch
import torch.nn as nn

import dycl_jax
from dycl_jax.testing import assert_same


class ScheduleLoop(nn.Module):
    """A sampler's noise schedule: a Python float per step, mixed into the state."""

    def __init__(self) -> None:
        super().__init__()
        self.lin = nn.Linear(4, 4)
        self.alphas = [0.9 - 0.05 * i for i in range(12)]

    def forward(self, x, steps: int = 12):
        outs = []
        for t in range(steps):
            alpha = self.alphas[t]
            x = torch.tanh(self.lin(x)) * alpha + x * (1 - alpha)
            outs.append(x)
            if x.sum() > 2.0:
                break
        return torch.cat(outs), len(outs)


def test_a_schedule_value_stops_compiling_after_a_few_values() -> None:
    torch.manual_seed(1)
    m = ScheduleLoop().eval()
    cm = dycl_jax.convert(m)
    lengths = set()
    for s in (-1.0, 3.0, 1.0, 5.0):
        x = torch.full((1, 4), s)
        with torch.no_grad():
            want = m(x)
        assert_same(cm(x), want, rtol=1e-6, atol=1e-6)
        lengths.add(want[1])
    assert max(lengths) > 4 and len(lengths) > 1
    # the step's region compiles for 3 values of alpha, then once with alpha a 0-d array (it
    # compiled once per step before: 15 compiles in all here)
    assert cm.stats.compiles <= 8


class StepSize(nn.Module):
    """``t + h / 5`` of a 0-d float32 tensor and a Python float stays float32 (a wrapped
    number); a 0-d float64 array would promote: the region keeps h a Python value."""

    def __init__(self) -> None:
        super().__init__()
        self.lin = nn.Linear(2, 2)

    def forward(self, y):
        t = torch.tensor(0.0)
        h = 0.1
        while t < 1.0:
            y = y + h * torch.tanh(self.lin(y)) * (t + h / 5)
            t = t + h
            h = h * 1.3
        return y, t


def test_a_number_whose_array_would_promote_stays_a_python_value() -> None:
    torch.manual_seed(0)
    m = StepSize().eval()
    cm = dycl_jax.convert(m)
    for s in (1.0, -2.0):
        y = torch.full((1, 2), s)
        with torch.no_grad():
            want = m(y)
        got = cm(y)
        assert_same(got, want, rtol=1e-6, atol=1e-6)
        assert str(got[1].dtype) == "float32"


class NumberAsKey(nn.Module):
    """A number read back from a tensor used as a dict key in the region (fuzz seed
    47403142249): it must stay a Python value, however many values it takes (a 0-d array is
    no key of the dict: `.get` silently gave the default)."""

    def __init__(self) -> None:
        super().__init__()
        self.lin = nn.Linear(6, 6)

    def forward(self, x):
        for _ in range(2):
            x = torch.tanh(self.lin(x))
            k = int(x[0].argmax().item())
            x = x * {0: 1.5, 1: 0.5, 2: -0.5, 3: 3.0}.get(k, 2.0) + k
            if x.sum() > 0:
                x = -x
        return x


def test_a_number_used_as_a_key_stays_a_python_value() -> None:
    torch.manual_seed(0)
    m = NumberAsKey().eval()
    cm = dycl_jax.convert(m)
    keys = set()
    for i in range(12):
        x = torch.randn(1, 6, generator=torch.Generator().manual_seed(i))
        with torch.no_grad():
            want = m(x)
            keys.add(int(torch.tanh(m.lin(x))[0].argmax()))
        assert_same(cm(x), want, rtol=1e-6, atol=1e-6)
    assert len(keys) >= 4
