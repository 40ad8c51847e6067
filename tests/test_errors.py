"""Refusals and failures: the error type, the construct named in the message, and file:line."""

from __future__ import annotations

import inspect
import re

import pytest
import torch
import torch.nn as nn

import dycl_jax
from dycl_jax import errors
from dycl_jax.testing import assert_same
from tests.conftest import Records


def _line_of(cls: type, needle: str) -> int:
    lines, first = inspect.getsourcelines(cls)
    for i, line in enumerate(lines):
        if needle in line:
            return first + i
    raise AssertionError(needle)


class Gen(nn.Module):
    def forward(self, x):
        for i in range(2):
            yield x * i


COUNTER = 0


class GlobalWrite(nn.Module):
    def forward(self, x):
        global COUNTER
        COUNTER += 1
        return x


class DataDependentShape(nn.Module):
    # A mask the analysis cannot see (from a helper): the region holding x[mask] runs in PyTorch
    # on the host (tests/rewrite/test_eager_regions.py); a visible one (`y[y > 0]`) is a host op.
    def _positive(self, y):
        return y > 0

    def forward(self, x):
        y = x * 2
        return y[self._positive(y)]


class Random(nn.Module):
    def forward(self, x):
        return torch.bernoulli(torch.sigmoid(x))


class WhileElse(nn.Module):
    def forward(self, x):
        while x.sum() > 0:
            x = x - 1
        else:
            x = x * 2
        return x


def _check(exc: pytest.ExceptionInfo, cls: type, needle: str, pattern: str) -> None:
    loc = exc.value.location
    assert loc is not None, str(exc.value)
    assert loc.filename == __file__
    assert loc.lineno == _line_of(cls, needle), str(exc.value)
    assert re.search(pattern, str(exc.value)), str(exc.value)
    assert f"{__file__}:{loc.lineno}" in str(exc.value)


class TorchCond(nn.Module):
    def forward(self, x):
        return torch.cond(x.sum() > 0, lambda z: z * 2, lambda z: z - 1, (x,))


def test_torch_cond_refused_at_its_line() -> None:
    """PyTorch's higher-order control flow has no lowering: refused at the user's line (the
    location skips the frames of code FX generated), never an internal error."""
    with pytest.raises(errors.UnsupportedConstructError) as exc:
        dycl_jax.convert(TorchCond().eval())(torch.ones(1, 3))
    _check(exc, TorchCond, "torch.cond(", r"higher-order operator")


def test_generator_refused() -> None:
    with pytest.raises(errors.UnsupportedConstructError) as exc:
        dycl_jax.convert(Gen().eval())
    _check(exc, Gen, "yield", r"generator \(yield\)")


def test_global_write_refused() -> None:
    with pytest.raises(errors.UnsupportedConstructError) as exc:
        dycl_jax.convert(GlobalWrite().eval())
    _check(exc, GlobalWrite, "global COUNTER", r"global variable")


def test_while_else_on_tensor_refused() -> None:
    with pytest.raises(errors.UnsupportedConstructError) as exc:
        dycl_jax.convert(WhileElse().eval())
    _check(exc, WhileElse, "while x.sum()", r"while \.\.\. else")


def test_data_dependent_shape_runs_that_region_in_pytorch() -> None:
    m = DataDependentShape().eval()
    cm = dycl_jax.convert(m)
    for seed in range(3):
        x = torch.randn(4, generator=torch.Generator().manual_seed(seed))
        assert_same(cm(x), m(x))
    assert cm.stats.eager_region_calls == 3


class LayerDrop(nn.Module):
    """fairseq / HF LayerDrop: a draw on every layer, also in eval mode (where it is unused)."""

    def __init__(self) -> None:
        super().__init__()
        self.layers = nn.ModuleList(nn.Linear(64, 64) for _ in range(3))
        self.layerdrop = 0.5

    def forward(self, x):
        for layer in self.layers:
            p = torch.rand([])
            if self.training and p < self.layerdrop:
                continue
            x = torch.tanh(layer(x))
        return x, torch.multinomial(x.softmax(-1), 2)


@pytest.mark.parametrize("cls", [Random, LayerDrop])
def test_sampling_runs_in_pytorch_on_the_same_generator(cls: type) -> None:
    torch.manual_seed(0)
    m = cls().eval()
    cm = dycl_jax.convert(m)
    x = torch.randn(64)
    for seed in (0, 1):
        torch.manual_seed(seed)
        want, after = m(x), torch.rand(3)
        torch.manual_seed(seed)
        assert_same(cm(x), want)
        assert torch.equal(torch.rand(3), after)  # the generator advanced as in eager


class RandomInHelper(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        # sampled inside a lambda traced where it is called: not seen by the analysis
        self.noise = lambda h: h + torch.rand_like(h)

    def forward(self, x):
        return self.noise(x * 2)


class InPlaceSampler(nn.Module):
    def forward(self, x):
        k = torch.empty(1, 4).random_(0, 10)
        return x + k


def _runs_in_pytorch(warned: Records, cls: type, needle: str, op: str) -> None:
    """The region runs in PyTorch, said in a warning that names the op and the user's line."""
    text = warned.text
    assert "runs in PyTorch on the host" in text
    assert re.search(op, text)
    assert f"{__file__}:{_line_of(cls, needle)}" in text


@pytest.mark.parametrize("cls", [RandomInHelper, InPlaceSampler])
def test_sampling_the_analysis_does_not_see_runs_in_pytorch(cls: type, warned: Records) -> None:
    """A sampler traced from a lambda (no lowering: sampling is not compiled), and an in-place
    sampler that fails inside PyTorch's tracer itself: the region runs in PyTorch on torch's
    generator, exact and advancing it as eager does."""
    m = cls().eval()
    cm = dycl_jax.convert(m)
    x = torch.zeros(1, 4)
    for seed in (0, 1):
        torch.manual_seed(seed)
        want, after = m(x), torch.rand(3)
        torch.manual_seed(seed)
        assert_same(cm(x), want)
        assert torch.equal(torch.rand(3), after)
    needle = "return self.noise" if cls is RandomInHelper else "random_(0, 10)"
    assert cm.stats.eager_region_calls == 2
    if cls is RandomInHelper:
        _runs_in_pytorch(warned, cls, needle, r"aten\.(rand|uniform)")


def test_not_a_module() -> None:
    with pytest.raises(errors.ConversionError, match="takes a torch.nn.Module, got function"):
        dycl_jax.convert(lambda x: x)  # type: ignore[arg-type]


def test_training_mode_refused() -> None:
    with pytest.raises(errors.ConversionError, match="training mode"):
        dycl_jax.convert(nn.Linear(2, 2))


def test_lambda_forward_refused() -> None:
    m = nn.Linear(2, 2).eval()
    m.forward = lambda x: x * 2  # type: ignore[method-assign]
    with pytest.raises(errors.SourceUnavailableError, match="lambda"):
        dycl_jax.convert(m)


def test_forward_without_source_refused() -> None:
    ns: dict = {"nn": nn}
    exec("class M(nn.Module):\n    def forward(self, x):\n        return x\n", ns)
    with pytest.raises(errors.SourceUnavailableError, match="source of M.forward is not available"):
        dycl_jax.convert(ns["M"]().eval())


class Fft(nn.Module):
    def forward(self, x):
        return torch.fft.fft(x).real


def test_an_op_with_no_lowering_runs_in_pytorch(warned: Records) -> None:
    m = Fft().eval()
    cm = dycl_jax.convert(m)
    for x in (torch.randn(8), torch.randn(8)):
        assert_same(cm(x), m(x))
    _runs_in_pytorch(warned, Fft, "torch.fft.fft", r"aten\._fft")


class Out(nn.Module):
    def forward(self, x):
        buf = x.new()
        if x.sum() > 0:
            torch.index_select(x, 0, x.argsort()[:2], out=buf)
        return buf


def test_missing_lowering_of_a_graph_epilogue_names_the_users_file(
    monkeypatch: pytest.MonkeyPatch, warned: Records
) -> None:
    """An op with no source line of its own (the resize ``out=`` adds when it writes the
    input back) is located at its region in the user's file, never in the host program."""
    from dycl_jax.lower import registry

    monkeypatch.delitem(registry.LOWERINGS, torch.ops.aten.resize.default)
    m = Out().eval()
    cm = dycl_jax.convert(m)
    for x in (torch.ones(4), -torch.ones(4)):
        assert_same(cm(x), m(x))
    _runs_in_pytorch(warned, Out, "torch.index_select", r"aten\.resize")


def test_a_region_pytorch_runs_is_refused_by_apply() -> None:
    m = Fft().eval()
    cm = dycl_jax.convert(m)
    x = torch.randn(8)
    cm(x)
    with pytest.raises(errors.UnsupportedConstructError, match=r"runs in PyTorch.*aten\._fft"):
        cm.apply(cm.params, x)


class BufferWrite(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.register_buffer("seen", torch.zeros(()))

    def forward(self, x):
        self.seen.add_(1)
        return x * 2


def test_inplace_write_to_module_buffer_refused() -> None:
    cm = dycl_jax.convert(BufferWrite().eval())
    with pytest.raises(errors.CaptureError) as exc:
        cm(torch.randn(3))
    _check(exc, BufferWrite, "self.seen.add_(1)", r"in-place write to module state 'seen'")


def test_hooks_registered_after_convert_are_refused_at_the_next_call() -> None:
    class Gate(nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.a = nn.Linear(2, 2)

        def forward(self, x):
            h = self.a(x)
            if h.sum() > 0:
                h = h * 2
            return h

    m = Gate().eval()
    cm = dycl_jax.convert(m)
    x = torch.ones(1, 2)
    cm(x)
    handle = m.a.register_forward_hook(lambda mod, inp, out: out * 10)
    with pytest.raises(errors.UnsupportedConstructError, match="forward hook"):
        cm(x)
    handle.remove()
    with torch.no_grad():
        assert_same(cm(x), m(x))
    handle = m.register_forward_pre_hook(lambda mod, args: (args[0] * -1,))
    with pytest.raises(errors.UnsupportedConstructError, match="pre-hook"):
        cm(x)
    handle.remove()


class ReservedName(nn.Module):
    def forward(self, x):
        h = x * 2
        _dy = h + 1  # the host program's name for the runtime library
        if h.sum() > 0:
            h = h + _dy
        return h


def test_a_name_the_host_program_reserves_is_refused_at_its_line() -> None:
    with pytest.raises(errors.UnsupportedConstructError) as exc:
        dycl_jax.convert(ReservedName().eval())(torch.ones(1, 3))
    _check(exc, ReservedName, "_dy = h + 1", r"'_dy' is reserved")


class CacheThenFft(nn.Module):
    """Library code (transformers' DynamicCache) appends to a cache object on the module while
    the region is traced; the op after it has no lowering."""

    def __init__(self) -> None:
        super().__init__()
        from transformers.cache_utils import DynamicCache

        self.cache = DynamicCache()

    def forward(self, x):
        k, v = self.cache.update(x, x * 2, 0)
        return torch.fft.rfft(k).abs().sum() + v.sum()


def test_library_code_appending_to_a_cache_the_module_holds_runs_in_pytorch() -> None:
    """The capture's stand-ins are taken out of the cache again (the cache is put back as it
    was), and the region runs in PyTorch on every call, appending to the very cache, as eager
    does (it used to leave the stand-ins there and refuse with the missing lowering)."""
    import copy

    m = CacheThenFft().eval()
    eager = copy.deepcopy(m)
    cm = dycl_jax.convert(m)
    for seed in range(3):
        x = torch.randn(1, 1, 1, 4, generator=torch.Generator().manual_seed(seed))
        with torch.no_grad():
            want = eager(x)
        assert_same(cm(x), want, rtol=1e-5, atol=1e-5)
    assert m.cache.get_seq_length() == eager.cache.get_seq_length() == 3


class LazyMask(nn.Module):
    """A mask built on the first call and written by index: on the host the write met an
    immutable array after the attribute was set, so the first call raised a raw TypeError and
    every later one skipped the build and was silently wrong."""

    def __init__(self) -> None:
        super().__init__()
        self.proj = nn.Linear(4, 4)
        self.mask = None

    def forward(self, x):
        if self.mask is None:
            self.mask = torch.ones(4, dtype=torch.bool)
            self.mask[x.argmax()] = False
        return self.proj(x) * self.mask


def test_a_write_into_a_tensor_forward_stores_on_the_module_is_refused_before_any_call() -> None:
    from dycl_jax.errors import UnsupportedConstructError

    m = LazyMask().eval()
    with pytest.raises(UnsupportedConstructError, match="in-place write into self.mask") as e:
        dycl_jax.convert(m)
    assert e.value.location is not None and e.value.location.filename == __file__
    assert "self.mask[x.argmax()] = False" in e.value.location.source_line()
    assert m.mask is None


class MaxOfTensors(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.lin = nn.Linear(3, 3)

    def forward(self, x):
        h = self.lin(x)
        if h.sum() > 0:
            h = h * 2
        return max(h, x)  # Python's truth test of a many-element tensor: an error in eager


def test_an_ambiguous_truth_test_on_the_host_raises_as_pytorch_does() -> None:
    m = MaxOfTensors().eval()
    x = torch.randn(2, 3)
    with pytest.raises(RuntimeError, match="Boolean value of Tensor") as want:
        m(x)
    with pytest.raises(RuntimeError) as got:
        dycl_jax.convert(m)(x)
    assert str(got.value) == str(want.value)
