"""Plain Python objects whose state a region's code changes or that a region's code builds: the
transformers ``DynamicCache`` shape (a dataclass without fields whose ``__init__`` makes the
lists its ``update`` appends to, built by a classmethod inside forward and updated by every
layer). A compiled region would make such a change once, at capture, and would hand back the
object built at capture on every call, so these regions run in PyTorch: exact on every call."""

from __future__ import annotations

import pytest
import torch
import torch.nn as nn

import dycl_jax
from dycl_jax.testing import assert_same

DynamicCache = pytest.importorskip("transformers.cache_utils").DynamicCache


class Layer(nn.Module):
    def __init__(self, i: int) -> None:
        super().__init__()
        self.i = i
        self.proj = nn.Linear(4, 4)

    def forward(self, x, cache):
        k = self.proj(x)
        if k.sum() > 0:
            k = k * 2
        keys, values = cache.update(k, -k, self.i)
        return x + keys.mean(-2, keepdim=True) - values.mean(-2, keepdim=True), cache


class Decoder(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.layers = nn.ModuleList(Layer(i) for i in range(3))

    def forward(self, x, past=None):
        cache = DynamicCache.from_legacy_cache(past)
        for layer in self.layers:
            x, _ = layer(x, cache)
        return x, cache.to_legacy_cache(), cache.seen_tokens


def test_a_library_cache_object_built_in_forward_and_updated_by_every_layer() -> None:
    torch.manual_seed(0)
    m = Decoder().eval()
    cm = dycl_jax.convert(m)
    past_e = past_g = None
    for n, s in ((3, 1.0), (1, -1.0), (1, 1.0), (2, -1.0)):
        x = torch.randn(1, n, 4, generator=torch.Generator().manual_seed(n)) * s
        with torch.no_grad():
            want = m(x, past_e)
        got = cm(x, past_g)
        assert_same(got, want, rtol=1e-5, atol=1e-5)
        past_e, past_g = want[1], got[1]
    # and the same without the past: a cache handed back from one call to the next would grow
    x = torch.randn(1, 2, 4)
    with torch.no_grad():
        want = m(x)
    assert_same(cm(x), want)
    assert_same(cm(x), want)


class Config:
    def __init__(self) -> None:
        self.scale = 2.0


class ReturnsItsConfig(nn.Module):
    """A region handing back an object that existed before it ran (the model's config) still
    compiles: only an object the region's code builds is new on each call."""

    def __init__(self) -> None:
        super().__init__()
        self.config = Config()
        self.lin = nn.Linear(4, 4)

    def forward(self, x):
        cfg = self.config
        h = self.lin(x) * cfg.scale
        if h.sum() > 0:
            h = h + 1
        return h, cfg


def test_a_region_returning_an_object_that_existed_before_it_compiles() -> None:
    torch.manual_seed(0)
    m = ReturnsItsConfig().eval()
    cm = dycl_jax.convert(m)
    for s in (1.0, -1.0):
        x = torch.full((1, 4), s)
        with torch.no_grad():
            want = m(x)
        got = cm(x)
        assert got[1] is m.config
        assert_same(got[0], want[0])
    assert cm.stats.eager_region_calls == 0


class Tree:
    def __init__(self, idx, children=()) -> None:
        self.idx = idx
        self.children = list(children)
        self.num_children = len(self.children)


class ChildSum(nn.Module):
    """treelstm.pytorch's ChildSumTreeLSTM shape: each node's state written on the caller's tree."""

    def __init__(self) -> None:
        super().__init__()
        self.lin = nn.Linear(4, 4)

    def forward(self, tree, inputs):
        for idx in range(tree.num_children):
            self.forward(tree.children[idx], inputs)
        if tree.num_children == 0:
            child_h = inputs[0].new_zeros(1, 4)
        else:
            child_h = torch.cat([c.state for c in tree.children], 0)
        tree.state = torch.tanh(
            self.lin(inputs[tree.idx]).unsqueeze(0) + child_h.sum(0, keepdim=True)
        )
        return tree.state


class Similarity(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.tree = ChildSum()

    def forward(self, tree, inputs):
        return self.tree(tree, inputs) * 2


def test_state_a_nested_program_writes_on_the_callers_objects_is_a_jax_array() -> None:
    """The values are right either way; left as the host's numpy arrays, code reading
    ``tree.state`` afterwards met a third array type. A numpy array the caller stored itself
    stays as it is."""
    import jax
    import numpy as np

    torch.manual_seed(0)
    m = Similarity().eval()
    cm = dycl_jax.convert(m)
    x = torch.randn(3, 4)
    want_tree, got_tree = Tree(0, [Tree(1), Tree(2)]), Tree(0, [Tree(1), Tree(2)])
    mine = np.ones(3)
    got_tree.note = mine
    with torch.no_grad():
        want = m(want_tree, x)
    assert_same(cm(got_tree, x), want)
    for w, g in zip((want_tree, *want_tree.children), (got_tree, *got_tree.children)):
        assert isinstance(g.state, jax.Array)
        assert_same(g.state, w.state)
    assert got_tree.note is mine
