"""``ConvertedModel.per_sample``: each row of a batch gives what the model gives on that row
alone (eager PyTorch on ``x[i:i+1]``), on every zoo model, with rows on different paths grouped
and vmapped; lazy per-row scalars split only at decisions; refusals say what to do."""

from __future__ import annotations

import jax.numpy as jnp
import numpy as np
import pytest
import torch
import torch.nn as nn

import dycl_jax
from dycl_jax.errors import InputError
from dycl_jax.testing import batch_of
from dycl_jax.zoo import MODELS
from tests.helpers import assert_same


@pytest.mark.parametrize("name", sorted(MODELS))
def test_each_row_equals_eager_on_that_row_alone(name: str) -> None:
    entry = MODELS[name]
    model = entry.build("small", seed=0)
    cm = dycl_jax.convert(model)
    inputs = entry.inputs_for_paths("small", n=6, seed=0)
    # inputs_for_paths: rows chosen to take different paths (test_zoo checks they do)
    rows = cm.per_sample(*batch_of(inputs), stack=False)
    assert len(rows) == len(inputs)
    for got, args in zip(rows, inputs):
        with torch.no_grad():
            want = model(*args)
        assert_same(got, want, rtol=1e-4, atol=1e-4)


class EarlyExit(nn.Module):
    """Exit when the head is confident: the confidence is read back per row and compared."""

    def __init__(self) -> None:
        super().__init__()
        self.blocks = nn.ModuleList(nn.Linear(8, 8) for _ in range(3))
        self.heads = nn.ModuleList(nn.Linear(8, 3) for _ in range(3))

    def forward(self, x):
        for i, (blk, head) in enumerate(zip(self.blocks, self.heads)):
            x = torch.tanh(blk(x))
            out = head(x)
            conf = out.softmax(-1).max().item()
            if conf > 0.5:
                return out, i, conf
        return out, 2, conf


def test_stacked_results_and_python_numbers_per_row() -> None:
    torch.manual_seed(0)
    m = EarlyExit().eval()
    cm = dycl_jax.convert(m)
    x = torch.randn(16, 8) * torch.linspace(0.05, 8.0, 16)[:, None]
    out, exits, confs = cm.per_sample(x)
    assert out.shape == (16, 3) and exits.shape == (16,) and confs.shape == (16,)
    for i in range(16):
        with torch.no_grad():
            w_out, w_exit, w_conf = m(x[i : i + 1])
        np.testing.assert_allclose(np.asarray(out[i : i + 1]), w_out.numpy(), rtol=1e-5, atol=1e-6)
        assert int(exits[i]) == w_exit
        assert float(confs[i]) == pytest.approx(w_conf, rel=1e-6)
    assert len(set(np.asarray(exits).tolist())) >= 2  # rows left at different heads


def test_rows_agreeing_on_every_decision_run_as_one_group() -> None:
    torch.manual_seed(0)
    m = EarlyExit().eval()
    cm = dycl_jax.convert(m)
    x = torch.randn(1, 8).repeat(8, 1) * 3
    before = cm.stats.region_calls
    cm.per_sample(x)
    one = cm.stats.region_calls - before
    before = cm.stats.region_calls
    cm(x[:1])
    assert one == cm.stats.region_calls - before  # the group ran once, vmapped


def test_results_of_different_shapes_need_stack_false() -> None:
    class Trim(nn.Module):
        def forward(self, x):
            n = int((x > 0).sum().item())
            return x[:, :n]

    cm = dycl_jax.convert(Trim().eval())
    x = torch.tensor([[1.0, 1.0, -1.0], [1.0, -1.0, -1.0]])
    with pytest.raises(InputError, match="stack=False"):
        cm.per_sample(x)
    rows = cm.per_sample(x, stack=False)
    assert [tuple(r.shape) for r in rows] == [(1, 2), (1, 1)]
    assert isinstance(rows[0], jnp.ndarray)


def test_module_state_written_in_forward_is_refused() -> None:
    class Counter(nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.h = None

        def forward(self, x):
            if self.h is None or x.sum() > 0:
                self.h = x * 2
            return self.h + 1

    cm = dycl_jax.convert(Counter().eval())
    with pytest.raises(InputError, match="row by row"):
        cm.per_sample(torch.ones(2, 3))


class Two(nn.Module):
    def forward(self, a, b):
        if a.sum() > 0:
            a = a + b.sum()
        return a


def test_arguments_of_different_row_counts_are_refused() -> None:
    cm = dycl_jax.convert(Two().eval())
    with pytest.raises(InputError, match="same number of rows"):
        cm.per_sample(torch.ones(2, 3), torch.ones(3, 3))


# ---- regressions from review: decisions, replays and per-row numbers -----------------------------


class Elif(nn.Module):
    """Two decisions on one number in a row (elif), then it is used in tensor math."""

    def forward(self, x):
        conf = torch.sigmoid(x.sum()).item()
        if conf > 0.8:
            level = 2
        elif conf > 0.5:
            level = 1
        else:
            level = 0
        return x * conf + conf, level


class Replay(nn.Module):
    """An agreed int() of a per-row number, then another per-row read and decision."""

    def forward(self, x):
        a = x[0, 0].item()
        k = int(a)
        b = x[0, 1].item()
        if b > 0:
            return k, b
        return k, -b


class Specialise(nn.Module):
    """A number read back and used as a slice bound: the region specialises on it."""

    def forward(self, x):
        n = int((x > 0).sum().item())
        return x[:, :n].sum(), n


class Raises(nn.Module):
    """Some rows raise inside forward and forward catches it."""

    def forward(self, x):
        hits = (x > 0).sum().item()
        try:
            r = x.sum().item() / hits
        except ZeroDivisionError:
            r = -1.0
        return r


class Constant(nn.Module):
    """A region with no per-row input (a start token), a loop whose length is per row."""

    def __init__(self) -> None:
        super().__init__()
        self.emb = nn.Embedding(5, 3)

    def forward(self, x):
        tok = torch.zeros(1, dtype=torch.long)
        h = self.emb(tok)
        for _ in range(int(x.abs().sum().item()) % 3):
            h = h + x
        return h.sum(), h


class Membership(nn.Module):
    """``v in t`` on a tensor (PyTorch's ``Tensor.__contains__``): a per-row decision."""

    def forward(self, x):
        if 0.3 in x:
            return x * 2, True
        if -1.0 not in x:
            return x - 1, False
        return x, False


def test_membership_of_a_per_row_value_is_refused() -> None:
    class PerRowValue(nn.Module):
        def forward(self, x):
            if x[:, 0].max() in x[:, 1:]:
                return x * 2
            return x

    cm = dycl_jax.convert(PerRowValue().eval())
    with pytest.raises(InputError, match="v in t"):
        cm.per_sample(torch.tensor([[1.0, 1.0, 2.0], [1.0, 2.0, 3.0]]))


@pytest.mark.parametrize("cls", [Elif, Replay, Specialise, Raises, Constant, Membership])
def test_review_regressions_each_row_equals_eager(cls: type[nn.Module]) -> None:
    torch.manual_seed(0)
    m = cls().eval()
    cm = dycl_jax.convert(m)
    rows = [
        torch.tensor([[1.2, -0.5, 0.3]]),
        torch.tensor([[1.7, 0.5, -0.3]]),
        torch.tensor([[-2.0, -1.0, -0.3]]),
        torch.tensor([[0.1, 0.2, 0.3]]),
        torch.tensor([[3.0, 0.0, -4.0]]),
    ]
    x = torch.cat(rows)
    for _ in range(2):  # the first call compiles, the second reuses
        got = cm.per_sample(x, stack=False)
        for g, r in zip(got, rows):
            with torch.no_grad():
                assert_same(g, m(r))


def test_a_bare_except_around_a_per_row_decision_is_refused() -> None:
    class Bare(nn.Module):
        def forward(self, x):
            try:
                k = int(x.sum().item() > 0)  # a per-row decision on the host
                y = x * (k + 1)
            except:  # noqa: E722
                y = x
            return y

    cm = dycl_jax.convert(Bare().eval())
    with pytest.raises(InputError, match="bare"):
        cm.per_sample(torch.tensor([[1.0], [-1.0]]))


def test_zero_dim_results_stack_and_no_rows_give_nothing() -> None:
    class Sum(nn.Module):
        def forward(self, x):
            s = x.sum()
            if s > 0:
                s = s * 2
            return s

    m = Sum().eval()
    cm = dycl_jax.convert(m)
    x = torch.tensor([[1.0, 2.0], [-1.0, -3.0]])
    got = cm.per_sample(x)
    assert got.shape == (2,)
    np.testing.assert_allclose(np.asarray(got), [6.0, -4.0])
    assert cm.per_sample(torch.zeros(0, 2), stack=False) == []


class Finally(nn.Module):
    """A per-row decision inside try, and another read in its finally."""

    def forward(self, x):
        t = x[0, 1] > 0
        u = x[0, 0] > 0
        try:
            if u:
                tag = 1
            else:
                tag = 0
        finally:
            d = bool(t)
        return tag, d


class TopkFields(nn.Module):
    """A host-run op's struct-sequence result used through its fields in a region."""

    def forward(self, x):
        r = x.topk(2)
        s = r.values.sum()
        if s.item() > 0:
            return r.values * 2, r.indices + 1
        return r.values, r.indices


class Respecialise(nn.Module):
    """A region's first compile specialises on a per-row number after another one agreed."""

    def forward(self, x):
        n = (x > 0).sum().item()
        k = n * 0 + 3
        lst = [k]
        return x[:, :n] * lst[0], n


class ListStoredThrough(nn.Module):
    """A region returns one of its live-in lists itself (t holds `a`); rows then split, and each
    group's replay must refill its own `a`."""

    def forward(self, x):
        a = [x]
        t = (a, 1)
        h = x * 2
        t[0][0] = h
        if h.sum() > 0:
            t[0].append(h)
        return len(a), a[0]


@pytest.mark.parametrize("cls", [Finally, TopkFields, Respecialise, ListStoredThrough])
def test_second_review_regressions(cls: type[nn.Module]) -> None:
    m = cls().eval()
    cm = dycl_jax.convert(m)
    x = torch.tensor([[1.0, 2.0, 0.5], [-1.0, 2.0, 0.1], [2.0, -2.0, -3.0], [-3.0, -1.0, -0.2]])
    for _ in range(2):
        got = cm.per_sample(x, stack=False)
        for i, g in enumerate(got):
            with torch.no_grad():
                assert_same(g, m(x[i : i + 1]))


_SHARDED = r"""
import os, sys
os.environ["XLA_FLAGS"] = "--xla_force_host_platform_device_count=4"
import jax, numpy as np, torch, dycl_jax
from dycl_jax.testing import batch_of, difference
from dycl_jax.zoo import MODELS
assert len(jax.devices()) == 4
for name in sys.argv[1:]:
    entry = MODELS[name]
    model = entry.build("small", seed=0)
    cm = dycl_jax.convert(model)
    rows = list(entry.inputs_for_paths("small", n=12, seed=0))
    batch = batch_of(rows)
    got = cm.per_sample(*batch, stack=False)
    for r, g in zip(rows, got, strict=True):
        with torch.no_grad():
            d = difference(g, model(*r))
        assert d is None, (name, d)
    assert cm.stats.per_sample_sharded_calls > 0 and cm.stats.per_sample_groups > 1, name
    one = cm.per_sample(*batch, stack=False, mesh=False)  # the same on one device
    for a, b in zip(jax.tree_util.tree_leaves(got), jax.tree_util.tree_leaves(one)):
        assert np.allclose(np.asarray(a), np.asarray(b), rtol=1e-5, atol=1e-5), name
print("ok")
"""


def test_rows_shard_over_a_device_mesh() -> None:
    """With four (forced host) devices, each group's rows are sharded over them: every row still
    equals eager PyTorch on that row alone, and the same as on one device."""
    import subprocess
    import sys

    models = ["sdn_resnet56", "skipnet_rnn", "moe_token"]
    out = subprocess.run(
        [sys.executable, "-c", _SHARDED, *models], capture_output=True, text=True, timeout=900
    )
    assert out.returncode == 0 and out.stdout.strip().endswith("ok"), out.stderr[-3000:]


class _InsertsAtTensorIndex(nn.Module):
    def forward(self, x):
        outs = [x * 1, x * 2, x * 3]
        outs.insert(x.argmin() % 3, x * 10)
        return torch.stack(outs)


def test_a_list_written_at_a_per_row_index_is_refused() -> None:
    cm = dycl_jax.convert(_InsertsAtTensorIndex().eval())
    with pytest.raises(InputError, match="writes a list"):
        cm.per_sample(torch.randn(4, 5))
