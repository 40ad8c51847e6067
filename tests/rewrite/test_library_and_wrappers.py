"""Standard-library calls in forward run on the host; hooks and decorators that a host program
would drop are refused at convert, naming the module or function."""

from __future__ import annotations

import functools
import logging
import warnings

import pytest
import torch
import torch.nn as nn

import dycl_jax
from dycl_jax.errors import UnsupportedConstructError
from dycl_jax.testing import assert_same
from tests.conftest import Records

log = logging.getLogger("dycl_jax.tests.model")


class Logs(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.lin = nn.Linear(4, 4)

    def forward(self, x):
        h = self.lin(x)
        log.info(f"mean {h.mean().item():.3f}")
        if h.sum() > 0:
            logging.getLogger("dycl_jax.tests").debug("positive")
            warnings.warn("positive branch", stacklevel=1)
            h = h * 2
        return h


def test_logging_and_warnings_in_forward_run_on_the_host() -> None:
    torch.manual_seed(0)
    m = Logs().eval()
    cm = dycl_jax.convert(m)
    records = Records(logging.INFO)
    log.addHandler(records)
    log.setLevel(logging.INFO)
    try:
        for s in (1.0, -1.0):
            x = torch.ones(1, 4) * s
            with warnings.catch_warnings(record=True) as caught:
                warnings.simplefilter("always")
                want = m(x)
                records.lines.clear()
                n_eager = len(caught)
                got = cm(x)
                assert len(caught) == 2 * n_eager  # the converted model warned as eager did
            assert_same(got, want)
            assert len(records.lines) == 1 and records.lines[0].startswith("mean ")
    finally:
        log.removeHandler(records)


class Gated(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.lin = nn.Linear(4, 4)

    def forward(self, x):
        h = self.lin(x)
        if h.sum() > 0:
            h = -h
        return h


def test_forward_hook_is_refused_naming_the_module() -> None:
    m = nn.Sequential(Gated(), nn.ReLU()).eval()
    feats = {}
    m[0].register_forward_hook(lambda mod, inp, out: feats.setdefault("g", out))
    with pytest.raises(
        UnsupportedConstructError, match="module '0' \\(Gated\\) has a forward hook"
    ):
        dycl_jax.convert(m)


def _scaled(fn):
    def wrapper(self, x):
        return fn(self, x) * 2

    wrapper.__wrapped__ = fn
    return wrapper


class Decorated(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.inner = Inner()

    def forward(self, x):
        return self.inner(x)


class Inner(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.lin = nn.Linear(4, 4)

    @_scaled
    def forward(self, x):
        h = self.lin(x)
        if h.sum() > 0:
            h = -h
        return h


def test_decorator_on_a_dynamic_forward_is_refused() -> None:
    with pytest.raises(UnsupportedConstructError, match="decorator @_scaled") as e:
        dycl_jax.convert(Decorated().eval())
    assert e.value.location is not None and e.value.location.filename == __file__


class NoGrad(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.lin = nn.Linear(4, 4)

    @torch.no_grad()
    def forward(self, x):
        h = self.lin(x)
        if h.sum() > 0:
            h = -h
        return h


def test_no_grad_decorator_is_accepted() -> None:
    torch.manual_seed(0)
    m = NoGrad().eval()
    cm = dycl_jax.convert(m)
    for s in (1.0, -1.0):
        assert_same(cm(torch.ones(1, 4) * s), m(torch.ones(1, 4) * s))


@functools.lru_cache(maxsize=8)
def _position_table(n, d):
    return torch.arange(n * d).float().view(n, d) / 10


class CachedTable(nn.Module):
    def forward(self, x):
        x = x + _position_table(x.shape[0], x.shape[1])
        if x.max() > 0.5:
            return x * 2
        return x


def test_lru_cache_helper_runs_in_pytorch_and_keeps_real_tensors() -> None:
    _position_table.cache_clear()
    m = CachedTable().eval()
    cm = dycl_jax.convert(m)
    for x in (torch.randn(1, 4), -3 * torch.ones(1, 4), torch.randn(2, 3)):
        assert_same(cm(x), m(x))
    cached = _position_table(1, 4)
    assert type(cached) is torch.Tensor  # not a capture's stand-in
    assert_same(cm(torch.zeros(1, 4)), m(torch.zeros(1, 4)))


class PaddedEncoder(nn.Module):
    def __init__(self, nested: bool) -> None:
        super().__init__()
        layer = nn.TransformerEncoderLayer(8, 2, 16, dropout=0.0, batch_first=True)
        self.enc = nn.TransformerEncoder(layer, 2, enable_nested_tensor=nested)

    def forward(self, x, pad):
        h = self.enc(x, src_key_padding_mask=pad)
        # (one element: the mean of a LayerNorm's output is 0 up to rounding, a coin flip)
        if h[0, 0, 0] > 0:
            return h * 2
        return h


def test_transformer_encoder_fast_path_is_refused_where_eager_takes_it() -> None:
    """Eager PyTorch's nested-tensor fast path (eval, no grad, a padding mask) returns zeros at
    padded positions; the converted model computes the standard path: refused at the call, and
    exact with enable_nested_tensor=False or with gradients enabled (eager's standard path)."""
    torch.manual_seed(0)
    x = torch.randn(2, 3, 8)
    pad = torch.tensor([[False, False, True], [False, True, True]])
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # enable_nested_tensor with norm_first etc.
        m = PaddedEncoder(nested=True).eval()
        plain = PaddedEncoder(nested=False).eval()
    plain.load_state_dict(m.state_dict())
    cm = dycl_jax.convert(m)
    assert_same(cm(x, pad), m(x, pad).detach(), rtol=1e-5, atol=1e-5)  # grad enabled
    with torch.no_grad(), pytest.raises(UnsupportedConstructError, match="fast path") as e:
        cm(x, pad)
    assert e.value.location is not None and e.value.location.filename == __file__
    cp = dycl_jax.convert(plain)
    with torch.no_grad():
        assert_same(cp(x, pad), plain(x, pad), rtol=1e-5, atol=1e-5)


class _FxAware(nn.Module):
    def forward(self, x):
        y = x + 1 if torch.fx._symbolic_trace.is_fx_tracing() else x * 2
        if y.sum() > 0:
            return y - 1
        return y


def test_is_fx_tracing_reads_false_in_compiled_regions_as_in_eager() -> None:
    """make_fx sets the flag while it traces a region; the model's code must not see it."""
    m = _FxAware().eval()
    cm = dycl_jax.convert(m)
    for x in (torch.ones(3), -torch.ones(3)):
        assert_same(cm(x), m(x))
