"""In-place writes and aliases across region boundaries: exact where the write and every alias it
can reach are in one region (functionalization) or the alias is made after the write; refused at
the user's line where a region's write would not reach another reference."""

from __future__ import annotations

import importlib.util
import inspect
import operator

import numpy as np
import pytest
import torch
import torch.nn as nn

import dycl_jax
from dycl_jax.errors import UnsupportedConstructError
from dycl_jax.testing import assert_same


def _parity(m: nn.Module, scales=(1.0, -1.0, 3.0, -3.0)) -> None:
    torch.manual_seed(0)
    m = m.eval()
    cm = dycl_jax.convert(m)
    for s in scales:
        x = torch.linspace(-1, 1, 4).reshape(1, 4) * s
        assert_same(cm(x), m(x))


def _refused(m: nn.Module, line_text: str, match: str) -> None:
    cm_or_error = None
    with pytest.raises(UnsupportedConstructError, match=match) as e:
        cm_or_error = dycl_jax.convert(m.eval())
        cm_or_error(torch.ones(1, 4))
    assert e.value.location is not None and e.value.location.filename == __file__
    assert line_text in e.value.location.source_line()


class ActLstm(nn.Module):
    """The public ACT LSTM shape: two names bound to one tensor, both written through."""

    def __init__(self) -> None:
        super().__init__()
        self.cell = nn.LSTMCell(4, 4)

    def forward(self, x):
        hx = torch.zeros(2, 4)
        cx = hx
        for _ in range(2):
            idx = torch.arange(2)[hx.sum(1) >= 0]
            if idx.numel() > 0:
                hx[idx], cx[idx] = self.cell(x.expand(len(idx), 4))
        return hx, cx


def test_two_names_for_one_tensor_written_in_a_region_is_refused() -> None:
    _refused(ActLstm(), "hx[idx], cx[idx]", "may share memory with")


class AppendThenInplace(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.lin = nn.Linear(4, 4)

    def forward(self, x):
        hs = []
        h = self.lin(x)
        hs.append(h)
        if h.sum() > 0:
            h.relu_()
        return torch.stack(hs), h


def test_inplace_write_to_a_tensor_already_in_a_list_is_refused() -> None:
    _refused(AppendThenInplace(), "h.relu_()", "'h', which may share memory with 'hs'")


class ViewWrite(nn.Module):
    """A write through a view inside one region changes the base: the base is output too."""

    def __init__(self) -> None:
        super().__init__()
        self.lin = nn.Linear(4, 4)

    def forward(self, x):
        h = self.lin(x)
        if h.sum() > 0:
            v = h[:, :2]
            v.mul_(10)
            h = h + 1
        return h


def test_write_through_a_view_in_one_region_is_exact() -> None:
    _parity(ViewWrite())


class FreshEachStep(nn.Module):
    """Rebound to a fresh tensor before the write each step: earlier list entries are safe; the
    view taken after the loop is made after every write."""

    def __init__(self) -> None:
        super().__init__()
        self.lin = nn.Linear(4, 4)

    def forward(self, x):
        outs = []
        h = x
        for _ in range(3):
            h = self.lin(h)
            h[:, 0] = 0.0
            outs.append(h)
            if h.sum() > 1:
                break
        flat = h.view(-1)
        return torch.stack(outs), flat


def test_fresh_tensor_written_then_stored_is_exact() -> None:
    _parity(FreshEachStep())


class FillsCallerDict(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.lin = nn.Linear(4, 4)

    def put(self, d, k, v):
        d[k] = v * 2

    def forward(self, x):
        d = {}
        h = self.lin(x)
        self.put(d, "a", h)
        if h.sum() > 0:
            self.put(d, "b", h + 1)
        return d


def test_helper_writing_into_the_callers_dict_is_exact() -> None:
    _parity(FillsCallerDict())


class WritesParam(nn.Module):
    """A dynamic helper writing into the caller's preallocated buffer."""

    def __init__(self) -> None:
        super().__init__()
        self.lin = nn.Linear(4, 4)

    def fill(self, buf, i, x):
        y = self.lin(x)
        if y.sum() > 0:
            y = -y
        buf[i] = y[0]

    def forward(self, x):
        buf = torch.zeros(2, 4)
        for i in range(2):
            self.fill(buf, i, x)
        return buf


def test_dynamic_helper_writing_into_an_argument_read_later_is_refused() -> None:
    _refused(WritesParam(), "self.fill(buf, i, x)", "writes its argument 'buf' in place")


class WritesDeadParam(nn.Module):
    """The same helper, where the caller never reads the written argument again: exact."""

    def __init__(self) -> None:
        super().__init__()
        self.lin = nn.Linear(4, 4)

    def step(self, h):
        y = self.lin(h)
        if y.sum() > 0:
            h.mul_(0.5)
        return y + h

    def forward(self, x):
        h = x * 1.0
        h = self.step(h)
        return h


def test_dynamic_helper_writing_a_dead_argument_is_exact() -> None:
    _parity(WritesDeadParam())


class InplaceForms(nn.Module):
    """Each form of in-place write, on a tensor another live name shares."""

    def __init__(self, form: str) -> None:
        super().__init__()
        self.form = form
        self.lin = nn.Linear(4, 4)
        self.act = nn.ReLU(inplace=True)

    def forward(self, x):
        h = self.lin(x)
        y = h
        if h.sum() > -100:
            if self.form == "function":
                torch.relu_(y)
            elif self.form == "keyword":
                torch.nn.functional.relu(y, inplace=True)
            elif self.form == "module":
                self.act(y)
            else:
                torch.add(x, 1, out=y)
        return h


@pytest.mark.parametrize("form", ["function", "keyword", "module", "out"])
def test_every_form_of_inplace_write_on_an_alias_is_refused(form: str) -> None:
    _refused(InplaceForms(form), "", "in-place write to 'y', which may share memory with 'h'")


class SafeRewrites(nn.Module):
    """Common safe code around aliases: residuals, clones, chunks made independent."""

    def __init__(self) -> None:
        super().__init__()
        self.lin = nn.Linear(4, 4)

    def forward(self, x):
        residual = x
        x = self.lin(x)
        if x.sum() > 0:
            x += residual
        y = x.t()
        y = y.clone()
        y[0] = 0.0
        a, b = x.chunk(2, dim=1)
        a = a.contiguous().clone()
        if a.sum() > 0:
            a.mul_(2)
        return x, y, a, b


def test_residual_and_clone_patterns_are_exact() -> None:
    _parity(SafeRewrites())


class WriteThroughListEntry(nn.Module):
    """A list built around a tensor, then written through its entry in another region while the
    tensor is read again (a fuzz finding: the list's new binding had dropped the link)."""

    def __init__(self) -> None:
        super().__init__()
        self.lin = nn.Linear(4, 4)

    def forward(self, x):
        a = self.lin(x).clone()
        b = [a, x * 2.0]
        if x.mean() > 0:
            b[0].mul_(-1.0)
        return torch.stack(b).sum(0) + 0.5 * a


def test_write_through_a_list_entry_to_a_live_tensor_is_refused() -> None:
    _refused(WriteThroughListEntry(), "b[0].mul_(-1.0)", "'b', which may share memory with 'a'")


class PassThroughAlias(nn.Module):
    """nn.Identity / dropout in eval hand back their input: the result aliases it."""

    def __init__(self, layer: nn.Module) -> None:
        super().__init__()
        self.lin = nn.Linear(4, 4)
        self.layer = layer

    def forward(self, x):
        identity = self.lin(x)
        h = self.layer(identity)
        if h.sum() > -100:
            h += 1
        return h + identity


@pytest.mark.parametrize("layer", [nn.Identity(), nn.Dropout(0.1)], ids=["identity", "dropout"])
def test_write_to_the_output_of_a_pass_through_module_is_refused(layer: nn.Module) -> None:
    _refused(PassThroughAlias(layer), "h += 1", "'h', which may share memory with 'identity'")


class IteratesViews(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.lin = nn.Linear(4, 4)

    def forward(self, x):
        x = self.lin(x)
        a, b = x.chunk(2, dim=1)
        for _i, p in enumerate(x.unbind(0)):
            if p.sum() > 0:
                p.mul_(2)
        return a + b


def test_write_to_an_enumerated_view_is_refused() -> None:
    _refused(IteratesViews(), "p.mul_(2)", "in-place write to 'p'")


class CloneInLoopThenWrite(nn.Module):
    """``acc.append(x)``, then a static loop that rebinds ``x = x.clone()`` before writing it:
    the write goes to the copy, so the list entry keeps the old values (fuzz regression)."""

    def __init__(self) -> None:
        super().__init__()
        self.blocks = nn.ModuleList([nn.Linear(3, 3) for _ in range(2)])

    def forward(self, x):
        acc = [x]
        for blk in self.blocks:
            x = x.clone()
            x[:, :2] = blk(x)[:, -2:] * 0.5
        if x.sum() > 0:
            return x + torch.stack(acc).sum(0)
        return x - torch.stack(acc).sum(0)


class WriteLoopItems(nn.Module):
    """Writing each item of a list in place (the loop variable is the list's entry)."""

    def forward(self, x):
        hs = [x * 1.0, x * 2.0]
        keep = hs[0]
        for h in hs:
            if h.sum() > 0:
                h.mul_(2)
        return keep, hs


def test_rebinding_inside_a_traced_loop_makes_the_write_safe() -> None:
    torch.manual_seed(0)
    m = CloneInLoopThenWrite().eval()
    cm = dycl_jax.convert(m)
    for s in (1.0, -1.0):
        x = torch.randn(2, 3) * s
        with torch.no_grad():
            assert_same(cm(x), m(x))


def test_writes_to_loop_items_stay_exact() -> None:
    m = WriteLoopItems().eval()
    try:
        cm = dycl_jax.convert(m)
        for s in (1.0, -1.0):
            x = torch.randn(2, 3) * s
            with torch.no_grad():
                assert_same(cm(x), m(x))
    except UnsupportedConstructError as e:  # or refused at the write, never wrong
        assert "h.mul_(2)" in e.location.source_line()  # type: ignore[union-attr]


class _Fc(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.fc = nn.Linear(3, 3)


class _SameTensorTwice(_Fc):
    """One tensor at two places of a container, written through one of them in a region:
    the other place sees the write (eager: the same object)."""

    def forward(self, x, how: str):
        h = self.fc(x)
        c = h * 1  # the conditions read a copy: h itself is not read after the writes
        if how == "list":
            hs = [h, h]
        elif how == "repeat":
            hs = [torch.zeros(3)] * 2
        elif how == "dict":
            d = {"a": h, "b": h}
            if c.mean() > 0:
                d["a"].add_(1.0)
            return d["b"], d
        else:
            hs = []
            hs.append(h)
            hs.append(h)
        for i in range(2):
            if c[0, i] > 0:
                hs[i] += 1
        if c.sum() > 0:
            hs[0] *= 2
        return hs[1], hs


@pytest.mark.parametrize("how", ["list", "repeat", "dict", "append"])
def test_one_tensor_at_two_places_of_a_container_written_in_place(how: str) -> None:
    torch.manual_seed(0)
    m = _SameTensorTwice().eval()
    for stage in (True, False):
        cm = dycl_jax.convert(m, config=dycl_jax.Config(stage=stage))
        for s in (1.0, -1.0, 3.0, -3.0, 0.5):
            x = torch.full((1, 3), s) + torch.arange(3.0) * s
            with torch.no_grad():
                want = m(x, how)
            assert_same(cm(x, how), want)


class _ViewsInContainer(_Fc):
    def forward(self, x, how: str):
        h = self.fc(x)
        if how == "iter":
            feats = [h[0], h[0, :2]]
            if h.sum() > 0:
                for t in feats:
                    t.mul_(2)
        else:
            pair = (h, h.view(-1))
            if h.mean() > 0:
                pair[1][0] = 100.0
            return pair[0]
        return h


@pytest.mark.parametrize("how", ["iter", "tuple"])
def test_write_through_a_container_holding_views_is_refused(how: str) -> None:
    with pytest.raises(UnsupportedConstructError, match="holds a view of 'h'") as e:
        dycl_jax.convert(_ViewsInContainer().eval())(torch.ones(1, 3), how)
    assert e.value.location is not None and e.value.location.filename == __file__


class _EntriesShareStorage(_Fc):
    def forward(self, x, how: str):
        h = self.fc(x)
        if how == "repeat":
            hs = [h] * 3
            for i in range(3):
                if h[0, i] > 0:
                    hs[i] += 1
            return h, hs
        store = []
        store.append(h[:, :2])
        store.append(h)
        if h.max() > 0:
            store[1][:, 0] = 0.0
        return store


@pytest.mark.parametrize("how", ["repeat", "appended_view"])
def test_writes_through_entries_sharing_storage_with_a_live_tensor_are_refused(how: str) -> None:
    with pytest.raises(UnsupportedConstructError, match="in-place write") as e:
        dycl_jax.convert(_EntriesShareStorage().eval())(torch.ones(1, 3) * 3, how)
    assert e.value.location is not None and e.value.location.filename == __file__


class Nms(nn.Module):
    """ssd.pytorch's nms: ``keep[count] = i`` with ``i = idx[-1]`` copies i's value into the
    tensor ``keep`` (no alias), and ``torch.index_select(..., out=xx1)`` resizes ``xx1``."""

    def forward(self, boxes, scores):
        keep = scores.new(scores.size(0)).zero_().long()
        x1, x2 = boxes[:, 0], boxes[:, 1]
        length = x2 - x1
        v, idx = scores.sort(0)
        xx1 = boxes.new()
        xx2 = boxes.new()
        count = 0
        while idx.numel() > 0:
            i = idx[-1]
            keep[count] = i
            count += 1
            if idx.size(0) == 1:
                break
            idx = idx[:-1]
            torch.index_select(x1, 0, idx, out=xx1)
            torch.index_select(x2, 0, idx, out=xx2)
            xx1 = torch.clamp(xx1, min=x1[i])
            xx2 = torch.clamp(xx2, max=x2[i])
            inter = (xx2 - xx1).clamp(min=0.0)
            iou = inter / (torch.index_select(length, 0, idx) - inter + length[i])
            idx = idx[iou.le(0.3)]
        return keep, count


@pytest.mark.filterwarnings("ignore:An output with one or more elements was resized")
def test_nms_writes_into_a_fresh_tensor_and_out_buffers() -> None:
    m = Nms().eval()
    cm = dycl_jax.convert(m)
    g = torch.Generator().manual_seed(0)
    counts = set()
    for n in (6, 9, 6):
        start = torch.rand(n, generator=g) * 10
        boxes = torch.stack([start, start + 1 + torch.rand(n, generator=g) * 3], 1)
        scores = torch.rand(n, generator=g)
        want = m(boxes, scores)
        assert_same(cm(boxes, scores), want)
        counts.add(want[1])
    assert len(counts) > 1


class KeepList(nn.Module):
    """The same write into a Python list does make the list hold the view ``i``."""

    def forward(self, x):
        keep = [x[0]]
        idx = x.argsort()
        i = idx[-1:]
        keep[0] = i
        if x.sum() > 0:
            i += 1  # eager: keep[0] sees it
        return keep, i


def test_the_same_write_into_a_list_is_still_an_alias() -> None:
    m = KeepList().eval()
    x = torch.tensor([0.5, -1.0, 2.0])
    try:
        assert_same(dycl_jax.convert(m)(x), m(x))
    except UnsupportedConstructError as e:
        assert "may share memory" in str(e)


class LoopOverTuple(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.wq = nn.Linear(2, 2)
        self.wk = nn.Linear(2, 2)

    def forward(self, x):
        q, k = self.wq(x), self.wk(x)
        if q.abs().max() > 1:
            for t in (q, k):
                t.div_(2.0)  # writes q and k
        return q @ k.T


class WriteByFunction(nn.Module):
    def __init__(self, how: str) -> None:
        super().__init__()
        self.how = how

    def forward(self, x):
        h = x * 2
        if x.sum() > 0:
            if self.how == "init":
                nn.init.zeros_(h)
            elif self.how == "operator":
                operator.iadd(h, 1)
            else:
                h.__imul__(3)
        return h


@pytest.mark.parametrize("how", ["init", "operator", "dunder"])
def test_writes_made_by_loops_over_displays_and_function_forms_are_exact(how: str) -> None:
    torch.manual_seed(0)
    for m in (LoopOverTuple().eval(), WriteByFunction(how).eval()):
        cm = dycl_jax.convert(m)
        for x in (torch.full((1, 2), 3.0), torch.full((1, 2), -0.1)):
            with torch.no_grad():
                assert_same(cm(x), m(x))


_FORMS_HEADER = """
import collections, copy, dataclasses, functools, operator, types, typing
import torch, torch.nn as nn
from operator import iadd

@dataclasses.dataclass
class State:
    hidden: torch.Tensor

class Out(typing.NamedTuple):
    hidden: torch.Tensor

class M(nn.Module):
    def head(self, t):
        return t[:, :2]
"""

ALIAS_FORMS = {
    "iadd_list": "lst = []\n        lst += [h]\n        a = lst[0]",
    "get_default": "d = {}\n        a = d.get('k', h)",
    "setdefault": "d = {}\n        a = d.setdefault('k', h)",
    "update": "d = {}\n        d.update(k=h)\n        a = d['k']",
    "list_copy": "lst = [h]\n        a = lst.copy()[0]",
    "tuple_of_list": "a = tuple([h])[0]",
    "next_iter": "a = next(iter([h]))",
    "deque": "dq = collections.deque([h])\n        a = dq.popleft()",
    "values": "d = {'k': h}\n        a = list(d.values())[0]",
    "ifexp": "a = h if flag else x",
    "as_tensor": "a = torch.as_tensor(h)",
    "broadcast": "a, _ = torch.broadcast_tensors(h, torch.zeros(1, 3))",
    "dict_get": 'a = {"k": h}.get("k")',
    "list_pop": "a = [h].pop()",
    "walrus": "b = (a := h)",
    "walrus_in_comprehension": "b = [(a := t) for t in [h]]",
    "dict_comprehension": "d = {i: t for i, t in enumerate([h])}\n        a = d[0]",
    "list_comprehension_view": "a = [t[0] for t in [h]][0]",
    "nested_ifexp": "a = x if not flag else (x if x.numel() == 1 else h)",
    "or": "a = None or h",
    "dataclass": "a = State(h).hidden",
    "namedtuple": "a = Out(h).hidden",
    "namespace": "a = types.SimpleNamespace(hidden=h).hidden",
    "copy_copy": "a = copy.copy(h)",
    "copy_imported_in_forward": "import copy as cp\n        a = cp.copy(h)",
    "reduce": "a = functools.reduce(lambda p, q: p, [h, x])",
    "max_builtin": "a = max(h, h - 10, key=lambda t: float(t.sum()))",
    "helper_view": "a = self.head(h)",
    "local_def": "def g(t):\n            return t\n        a = g(h)",
    "lambda": "g = lambda t: t[:, :2]\n        a = g(h)",
}


@pytest.mark.parametrize("form", sorted(ALIAS_FORMS))
def test_aliases_made_by_calls_and_expressions_are_refused_when_written(
    form: str, tmp_path
) -> None:
    src = f"""{_FORMS_HEADER}
    def forward(self, x, flag=True):
        h = x * 2
        {ALIAS_FORMS[form]}
        if x.sum() > 0:
            a.add_(1)
        return h
"""
    path = tmp_path / f"alias_{form}.py"
    path.write_text(src)
    spec = importlib.util.spec_from_file_location(f"alias_{form}", path)
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    m = mod.M().eval()
    x = torch.ones(1, 3)
    try:
        got = dycl_jax.convert(m)(x)
    except UnsupportedConstructError as e:
        # (`a = h if flag else x`: a may be forward's own argument x)
        said = "may share memory" in str(e) or "writes into its argument 'x'" in str(e)
        assert said and e.location.filename == str(path)
    else:
        assert_same(got, m(x))


WRITE_FORMS = {
    "getattr_torch": 'getattr(torch, "relu_")(h)',
    "getattr_method": 'getattr(h, "add_")(1)',
    "imported_iadd": "iadd(h, 1)",
    "operator_setitem": "operator.setitem(h, 0, 5.0)",
    "dunder_setitem": "h.__setitem__(0, 3.0)",
    "object_field": "st.hidden.mul_(2)",
    "namedtuple_field": "o.hidden.sub_(1)",
}


@pytest.mark.parametrize("form", sorted(WRITE_FORMS))
def test_writes_spelled_as_calls_are_refused_or_exact(form: str, tmp_path) -> None:
    src = f"""{_FORMS_HEADER}
    def forward(self, x):
        h = x * 1
        a = h
        st = State(h)
        o = Out(h)
        if x.sum() > 0:
            {WRITE_FORMS[form]}
        return a, h
"""
    path = tmp_path / f"write_{form}.py"
    path.write_text(src)
    spec = importlib.util.spec_from_file_location(f"write_{form}", path)
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    m = mod.M().eval()
    x = torch.tensor([[1.0, -2.0], [3.0, 1.0]])
    try:
        got = dycl_jax.convert(m)(x)
    except UnsupportedConstructError as e:
        assert "may share memory" in str(e) and e.location.filename == str(path)
        assert e.location.lineno == src.splitlines().index(f"            {WRITE_FORMS[form]}") + 1
    else:
        assert_same(got, m(x))


class HelperView(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.lin = nn.Linear(4, 4)

    def head(self, t):
        return t[:, :2]

    def forward(self, x):
        h = self.lin(x)
        if h.sum() > 0:
            self.head(h).add_(1)  # writes h through a view the helper made
        return h


def test_a_write_through_a_view_a_helper_returns_reaches_the_base() -> None:
    torch.manual_seed(0)
    m = HelperView().eval()
    cm = dycl_jax.convert(m)
    for s in (1.0, -1.0, 3.0):
        x = torch.full((1, 4), s)
        assert_same(cm(x), m(x))


class HelperViewTwoLevels(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.lin = nn.Linear(4, 4)

    def inner(self, t):
        return t[:, :2]

    def head(self, t):
        return self.inner(t)  # (a helper's own callee: may hand back t, a view of it here)

    def forward(self, x):
        h = self.lin(x)
        if h.sum() > 0:
            self.head(h).add_(1)
        return h


def test_a_write_through_a_view_a_helpers_callee_returns_reaches_the_base() -> None:
    # (refused at run time as a write the analysis does not follow until a helper's own calls
    # that may hand back their argument were counted)
    torch.manual_seed(0)
    m = HelperViewTwoLevels().eval()
    cm = dycl_jax.convert(m)
    for s in (1.0, -1.0, 2.0):
        x = torch.full((1, 4), s)
        with torch.no_grad():
            want = m(x)
        assert_same(cm(x), want)


def test_assigning_data_is_refused() -> None:
    class Data(nn.Module):
        def forward(self, x):
            h = x * 2
            if x.sum() > 0:
                h.data = h.data * 3
            return h

    with pytest.raises(UnsupportedConstructError, match=r"\.data"):
        dycl_jax.convert(Data().eval())(torch.ones(1, 3))


class FinalizeHypos(nn.Module):
    """fairseq: ``pos_scores[:, step] = eos_scores`` copies values; a later in-place
    ``eos_scores /= k`` cannot reach ``pos_scores`` (rebound by arithmetic in between)."""

    def forward(self, scores, step: int):
        eos_scores = scores.max(1)[0]
        pos_scores = torch.zeros(scores.shape[0], 4)
        pos_scores[:, step] = eos_scores
        if eos_scores.sum() > 0:
            pos_scores = pos_scores * 2
        eos_scores /= (step + 1) ** 1.0
        return pos_scores, eos_scores


def test_values_copied_into_a_tensor_do_not_alias_it() -> None:
    m = FinalizeHypos().eval()
    cm = dycl_jax.convert(m)
    for s in (1.0, -1.0):
        x = torch.arange(15.0).reshape(3, 5) * s
        assert_same(cm(x, 1), m(x, 1))


class HelperWritesItems(nn.Module):
    """Helpers writing their argument in place, given a list entry or a list display."""

    def norm_(self, t):
        t.div_(2)

    def scale_all(self, ts):
        for t in ts:
            t.mul_(2)

    def forward(self, x):
        outs = [x * 1, x * 2]
        k = x + 1
        if x.sum() > 0:
            self.norm_(outs[0])
            self.scale_all([k])
        return outs[0], k


class RepeatedList(nn.Module):
    """``[z] * n`` with a tensor n is a list: an entry written from a view of h makes it hold
    that view (not the copy a tensor's item assignment would make)."""

    def forward(self, h):
        z = torch.zeros(2)
        n = (h.sum() > 0).long() + 1
        slots = [z] * n
        slots[0] = h[0]
        if h.sum() > 0:
            h.mul_(2)
        return slots[0]


def test_helpers_writing_list_entries_and_repeated_lists() -> None:
    m = HelperWritesItems().eval()
    cm = dycl_jax.convert(m)
    for x in (torch.ones(2, 2), -torch.ones(2, 2)):
        with torch.no_grad():
            assert_same(cm(x), m(x))
    r = RepeatedList().eval()
    x = torch.ones(2, 2)
    try:
        got = dycl_jax.convert(r)(x)
    except UnsupportedConstructError as e:
        # (h is forward's own argument: that write is refused first)
        assert "may share memory" in str(e) or "writes into its argument 'h'" in str(e)
    else:
        assert_same(got, r(x.clone()))


class LoopForms(nn.Module):
    def __init__(self, form: str) -> None:
        super().__init__()
        self.form = form

    def forward(self, x):
        q, k, v = x * 1, x + 1, x + 2
        if x.sum() > 0:
            if self.form == "concat":
                for t in (q, k) + (v,):
                    t.div_(2)
            elif self.form == "enumerate":
                for _, t in enumerate((q, k)):
                    t.div_(2)
            else:
                for t, u in zip((q, k), (v, v)):
                    t.add_(u)
        return q, k, v


@pytest.mark.parametrize("form", ["concat", "enumerate", "zip"])
def test_writes_through_loops_over_displays_in_every_form(form: str) -> None:
    m = LoopForms(form).eval()
    cm = dycl_jax.convert(m)
    for x in (torch.ones(2, 2), -torch.ones(2, 2)):
        assert_same(cm(x), m(x))


class RowsOfAnAlias(nn.Module):
    def forward(self, x):
        h = x * 1
        a = h
        if x.sum() > 0:
            for r in h:
                r.mul_(2)
        return h, a


class WriteInAComprehension(nn.Module):
    def forward(self, x):
        h = x * 1
        if x.sum() > 0:
            [t.add_(1) for t in (h,)]
        return h


@pytest.mark.parametrize("cls", [RowsOfAnAlias, WriteInAComprehension])
def test_writes_through_rows_and_comprehensions_are_refused(cls: type[nn.Module]) -> None:
    with pytest.raises(UnsupportedConstructError) as exc:
        dycl_jax.convert(cls().eval())(torch.ones(2, 2))
    assert exc.value.location.filename == __file__


class DynamicHelperView(nn.Module):
    """A helper with its own host program (a tensor condition) returning a view of its
    argument, written in place by the caller in a later region."""

    def head(self, t):
        if t.sum() > 100:
            return t[:, 2:]
        return t[:, :2]

    def forward(self, x):
        h = x * 1
        v = self.head(h)
        if x.sum() > 0:
            v.mul_(0)
        return h


def test_a_view_returned_by_a_dynamic_helper_is_an_alias() -> None:
    m = DynamicHelperView().eval()
    with pytest.raises(UnsupportedConstructError, match="may share memory with 'h'") as exc:
        dycl_jax.convert(m)(torch.ones(2, 4))
    assert exc.value.location.filename == __file__
    lines, first = inspect.getsourcelines(DynamicHelperView)
    assert exc.value.location.lineno == first + next(
        i for i, line in enumerate(lines) if "v.mul_(0)" in line
    )


class BufferAlias(nn.Module):
    """A local name bound to a module buffer (an EMA, a cache) written in place in a branch."""

    def __init__(self) -> None:
        super().__init__()
        self.register_buffer("running", torch.zeros(3))

    def forward(self, x):
        buf = self.running
        if x.sum() > 0:
            buf.add_(1)
        return x + self.running


class StoredThenAliased(nn.Module):
    def forward(self, x):
        h = x * 2
        self.cache = h
        a = self.cache
        if x.sum() > 0:
            a.add_(1)
        return h


@pytest.mark.parametrize("cls", [BufferAlias, StoredThenAliased])
def test_writes_through_names_bound_to_module_attributes_are_refused(cls: type) -> None:
    e, m = cls().eval(), cls().eval()
    for x in (torch.ones(1, 3), -torch.ones(1, 3)):
        try:
            got = dycl_jax.convert(m)(x)
        except UnsupportedConstructError as err:
            assert "may share memory" in str(err) and err.location.filename == __file__
            return
        assert_same(got, e(x))
        assert_same(m.state_dict(), e.state_dict())


class NumpyViewWrittenOnHost(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.fc = nn.Linear(4, 4)

    def forward(self, x):
        scores = self.fc(x)
        s = scores.detach().numpy()  # shares scores' memory in PyTorch
        s[s < 0] = 0.0
        if scores.sum() > 100:
            scores = scores * 2
        return scores


class NumpyViewOfTensorWritten(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.fc = nn.Linear(4, 4)

    def forward(self, x):
        probs = self.fc(x).softmax(-1)
        seen = probs.numpy()
        if probs.max() > 0.2:
            probs.clamp_(max=0.2)
        return probs, float(seen.sum())


class FromNumpyWritten(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.fc = nn.Linear(3, 3)

    def forward(self, x):
        keep = np.ones(x.shape[0], dtype=np.float32)
        w = torch.from_numpy(keep)
        h = self.fc(x)
        for i in range(x.shape[0]):
            if h[i].sum() < 0:
                w[i] = 0.0
        return h * w.unsqueeze(1), float(keep.sum())


@pytest.mark.parametrize(
    "cls", [NumpyViewWrittenOnHost, NumpyViewOfTensorWritten, FromNumpyWritten]
)
def test_memory_shared_with_numpy_is_followed_or_refused(cls: type) -> None:
    torch.manual_seed(0)
    m = cls().eval()
    x = torch.randn(3, 4 if cls is not FromNumpyWritten else 3)
    try:
        got = dycl_jax.convert(m)(x)
    except UnsupportedConstructError as e:
        assert "memory" in str(e) and e.location.filename == __file__
    else:
        with torch.no_grad():
            assert_same(got, m(x))


class FlagIntoKwargs(nn.Module):
    """transformers' generate(): a flag stored into the kwargs dict a helper returned next to
    the input tensor (a new entry changes no tensor)."""

    def __init__(self) -> None:
        super().__init__()
        self.lin = nn.Linear(4, 4)

    def prepare(self, inputs, model_kwargs):
        model_kwargs = {k: v for k, v in model_kwargs.items() if v is not None}
        given = model_kwargs.pop("input_ids", None)
        if given is not None:
            inputs = given
        return inputs, "input_ids", model_kwargs

    def forward(self, x, **kwargs):
        inputs, _, model_kwargs = self.prepare(x, kwargs)
        model_kwargs["output_attentions"] = False
        h = self.lin(inputs)
        if h.sum() > 0:
            h = h + 1
        return h, model_kwargs["output_attentions"]


class EntryIntoModuleCache(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.cache: dict = {}

    def forward(self, x):
        c = self.cache
        if x.sum() > 0:
            c["last"] = x * 2
        return x + 1, self.cache.get("last")


def test_dict_entries_stored_through_an_alias_are_exact_or_refused() -> None:
    torch.manual_seed(0)
    m = FlagIntoKwargs().eval()
    cm = dycl_jax.convert(m)
    for s in (1.0, -1.0):
        x = torch.randn(1, 4) * s
        with torch.no_grad():
            assert_same(cm(x), m(x))
    with pytest.raises(UnsupportedConstructError, match="may share memory with 'self'"):
        dycl_jax.convert(EntryIntoModuleCache().eval())(torch.ones(1, 2))


class ExitSlots(nn.Module):
    """Per-sample exits filling a result list made with [None] * n (an entry replaced is no
    write to the tensor stored), and a write through a list entry into the tensor it holds."""

    def __init__(self) -> None:
        super().__init__()
        self.stages = nn.ModuleList(nn.Linear(4, 4) for _ in range(3))

    def forward(self, x):
        pending = list(range(x.shape[0]))
        results = [None] * x.shape[0]
        h = x
        for s, stage in enumerate(self.stages):
            h = torch.tanh(stage(h)) + h
            conf = h.softmax(-1).max(-1).values
            keep = []
            for j, orig in enumerate(pending):
                if conf[j] > 0.4 or s == len(self.stages) - 1:
                    results[orig] = h[j]
                else:
                    keep.append(j)
            pending = [pending[j] for j in keep]
            if not pending:
                break
            h = h[keep]
        return torch.stack(results)


class WriteThroughEntry(nn.Module):
    def forward(self, x):
        h = x * 2
        held = [h, x]
        if x.sum() > 0:
            held[0][0] = 5.0  # writes h itself
        return h


def test_entries_replaced_in_new_lists_are_exact_and_writes_through_them_refused() -> None:
    torch.manual_seed(0)
    m = ExitSlots().eval()
    cm = dycl_jax.convert(m)
    for s in (0.1, 3.0, 1.0):
        x = torch.randn(4, 4) * s
        with torch.no_grad():
            assert_same(cm(x), m(x))
    with pytest.raises(UnsupportedConstructError, match="may share memory with 'h'"):
        dycl_jax.convert(WriteThroughEntry().eval())(torch.ones(2, 4))


class _Pondering(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.lin = nn.Linear(4, 4)

    def forward(self, x):
        steps = 0
        h = self.lin(x)
        while h.norm() > 1 and steps < 5:
            h = h * 0.5
            steps += 1
        return h, steps


def _tagged(x):
    tag = "t"
    return x * 2, tag


class _CountsSteps(nn.Module):
    """A dynamic helper and a traced one return (tensor, Python value): ``n += 1`` and
    ``tag += "+"`` rebind Python values, not in-place writes to a tensor (ACT-style code)."""

    def __init__(self) -> None:
        super().__init__()
        self.block = _Pondering()

    def forward(self, x):
        h, n = self.block(x)
        n += 1
        g, tag = _tagged(h)
        tag += "+"
        if n > 3:
            g = g + 1
        return g, n, tag


def test_python_values_a_helper_returns_beside_a_tensor_are_rebound_not_written() -> None:
    _parity(_CountsSteps(), scales=(0.1, 1.0, 10.0))
    with torch.no_grad():
        m = _CountsSteps().eval()
        assert len({m(torch.full((1, 4), s))[1] for s in (0.01, 10.0)}) == 2


def test_python_return_parts_summary() -> None:
    """Positions judged Python only where every return says so, by constant or counter."""
    import ast

    from dycl_jax.analysis.aliasing import python_return_parts

    def parts(src: str) -> tuple[bool, ...] | None:
        fn = ast.parse(src).body[0]
        assert isinstance(fn, ast.FunctionDef)
        return python_return_parts(fn)

    assert parts("def f(x):\n n = 0\n n += 1\n return x, n, None") == (False, True, True)
    assert parts("def f(x):\n n = 0\n n += x.sum()\n return x, n") == (False, False)
    assert parts("def f(x):\n n = 0\n for n in x: pass\n return x, n") == (False, False)
    assert parts("def f(x, n=0):\n return x, n") == (False, False)
    assert parts("def f(x):\n if x: return x, 1\n return x, x") == (False, False)
    assert parts("def f(x):\n if x: return x, 1\n return x") is None
    assert parts("def f(x):\n yield x, 1") is None
