# dycl_jax fuzz regression: mismatch (AssertionError)
# found by campaign --seed 2001, program 200 (generator seed 2001006203); minimized by tests/fuzz/campaign.py
# failure:
#   input 0 after mutate(model, 2): out.out: 5 of 5 values differ, first at (0, 0): np.float32(0.33632934) != np.float32(1.3759584)
# tests/fuzz/test_regressions.py converts make_model() and checks parity on make_inputs().
# ruff: noqa
XFAIL = "mismatch: input 0 after mutate(model, 2): out.out: 5 of 5 values differ, first at (0, 0): np.float32(0.33632934) != np.float32(1.3759584)"  # set to None once dycl_jax is fixed
import dataclasses
import logging
import warnings
from collections import OrderedDict
from typing import NamedTuple

import torch
import torch.nn as nn
import torch.nn.functional as F

SEED = 2001006203
INPUTS = [
    (1, 1.0, 0.0, 423274),
    (2, 3.0, 0.0, 825650),
    (2, 0.1, 0.0, 213014),
    (2, 1.0, -1.0, 327418),
    (1, 1.0, 1.0, 332434),
]  # (batch, scale, shift, seed)
UNSUPPORTED = False
ALIASED = False  # an in-place write through an alias
HALF = False
MUTATION_STEPS = 2  # calls to mutate(model, step) after convert
MUTABLE = {
    "Block39": {"thr45": [0.0, 0.55, -0.27]},
    "Block71": {"thr72": [0.13, 0.55, -0.27], "flag78": [False, True]},
    "Block93": {"temp96": [1.0, 0.5, 2.0]},
    "Block80": {"mix88": [[1.0, 0.5], [0.5, -1.0, 0.25], [2.0]]},
    "Model": {"thr102": [0.0, 0.55, -0.27]},
}
WEIGHT_EDIT = (1, -0.75)  # (every, factor)

log = logging.getLogger("dycl_fuzz")


class FuzzExit(Exception):
    """Raised with tensors inside a submodule, caught in forward (the DeeBERT pattern)."""

    def __init__(self, outputs, k):
        super().__init__(k)
        self.outputs = outputs
        self.k = k


@dataclasses.dataclass
class FuzzResult:
    out: torch.Tensor
    aux: torch.Tensor
    n: int


class Block21(nn.Module):
    def __init__(self):
        super().__init__()
        self.blocks23 = nn.ModuleList([nn.Linear(5, 5) for _ in range(1)])
        self.lin25 = nn.Linear(5, 5)

    def forward(self, x):
        if int(x.argmax()) % 2 == 0:
            raise FuzzExit((x, torch.tanh(x)), 0)
        for blk22 in self.blocks23:
            steps24 = 0
            while x.max().item() < 0.3:
                steps24 += 1
                if steps24 > 3:
                    break
                x = torch.tanh(x)
                x = self.lin25(x)
                x = torch.tanh(x)
            x = x + 0.1 * x.sum()
            x = blk22(x)
        z26 = x.clone()
        x = torch.relu(x)
        with torch.no_grad():
            x = torch.tanh(x)
        if (x > 0.5).any():
            z26[:, 1] += 1.0
        x = x + z26
        return x


class Block32(nn.Module):
    def __init__(self):
        super().__init__()
        self.lin34 = nn.Linear(5, 5)
        self.seq36 = nn.Sequential(nn.Linear(5, 5), nn.ReLU())
        self.lin37 = nn.Linear(5, 5)

    def forward(self, x):
        steps33 = 0
        while (x > 0.8).any():
            steps33 += 1
            if steps33 > 2:
                break
            x = torch.tanh(x)
            x = self.lin34(x)
            with torch.no_grad():
                x = torch.tanh(x)
        if float(x.mean()) > 0.0:
            x = F.gelu(x)
            steps35 = 0
            while x.mean().item() > 0.0:
                steps35 += 1
                if steps35 > 3:
                    break
                x = torch.tanh(x)
                x = self.lin37(x)
                x = self.seq36(x)
            for i38 in range(1):
                x = x + x
        return x


class Block50(nn.Module):
    def __init__(self):
        super().__init__()
        self.lin52 = nn.Linear(5, 5)
        self.lin59 = nn.Linear(5, 5)

    def forward(self, x):
        steps51 = 0
        while x.max().item() < 0.9:
            steps51 += 1
            if steps51 > 1:
                break
            x = torch.tanh(x)
            x = self.lin52(x)
            with torch.no_grad():
                x = F.softmax(x, dim=-1)
            if x[0, 4] > 0:
                continue
        if x.sum() > 0:
            raise FuzzExit((x, torch.tanh(x)), 1)
        if x.shape[0] > 1:
            hs53 = [x, torch.tanh(x)]
            x = torch.cat([x, x], dim=-1).reshape(x.shape[0], 2, 5).mean(1)
            for h54 in reversed(hs53):
                if (h54 > -1.0).all():
                    x = x + 0.5 * h54
                else:
                    x = x - 0.25 * h54
        else:
            x = self.lin59(x)
        return x


class Block39(nn.Module):
    def __init__(self):
        super().__init__()
        self.lin42 = nn.Linear(5, 5)
        self.blocks46 = nn.ModuleList([nn.Linear(5, 5) for _ in range(2)])
        self.lin47 = nn.Linear(5, 5)
        self.seq48 = nn.Sequential(nn.Linear(5, 5), nn.ReLU())
        self.flag49 = False
        self.sub60 = Block50()
        self.thr45 = 0.0

    def forward(self, x):
        steps40 = 0
        while (x > 0.0).all():
            steps40 += 1
            if steps40 > 2:
                break
            x = torch.tanh(x)
            x = self.lin42(x)
            x = torch.cat([x, x], dim=-1).reshape(x.shape[0], 2, 5).mean(1)
            if x.mean().item() > 0.1:
                x = x.clone()
                if (x > -1.0).all():
                    x[0] = x[0] * 0.5 + 1.0
            elif x[0, 4] > 0:
                x = F.softmax(x, dim=-1)
            else:
                x = F.gelu(x)
        with torch.no_grad():
            for i43 in range(3):
                if x.mean() > self.thr45:
                    z44 = torch.sigmoid(x)
                else:
                    z44 = x * 0.5
                x = x + z44
        if not self.flag49:
            if float(x.mean()) > 0.0:
                x = F.gelu(x)
            x = self.blocks46[int(x.mean(0)[:2].argmax())](x)
        else:
            x = self.lin47(x)
            x = self.seq48(x)
        try:
            x = self.sub60(x)
        except FuzzExit as e61:
            h62 = e61.outputs[0] + 0.5 * e61.outputs[1]
            x = h62 + 0.1 * e61.k
        if x.max().item() < 0.3:
            raise FuzzExit((x, torch.tanh(x)), 2)
        return x


class Block71(nn.Module):
    def __init__(self):
        super().__init__()
        self.lin74 = nn.Linear(5, 5)
        self.thr72 = 0.13
        self.flag78 = False

    def forward(self, x):
        if x.sum() > -0.5:
            if not x.mean() > self.thr72:
                return x
            for i73 in range(3):
                x = self.lin74(x)
        if not self.flag78:
            for i75 in range(1):
                x = x + 0.1 * i75
        else:
            rows77 = []
            for row76 in x:
                if row76.sum() > 0.5:
                    rows77.append(row76 * 2.0)
                else:
                    rows77.append(torch.tanh(row76))
            x = torch.stack(rows77)
        return x


class Block93(nn.Module):
    def __init__(self):
        super().__init__()
        self.temp96 = 1.0

    def forward(self, x):
        x = x * 2.0 if x.mean().item() > 0.0 else -x
        k94 = max(min(x.mean().item(), 2.0), -2.0)
        if (x > 0.8).any():
            x = x / self.temp96
        x = x - 0.5 * max(k94, 0.0)
        x = x + x.mean() * k94 * 0.1
        return x


class Block80(nn.Module):
    def __init__(self):
        super().__init__()
        self.lin83 = nn.Linear(5, 5)
        self.blocks87 = nn.ModuleList([nn.Linear(5, 5) for _ in range(3)])
        self.lin90 = nn.Linear(5, 5)
        self.blocks92 = nn.ModuleList([Block93() for _ in range(3)])
        self.mix88 = [1.0, 0.5]

    def _helper81(self, x):
        x = x - x
        steps82 = 0
        while x[0, 1] > 0:
            steps82 += 1
            if steps82 > 2:
                break
            x = torch.tanh(x)
            x = self.lin83(x)
            x = x + 0.5 * x.mean().item()
        if x.mean() > x.std():
            k84 = max(min(x.max().item(), 2.0), -2.0)
            x = x - 0.5 * max(k84, 0.0)
        else:
            z86 = torch.full_like(x, 0.5)
            if float(x.mean()) > 0.0:
                z86[:, 2] = x[:, 0] * 0.5
            x = x + z86
        return x

    def forward(self, x):
        x = self._helper81(x)
        x = self.blocks87[int(x.mean(0)[:3].argmax())](x)
        with torch.no_grad():
            for w89 in self.mix88:
                x = torch.tanh(x * w89) + 0.1 * x
            x = self.lin90(x)
        for blk91 in self.blocks92:
            x = blk91(x)
        rows98 = []
        for row97 in x:
            if row97.sum() > 0.5:
                rows98.append(row97 * 2.0)
            else:
                rows98.append(torch.tanh(row97))
        x = torch.stack(rows98)
        return x


class Block105(nn.Module):
    def __init__(self):
        super().__init__()
        self.lin108 = nn.Linear(5, 5)

    def forward(self, x):
        steps106 = 0
        while (x > 0.0).all():
            steps106 += 1
            if steps106 > 2:
                break
            x = torch.tanh(x)
            x = self.lin108(x)
            log.info(f"fuzz107 mean={x.mean().item():.4f}")
        return x


class Model(nn.Module):
    def __init__(self):
        super().__init__()
        self.blocks6 = nn.ModuleList([nn.Linear(5, 5) for _ in range(3)])
        self.lin14 = nn.Linear(5, 5)
        self.lin19 = nn.Linear(5, 5)
        self.lin20 = nn.Linear(5, 5)
        self.sub27 = Block21()
        self.blocks31 = nn.ModuleList([Block32() for _ in range(3)])
        self.sub63 = Block39()
        self.blocks70 = nn.ModuleList([Block71() for _ in range(3)])
        self.blocks79 = nn.ModuleList([Block80() for _ in range(3)])
        self.lin101 = nn.Linear(5, 5)
        self.blocks104 = nn.ModuleList([Block105() for _ in range(1)])
        self.lin110 = nn.Linear(5, 5)
        self.thr102 = 0.0

    def _helper7(self, x):
        hs8 = []
        for jb13 in range(3):
            hs8.append(torch.tanh(x * (jb13 + 1)))
        gs11 = [torch.sigmoid(x), x * 0.5]
        for h9, g12 in zip(hs8, gs11):
            if h9.mean().item() > 0.0:
                x = x + 0.5 * h9
            else:
                x = x - 0.25 * h9 * g12
        return x

    def _helper15(self, x):
        if x.mean() > x.std():
            z16 = torch.sigmoid(x)
        else:
            z16 = x * 0.5
        x = x + z16
        steps17 = 0
        while x.sum() > 0.5:
            steps17 += 1
            if steps17 > 3:
                break
            x = torch.tanh(x)
            x = self.lin19(x)
            log.info(f"fuzz18 mean={x.mean().item():.4f}")
        x = self.lin20(x)
        return x

    def forward(self, x):
        y = torch.tanh(x)
        n = 0
        acc = []
        x = self.lin14(x)
        if len(acc) > 0:
            rows3 = []
            for row2 in y:
                if row2.sum() > 0.5:
                    rows3.append(row2 * 2.0)
                else:
                    rows3.append(torch.tanh(row2))
            x = torch.stack(rows3)
            for i4, blk5 in enumerate(self.blocks6):
                x = blk5(x)
        else:
            x = self._helper7(y)
            y = y + 0.1 * n
        x = torch.relu(y)
        with torch.no_grad():
            y = self._helper15(y)
            y = y + 0.5 * y.mean().item()
            try:
                x = self.sub27(y)
            except FuzzExit as e28:
                h29 = e28.outputs[0] + 0.5 * e28.outputs[1]
                x = h29 + 0.1 * e28.k
            for blk30 in self.blocks31:
                x = blk30(x)
            try:
                y = self.sub63(y)
            except FuzzExit as e64:
                h65 = e64.outputs[0] + 0.5 * e64.outputs[1]
                y = h65 + 0.1 * e64.k
        steps66 = 0
        while x.mean() > self.thr102:
            steps66 += 1
            if steps66 > 3:
                break
            x = torch.tanh(x)
            x = self.lin101(x)
            if y.max().item() < 0.6:
                return FuzzResult(out=x, aux=y, n=n)
            hs67 = []
            hs67.append(torch.tanh(x))
            hs67.append(y * 0.5)
            n += 1
            for blk68, blk69 in zip(self.blocks70, self.blocks79):
                x = blk68(x)
                y = blk69(y)
                k99 = max(min(float(y.sum()), 2.0), -2.0)
                y = y * (1.0 + 0.1 * k99)
                y = y + y[:, int(abs(k99) * 6.3 + 0.17) % 5].unsqueeze(-1)
            if y.mean().item() > 0.0:
                hs67[0] = hs67[0] + y * 0.5
            y = y + torch.stack(hs67).mean(0)
        n += steps66
        if y.mean() > y.std():
            y = F.gelu(y)
            x = x - x.max(dim=-1, keepdim=True).values
            for blk103 in self.blocks104:
                x = x.clone()
                if x.mean() > x.std():
                    x.copy_(torch.sigmoid(y))
                x = blk103(x)
        x = F.gelu(y)
        x = self.lin110(y)
        acc.append(y)
        x = x + torch.stack(acc).sum(0)
        return FuzzResult(out=x, aux=y, n=n)


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
