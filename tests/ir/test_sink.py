"""Sinking the region call after a host ``if`` into its branches (``dycl_jax.ir.sink``): one region
call per path where a branch ends with a region, exact on every path, and left alone wherever the
statements it would move past could see it (they name what it reads or writes, call anything, or
append to a list someone else holds) or a branch may leave early."""

from __future__ import annotations

import pytest
import torch
import torch.nn as nn

import dycl_jax
from dycl_jax.config import Config
from tests.helpers import run_all_paths


def _inputs(n: int, seed: int = 0) -> list[tuple[torch.Tensor]]:
    g = torch.Generator().manual_seed(seed)
    return [(torch.randn(1, 6, generator=g) * (1 + i % 3),) for i in range(n)]


def _calls_per_path(m: nn.Module, config: Config | None = None) -> set[int]:
    cm = dycl_jax.convert(m, config=config)
    ins = _inputs(12)
    paths = run_all_paths(m, cm, ins)
    assert len(paths) >= 2  # both branches taken
    out = set()
    for a in ins:
        before = cm.stats.region_calls
        cm(*a)
        out.add(cm.stats.region_calls - before)
    return out


class GatedBlocks(nn.Module):
    """SkipNet's shape: a block or its shortcut, bookkeeping, then the gate for the next one."""

    def __init__(self) -> None:
        super().__init__()
        self.blocks = nn.ModuleList(nn.Linear(6, 6) for _ in range(3))
        self.gates = nn.ModuleList(nn.Linear(6, 1) for _ in range(3))

    def forward(self, x):
        prob = torch.sigmoid(self.gates[0](x))
        executed = 0
        masks = []
        for block, gate in zip(self.blocks, self.gates):
            if prob.item() > 0.5:
                x = torch.relu(block(x))
                executed += 1
                masks.append(1)
            else:
                x = x * 0.5
                masks.append(0)
            prob = torch.sigmoid(gate(x))
        return x, prob, executed, masks


class GateAfterPlainIf(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.a, self.b, self.g = nn.Linear(6, 6), nn.Linear(6, 6), nn.Linear(6, 1)

    def forward(self, x):
        h = self.a(x)
        steps = []
        for _ in range(3):
            if h.sum() > 0:
                h = torch.tanh(self.b(h))
                steps.append(1)
            else:
                h = h.flip(-1)
                steps.append(0)
            h = h + self.g(h)
        return h, steps


class EarlyExitThenBlock(nn.Module):
    """A branch that returns never reaches the call after the if: only the other branch gets it."""

    def __init__(self) -> None:
        super().__init__()
        self.a, self.b, self.c = nn.Linear(6, 6), nn.Linear(6, 6), nn.Linear(6, 6)
        self.calls = 0

    def forward(self, x):
        h = self.a(x)
        if h.mean() > 0.2:
            return h
        else:
            h = torch.relu(self.b(h))
            self.calls += 1  # a module write: not moved past the next region
        return self.c(h)


class BookkeepingTheCallReads(nn.Module):
    """The statement after the branch's region changes what the next region reads: not merged."""

    def __init__(self) -> None:
        super().__init__()
        self.a, self.b = nn.Linear(6, 6), nn.Linear(6, 6)

    def forward(self, x):
        h = self.a(x)
        k = 1.0
        for _ in range(3):
            if h.sum() > 0:
                h = self.b(h).tanh()
                k = k * 2
            else:
                h = -h
            h = h * k
        return h, k


class AppendToAHeldList(nn.Module):
    """``trace`` is the module's own list, which the next region reads through ``self``."""

    def __init__(self) -> None:
        super().__init__()
        self.a, self.b = nn.Linear(6, 6), nn.Linear(6, 6)
        self.trace: list[int] = []

    def forward(self, x):
        self.trace = []
        trace = self.trace
        h = self.a(x)
        for _ in range(3):
            if h.sum() > 0:
                h = self.b(h).tanh()
                trace.append(1)
            else:
                h = -h
            h = h * (1 + len(self.trace))
        return h


def test_the_gate_after_a_block_or_its_shortcut_runs_in_the_branch_region() -> None:
    torch.manual_seed(0)
    m = GatedBlocks().eval()
    sunk = _calls_per_path(m)
    plain = _calls_per_path(m, Config(stage=False))
    assert sunk == {1 + 3} and plain == {1 + 3 * 2}  # the first gate, then one call per block


def test_a_gate_after_a_plain_if_is_merged_on_both_branches() -> None:
    torch.manual_seed(0)
    m = GateAfterPlainIf().eval()
    # per step: the condition, then the branch with the gate (three calls without sinking)
    assert _calls_per_path(m) == {1 + 3 * 2}
    assert _calls_per_path(m, Config(stage=False)) == {1 + 3 * 3}
    cm = dycl_jax.convert(m)
    assert cm.host_source.count("steps.append") == 2


def test_a_returning_branch_is_left_alone_and_module_writes_are_not_moved() -> None:
    torch.manual_seed(0)
    m = EarlyExitThenBlock().eval()
    cm = dycl_jax.convert(m)
    before = m.calls
    paths = run_all_paths(m, cm, _inputs(12))
    assert len(paths) == 2
    assert m.calls > before  # the write ran as in eager (checked against eager's count there)


def test_bookkeeping_that_the_next_region_reads_stays_before_it() -> None:
    torch.manual_seed(0)
    for m in (BookkeepingTheCallReads().eval(), AppendToAHeldList().eval()):
        cm = dycl_jax.convert(m)
        assert len(run_all_paths(m, cm, _inputs(12))) >= 2


class AppendSeenUnderAnotherName(nn.Module):
    """The appended list is also reachable as ``hist`` / ``self.trace`` / a dict entry, which the
    next region reads: the append must stay before it."""

    def __init__(self, how: str) -> None:
        super().__init__()
        self.a = nn.Linear(4, 4)
        self.how = how

    def forward(self, x):
        masks = []
        if self.how == "alias":
            hist = masks
        elif self.how == "self":
            self.trace = masks
            hist = self.trace
        else:
            hist = {"m": masks}["m"]
        for _ in range(3):
            if x.sum() > 0:
                x = torch.tanh(self.a(x))
                masks.append(1)
            else:
                x = x * 0.5
                masks.append(0)
            x = x + len(hist)
        return x


class ShapeErrorAfterTheIf(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.a = nn.Linear(4, 4)

    def forward(self, x):
        steps = []
        if x.sum() > 0:
            x = self.a(x)
            steps.append(1)
        else:
            x = -x
            steps.append(0)
        return x.view(3, -1), steps  # raises for 4 elements, as in eager


def test_an_append_the_next_region_can_see_is_not_moved_past_it() -> None:
    torch.manual_seed(0)
    g = torch.Generator().manual_seed(0)
    xs = [(torch.randn(1, 4, generator=g) * s,) for s in (1.0, -1.0, 3.0, -3.0)]
    for how in ("alias", "self", "dict"):
        m = AppendSeenUnderAnotherName(how).eval()
        cm = dycl_jax.convert(m)
        assert len(run_all_paths(m, cm, xs)) >= 2


def test_a_sunk_region_that_raises_raises_pytorchs_own_error() -> None:
    torch.manual_seed(0)
    cm = dycl_jax.convert(ShapeErrorAfterTheIf().eval())
    for s in (1.0, -1.0):
        with pytest.raises(RuntimeError, match="shape"):
            cm(torch.ones(1, 4) * s)
