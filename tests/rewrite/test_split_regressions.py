"""Regressions in the middle of the pipeline: regions and host code stay consistent, and the
analyses run to convergence."""

from __future__ import annotations

import pytest
import torch
import torch.nn as nn

import dycl_jax
from dycl_jax.errors import CaptureError
from tests.helpers import run_all_paths


class BufferWriteThenPrint(nn.Module):
    """An in-place buffer write, then a host effect: the region is kept (it writes state), so
    capture refuses it at the user's line instead of the host calling a region that was dropped."""

    def __init__(self) -> None:
        super().__init__()
        self.register_buffer("count", torch.zeros(1))

    def forward(self, x):
        self.count.add_(1)
        print("calls so far")
        return x * 2


def test_buffer_write_then_print_is_refused_at_the_users_line() -> None:
    cm = dycl_jax.convert(BufferWriteThenPrint().eval())
    with pytest.raises(CaptureError) as e:
        cm(torch.ones(2))
    assert "in-place write to module state 'count'" in str(e.value)
    assert e.value.location is not None
    assert e.value.location.filename == __file__
    assert "self.count.add_(1)" in e.value.location.source_line()


class Rotation(nn.Module):
    """Five values rotated through a loop; the oldest decides a branch. Kind inference must reach
    its fixpoint (no pass cap) to see that ``e`` holds a tensor after four iterations."""

    def __init__(self) -> None:
        super().__init__()
        self.lin = nn.Linear(4, 4)

    def forward(self, x):
        a = b = c = d = e = 0
        for _ in range(7):
            x = torch.tanh(self.lin(x))
            e = d
            d = c
            c = b
            b = a
            a = x.sum()
            if e > 0:
                x = x * 2
            else:
                x = x - 1
        return x


def test_five_value_rotation_converts_and_matches_on_every_path() -> None:
    torch.manual_seed(0)
    m = Rotation().eval()
    cm = dycl_jax.convert(m)
    g = torch.Generator().manual_seed(0)
    inputs = [
        (torch.randn(1, 4, generator=g) * s,) for s in (0.1, 1.0, 3.0, 10.0) for _ in range(3)
    ]
    paths = run_all_paths(m, cm, inputs)
    assert len(paths) >= 2, paths
