"""Regions whose code reads a tensor's value where the analysis could not split it out run in
PyTorch on the host for that signature: eager's own semantics, never a baked-in value. Found in
public DyNN code: an index taken from a row of ``nonzero()`` (joeynmt / OpenNMT beam search),
``np.argmax`` over a list of confidences (Shallow-Deep Networks), ``Categorical(probs=...)``
validating its argument."""

from __future__ import annotations

import numpy as np
import pytest
import torch
import torch.nn as nn

import dycl_jax
from dycl_jax.testing import assert_same


class FirstPositive(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.lin = nn.Linear(4, 4)

    def forward(self, x):
        h = self.lin(x)
        nz = (h > 0).nonzero()
        j = nz[0]
        return h[j[0], j[1]] * 2, h


class NumpyArgmax(nn.Module):
    """SDN's early_exit: the most confident exit chosen by numpy over a list of 0-d tensors."""

    def __init__(self) -> None:
        super().__init__()
        self.heads = nn.ModuleList(nn.Linear(4, 3) for _ in range(3))

    def forward(self, x):
        outs = [head(x) for head in self.heads]
        confidences = [torch.max(torch.softmax(o[0], 0)) for o in outs]
        best = np.argmax(confidences)
        return outs[best], int(best)


class Entropy(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.lin = nn.Linear(4, 3)

    def forward(self, x):
        probs = torch.softmax(self.lin(x), -1)
        ent = torch.distributions.Categorical(probs=probs).entropy()
        if ent.mean() > 1.0:
            return probs, ent
        return probs * 2, ent


class MaskFromHelper(nn.Module):
    """A boolean mask made by a helper and applied inside a region: the shape of h[m] depends
    on values, which the lowering finds (the capture itself traces it)."""

    def __init__(self) -> None:
        super().__init__()
        self.fc = nn.Linear(4, 4)

    def keep(self, h):
        return h > 0

    def forward(self, x):
        h = self.fc(x)
        m = self.keep(h)
        y = h[m].sum() * 2
        if y > 1:
            return y
        return -y


def _inputs(n: int = 6) -> list[torch.Tensor]:
    g = torch.Generator().manual_seed(0)
    return [torch.randn(1, 4, generator=g) * s for s in np.linspace(0.2, 4.0, n)]


@pytest.mark.parametrize("cls", [FirstPositive, NumpyArgmax, Entropy, MaskFromHelper])
def test_regions_reading_values_run_in_pytorch_and_match(cls) -> None:
    torch.manual_seed(0)
    m = cls().eval()
    cm = dycl_jax.convert(m)
    for x in _inputs():
        with torch.no_grad():
            want = m(x)
        assert_same(cm(x), want)
        assert_same(cm(x), want)  # again: nothing of the first call is baked in
    assert cm.stats.eager_region_calls > 0


def test_numpy_argmax_takes_every_exit() -> None:
    torch.manual_seed(0)
    m = NumpyArgmax().eval()
    cm = dycl_jax.convert(m)
    exits = set()
    for x in _inputs(12):
        with torch.no_grad():
            want = m(x)
        assert_same(cm(x), want)
        exits.add(want[1])
    assert len(exits) >= 2


def test_weights_edited_after_convert_are_read_by_pytorch_regions() -> None:
    torch.manual_seed(0)
    m = FirstPositive().eval()
    cm = dycl_jax.convert(m)
    x = _inputs()[2]
    with torch.no_grad():
        assert_same(cm(x), m(x))
        m.lin.weight.mul_(-1)
        assert_same(cm(x), m(x))


def test_apply_save_and_per_sample_refuse_a_region_run_in_pytorch(tmp_path) -> None:
    torch.manual_seed(0)
    m = FirstPositive().eval()
    cm = dycl_jax.convert(m)
    x = _inputs()[2]
    cm(x)
    with pytest.raises(dycl_jax.UnsupportedConstructError, match="runs in PyTorch"):
        cm.apply(cm.params, x)
    with pytest.raises(dycl_jax.DyclError, match="runs in PyTorch"):
        cm.save(str(tmp_path / "art"))
    with pytest.raises(dycl_jax.DyclError, match="runs in PyTorch"):
        cm.per_sample(torch.cat([x, -x]))


class GrowsList(nn.Module):
    def forward(self, x):
        outs = [x]
        nz = (x > 0).nonzero()
        outs += [x[nz[0][0]]]
        return outs


def test_a_region_run_in_pytorch_grows_the_callers_list() -> None:
    m = GrowsList().eval()
    cm = dycl_jax.convert(m)
    x = torch.tensor([[-1.0, 2.0, 3.0]])
    assert_same(cm(x), m(x))


class PointerAtt(nn.Module):
    """PointerNet: a helper stores an expanded parameter on the module (host state), then the
    attention masks with it behind a data-dependent length test (a region run in PyTorch)."""

    def __init__(self) -> None:
        super().__init__()
        self._inf = nn.Parameter(torch.FloatTensor([float("-inf")]), requires_grad=False)

    def init_inf(self, size):
        self.inf = self._inf.unsqueeze(1).expand(*size)

    def forward(self, h, mask):
        att = h * 2
        if len(att[mask]) > 0:
            att[mask] = self.inf[mask]
        return att.softmax(1)


class PointerNet(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.att = PointerAtt()
        self.calls = 0

    def forward(self, x):
        mask = torch.ones_like(x)
        self.att.init_inf(mask.size())
        outs = []
        for _ in range(x.shape[1]):
            a = self.att(x, torch.eq(mask, 0))
            idx = (a * mask).max(1)[1]
            mask = mask * (1 - torch.nn.functional.one_hot(idx, x.shape[1]).float())
            outs.append(idx)
        return torch.stack(outs, 1)


def test_regions_run_in_pytorch_read_host_state_as_tensors() -> None:
    m = PointerNet().eval()
    cm = dycl_jax.convert(m)
    g = torch.Generator().manual_seed(0)
    for _ in range(3):
        x = torch.randn(2, 4, generator=g)
        with torch.no_grad():
            assert_same(cm(x), m(x))


class PackedLSTM(nn.Module):
    """The standard variable-length encoder: torch's RNN on a PackedSequence sizes its state
    with a tensor element (batch_sizes[0]), which only eager turns into an int."""

    def __init__(self) -> None:
        super().__init__()
        self.rnn = nn.LSTM(4, 6, batch_first=True)

    def forward(self, x, lengths):
        p = nn.utils.rnn.pack_padded_sequence(x, lengths, batch_first=True, enforce_sorted=False)
        out, (h, c) = self.rnn(p)
        out, lens = nn.utils.rnn.pad_packed_sequence(out, batch_first=True)
        if h.sum() > 0:
            return out * 2, lens
        return out, lens


class _Decider:
    def decide(self, logits):
        return logits.max().item() > 0.9


class HelperReadUnseen(nn.Module):
    """A helper object the analysis cannot resolve (`ctrl or self.ctrl`) reading a value."""

    def __init__(self) -> None:
        super().__init__()
        self.fc = nn.Linear(4, 3)
        self.ctrl = _Decider()

    def forward(self, x, ctrl=None):
        ctrl = ctrl or self.ctrl
        logits = self.fc(x)
        if ctrl.decide(logits):
            return logits
        return -logits


def test_torch_code_using_a_tensor_element_as_a_size_runs_in_pytorch() -> None:
    torch.manual_seed(0)
    m = PackedLSTM().eval()
    cm = dycl_jax.convert(m)
    for lengths in ([5, 3, 2], [1, 4, 4]):
        x = torch.randn(3, 5, 4)
        with torch.no_grad():
            assert_same(cm(x, torch.tensor(lengths)), m(x, torch.tensor(lengths)))


def test_a_value_read_in_code_the_analysis_cannot_see_runs_in_pytorch() -> None:
    torch.manual_seed(0)
    m = HelperReadUnseen().eval()
    cm = dycl_jax.convert(m)
    for s in (0.1, 10.0):
        x = torch.randn(1, 4) * s
        with torch.no_grad():
            assert_same(cm(x), m(x))


class _Node:
    def __init__(self, idx, children=()) -> None:
        self.idx = idx
        self.children = list(children)
        self.state = None


class TreeEncoder(nn.Module):
    """Child-sum TreeLSTM style: a recursive helper keeps each node's state on the Python tree
    and reads the children's states (arrays held by plain objects) in later regions."""

    def __init__(self) -> None:
        super().__init__()
        self.cell = nn.Linear(8, 4)

    def recurse(self, tree, inputs):
        for child in tree.children:
            self.recurse(child, inputs)
        kept = [c for c in tree.children if c.state.abs().max() < 0.9]
        if kept:
            h = torch.stack([c.state for c in kept]).sum(0)
        else:
            h = inputs[0].new_zeros(4)
        tree.state = torch.tanh(self.cell(torch.cat([inputs[tree.idx], h])))
        return tree.state

    def forward(self, tree, inputs):
        return self.recurse(tree, inputs)


def _tree():
    return _Node(0, [_Node(1), _Node(2, [_Node(3), _Node(4)])])


def test_arrays_held_by_plain_objects_are_read_by_regions_pytorch_runs() -> None:
    torch.manual_seed(0)
    m = TreeEncoder().eval()
    cm = dycl_jax.convert(m)
    g = torch.Generator().manual_seed(1)
    for s in (0.3, 3.0):
        x = torch.randn(5, 4, generator=g) * s
        with torch.no_grad():
            assert_same(cm(_tree(), x), m(_tree(), x))


class _Recurrent(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.lstm = nn.LSTM(5, 6, num_layers=2, batch_first=True, bidirectional=True)
        self.gru = nn.GRU(12, 4)
        self.rnn = nn.RNN(4, 3, nonlinearity="relu")

    def forward(self, x, h0):
        y, (h, c) = self.lstm(x)
        z, hz = self.gru(y.transpose(0, 1), h0)
        if hz.sum() > 0:
            z = z * 2
        w, _ = self.rnn(z)
        return w, h, c, hz


def test_torch_rnn_modules_compile() -> None:
    """nn.LSTM / GRU / RNN refresh their ``_flat_weights`` list from the traced parameters on
    every call: a cache PyTorch derives, not state the region stores (it stays compiled)."""
    torch.manual_seed(0)
    m = _Recurrent().eval()
    cm = dycl_jax.convert(m)
    for s in (1.0, -1.0, 3.0):
        x, h0 = torch.randn(2, 4, 5) * s, torch.randn(1, 2, 4) * s
        with torch.no_grad():
            assert_same(cm(x, h0), m(x, h0), atol=1e-5)
    assert cm.stats.eager_region_calls == 0
    assert all(isinstance(p, nn.Parameter) for p in m.lstm._flat_weights)


class PointerStep(nn.Module):
    """shirgur/PointerNet's decoder: the chosen input gathered with a uint8 mask
    (``emb[mask.byte()]``, deprecated but accepted by eager, which reads it as a bool mask),
    in a model that also runs an LSTM. Refused with a false "PyTorch raises" claim before."""

    def __init__(self) -> None:
        super().__init__()
        self.lin = nn.Linear(4, 4)
        self.lstm = nn.LSTM(4, 4)

    def forward(self, emb):
        b, n, d = emb.shape
        emb, _ = self.lstm(emb.permute(1, 0, 2))
        emb = emb.permute(1, 0, 2)
        runner = torch.arange(n).unsqueeze(0).expand(b, -1)
        x = emb[:, 0]
        pointers = []
        for _ in range(n):
            scores = torch.bmm(emb, self.lin(x).unsqueeze(2)).squeeze(2)
            idx = scores.argmax(1)
            one_hot = (runner == idx.unsqueeze(1).expand(-1, n)).float()
            mask = one_hot.unsqueeze(2).expand(-1, -1, d).byte()
            x = emb[mask.data].view(b, d)
            pointers.append(idx.unsqueeze(1))
        return torch.cat(pointers, 1)


def test_a_uint8_mask_as_an_index_runs_its_region_in_pytorch() -> None:
    import warnings

    torch.manual_seed(0)
    m = PointerStep().eval()
    cm = dycl_jax.convert(m)
    for seed in range(2):
        x = torch.randn(2, 3, 4, generator=torch.Generator().manual_seed(seed))
        with torch.no_grad(), warnings.catch_warnings():
            warnings.simplefilter("ignore")  # (PyTorch's deprecation of uint8 indices)
            want = m(x)
        assert_same(cm(x), want)


# ---- what a region run in PyTorch is given: closures, and tensors' memory --------------------


def _solve_step(f, z, n_iter=3):
    for _ in range(n_iter):
        fz = f(z)
        a = torch.eye(z.shape[-1]) + 0.1 * fz.T @ fz
        z = torch.linalg.solve(a, fz.T).T  # (no JAX lowering: runs in PyTorch)
        if (fz - z).norm() < 1e-3:
            break
    return z


class DeqStep(nn.Module):
    """DEQ / torchdiffeq style: the solver gets `lambda z: self.f(z, x)`, made on the host,
    whose closure holds the host's x."""

    def __init__(self) -> None:
        super().__init__()
        self.inj = nn.Linear(4, 4)
        self.lin = nn.Linear(4, 4)

    def f(self, z, x):
        return torch.tanh(self.lin(z) + x)

    def forward(self, x):
        x = self.inj(x)
        z = _solve_step(lambda z: self.f(z, x), torch.zeros_like(x))
        return self.f(z, x)


def test_a_closure_given_to_a_region_run_in_pytorch_sees_tensors() -> None:
    torch.manual_seed(0)
    m = DeqStep().eval()
    cm = dycl_jax.convert(m)
    for x in _inputs(3):
        x = x.repeat(2, 1)
        with torch.no_grad():
            assert_same(cm(x), m(x), rtol=1e-4, atol=1e-5)
        with torch.no_grad():
            assert_same(cm(x), m(x), rtol=1e-4, atol=1e-5)


class SameOrCross(nn.Module):
    """fairseq's (2019) MultiheadAttention: self- or cross-attention by data_ptr()."""

    def __init__(self) -> None:
        super().__init__()
        self.in_proj = nn.Linear(4, 12)
        self.out = nn.Linear(4, 4)

    def forward(self, query, key):
        if query.data_ptr() == key.data_ptr():
            q, k, v = self.in_proj(query).chunk(3, dim=-1)
        else:
            q = self.in_proj(query)[..., :4]
            k, v = self.in_proj(key)[..., 4:].chunk(2, dim=-1)
        att = (q @ k.transpose(-1, -2)).softmax(-1)
        return self.out(att @ v)


def test_data_ptr_comparisons_run_with_memory() -> None:
    torch.manual_seed(0)
    m = SameOrCross().eval()
    cm = dycl_jax.convert(m)
    q, k = torch.randn(3, 4), torch.randn(5, 4)
    with torch.no_grad():
        assert_same(cm(q, q), m(q, q))
        assert_same(cm(q, k), m(q, k))
        assert_same(cm(k, k), m(k, k))
