"""Plain Python objects whose state a region's code changes or that a region's code builds: the
transformers ``DynamicCache`` shape (a dataclass without fields whose ``__init__`` makes the
lists its ``update`` appends to, built by a classmethod inside forward and updated by every
layer). A compiled region would make such a change once, at capture, and would hand back the
object built at capture on every call, so these regions run in PyTorch: exact on every call."""

from __future__ import annotations

import collections
import dataclasses

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


# ---- objects a region is given: their state, read and changed ------------------------------


@dataclasses.dataclass
class Opts:
    scale: float = 1.0

    def __post_init__(self):
        self.inv = 1.0 / self.scale  # not a field: the object is keyed by identity


class ScalesByOpts(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.lin = nn.Linear(4, 4)

    def forward(self, x, opts):
        h = self.lin(x) * opts.scale
        if h.sum() > 0:
            h = h + 1
        return h


def test_a_dataclass_with_more_state_than_its_fields_is_followed_between_calls() -> None:
    """The threshold sweep on an options dataclass whose ``__post_init__`` sets a derived
    attribute: its fields were never guarded, so the first call's scale stayed baked in."""
    torch.manual_seed(0)
    m = ScalesByOpts().eval()
    cm = dycl_jax.convert(m)
    opts = Opts(1.0)
    for s in (1.0, 3.0, -2.0):
        opts.scale = s
        x = torch.ones(1, 4)
        with torch.no_grad():
            assert_same(cm(x, opts), m(x, opts))


@dataclasses.dataclass
class Stats:
    calls: int = 0
    seen: list = dataclasses.field(default_factory=list)


class CountsIntoStats(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.lin = nn.Linear(4, 4)

    def forward(self, x, st):
        h = self.lin(x)
        st.calls += 1
        st.seen.append(float(x.shape[0]))
        if h.sum() > 0:
            h = h * 0.5
        return h


class PassesStats(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.layer = CountsIntoStats()

    def forward(self, x, st):
        return self.layer(x, st)


def test_a_dataclass_argument_changed_by_a_submodule_is_the_callers_object() -> None:
    """A dataclass argument was rebuilt from its fields on the way in: the submodule counted
    into a copy, and the caller's object never changed."""
    torch.manual_seed(0)
    m = PassesStats().eval()
    cm = dycl_jax.convert(m)
    want, got = Stats(), Stats()
    for i in range(3):
        x = torch.ones(1, 4) * (-1) ** i
        with torch.no_grad():
            assert_same(cm(x, got), m(x, want))
    assert got == want == Stats(3, [1.0, 1.0, 1.0])


@dataclasses.dataclass
class KV:
    ks: list = dataclasses.field(default_factory=list)

    def update(self, k, idx):
        if len(self.ks) <= idx:
            self.ks.append(k)
        else:
            self.ks[idx] = torch.cat([self.ks[idx], k], 0)
        return self.ks[idx]


class KVLayer(nn.Module):
    def __init__(self, i: int) -> None:
        super().__init__()
        self.i = i
        self.lin = nn.Linear(4, 4)

    def forward(self, x, cache):
        k = self.lin(x)
        if k.sum() > 0:
            k = -k
        return x + cache.update(k, self.i).mean(0, keepdim=True)


class KVNet(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.layers = nn.ModuleList(KVLayer(i) for i in range(2))

    def forward(self, x, cache):
        for layer in self.layers:
            x = layer(x, cache)
        return x


def test_a_dataclass_cache_updated_by_two_layers_inside_regions() -> None:
    """Each region was traced on a copy of the cache: the second layer's update met an empty
    list, and the refusal claimed PyTorch raised IndexError too."""
    torch.manual_seed(0)
    m = KVNet().eval()
    cm = dycl_jax.convert(m)
    want, got = KV(), KV()
    for i in range(3):
        x = torch.randn(1, 4, generator=torch.Generator().manual_seed(i))
        with torch.no_grad():
            assert_same(cm(x, got), m(x, want))
    assert len(got.ks) == len(want.ks) == 2
    for g, w in zip(got.ks, want.ks):
        assert_same(g, w)


class Monitor:
    def __init__(self) -> None:
        self.recent = collections.deque(maxlen=8)
        self.per_layer = collections.defaultdict(list)
        self.buckets = {"seen": []}
        self.counts = collections.Counter()

    def log(self, layer, h):
        self.recent.append(layer)
        self.per_layer[layer].append(h.shape[0])
        self.buckets["seen"].append(layer)
        self.counts["calls"] += 1


class Logs(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.lin = nn.Linear(4, 4)

    def forward(self, x, mon):
        h = self.lin(x)
        mon.log(0, h)
        if h.sum() > 0:
            h = h * 2
        return h


class PassesMonitor(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.layer = Logs()

    def forward(self, x, mon):
        return self.layer(x, mon)


def test_containers_inside_an_object_a_region_changes() -> None:
    """A deque, a defaultdict's list, a list inside a dict and a Counter held by a helper
    object: changed once, at capture, and never again."""
    torch.manual_seed(0)
    m = PassesMonitor().eval()
    cm = dycl_jax.convert(m)
    want, got = Monitor(), Monitor()
    for i in range(3):
        x = torch.ones(2, 4) * (-1) ** i
        with torch.no_grad():
            assert_same(cm(x, got), m(x, want))
    assert list(got.recent) == list(want.recent) == [0, 0, 0]
    assert dict(got.per_layer) == dict(want.per_layer) == {0: [2, 2, 2]}
    assert got.buckets == want.buckets
    assert got.counts == want.counts == collections.Counter(calls=3)


class Keys:
    def __init__(self) -> None:
        self.ks = []

    def append(self, k):
        self.ks.append(k)


class ReadsLength(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.lin = nn.Linear(4, 4)

    def forward(self, x, cache):
        n = len(cache.ks)
        h = self.lin(x) + n
        if h.sum() > 0:
            h = h * 0.5
        cache.append(h)
        return h


class PassesKeys(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.layer = ReadsLength()

    def forward(self, x, cache):
        return self.layer(x, cache)


def test_a_helpers_list_of_arrays_grown_between_calls_is_read_again() -> None:
    """The list's length read by a compiled region: guarded by the list's identity alone, it
    stayed at the length the region was captured with."""
    torch.manual_seed(0)
    m = PassesKeys().eval()
    cm = dycl_jax.convert(m)
    want, got = Keys(), Keys()
    for _ in range(4):
        x = torch.ones(1, 4)
        with torch.no_grad():
            assert_same(cm(x, got), m(x, want))
    assert len(got.ks) == 4


class RunningStats:
    def __init__(self) -> None:
        self.spread = []

    def update(self, h):  # one argument, as dict.update takes
        s = h.std()  # unbiased in PyTorch; jax's std is not
        self.spread.append(s)
        return s


class Beam:
    def __init__(self) -> None:
        self.items = []

    def extend(self, h):
        self.items.extend(h.unbind(0))
        return torch.cat(self.items, 0)


class UsesHelpers(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.lin = nn.Linear(4, 4)

    def forward(self, x, stats, beam):
        h = self.lin(x)
        if h.sum() > 0:
            h = h * 0.5
        s = stats.update(h)
        return h / s, beam.extend(h)


class PassesHelpers(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.inner = UsesHelpers()

    def forward(self, x, stats, beam):
        return self.inner(x, stats, beam)


def test_a_helpers_methods_named_like_a_containers_run_as_pytorch_runs_them() -> None:
    """``stats.update(h)`` and ``beam.extend(h)`` with one argument looked like dict.update and
    list.extend: run on the host with arrays, h.std() was jax's (silently different) and
    h.unbind / torch.cat failed."""
    torch.manual_seed(0)
    m = PassesHelpers().eval()
    cm = dycl_jax.convert(m)
    want = (RunningStats(), Beam())
    got = (RunningStats(), Beam())
    for i in range(2):
        x = torch.randn(2, 4, generator=torch.Generator().manual_seed(i))
        with torch.no_grad():
            assert_same(cm(x, *got), m(x, *want), rtol=1e-5, atol=1e-5)
    assert len(got[0].spread) == len(got[1].items) // 2 == 2


class CountsPositive(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.layers = nn.ModuleList(nn.Linear(4, 4) for _ in range(3))

    def forward(self, x):
        counts = collections.Counter()
        for layer in self.layers:
            x = layer(x)
            if x.sum() > 0:
                counts["pos"] += 1
        return x * (1 + counts["pos"]), dict(counts)


class MakesDeque(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.lin = nn.Linear(4, 4)

    def forward(self, h):
        return self.lin(h), collections.deque([h.shape[1]])


class GrowsDeque(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.sub = MakesDeque()

    def forward(self, x):
        h, q = self.sub(x)
        if h.sum() > 0:
            q.append(7)
        q.append(9)
        return h, list(q)


def test_a_counter_into_a_region_and_a_fresh_deque_out_of_one() -> None:
    """A Counter given to a region was rebuilt with Counter.update (counting the pairs); a deque
    a region built was handed back as the capture's own object every call."""
    torch.manual_seed(0)
    for m in (CountsPositive().eval(), GrowsDeque().eval()):
        cm = dycl_jax.convert(m)
        for s in (1.0, -1.0, 3.0):
            x = torch.full((1, 4), s)
            with torch.no_grad():
                assert_same(cm(x), m(x))


class Stds:
    def __init__(self) -> None:
        self.ks = []

    def append(self, k):
        self.ks.append(k)
        return torch.cat(self.ks, 0)


class DefaultsToAList(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.lin = nn.Linear(4, 4)

    def forward(self, x, cache=None):
        if cache is None:
            cache = []
        h = self.lin(x)
        if h.sum() > 0:
            h = h * 0.5
        cache.append(h.std(dim=0, keepdim=True))
        return h


class PassesCache(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.layer = DefaultsToAList()

    def forward(self, x, cache):
        return self.layer(x, cache)


def test_a_parameter_assigned_a_list_only_when_missing_may_be_another_object() -> None:
    """``cache = []`` when the caller gave none: the caller's object (a helper whose ``append``
    concatenates tensors) is not taken for a list, so its method runs in PyTorch, not on arrays."""
    torch.manual_seed(0)
    m = PassesCache().eval()
    cm = dycl_jax.convert(m)
    want, got = Stds(), Stds()
    for i in range(2):
        x = torch.randn(2, 4, generator=torch.Generator().manual_seed(i))
        with torch.no_grad():
            assert_same(cm(x, got), m(x, want))
    assert len(got.ks) == len(want.ks) == 2
    for g, w in zip(got.ks, want.ks):
        assert_same(g, w)
