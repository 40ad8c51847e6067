"""Calls whose callee the analysis cannot name: a lambda or function taken from a dict built in
forward (a table of callbacks), called under a tensor condition. Such a call may change a list
or dict it is given: its region is kept even when nothing reads its outputs, and a capture that
finds a container changed and not handed back runs the region in PyTorch on the caller's own
containers (a compiled region would change a copy, once)."""

from __future__ import annotations

import collections
import functools

import numpy as np
import pytest
import torch
import torch.nn as nn

import dycl_jax
from dycl_jax.testing import assert_same


class CallbackTable(nn.Module):
    """Review 27a min_12: the append was lost (the region computed nothing the analysis saw)."""

    def __init__(self) -> None:
        super().__init__()
        self.layers = nn.ModuleList(nn.Linear(4, 4) for _ in range(3))

    def forward(self, x):
        exits = []
        hooks = {"exit": lambda lst, i: lst.append(i)}
        for i, layer in enumerate(self.layers):
            x = layer(x)
            if x.sum() > 0:
                hooks["exit"](exits, i)
        return x, exits


class TensorCallbacks(nn.Module):
    """The callback stores tensors the region computes, next to tensor work it hands back."""

    def __init__(self) -> None:
        super().__init__()
        self.layers = nn.ModuleList(nn.Linear(4, 4) for _ in range(3))

    def forward(self, x):
        feats = []
        hooks = {"keep": lambda store, t: store.append(t * 2)}
        for layer in self.layers:
            x = layer(x)
            if x.mean() > 0:
                x = x.relu()
                hooks["keep"](feats, x)
        return x, feats


class PureCallbacks(nn.Module):
    """A table of activation functions: nothing they are given changes, so the region compiles."""

    def __init__(self, act: str) -> None:
        super().__init__()
        self.act = act
        self.layers = nn.ModuleList(nn.Linear(4, 4) for _ in range(3))

    def forward(self, x):
        acts = {"tanh": lambda t: t.tanh(), "half": lambda t: t * 0.5}
        for layer in self.layers:
            x = layer(x)
            if x.sum() > 0:
                x = acts[self.act](x)
        return x


class SharedList(nn.Module):
    """One list reached twice (``pair = (seen, seen)``) by a callback run in PyTorch: one list,
    as in eager (a run in PyTorch used to get two copies of it)."""

    def __init__(self) -> None:
        super().__init__()
        self.proj = nn.Linear(4, 4)

    def forward(self, x):
        seen = []
        pair = (seen, seen)
        hooks = {"note": lambda p, t: p[0].append(t.sum())}
        for _ in range(3):
            x = self.proj(x)
            if x.sum() > 0:
                hooks["note"](pair, x)
        return x, pair[1], len(seen)


def _inputs() -> list[torch.Tensor]:
    return [torch.full((1, 4), s) for s in (1.0, -1.0, 0.3, -0.2)]


@pytest.mark.parametrize("cls", [CallbackTable, TensorCallbacks, SharedList])
def test_a_callback_from_a_dict_changing_its_list_argument(cls: type[nn.Module]) -> None:
    torch.manual_seed(0)
    m = cls().eval()
    cm = dycl_jax.convert(m)
    paths = set()
    for _ in range(2):  # the second round runs what the first captured
        for x in _inputs():
            with torch.no_grad():
                want = m(x)
            got = cm(x)
            assert_same(got, want, rtol=1e-6, atol=1e-6)
            assert len(got[1]) == len(want[1])
            paths.add(len(want[1]))
    assert len(paths) > 1  # the inputs reach different numbers of callback calls


@pytest.mark.parametrize("act", ["tanh", "half"])
def test_a_callback_from_a_dict_changing_nothing_compiles(act: str) -> None:
    torch.manual_seed(0)
    m = PureCallbacks(act).eval()
    cm = dycl_jax.convert(m)
    for x in _inputs():
        with torch.no_grad():
            want = m(x)
        assert_same(cm(x), want, rtol=1e-6, atol=1e-6)
    assert cm.stats.eager_region_calls == 0


# ---- review 28a: calls that change lists and dicts the analysis does not see them change -------


def _record(store, v):
    store.append(v.sum())


class BoundAppend(nn.Module):
    def forward(self, x):
        st = []
        ap = st.append
        ap(x * 2)
        if x.sum() > 0:
            ap(x + 1)
        return st


class GetattrAppend(nn.Module):
    def forward(self, x):
        st = []
        getattr(st, "append")(x * 2)  # noqa: B009
        return st


class PartialInsert(nn.Module):
    def forward(self, x):
        st = [x]
        put = functools.partial(st.insert, 0)
        put(x * 3)
        return st


class PartialOverLocal(nn.Module):
    def forward(self, x):
        st = []
        f = functools.partial(_record, st)
        f(x * 2)
        return st


class MapOfPartial(nn.Module):
    def forward(self, x):
        st = []
        list(map(functools.partial(_record, st), list(x)))
        return st


class UnboundListMethod(nn.Module):
    def forward(self, x):
        st = []
        list.append(st, x * 2)
        return st


class ReduceAppending(nn.Module):
    def forward(self, x):
        st = []
        functools.reduce(lambda acc, r: acc.append(r * 2) or acc, x, st)
        return st


class LambdaOnModuleSetdefault(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.f = lambda d, v: d.setdefault("x", []).append(v)

    def forward(self, x):
        d = {}
        self.f(d, x * 2)
        return d


class LambdaOnModuleFilter(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.f = lambda lst, t: lst.extend(r for r in t if r.sum() > 0)

    def forward(self, x):
        out = []
        self.f(out, x)
        return out


class LambdaOnModuleConditional(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.f = lambda lst, v: lst.append(v) if v.sum() > 0 else None

    def forward(self, x):
        out = []
        self.f(out, x)
        return out


CHANGING_CALLS = [
    BoundAppend,
    GetattrAppend,
    PartialInsert,
    PartialOverLocal,
    MapOfPartial,
    UnboundListMethod,
    ReduceAppending,
    LambdaOnModuleSetdefault,
    LambdaOnModuleFilter,
    LambdaOnModuleConditional,
]


@pytest.mark.parametrize("cls", CHANGING_CALLS)
def test_a_call_changing_a_list_or_dict_it_reaches(cls: type[nn.Module]) -> None:
    # (values a capture would leave behind are garbage memory or stand-ins: compared by value)
    torch.manual_seed(0)
    m = cls().eval()
    cm = dycl_jax.convert(m)
    inputs = [torch.ones(2, 3), -torch.ones(2, 3), torch.tensor([[1.0, -2.0, 3.0], [-1, -1, -1]])]
    for _ in range(2):
        for x in inputs:
            with torch.no_grad():
                want = m(x)
            assert_same(cm(x), want, rtol=1e-6, atol=1e-6)


class PushLambda(nn.Module):
    """Review 28a min_10: the push through a lambda on the module was dropped as computing
    nothing, and torch.stack of the empty memory raised a raw RuntimeError."""

    def __init__(self) -> None:
        super().__init__()
        self.mem = []
        self.push = lambda v: self.mem.append(v)

    def forward(self, x):
        self.push(x * 2)
        if len(self.mem) > 2:
            self.mem.pop(0)
        return torch.stack(self.mem).sum(0)


def test_a_lambda_on_the_module_pushing_into_its_memory() -> None:
    m, m2 = PushLambda().eval(), PushLambda().eval()
    cm = dycl_jax.convert(m2)
    for s in (1.0, 2.0, -1.0, 3.0):
        x = torch.full((3,), s)
        assert_same(cm(x), m(x))
        assert len(m2.mem) == len(m.mem)


class CallbackArgument(nn.Module):
    def forward(self, x, store, fn):
        fn(store, x * 2)
        if x.sum() > 0:
            fn(store, x + 1)
        return x + 1


class ModuleFunctionArgument(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.cb = _record

    def forward(self, x, store):
        self.cb(store, x * 2)
        return x + 1


class PartialArgument(nn.Module):
    def forward(self, x, log):
        log(x * 2)
        return x + 1


def _values(store: list) -> list[float]:
    return [float(np.asarray(v).sum()) for v in store]


def test_a_call_changing_a_list_the_caller_passed() -> None:
    """Review 28a min_01-03: the model is given a copy of each list argument; a change made
    through a function (given, held on the module, a partial over the caller's list) is written
    back into the caller's list (with jax arrays, as outputs are)."""
    for x in (torch.ones(3), -torch.ones(3)):
        se: list = []
        sg: list = []
        m = CallbackArgument().eval()
        assert_same(dycl_jax.convert(m)(x, sg, _record), m(x, se, _record))
        assert _values(sg) == _values(se)
        se, sg = [torch.zeros(())], [torch.zeros(())]
        m2 = ModuleFunctionArgument().eval()
        assert_same(dycl_jax.convert(m2)(x, sg), m2(x, se))
        assert _values(sg) == _values(se)
        assert isinstance(sg[0], torch.Tensor)  # the caller's own entry is kept as it was
        se, sg = [], []
        m3 = PartialArgument().eval()
        got = dycl_jax.convert(m3)(x, functools.partial(_record, sg))
        assert_same(got, m3(x, functools.partial(_record, se)))
        assert _values(sg) == _values(se) and len(se) == 1


# ---- review 28b: state reached in further ways, and what a region run in PyTorch hands back ----


Hooks = collections.namedtuple("Hooks", "on_step")


class Tracker:
    def __init__(self) -> None:
        self.n = 0
        self.items: list = []

    def log(self, t):
        self.items.append(t)


def _deep(store, h):
    store["a"]["b"]["c"]["d"]["e"].append(h.sum())


def _count_and_keep(tracker, outs, h):
    tracker.n += 1
    outs.append(h)


class CallbackOnModule(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.lin = nn.Linear(4, 4)
        self.outs: list = []

    def forward(self, x):
        h = self.lin(x)
        if h.sum() > 0:
            h = h * 2
        self.cb(h)
        return h + 1


def _callback_forms():
    """(name, make(m) -> a function of the model's Python state after the calls)."""

    def namedtuple_form(m):
        rows: list = []
        m.hooks = Hooks(rows.append)
        m.cb = lambda h: m.hooks.on_step(h)
        return lambda: [float(np.asarray(r).sum()) for r in rows]

    def object_form(m):
        tr = Tracker()
        m.cb = lambda h: tr.log(h)
        return lambda: [float(np.asarray(r).sum()) for r in tr.items]

    def deep_form(m):
        store: dict = {"a": {"b": {"c": {"d": {"e": []}}}}}
        m.cb = functools.partial(_deep, store)
        return lambda: [float(np.asarray(r)) for r in store["a"]["b"]["c"]["d"]["e"]]

    def counter_form(m):
        tr = Tracker()
        m.cb = functools.partial(_count_and_keep, tr, m.outs)
        return lambda: (tr.n, len(m.outs))

    return [namedtuple_form, object_form, deep_form, counter_form]


@pytest.mark.parametrize("form", _callback_forms(), ids=lambda f: f.__name__)
def test_a_callback_reaching_state_through_a_tuple_an_object_or_deep_containers(form) -> None:  # type: ignore[no-untyped-def]
    torch.manual_seed(0)
    m, m2 = CallbackOnModule().eval(), CallbackOnModule().eval()
    m2.load_state_dict(m.state_dict())
    state_e, state_g = form(m), form(m2)
    cm = dycl_jax.convert(m2)
    for s in (1.0, -1.0, 0.5):
        x = torch.full((2, 4), s)
        with torch.no_grad():
            want = m(x)
        assert_same(cm(x), want, rtol=1e-6, atol=1e-6)
        assert state_g() == pytest.approx(state_e())


class NestedListThroughPyTorch(nn.Module):
    """Review 28b min_10: the region runs in PyTorch (the callback changes `log`) and hands back
    `ks`, the list the dict holds: it must stay that list (it came back a copy, so the append
    after it was lost)."""

    def __init__(self) -> None:
        super().__init__()
        self.lin = nn.Linear(4, 4)

    def forward(self, x, cb):
        cache = {"k": [x]}
        log: list = []
        h = self.lin(x)
        if h.sum() > 0:
            h = h + 1
        g = self.lin(h)
        ks = cache["k"]
        cb(log, g)
        ks.append(g)
        if g.mean() > 0:
            g = g * 2
        return len(cache["k"]), len(log)


def test_a_list_a_region_run_in_pytorch_hands_back_from_a_dict_is_that_list() -> None:
    torch.manual_seed(0)
    m = NestedListThroughPyTorch().eval()
    cm = dycl_jax.convert(m)
    for s in (1.0, -1.0):
        x = torch.full((2, 4), s)
        with torch.no_grad():
            want = m(x, _append)
        assert cm(x, _append) == want == (2, 1)


def _append(store, v):
    store.append(v)


# ---- list arguments: met twice, returned, and tensors in them written by a callback -------


class TwoPlaces(nn.Module):
    def forward(self, x, cb, a, b):
        cb(a, x * 2)
        if x.sum() > 0:
            x = x + 1
        return len(a), len(b)


class ReturnsItsList(nn.Module):
    def forward(self, x, cb, acc):
        h = x * 2
        if h.sum() > 0:
            h = h + 1
        cb(acc, h)
        return acc


def _scale_first(lst, h):
    lst[0].mul_(2)


class ScalesAnEntry(nn.Module):
    def forward(self, x, cb, lst):
        h = x * 3
        if h.sum() > 0:
            h = h + 1
        cb(lst, h)
        return h


def test_one_list_given_twice_is_one_list() -> None:
    for x in (torch.ones(3), -torch.ones(3)):
        le: list = []
        lg: list = []
        m = TwoPlaces().eval()
        assert dycl_jax.convert(m)(x, _record, lg, lg) == m(x, _record, le, le) == (1, 1)
        assert len(lg) == len(le) == 1


def test_a_list_argument_returned_is_the_callers_list() -> None:
    for x in (torch.ones(3), -torch.ones(3)):
        acc: list = []
        got = dycl_jax.convert(ReturnsItsList().eval())(x, _record, acc)
        assert got is acc and len(acc) == 1


def test_a_callback_writing_a_tensor_inside_a_list_argument_is_refused() -> None:
    from dycl_jax.errors import UnsupportedConstructError

    lst = [torch.ones(2)]
    with pytest.raises(UnsupportedConstructError, match="'lst'") as e:
        dycl_jax.convert(ScalesAnEntry().eval())(torch.ones(3), _scale_first, lst)
    assert e.value.location is not None and "cb(lst, h)" in e.value.location.source_line()
