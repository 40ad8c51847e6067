"""Python conversions of one-element tensors that are not 0-d (``int(t)`` with ``t`` of shape
(1,)): PyTorch allows them, a jax array only converts when 0-d."""

from __future__ import annotations

import torch
import torch.nn as nn

import dycl_jax
from dycl_jax.testing import assert_same


class OneElement(nn.Module):
    def forward(self, x):
        t = x.sum(-1).argmax(-1, keepdim=True)  # shape (1,)
        k = int(t)
        f = float(x.mean(-1, keepdim=True)[0])
        if k > 0:
            return x[:, k], f
        return x[:, 0] * 2, f


def test_int_and_float_of_one_element_tensors() -> None:
    m = OneElement().eval()
    cm = dycl_jax.convert(m)
    g = torch.Generator().manual_seed(0)
    for _ in range(4):
        x = torch.randn(3, 4, generator=g)
        with torch.no_grad():
            assert_same(cm(x), m(x))
