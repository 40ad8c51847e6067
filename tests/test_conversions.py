"""Python conversions of one-element tensors that are not 0-d (``int(t)`` with ``t`` of shape
(1,)): PyTorch allows them, a jax array only converts when 0-d."""

from __future__ import annotations

import pytest
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


class ConversionErrors(nn.Module):
    """Each conversion under the handler PyTorch's exception takes (a tensor of several elements
    or of none): the converted model must raise the same type, or the handler is skipped."""

    def forward(self, x):
        out = []
        try:
            out.append(x.item())
        except RuntimeError:
            out.append("item")
        try:
            out.append(int(x))
        except ValueError:
            out.append("int")
        try:
            out.append(float(x))
        except ValueError:
            out.append("float")
        try:
            out.append(bool(x > 0))
        except RuntimeError:
            out.append("bool")
        empty = x[x > 100]
        try:
            out.append("empty true" if empty else "empty false")
        except RuntimeError:
            out.append("empty")
        return out, x.sum().item()


def test_conversion_errors_are_pytorchs_exception_types() -> None:
    m = ConversionErrors().eval()
    cm = dycl_jax.convert(m)
    for x in (torch.tensor([[1.0, 2.0, 3.0]]), torch.tensor([[5.0]]), torch.zeros(1, 0)):
        with torch.no_grad():
            expected = m(x)
        assert cm(x) == expected
    # the handlers ran on the first input, the conversions on the second
    assert m(torch.tensor([[1.0, 2.0]]))[0] == ["item", "int", "float", "bool", "empty"]
    assert m(torch.tensor([[5.0]]))[0] == [5.0, 5, 5.0, True, "empty"]


def test_an_uncaught_conversion_error_is_pytorchs_own() -> None:
    class Item(nn.Module):
        def forward(self, x):
            h = x * 2
            return h.item()

    cm = dycl_jax.convert(Item().eval())
    try:
        Item()(torch.ones(2))
    except RuntimeError as e:
        expected = str(e)
    with pytest.raises(RuntimeError) as got:
        cm(torch.ones(2))
    assert str(got.value) == expected
