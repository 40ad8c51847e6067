"""Lists and dicts held by modules and written in forward (a KV cache, a memory of past states, a
preallocated buffer, counters): their contents outlive the call, so regions read them as inputs
and the host writes them in place. Each model runs next to an eager twin with the same weights
over a sequence of calls whose paths differ, so state carried from one call to the next is
compared too."""

from __future__ import annotations

import collections
import copy

import pytest
import torch
import torch.nn as nn

import dycl_jax
from dycl_jax.errors import InputError
from dycl_jax.testing import assert_same


class KVCache(nn.Module):
    """Appends under a tensor condition; a later region reads every entry (cleared per call)."""

    def __init__(self) -> None:
        super().__init__()
        self.lin = nn.Linear(4, 4)
        self.cache: dict[str, list[torch.Tensor]] = {"k": []}

    def forward(self, x):
        self.cache["k"].clear()
        h = x
        for _ in range(3):
            h = self.lin(h)
            if h.sum() > 0:
                self.cache["k"].append(h)
            ctx = torch.cat(self.cache["k"] + [h], 0).sum(0, keepdim=True)
            h = h + ctx
        return h, len(self.cache["k"])


class Memory(nn.Module):
    """A sliding memory kept across calls: append, pop, stack."""

    def __init__(self) -> None:
        super().__init__()
        self.lin = nn.Linear(4, 4)
        self.memory: list[torch.Tensor] = []

    def forward(self, x):
        h = torch.tanh(self.lin(x))
        self.memory.append(h * 2)
        if len(self.memory) > 3:
            self.memory.pop(0)
        out = torch.stack(self.memory).sum(0)
        if out.mean() > 0:
            out = out * 3
        return out


class Buffer(nn.Module):
    """Entries of a preallocated list of torch tensors replaced under a condition."""

    def __init__(self) -> None:
        super().__init__()
        self.lin = nn.Linear(4, 4)
        self.buf = [torch.zeros(1, 4) for _ in range(3)]

    def forward(self, x):
        h = x
        for i in range(3):
            h = self.lin(h)
            if h.max() > 0.3:
                self.buf[i] = h
        return sum(self.buf) + h


class Outer(nn.Module):
    """A submodule's list, filled by the submodule and read by its parent."""

    def __init__(self) -> None:
        super().__init__()
        self.inner = Child([])

    def forward(self, x):
        self.inner.store.clear()
        h = x
        for _ in range(3):
            h = self.inner(h)
        if self.inner.store:
            return torch.cat(self.inner.store).sum(0) + h
        return h


class Counts(nn.Module):
    """Python counters in a dict, read by a region."""

    def __init__(self) -> None:
        super().__init__()
        self.lin = nn.Linear(4, 4)
        self.counts = {"a": 0, "b": 0}

    def forward(self, x):
        h = self.lin(x)
        if h.sum() > 0:
            self.counts["a"] += 1
        else:
            self.counts["b"] += 1
        return h * self.counts["a"] - self.counts["b"]


class Keyed(nn.Module):
    """A dict of tensors keyed by a string argument, read under a condition on the next call."""

    def __init__(self) -> None:
        super().__init__()
        self.lin = nn.Linear(4, 4)
        self.mem: dict[str, torch.Tensor] = {}

    def forward(self, x, key: str):
        h = self.lin(x)
        if key in self.mem and (h - self.mem[key]).abs().sum() < 100:
            h = h + self.mem[key]
        self.mem[key] = h
        return h


class Past(nn.Module):
    """A tuple of lists (``self.past = ([], [])``), a deque with maxlen, a set, a defaultdict
    and an OrderedDict, each written in forward and read by a region."""

    def __init__(self) -> None:
        super().__init__()
        self.lin = nn.Linear(4, 4)
        self.past: tuple[list[torch.Tensor], list[torch.Tensor]] = ([], [])
        self.recent: collections.deque[torch.Tensor] = collections.deque(maxlen=2)
        self.seen: set[int] = set()
        self.hist: collections.defaultdict[int, int] = collections.defaultdict(int)
        self.lru: collections.OrderedDict[int, torch.Tensor] = collections.OrderedDict()

    def forward(self, x):
        h = self.lin(x)
        k = int(h.argmax())
        if h.sum() > 0:
            self.past[0].append(h)
        else:
            self.past[1].append(-h)
        self.recent.append(h * 0.5)
        self.seen.add(k)
        self.hist[k] += 1
        self.lru[k] = h
        if len(self.lru) > 2:
            self.lru.popitem(last=False)
        out = h * len(self.seen) + self.hist[k] + sum(self.recent)
        if self.past[0]:
            out = out + torch.cat(self.past[0]).mean(0)
        return out + len(self.past[1]) + torch.stack(list(self.lru.values())).sum(0)


class Tracker:
    def __init__(self) -> None:
        self.per_layer: list[list[int]] = [[], []]


class HelperObject(nn.Module):
    """Counts in a plain helper object's list of lists: read by a region as Python values
    (guarded by value, deep enough to see the inner lists grow)."""

    def __init__(self) -> None:
        super().__init__()
        self.lin = nn.Linear(4, 4)
        self.rec = Tracker()

    def forward(self, x):
        h = self.lin(x)
        if h.sum() > 0:
            self.rec.per_layer[0].append(1)
        else:
            self.rec.per_layer[1].append(0)
        return h * len(self.rec.per_layer[0]) - len(self.rec.per_layer[1])


class Child(nn.Module):
    def __init__(self, store: list[torch.Tensor]) -> None:
        super().__init__()
        self.lin = nn.Linear(4, 4)
        self.store = store

    def forward(self, h):
        h = self.lin(h)
        if h.mean() > 0:
            self.store.append(h)
        return h


class Shared(nn.Module):
    """One list held by the parent and two children: children append, the parent pops."""

    def __init__(self) -> None:
        super().__init__()
        self.store: list[torch.Tensor] = []
        self.a = Child(self.store)
        self.b = Child(self.store)

    def forward(self, x):
        h = self.b(self.a(x))
        if len(self.store) > 2:
            self.store.pop(0)
        if self.store:
            h = h + torch.cat(self.store, 0).mean(0, keepdim=True)
        return h


def _calls() -> list[tuple[torch.Tensor]]:
    torch.manual_seed(1)
    return [(torch.randn(1, 4) * s,) for s in (1, 2, 0.5, 3, 1, 2, 1, 4)]


CASES = [
    (KVCache, _calls()),
    (Memory, _calls()),
    (Buffer, _calls()),
    (Outer, _calls()),
    (Counts, _calls()),
    (Keyed, [(x, k) for (x,), k in zip(_calls(), "abaabbab")]),
    (Past, _calls()),
    (HelperObject, _calls()),
    (Shared, _calls()),
]


def _twins(cls: type[nn.Module], check: bool = False) -> tuple[nn.Module, dycl_jax.ConvertedModel]:
    torch.manual_seed(0)
    m = cls().eval()
    config = dycl_jax.Config(check=check)
    return m, dycl_jax.convert(copy.deepcopy(m), config=config)


@pytest.mark.parametrize("check", [False, True], ids=["plain", "checked"])
@pytest.mark.parametrize("cls,calls", CASES, ids=[c.__name__ for c, _ in CASES])
def test_held_containers_follow_eager_across_calls(cls, calls, check: bool) -> None:
    m, cm = _twins(cls, check)
    for args in calls:
        with torch.no_grad():
            want = m(*args)
        assert_same(cm(*args), want)


def test_region_not_reading_state_does_not_recompile_when_it_changes() -> None:
    m, cm = _twins(Memory)
    x = torch.randn(1, 4)
    for _ in range(3):
        cm(x)
    first = {r.name: r.compiles for r in _runners(cm)}
    for _ in range(4):
        cm(x)  # the memory is full: same shapes from now on
    after = {r.name: r.compiles for r in _runners(cm)}
    assert after == first
    # the first region (h = tanh(lin(x)) * 2) never reads self.memory: it compiled once, while
    # the one stacking the memory compiled per length (1, 2, 3)
    assert first["_region_0"] == 1 and max(first.values()) == 3


def _runners(cm: dycl_jax.ConvertedModel) -> list:
    return [r for p in cm.session.programs.values() for r in p.runners]


def test_held_containers_are_refused_by_per_sample_and_save(tmp_path) -> None:
    _, cm = _twins(KVCache)
    cm(torch.randn(1, 4))
    with pytest.raises(InputError, match=r"KVCache\.cache"):
        cm.per_sample(torch.randn(3, 4))
    with pytest.raises(dycl_jax.DyclError, match="cache"):
        cm.save(tmp_path / "a", example_inputs=[(torch.randn(1, 4),)])


class StaticKV(nn.Module):
    """A preallocated cache written in place by index: the write would be lost, so refused."""

    def __init__(self) -> None:
        super().__init__()
        self.k = nn.Linear(4, 4)
        self.cache = {"k": torch.zeros(1, 6, 4), "pos": 0}

    def forward(self, x):
        pos = self.cache["pos"]
        self.cache["k"][:, pos] = self.k(x)
        self.cache["pos"] = pos + 1
        out = self.cache["k"][:, : pos + 1].sum(1)
        if out.sum() > 0:
            out = out * 2
        return out


class AppendThenWrite(nn.Module):
    """The entry appended is the tensor later written in place (eager's entry sees the write)."""

    def __init__(self) -> None:
        super().__init__()
        self.lin = nn.Linear(4, 4)
        self.mem: list[torch.Tensor] = []

    def forward(self, x):
        h = self.lin(x)
        if h.sum() > 0:
            self.mem.append(h)
            h.mul_(2)
        return h + self.mem[-1] if self.mem else h


@pytest.mark.parametrize(
    "cls,line", [(StaticKV, 'self.cache["k"][:, pos] ='), (AppendThenWrite, "h.mul_(2)")]
)
def test_in_place_writes_to_held_tensors_are_refused_at_their_line(cls, line: str) -> None:
    with pytest.raises(dycl_jax.DyclError) as e:
        _, cm = _twins(cls)  # refused at convert (an alias found statically) or at the call
        for s in (1.0, -1.0, 2.0, -3.0):
            cm(torch.full((1, 4), s))
    assert e.value.location is not None and e.value.location.filename == __file__
    assert line in str(e.value)


class LocalAlias(nn.Module):
    """State changed only through a local bound to it: per_sample must refuse it too."""

    def __init__(self) -> None:
        super().__init__()
        self.lin = nn.Linear(4, 4)
        self.memory: list[int] = []

    def forward(self, x):
        mem = self.memory
        h = self.lin(x)
        if h.sum() > 0:
            mem.append(1)
        return h * len(mem)


def test_per_sample_refuses_state_written_through_a_local() -> None:
    _, cm = _twins(LocalAlias)
    with pytest.raises(dycl_jax.DyclError, match="outlives the call") as e:
        cm.per_sample(torch.randn(3, 4))
    assert e.value.location is not None and e.value.location.filename == __file__


class ReadOnlyParent(nn.Module):
    """The child writes the shared list; the parent reads it only through its own attribute."""

    def __init__(self) -> None:
        super().__init__()
        self.store: list[torch.Tensor] = []
        self.child = Child(self.store)

    def forward(self, x):
        h = self.child(x)
        if len(self.store) > 0:
            h = h + self.store[-1]
        return h


class SetAfterConvert(nn.Module):
    """The memory is None until the user sets a list after convert."""

    def __init__(self) -> None:
        super().__init__()
        self.lin = nn.Linear(4, 4)
        self.memory: list[torch.Tensor] | None = None

    def forward(self, x):
        h = self.lin(x)
        if self.memory is not None:
            if h.sum() > 0:
                self.memory.append(h)
            if self.memory:
                h = h + torch.stack(self.memory).sum(0)
        return h


def test_shared_state_read_elsewhere_and_state_set_after_convert() -> None:
    for cls in (ReadOnlyParent, SetAfterConvert):
        m, cm = _twins(cls)
        calls = _calls()
        with torch.no_grad():
            assert_same(cm(*calls[0]), m(*calls[0]))
        if cls is SetAfterConvert:
            m.memory, cm.session.root.memory = [], []  # type: ignore[union-attr]
        for args in calls[1:]:
            with torch.no_grad():
                want = m(*args)
            assert_same(cm(*args), want)


class RingBuffer(nn.Module):
    """A plain tensor attribute written in place by index: refused with the reason."""

    def __init__(self) -> None:
        super().__init__()
        self.lin = nn.Linear(4, 4)
        self.ring = torch.zeros(3, 4)
        self.ptr = 0

    def forward(self, x):
        h = self.lin(x)
        if h.sum() > 0:
            self.ring[self.ptr] = h[0]
            self.ptr = (self.ptr + 1) % 3
        return h + self.ring.sum(0)


def test_in_place_write_to_a_tensor_attribute_is_refused_with_the_reason() -> None:
    _, cm = _twins(RingBuffer)
    with pytest.raises(dycl_jax.DyclError, match="in-place write to a tensor that outlives") as e:
        for s in (1.0, -1.0, 2.0):
            cm(torch.full((1, 4), s))
    assert e.value.location is not None and e.value.location.filename == __file__


class _IntKeyedHeads(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.heads = nn.ModuleDict({"0": nn.Linear(4, 3), "1": nn.Linear(4, 3)})

    def forward(self, x):
        outputs = {}
        for k in self.heads.keys():
            i = int(k)  # a key's number: a Python value, not a tensor read
            outputs[i] = self.heads[k](x)
            if outputs[i].softmax(-1).max().item() > 0.5:
                break
        for name, head in self.heads.items():
            outputs[name] = head(x) * 2
        return outputs


def test_dicts_filled_by_subscript_under_module_dict_keys_hold_tensors() -> None:
    torch.manual_seed(0)
    m = _IntKeyedHeads().eval()
    cm = dycl_jax.convert(m)
    for s in (0.1, 30.0):
        x = torch.randn(1, 4) * s
        with torch.no_grad():
            assert_same(cm(x), m(x))
