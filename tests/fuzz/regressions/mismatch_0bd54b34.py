# dycl_jax fuzz regression: mismatch (AssertionError)
# found by campaign --seed 11, program 35 (generator seed 11000068); minimized by tests/fuzz/campaign.py
# failure:
#   input 0: out: 8 of 8 values differ, first at (0, 0): np.float32(6.5938153) != np.float32(7.0938153)
# tests/fuzz/test_regressions.py converts make_model() and checks parity on make_inputs().
# ruff: noqa
# fixed in dycl_jax meanwhile (passes at 999d4ab); kept as a guard
XFAIL = None
import dataclasses
import logging
import warnings
from collections import OrderedDict
from typing import NamedTuple

import torch
import torch.nn as nn
import torch.nn.functional as F

SEED = 11000068
INPUTS = [(2, 1.0, 1.0, 229710)]  # (batch, scale, shift, seed)
UNSUPPORTED = False
ALIASED = True  # an in-place write through an alias
HALF = False
MUTATION_STEPS = 0  # calls to mutate(model, step) after convert
MUTABLE = {}
WEIGHT_EDIT = None  # (every, factor)

log = logging.getLogger("dycl_fuzz")


class Model(nn.Module):
    def __init__(self):
        super().__init__()

    def forward(self, x):
        y = torch.tanh(x)
        n = 0
        acc = []
        steps2 = 0
        while (y > -1.0).all():
            steps2 += 1
            if steps2 > 1:
                break
            a3 = torch.tanh(y)
            b4 = [a3, y * 2.0]
            acc.append(y)
            b4[0] += 1.0
            x = x + torch.stack(b4).sum(0) + 0.5 * a3
        n += steps2
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
        x = torch.randn(b, 4, generator=g) * scale + shift
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
