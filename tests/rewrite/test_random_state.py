"""Random generator state touched in forward: seeding, saving and restoring the state, forking
it, generators made in forward, and numpy's and Python's seeding. Each runs on the host every
call, in order with the draws around it (traced, it would run once, at capture, and later calls
would draw from another state or reuse one generator object)."""

from __future__ import annotations

import random

import numpy as np
import pytest
import torch
import torch.nn as nn

import dycl_jax
from dycl_jax.testing import assert_same


class SeedThenDraw(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.lin = nn.Linear(4, 4)

    def forward(self, x):
        torch.manual_seed(42)  # the same noise every call
        h = self.lin(x) + torch.randn(1, 4)
        if h.sum() > 0:
            h = h * 2
        return h


class ReplayDraw(nn.Module):
    def forward(self, x):
        state = torch.get_rng_state()
        a = torch.rand(4)
        torch.set_rng_state(state)
        b = torch.rand(4)  # the same draw again
        return x + a - b


class LocalGenerator(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.lin = nn.Linear(4, 4)

    def forward(self, x):
        g = torch.Generator().manual_seed(1234)  # a fresh generator every call
        h = self.lin(x)
        if h.mean() > 0:
            h = h + torch.randn(1, 4, generator=g)
        return h + torch.rand(1, 4, generator=g)


class ForkedSeed(nn.Module):
    def forward(self, x):
        with torch.random.fork_rng():
            torch.manual_seed(7)
            a = torch.rand(4)
        return x + a + torch.rand(4)  # the caller's state again, as if never seeded


class HeldGenerator(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.g = torch.Generator().manual_seed(3)

    def forward(self, x):
        self.g.manual_seed(11)
        h = x * 2
        if h.sum() > 0:
            h = h + torch.rand(4, generator=self.g)
        return h + torch.rand(4, generator=self.g)


class NumpySeed(nn.Module):
    def forward(self, x):
        np.random.seed(5)
        h = x + torch.from_numpy(np.random.rand(4).astype(np.float32))
        if h.sum() > 0:
            h = h * 2
        return h


class PythonSeed(nn.Module):
    def forward(self, x):
        random.seed(3)
        h = x * random.randint(1, 4)
        if h.sum() > 0:
            h = h * 2
        return h


class NumpyGenerator(nn.Module):
    def forward(self, x):
        rng = np.random.default_rng(9)
        h = x + torch.as_tensor(rng.standard_normal(4), dtype=torch.float32)
        if h.sum() > 0:
            h = h - 1
        return h


class SeedFromHostValue(nn.Module):
    def forward(self, x):
        g = torch.Generator()
        g.manual_seed(int(x.abs().sum().item()) % 5)  # a seed read from the input
        return x * 2 + torch.randn(4, generator=g)


MODELS = [
    (SeedThenDraw, (1, 4)),
    (ReplayDraw, (4,)),
    (LocalGenerator, (1, 4)),
    (ForkedSeed, (4,)),
    (HeldGenerator, (4,)),
    (NumpySeed, (4,)),
    (PythonSeed, (4,)),
    (NumpyGenerator, (4,)),
    (SeedFromHostValue, (4,)),
]


@pytest.mark.parametrize("cls, shape", MODELS, ids=[m.__name__ for m, _ in MODELS])
def test_random_state_in_forward_is_followed_every_call(cls: type, shape: tuple[int]) -> None:
    torch.manual_seed(0)
    m = cls().eval()
    cm = dycl_jax.convert(m)
    inputs = [torch.randn(shape), -torch.rand(shape) - 3, torch.rand(shape) * 7 + 3]
    for i, x in enumerate(inputs * 2):  # every input twice: compiled once, then reused
        torch.manual_seed(100 + i)
        with torch.no_grad():
            expected = m(x)
        after_eager = torch.rand(1)
        torch.manual_seed(100 + i)
        got = cm(x)
        assert_same(got, expected)
        assert torch.equal(torch.rand(1), after_eager)  # the caller's stream advanced alike


def test_per_sample_refuses_seeding_in_forward() -> None:
    """Rows run together draw in one stream: one seed per group of rows is not one per row."""
    cm = dycl_jax.convert(SeedThenDraw().eval())
    with pytest.raises(dycl_jax.InputError, match="random generator's state"):
        cm.per_sample(torch.randn(3, 4))
