"""Tensors used where Python needs a value: list indices, slice bounds, ``torch.allclose``
conditions, ``max(..., key=...)`` keys, tie-sensitive selections, masked writes, and the
scoping and dispatch details around them (comprehension variables, ``super().forward``,
``self.blocks[:k]``). Each is exact on every path (compared with eager PyTorch)."""

from __future__ import annotations

import numpy as np
import pytest
import torch
import torch.nn as nn
import torch.nn.functional as F

import dycl_jax
from dycl_jax.testing import assert_same
from tests.conftest import Records
from tests.helpers import run_all_paths


def _inputs(*shape: int, n: int = 4, seed: int = 0) -> list[tuple[torch.Tensor]]:
    g = torch.Generator().manual_seed(seed)
    return [(torch.randn(*shape, generator=g) * s,) for s in (1.0, -1.0, 3.0, -3.0)[:n]]


class ListIndexedByTensor(nn.Module):
    """``outs[confs.argmax()]``: the most confident head, picked from a Python list."""

    def __init__(self) -> None:
        super().__init__()
        self.heads = nn.ModuleList([nn.Linear(4, 3) for _ in range(3)])

    def forward(self, x):
        outs = [h(x) for h in self.heads]
        confs = torch.stack([o.softmax(-1).max() for o in outs])
        best = outs[confs.argmax()]
        return best, outs[-1]


def test_list_indexed_by_a_tensor() -> None:
    torch.manual_seed(0)
    m = ListIndexedByTensor().eval()
    cm = dycl_jax.convert(m)
    picked = set()
    for (x,) in _inputs(2, 4, n=4) + _inputs(2, 4, n=4, seed=3):
        with torch.no_grad():
            want = m(x)
            confs = torch.stack([h(x).softmax(-1).max() for h in m.heads])
        picked.add(int(confs.argmax()))
        assert_same(cm(x), want)
    assert len(picked) >= 2, picked  # the inputs pick different heads


class SliceBoundFromTensor(nn.Module):
    """``y[i, :lens[i]]``: per-row lengths in a tensor (the end of every beam-search decoder)."""

    def __init__(self) -> None:
        super().__init__()
        self.lin = nn.Linear(4, 4)

    def forward(self, x, lens):
        y = self.lin(x)
        res = []
        for i in range(y.shape[0]):
            res.append(y[i, : lens[i]].sum() + y[i, lens[i] - 1 :: 2].sum())
        return torch.stack(res)


def test_slice_bound_from_a_tensor() -> None:
    torch.manual_seed(0)
    m = SliceBoundFromTensor().eval()
    cm = dycl_jax.convert(m)
    x = torch.randn(3, 4)
    for lens in ([1, 3, 4], [4, 2, 1], [2, 2, 2]):
        t = torch.tensor(lens)
        with torch.no_grad():
            assert_same(cm(x, t), m(x, t))


class AllCloseCondition(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.lin = nn.Linear(4, 4)

    def forward(self, x):
        y = self.lin(x)
        if torch.allclose(y, x, atol=1.0):
            return y
        if y.equal(y.clone()) and not x.allclose(y, rtol=0.0, atol=0.0):
            return y * 2
        return y - 1


def test_allclose_and_equal_as_conditions() -> None:
    torch.manual_seed(0)
    m = AllCloseCondition().eval()
    cm = dycl_jax.convert(m)
    ins = [(torch.randn(2, 4),), (torch.randn(2, 4) * 0.01,)]
    paths = set()
    for bias in (0.5, 3.0):  # y = x + bias: close to x, then not
        with torch.no_grad():
            m.lin.weight.copy_(torch.eye(4))
            m.lin.bias.fill_(bias)
        paths |= run_all_paths(m, cm, ins)
    assert len(paths) == 2


class MaxByKey(nn.Module):
    """``max(outs, key=lambda o: ...)`` with tensor work (and a ``.item()``) in the key."""

    def __init__(self) -> None:
        super().__init__()
        self.heads = nn.ModuleList([nn.Linear(4, 3) for _ in range(3)])

    def forward(self, x):
        outs = [h(x) for h in self.heads]
        best = max(outs, key=lambda o: o.softmax(-1).max().item())
        worst = min(outs, key=lambda o: o.softmax(-1).max())
        ranked = sorted(outs, key=lambda o: float(o.sum()), reverse=True)
        o = x  # the lambdas' parameter must not rebind the function's own `o`
        return best, worst, ranked[0] - ranked[-1], o


def test_max_min_sorted_with_tensor_keys() -> None:
    torch.manual_seed(0)
    m = MaxByKey().eval()
    cm = dycl_jax.convert(m)
    for (x,) in _inputs(2, 4):
        with torch.no_grad():
            assert_same(cm(x), m(x))


class FirstMatch(nn.Module):
    """``next(generator with a tensor test[, default])``: the first item, later items never
    computed (``self.calls``), nested generators stopping at the first, ``StopIteration``."""

    def __init__(self) -> None:
        super().__init__()
        self.heads = nn.ModuleList([nn.Linear(4, 4) for _ in range(3)])
        self.calls = 0
        self.bar = 0.0

    def head(self, h, x):
        self.calls += 1
        return h(x)

    def forward(self, x):
        self.calls = 0
        outs = [h(x) for h in self.heads]
        first = next((o for o in outs if o.sum() > self.bar), x)
        groups = [[x, -x], [x * 2, x * 3]]
        pair = next(t for g in groups for t in g if t.sum() > 0)
        lazy = next((self.head(h, x) for h in self.heads if h(x).sum() > 0), None)
        try:
            big = next(t for t in outs if t.sum() > 100)
        except StopIteration:
            big = x * 0
        return first, first is x, pair, lazy, big, self.calls


def test_next_of_a_generator_with_tensor_tests() -> None:
    torch.manual_seed(0)
    m = FirstMatch().eval()
    cm = dycl_jax.convert(m)
    firsts = set()
    for x in [torch.full((1, 4), v) for v in (-5.0, 5.0, 0.5, -0.5)] + [torch.randn(1, 4)]:
        for m.bar in (0.0, 1e6):  # no item passes: the default, x itself
            with torch.no_grad():
                want = m(x)
            assert_same(cm(x), want)
            firsts.add(want[1])
    assert firsts == {True, False}


class ComprehensionScope(nn.Module):
    """A comprehension with host work is run as an explicit loop: its variable must stay its
    own (``x`` below is the argument again after the comprehension, as in Python 3)."""

    def __init__(self) -> None:
        super().__init__()
        self.lin = nn.Linear(4, 4)

    def forward(self, x):
        xs = [x, x * 2, -x]
        confs = [self.lin(x).sum().item() for x in xs]
        pairs = [float(a.sum()) * b for a in xs for b in (1, 2) if b > 1]
        if confs[0] > 0:
            return x + 1, pairs
        return x - 1, pairs


def test_comprehension_variables_do_not_leak() -> None:
    m = ComprehensionScope().eval()
    assert len(run_all_paths(m, dycl_jax.convert(m), _inputs(1, 4))) == 2


class Gate(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.lin = nn.Linear(4, 4)

    def forward(self, x):
        y = self.lin(x)
        if y.mean() > 0:
            return y
        return -y


class GateChild(Gate):
    """``super().forward`` of a parent with tensor-dependent control flow."""

    def forward(self, x):
        y = super().forward(x)
        if y.sum() > 1:
            return y
        return y + 1


class FirstBlocks(nn.Module):
    """``self.blocks[:k]`` over blocks with tensor-dependent control flow."""

    def __init__(self) -> None:
        super().__init__()
        self.blocks = nn.ModuleList([Gate() for _ in range(4)])

    def forward(self, x, k: int = 2):
        for b in self.blocks[:k]:
            x = b(x)
        for b in self.blocks[k:][::-1]:
            x = b(x) * 0.5
        return x


def test_super_forward_of_a_dynamic_parent() -> None:
    torch.manual_seed(0)
    m = GateChild().eval()
    assert len(run_all_paths(m, dycl_jax.convert(m), _inputs(1, 4))) >= 2


def test_sliced_module_list_of_dynamic_blocks() -> None:
    torch.manual_seed(0)
    m = FirstBlocks().eval()
    cm = dycl_jax.convert(m)
    for (x,) in _inputs(1, 4):
        for k in (1, 3):
            with torch.no_grad():
                assert_same(cm(x, k), m(x, k))


class NumpyRoundTrip(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.lin = nn.Linear(4, 4)

    def forward(self, x):
        y = self.lin(x)
        a = y.detach().numpy()
        z = torch.from_numpy(a) * 2 + torch.from_numpy(a.astype(np.float64)).sum()
        if z.sum() > 0:
            return z
        return y


def test_from_numpy_after_numpy() -> None:
    torch.manual_seed(0)
    m = NumpyRoundTrip().eval()
    assert len(run_all_paths(m, dycl_jax.convert(m), _inputs(2, 4))) == 2


class MaskedWrites(nn.Module):
    """``out[mask] = f(x[mask])``: top-1 routing to two experts, per row."""

    def __init__(self) -> None:
        super().__init__()
        self.a = nn.Linear(4, 4)
        self.b = nn.Linear(4, 4)

    def forward(self, x):
        out = torch.zeros_like(x)
        mask = x.sum(-1) > 0
        out[mask] = self.a(x[mask])
        out[~mask] = self.b(x[~mask])
        out[mask] += 1.0
        return out


def test_masked_writes_with_per_row_values() -> None:
    torch.manual_seed(0)
    m = MaskedWrites().eval()
    cm = dycl_jax.convert(m)
    g = torch.Generator().manual_seed(1)
    xs = [torch.randn(6, 4, generator=g) for _ in range(3)]
    xs += [torch.ones(3, 4), -torch.ones(3, 4)]  # all rows one way, then the other
    for x in xs:
        with torch.no_grad():
            assert_same(cm(x), m(x))


class TopkRouter(nn.Module):
    """A bias-free router: an all-zero (padding) row gives equal logits, where the experts
    chosen follow PyTorch's own tie order."""

    def __init__(self) -> None:
        super().__init__()
        self.router = nn.Linear(4, 6, bias=False)

    def forward(self, x):
        logits = self.router(x)
        w, idx = torch.topk(logits, 2, dim=-1)
        order = logits.argsort(dim=-1, descending=True)
        s = logits.sort(dim=-1).indices
        kth = logits.kthvalue(2, dim=-1).indices
        stable = logits.sort(dim=-1, stable=True).indices
        if idx[0, 0] > 2:
            return idx, w, order, s, kth, stable
        return idx, w * 0, order, s, kth, stable


def test_topk_and_sort_ties_follow_pytorch() -> None:
    torch.manual_seed(0)
    m = TopkRouter().eval()
    cm = dycl_jax.convert(m)
    xs = [torch.zeros(3, 4), torch.randn(3, 4), torch.cat([torch.zeros(2, 4), torch.randn(2, 4)])]
    for x in xs:
        with torch.no_grad():
            assert_same(cm(x), m(x))


class Leaky(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.act = nn.LeakyReLU(0.1)
        self.lin = nn.Linear(4, 4)

    def forward(self, x):
        y = self.act(self.lin(x))
        if y.sum() > 0:
            return y
        return -y


def test_torch_builtin_module_attributes_are_followed() -> None:
    """``LeakyReLU.negative_slope`` (and every public attribute of a torch built-in module) read
    by a capture is guarded: changing it after convert recaptures."""
    torch.manual_seed(0)
    m = Leaky().eval()
    cm = dycl_jax.convert(m)
    ins = _inputs(3, 4)
    for (x,) in ins:
        with torch.no_grad():
            assert_same(cm(x), m(x))
    m.act.negative_slope = 0.5
    for (x,) in ins:
        with torch.no_grad():
            assert_same(cm(x), m(x))


class ListSort(nn.Module):
    """Beam-search bookkeeping: ``cand.sort(...)`` on a Python list of (score, tensor) pairs,
    with and without a key, and ``sorted(range(n), key=...)`` reading tensors."""

    def __init__(self) -> None:
        super().__init__()
        self.heads = nn.ModuleList([nn.Linear(4, 4) for _ in range(3)])

    def forward(self, x):
        cand = []
        for i, h in enumerate(self.heads):
            y = h(x)
            cand.append((y.sum().item(), i, y))
        cand.sort()
        ranked = [(c[2].mean(), c[2]) for c in cand]
        ranked.sort(key=lambda c: c[0].item(), reverse=True)
        scores = [h(x).mean() for h in self.heads]
        order = sorted(range(len(scores)), key=lambda i: -scores[i].item())
        return cand[-1][2], [c[1] for c in cand], ranked[0][1], order


def test_list_sort_in_place_and_sorted_keys_over_indices() -> None:
    torch.manual_seed(0)
    m = ListSort().eval()
    cm = dycl_jax.convert(m)
    for (x,) in _inputs(2, 4):
        with torch.no_grad():
            assert_same(cm(x), m(x))


class DecoratedHelper(nn.Module):
    """``@torch.no_grad()`` on a helper with tensor-dependent control flow."""

    def __init__(self) -> None:
        super().__init__()
        self.lin = nn.Linear(4, 4)

    @torch.no_grad()
    def helper(self, x):
        y = self.lin(x)
        if y.mean() > 0:
            return y
        return -y

    @torch.inference_mode()
    def other(self, x):
        if x.sum() > 0:
            return x * 2
        return x

    def forward(self, x):
        return self.other(self.helper(x) + 1)


def test_no_grad_decorated_dynamic_helpers() -> None:
    torch.manual_seed(0)
    m = DecoratedHelper().eval()
    assert len(run_all_paths(m, dycl_jax.convert(m), _inputs(2, 4))) >= 2


class ListEntryWrite(nn.Module):
    """``outs[j + 1] = a``: rebinding an entry of a Python list is not an in-place tensor write."""

    def __init__(self) -> None:
        super().__init__()
        self.lin = nn.Linear(4, 4)

    def forward(self, x):
        outs = [self.lin(r) for r in x]
        for j, (a, b) in enumerate(zip(outs, outs[1:])):
            if (a - b).abs().sum() < 2.0:
                outs[j + 1] = a
        return torch.stack(outs)


def test_list_entry_writes_run_on_the_host() -> None:
    torch.manual_seed(0)
    m = ListEntryWrite().eval()
    cm = dycl_jax.convert(m)
    g = torch.Generator().manual_seed(2)
    for x in (torch.randn(4, 4, generator=g) * s for s in (0.1, 1.0, 3.0)):
        with torch.no_grad():
            assert_same(cm(x), m(x))


class Bincount(nn.Module):
    def forward(self, x):
        ids = x.argmax(-1)
        counts = torch.bincount(ids, minlength=2)
        if counts.max() > 1:
            return counts * 2
        return counts


def test_bincount_runs_in_pytorch_on_the_host() -> None:
    m = Bincount().eval()
    g = torch.Generator().manual_seed(0)
    ins = [(torch.randn(n, 5, generator=g),) for n in (1, 6, 6)]
    assert len(run_all_paths(m, dycl_jax.convert(m), ins)) == 2


class _Gate:
    """A plain (non-Module) callable helper with tensor-dependent control flow."""

    def __init__(self, lin: nn.Module) -> None:
        self.lin = lin
        self.scale = 2.0

    def __call__(self, h):
        if self.lin(h).mean() > 0:
            return h * self.scale
        return h


class CallableObject(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.lin = nn.Linear(4, 4)
        self.gate = _Gate(self.lin)

    def forward(self, x):
        return self.gate(x) + 1


def test_plain_callable_helper_object() -> None:
    torch.manual_seed(0)
    m = CallableObject().eval()
    cm = dycl_jax.convert(m)
    assert len(run_all_paths(m, cm, _inputs(2, 4))) == 2
    m.gate.scale = -3.0  # a field of the helper, changed after convert
    assert len(run_all_paths(m, cm, _inputs(2, 4))) == 2


class ScalarIndexAndFormat(nn.Module):
    """``p[0, k]`` and ``lg[:, k] = 0`` with ``k = ....argmax()`` (PyTorch reads a 0-d index
    inside a multi-dimensional index as an int), a label list indexed by it, and strings
    formatted from tensors and from values read back."""

    def __init__(self) -> None:
        super().__init__()
        self.lin = nn.Linear(4, 3)
        self.names = ["cat", "dog", "eel"]

    def forward(self, x):
        p = self.lin(x).softmax(-1)
        k = p[0].argmax()
        label = self.names[k]
        msg = "%s=%.3f" % (label, p[0, k])  # noqa: UP031 (the form under test)
        tag = "{}:{:d}".format(label, int(k))  # noqa: UP032
        lg = self.lin(x)
        lg[:, lg.sum(0).argmax()] = 0.0
        near = p[0, k - 1] + p[0, (k + 1) % 3]  # arithmetic on the index with Python ints
        return p[:, k], lg, label, msg, tag, near


def test_zero_d_index_inside_an_index_tuple_and_string_formatting() -> None:
    torch.manual_seed(0)
    m = ScalarIndexAndFormat().eval()
    cm = dycl_jax.convert(m)
    labels = set()
    for (x,) in _inputs(2, 4) + _inputs(2, 4, seed=5):
        with torch.no_grad():
            want = m(x)
        labels.add(want[2])
        assert_same(cm(x), want)
    assert len(labels) >= 2


class AnyAll(nn.Module):
    """``any(o > t for o in outs)`` / ``all(...)`` with an ``if`` filter, and ``any`` over a
    list of 0-d bool tensors."""

    def __init__(self) -> None:
        super().__init__()
        self.heads = nn.ModuleList([nn.Linear(4, 4) for _ in range(3)])

    def forward(self, x):
        outs = [torch.sigmoid(h(x)).mean() for h in self.heads]
        o = x  # the generator's variable stays its own
        if any(o > 0.55 for o in outs):
            return torch.stack(outs) * 2, o
        if all(o < 0.5 for o in outs if o > 0.1):
            return torch.stack(outs) - 1, o
        if any([o > 0.52 for o in outs]):  # noqa: C419 (a list, evaluated whole)
            return torch.stack(outs) + 1, o
        return torch.stack(outs), o


def test_any_all_over_tensor_conditions() -> None:
    torch.manual_seed(0)
    m = AnyAll().eval()
    g = torch.Generator().manual_seed(0)
    ins = [(torch.randn(2, 4, generator=g) * s,) for s in (0.1, 1.0, 3.0, 10.0, -3.0, -10.0)]
    assert len(run_all_paths(m, dycl_jax.convert(m), ins)) >= 2


class WritesItsArguments(nn.Module):
    def forward(self, x, acc):
        y = x * 2
        if y.sum() > 0:
            acc.append(y.sum())
        return y


def test_forward_writing_into_its_arguments_is_refused() -> None:
    from dycl_jax.errors import UnsupportedConstructError

    with pytest.raises(UnsupportedConstructError, match="writes into its argument 'acc'") as e:
        dycl_jax.convert(WritesItsArguments().eval())
    assert e.value.location is not None and e.value.location.filename == __file__
    assert "acc.append" in e.value.location.source_line()


class WritesThenRebinds(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.layers = nn.ModuleList(nn.Linear(4, 4) for _ in range(2))

    def forward(self, x):
        x.add_(1)  # the caller's tensor, before the loop rebinds x
        for layer in self.layers:
            x = layer(x)
        return x


def test_an_argument_written_before_it_is_rebound_is_refused() -> None:
    from dycl_jax.errors import UnsupportedConstructError

    with pytest.raises(UnsupportedConstructError, match="writes into its argument 'x'") as e:
        dycl_jax.convert(WritesThenRebinds().eval())
    assert e.value.location is not None and "x.add_(1)" in e.value.location.source_line()


class WritesIntoItsSequence(nn.Module):
    """A decoder writing each token into the sequence it was given (``seq[:, t] = tok``): the
    write also makes ``seq`` and ``tok`` share memory, which used to be the reason given."""

    def __init__(self) -> None:
        super().__init__()
        self.lin = nn.Linear(4, 5)

    def forward(self, seq, x):
        for t in range(seq.size(1)):
            tok = self.lin(x).argmax(-1)
            seq[:, t] = tok
            if (tok == 2).all():
                break
        return seq


def test_a_token_written_into_the_sequence_argument_is_refused_as_an_argument_write() -> None:
    from dycl_jax.errors import UnsupportedConstructError

    with pytest.raises(UnsupportedConstructError, match="writes into its argument 'seq'") as e:
        dycl_jax.convert(WritesIntoItsSequence().eval())
    assert e.value.location is not None and "seq[:, t] = tok" in e.value.location.source_line()


class TensorKeyedLookup(nn.Module):
    def forward(self, x):
        d = {0: x, 1: x * 2}
        try:
            return d[x.argmax() % 2]  # tensors hash by identity: never a key of d
        except KeyError:
            return -x


def test_a_dict_of_tensors_indexed_by_a_tensor_raises_key_error() -> None:
    m = TensorKeyedLookup().eval()
    cm = dycl_jax.convert(m)
    run_all_paths(m, cm, [(torch.ones(2, 3),), (torch.tensor([0.0, 1.0]),)])
    assert torch.equal(m(torch.ones(2)), -torch.ones(2))


class PythonOnTensorScalars(nn.Module):
    """Plain Python over 0-d tensors: a chained comparison, range() of a tensor, a filtering
    comprehension, tuple() of a generator (the HF return idiom), y[b] with b = argmax(),
    torch.tensor of tensors, and a method chain on a dict attribute."""

    def __init__(self) -> None:
        super().__init__()
        self.heads = nn.ModuleList([nn.Linear(4, 4) for _ in range(3)])
        self.count = nn.Linear(4, 1)
        self.stats: dict[str, list[int]] = {}

    def forward(self, x):
        self.stats.setdefault("calls", []).append(1)
        t = self.count(x).mean()
        n = (self.count(x).sigmoid().mean() * 4).long()
        for _ in range(n):
            x = torch.tanh(self.heads[0](x))
        kept = [h(x) for h in self.heads if h(x).mean() > 0]
        flags = torch.tensor([h(x).mean() > 0 for h in self.heads])
        b = x.sum(1).argmax()
        out = tuple(v for v in (x, None, x[b]) if v is not None)
        if -0.1 < t < 0.1:
            return out, len(kept), flags
        return tuple(2 * v for v in out), len(kept), flags


def test_python_over_tensor_scalars() -> None:
    torch.manual_seed(0)
    m = PythonOnTensorScalars().eval()
    cm = dycl_jax.convert(m)
    g = torch.Generator().manual_seed(0)
    ins = [(torch.randn(3, 4, generator=g) * s,) for s in (0.05, 0.5, 2.0, -2.0, 6.0)]
    assert len(run_all_paths(m, cm, ins)) >= 2
    assert len(m.stats["calls"]) == 2 * len(ins)  # eager's calls and the converted ones


class FilteredComprehensions(nn.Module):
    """Set and dict comprehensions filtered on tensor conditions: host loops building a set /
    dict (a list was the only form that ran)."""

    def forward(self, x):
        d = {i: x[i].sum() for i in range(x.shape[0]) if x[i].max() > 0.5}
        st = {int(x[i].argmax()) for i in range(x.shape[0]) if x[i].mean() > 0}
        i = 7  # the comprehensions' own i does not leak
        return d, sorted(st), i


class CountsChildren(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.a = nn.Linear(3, 3)
        self.act = nn.ReLU()

    def forward(self, x):
        if x.sum() > 0:
            x = self.a(x)
        n = len([m for m in self.children() if isinstance(m, nn.Linear)])
        return x, n, isinstance(x, torch.Tensor)


def test_isinstance_filters_are_python_not_tensor_work() -> None:
    m = CountsChildren().eval()
    cm = dycl_jax.convert(m)
    for x in (torch.ones(2, 3), -torch.ones(2, 3)):
        with torch.no_grad():
            want = m(x)
        got = cm(x)
        np.testing.assert_allclose(np.asarray(got[0]), want[0].numpy(), rtol=1e-6)
        assert got[1:] == want[1:]


def test_set_and_dict_comprehensions_with_tensor_filters() -> None:
    m = FilteredComprehensions().eval()
    cm = dycl_jax.convert(m)
    g = torch.Generator().manual_seed(2)
    for n, shift in ((4, 0.0), (6, 0.0), (3, 2.0), (3, -3.0)):
        x = torch.randn(n, 3, generator=g) + shift
        want = m(x)
        got = cm(x)
        assert type(got[0]) is dict and list(got[0]) == list(want[0])
        for k in want[0]:
            np.testing.assert_allclose(np.asarray(got[0][k]), want[0][k].numpy(), rtol=1e-6)
        assert got[1:] == want[1:]


class BufferAssign(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.register_buffer("steps", torch.zeros((), dtype=torch.long))

    def forward(self, x):
        self.steps = self.steps + 1
        return x * self.steps


def test_assigning_a_registered_buffer_in_forward_is_refused() -> None:
    from dycl_jax.errors import UnsupportedConstructError

    with pytest.raises(UnsupportedConstructError, match="registered buffer 'steps'") as e:
        dycl_jax.convert(BufferAssign().eval())
    assert e.value.location is not None and e.value.location.filename == __file__


class NarrowByTensor(nn.Module):
    def forward(self, x, start):
        y = x.narrow(1, start[0], 2)
        if y.sum() > 0:
            return y
        return -y


def test_a_value_read_hidden_in_an_op_argument_runs_that_region_in_pytorch() -> None:
    """x.narrow(1, start[0], 2) reads start[0] inside what would be a region: PyTorch runs the
    region on the host for that signature (see test_eager_regions), on every path."""
    m = NarrowByTensor().eval()
    cm = dycl_jax.convert(m)
    g = torch.Generator().manual_seed(0)
    for k in (0, 1, 2, 3):
        for s in (1.0, -1.0):
            x, start = torch.randn(2, 5, generator=g).abs() * s, torch.tensor([k])
            assert_same(cm(x, start), m(x, start))
    assert cm.stats.eager_region_calls > 0


class LocalDynamicFunction(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.lin = nn.Linear(4, 4)

    def forward(self, x):
        def step(h):
            h2 = self.lin(h)
            if h2.mean() > 0:
                return h2
            return h

        return step(x)


def test_local_function_reading_a_tensor_value_runs_in_pytorch_and_says_why(
    warned: Records,
) -> None:
    """dycl_jax splits methods and module-level functions at a value read, not functions
    defined inside forward: the region calling one runs in PyTorch (exact), with a warning
    naming the function and the line."""
    torch.manual_seed(0)
    m = LocalDynamicFunction().eval()
    cm = dycl_jax.convert(m)
    g = torch.Generator().manual_seed(0)
    for s in (1.0, -1.0, 3.0):
        x = torch.randn(2, 4, generator=g) * s
        with torch.no_grad():
            assert_same(cm(x), m(x))
    assert cm.stats.eager_region_calls > 0
    assert "step, a function defined inside" in warned.text
    assert f"{__file__}:" in warned.text


class OneElementBound(nn.Module):
    def forward(self, x, n):
        y = x[:, :n] * 2  # n of shape (1,): PyTorch reads it as an int here too
        if y.sum() > 0:
            return y, int(n)
        return -y, int(n)


def test_slice_bound_and_int_of_a_shape_one_tensor() -> None:
    m = OneElementBound().eval()
    cm = dycl_jax.convert(m)
    x = torch.randn(2, 5)
    for n in (1, 3, 5):
        t = torch.tensor([n])
        with torch.no_grad():
            assert_same(cm(x, t), m(x, t))


class TokenFeedback(nn.Module):
    """The greedy decoder's feedback: ``torch.tensor([tok])`` of a token read back with
    ``.item()`` (a host scalar the region must see as a Python value)."""

    def __init__(self) -> None:
        super().__init__()
        self.emb = nn.Embedding(10, 8)
        self.rnn = nn.GRUCell(8, 8)
        self.out = nn.Linear(8, 10)

    def forward(self, h):
        tok = 1
        toks = []
        for _ in range(6):
            e = self.emb(torch.tensor([tok]))
            h = self.rnn(e, h)
            tok = self.out(h).argmax(-1).item()
            if tok == 0:
                break
            toks.append(tok)
        return toks, h


def test_tensor_built_from_a_token_read_back() -> None:
    torch.manual_seed(0)
    m = TokenFeedback().eval()
    run_all_paths(m, dycl_jax.convert(m), _inputs(1, 8))


class MaybeUnbound(nn.Module):
    """A local assigned under a tensor condition, read in a later region under ``except
    NameError``: Python raises UnboundLocalError there, which the handler catches."""

    def forward(self, x):
        if x[0, 0] > 0:
            y = x * 2
        try:
            z = y + 1
        except NameError:
            z = x - 1
        return z


def test_a_local_read_before_assignment_raises_unbound_local_error() -> None:
    m = MaybeUnbound().eval()
    cm = dycl_jax.convert(m)
    for x in (torch.tensor([[-1.0, 1.0]]), torch.tensor([[1.0, 1.0]])):
        assert_same(cm(x), m(x))


class KeepsBoundMethod(nn.Module):
    def forward(self, x):
        red = x.sum
        if x.mean() > 0:
            y = x * 2
        else:
            y = x
        return y, red()


def test_a_tensor_method_carried_between_regions_is_refused_at_its_line() -> None:
    cm = dycl_jax.convert(KeepsBoundMethod().eval(), config=dycl_jax.Config(stage=False))
    with pytest.raises(dycl_jax.OpaqueOutputError, match=r"test_host_reads.py:\d+: 'red'"):
        cm(torch.ones(1, 4))


class MaskedAccumulate(nn.Module):
    """Top-2 MoE accumulating into the rows an expert serves: the mask is ``.any(-1)`` of a
    comparison, read on both sides of a masked write."""

    def __init__(self) -> None:
        super().__init__()
        self.router = nn.Linear(6, 4)
        self.experts = nn.ModuleList(nn.Linear(6, 6) for _ in range(4))

    def forward(self, x):
        w, idx = self.router(x).softmax(-1).topk(2, dim=-1)
        out = torch.zeros_like(x)
        for e, expert in enumerate(self.experts):
            mask = (idx == e).any(-1)
            if mask.any():
                we = (w * (idx == e)).sum(-1)
                out[mask] = out[mask] + we[mask].unsqueeze(-1) * expert(x[mask])
            if mask.all():
                out = out * 1.5
        return out


def test_masked_accumulation_with_a_reduced_mask() -> None:
    torch.manual_seed(0)
    m = MaskedAccumulate().eval()
    g = torch.Generator().manual_seed(1)
    ins = [(torch.randn(n, 6, generator=g),) for n in (5, 5, 1, 1, 3)]
    run_all_paths(m, dycl_jax.convert(m), ins)


class DictEntryUnderCondition(nn.Module):
    """An output dict gains an entry under a tensor condition (HF-style outputs), seen through
    an alias made before the write."""

    def __init__(self) -> None:
        super().__init__()
        self.l = nn.Linear(4, 4)

    def forward(self, x):
        out = {"logits": x}
        same = out
        if x.sum() > 0:
            out["refined"] = self.l(x)
        out["n"] = len(out)
        return same, out["logits"] * 2


def test_dict_entries_set_under_a_condition() -> None:
    torch.manual_seed(0)
    m = DictEntryUnderCondition().eval()
    run_all_paths(m, dycl_jax.convert(m), _inputs(1, 4))


class ListsInsideContainers(nn.Module):
    """Lists reached through a subscript (``state["trace"].append``, ``t[0].append``), an alias
    into a nested list made in a region (``inner = acc[0]``), and one list held twice: every
    mutation is seen through every name, as in Python."""

    def forward(self, x):
        state = {"trace": [], "n": 0}
        t = ([], [x])
        acc = [[x]]
        inner = acc[0]
        pair = [inner, inner]
        h = x
        for i in range(3):
            h = torch.tanh(h * 2)
            if h.sum() > 0:
                state["trace"].append(h)
                t[0].append(h * i)
                inner.append(h + i)
            else:
                t[1].extend([h, h])
                pair[1].insert(0, h)
        last = state["trace"].pop() if state["trace"] else x
        return len(state["trace"]), len(t[0]), len(t[1]), len(acc[0]), len(pair[0]), last


def test_lists_mutated_through_subscripts_and_aliases() -> None:
    m = ListsInsideContainers().eval()
    run_all_paths(m, dycl_jax.convert(m), _inputs(1, 4))
    run_all_paths(m, dycl_jax.convert(m, config=dycl_jax.Config(stage=False)), _inputs(1, 4))


class CacheOnModule(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.f = nn.Linear(4, 4)
        self.cache: dict[str, list[torch.Tensor]] = {"feats": []}

    def forward(self, x):
        h = self.f(x)
        if h.sum() > 0:
            self.cache["feats"].append(h)
        return len(self.cache["feats"])


@pytest.mark.parametrize("stage", [True, False])
def test_list_in_a_module_dict_appended_under_a_condition(stage: bool) -> None:
    torch.manual_seed(0)
    m, ref = CacheOnModule().eval(), CacheOnModule().eval()
    ref.load_state_dict(m.state_dict())
    cm = dycl_jax.convert(m, config=dycl_jax.Config(stage=stage))
    xs = [torch.ones(1, 4) * s for s in (1, -1, 1, -1, -1, 1)]
    assert [cm(x) for x in xs] == [ref(x) for x in xs]
    for got, want in zip(m.cache["feats"], ref.cache["feats"]):
        assert np.allclose(np.asarray(got), want.detach().numpy())  # values, not trace stand-ins


class TensorsSizedByHostInts(nn.Module):
    def forward(self, x):
        k = int((x > 0).sum().item())
        y = torch.arange(k) * 2
        z = torch.full((1,), k) + x.narrow(1, 0, max(k, 1)).sum()
        return y, z, x.repeat(1, k + 1)


def test_host_ints_as_sizes_and_fill_values() -> None:
    m = TensorsSizedByHostInts().eval()
    for stage in (True, False):
        run_all_paths(m, dycl_jax.convert(m, config=dycl_jax.Config(stage=stage)), _inputs(1, 4))


class SameListTwice(nn.Module):
    """One list reached through two places of a tuple, written through one of them in a region
    after a split: the other place sees the write."""

    def forward(self, x):
        k = int((x > 0).sum().item())
        padded = torch.nn.functional.pad(x, (0, k))
        a = [x]
        pair = (a, a)
        h = x * 2
        if h.sum() > 0:
            h = h + 1
        pair[0][0] = h
        return pair[1][0], padded


def test_one_list_in_two_places_and_host_int_pad() -> None:
    m = SameListTwice().eval()
    for stage in (True, False):
        run_all_paths(m, dycl_jax.convert(m, config=dycl_jax.Config(stage=stage)), _inputs(1, 4))


class Membership(torch.nn.Module):
    """``v in t`` on tensors (transformers' ``pad_token_id in input_ids[:, [-1, 0]]``): PyTorch
    reads ``(t == v).any()`` back as a Python bool."""

    pad = 0

    def forward(self, ids, x):
        found = self.pad in ids[:, [-1, 0]]
        if self.pad not in ids:
            x = x * 2
        if ids[0, 1] in ids[:, 2:]:  # a tensor element
            x = x + 1
        return x, found


def test_membership_tests_on_tensors_match_on_every_path() -> None:
    m = Membership().eval()
    cm = dycl_jax.convert(m)
    x = torch.ones(1, 3)
    seen = set()
    for row in ([0, 3, 4, 5], [2, 3, 4, 3], [1, 3, 0, 5], [7, 7, 7, 7]):
        ids = torch.tensor([row])
        want = m(ids, x)
        got = cm(ids, x)
        assert_same(got, want)
        assert type(got[1]) is bool
        seen.add((want[1], float(want[0].sum())))
    assert len(seen) >= 3


class HashedScalars(nn.Module):
    """A number read back with .item() used where Python hashes it: dict.get, set membership
    inside an expression with tensor code, a dict literal's key, a vote counter. Passed to the
    region as a 0-d array it would hash by identity and miss every time."""

    def __init__(self) -> None:
        super().__init__()
        self.fc = nn.Linear(4, 3)
        self.label_bias = {0: 0.0, 1: 0.5, 2: 1.0}
        self.boost = {1, 2}

    def forward(self, x):
        logits = self.fc(x)
        pred = logits.argmax(-1).item()
        adj = logits + self.label_bias.get(pred, -100.0)
        scaled = x * (2.0 if pred in self.boost else 3.0)
        keyed = {pred: logits.sum()}
        votes = {}
        for row in torch.cat([logits, adj]):
            c = row.argmax().item()
            votes[c] = votes.get(c, 0) + 1
        return adj, scaled, keyed, votes


def test_scalars_read_back_and_hashed_by_python_are_their_values() -> None:
    torch.manual_seed(0)
    m = HashedScalars().eval()
    cm = dycl_jax.convert(m)
    g = torch.Generator().manual_seed(1)
    preds = set()
    for _ in range(8):
        x = torch.randn(1, 4, generator=g) * 3
        want = m(x)
        got = cm(x)
        assert_same(got, want)
        assert list(got[2]) == list(want[2]) and all(type(k) is int for k in got[2])
        preds.add(next(iter(want[2])))
    assert len(preds) >= 2


class KeysInStagedIfs(nn.Module):
    """A number read back used as a key inside cheap ifs (staged into one select) and as
    part of a tuple key."""

    def __init__(self) -> None:
        super().__init__()
        self.lin = nn.Linear(4, 4)
        self.w = {0: 1.0, 1: 2.0, 2: 3.0, 3: 4.0}
        self.pairs = {(k, 0): float(k + 1) for k in range(4)}

    def forward(self, x):
        h = self.lin(x)
        k = h.argmax(-1).item()
        if h.sum() > -100:
            h = h * self.w.get(k, 0.0)
        if k in self.w and h.sum() > -100:
            h = h * self.w[k]
        return h * self.pairs[(k, 0)]


def test_keys_read_back_inside_staged_ifs_and_tuples() -> None:
    torch.manual_seed(0)
    m = KeysInStagedIfs().eval()
    cm = dycl_jax.convert(m)
    g = torch.Generator().manual_seed(2)
    for _ in range(6):
        x = torch.randn(1, 4, generator=g)
        with torch.no_grad():
            assert_same(cm(x), m(x))


class BigInts(nn.Module):
    """Python ints beyond int64 (read back, then squared) and a match capture pattern."""

    def forward(self, x):
        m = int(x.max()) * 3_000_000_000
        n = m * m
        k = int(x.argmax())
        match k:
            case 0:
                y = x + 1
            case other:
                y = x * other
        return x * (n % 7), y


def test_big_python_ints_and_match_captures_reach_regions() -> None:
    m = BigInts().eval()
    cm = dycl_jax.convert(m)
    for x in (torch.tensor([5.0, 0.0]), torch.tensor([0.0, 2.0]), torch.tensor([1.0, 3.0])):
        assert_same(cm(x), m(x))


class FixedGrid(nn.Module):
    """torchdiffeq's fixed-grid solver: a number read back as the end of ``torch.arange``
    with a dtype (the region specialises on it)."""

    def __init__(self) -> None:
        super().__init__()
        self.step_size = 0.3

    def forward(self, y0, t):
        niters = torch.ceil((t[-1] - t[0]) / self.step_size + 1).item()
        grid = torch.arange(0, niters, dtype=t.dtype, device=t.device) * self.step_size + t[0]
        if grid[-1] > t[-1]:
            grid[-1] = t[-1]
        return y0 * grid.sum(), grid


def test_a_number_read_back_as_an_arange_bound() -> None:
    m = FixedGrid().eval()
    cm = dycl_jax.convert(m)
    y0 = torch.ones(2, 4)
    for t in (torch.tensor([0.0, 0.45, 1.0]), torch.tensor([0.0, 0.5, 2.0])):
        assert_same(cm(y0, t), m(y0, t))


def _chunk_len():
    return np.lcm(4, 6)  # a numpy int, as transformers' Reformer computes its chunk length


class NumpyIntSizes(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.lin = nn.Linear(4, 4)

    def forward(self, x):
        n = _chunk_len()
        h = self.lin(x)
        if h.sum() > 0:
            h = h * 2
        if x.shape[1] % n != 0:  # a shape against a numpy int: Python arithmetic
            h = F.pad(h, (0, 0, 0, int(n - x.shape[1] % n)))
        return h, h.shape[1] // n


def test_numpy_integers_are_static_numbers_in_regions() -> None:
    torch.manual_seed(0)
    m = NumpyIntSizes().eval()
    cm = dycl_jax.convert(m)
    for shape in ((1, 12, 4), (1, 7, 4), (2, 5, 4)):
        x = torch.randn(*shape)
        with torch.no_grad():
            assert_same(cm(x), m(x))
