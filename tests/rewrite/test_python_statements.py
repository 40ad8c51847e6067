"""Python statements around region splits that must keep Python's semantics on the host."""

from __future__ import annotations

import collections.abc
import os

import pytest
import torch
import torch.nn as nn

import dycl_jax
from dycl_jax.testing import assert_same, run_all_paths


class DelAfterUse(nn.Module):
    def forward(self, x):
        h = x * 2
        y = h + 1
        del h
        if y.sum() > 0:
            y = y * 2
        return y


class DelUnderCondition(nn.Module):
    def forward(self, x):
        y = x + 1
        if x.sum() > 0:
            del y
            return x * 3
        return y


class DelAfterStagedIf(nn.Module):
    def forward(self, x):
        tmp = x * 2
        if tmp.sum() > 0:
            x = tmp
        del tmp
        return x


class DelInLoop(nn.Module):
    def __init__(self):
        super().__init__()
        self.l = nn.Linear(3, 3)

    def forward(self, x):
        for _ in range(3):
            h = self.l(x)
            if h.sum() > 0:
                x = h
            del h
        return x


class DelSeveral(nn.Module):
    def forward(self, x):
        a, b = x + 1, x - 1
        out = a if (a.sum() > b.sum() * 2) else b
        del a, b
        return out * 2


@pytest.mark.parametrize(
    "cls", [DelAfterUse, DelUnderCondition, DelAfterStagedIf, DelInLoop, DelSeveral]
)
def test_del_of_a_region_computed_name(cls: type[nn.Module]) -> None:
    """`del h` reads h's binding: the region computing h hands it to the host statement."""
    torch.manual_seed(0)
    m = cls().eval()
    cm = dycl_jax.convert(m)
    inputs = [
        (torch.randn(1, 3) * s + b,) for s, b in ((1, 2), (1, -2), (0.1, 0), (2, 0.5), (1, 5))
    ]
    paths = run_all_paths(m, cm, inputs)
    assert len(paths) >= 2


class LambdaDefault(nn.Module):
    def __init__(self):
        super().__init__()
        self.scale = 2.0

    def forward(self, x):
        f = lambda z, s=x.max(), k=self.scale: z * s * k  # noqa: E731, B008
        if x.sum() > 0:
            x = x + 1
        return f(x)


class DefDefault(nn.Module):
    def forward(self, x):
        def f(z, s=x.max(), *, t=x.min()):  # noqa: B008
            return z * s + t

        for _ in range(2):
            if x.sum() > 0:
                x = x + 1
            else:
                x = x - 1
            y = f(x)
        return y


@pytest.mark.parametrize("cls", [LambdaDefault, DefDefault])
def test_defaults_are_computed_where_the_function_is_defined(cls: type[nn.Module]) -> None:
    """Python evaluates a default once, at the definition; regions that re-create the function
    must not evaluate it again on the values its names hold later."""
    m = cls().eval()
    cm = dycl_jax.convert(m)
    inputs = [(torch.tensor([[1.0, 2.0, 3.0]]),), (torch.tensor([[-1.0, -2.0, 0.5]]),)]
    assert len(run_all_paths(m, cm, inputs)) == 2
    if isinstance(m, LambdaDefault):
        m.scale = -3.0  # read at the definition on every call: followed
        run_all_paths(m, cm, inputs)


class KeysFromValues(nn.Module):
    def forward(self, x):
        d = {int(i.item()): x[0, i] * 2 for i in x[0].argsort()}
        e = {(i, int(x[0, i] > 0)): x[0, i] + 1 for i in range(3)}
        return d, e, d[0]


def test_dict_keys_read_from_tensors_are_python_values() -> None:
    """A dict built in a region with keys read from tensor values: the keys are Python ints, as
    in eager (the region runs in PyTorch), never capture-time stand-ins."""
    m = KeysFromValues().eval()
    cm = dycl_jax.convert(m)
    xs = [torch.tensor([[1.0, 2.0, -3.0]]), torch.tensor([[3.0, -1.0, 2.0]])]
    run_all_paths(m, cm, [(x,) for x in xs])
    d, e, _ = cm(xs[0])
    assert [type(k) for k in d] == [int] * 3 and list(d) == [2, 0, 1]
    assert all(type(a) is int and type(b) is int for a, b in e)


class EmptyMax(nn.Module):
    def forward(self, scores):
        keep = scores[scores > 0.5]
        try:
            best = keep.max()
        except RuntimeError:
            best = torch.tensor(0.0)
        return best


class EmptyArgmax(nn.Module):
    def forward(self, x):
        sel = x[x > 0]
        try:
            i = sel.argmax()
        except IndexError:  # what PyTorch raises on CPU (its meta kernel: RuntimeError)
            i = torch.tensor(-1)
        return i


@pytest.mark.parametrize("cls", [EmptyMax, EmptyArgmax])
def test_except_around_a_reduction_of_an_empty_tensor(cls: type[nn.Module]) -> None:
    """PyTorch raises on the empty input: the user's handler runs, as in eager."""
    m = cls().eval()
    cm = dycl_jax.convert(m)
    xs = [torch.tensor([0.9, 0.2, 0.7]), torch.tensor([-0.1, 0.2, 0.3]), -torch.ones(3)]
    run_all_paths(m, cm, [(x,) for x in xs])


class FilteredDictComprehensions(nn.Module):
    def forward(self, x):
        hs = [x * 1, x * -1, x * 2]
        a = {i: h for i, h in enumerate(hs) if h.sum() > 0}
        b = {i: x[0, i] for i in range(3) if x[0, i] > 0}
        return a, b


class DictComprehensionThenWrite(nn.Module):
    def forward(self, x):
        hs = [x * 1, x * -1]
        d = {i: h for i, h in enumerate(hs) if h.sum() > 0}
        for k in d:
            d[k].mul_(2)
        return hs, d


def test_filtered_dict_comprehensions_over_existing_tensors() -> None:
    """The comprehension's dict is built entry by entry: replacing an entry writes no tensor."""
    m = FilteredDictComprehensions().eval()
    xs = [torch.tensor([[1.0, -2.0, 3.0]]), torch.tensor([[-1.0, 2.0, -3.0]])]
    run_all_paths(m, dycl_jax.convert(m), [(x,) for x in xs])


def test_write_through_a_dict_comprehension_entry() -> None:
    """A write through an entry changes the list's tensor too: exact, or refused at its line."""
    m = DictComprehensionThenWrite().eval()
    xs = [torch.tensor([[1.0, -2.0, 3.0]]), torch.tensor([[-1.0, 2.0, -3.0]])]
    try:
        run_all_paths(m, dycl_jax.convert(m), [(x,) for x in xs])
    except dycl_jax.errors.UnsupportedConstructError as e:
        assert "may share memory" in str(e) and e.location is not None


class _Config(collections.abc.Mapping):
    def __init__(self, **kw):
        self._d = dict(kw)

    def __getitem__(self, k):
        return self._d[k]

    def __iter__(self):
        return iter(self._d)

    def __len__(self):
        return len(self._d)


class EnvironmentAndMappingConfig(nn.Module):
    def __init__(self):
        super().__init__()
        self.cfg = _Config(thr=0.5)

    def forward(self, x):
        if os.environ.get("DYCL_TEST_MODEL_FLAG", "0") == "1":
            x = x + 10
        return x * 2 if x.mean() > self.cfg.get("thr", 0.0) else x


def test_frozen_standard_library_calls_run_on_the_host(monkeypatch: pytest.MonkeyPatch) -> None:
    """os.environ.get and a Mapping's inherited .get come from frozen standard-library modules:
    host calls, as logging's, read on every call."""
    m = EnvironmentAndMappingConfig().eval()
    cm = dycl_jax.convert(m)
    inputs = [(torch.ones(1, 3),), (-torch.ones(1, 3),)]
    assert len(run_all_paths(m, cm, inputs)) == 2
    monkeypatch.setenv("DYCL_TEST_MODEL_FLAG", "1")
    run_all_paths(m, cm, inputs)


class _LastIndex(nn.Module):
    def forward(self, x):
        for i in range(int((x > 0).sum())):
            x = x + i
        return x, i  # unbound when the loop never ran: Python raises


def test_a_loop_variable_returned_after_no_iteration_raises_as_in_python() -> None:
    m = _LastIndex().eval()
    cm = dycl_jax.convert(m)
    run_all_paths(m, cm, [(torch.ones(3),), (torch.tensor([1.0, -1.0]),)])
    x = -torch.ones(3)
    with pytest.raises(UnboundLocalError):
        m(x)
    with pytest.raises(UnboundLocalError):
        cm(x)


def _keep(v):  # a helper the unassigned value is passed to
    return v


class _LastIndexMoved(nn.Module):
    """The loop variable of a loop that may not run, only moved afterwards (stored on the
    module, put in a dict or tuple, tested with ``is``, passed to a helper), and read inside a
    ``try`` that catches the error: Python raises UnboundLocalError at each of those reads."""

    def __init__(self) -> None:
        super().__init__()
        self.last = None

    def forward(self, x, mode: int):
        for i in range(int((x > 0).sum())):
            h = x * i
        if mode == 0:
            self.last = i
        elif mode == 1:
            x = x + len({"i": i})
        elif mode == 2:
            x = x + len((x, i))
        elif mode == 3:
            if i is None:
                return x
        elif mode == 4:
            _keep(i)
        elif mode == 5:
            try:
                return x * 2, h
            except UnboundLocalError:
                return x * 3, -1
        return x, 0


def test_an_unassigned_loop_variable_moved_by_host_code_raises_as_in_python() -> None:
    m = _LastIndexMoved().eval()
    cm = dycl_jax.convert(m)
    for mode in range(6):
        run_all_paths(m, cm, [(torch.ones(3), mode), (torch.tensor([1.0, -1.0]), mode)])
        x = -torch.ones(3)
        if mode == 5:  # caught by the forward's own handler
            assert_same(cm(x, mode), m(x, mode))
            continue
        with pytest.raises(UnboundLocalError):
            m(x, mode)
        with pytest.raises(UnboundLocalError, match="'i'"):
            cm(x, mode)
    assert m.last is not None  # set by the runs where the loop ran, never to a marker


class _EarlyExitFlags(nn.Module):
    """``exit_x`` / ``h`` are assigned only when the loop exits early, and read only on the side
    of ``a if c else b`` / ``c and a`` that Python evaluates then: never an error."""

    def __init__(self) -> None:
        super().__init__()
        self.a = nn.Linear(4, 4)

    def forward(self, x):
        found = False
        for _ in range(3):
            x = torch.tanh(self.a(x))
            if x.sum() > 0.5:
                found = True
                exit_x = x
                h = x * 3
                break
        y = (exit_x if found else x) * 2
        if found and h is not None:
            return y, h
        return y, 0 if not found else h


def test_names_read_only_where_python_evaluates_them_do_not_raise() -> None:
    torch.manual_seed(0)
    m = _EarlyExitFlags().eval()
    cm = dycl_jax.convert(m)
    g = torch.Generator().manual_seed(0)
    inputs = [(torch.randn(1, 4, generator=g) * s,) for s in (0.1, 1.0, 5.0, -5.0, -0.1)]
    assert len(run_all_paths(m, cm, inputs)) >= 2


SCALE = 2.0


class _ReadsGlobal(nn.Module):
    def forward(self, x):
        global SCALE  # declared, only read: changes nothing
        if x.sum() > 0:
            return x * SCALE
        return x


def test_a_global_declared_and_only_read() -> None:
    m = _ReadsGlobal().eval()
    cm = dycl_jax.convert(m)
    run_all_paths(m, cm, [(torch.ones(2),), (-torch.ones(2),)])
