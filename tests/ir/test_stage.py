"""Staging cheap host ``if``s in-graph (``dycl_jax.ir.stage`` + ``runtime.staging``): exact on
every path, one region call where the branches are cheap, and the host version wherever a select
would not be the same as running one branch (shapes or Python values that differ, conditions of
several elements, costly branches, gradients)."""

from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np
import pytest
import torch
import torch.nn as nn

import dycl_jax
from dycl_jax.config import Config
from dycl_jax.runtime.runner import StagedRunner
from tests.helpers import assert_same, run_all_paths


def _inputs(shape: tuple[int, ...], n: int, seed: int = 0) -> list[tuple[torch.Tensor]]:
    g = torch.Generator().manual_seed(seed)
    scales = (0.1, 1.0, 5.0, -1.0, -5.0)
    return [(torch.randn(*shape, generator=g) * scales[i % len(scales)],) for i in range(n)]


def _calls(cm: dycl_jax.ConvertedModel, args: tuple[torch.Tensor, ...]) -> tuple[int, int]:
    before = (cm.stats.region_calls, cm.stats.host_reads)
    cm(*args)
    return cm.stats.region_calls - before[0], cm.stats.host_reads - before[1]


class Gate(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.a, self.b, self.c = nn.Linear(6, 6), nn.Linear(6, 6), nn.Linear(6, 3)

    def forward(self, x):
        h = torch.relu(self.a(x))
        if h.sum() > 1.0:
            h = self.b(h)
        else:
            h = -h
        return self.c(h)


def test_a_cheap_if_runs_in_one_region_call_without_a_host_read_and_is_exact() -> None:
    torch.manual_seed(0)
    m = Gate().eval()
    cm = dycl_jax.convert(m)
    ins = _inputs((1, 6), 10)
    paths = run_all_paths(m, cm, ins)
    assert len(paths) == 2  # the staged if is still a distinct path when recording
    assert {_calls(cm, a) for a in ins} == {(1, 0)}
    assert "one graph with the if at" in cm.host_source


def test_without_staging_the_same_model_reads_the_condition() -> None:
    torch.manual_seed(0)
    m = Gate().eval()
    cm = dycl_jax.convert(m, config=Config(stage=False))
    ins = _inputs((1, 6), 6)
    run_all_paths(m, cm, ins)
    assert {_calls(cm, a) for a in ins} == {(3, 1)}


class ElifInPlace(nn.Module):
    """An elif chain whose branches write their inputs in place (an in-place ReLU on the
    operand, ``add_``, an indexed write): each branch must see the values from before the if."""

    def __init__(self) -> None:
        super().__init__()
        self.lin = nn.Linear(5, 5)
        self.act = nn.ReLU(inplace=True)

    def forward(self, x):
        h = self.lin(x)
        g = h * 2
        s = h.mean()
        if s > 0.3:
            h = self.act(h)
            g.add_(1)
        elif s > -0.3:
            h[:, 0] = 7.0
            g = g - h
        else:
            g.mul_(-1)
        return h + g, g


def test_elif_chain_with_in_place_writes_is_exact_on_every_path() -> None:
    torch.manual_seed(1)
    m = ElifInPlace().eval()
    cm = dycl_jax.convert(m)
    ins = _inputs((2, 5), 15, seed=2)
    assert len(run_all_paths(m, cm, ins)) == 3
    assert {_calls(cm, a)[0] for a in ins} == {1}


class Shapes(nn.Module):
    """The branches give different shapes: no select can merge them."""

    def forward(self, x):
        y = x * 2
        if y.sum() > 0:
            y = y[:, :2]
        return y + 1


def _unstaged(cm: dycl_jax.ConvertedModel) -> list[str]:
    """Why staged regions run their host version, per signature."""
    return [
        why
        for p in cm.programs
        for r in p.runners
        if isinstance(r, StagedRunner)
        for why in r.unstaged.values()
    ]


def test_branches_of_different_shapes_run_on_the_host() -> None:
    m = Shapes().eval()
    cm = dycl_jax.convert(m)
    run_all_paths(m, cm, _inputs((1, 4), 6))
    assert any("(1, 2)" in why and "(1, 4)" in why for why in _unstaged(cm)), _unstaged(cm)
    assert _calls(cm, _inputs((1, 4), 1)[0])[1] == 1  # the condition is read again


class PythonValues(nn.Module):
    """A branch sets a Python number the caller returns: the branches disagree on it."""

    def forward(self, x):
        y = torch.tanh(x)
        n = 0
        if y.mean() > 0:
            n = 1
            y = y * 3
        return y, n


def test_branches_that_set_different_python_values_are_exact() -> None:
    m = PythonValues().eval()
    cm = dycl_jax.convert(m)
    assert len(run_all_paths(m, cm, _inputs((1, 4), 6))) == 2


class Conditions(nn.Module):
    """Conditions of other dtypes: an integer count (nonzero is true) and a NaN (true)."""

    def forward(self, x):
        y = x + 1
        if (x > 0).sum():
            y = y * 2
        z = x.sum() / (x.abs().sum() - x.abs().sum())  # 0/0 = NaN for an all-zero x
        if z:
            y = y - 1
        return y


def test_integer_and_nan_conditions_follow_python_truth() -> None:
    m = Conditions().eval()
    cm = dycl_jax.convert(m)
    ins = [(torch.zeros(1, 3),), (-torch.ones(1, 3),), (torch.ones(1, 3),)]
    assert len(run_all_paths(m, cm, ins)) >= 2


class Ambiguous(nn.Module):
    def forward(self, x):
        y = x * 2
        if y > 0:
            y = y + 1
        return y


def test_a_condition_of_several_elements_raises_as_in_pytorch() -> None:
    cm = dycl_jax.convert(Ambiguous().eval())
    assert_same(cm(torch.ones(1)), Ambiguous()(torch.ones(1)))
    with pytest.raises(RuntimeError, match="ambiguous"):
        cm(torch.ones(3))


class Costly(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.conv = nn.Sequential(*(nn.Conv2d(32, 32, 3, padding=1) for _ in range(4)))
        self.gate = nn.Linear(32, 1)

    def forward(self, x):
        if self.gate(x.mean((2, 3))).sum() > 0:
            x = self.conv(x)
        return x.mean()


def test_a_costly_branch_stays_on_the_host() -> None:
    torch.manual_seed(0)
    m = Costly().eval()
    cm = dycl_jax.convert(m)
    ins = [(torch.randn(1, 32, 16, 16) * s,) for s in (1.0, -1.0, 2.0, -2.0)]
    run_all_paths(m, cm, ins)
    reads = {_calls(cm, a)[1] for a in ins}
    assert reads == {1}  # the gate is read on the host: the conv stack is not computed untaken
    assert any("costs" in why for why in _unstaged(cm)), _unstaged(cm)


class SqrtBranch(nn.Module):
    """The untaken branch has an infinite derivative (sqrt at 0): a select's gradient would be
    0 * inf = NaN; the host version's is what autograd gives."""

    def __init__(self) -> None:
        super().__init__()
        self.lin = nn.Linear(3, 3)

    def forward(self, x):
        h = self.lin(x)
        if h.sum() > 0:
            h = h * 2
        else:
            h = torch.sqrt(h - h)  # sqrt(0)
        return h.sum()


def test_gradients_through_apply_take_one_branch() -> None:
    torch.manual_seed(0)
    m = SqrtBranch().eval()
    cm = dycl_jax.convert(m)
    for sign in (1.0, -1.0):
        x = torch.ones(1, 3) * sign
        if (m.lin(x).sum() > 0).item() is not True:
            continue
        grads = jax.grad(lambda p, x=x: jnp.sum(cm.apply(p, x)))(cm.params)
        m.zero_grad()
        m(x).backward()
        for n, p in m.named_parameters():
            np.testing.assert_allclose(np.asarray(grads[n]), p.grad.numpy(), rtol=1e-5, err_msg=n)


class GatedLoop(nn.Module):
    """A gate per block inside a host loop, the per-step ``if`` staged with its neighbours."""

    def __init__(self) -> None:
        super().__init__()
        self.blocks = nn.ModuleList(nn.Linear(4, 4) for _ in range(3))
        self.gates = nn.ModuleList(nn.Linear(4, 1) for _ in range(3))

    def forward(self, x):
        taken = []
        for blk, gate in zip(self.blocks, self.gates):
            if gate(x).sum() > 0:
                x = x + blk(x)
            taken.append(x.sum())
        return x, taken


def test_gates_in_a_loop_are_exact_on_every_path() -> None:
    torch.manual_seed(3)
    m = GatedLoop().eval()
    cm = dycl_jax.convert(m)
    assert len(run_all_paths(m, cm, _inputs((1, 4), 20, seed=4))) >= 3


def test_checked_mode_compares_each_staged_path() -> None:
    torch.manual_seed(0)
    m = Gate().eval()
    cm = dycl_jax.convert(m, config=Config(check=True))
    for (x,) in _inputs((1, 6), 6):
        cm(x)
    assert len(cm._checked_paths) == 2


class OneBranchAssigns(nn.Module):
    """``y`` is assigned in one branch only and read under the same condition later: the
    other branch has no value to pass through, so the if stays on the host."""

    def forward(self, x):
        big = x.sum() > 0
        if big:
            y = x * 2
        out = x + 1
        if big:
            out = out + y
        return out


def test_a_name_assigned_in_one_branch_only_stays_exact() -> None:
    m = OneBranchAssigns().eval()
    cm = dycl_jax.convert(m)
    assert len(run_all_paths(m, cm, _inputs((1, 3), 6))) == 2


class AliasAfterStagedIf(nn.Module):
    """``tmp = acc`` / ``log = self.exit_log`` before a cheap if: the list is appended to through
    the alias after it (staged, the region would hand back a copy)."""

    def __init__(self) -> None:
        super().__init__()
        self.lin = nn.Linear(4, 4)
        self.exit_log: list[int] = []

    def forward(self, x):
        acc = [x]
        tmp = acc
        log = self.exit_log
        if x.sum() > 0:
            y = self.lin(x)
        else:
            y = x - 1
        tmp.append(y)
        log.append(1)
        return acc, len(self.exit_log)


@pytest.mark.parametrize("stage", [True, False])
def test_aliases_of_lists_survive_a_staged_if(stage: bool) -> None:
    torch.manual_seed(0)
    m, ref = AliasAfterStagedIf().eval(), AliasAfterStagedIf().eval()
    ref.load_state_dict(m.state_dict())
    cm = dycl_jax.convert(m, config=Config(stage=stage))
    for args in _inputs((1, 4), 6) * 2:
        with torch.no_grad():
            want = ref(*args)
        assert_same(cm(*args), want)
    assert len(m.exit_log) == len(ref.exit_log) == 12


class ScalarsInBranches(nn.Module):
    """Python numbers computed in both branches (``t = c * 2`` of a ``.item()``) stay Python
    numbers: their type decides a later branch, and ``[0] * k`` needs an int."""

    def forward(self, x):
        c = x.max().item()
        n = (x > 0).sum().item()
        if x.mean() > 0:
            t, k = c * 2, n + 1
            y = x + 1
        else:
            t, k = c * 2, n + 1
            y = x - 1
        if isinstance(t, float):
            y = y * 10
        return y, t, [0] * k, f"t={t}"


def test_python_numbers_assigned_in_branches_stay_python_numbers() -> None:
    m = ScalarsInBranches().eval()
    run_all_paths(m, dycl_jax.convert(m), _inputs((1, 3), 6))


class ScalarArithmeticBeforeIf(nn.Module):
    """``n / 3 - 0.6666666`` of an int read back: Python computes it in double. In a graph, an
    int64 0-d input divided by 3 is float32 (cancellation then loses every digit)."""

    def forward(self, x):
        n = (x > 0).sum().item()
        d = n / 3 - 0.6666666
        if x.mean() > 0:
            y = x * d
        else:
            y = x * 2
        return y, x * (n / 3 - 0.6666666)


@pytest.mark.parametrize("stage", [True, False])
def test_host_scalar_arithmetic_keeps_python_precision(stage: bool) -> None:
    m = ScalarArithmeticBeforeIf().eval()
    cm = dycl_jax.convert(m, config=Config(stage=stage))
    for x in (torch.tensor([[1e7, 1e7, -5e6]]), torch.tensor([[-1e7, 1e7, -5e6]])):
        with torch.no_grad():
            want = m(x)
        got = cm(x)
        for g, w in zip(got, want):
            assert np.array_equal(np.asarray(g), w.numpy())
