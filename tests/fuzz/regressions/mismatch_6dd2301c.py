# dycl_jax fuzz regression: mismatch (AssertionError)
# found by campaign --seed 3001, program 108 (generator seed 3001009111); minimized by tests/fuzz/campaign.py
# failure:
#   input 0: out: 10 of 10 values differ, first at (0, 0): np.float32(1.9768524) != np.float32(1.0)
# tests/fuzz/test_regressions.py converts make_model() and checks parity on make_inputs().
# ruff: noqa
XFAIL = "mismatch: input 0: out: 10 of 10 values differ, first at (0, 0): np.float32(1.9768524) != np.float32(1.0)"  # set to None once dycl_jax is fixed
import dataclasses
import logging
import warnings
from collections import OrderedDict
from typing import NamedTuple

import torch
import torch.nn as nn
import torch.nn.functional as F

SEED = 3001009111
INPUTS = [(2, 1.0, 1.0, 764907)]  # (batch, scale, shift, seed)
UNSUPPORTED = False
ALIASED = False  # an in-place write through an alias
HALF = False
MUTATION_STEPS = 0  # calls to mutate(model, step) after convert
MUTABLE = {"Model": {"thr55": [0.0, 0.55, -0.27]}}
WEIGHT_EDIT = None  # (every, factor)

log = logging.getLogger("dycl_fuzz")


class Block7(nn.Module):
    def __init__(self):
        super().__init__()

    def forward(self, x):
        x = x + x
        return x


class Model(nn.Module):
    def __init__(self):
        super().__init__()
        self.blocks6 = nn.ModuleList([Block7() for _ in range(3)])
        self.thr55 = 0.0

    def _checked53(self, x):
        if x.max().item() > self.thr55 + 0.5:
            raise ValueError("fuzz")
        return x

    def forward(self, x):
        y = torch.tanh(x)
        n = 0
        acc = []
        x = y * 2.0 if x[0, 0] > 0 else -y
        for blk5 in self.blocks6:
            x = blk5(x)
        try:
            x = self._checked53(x)
            n += 1
        except ValueError:
            x = torch.tanh(x)
        if (x > -1.0).all():
            return x
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
