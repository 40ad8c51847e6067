"""PyTorch composite kernels that write in place into tensors they make (below the capture's
functionalization): the capture traces them again at the ATen level, so the writes are kept."""

from __future__ import annotations

import pytest
import torch
import torch.nn as nn
import torch.nn.functional as F
from torch.nn.utils.rnn import pad_sequence

import dycl_jax
from dycl_jax.testing import assert_same
from tests.conftest import Records


class PadRows(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.fc = nn.Linear(4, 4)

    def forward(self, x):
        h = self.fc(x)
        keep = [row[:n] for row, n in zip(h, (3, 2))]
        out = pad_sequence(keep, batch_first=True, padding_value=-1.0)
        if out.sum() > 0:  # and a region boundary after it
            out = out * 2
        return out, pad_sequence(keep)


class CircularConv(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.conv = nn.Conv2d(2, 3, 3, padding=1, padding_mode="circular")

    def forward(self, x):
        return self.conv(x), F.pad(x, (1, 2, 2, 1), mode="circular")


@pytest.mark.parametrize("cls,shape", [(PadRows, (2, 3, 4)), (CircularConv, (1, 2, 5, 5))])
def test_composite_kernels_writing_their_own_tensors_are_exact(cls: type, shape: tuple) -> None:
    torch.manual_seed(0)
    m = cls().eval()
    cm = dycl_jax.convert(m)
    for s in (1.0, -1.0):
        x = torch.randn(*shape) * s
        with torch.no_grad():
            assert_same(cm(x), m(x))


class PadThenUnsupported(nn.Module):
    def forward(self, x):
        y = pad_sequence([x[0], x[1, :2]], batch_first=True)
        return torch.histc(y, bins=4)


def test_failures_after_the_second_trace_still_name_the_users_line(warned: Records) -> None:
    """histc has no lowering: the region runs in PyTorch, and the warning saying so names the
    user's line, also when the failure comes from the second (ATen-level) trace."""
    m = PadThenUnsupported().eval()
    cm = dycl_jax.convert(m)
    x = torch.randn(2, 3, 4)
    assert_same(cm(x), m(x))
    line = next(i for i, s in enumerate(open(__file__).read().splitlines(), 1) if "histc(y" in s)
    assert f"{__file__}:{line}" in warned.text
