"""Functions defined inside forward that change forward's variables (closures appending to its
lists, writing its counters or the module) are inlined at their statement calls: each write
happens where eager PyTorch makes it, on every path. Other uses of them are refused at their line.
"""

from __future__ import annotations

import pytest
import torch
import torch.nn as nn

import dycl_jax
from dycl_jax.testing import assert_same


class Decoder(nn.Module):
    """The IBM seq2seq DecoderRNN shape: a nested ``decode`` collects each step's output in
    forward's lists, counts in a Python list, and returns the step's symbol."""

    def __init__(self) -> None:
        super().__init__()
        self.cell = nn.GRUCell(4, 4)
        self.out = nn.Linear(4, 5)

    def forward(self, x, steps: int = 4):
        outputs, symbols_seen = [], []
        counts = [0, 0]

        def decode(step, logits, scale=1.0):
            outputs.append(logits * scale)
            symbols = logits.argmax(-1)
            symbols_seen.append(symbols)
            if logits.mean() > 0.2:  # a tensor condition inside the closure
                counts[0] += 1
            else:
                counts[1] += step
            return symbols

        h = torch.zeros(x.shape[0], 4)
        for i in range(steps):
            h = self.cell(x, h)
            sym = decode(i, self.out(h), scale=0.5)
            x = x + sym.unsqueeze(-1).float() * 0.1
        return outputs, symbols_seen, counts, x


class ShadowsNames(nn.Module):
    """The closure's locals have the names of forward's: forward's keep their values."""

    def __init__(self) -> None:
        super().__init__()
        self.lin = nn.Linear(3, 3)

    def forward(self, x):
        h = x * 2
        seen = []

        def step(x):
            h = self.lin(x)
            seen.append(h)
            return h.sum()

        total = step(x)
        if total > 0:
            step(-x)
        return h, seen, total


class WritesModule(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.lin = nn.Linear(3, 3)
        self.fired = 0

    def forward(self, x):
        def bump(v):
            if v.sum() > 0:
                self.fired = self.fired + 1

        y = self.lin(x)
        bump(y)
        return y, self.fired


@pytest.mark.parametrize("scale", [0.1, 1.0, 5.0])
def test_closure_writing_forwards_lists_is_inlined(scale: float) -> None:
    torch.manual_seed(0)
    m = Decoder().eval()
    cm = dycl_jax.convert(m)
    for seed in range(3):
        x = torch.randn(2, 4, generator=torch.Generator().manual_seed(seed)) * scale
        assert_same(cm(x), m(x))
        assert_same(cm(x, steps=2), m(x, steps=2))


def test_both_paths_of_the_closures_condition_are_taken() -> None:
    torch.manual_seed(0)
    m = Decoder().eval()
    cm = dycl_jax.convert(m)
    counts = set()
    for s in (0.01, 0.3, 3.0, -3.0, -10.0):
        x = torch.full((1, 4), s)
        out = m(x)
        assert_same(cm(x), out)
        counts.add(tuple(out[2]))
    assert len(counts) > 1


def test_inlined_locals_do_not_clobber_forwards_names() -> None:
    torch.manual_seed(0)
    m = ShadowsNames().eval()
    cm = dycl_jax.convert(m)
    for s in (1.0, -1.0, 0.3):
        x = torch.full((1, 3), s)
        assert_same(cm(x), m(x))


def test_closure_writing_the_module() -> None:
    torch.manual_seed(0)
    m = WritesModule().eval()
    ref = WritesModule().eval()
    ref.load_state_dict(m.state_dict())
    cm = dycl_jax.convert(m)
    for s in (1.0, -1.0, 2.0):
        x = torch.full((1, 3), s)
        got, want = cm(x), ref(x)
        assert_same(got, want)
        assert m.fired == ref.fired


class InExpression(nn.Module):
    def forward(self, x):
        seen = []

        def keep(v):
            seen.append(v)
            return v * 2

        y = keep(x) + torch.relu(x)
        return y, seen


class AsValue(nn.Module):
    def forward(self, x):
        seen = []

        def keep(v):
            seen.append(v)

        list(map(keep, [x, x * 2]))
        return seen


class EarlyReturn(nn.Module):
    def forward(self, x):
        seen = []

        def keep(v):
            if v.sum() > 0:
                return v
            seen.append(v)
            return -v

        keep(x)
        return seen


@pytest.mark.parametrize(
    ("cls", "line_text", "message"),
    [
        (InExpression, "y = keep(x) + torch.relu(x)", "used here other than as a statement call"),
        (AsValue, "list(map(keep, [x, x * 2]))", "used here other than as a statement call"),
        (EarlyReturn, "return v", "returns before its last statement"),
    ],
)
def test_closures_that_cannot_be_inlined_are_refused_at_their_line(cls, line_text, message) -> None:
    import inspect

    src, first = inspect.getsourcelines(cls.forward)
    line = first + next(i for i, s in enumerate(src) if s.strip() == line_text)
    with pytest.raises(dycl_jax.UnsupportedConstructError, match=message) as info:
        dycl_jax.convert(cls().eval())(torch.ones(1, 3))
    assert info.value.location is not None
    assert info.value.location.lineno == line
    assert info.value.location.filename == __file__


class CallForms(nn.Module):
    """A closure writing an argument it is given, called in the statement forms users write:
    `return f(x), outs`, `t += f(x)`, `y: T = f(x) * 2`, and from another closure."""

    def __init__(self) -> None:
        super().__init__()
        self.lin = nn.Linear(3, 3)

    def forward(self, x):
        outs = []
        counts = {"n": 0}

        def add(lst, h):
            lst.append(h)
            counts["n"] += 1
            return h.sum()

        def step(h):
            h = self.lin(h)
            add(outs, h)
            return h

        total = torch.zeros(())
        total += add(outs, x)
        y: torch.Tensor = step(x) * 2
        if y.sum() > 0:
            return step(y), outs, counts, total
        return y, outs, counts, total


def test_closures_called_in_every_statement_form() -> None:
    torch.manual_seed(0)
    m = CallForms().eval()
    cm = dycl_jax.convert(m)
    lengths = set()
    for s in (1.0, -1.0, 3.0, -3.0):
        x = torch.full((1, 3), s) + torch.arange(3.0)
        with torch.no_grad():
            want = m(x)
        assert_same(cm(x), want)
        lengths.add(len(want[1]))
    assert lengths == {2, 3}
