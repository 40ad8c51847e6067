"""Tensors the host program iterates, indexes with or reads through objects: the items of a
result PyTorch computed on the host are tensors (not numpy scalars), a one-element index
tensor indexes Python sequences as its ``__index__``, objects holding arrays the host stored run
in PyTorch, and a list a region stores into an input dict is a new entry, not an input."""

from __future__ import annotations

import numpy as np
import pytest
import torch
import torch.nn as nn

import dycl_jax
from dycl_jax.capture.trace import trace
from dycl_jax.testing import assert_same, run_all_paths


class PerClass(nn.Module):
    """YOLO-style per-class work over ``labels.unique()``: tensor methods and true division on
    each item, and ``enumerate`` / ``zip`` over host results."""

    def forward(self, scores, labels):
        outs = []
        for c in labels.unique():
            outs.append(scores[labels == c].max() * c.float() + c / 3)
        firsts = [i * int(c) for i, c in enumerate(labels.unique())]
        pairs = [a.unsqueeze(0) - b for a, b in zip(labels.unique(), labels.unique().flip(0))]
        return torch.stack(outs), firsts, torch.cat(pairs)


class ThroughBuiltins(nn.Module):
    """The items of a host result iterated by builtins rather than a for statement."""

    def forward(self, labels):
        u = labels.unique()
        a = [c.float() for c in list(u)]
        b = [c / 3 for c in sorted(u, reverse=True)]
        top = max(u).float() / 2
        d = [c.float() * i for i, c in enumerate(u, start=1)]
        e = [c.float() for c in reversed(u)]
        f = [a * b for a, b in zip(tuple(u), u.flip(0))]
        g = sorted(u, key=lambda c: -c.float())
        k = [c * i for i, c in enumerate(u, u[0])]  # a tensor start: counted, not iterated
        return a, b, top, d, e, f, g, sum(u), k


def test_builtins_iterating_host_results_give_tensors() -> None:
    m = ThroughBuiltins().eval()
    cm = dycl_jax.convert(m)
    for labels in ([3, 1, 3, 2], [0, 0, 5], [7]):
        lab = torch.tensor(labels)
        with torch.no_grad():
            expected = m(lab)
        assert_same(cm(lab), expected)


def test_items_of_host_results_are_tensors() -> None:
    m = PerClass().eval()
    cm = dycl_jax.convert(m)
    g = torch.Generator().manual_seed(0)
    for labels in ([3, 1, 3, 2], [0, 0, 5], [7]):
        lab = torch.tensor(labels)
        scores = torch.randn(len(labels), generator=g)
        with torch.no_grad():
            expected = m(scores, lab)
        assert expected[0].dtype == torch.float32
        assert_same(cm(scores, lab), expected)


class ExpertHit(nn.Module):
    """HF Mixtral's loop: ``for e in hit: self.experts[e]`` over ``nonzero()`` rows of shape
    (1,), and ``range(n)`` of a one-element count."""

    def __init__(self) -> None:
        super().__init__()
        self.experts = nn.ModuleList(nn.Linear(4, 4) for _ in range(3))

    def forward(self, x):
        hit = (x.abs().sum(0)[:3] > 1).nonzero()  # shape (n, 1)
        out = torch.zeros_like(x)
        for e in hit:
            out = out + self.experts[e](x)
        n = (x > 0).sum(1)[:1]  # shape (1,)
        names = ["a", "b", "c", "d", "e"]
        flag = names[x.sum() > 0]  # a 0-d bool tensor: its __index__ is 0 or 1
        return out, [names[k] for k in range(n)], names[n], names[n:], names[:n], flag


def test_one_element_index_tensors_index_python_sequences() -> None:
    torch.manual_seed(0)
    m = ExpertHit().eval()
    cm = dycl_jax.convert(m)
    ins = [(torch.randn(2, 4) * s,) for s in (0.1, 1.0, 3.0)] + [(torch.ones(2, 4),)]
    run_all_paths(m, cm, ins)
    with torch.no_grad():
        assert len(m(*ins[0])[1]) != len(m(*ins[-1])[1])


class IndexWrites(nn.Module):
    """A one-element index tensor stores into, deletes from, pops from and inserts into a
    Python list (its ``__index__``, as in PyTorch; numpy converts 0-d integer arrays only)."""

    def forward(self, x):
        names = ["a", "b", "c", "d"]
        k = (x > 0).sum(1)[:1]  # shape (1,)
        names[k] = "z"
        del names[k - 1]
        popped = names.pop(k - 1)
        names.insert(k, "q")
        names[x.sum() > 0] = "flag"  # a 0-d bool tensor: index 0 or 1
        return names, popped


def test_one_element_index_tensors_store_delete_pop_and_insert() -> None:
    m = IndexWrites().eval()
    cm = dycl_jax.convert(m)
    ins = [(torch.tensor([[1.0, 2.0, -1.0]]),), (torch.tensor([[1.0, -2.0, -1.0]]),)]
    ins += [(torch.tensor([[1.0, 2.0, 3.0]]),), (torch.tensor([[-1.0, -2.0, -3.0]]),)]
    run_all_paths(m, cm, ins)
    with torch.no_grad():
        assert len({str(m(*i)) for i in ins}) == 3


class DictByTensor(nn.Module):
    def forward(self, x):
        table = {0: "a", 1: "b"}
        try:
            return table[x.argmax()]
        except KeyError:  # PyTorch's tensors hash by identity: never a key here
            return "missing"


def test_a_dict_indexed_by_a_tensor_raises_key_error_as_in_pytorch() -> None:
    m = DictByTensor().eval()
    x = torch.tensor([0.0, 1.0])
    assert m(x) == "missing"
    assert dycl_jax.convert(m)(x) == "missing"


class Hyp:
    def __init__(self, tokens, score):
        self.tokens = tokens
        self.score = score


class Beam(nn.Module):
    """Hypothesis objects holding a score tensor the host stored in them."""

    def __init__(self) -> None:
        super().__init__()
        self.out = nn.Linear(4, 5)

    def forward(self, x):
        hyps = [Hyp([0], torch.zeros(()))]
        for _ in range(2):
            cands = []
            for hy in hyps:
                top, idx = self.out(x * (len(hy.tokens) + hy.score))[0].topk(2)
                for s, i in zip(top, idx):
                    cands.append(Hyp(hy.tokens + [i.item()], hy.score + s))
            hyps = sorted(cands, key=lambda h: -h.score.item())[:2]
        return [(h.tokens, h.score) for h in hyps]


class SlotHyp:
    __slots__ = ("score", "tokens")

    def __init__(self, tokens, score):
        self.tokens = tokens
        self.score = score


class Score:
    def __init__(self, v):
        self.v = v


class SlotBeam(nn.Module):
    """``__slots__`` hypotheses, and a score held one object further down (``h.score.v``)."""

    def __init__(self) -> None:
        super().__init__()
        self.out = nn.Linear(4, 5)

    def forward(self, x):
        hyps = [SlotHyp([0], Score(torch.zeros(())))]
        for _ in range(2):
            cands = []
            for hy in hyps:
                top, idx = self.out(x * (len(hy.tokens) + hy.score.v))[0].topk(2)
                for s, i in zip(top, idx):
                    cands.append(SlotHyp(hy.tokens + [i.item()], Score(hy.score.v + s)))
            hyps = sorted(cands, key=lambda h: -h.score.v.item())[:2]
        return [(h.tokens, h.score.v) for h in hyps]


@pytest.mark.parametrize("model", [Beam, SlotBeam])
def test_objects_holding_host_arrays(model: type[nn.Module]) -> None:
    torch.manual_seed(0)
    m = model().eval()
    cm = dycl_jax.convert(m)
    for s in (0.5, 2.0, -1.0):
        x = torch.randn(1, 4) * s
        with torch.no_grad():
            expected = m(x)
        assert_same(cm(x), expected)


class WriteThroughIndex(nn.Module):
    """An in-place write to a list entry picked by a tensor index: the list's tensor changes."""

    def forward(self, x):
        ts = [x * 1, x * 2]
        i = (x.sum() > 0).long()
        ts[i].add_(10)
        return ts


def test_a_write_to_an_entry_picked_by_a_tensor_index_is_refused() -> None:
    """The host reads ``ts[i]`` (``_dy.at``), a region writes it: refused at the write, as
    for any entry of a list written where the list cannot see it (never silently lost)."""
    with pytest.raises(dycl_jax.UnsupportedConstructError, match="in-place write") as exc:
        dycl_jax.convert(WriteThroughIndex().eval())(torch.tensor([1.0, 2.0]))
    assert "ts[i].add_(10)" in str(exc.value)


def _store_new_list(d, x):
    d["new"] = [x * 2]  # a list the region makes, stored into the dict it was given
    return (d,)


def test_a_list_a_region_stores_into_an_input_dict_is_a_new_list() -> None:
    """The output plan names input containers by their paths before the region ran: the new
    list is rebuilt from the graph's outputs, not read from the dict at "new" (absent there
    when the region is called again)."""
    x = np.ones(3, dtype=np.float32)
    captured = trace(_store_new_list, None, (), (), ({}, torch.ones(3)), frozenset())
    (d,) = captured.plan.build((x * 2,), ({}, x))
    assert list(d) == ["new"] and type(d["new"]) is list
    np.testing.assert_array_equal(np.asarray(d["new"][0]), x * 2)


class BestHead(nn.Module):
    """``max`` / ``sorted`` / ``min`` over a generator of tensors (compared on the host), and a
    ``torch.return_types.max`` kept whole across a region boundary and returned."""

    def __init__(self) -> None:
        super().__init__()
        self.heads = nn.ModuleList(nn.Linear(4, 2) for _ in range(3))

    def forward(self, x):
        best = max(h(x).max() for h in self.heads)
        order = sorted(h(x).sum() for h in self.heads)
        low = min((h(x).min() for h in self.heads), key=lambda t: t.abs())
        m = x.max(-1)
        if best > 0:
            return m, order, low
        return x.min(-1), order, low


def test_builtins_over_generators_of_tensors_and_named_results() -> None:
    torch.manual_seed(0)
    m = BestHead().eval()
    cm = dycl_jax.convert(m)
    ins = [(torch.randn(2, 4) * s,) for s in (1.0, -1.0, 3.0)]
    with torch.no_grad():
        for i, h in enumerate(m.heads):  # every head's output has the sign of x's sum
            h.weight.fill_(0.1 * (i + 1))
            h.bias.zero_()
    ins += [(torch.full((2, 4), -1.0),), (torch.full((2, 4), 2.0),)]
    run_all_paths(m, cm, ins)
    with torch.no_grad():
        assert len({type(m(*i)[0]).__name__ for i in ins}) == 2


class StoreIntoPickedEntry(nn.Module):
    """A store into the list entry a tensor index picks (``hs[k][0, 0] = v``): ``k`` is read
    back as a Python index first, then the entry is written as ``hs[1][0, 0] = v`` would be."""

    def forward(self, x):
        hs = [x.clone(), x.clone() * 2]
        k = (x.sum() > 0).long()
        hs[k][0, 0] = 100.0
        hs[k.view(1)][1, :] += 1
        return torch.stack(hs), hs


def test_a_store_into_a_list_entry_picked_by_a_tensor_index() -> None:
    m = StoreIntoPickedEntry().eval()
    cm = dycl_jax.convert(m)
    run_all_paths(m, cm, [(torch.ones(2, 4),), (-torch.ones(2, 4),)])


class TensorDictKeyStore(nn.Module):
    def forward(self, x):
        d = {}
        d[x.argmax() % 2] = x  # PyTorch hashes the tensor by identity
        return list(d.values())[0]


def test_a_tensor_as_a_dict_key_in_a_store_is_refused() -> None:
    with pytest.raises(dycl_jax.UnsupportedConstructError, match="dict key"):
        dycl_jax.convert(TensorDictKeyStore().eval())(torch.ones(2, 3))
