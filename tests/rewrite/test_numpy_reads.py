"""A tensor's values read as a numpy array inside what would be a region (``np.asarray(t)``,
numpy functions given a tensor, ``.numpy()`` in a helper the analysis does not see): the capture
cannot read a traced tensor's values, so the region runs in PyTorch, as eager."""

from __future__ import annotations

import numpy as np
import pytest
import torch
import torch.nn as nn

import dycl_jax
from dycl_jax.testing import run_all_paths

pytestmark = pytest.mark.filterwarnings("ignore::DeprecationWarning")  # numpy on tensors

to_np = lambda t: t.detach().cpu().numpy()  # noqa: E731  (the idiom as users write it)


class AsArray(nn.Module):
    def forward(self, x):
        c = float(np.asarray(x.max()))
        return x * c


class NumpyFunctions(nn.Module):
    def forward(self, x):
        return int(np.argmax(x)), float(np.asarray(x).max()), x + 1


class HelperLambda(nn.Module):
    def forward(self, x):
        return float(to_np(x * 2).sum()), x - 1


class Matching(nn.Module):
    """A cost matrix handed to numpy (as to scipy's linear_sum_assignment), then a branch."""

    def forward(self, a, b):
        cost = torch.cdist(a, b)
        order = np.argsort(cost, axis=1)[:, 0]
        picked = b[torch.as_tensor(order)]
        if picked.sum() > 0:
            return picked * 2, order.tolist()
        return picked, order.tolist()


def test_numpy_reads_of_tensors_run_in_pytorch() -> None:
    xs = [torch.tensor([[1.0, 2.0, 3.0]]), torch.tensor([[5.0, -2.0, 0.5]]), torch.ones(1, 3) * 7]
    for cls in (AsArray, NumpyFunctions, HelperLambda):
        m = cls().eval()
        run_all_paths(m, dycl_jax.convert(m), [(x,) for x in xs])


def test_numpy_matching_follows_every_input() -> None:
    m = Matching().eval()
    cm = dycl_jax.convert(m)
    inputs = []
    for k in range(6):
        g = torch.Generator().manual_seed(k)
        inputs.append((torch.randn(4, 3, generator=g), torch.randn(4, 3, generator=g)))
    assert len(run_all_paths(m, cm, inputs)) >= 2


class NumpyNoise(nn.Module):
    def forward(self, x):
        noise = torch.from_numpy(np.random.randn(1, 3).astype(np.float32))
        if x.sum() > 0:
            x = x + noise
        return x


def test_numpy_random_draws_follow_the_seed_on_every_call() -> None:
    """Traced, one draw would be a constant: the region runs in PyTorch and draws each call."""
    m = NumpyNoise().eval()
    cm = dycl_jax.convert(m)
    for seed, x in enumerate([torch.ones(1, 3), -torch.ones(1, 3), torch.ones(1, 3) * 2]):
        np.random.seed(seed)
        want = m(x)
        next_eager = np.random.randn(2)
        np.random.seed(seed)
        got = cm(x)
        next_converted = np.random.randn(2)
        np.testing.assert_array_equal(np.asarray(got), want.numpy())
        # drawn as often as eager draws: the state moved on alike
        np.testing.assert_array_equal(next_converted, next_eager)
