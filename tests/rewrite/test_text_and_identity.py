"""Values Python turns into text, and identity tests, across region boundaries.

Formatting a tensor (f-strings, ``str``/``repr``/``format``, ``"{}".format``, ``"%s" %``, print,
logging) reads its value: it runs on the host every call, with the tensor shown as PyTorch shows
it (``tensor(3.)``). Traced, the capture-time string (``FakeTensor(...)``) was baked into the
region. ``a is b`` / ``id(t)`` compare the objects the host holds; in a region each input is its
own placeholder and the answer was baked in, and a staged select made a new array where the host
kept the object itself.
"""

from __future__ import annotations

import contextlib
import io
import logging

import numpy as np
import torch
import torch.nn as nn

import dycl_jax
from tests.helpers import assert_same


class Text(nn.Module):
    def forward(self, x):
        a = f"v={x.sum()}"
        b = str(x.max())
        c = f"{x.shape[0]}-{x.sum().item()}"
        d = f"{x.mean():.3f}|{x.min().item():+.2f}"
        e = "{} and {:.1f}".format(x[0, 0], float(x[0, 1]))  # noqa: UP032 (the form under test)
        f = "%s" % x.sum()  # noqa: UP031 (the form under test)
        g = repr(x[0]) + format(x.sum(), ".2f")
        if x.sum() > 0:
            return x * 2, (a, b, c, d, e, f, g)
        return x, (a, b, c, d, e, f, g)


def test_formatted_tensors_are_text_of_each_call() -> None:
    m = Text().eval()
    cm = dycl_jax.convert(m)
    for x in (torch.tensor([[1.0, 2.0]]), torch.tensor([[-3.5, 0.25]]), torch.ones(1, 2)):
        with torch.no_grad():
            want = m(x)
        got = cm(x)
        assert got[1] == want[1]
        assert_same(got[0], want[0])


class Printing(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.log = logging.getLogger("dycl_text_test")

    def forward(self, x):
        print("A", x.sum(), x[0])
        y = x * 2
        if x.sum() > 0:
            print("B", y.max().item(), sep=":")
            self.log.warning("pos %s %.2f", y.sum(), y.mean().item())
            y = y + 1
        print(f"C {float(y.min())} {y.min()}")
        return y


class _Records(logging.Handler):
    def __init__(self) -> None:
        super().__init__()
        self.messages: list[str] = []

    def emit(self, record: logging.LogRecord) -> None:
        self.messages.append(record.getMessage())


def test_print_and_logging_show_tensors_as_pytorch() -> None:
    m = Printing().eval()
    cm = dycl_jax.convert(m)
    records = _Records()
    m.log.addHandler(records)
    try:
        for x in (torch.tensor([[1.0, 2.0]]), torch.tensor([[-1.0, -2.0]])):
            outs = []
            for f in (m, cm):
                buf = io.StringIO()
                records.messages.clear()
                with contextlib.redirect_stdout(buf):
                    f(x)
                outs.append((buf.getvalue(), list(records.messages)))
            assert outs[0] == outs[1]
            assert "tensor(" in outs[0][0]
    finally:
        m.log.removeHandler(records)


class Identity(nn.Module):
    def forward(self, x):
        y = x * 2
        out = x if x.sum() > 0 else y
        same = out is x
        if out is y:
            z = out + 100
        else:
            z = out
        a, b = x[0].sum(), x[0].mean()
        m = max(a, b)
        return z, same, id(out) == id(x), m is a, m is not b


def test_identity_tests_see_the_objects_python_holds() -> None:
    m = Identity().eval()
    cm = dycl_jax.convert(m)
    for x in (torch.tensor([[1.0, 2.0]]), torch.tensor([[-1.0, -2.0]])):
        with torch.no_grad():
            want = m(x)
        got = cm(x)
        assert got[1:] == want[1:]
        np.testing.assert_array_equal(np.asarray(got[0]), want[0].numpy())


class IdentityInComprehension(nn.Module):
    def forward(self, x):
        a, b = x[0], x[1]
        lst = [a, b]
        best = a if a.sum() > b.sum() else b
        idx = [i for i, t in enumerate(lst) if t is best][0]
        names = {id(a): "a", id(b): "b"}
        return best * 1, idx, names[id(best)]


def test_identity_in_comprehensions_and_id_keys() -> None:
    m = IdentityInComprehension().eval()
    cm = dycl_jax.convert(m)
    for x in (torch.tensor([[1.0, 2.0], [0.0, 0.0]]), torch.tensor([[-1.0, -2.0], [3.0, 3.0]])):
        with torch.no_grad():
            want = m(x)
        got = cm(x)
        assert got[1:] == want[1:]
        np.testing.assert_array_equal(np.asarray(got[0]), want[0].numpy())


class PassedThrough(nn.Module):
    """Objects PyTorch hands back unchanged: ``y = x`` left by a branch, ``x.float()`` of a float
    tensor, ``x.contiguous()``; a region returns the live-in itself, not a copy."""

    def forward(self, x):
        y = x
        if x.sum() > 0:
            y = x + 1
        f = x.float()
        c = x.contiguous()
        if f is x:
            f = f + 10
        return y is x, c is x, f


def test_identity_of_tensors_returned_unchanged_by_a_region() -> None:
    m = PassedThrough().eval()
    cm = dycl_jax.convert(m)
    for x in (torch.tensor([1.0, 2.0]), torch.tensor([-1.0, -2.0])):
        want = m(x)
        got = cm(x)
        assert got[:2] == want[:2]
        np.testing.assert_array_equal(np.asarray(got[2]), want[2].numpy())


def test_text_of_tensors_in_containers_and_iterated_items() -> None:
    class Containers(nn.Module):
        def forward(self, x):
            s = x.sum()
            texts = ["%s|%r" % (s, s), str([s]), f"{(s, s)}", "-".join(str(v) for v in x)]  # noqa: UP031
            if s > 0:
                return x * 2, texts
            return x, texts

    m = Containers().eval()
    cm = dycl_jax.convert(m)
    for x in (torch.tensor([1.0, 1.5]), torch.tensor([-1.0, 0.25])):
        assert cm(x)[1] == m(x)[1]


class PickedFromContainer(nn.Module):
    """A tensor taken out of a live-in list or dict by a host int (``best = cands[k]``) is that
    object; one the region replaced in the container is not."""

    def __init__(self) -> None:
        super().__init__()
        self.lin = nn.Linear(4, 4)

    def forward(self, x):
        h = self.lin(x)
        cands = [x, h]
        named = {"x": x, "h": h}
        k = int(torch.stack([c.abs().max() for c in cands]).argmax())
        best = cands[k]
        other = named["x" if k == 0 else "h"]
        cands[0] = cands[0] * 1  # a new tensor at the place x was
        again = cands[0]
        return best, best is x, other is x, again is x, cands[0] is again


def test_identity_of_tensors_picked_out_of_live_in_containers() -> None:
    torch.manual_seed(0)
    m = PickedFromContainer().eval()
    cm = dycl_jax.convert(m)
    seen = set()
    for x in (torch.tensor([[5.0, -5.0, 0.0, 1.0]]), torch.tensor([[0.01, 0.0, 0.0, 0.0]])):
        with torch.no_grad():
            want = m(x)
        got = cm(x)
        assert got[1:] == want[1:]
        seen.add(want[1])
        np.testing.assert_allclose(np.asarray(got[0]), want[0].numpy(), rtol=1e-6)
    assert seen == {True, False}


class SelfAttention(nn.Module):
    def forward(self, query, key, feats):
        uniq = []
        for f in feats:
            if not any(f is u for u in uniq):
                uniq.append(f)
        if key is query and query.sum() > 0:
            return query * 2, len(uniq)
        return query + key, len(uniq)


def test_one_tensor_passed_twice_is_one_object() -> None:
    m = SelfAttention().eval()
    cm = dycl_jax.convert(m)
    x, y = torch.ones(1, 2), torch.full((1, 2), 2.0)
    for args in ((x, x, [x, x]), (x, y, [x, y]), (y, y, [y, x, y])):
        want = m(*args)
        got = cm(*args)
        assert got[1] == want[1]
        np.testing.assert_array_equal(np.asarray(got[0]), want[0].numpy())


class MemberOfList(nn.Module):
    def forward(self, x):
        outs = [x * 2, x * 3]
        if x.sum() > 0:
            outs.append(x)
        try:
            found = x in outs
        except RuntimeError:
            found = None
        return found


def test_tensor_in_a_list_follows_python_and_pytorch() -> None:
    m = MemberOfList().eval()
    cm = dycl_jax.convert(m)
    for x in (torch.ones(2), -torch.ones(2), torch.ones(1)):
        assert cm(x) == m(x)
