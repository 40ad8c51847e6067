# dycl_jax fuzz regression: refusal (InternalError)
# found by campaign --seed 11, program 13 (generator seed 11000046); minimized by tests/fuzz/campaign.py
# failure:
#   /tmp/dycl_fuzz_4mkz1q2o/_dycl_fuzz_s11000046_201.py:44: internal error in lower: RuntimeError: .numpy() is not supported for tensor subclasses.
#       if h64.mean().item() > -0.1:
#   hint: this is a dycl_jax bug; please report it with the model's source
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

SEED = 11000046
INPUTS = [(2, 1.0, 1.0, 395527)]  # (batch, scale, shift, seed)
UNSUPPORTED = False
ALIASED = False  # an in-place write through an alias
HALF = False
MUTATION_STEPS = 0  # calls to mutate(model, step) after convert
MUTABLE = {}
WEIGHT_EDIT = None  # (every, factor)

log = logging.getLogger("dycl_fuzz")


class Block30(nn.Module):
    def __init__(self):
        super().__init__()

    def forward(self, x):
        pass
        return x


class Model(nn.Module):
    def __init__(self):
        super().__init__()
        self.blocks29 = nn.ModuleList([Block30() for _ in range(2)])

    def forward(self, x):
        y = torch.tanh(x)
        n = 0
        acc = []
        for blk28 in self.blocks29:
            hs63 = [y, torch.tanh(x)]
            for j65, h64 in enumerate(hs63):
                if h64.mean().item() > -0.1:
                    x = x + 0.5 * h64 * j65
                else:
                    x = x - 0.25 * h64
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
