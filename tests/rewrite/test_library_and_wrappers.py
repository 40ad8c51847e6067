"""Standard-library calls in forward run on the host; hooks and decorators that a host program
would drop are refused at convert, naming the module or function."""

from __future__ import annotations

import logging
import warnings

import pytest
import torch
import torch.nn as nn

import dycl_jax
from dycl_jax.errors import UnsupportedConstructError
from dycl_jax.testing import assert_same

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


class _Records(logging.Handler):
    def __init__(self) -> None:
        super().__init__(logging.INFO)
        self.messages: list[str] = []

    def emit(self, record: logging.LogRecord) -> None:
        self.messages.append(record.getMessage())


def test_logging_and_warnings_in_forward_run_on_the_host() -> None:
    torch.manual_seed(0)
    m = Logs().eval()
    cm = dycl_jax.convert(m)
    records = _Records()
    log.addHandler(records)
    log.setLevel(logging.INFO)
    try:
        for s in (1.0, -1.0):
            x = torch.ones(1, 4) * s
            with warnings.catch_warnings(record=True) as caught:
                warnings.simplefilter("always")
                want = m(x)
                records.messages.clear()
                n_eager = len(caught)
                got = cm(x)
                assert len(caught) == 2 * n_eager  # the converted model warned as eager did
            assert_same(got, want)
            assert len(records.messages) == 1 and records.messages[0].startswith("mean ")
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
