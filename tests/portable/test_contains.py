"""``v in t`` in the torch-free host library follows PyTorch's type promotion."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from dycl_jax.lower import dtypes
from dycl_jax.portable.hostlib import contains

_VALUES = [0.3, 0.1, 1, 2, 2.5, True, False, 65504.0, 1e-8, 300, -1, 16777217, 16777217.0]
_TENSOR_VALUES = [
    torch.tensor(0.3),
    torch.tensor(0.3, dtype=torch.float64),
    torch.tensor(2),
    torch.tensor(2.5, dtype=torch.float64),
]


@pytest.mark.parametrize(
    "dtype",
    [torch.float32, torch.float16, torch.bfloat16, torch.float64, torch.int64, torch.int8]
    + [torch.uint8, torch.bool],
)
def test_membership_matches_pytorch(dtype: torch.dtype) -> None:
    base = torch.tensor([0.3, 0.1, 1, 2, 2.5, 65504.0, 1e-8, 16777217, -1])
    t = base > 1 if dtype is torch.bool else base.to(dtype)
    a = np.asarray(dtypes.tensor_to_numpy(t))
    for v in _VALUES + _TENSOR_VALUES:
        want = v in t
        got = contains(a, dtypes.tensor_to_numpy(v) if isinstance(v, torch.Tensor) else v)
        assert got == want, (dtype, v)
