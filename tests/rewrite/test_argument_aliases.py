"""Writes into an argument's object made through another name (a view, a rename, an entry of a
container, a loop item): the converted program gets copies of forward's arguments and a helper
with its own host program gets the caller's arrays, so such a write is refused at the user's
line, or made exact where the caller's program sees it (a helper traced into the caller's
region). The direct forms (``x.add_(1)``, ``acc.append(h)``) are in test_host_reads."""

from __future__ import annotations

import copy

import pytest
import torch
import torch.nn as nn

import dycl_jax
from dycl_jax.analysis import aliasing
from dycl_jax.errors import UnsupportedConstructError
from dycl_jax.testing import assert_same


class ViewOfArgument(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.lin = nn.Linear(6, 6)

    def forward(self, x):
        y = x[:, :3]
        y.zero_()  # eager: the caller's x changes
        return self.lin(x)


class ItemOfListArgument(nn.Module):
    def forward(self, xs):
        first = xs[0]
        first.mul_(2)  # the caller's tensor, held by the caller's list
        return xs[1] * 3


class EntryOfDictArgument(nn.Module):
    def forward(self, x, state):
        h = state["h"]
        if x.sum() > 0:
            h.add_(x)
        return x * 2


class LoopItemsOfArgument(nn.Module):
    def forward(self, x, hs):
        for t in hs:
            u = t
            u[:, 0] = 0.0
        return x * 2


class HelperWritesThroughAView(nn.Module):
    """A helper with its own host program masks part of its argument under a condition (the
    caller's h is a different array there: the write would be lost)."""

    def __init__(self) -> None:
        super().__init__()
        self.lin = nn.Linear(6, 6)

    def fill(self, h):
        if h.sum() > 0:
            y = h[:, :3]
            y.zero_()
        return h.sum()

    def forward(self, x):
        h = self.lin(x)
        s = self.fill(h)
        return h, s


class HelperTracedIntoTheRegion(nn.Module):
    """The same write by a helper called inside a region: traced with the caller, exact."""

    def __init__(self) -> None:
        super().__init__()
        self.lin = nn.Linear(6, 6)

    def fill(self, h):
        y = h[:, :3]
        y.mul_(2)
        return y

    def forward(self, x):
        h = self.lin(x)
        if h.sum() > 0:
            self.fill(h)
        return h


@pytest.mark.parametrize(
    ("cls", "args", "line", "name"),
    [
        (ViewOfArgument, lambda: (torch.randn(2, 6),), "y.zero_()", "x"),
        (ItemOfListArgument, lambda: ([torch.ones(2), torch.ones(2)],), "first.mul_(2)", "xs"),
        (EntryOfDictArgument, lambda: (torch.ones(2), {"h": torch.ones(2)}), "h.add_(x)", "state"),
        (LoopItemsOfArgument, lambda: (torch.ones(2), [torch.ones(2, 2)]), "u[:, 0] = 0.0", "hs"),
    ],
)
def test_forward_writing_its_argument_through_another_name_is_refused(
    cls: type[nn.Module], args, line: str, name: str
) -> None:
    with pytest.raises(UnsupportedConstructError, match=f"writes into its argument '{name}'") as e:
        dycl_jax.convert(cls().eval())(*args())
    assert e.value.location is not None and e.value.location.filename == __file__
    assert line in e.value.location.source_line()


def test_a_helper_writing_its_argument_through_a_view_is_refused_at_the_call() -> None:
    m = HelperWritesThroughAView().eval()
    with pytest.raises(UnsupportedConstructError, match="writes its argument 'h' in place") as e:
        dycl_jax.convert(m)(torch.randn(2, 6))
    assert e.value.location is not None and "s = self.fill(h)" in e.value.location.source_line()


def test_a_helper_traced_into_the_callers_region_writes_through_its_view_exactly() -> None:
    torch.manual_seed(0)
    m = HelperTracedIntoTheRegion().eval()
    cm = dycl_jax.convert(copy.deepcopy(m))
    for sign in (1.0, -1.0, 2.0, -2.0):
        x = torch.randn(2, 6) * sign + sign
        with torch.no_grad():
            assert_same(cm(x), m(x))


class RebindsFirst(nn.Module):
    """Writes made after the name stopped referencing the argument: exact, not refused."""

    def forward(self, x, xs):
        y = x[:, :3]
        y = y.clone()
        y.zero_()
        first = xs[0].clone()
        first.mul_(2)
        held = [x]
        held[0] = torch.zeros_like(x)  # replaces an entry of a new list: x is not written
        return y + first[:, :3], held[0]


def test_names_rebound_before_the_write_or_entries_replaced_are_not_argument_writes() -> None:
    m = RebindsFirst().eval()
    x, xs = torch.randn(2, 6), [torch.randn(2, 6)]
    cm = dycl_jax.convert(m)
    got = cm(x.clone(), [t.clone() for t in xs])
    assert_same(got, m(x, xs))


@pytest.mark.parametrize(
    ("src", "expected"),
    [
        ("def f(x):\n    y = x.view(-1)\n    y.add_(1)\n", {"x": 3}),
        ("def f(x, c):\n    y = x if c else x * 2\n    y.add_(1)\n", {"x": 3}),
        ("def f(x):\n    y = x\n    y = y * 2\n    y.add_(1)\n", {}),
        ("def f(d):\n    h = d['k']\n    h[0] = 1\n", {"d": 3}),
        ("def f(x):\n    hs = [x]\n    hs[0].add_(1)\n", {"x": 3}),
        ("def f(x):\n    hs = [x]\n    hs[0] = 1\n    hs.append(2)\n", {}),
        ("def f(x):\n    for i in range(2):\n        y = x[i]\n        y.mul_(2)\n", {"x": 4}),
        (
            "def f(x):\n    while x.sum() > 0:\n        y = x\n        x = x - 1\n    y.add_(1)\n",
            {"x": 5},
        ),
    ],
)
def test_param_writes_follows_aliases_flow_sensitively(src: str, expected: dict) -> None:
    import ast

    fn = ast.parse(src).body[0]
    assert aliasing.param_writes(fn) == expected
