"""What a user helper hands back, for aliasing: a tensor written in place in one region that may
be (or view) another name read later must be exact or refused at the user's line.

* A helper that may return any of several parameters (``return a if first else b``) links its
  result to each of them (only the first was linked: a write through the result to ``b`` was
  lost with no error).
* A parameter passed by keyword (``self.keep(x, h=b)``) is linked like one passed by position
  (it was not linked at all).
* A helper returning a tuple display (``return self.out(h), h``) links each unpacked target to
  the arguments of its own element only: the standard min-length masking of a decoding loop,
  ``logits, h = self.step(tok, h); logits[:, EOS] = -inf``, converts (review 27b min_06: refused
  as a possible alias of ``h``)."""

from __future__ import annotations

import pytest
import torch
import torch.nn as nn

import dycl_jax
from dycl_jax.errors import UnsupportedConstructError
from dycl_jax.testing import assert_same

EOS = 2


class MinLengthDecoder(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.emb = nn.Embedding(8, 6)
        self.cell = nn.GRUCell(6, 6)
        self.out = nn.Linear(6, 8)

    def step(self, tok, h):
        h = self.cell(self.emb(tok), h)
        return self.out(h), h

    def forward(self, tok, min_len: int = 3, max_len: int = 6):
        h = torch.zeros(tok.size(0), 6)
        out = []
        for t in range(max_len):
            logits, h = self.step(tok, h)
            if t < min_len:
                logits[:, EOS] = float("-inf")
            tok = logits.argmax(-1)
            out.append(tok)
            if (tok == EOS).all():
                break
        return torch.stack(out, 1), h


class DynamicStepDecoder(MinLengthDecoder):
    """The step helper branches on a tensor: its own host program (a dynamic call)."""

    def step(self, tok, h):
        h = self.cell(self.emb(tok), h)
        if h.sum() > 0:
            h = h * 0.5
        return self.out(h), h


@pytest.mark.parametrize("cls", [MinLengthDecoder, DynamicStepDecoder])
def test_masking_the_logits_a_step_helper_returns_beside_the_state(
    cls: type[MinLengthDecoder],
) -> None:
    lengths = set()
    for seed in range(6):
        torch.manual_seed(seed)
        m = cls().eval()
        cm = dycl_jax.convert(m)
        for tok in (torch.tensor([1]), torch.tensor([5])):
            with torch.no_grad():
                want = m(tok)
            assert_same(cm(tok), want, rtol=1e-5, atol=1e-5)
            lengths.add(want[0].shape[1])
    assert len(lengths) > 1  # some runs stop at EOS, others run to max_len


class PickOne(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.lin = nn.Linear(4, 4)

    def pick(self, a, b, first: bool):
        return a if first else b

    def forward(self, x):
        a = self.lin(x)
        b = x * 2
        c = self.pick(a, b, False)
        if c.sum() > 0:
            c.add_(1)
        return b, c


class Keep(PickOne):
    def keep(self, x, h):
        return h

    def forward(self, x):
        b = x * 2
        c = self.keep(x, h=b)
        if c.sum() > 0:
            c.add_(1)
        return b, c


class Swap(PickOne):
    def swap(self, a, b):
        return b, a

    def forward(self, x):
        a = self.lin(x)
        b = x * 2
        p, q = self.swap(a, b)
        if p.sum() > 0:
            p.add_(1)
        return b, p, q


class KwargsKeep(PickOne):
    def keep(self, x, **state):
        return state["h"]

    def forward(self, x):
        b = x * 2
        c = self.keep(x, h=b)
        if c.sum() > 0:
            c.add_(1)
        return b, c


class DynamicSwap(PickOne):
    def swap(self, a, b):
        if a.sum() > 0:
            a = a * 1
        return b, a

    def forward(self, x):
        a = self.lin(x)
        b = x * 2
        p, q = self.swap(a, b)
        if p.sum() > 0:
            p.add_(1)
        return b, p, q


class LocalPick(PickOne):
    def forward(self, x):
        pick = lambda a, b, first: a if first else b  # noqa: E731
        a = self.lin(x)
        b = x * 2
        c = pick(a, b, False)
        if c.sum() > 0:
            c.add_(1)
        return b, c


class LocalKeep(PickOne):
    def forward(self, x):
        def keep(x, h):
            return h

        b = x * 2
        c = keep(x, h=b)
        if c.sum() > 0:
            c.add_(1)
        return b, c


@pytest.mark.parametrize(
    "cls", [PickOne, Keep, KwargsKeep, Swap, DynamicSwap, LocalPick, LocalKeep]
)
def test_a_write_through_what_a_helper_hands_back_names_the_real_alias(
    cls: type[nn.Module],
) -> None:
    # eager writes `b` through the helper's result: the converted model must not lose it
    with pytest.raises(UnsupportedConstructError, match="may share memory with 'b'") as e:
        dycl_jax.convert(cls().eval())
    assert e.value.location is not None and e.value.location.filename == __file__


class StepThenWrite(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.lin = nn.Linear(4, 4)

    def step(self, x, h):
        return self.lin(x), h

    def forward(self, x):
        b = x * 2
        o, c = self.step(x, b)
        if o.sum() > 0:
            o.add_(1)
        return b, c, o


class SwapThenWrite(Swap):
    def forward(self, x):
        a = self.lin(x)
        b = x * 2
        p, q = self.swap(a, b)
        if q.sum() > 0:
            q.add_(1)  # q is a, read again only through q
        return b, p, q


@pytest.mark.parametrize("cls", [StepThenWrite, SwapThenWrite])
def test_a_write_to_an_element_no_argument_reaches_converts(cls: type[nn.Module]) -> None:
    torch.manual_seed(0)
    m = cls().eval()
    cm = dycl_jax.convert(m)
    for s in (1.0, -1.0, 0.5, -3.0):
        x = torch.full((1, 4), s)
        with torch.no_grad():
            want = m(x)
        assert_same(cm(x), want, rtol=1e-6, atol=1e-6)


# ---- review 28b: an element of what a helper returns may be its argument through a call ------


class PassThrough(nn.Module):
    def forward(self, t):
        return t


class ElementThroughACall(nn.Module):
    """``return <a call handing back its argument>(h), h``: both targets may be h."""

    def __init__(self, form: str) -> None:
        super().__init__()
        self.form = form
        self.lin = nn.Linear(4, 4)
        self.drop = nn.Dropout(0.1)
        self.ident = nn.Identity()
        self.user = PassThrough()
        self.fn = lambda t: t

    def step(self, x, h):
        if self.form == "dropout":
            return self.drop(h), self.lin(x)
        if self.form == "identity":
            return self.ident(h), self.lin(x)
        if self.form == "user_module":
            return self.user(h), self.lin(x)
        if self.form == "functional":
            return torch.nn.functional.dropout(h, 0.1, False), self.lin(x)
        if self.form == "lambda":
            return self.fn(h), self.lin(x)
        a, b = self.inner(x, h)  # "nested": through another helper
        return b, a

    def inner(self, x, h):
        return self.lin(x), h

    def forward(self, x):
        h = x * 2
        a, logits = self.step(x, h)
        if logits.sum() > 0:
            a.mul_(2)
        return logits, h + 0


@pytest.mark.parametrize(
    "form", ["dropout", "identity", "user_module", "functional", "lambda", "nested"]
)
def test_an_element_handed_back_through_a_call_is_an_alias(form: str) -> None:
    with pytest.raises(UnsupportedConstructError, match="may share memory with 'h'") as e:
        dycl_jax.convert(ElementThroughACall(form).eval())
    assert e.value.location is not None and e.value.location.filename == __file__


class SlicedState(nn.Module):
    """Review 28b min_01, min_16, min_17: two elements that share one new tensor
    (`return y[:, :3], y`), a tensor handed back from **kwargs, and the module's own state."""

    def __init__(self) -> None:
        super().__init__()
        self.cell = nn.GRUCell(6, 6)
        self.out = nn.Linear(6, 6)
        self.mem = None

    def step(self, x, h):
        y = self.cell(x, h)
        return y[:, :3], y

    def forward(self, x, h):
        a, b = self.step(x, h)
        if b.max() > 0:
            a.mul_(0.5)
        return b


class StateFromKwargs(SlicedState):
    def step(self, x, **state):  # type: ignore[override]
        return self.out(x), state["h"]

    def forward(self, x, h):
        b, a = self.step(x, h=h)
        if b.max() > 0:
            a.mul_(0.5)
        return h


class ModuleState(SlicedState):
    def step(self, x):  # type: ignore[override]
        return self.out(x), self.mem

    def forward(self, x, h):
        self.mem = self.cell(x, h)
        b, a = self.step(x)
        if b.max() > 0:
            a.mul_(0.5)
        return self.mem


@pytest.mark.parametrize(
    ("cls", "alias"), [(SlicedState, "b"), (StateFromKwargs, "h"), (ModuleState, "self")]
)
def test_elements_sharing_an_object_are_aliases(cls: type[nn.Module], alias: str) -> None:
    with pytest.raises(UnsupportedConstructError, match=f"may share memory with '{alias}'"):
        dycl_jax.convert(cls().eval())


class LocalDefThroughDropout(nn.Module):
    """A function defined in forward returning what eval dropout hands back: its argument."""

    def __init__(self) -> None:
        super().__init__()
        self.drop = nn.Dropout(0.1)
        self.lin = nn.Linear(3, 3)

    def forward(self, x):
        def g(t):
            return self.drop(t)

        h = self.lin(x)
        a = g(h)
        if x.sum() > 0:
            a.add_(1)  # writes h in eager
        return h


class LambdaThroughIdentity(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.keep = nn.Identity()
        self.lin = nn.Linear(3, 3)

    def forward(self, x):
        g = lambda t: self.keep(t)  # noqa: E731
        h = self.lin(x)
        a = g(h)
        if x.sum() > 0:
            a.mul_(2)
        return h


@pytest.mark.parametrize("cls", [LocalDefThroughDropout, LambdaThroughIdentity])
def test_a_local_function_handing_back_its_argument_through_a_call_is_an_alias(
    cls: type[nn.Module],
) -> None:
    with pytest.raises(UnsupportedConstructError, match="may share memory with 'h'") as e:
        dycl_jax.convert(cls().eval())(torch.ones(2, 3))
    assert e.value.location is not None and e.value.location.filename == __file__
