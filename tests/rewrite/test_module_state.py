"""Module state read inside regions follows the module after convert (guards), and names bound
by except/import or read through closures reach regions correctly."""

from __future__ import annotations

import types

import numpy as np
import pytest
import torch
import torch.nn as nn
import torch.nn.functional as F

import dycl_jax
from dycl_jax.testing import assert_same


class Head(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.lin = nn.Linear(4, 4)
        self.temperature = 1.0

    def forward(self, x):
        return self.lin(x) / self.temperature


class Sweep(nn.Module):
    """Early exit on a threshold, a temperature in a submodule, a Python list of weights."""

    def __init__(self) -> None:
        super().__init__()
        self.blocks = nn.ModuleList(nn.Linear(4, 4) for _ in range(3))
        self.head = Head()
        self.threshold = 0.9
        self.mix = [1.0, 0.5]

    def forward(self, x):
        for i, blk in enumerate(self.blocks):
            x = torch.tanh(blk(x)) * self.mix[0] + x * self.mix[1]
            logits = self.head(x)
            conf = F.softmax(logits, dim=-1).max()
            if conf > self.threshold:
                return logits, i
        return logits, -1


def test_attributes_changed_after_convert_are_followed() -> None:
    torch.manual_seed(0)
    m = Sweep().eval()
    cm = dycl_jax.convert(m)
    x = torch.randn(1, 4)
    exits = set()
    for threshold, temperature, mix in [
        (0.9, 1.0, [1.0, 0.5]),
        (0.0, 1.0, [1.0, 0.5]),
        (0.9, 0.05, [1.0, 0.5]),
        (0.9, 1.0, [2.0, -1.0]),
        (0.9, 1.0, [1.0, 0.5]),
    ]:
        m.threshold, m.head.temperature, m.mix = threshold, temperature, mix
        want = m(x)
        assert_same(cm(x), want)
        exits.add(want[1])
    assert len(exits) >= 2, exits


def test_returning_to_an_old_attribute_value_reuses_its_compile() -> None:
    torch.manual_seed(0)
    m = Sweep().eval()
    cm = dycl_jax.convert(m)
    x = torch.randn(1, 4)
    for t in (0.9, 0.1, 0.9, 0.1):
        m.threshold = t
        assert_same(cm(x), m(x))
    first = cm.stats.compiles
    for t in (0.9, 0.1):
        m.threshold = t
        assert_same(cm(x), m(x))
    assert cm.stats.compiles == first


class Exit(Exception):
    def __init__(self, k: int) -> None:
        super().__init__(k)
        self.k = k


class ExceptAndImport(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.lin = nn.Linear(4, 4)

    def forward(self, x):
        import torch.nn.functional as G

        n = 0
        try:
            h = self.lin(x)
            if h.sum() > 0:
                raise Exit(2)
        except Exit as e:
            return G.relu(h) + e.k
        step = 1

        def scale(z):
            return z * (n + step)

        for _ in range(3):
            h = torch.tanh(h)
            n = n + 1  # bookkeeping between two trace statements; scale reads it
            h = scale(h)
        return h


def test_except_as_import_and_closure_reads_reach_regions() -> None:
    torch.manual_seed(1)
    m = ExceptAndImport().eval()
    cm = dycl_jax.convert(m)
    seen = set()
    for s in (1.0, -1.0, 3.0, -3.0):
        x = torch.ones(1, 4) * s
        assert_same(cm(x), m(x))
        seen.add(bool(m.lin(x).sum() > 0))  # the path: raised and caught, or the loop
    assert seen == {True, False}


class Cfg:
    def __init__(self) -> None:
        self.scale = 2.0


GLOBAL_SCALE = 1.0


class Everything(nn.Module):
    """Values read in a region from a config object, a dict, a numpy scalar, a plain tensor
    attribute, a module-level global and a swappable submodule; tied weights."""

    def __init__(self) -> None:
        super().__init__()
        self.lin = nn.Linear(4, 4)
        self.tied = nn.Linear(4, 4)
        self.tied.weight = self.lin.weight
        self.cfg = Cfg()
        self.d = {"a": 2.0}
        self.np = np.float32(2.0)
        self.t = torch.tensor(2.0)
        self.act = nn.Tanh()

    def forward(self, x):
        h = self.lin(x)
        if h.sum() > -100:
            h = self.act(h * self.cfg.scale * self.d["a"] * self.np * self.t * GLOBAL_SCALE)
        return self.tied(h)


def test_config_objects_dicts_globals_tensors_submodules_and_tied_weights_are_followed() -> None:
    global GLOBAL_SCALE
    torch.manual_seed(0)
    m = Everything().eval()
    cm = dycl_jax.convert(m)
    x = torch.randn(1, 4)
    assert_same(cm(x), m(x))
    changes = [
        lambda: setattr(m.cfg, "scale", 3.0),
        lambda: m.d.__setitem__("a", 0.5),
        lambda: setattr(m, "np", np.float32(-1.0)),
        lambda: m.t.fill_(0.25),
        lambda: setattr(m, "act", nn.Sigmoid()),
        lambda: m.lin.weight.mul_(-1.0),  # tied: self.tied reads it too
    ]
    try:
        for change in [*changes, None]:
            if change is None:
                GLOBAL_SCALE = 4.0
            else:
                with torch.no_grad():
                    change()
            assert_same(cm(x), m(x))
    finally:
        GLOBAL_SCALE = 1.0


def test_refresh_rereads_replaced_parameters() -> None:
    torch.manual_seed(0)
    m = Everything().eval()
    cm = dycl_jax.convert(m)
    x = torch.randn(1, 4)
    cm(x)
    m.tied.bias = nn.Parameter(torch.full((4,), 5.0))
    cm.refresh()
    assert_same(cm(x), m(x))


class Blocks(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.ls = nn.ModuleList(nn.Linear(4, 4) for _ in range(3))

    def forward(self, x):
        for _i, layer in enumerate(self.ls):
            x = torch.tanh(layer(x))
            if x.sum() > 3:
                break
        return x


def test_module_list_entry_replaced_after_convert_is_followed() -> None:
    torch.manual_seed(0)
    m = Blocks().eval()
    cm = dycl_jax.convert(m)
    x = torch.randn(1, 4)
    assert_same(cm(x), m(x))
    m.ls[1] = nn.Linear(4, 4)
    assert_same(cm(x), m(x))
    m.ls[2] = nn.Sequential(nn.Linear(4, 8), nn.Linear(8, 4))  # new parameter names
    assert_same(cm(x), m(x))


class OdeFunc(nn.Module):
    """torchdiffeq's pattern: the ODE function counts its evaluations in an attribute."""

    def __init__(self) -> None:
        super().__init__()
        self.net = nn.Linear(4, 4)
        self.nfe = 0

    def forward(self, t, y):
        self.nfe += 1
        return self.net(y) * t


def _rk_step(func, t, y, dt):
    k1 = func(t, y)
    k2 = func(t + dt, y + dt * k1)
    return y + dt * 0.5 * (k1 + k2)


class OdeSolver(nn.Module):
    def __init__(self, bound: bool) -> None:
        super().__init__()
        self.odefunc = OdeFunc()
        self.bound = bound

    def _f(self, t, y):
        return self.odefunc(t, y)

    def forward(self, y, steps: int):
        self.odefunc.nfe = 0
        t = torch.tensor(0.0)
        for _ in range(steps):
            # the function reaches the step helper as an argument: traced inside a region
            y = _rk_step(self._f if self.bound else self.odefunc, t, y, 0.1)
            if y.norm() > 20:
                break
            t = t + 0.1
        return y, self.odefunc.nfe


@pytest.mark.parametrize("bound", [False, True])
def test_a_counter_a_traced_submodule_increments_counts_every_call(bound: bool) -> None:
    torch.manual_seed(0)
    m = OdeSolver(bound).eval()
    cm = dycl_jax.convert(m)
    g = torch.Generator().manual_seed(0)
    counts = set()
    for steps, scale in ((3, 1.0), (5, 1.0), (3, 30.0), (5, 1.0)):
        y = torch.randn(2, 4, generator=g) * scale
        with torch.no_grad():
            want = m(y, steps)
        assert_same(cm(y, steps), want)
        assert m.odefunc.nfe == want[1]
        counts.add(want[1])
    assert len(counts) > 1


class HaltingScores(nn.Module):
    """A-ViT's last layer: a halting score made as ``nn.Parameter(torch.ones(...))`` in forward."""

    def forward(self, x):
        h = nn.Parameter(torch.ones(x.shape[0], x.shape[1]))
        if x.sum() > 0:
            h = nn.Parameter(h * 2, requires_grad=False)
        return x * h + 1


def test_parameters_made_in_forward_are_their_values() -> None:
    m = HaltingScores().eval()
    cm = dycl_jax.convert(m)
    for x in (torch.ones(2, 3), -torch.ones(2, 3)):
        with torch.no_grad():
            assert_same(cm(x), m(x))


class Post(nn.Module):
    def post(self, h):
        return h + 1

    def forward(self, x):
        h = x * 2
        if h.mean() > 0:
            h = h * 3
        return self.post(h)


def test_a_method_replaced_on_the_class_after_convert_is_followed() -> None:
    m = Post().eval()
    cm = dycl_jax.convert(m)
    x = torch.ones(1, 2)
    assert_same(cm(x), m(x))
    original = Post.post
    try:
        Post.post = lambda self, h: h - 100
        assert_same(cm(x), m(x))
    finally:
        Post.post = original
    assert_same(cm(x), m(x))


class StatefulDecoder(nn.Module):
    """OpenNMT's RNN decoder keeps its hidden state in a dict on the module."""

    def __init__(self) -> None:
        super().__init__()
        self.cell = nn.GRUCell(3, 3)
        self.state: dict = {}

    def init_state(self, h):
        self.state["hidden"] = (h,)

    def forward(self, x):
        h = self.cell(x, self.state["hidden"][0])
        self.state["hidden"] = (h,)
        return h


def _decode_step(decoder, x):
    return decoder(x) * 2


class Greedy(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.decoder = StatefulDecoder()

    def forward(self, x):
        self.decoder.init_state(torch.zeros(1, 3))
        outs = []
        for _ in range(4):
            y = _decode_step(self.decoder, x)  # the decoder is traced inside a region
            outs.append(y)
            if y.sum() > 3:
                break
        return torch.cat(outs), self.decoder.state["hidden"][0]


def test_tensors_a_traced_submodule_stores_in_its_state_are_kept_every_call() -> None:
    torch.manual_seed(0)
    m = Greedy().eval()
    cm = dycl_jax.convert(m)
    for s in (1.0, -1.0, 3.0):
        x = torch.full((1, 3), s)
        with torch.no_grad():
            want = m(x)
        assert_same(cm(x), want)


class Gate2(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.lin = nn.Linear(2, 2)

    def forward(self, x):
        h = self.lin(x)
        if h.sum() > 0:
            h = h * 2
        return h


def test_a_dtype_change_after_convert_is_followed() -> None:
    torch.manual_seed(0)
    m = Gate2().eval()
    cm = dycl_jax.convert(m)
    for x in (torch.tensor([[1.0, 2.0]]), torch.tensor([[-1.0, -2.0]])):
        assert_same(cm(x), m(x))
    m.double()
    for x in (torch.tensor([[1.0, 2.0]]), torch.tensor([[-1.0, -2.0]])):
        x = x.double()
        with torch.no_grad():
            assert_same(cm(x), m(x))
    m.float()
    x = torch.tensor([[1.0, 2.0]])
    with torch.no_grad():
        assert_same(cm(x), m(x))


class Gated(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.lin = nn.Linear(4, 4)
        self.register_buffer("shift", torch.zeros(4))

    def forward(self, x):
        h = self.lin(x) + self.shift
        if h.mean() > 0:
            return h * 2
        return h - 1


def test_storage_swapped_with_set_after_convert_is_followed() -> None:
    """``weight.set_(other)`` keeps the Parameter object but gives it other storage (and maybe
    another shape): the converted model reads the new values from the next call on."""
    torch.manual_seed(0)
    m = Gated().eval()
    xs = [torch.randn(1, 4) * s for s in (0.3, -3.0, 1.0, 2.0)]
    cm = dycl_jax.convert(m)

    def check() -> set[bool]:
        taken = set()
        for x in xs:
            for _ in range(2):  # the second call of each input runs what the first compiled
                with torch.no_grad():
                    expected = m(x)
                    taken.add(bool(m.lin(x).add(m.shift).mean() > 0))
                assert_same(cm(x), expected)
        return taken

    assert check() == {True, False}
    with torch.no_grad():
        m.lin.weight.set_(torch.full((4, 4), 0.05))
    check()
    with torch.no_grad():
        m.lin.weight.set_(torch.full((4, 4), -0.07).t())  # strided storage
    check()
    with torch.no_grad():  # a new shape: the compiled regions are cleared
        m.lin.weight.set_(torch.full((6, 4), 0.03))
        m.lin.bias.set_(torch.linspace(-1, 1, 6))
        m.shift.set_(torch.ones(6))
    check()


class FlagReader(nn.Module):
    """Branches on ``requires_grad``: a frozen layer's flag, and a value computed under
    ``enable_grad`` inside forward (True in eager even when the caller runs under no_grad)."""

    def __init__(self) -> None:
        super().__init__()
        self.layers = nn.ModuleList(nn.Linear(4, 4) for _ in range(3))
        self.layers[1].requires_grad_(False)

    def forward(self, x):
        outs = []
        for layer in self.layers:
            x = layer(x)
            if layer.weight.requires_grad and x.sum() > -100:
                outs.append(x.sum())
        with torch.enable_grad():
            g = self.layers[0](x)
        if g.requires_grad:
            return x, outs
        return -x, outs


def test_requires_grad_read_by_the_model_is_eagers_flag() -> None:
    torch.manual_seed(0)
    m = FlagReader().eval()
    cm = dycl_jax.convert(m)
    for x in (torch.randn(2, 4), torch.randn(2, 4) * 3):
        with torch.no_grad():
            expected = m(x)
        assert (
            len(expected[1]) == 2
            and expected[0][0, 0] == m.layers[2](m.layers[1](m.layers[0](x)))[0, 0]
        )
        assert_same(cm(x), expected)


class RunningHits(nn.Module):
    """A plain tensor attribute updated with `+=` in forward: eager adds into that tensor."""

    def __init__(self) -> None:
        super().__init__()
        self.lin = nn.Linear(4, 4)
        self.hits = torch.zeros(4)

    def forward(self, x):
        h = self.lin(x)
        with torch.no_grad():
            self.hits += (h > 0).float().sum(0)
        if self.hits.max() > 3:
            h = h * 0.5
        return h


def test_augmented_update_of_a_held_tensor_attribute_is_refused_at_its_line() -> None:
    from dycl_jax.errors import UnsupportedConstructError

    with pytest.raises(UnsupportedConstructError, match=r"in-place update of self\.hits") as e:
        dycl_jax.convert(RunningHits().eval())(torch.randn(2, 4))
    assert e.value.location is not None and e.value.location.filename == __file__
    assert "self.hits +=" in e.value.location.source_line()
    assert "self.hits = self.hits + ..." in str(e.value)


class FreshAccumulator(nn.Module):
    """The same `+=` on a tensor stored on an object made in this call: exact."""

    def __init__(self) -> None:
        super().__init__()
        self.lin = nn.Linear(4, 4)

    def forward(self, x):
        st = types.SimpleNamespace()
        st.total = torch.zeros(4)
        h = x
        for _ in range(3):
            h = self.lin(h)
            if h.sum() > 0:
                st.total += h.sum(0)
        return st.total


def test_augmented_update_of_a_tensor_on_a_fresh_object_is_exact() -> None:
    torch.manual_seed(0)
    m = FreshAccumulator().eval()
    cm = dycl_jax.convert(m)
    for s in (1.0, -1.0, 2.0):
        x = torch.randn(2, 4) * s
        with torch.no_grad():
            assert_same(cm(x), m(x))


class MoCoQueue(nn.Module):
    """MoCo's queue kept as a plain tensor attribute, written by a helper at a pointer."""

    def __init__(self) -> None:
        super().__init__()
        self.enc = nn.Linear(4, 4)
        self.queue = F.normalize(torch.randn(4, 6), dim=0)
        self.queue_ptr = 0

    @torch.no_grad()
    def _enqueue(self, keys):
        n = keys.shape[0]
        ptr = self.queue_ptr
        self.queue[:, ptr : ptr + n] = keys.T
        self.queue_ptr = (ptr + n) % 6

    def forward(self, x):
        q = F.normalize(self.enc(x), dim=1)
        logits = q @ self.queue
        if logits.max() > 0.5:
            self._enqueue(q)
        return logits


def test_a_write_into_a_held_queue_is_refused_naming_the_queue_not_the_pointer() -> None:
    from dycl_jax.errors import DyclError

    torch.manual_seed(0)
    with pytest.raises(DyclError, match="tensor that outlives the call") as e:
        cm = dycl_jax.convert(MoCoQueue().eval())
        for s in (1.0, 3.0, -3.0):
            cm(torch.randn(2, 4) * s)
    assert "ptr" not in str(e.value).split("\n")[0]
    assert e.value.location is not None and "self.queue[:, ptr" in e.value.location.source_line()
