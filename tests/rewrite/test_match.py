"""``match`` statements: literal / value / ``|`` / singleton / ``_`` / capture patterns become the
``if``/``elif`` chain Python's semantics give, on a host int, a Python value or a tensor."""

from __future__ import annotations

import numpy as np
import pytest
import torch
import torch.nn as nn

import dycl_jax
from dycl_jax.errors import UnsupportedConstructError


class Modes:
    LAST = 3


class Dispatch(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.heads = nn.ModuleList([nn.Linear(4, 4) for _ in range(3)])
        self.mode = "scale"

    def forward(self, x):
        k = int(x.argmax(dim=1)[0])
        match k:
            case 0:
                y = self.heads[0](x)
            case 1 | 2:
                y = self.heads[k](x) + k
            case Modes.LAST if x.sum() > 0:  # a value pattern with a guard
                y = -x
            case other if other > 2:  # a capture with a guard
                y = x * other
            case _:
                y = x
        match self.mode:
            case "scale":
                y = y * 2
            case None:
                pass
        match x.sum() > 0:
            case True:
                y = y + 1
            case _:
                y = y - 1
        return y, k


def test_match_statements_follow_python_semantics() -> None:
    torch.manual_seed(0)
    m = Dispatch().eval()
    cm = dycl_jax.convert(m)
    for j in range(4):
        for sign in (1.0, -1.0):
            x = torch.zeros(1, 4)
            x[0, j] = 5.0 * sign if j else 5.0
            with torch.no_grad():
                want = m(x)
            got = cm(x)
            np.testing.assert_allclose(np.asarray(got[0]), want[0].numpy(), rtol=1e-6, atol=1e-6)
            assert got[1] == want[1]
    m.mode = None
    x = torch.tensor([[0.0, 5.0, 0.0, 0.0]])
    with torch.no_grad():
        np.testing.assert_allclose(np.asarray(cm(x)[0]), m(x)[0].numpy(), rtol=1e-6)


class Structural(nn.Module):
    def forward(self, x):
        match x.shape:
            case (1, n):
                return x * n
        return x


def test_structural_patterns_are_refused_at_their_line() -> None:
    with pytest.raises(UnsupportedConstructError, match="MatchSequence") as e:
        dycl_jax.convert(Structural().eval())
    assert e.value.location is not None and e.value.location.filename == __file__
