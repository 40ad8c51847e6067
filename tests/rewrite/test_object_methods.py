"""Methods of Python objects made in forward (a hypothesis buffer, a ``queue.PriorityQueue``) are
called for what they change: they run on the host on every call, also under a tensor condition
and with values read from tensors (traced, they would run once, at capture, and be lost)."""

from __future__ import annotations

import queue

import torch
import torch.nn as nn

import dycl_jax
from dycl_jax.testing import assert_same


class _Buffer:
    def __init__(self) -> None:
        self.items: list[float] = []

    def push(self, v: float) -> None:
        self.items.append(v)


class PushesUnderACondition(nn.Module):
    def forward(self, x):
        b = _Buffer()
        for i in range(3):
            if x[i] > 0:
                b.push(i)
        c = _Buffer()
        for i in range(3):
            c.push(float(x[i]))
        return len(b.items), b.items, sum(c.items)


class BestFirst(nn.Module):
    """The beam-search idiom: scored nodes in a PriorityQueue, popped until it is empty."""

    def forward(self, x):
        q = queue.PriorityQueue()
        for i in range(x.shape[0]):
            if x[i] > 0:
                q.put((-float(x[i]), i))
        order = []
        while not q.empty():
            order.append(q.get()[1])
        return order


def test_methods_of_objects_made_in_forward_run_every_call() -> None:
    for m in (PushesUnderACondition().eval(), BestFirst().eval()):
        cm = dycl_jax.convert(m)
        for x in (
            torch.tensor([1.0, -1.0, 2.0]),
            torch.tensor([-1.0, 3.0, 2.0]),
            torch.tensor([1.0, -1.0, 2.0]),
            torch.tensor([-1.0, -3.0, -2.0]),
        ):
            assert cm(x) == m(x)


class ModulesByName(nn.Module):
    """A module fetched by a computed name or from a dict, its forward called as a method: traced
    like any module call (it is no object this forward built)."""

    def __init__(self) -> None:
        super().__init__()
        self.l0, self.l1 = nn.Linear(3, 3), nn.Linear(3, 3)

    def forward(self, x):
        for i in range(2):
            m = getattr(self, f"l{i}")
            x = m.forward(x)
            if x.sum() > 0:
                x = x * 2
        pick = {"a": self.l0}["a"]
        return pick.forward(x)


def test_a_module_fetched_by_name_runs_its_forward_traced() -> None:
    torch.manual_seed(0)
    m = ModulesByName().eval()
    cm = dycl_jax.convert(m)
    for s in (1.0, -1.0, 3.0):
        x = torch.ones(1, 3) * s
        with torch.no_grad():
            assert_same(cm(x), m(x))


class _Scorer:
    def __init__(self, k: int) -> None:
        self.k = k
        self.seen: list[torch.Tensor] = []

    def score(self, h):  # type: ignore[no-untyped-def]
        s = torch.topk(h, self.k).values.sum()
        self.seen.append(s)
        return s


class ScoresWithAHelper(nn.Module):
    """A helper of the user's own class, built in forward, whose method computes with tensors
    and keeps what it computed: its own host program (tensor work compiled, the append on the
    host)."""

    def __init__(self) -> None:
        super().__init__()
        self.lin = nn.Linear(4, 4)

    def forward(self, x):
        sc = _Scorer(2)
        h = self.lin(x)
        s = sc.score(h)
        if s > 0:
            h = h * 2
        return h, s, len(sc.seen)


def test_a_helper_built_in_forward_computes_with_tensors_in_its_own_program() -> None:
    torch.manual_seed(0)
    m = ScoresWithAHelper().eval()
    cm = dycl_jax.convert(m)
    for s in (1.0, -1.0, 3.0):
        x = torch.ones(1, 4) * s
        with torch.no_grad():
            assert_same(cm(x), m(x))
