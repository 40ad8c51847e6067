"""An exception a PyTorch op raises inside a region (a shape error, an index out of range).

Traced, the op fails on fake tensors; the runner runs the region in PyTorch on the real values,
and when PyTorch raises the same there, from the region's first statement, it raises PyTorch's
exception: a ``try: ... except RuntimeError:`` around it takes the user's handler, as in eager.
Raised after other statements of the same region ran, the handler would see their results
unassigned: refused at the failing line.
"""

from __future__ import annotations

import numpy as np
import pytest
import torch
import torch.nn as nn

import dycl_jax
from dycl_jax.errors import CaptureError


class ViewOrFlatten(nn.Module):
    def forward(self, x):
        try:
            y = x.view(3, -1)
        except RuntimeError:
            y = x.flatten()
        if y.sum() > 0:
            y = y * 2
        return y


class LookupOrLast(nn.Module):
    def forward(self, x, table):
        k = int(x.argmax())
        try:
            v = table[k]
        except IndexError:
            v = table[-1] * 0
        return v


def test_except_catches_what_pytorch_raises() -> None:
    m = ViewOrFlatten().eval()
    cm = dycl_jax.convert(m)
    for x in (torch.ones(2, 2), torch.ones(3, 2), -torch.ones(2, 2), torch.ones(2, 2)):
        np.testing.assert_array_equal(np.asarray(cm(x)), m(x).numpy())
    m2 = LookupOrLast().eval()
    cm2 = dycl_jax.convert(m2)
    table = torch.arange(6.0).reshape(2, 3)
    for x in (torch.tensor([0.0, 1.0, 9.0]), torch.tensor([0.0, 5.0, 1.0])):
        np.testing.assert_array_equal(np.asarray(cm2(x, table)), m2(x, table).numpy())


class Uncaught(nn.Module):
    def forward(self, x):
        if x.sum() > 0:
            x = x + 1
        return x.view(3, -1)


def test_uncaught_error_is_pytorchs_own() -> None:
    cm = dycl_jax.convert(Uncaught().eval())
    with pytest.raises(RuntimeError, match=r"shape '\[3, -1\]' is invalid"):
        cm(torch.ones(2, 2))


class AfterOtherStatements(nn.Module):
    def forward(self, x):
        try:
            a = x * 2
            y = x.view(3, -1)
        except RuntimeError:
            y = a.flatten()
        return y


def test_failure_after_other_region_statements_is_refused_at_its_line() -> None:
    cm = dycl_jax.convert(AfterOtherStatements().eval())
    np.testing.assert_array_equal(np.asarray(cm(torch.ones(3, 2))), np.ones((3, 2)))
    with pytest.raises(CaptureError, match="PyTorch raises RuntimeError here too") as info:
        cm(torch.ones(2, 2))
    assert info.value.location is not None
    assert info.value.location.filename == __file__
    assert info.value.location.lineno == AfterOtherStatements.forward.__code__.co_firstlineno + 3


class ArgmaxOfAMask(nn.Module):
    def forward(self, x):
        i = (x > 0).argmax()  # PyTorch: "argmax(): does not support bool input"
        return x[i] if x.sum() > 0 else -x[i]


def test_an_op_pytorch_refuses_for_a_dtype_raises_pytorchs_error() -> None:
    """jnp.argmax accepts booleans; PyTorch does not: the region runs in PyTorch, which raises."""
    cm = dycl_jax.convert(ArgmaxOfAMask().eval())
    x = torch.tensor([-1.0, 2.0, 3.0])
    with pytest.raises(RuntimeError) as eager:
        ArgmaxOfAMask()(x)
    with pytest.raises(RuntimeError, match="does not support bool") as ours:
        cm(x)
    assert type(ours.value) is type(eager.value)
