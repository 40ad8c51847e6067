# dycl_jax fuzz regression: refusal (CaptureError)
# found by campaign --seed 11, program 26 (generator seed 11000059); minimized by tests/fuzz/campaign.py
# failure:
#   /tmp/dycl_fuzz_ddoh57z9/_dycl_fuzz_s11000059_99.py:37: this code fails on inputs [():float64, (1, 5):float32]: TypeError: unsupported format string passed to SymFloat.__format__
#       log.debug(f"fuzz6 max={x.max().item():.4f} shape={x.shape[0]}")
#   hint: PyTorch raises the same error for these inputs; check the shapes and dtypes passed to the model
# tests/fuzz/test_regressions.py converts make_model() and checks parity on make_inputs().
# ruff: noqa
XFAIL = None  # fixed: f-strings are formatted on the host
import dataclasses
import logging
import warnings
from collections import OrderedDict
from typing import NamedTuple

import torch
import torch.nn as nn
import torch.nn.functional as F

SEED = 11000059
INPUTS = [(1, 1.0, 1.0, 575232)]  # (batch, scale, shift, seed)
UNSUPPORTED = False
ALIASED = False  # an in-place write through an alias
HALF = False
MUTATION_STEPS = 0  # calls to mutate(model, step) after convert
MUTABLE = {}
WEIGHT_EDIT = None  # (every, factor)

log = logging.getLogger("dycl_fuzz")


class FuzzExit(Exception):
    """Raised with tensors inside a submodule, caught in forward (the DeeBERT pattern)."""

    def __init__(self, outputs, k):
        super().__init__(k)
        self.outputs = outputs
        self.k = k


class Block4(nn.Module):
    def __init__(self):
        super().__init__()

    def _helper5(self, x):
        log.debug(f"fuzz6 max={x.max().item():.4f} shape={x.shape[0]}")
        return x

    def forward(self, x):
        x = self._helper5(x)
        return x


class Model(nn.Module):
    def __init__(self):
        super().__init__()
        self.sub29 = Block4()

    def forward(self, x):
        y = torch.tanh(x)
        n = 0
        acc = []
        z3 = torch.zeros_like(x)
        try:
            y = self.sub29(y)
        except FuzzExit as e30:
            h31 = e30.outputs[0] + 0.5 * e30.outputs[1]
            y = h31 + 0.1 * e30.k
        z3[:, :1] = x[:, -1:] * 0.5
        x = x + z3
        acc.append(y)
        x = x + torch.stack(acc).sum(0)
        return x


def make_model():
    torch.manual_seed(SEED)
    model = Model().eval()
    return model.half() if HALF else model


def make_inputs():
    out = []
    for b, scale, shift, seed in INPUTS:
        g = torch.Generator().manual_seed(seed)
        x = torch.randn(b, 5, generator=g) * scale + shift
        out.append((x.half() if HALF else x,))
    return out


def mutate(model, step):
    """Between calls after convert: change attributes read in regions, edit weights."""
    for mod in model.modules():
        for name, values in MUTABLE.get(type(mod).__name__, {}).items():
            value = values[step % len(values)]
            if isinstance(value, list) and step % 2 == 0:
                getattr(mod, name)[:] = value  # the same list object, edited in place
            else:
                setattr(mod, name, list(value) if isinstance(value, list) else value)
    if WEIGHT_EDIT is not None:
        every, factor = WEIGHT_EDIT
        lins = [m for m in model.modules() if isinstance(m, nn.Linear)]
        with torch.no_grad():
            for lin in lins[step % every :: every]:
                lin.weight.mul_(factor)
                lin.bias.add_(0.1 * step)
