"""True division exactly as PyTorch divides: XLA's simplifier turns a division by a broadcast
value (a Python scalar, a 0-d tensor, a keepdim reduction) into a multiplication by its
reciprocal, one ulp off, which rounding turns into a whole unit (grid cells, bucket indices)."""

from __future__ import annotations

import numpy as np
import torch
import torch.nn as nn

import dycl_jax


class Buckets(nn.Module):
    def forward(self, x, c: float):
        cells = (x / c).long()
        floors = torch.floor(x / 0.3)
        trunc = torch.div(x, 0.3, rounding_mode="trunc")
        by_tensor = x / torch.tensor(0.7)
        shares = x / x[:, :1].abs().clamp_min(0.1)  # (a column broadcast along rows)
        if cells.max() > 1000:
            cells = cells.clamp(max=1000)
        return cells, floors, trunc, by_tensor, shares


def test_division_by_a_broadcast_value_is_exact() -> None:
    g = torch.Generator().manual_seed(0)
    # one-decimal values, where x / 0.1 and x / 0.3 land next to integers
    x = torch.randint(-400, 400, (4, 500), generator=g).float() / 10
    m = Buckets().eval()
    cm = dycl_jax.convert(m)
    for c in (0.1, 0.3):
        want = m(x, c)
        got = cm(x, c)
        for gv, wv in zip(got, want):
            assert np.array_equal(np.asarray(gv), wv.numpy())
