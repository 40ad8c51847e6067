# dycl_jax fuzz regression: mismatch (AssertionError)
# found by campaign --seed 19100, program 163 (generator seed 19100057463); minimized by tests/fuzz/campaign.py
# failure:
#   input 0: out['out']: 4 of 10 values differ, first at (0, 0): np.float32(0.041428447) != np.float32(0.041319817)
# tests/fuzz/test_regressions.py converts make_model() and checks parity on make_inputs().
# ruff: noqa
XFAIL = "mismatch: input 0: out['out']: 4 of 10 values differ, first at (0, 0): np.float32(0.041428447) != np.float32(0.041319817)"  # set to None once dycl_jax is fixed
import dataclasses
import logging
import warnings
from collections import OrderedDict
from typing import NamedTuple

import torch
import torch.nn as nn
import torch.nn.functional as F

SEED = 19100057463
INPUTS = [
    (2, 1.0, 0.0, 472669),
    (2, 3.0, 0.0, 243900),
    (2, 0.1, 0.0, 561536),
    (1, 1.0, -1.0, 871631),
    (2, 1.0, 1.0, 72165),
]  # (batch, scale, shift, seed)
UNSUPPORTED = False
ALIASED = False  # an in-place write through an alias
HALF = False
MUTATION_STEPS = 2  # calls to mutate(model, step) after convert
MUTABLE = {"Block20": {"thr23": [0.13, 0.55, -0.27]}, "Model": {"thr46": [0.0, 0.55, -0.27]}}
WEIGHT_EDIT = (1, 0.5)  # (every, factor)

log = logging.getLogger("dycl_fuzz")


class Block17(nn.Module):
    def __init__(self):
        super().__init__()

    def forward(self, x):
        x = F.softmax(x, dim=-1)
        return x


class Block20(nn.Module):
    def __init__(self):
        super().__init__()
        self.lin24 = nn.Linear(5, 5)
        self.thr23 = 0.13

    def forward(self, x):
        steps21 = 0
        while x.mean().item() > -0.1:
            steps21 += 1
            if steps21 > 3:
                break
            x = torch.tanh(x)
            x = self.lin24(x)
            x = x + 0.1 * x.sum()
            if (x > 0.95).any():
                z22 = torch.sigmoid(x)
            else:
                z22 = x * 0.5
            x = x + z22
            if x.max().item() > self.thr23 + 0.5:
                continue
        x = F.gelu(x)
        return x


class Block27(nn.Module):
    def __init__(self):
        super().__init__()
        self.seq29 = nn.Sequential(nn.Linear(5, 5), nn.ReLU())
        self.held32 = [torch.zeros(5) for _ in range(2)]
        self.lin33 = nn.Linear(5, 5)
        self.held36 = []
        self.lin37 = nn.Linear(5, 5)
        self.blocks39 = nn.ModuleList([nn.Linear(5, 5) for _ in range(3)])

    def forward(self, x):
        steps28 = 0
        while int(x.argmax()) % 2 == 0:
            steps28 += 1
            if steps28 > 1:
                break
            x = torch.tanh(x)
            x = self.lin33(x)
            x = self.seq29(x)
            k30 = max(min(float(x.sum()), 2.0), -2.0)
            x = x + 0.5 * x.mean().item()
            if x[0, 1] > 0:
                self.held32[0] = x.mean(0)
            x = x + (0.5 * self.held32[0] - 0.25 * self.held32[1]).to(x.dtype)
            x = x * (1.0 + 0.1 * k30)
        x = torch.relu(x)
        v34 = (x > 0).sum(-1).max().clamp(min=1)
        self.held36.append(x[0] * 0.5)
        if len(self.held36) > 3:
            self.held36.pop(0)
        x = x - x
        x = self.lin37(x)
        if len(self.held36) > 0:
            x = x + 0.5 * torch.stack(self.held36).mean(0)
        for blk38 in self.blocks39:
            x = blk38(x)
        x = torch.cat([x[:, :v34] * 2.0, torch.tanh(x[:, v34:])], dim=1)
        x = x / (1.0 + x.abs().amax())
        return x


class Block10(nn.Module):
    def __init__(self):
        super().__init__()
        self.lin11 = nn.Linear(5, 5)
        self.lin12 = nn.Linear(5, 5)
        self.blocks16 = nn.ModuleList([Block17() for _ in range(2)])
        self.blocks19 = nn.ModuleList([Block20() for _ in range(3)])
        self.blocks26 = nn.ModuleList([Block27() for _ in range(1)])
        self.lin41 = nn.Linear(5, 5)

    def _helper13(self, x):
        rows15 = []
        for row14 in x:
            if row14.sum() > 0.5:
                rows15.append(row14 * 2.0)
            else:
                rows15.append(torch.tanh(row14))
        x = torch.stack(rows15)
        x = self.blocks16[int(x.mean(0)[:2].argmax())](x)
        for blk18 in self.blocks19:
            x = blk18(x)
        return x

    def forward(self, x):
        x = x + x
        x = self.lin11(x)
        x = self.lin12(x)
        x = self._helper13(x)
        for blk25 in self.blocks26:
            x = self.lin41(x)
            x = blk25(x)
            for i40 in range(3):
                x = blk25(x)
        return x


class Model(nn.Module):
    def __init__(self):
        super().__init__()
        self.blocks9 = nn.ModuleList([Block10() for _ in range(2)])
        self.blocks44 = nn.ModuleList([nn.Linear(5, 5) for _ in range(3)])
        self.blocks45 = nn.ModuleList([nn.Linear(5, 5) for _ in range(3)])
        self.thr46 = 0.0

    def forward(self, x):
        y = torch.tanh(x)
        n = 0
        acc = []
        for i7, blk8 in enumerate(self.blocks9):
            x = blk8(x)
            x = y * 2.0 if x.max().item() < 0.6 else -y
            for blk42, blk43 in zip(self.blocks44, self.blocks45):
                x = blk42(x)
                y = blk43(y)
                if x.mean() > x.std():
                    x = torch.sigmoid(y)
                elif int(x.argmax()) % 2 == 0:
                    y = y + y
                elif y.max().item() > self.thr46 + 0.5:
                    hs47 = [x, torch.tanh(x)]
                    for j49, h48 in enumerate(hs47):
                        if h48.mean() > h48.std():
                            x = x + 0.5 * h48 * j49
                        else:
                            x = x - 0.25 * h48
            y = blk8(y)
        acc.append(y)
        x = x + torch.stack(acc).sum(0)
        return {"out": x, "aux": y, "n": n}


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
