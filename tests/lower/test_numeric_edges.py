"""Values PyTorch's CPU kernels give at the edges of the number formats, through a converted
model (the op samples compare with a tolerance that does not tell -0.0 from 0.0, and feed every
op fresh contiguous inputs)."""

from __future__ import annotations

import numpy as np
import torch
import torch.nn as nn

import dycl_jax
from dycl_jax.testing import assert_same


class Edges(nn.Module):
    def forward(self, x, d):
        if x.sum() > -100:
            s = 1.0 / torch.sign(x)  # sign(-0.0) is +0.0 in PyTorch: +inf here
            h = d.to(torch.float16)  # a double rounds through float32 first
            v = torch.as_strided(x[1:], (2,), (1,), 0)  # the view's storage: x itself
            w = torch.as_strided(x.view(2, 2).t(), (2, 2), (1, 2))
            return s, h, v, w
        return x, d, x, x


def test_sign_of_negative_zero_double_to_half_and_as_strided_of_views() -> None:
    m = Edges().eval()
    cm = dycl_jax.convert(m)
    x = torch.tensor([-0.0, -2.0, 0.0, 3.0])
    d = torch.tensor([1 + 2**-11 + 2**-40, 1.0], dtype=torch.float64)
    got, want = cm(x, d), m(x, d)
    assert_same(got, want)
    assert np.signbit(np.asarray(got[0])).tolist() == torch.signbit(want[0]).tolist()
