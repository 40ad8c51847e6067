"""``with torch.no_grad():`` around a confidence read, after tensor work: the context manager is
made on the host (it was made in the region before it, which then returned an object and ran in
PyTorch on every call)."""

from __future__ import annotations

import pytest
import torch
import torch.nn as nn
import torch.nn.functional as F

import dycl_jax
from dycl_jax.testing import assert_same


class ConfidenceUnderNoGrad(nn.Module):
    def __init__(self, context: str) -> None:
        super().__init__()
        self.context = context
        self.lin = nn.Linear(4, 4)
        self.head = nn.Linear(4, 3)

    def forward(self, x):
        x = self.lin(x)
        ctx = torch.no_grad() if self.context == "no_grad" else torch.set_grad_enabled(False)
        with ctx:
            conf = F.softmax(self.head(x), -1).max().item()
        with torch.inference_mode():
            margin = self.head(x).std().item()
        if conf > 0.5 or margin > 2.0:
            return x
        return x * 2


@pytest.mark.parametrize("context", ["no_grad", "set_grad_enabled"])
def test_a_grad_mode_context_after_tensor_work_keeps_the_region_compiled(context: str) -> None:
    torch.manual_seed(0)
    m = ConfidenceUnderNoGrad(context).eval()
    cm = dycl_jax.convert(m)
    taken = set()
    for s in (1.0, -1.0, 3.0, 0.1):
        x = torch.full((1, 4), s)
        with torch.no_grad():
            want = m(x)
        assert_same(cm(x), want, rtol=1e-6, atol=1e-6)
        taken.add(bool(torch.equal(want, m.lin(x))))
    assert taken == {True, False}
    assert cm.stats.eager_region_calls == 0
