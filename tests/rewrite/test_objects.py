"""Python objects that hold tensors: built on the host from region results (exact), passed into
regions as NamedTuples, or refused at the user's line when a region would return one."""

from __future__ import annotations

import dataclasses
from typing import NamedTuple

import pytest
import torch
import torch.nn as nn

import dycl_jax
from dycl_jax.config import Config
from dycl_jax.errors import OpaqueOutputError
from dycl_jax.testing import assert_same


class Out(NamedTuple):
    logits: torch.Tensor
    exit: int


@dataclasses.dataclass
class Result:
    logits: torch.Tensor
    conf: torch.Tensor


class HighwayExit(Exception):
    """The DeeBERT pattern: an inner layer raises with its outputs; forward catches it."""

    def __init__(self, outputs, layer: int) -> None:
        super().__init__()
        self.outputs = outputs
        self.layer = layer


class Encoder(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.layers = nn.ModuleList(nn.Linear(4, 4) for _ in range(3))
        self.heads = nn.ModuleList(nn.Linear(4, 2) for _ in range(3))

    def forward(self, x):
        for i, (layer, head) in enumerate(zip(self.layers, self.heads)):
            x = torch.tanh(layer(x))
            logits = head(x)
            if torch.softmax(logits, -1).max() > 0.8:
                raise HighwayExit((logits, x), i)
        return x


class Objects(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.encoder = Encoder()
        self.final = nn.Linear(4, 2)

    def forward(self, x):
        try:
            h = self.encoder(x)
        except HighwayExit as e:
            logits, _ = e.outputs
            res = Result(logits, torch.softmax(logits, -1).max())
            return Out(res.logits * 2, e.layer), res
        logits = self.final(h)
        out = Out(logits, -1)
        scaled = out.logits * 3  # a NamedTuple passed into a region
        return out._replace(logits=scaled), Result(logits, torch.softmax(logits, -1).max())


def test_objects_built_from_tensors_match_on_every_path() -> None:
    torch.manual_seed(0)
    m = Objects().eval()
    cm = dycl_jax.convert(m)
    exits = set()
    for s in (0.1, 1.0, 3.0, 10.0, -10.0, 30.0):
        x = torch.randn(1, 4, generator=torch.Generator().manual_seed(int(s * 10))) * s
        want = m(x)
        got = cm(x)
        assert type(got[0]) is Out and type(got[1]) is Result
        assert_same(tuple(got[0]), tuple(want[0]))
        assert_same((got[1].logits, got[1].conf), (want[1].logits, want[1].conf))
        exits.add(want[0].exit)
    assert len(exits) >= 2, exits


class ClosureCounter(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.lin = nn.Linear(4, 4)

    def forward(self, x):
        n = 0
        scale = lambda z: z * (n + 1)  # noqa: E731 - the way users write it
        for _ in range(3):
            x = scale(self.lin(x))
            n += 1
        return x


def test_closure_over_a_host_counter_is_not_baked_in() -> None:
    torch.manual_seed(0)
    m = ClosureCounter().eval()
    cm = dycl_jax.convert(m)
    x = torch.randn(1, 4)
    assert_same(cm(x), m(x))


class LambdaOverTensor(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.lin = nn.Linear(4, 4)

    def forward(self, x):
        h = self.lin(x)
        gate = lambda z: z * torch.sigmoid(h)  # noqa: E731
        if h.sum() > 0:
            x = x + 1
        return gate(x)


def test_lambda_over_a_tensor_is_copied_into_the_region_that_calls_it() -> None:
    torch.manual_seed(0)
    m = LambdaOverTensor().eval()
    cm = dycl_jax.convert(m)
    for s in (1.0, -1.0, 5.0, -5.0):
        assert_same(cm(torch.ones(1, 4) * s), m(torch.ones(1, 4) * s))


class LeaksClosure(nn.Module):
    """A helper traced into a region returns a closure over a tensor it computed."""

    def __init__(self) -> None:
        super().__init__()
        self.lin = nn.Linear(4, 4)

    def make_gate(self, x):
        h = self.lin(x)
        return lambda z: z * torch.sigmoid(h)

    def forward(self, x):
        gate = self.make_gate(x)
        if x.sum() > 0:
            x = x + 1
        return gate(x)


def test_region_returning_a_closure_over_a_tensor_is_refused_at_the_users_line() -> None:
    # Staged, the closure never leaves the one graph of forward (and is exact: next test).
    cm = dycl_jax.convert(LeaksClosure().eval(), config=Config(stage=False))
    with pytest.raises(OpaqueOutputError) as e:
        cm(torch.ones(1, 4))
    assert "'gate' is a function object holding a tensor" in str(e.value)
    assert e.value.location is not None and e.value.location.filename == __file__


def test_a_closure_over_a_tensor_inside_one_staged_region_is_exact() -> None:
    m = LeaksClosure().eval()
    cm = dycl_jax.convert(m)
    for s in (1.0, -1.0):
        assert_same(cm(torch.ones(1, 4) * s), m(torch.ones(1, 4) * s))


class _Dispatcher:
    """davidmrau/mixture-of-experts' SparseDispatcher shape: __init__ computes with the gates."""

    def __init__(self, gates):
        self.idx = torch.nonzero(gates)[:, 0]

    def dispatch(self, x):
        return x[self.idx]


class _HoldsOnly:
    """A helper whose __init__ only stores what it is given (built on the host)."""

    def __init__(self, scale, bias):
        self.scale = scale
        self.bias = bias

    def apply(self, x):
        return x * self.scale + self.bias


class BuildsDispatcher(nn.Module):
    def forward(self, x):
        gates = (x > 0).float()
        d = _Dispatcher(gates)
        return d.dispatch(x)


class BuildsHolder(nn.Module):
    def forward(self, x):
        h = _HoldsOnly(x.mean(), 1.0)
        y = h.apply(x)
        if y.sum() > 0:
            y = -y
        return y


def test_helper_whose_constructor_computes_with_tensors_is_refused_at_the_users_line() -> None:
    import inspect

    src, first = inspect.getsourcelines(BuildsDispatcher.forward)
    line = first + next(i for i, s in enumerate(src) if "_Dispatcher(gates)" in s)
    with pytest.raises(dycl_jax.UnsupportedConstructError, match="constructors") as info:
        dycl_jax.convert(BuildsDispatcher().eval())(torch.tensor([1.0, -2.0, 3.0]))
    assert info.value.location.filename == __file__
    assert info.value.location.lineno == line


def test_helper_holding_region_outputs_read_by_a_region_runs_that_region_in_pytorch() -> None:
    """Built on the host from a region's output, the object holds arrays a later region reads:
    PyTorch runs that region with them as tensors (never baked in as constants)."""
    m = BuildsHolder().eval()
    cm = dycl_jax.convert(m)
    for x in (torch.full((1, 3), 1.0), torch.full((1, 3), -2.0), torch.tensor([[3.0, -1.0, 0.5]])):
        with torch.no_grad():
            assert_same(cm(x), m(x))


def _make_merge(metric, r):
    """ToMe's bipartite_soft_matching shape: a helper returning a closure over an index."""
    idx = metric.sum(-1).argsort(descending=True)[:r]
    if idx.numel() == 0:
        return lambda t: t

    def merge(t):
        return t[idx]

    return merge


class MergesTokens(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.fc = nn.Linear(4, 4)

    def forward(self, x):
        x = self.fc(x)
        merge = _make_merge(x, 2)
        return merge(x)


def test_a_host_made_closure_over_an_array_is_called_in_a_region_with_its_arrays() -> None:
    torch.manual_seed(0)
    m = MergesTokens().eval()
    cm = dycl_jax.convert(m)
    g = torch.Generator().manual_seed(0)
    for _ in range(3):
        x = torch.randn(5, 4, generator=g)
        with torch.no_grad():
            assert_same(cm(x), m(x))
    assert cm.stats.compiles <= 3 + 2  # the merge made again each call is the same signature


def _fixed_point(f, x0, max_iter=30, tol=1e-3):
    z = f(x0)
    for k in range(max_iter):
        z_next = f(z)
        if (z_next - z).norm().item() < tol:
            return z_next, k
        z = z_next
    return z, max_iter


class Deq(nn.Module):
    """A DEQ layer: the solver gets ``lambda z: self.f(z, x)``, a closure over the input."""

    def __init__(self) -> None:
        super().__init__()
        self.lin = nn.Linear(4, 4)

    def f(self, z, x):
        return torch.tanh(0.5 * self.lin(z) + x)

    def forward(self, x):
        with torch.no_grad():
            z, n = _fixed_point(lambda z: self.f(z, x), torch.zeros_like(x))
        return self.f(z, x), n


def test_a_lambda_passed_to_a_solver_closes_over_the_hosts_values() -> None:
    torch.manual_seed(0)
    m = Deq().eval()
    cm = dycl_jax.convert(m)
    g = torch.Generator().manual_seed(1)
    iters = set()
    for s in (1.0, 0.1, 3.0, 1.0):
        x = torch.randn(2, 4, generator=g) * s
        with torch.no_grad():
            want = m(x)
        assert_same(cm(x), want)
        iters.add(want[1])
    assert len(iters) > 1
    compiles = cm.stats.compiles
    cm(torch.randn(2, 4, generator=g))
    assert cm.stats.compiles == compiles  # the lambda made again reuses its compiles


class Accumulates(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.layers = nn.ModuleList(nn.Linear(4, 4) for _ in range(3))

    def forward(self, x):
        import itertools

        feats = list(itertools.accumulate(self.layers, lambda h, f: f(h), initial=x))
        if feats[-1].sum() > 0:
            return feats[-1], len(feats)
        return -feats[-1], len(feats)


def test_itertools_accumulate_over_layers_is_traced() -> None:
    torch.manual_seed(0)
    m = Accumulates().eval()
    cm = dycl_jax.convert(m)
    for s in (1.0, -1.0, 3.0, -3.0):
        x = torch.full((1, 4), s) + torch.arange(4.0)
        with torch.no_grad():
            assert_same(cm(x), m(x))


class SortsArgument(nn.Module):
    """x.sort() and x.add(y) with their results used: tensor methods, not list/set writes."""

    def forward(self, x, y):
        v, i = x.sort()
        z = x.add(y)
        if v[0, 0] > 0:
            return z, i
        return -z, i


def test_tensor_sort_and_add_on_an_argument_are_not_writes_into_it() -> None:
    m = SortsArgument().eval()
    cm = dycl_jax.convert(m)
    for s in (1.0, -1.0):
        x, y = torch.tensor([[3.0, 1.0, 2.0]]) * s, torch.ones(1, 3)
        assert_same(cm(x, y), m(x, y))


class WalksChildren(nn.Module):
    """Layers skipped by name while walking named_children(); an OrderedDict result."""

    def __init__(self) -> None:
        super().__init__()
        self.seq = nn.Sequential()
        self.seq.add_module("proj", nn.Linear(4, 4))
        self.seq.add_module("skip_me", nn.Linear(4, 4))

    def forward(self, x):
        import collections

        for name, mod in self.seq.named_children():
            if name.startswith("skip") and x.norm() < 3:
                continue
            x = mod(x)
        return collections.OrderedDict(out=x, norm=x.norm())


def test_walking_named_children_and_an_ordered_dict_result() -> None:
    import collections

    torch.manual_seed(0)
    m = WalksChildren().eval()
    cm = dycl_jax.convert(m)
    for s in (0.1, 10.0):
        x = torch.full((1, 4), s)
        got = cm(x)
        assert type(got) is collections.OrderedDict
        assert_same(got, m(x))


class HostMadeTensorAndDictMerge(nn.Module):
    """A helper run on the host makes a torch tensor that is returned as it is; a dict of
    tensors merged with |= (a Python dict, not a tensor's bitwise or)."""

    def __init__(self) -> None:
        super().__init__()
        self.lin = nn.Linear(4, 4)

    def init_state(self, n):
        return torch.zeros(n, 4)

    def forward(self, x):
        h = self.init_state(1)
        y = self.lin(x)
        d = {"a": y}
        d |= {"b": y * 2}
        if y.sum() > 0:
            d |= {"c": y * 3}
        return h, d


def test_host_made_tensors_come_back_as_jax_arrays_and_dicts_merge() -> None:
    import jax

    torch.manual_seed(0)
    m = HostMadeTensorAndDictMerge().eval()
    cm = dycl_jax.convert(m)
    for s in (1.0, -1.0):
        x = torch.full((1, 4), s)
        got = cm(x)
        with torch.no_grad():
            assert_same(got, m(x))
        assert isinstance(got[0], jax.Array)


class LambdaAttributes(nn.Module):
    """Lambdas set in __init__ (an activation; one branching on a tensor value)."""

    def __init__(self) -> None:
        super().__init__()
        self.fc = nn.Linear(4, 4)
        self.act = lambda t: t * 2
        self.sign = lambda t: t if t.sum() > 0 else -t

    def forward(self, x):
        h = self.act(self.fc(x))
        h = self.sign(h)
        if h.mean() > 1:
            return h
        return -h


def test_lambdas_held_as_attributes() -> None:
    torch.manual_seed(0)
    m = LambdaAttributes().eval()
    cm = dycl_jax.convert(m)
    for s in (3.0, -3.0, 0.1):
        x = torch.full((1, 4), s) + torch.arange(4.0)
        with torch.no_grad():
            assert_same(cm(x), m(x))


@dataclasses.dataclass
class _EncoderOut:
    last_hidden_state: torch.Tensor
    hidden_states: tuple | None = None


class _Encoder(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.lin = nn.Linear(4, 4)

    def forward(self, x):
        h = torch.tanh(self.lin(x))
        return _EncoderOut(h, (x, h))


class _GreedyOverEncoder(nn.Module):
    """The encoder-decoder loop: a library-built output object (a dataclass, as HF's
    ModelOutput) made inside a region and read by later ones."""

    def __init__(self) -> None:
        super().__init__()
        self.encoder = _Encoder()
        self.out = nn.Linear(4, 4)

    def forward(self, x):
        enc = self.encoder(x)
        h = enc.last_hidden_state
        for _ in range(3):
            h = self.out(h) + enc.hidden_states[0]
            if h.sum() < 0:
                break
        return h, enc


def test_dataclass_outputs_made_inside_a_region_cross_region_boundaries() -> None:
    torch.manual_seed(0)
    m = _GreedyOverEncoder().eval()
    cm = dycl_jax.convert(m)
    for s in (1.0, -1.0, 3.0):
        x = torch.randn(2, 4) * s
        with torch.no_grad():
            assert_same(cm(x), m(x))
