"""State a capture bakes in beyond a module's own attributes: class attributes, tensors held in
plain objects and dicts, nested config sections, module-level tensors, and the fields of a plain
helper object whose method has tensor-dependent control flow. Changing any of them after
``convert`` must be followed (compared with eager PyTorch after each change)."""

from __future__ import annotations

import collections
import dataclasses
import enum
import functools
import types
import typing
from typing import Any

import numpy as np
import pytest
import torch
import torch.nn as nn

import dycl_jax
from dycl_jax.testing import assert_same

MASK = torch.ones(4)


def _check(m: nn.Module, cm, xs) -> None:  # type: ignore[no-untyped-def]
    for x in xs:
        with torch.no_grad():
            assert_same(cm(x), m(x))


def _xs() -> list[torch.Tensor]:
    g = torch.Generator().manual_seed(0)
    return [torch.randn(2, 4, generator=g) * s for s in (1.0, -1.0, 3.0)]


class ClassLimit(nn.Module):
    LIMIT = 0.0
    SCALE = 1.0

    def __init__(self) -> None:
        super().__init__()
        self.lin = nn.Linear(4, 4)

    @classmethod
    def scale(cls) -> float:
        return cls.SCALE

    def forward(self, x):
        y = self.lin(x) * type(self).scale() * ClassLimit.SCALE
        if y.mean() > type(self).LIMIT:
            return y * 2
        return y - 1


def test_class_attributes_changed_after_convert() -> None:
    torch.manual_seed(0)
    m = ClassLimit().eval()
    cm = dycl_jax.convert(m)
    xs = _xs()
    _check(m, cm, xs)
    try:
        ClassLimit.LIMIT = 0.3
        ClassLimit.SCALE = -2.0
        _check(m, cm, xs)
    finally:
        ClassLimit.LIMIT, ClassLimit.SCALE = 0.0, 1.0
    _check(m, cm, xs)


class Policy:
    def __init__(self, w: torch.Tensor, thr: float) -> None:
        self.w = w
        self.thr = thr

    def decide(self, h):
        score = (h @ self.w).mean()
        if score > self.thr:
            return True
        return False


class HeldTensors(nn.Module):
    """Tensors outside parameters and buffers: in a plain helper object (whose method branches),
    in a dict attribute, in a nested config section, and a module-level global."""

    def __init__(self) -> None:
        super().__init__()
        self.lin = nn.Linear(4, 4)
        self.pol = Policy(torch.randn(4), 0.0)
        self.protos = {"a": torch.randn(4), "b": torch.randn(4)}
        self.cfg = types.SimpleNamespace(sub=types.SimpleNamespace(thr=0.0, bias=torch.zeros(4)))

    def forward(self, x):
        h = torch.tanh(self.lin(x)) + self.protos["a"] * MASK + self.cfg.sub.bias
        if self.pol.decide(h):
            h = h * 2
        if h.mean() > self.cfg.sub.thr:
            return h + 1
        return h - 1


def test_tensors_and_nested_fields_outside_parameters_are_followed() -> None:
    global MASK
    torch.manual_seed(0)
    m = HeldTensors().eval()
    cm = dycl_jax.convert(m)
    xs = _xs()
    _check(m, cm, xs)
    edits = [
        lambda: setattr(m.pol, "w", -m.pol.w),  # replaced in a helper object
        lambda: m.pol.w.mul_(3.0),  # edited in place there
        lambda: setattr(m.pol, "thr", 0.7),
        lambda: m.protos.__setitem__("a", torch.full((4,), 0.5)),  # a dict entry replaced
        lambda: m.protos["a"].add_(1.0),  # and edited in place
        lambda: setattr(m.cfg.sub, "thr", 5.0),  # a nested config field
        lambda: m.cfg.sub.bias.fill_(-0.25),
        lambda: setattr(m.cfg, "sub", types.SimpleNamespace(thr=-5.0, bias=torch.ones(4))),
        lambda: MASK.mul_(2.0),  # a module-level tensor edited in place
    ]
    try:
        for edit in edits:
            edit()
            _check(m, cm, xs)
        MASK = torch.zeros(4)  # and rebound
        _check(m, cm, xs)
    finally:
        MASK = torch.ones(4)


def _act(h):
    return torch.tanh(h)


class GradModeAndGlobalFunctions(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.lin = nn.Linear(4, 4)

    def forward(self, x):
        y = _act(self.lin(x))
        if torch.is_grad_enabled():
            y = y * 2
        if y.sum() > 0:
            return y
        return -y


def test_grad_mode_and_rebound_global_functions_are_followed() -> None:
    global _act
    torch.manual_seed(0)
    m = GradModeAndGlobalFunctions().eval()
    cm = dycl_jax.convert(m)
    xs = _xs()
    for mode in (torch.no_grad, torch.enable_grad, torch.no_grad):
        with mode():
            for x in xs:
                assert_same(cm(x), m(x).detach())
    saved = _act
    try:
        _act = torch.sigmoid
        _check(m, cm, xs)
    finally:
        _act = saved
    _check(m, cm, xs)


class NumpyPrior(nn.Module):
    """A numpy array on the module read through torch.from_numpy (which shares its memory)."""

    def __init__(self) -> None:
        super().__init__()
        self.fc = nn.Linear(4, 3)
        self.class_bias = np.array([0.0, 0.5, -0.5], dtype=np.float32)

    def forward(self, x):
        logits = self.fc(x) + torch.from_numpy(self.class_bias)
        if logits.max() > 0:
            return logits
        return -logits


def test_numpy_array_attributes_edited_or_rebound_after_convert() -> None:
    torch.manual_seed(0)
    m = NumpyPrior().eval()
    cm = dycl_jax.convert(m)
    x = torch.randn(1, 4)
    with torch.no_grad():
        assert_same(cm(x), m(x))
        m.class_bias[0] = 20.0  # in place
        assert_same(cm(x), m(x))
        m.class_bias = np.array([0.0, 0.5, 30.0], dtype=np.float32)  # a new array
        assert_same(cm(x), m(x))


def _method_classes():
    """Fresh classes per test: a method calling another, an inherited method, a submodule."""

    class Base(nn.Module):
        def post(self, h):
            return h + 1

    class Sub(nn.Module):
        def forward(self, h):
            return h * 2

    class Net(Base):
        def __init__(self) -> None:
            super().__init__()
            self.s = Sub()

        def inner(self, h):
            return h - 1

        def mid(self, h):
            return self.inner(h) * 3

        def forward(self, x):
            h = self.post(self.mid(self.s(x)))
            if h.sum() > 0:
                return h
            return -h

    return Base, Sub, Net


def test_methods_replaced_on_classes_after_convert_are_followed() -> None:
    x = torch.ones(2)
    for what in ("inner", "post", "forward"):
        _, Sub, Net = _method_classes()
        m = Net().eval()
        cm = dycl_jax.convert(m)
        assert_same(cm(x), m(x))
        if what == "forward":
            Sub.forward = lambda self, h: h * 100  # the submodule's class
        else:
            setattr(Net, what, lambda self, h: h * 100)  # called by a method / an override
        with torch.no_grad():
            assert_same(cm(x), m(x))
            assert_same(cm(-x), m(-x))


class _SetattrCounter(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.lin = nn.Linear(4, 4)
        self.n = 0

    def forward(self, h):
        object.__setattr__(self, "n", self.n + 1)  # around Module.__setattr__
        return torch.tanh(self.lin(h))


class _Solver(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.f = _SetattrCounter()

    def solve(self, x):
        for _ in range(3):
            x = x + 0.1 * self.f(x)
        return x

    def forward(self, x):
        h = self.solve(x)
        if h.sum() > 0:
            h = self.solve(h)
        return h


def test_a_counter_set_with_object_setattr_while_traced_counts_real_calls() -> None:
    torch.manual_seed(0)
    e = _Solver().eval()
    torch.manual_seed(0)
    c = _Solver().eval()
    cm = dycl_jax.convert(c)
    for x in (torch.ones(2, 4), -torch.ones(2, 4), torch.ones(2, 4)):
        with torch.no_grad():
            want = e(x)
        assert_same(cm(x), want)
        assert c.f.n == e.f.n


class _Policy:
    """A plain helper object whose threshold a nested method reads."""

    def __init__(self, base: float) -> None:
        self.base = base
        self.temp = torch.ones(())

    def threshold(self, layer):
        return self.base * (0.8**layer)

    def conf(self, logits):
        return (logits / self.temp).softmax(-1).max()

    def should_exit(self, logits, layer):
        return bool(self.conf(logits) > self.threshold(layer))


class _PolicyNet(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.fc = nn.Linear(4, 3)
        self.policy = _Policy(0.9)

    def forward(self, x):
        logits = self.fc(x)
        if self.policy.should_exit(logits, 0):
            return logits, "exit"
        return -logits, "cont"


def test_helper_object_fields_read_by_nested_methods_are_followed() -> None:
    torch.manual_seed(0)
    m = _PolicyNet().eval()
    cm = dycl_jax.convert(m)
    x = torch.randn(1, 4)
    with torch.no_grad():
        assert_same(cm(x), m(x))
        m.policy.base = 0.1  # a number read by threshold(), called by should_exit()
        assert_same(cm(x), m(x))
        m.policy.base = 0.99
        m.policy.temp.fill_(0.05)  # a tensor read by conf(), edited in place
        assert_same(cm(x), m(x))


class _Dual(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.a = nn.Linear(4, 4)
        self.b = nn.Linear(4, 4)

    def forward(self, x):
        h = self.a(x)
        if h.sum() > 0:
            return self.b(h), "b"
        return h, "a"

    def forward_fast(self, x):
        return self.a(x) * 2, "fast"


def test_forward_rebound_on_the_model_or_its_class_after_convert_is_followed() -> None:
    torch.manual_seed(0)
    m = _Dual().eval()
    cm = dycl_jax.convert(m)
    x = torch.randn(2, 4)
    with torch.no_grad():
        assert_same(cm(x), m(x))
        m.forward = m.forward_fast
        assert_same(cm(x), m(x))
        del m.forward
        assert_same(cm(x), m(x))

    class Sub(_Dual):
        pass

    s = Sub().eval()
    cs = dycl_jax.convert(s)
    with torch.no_grad():
        assert_same(cs(x), s(x))
        Sub.forward = _Dual.forward_fast
        assert_same(cs(x), s(x))


class _Gate(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.rnn = nn.LSTM(4, 3)
        self.hidden = None

    def forward(self, x):
        out, self.hidden = self.rnn(x.view(1, x.size(0), -1), self.hidden)
        return out.squeeze(0).sum(-1)


class _RecurrentGateNet(nn.Module):
    """SkipNet's recurrent gate: an LSTM (h, c) state set on a submodule by the parent."""

    def __init__(self) -> None:
        super().__init__()
        self.control = _Gate()
        self.fc = nn.Linear(4, 4)

    def forward(self, x):
        self.control.hidden = (torch.zeros(1, x.size(0), 3), torch.zeros(1, x.size(0), 3))
        for _ in range(3):
            g = self.control(x)
            if g.max() > 0:
                x = self.fc(x)
        return x


def test_a_tuple_state_on_a_submodule_reaches_a_region_pytorch_runs() -> None:
    torch.manual_seed(0)
    m = _RecurrentGateNet().eval()
    cm = dycl_jax.convert(m)
    for s in (1.0, -1.0, 3.0):
        x = torch.randn(2, 4) * s
        with torch.no_grad():
            assert_same(cm(x), m(x))


class _GrowingTable(nn.Module):
    """A cache re-registered longer in forward (HF's rotary embeddings, LLaMA's causal mask)."""

    def __init__(self) -> None:
        super().__init__()
        self.register_buffer("table", torch.arange(4.0), persistent=False)
        self.cached = 4

    def _grow(self, n):
        self.cached = n
        self.register_buffer("table", torch.arange(float(n)) * 10, persistent=False)

    def forward(self, x):
        if x.shape[1] > self.cached:
            self._grow(2 * x.shape[1])  # a helper whose only effect is the registration
        h = x + self.table[: x.shape[1]]
        if h.sum() > 0:
            h = h * 2
        return h


def test_buffers_registered_again_in_forward_are_followed_in_the_same_call() -> None:
    e, m = _GrowingTable().eval(), _GrowingTable().eval()
    cm = dycl_jax.convert(m)
    for n in (3, 6, 3, 7, 13, 2):
        x = torch.ones(1, n)
        with torch.no_grad():
            assert_same(cm(x), e(x))
        assert torch.equal(m.table, e.table)


class _CastingRouter(nn.Module):
    """SwitchTransformers' router: casts its classifier to float32 in forward."""

    def __init__(self) -> None:
        super().__init__()
        self.classifier = nn.Linear(8, 4, bias=False)
        self.proj = nn.Linear(8, 8)

    def forward(self, x):
        h = self.proj(x).to(torch.float32)
        self.classifier = self.classifier.to(torch.float32)
        probs = self.classifier(h).softmax(-1)
        if probs.max() > 0.3:
            return probs.to(x.dtype)
        return -probs.to(x.dtype)


def test_a_submodule_cast_in_forward_is_followed() -> None:
    torch.manual_seed(0)
    e = _CastingRouter().eval().to(torch.bfloat16)
    torch.manual_seed(0)
    m = _CastingRouter().eval().to(torch.bfloat16)
    cm = dycl_jax.convert(m)
    for s in (1.0, 0.01, 1.0):
        x = (torch.randn(2, 8) * s).to(torch.bfloat16)
        with torch.no_grad():
            assert_same(cm(x), e(x))
        assert m.classifier.weight.dtype == e.classifier.weight.dtype


class _Holder:
    def __init__(self) -> None:
        self.proj = nn.Linear(4, 4)


class _UnregisteredModules(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.body = nn.Linear(4, 4)
        self.extra = {"proj": nn.Linear(4, 4)}  # a plain dict: not registered
        self.helper = _Holder()

    def forward(self, x):
        h = self.extra["proj"](torch.tanh(self.body(x)))
        h = self.helper.proj(h)
        if h.sum() > 0:
            return h, "pos"
        return -h, "neg"


def test_modules_in_plain_dicts_and_objects_replaced_after_convert_are_followed() -> None:
    torch.manual_seed(0)
    m = _UnregisteredModules().eval()
    cm = dycl_jax.convert(m)
    x = torch.randn(1, 4)
    with torch.no_grad():
        assert_same(cm(x), m(x))
        m.extra["proj"] = nn.Linear(4, 4)
        assert_same(cm(x), m(x))
        m.helper.proj = nn.Linear(4, 4)
        assert_same(cm(x), m(x))


class _Factories(nn.Module):
    def forward(self, x):
        z = torch.zeros(x.shape[0]) + torch.tensor([1.5])
        if x.sum() > 0:
            z = z * 2
        return z


def test_default_dtype_changed_after_convert_is_followed() -> None:
    m = _Factories().eval()
    cm = dycl_jax.convert(m)
    x = torch.ones(2)
    assert_same(cm(x), m(x))
    try:
        torch.set_default_dtype(torch.float64)
        assert_same(cm(x), m(x))
    finally:
        torch.set_default_dtype(torch.float32)
    assert_same(cm(x), m(x))


@dataclasses.dataclass(slots=True)
class _SlotCfg:
    scale: float
    thr: float


class _NTCfg(typing.NamedTuple):
    scale: float
    thr: float


class _Mode(enum.Enum):
    A = 1
    B = 2


class _Configured(nn.Module):
    """Settings held the ways users keep them: a slots dataclass, a NamedTuple, sets, a
    deque, a range and an enum, all read as constants while tracing."""

    def __init__(self, cfg: Any) -> None:
        super().__init__()
        self.cfg = cfg
        self.layers = nn.ModuleList(nn.Linear(4, 4) for _ in range(3))
        self.skip = {1}
        self.frozen_skip = frozenset({2})
        self.order = collections.deque([0, 1, 2])
        self.allowed = range(3)
        self.mode = _Mode.A

    def forward(self, x):
        for i in self.order:
            if i in self.skip or i in self.frozen_skip or i not in self.allowed:
                continue
            x = self.layers[i](x) * self.cfg.scale
        if self.mode is _Mode.B:
            x = x * 2
        if x.sum() > self.cfg.thr:
            return x + 1
        return x - 1


def _edits(m: _Configured) -> list[Any]:
    def cfg() -> None:
        if isinstance(m.cfg, tuple):
            m.cfg = m.cfg._replace(scale=5.0, thr=100.0)  # a new NamedTuple
        else:
            m.cfg.scale = 5.0  # the same slots object, edited

    return [
        cfg,
        lambda: m.skip.add(0),
        lambda: m.skip.clear(),
        lambda: setattr(m, "frozen_skip", frozenset()),
        lambda: m.order.reverse(),
        lambda: setattr(m, "allowed", range(2)),
        lambda: setattr(m, "mode", _Mode.B),
    ]


@pytest.mark.parametrize("cfg", [_SlotCfg(2.0, 0.0), _NTCfg(2.0, 0.0)])
def test_settings_in_slots_namedtuples_sets_deques_ranges_and_enums_are_followed(
    cfg: Any,
) -> None:
    torch.manual_seed(0)
    m = _Configured(cfg).eval()
    cm = dycl_jax.convert(m)
    xs = _xs()
    _check(m, cm, xs)
    for edit in _edits(m):
        with torch.no_grad():
            before = [m(x) for x in xs]
        edit()
        with torch.no_grad():  # each edit changes what eager computes
            assert any(not torch.equal(b, m(x)) for b, x in zip(before, xs))
        _check(m, cm, xs)


class _SignedEps(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.eps = 0.0
        self.fill = float("nan")

    def forward(self, x):
        return x / torch.tensor(self.eps), torch.full_like(x, self.fill)


def test_float_attributes_compare_by_bits() -> None:
    """0.0 then -0.0 is a change (1 / -0.0 is -inf); a NaN attribute is the same NaN on the
    next call, not a change that recompiles every time."""
    m = _SignedEps().eval()
    cm = dycl_jax.convert(m)
    x = torch.ones(2)
    _check(m, cm, [x])
    m.eps = -0.0
    _check(m, cm, [x])
    with torch.no_grad():
        assert m(x)[0][0].item() == float("-inf")
    compiles = cm.stats.compiles
    _check(m, cm, [x, x])
    assert cm.stats.compiles == compiles


class _DeviceProperty(nn.Module):
    """``self.device`` as transformers' PreTrainedModel has it: a new torch.device each read."""

    def __init__(self) -> None:
        super().__init__()
        self.lin = nn.Linear(4, 4)

    @property
    def device(self) -> torch.device:
        return next(self.parameters()).device

    def forward(self, x):
        h = self.lin(x) + torch.ones(4, device=self.device)
        if h.sum() > 0:
            return h
        return -h


def test_an_equal_value_read_again_does_not_recompile() -> None:
    m = _DeviceProperty().eval()
    cm = dycl_jax.convert(m)
    xs = _xs()
    _check(m, cm, xs)
    compiles = cm.stats.compiles
    _check(m, cm, xs)
    assert cm.stats.compiles == compiles


SCALE = 2.0
SHIFT = 0.5
LIMIT = 1


def _shifted(x):
    return x + SHIFT  # a global read one call further down


class _ScaledBlock(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.lin = nn.Linear(4, 4)

    def forward(self, x):
        return self.lin(x) * SCALE  # a submodule's forward, traced into the caller's region


class GlobalsInCallees(nn.Module):
    """Module globals read only by code a region runs, never by the region's own statements: a
    helper method, a submodule's forward in a ModuleList, and a free function."""

    def __init__(self) -> None:
        super().__init__()
        self.blocks = nn.ModuleList(_ScaledBlock() for _ in range(2))

    def helper(self, x):
        global LIMIT  # a read-only declaration
        return x[:, :LIMIT].sum(-1, keepdim=True) + _shifted(x)

    def forward(self, x):
        for b in self.blocks:
            x = b(x)
        y = self.helper(x)
        return y if y.sum() > 0 else -y


def test_globals_read_by_methods_submodules_and_functions_a_region_runs_are_followed() -> None:
    global SCALE, SHIFT, LIMIT
    torch.manual_seed(0)
    m = GlobalsInCallees().eval()
    cm = dycl_jax.convert(m)
    xs = _xs()
    _check(m, cm, xs)
    saved = SCALE, SHIFT, LIMIT
    try:
        for scale, shift, limit in ((-3.0, 0.5, 1), (-3.0, -4.0, 1), (-3.0, -4.0, 3)):
            SCALE, SHIFT, LIMIT = scale, shift, limit
            _check(m, cm, xs)
    finally:
        SCALE, SHIFT, LIMIT = saved
    _check(m, cm, xs)


class _Scaler:
    def __init__(self, k: float) -> None:
        self.k = k

    def __call__(self, t):  # type: ignore[no-untyped-def]
        return t * self.k


class BoundMethodAndPartial(nn.Module):
    """A bound method of a helper object and a functools.partial held as attributes: the
    helper's field and the partial's keywords are edited in place after convert."""

    def __init__(self) -> None:
        super().__init__()
        self.helper = _Scaler(3.0)
        self.fn = self.helper.__call__
        self.act = functools.partial(torch.nn.functional.leaky_relu, negative_slope=0.1)

    def forward(self, x):
        y = self.act(self.fn(x))
        return y if y.sum() > 0 else y * 2


def test_bound_methods_of_helpers_and_partials_edited_in_place_are_followed() -> None:
    torch.manual_seed(0)
    m = BoundMethodAndPartial().eval()
    cm = dycl_jax.convert(m)
    xs = _xs()
    _check(m, cm, xs)
    m.helper.k = -2.0
    _check(m, cm, xs)
    m.act.keywords["negative_slope"] = 0.7
    _check(m, cm, xs)


# ---- configs reached through a local, a property, a delegating wrapper, or deep nesting ------


class _PropCfg:
    def __init__(self) -> None:
        self.mult = 2.0

    @property
    def scale(self) -> float:  # reads self.mult: a field the region's code never spells
        return self.mult * 0.75


class _Inner:
    def __init__(self) -> None:
        self.scale = 1.5


class _Wrapped:
    """mmcv's Config shape: every name is looked up on the wrapped object."""

    def __init__(self, inner: Any) -> None:
        self._cfg_dict = inner

    def __getattr__(self, name: str) -> Any:
        return getattr(self._cfg_dict, name)


class _AttrDict(dict):
    __getattr__ = dict.__getitem__
    __setattr__ = dict.__setitem__


class _LocalCfg(nn.Module):
    def __init__(self, cfg: Any) -> None:
        super().__init__()
        self.cfg = cfg
        self.l1 = nn.Linear(4, 4)
        self.l2 = nn.Linear(4, 3)

    def forward(self, x):
        c = self.cfg
        h = torch.relu(self.l1(x)) * c.scale
        p = self.l2(h).softmax(-1)
        if p.max() > 0.5:
            return p
        return self.l2(self.l1(h) * c.scale).softmax(-1)


@pytest.mark.parametrize(
    ("make", "edit"),
    [
        (_PropCfg, lambda c: setattr(c, "mult", 4.0)),
        (lambda: _Wrapped(_Inner()), lambda c: setattr(c._cfg_dict, "scale", 3.0)),
        (lambda: _AttrDict(scale=1.5), lambda c: c.__setitem__("scale", 3.0)),
    ],
    ids=["property", "getattr_wrapper", "attrdict"],
)
def test_config_fields_read_through_properties_and_wrappers_are_followed(make, edit) -> None:
    torch.manual_seed(0)
    m = _LocalCfg(make()).eval()
    cm = dycl_jax.convert(m)
    xs = _xs()
    _check(m, cm, xs)
    with torch.no_grad():
        before = [m(x) for x in xs]
    edit(m.cfg)
    with torch.no_grad():
        assert any(not torch.equal(b, m(x)) for b, x in zip(before, xs))
    _check(m, cm, xs)


class _OptionsArg(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.l1 = nn.Linear(4, 4)

    def forward(self, x, opts):
        h = self.l1(x) * opts.scale
        if h.sum() > 0:
            h = h * 2
        return h


def test_an_options_object_argument_edited_between_calls_is_followed() -> None:
    torch.manual_seed(0)
    m = _OptionsArg().eval()
    cm = dycl_jax.convert(m)
    opts = _PropCfg()
    for mult in (2.0, 4.0, -1.0):
        opts.mult = mult
        for x in _xs():
            with torch.no_grad():
                assert_same(cm(x, opts), m(x, opts))


class _DeepExitCfg(nn.Module):
    """Hydra / argparse-namespace style: a list five objects below the module attribute."""

    def __init__(self) -> None:
        super().__init__()
        ns = types.SimpleNamespace
        self.cfg = ns(model=ns(decoder=ns(exit=ns(temps=[2.0, 1.0], thresh=0.9))))
        self.layers = nn.ModuleList([nn.Linear(4, 4) for _ in range(2)])
        self.head = nn.Linear(4, 3)

    def forward(self, x):
        for i, layer in enumerate(self.layers):
            x = torch.relu(layer(x))
            logits = self.head(x) / self.cfg.model.decoder.exit.temps[i]
            if logits.softmax(-1).max() > self.cfg.model.decoder.exit.thresh:
                return logits, i
        return logits, -1


def test_a_list_deep_in_a_nested_config_edited_in_place_is_followed() -> None:
    torch.manual_seed(0)
    m = _DeepExitCfg().eval()
    cm = dycl_jax.convert(m)
    xs = _xs()
    _check(m, cm, xs)
    for temp in (0.25, 3.0):
        m.cfg.model.decoder.exit.temps[1] = temp
        _check(m, cm, xs)


class _NoneForUnknown:
    """A config answering None for names it does not have (not an iterator)."""

    def __init__(self) -> None:
        self.scale = 2.0

    def __getattr__(self, name: str) -> Any:
        return None


class _UsesNoneCfg(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.cfg = _NoneForUnknown()
        self.lin = nn.Linear(4, 4)

    def forward(self, x):
        o = self.cfg
        h = self.lin(x) * o.scale
        if h.sum() > 0:
            h = h + (0.0 if o.bias is None else o.bias)
        return h


def test_a_config_answering_every_name_is_not_taken_for_an_iterator() -> None:
    torch.manual_seed(0)
    m = _UsesNoneCfg().eval()
    _check(m, dycl_jax.convert(m), _xs())
