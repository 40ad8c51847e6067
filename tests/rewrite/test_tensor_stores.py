"""Stores into tensors: Python values written through masks whose index needs host work, a
Python number never aliasing the tensor it is written into, and in-place bitwise operators.

``top_k_top_p_filtering`` (the Hugging Face sampling helper) writes ``-inf`` through masks
computed from ``torch.topk`` (run by PyTorch on the host): the store used to run on the host,
on an immutable array (TypeError), or be refused as an alias of the Python float.
"""

from __future__ import annotations

import numpy as np
import torch
import torch.nn as nn

import dycl_jax


def top_k_top_p_filtering(logits, top_k=0, top_p=1.0, filter_value=-float("Inf")):
    if top_k > 0:
        indices_to_remove = logits < torch.topk(logits, top_k)[0][..., -1, None]
        logits[indices_to_remove] = filter_value
    if top_p < 1.0:
        sorted_logits, sorted_indices = torch.sort(logits, descending=True)
        cumulative_probs = torch.cumsum(torch.softmax(sorted_logits, dim=-1), dim=-1)
        sorted_indices_to_remove = cumulative_probs > top_p
        sorted_indices_to_remove[..., 1:] = sorted_indices_to_remove[..., :-1].clone()
        sorted_indices_to_remove[..., 0] = 0
        indices_to_remove = sorted_indices_to_remove.scatter(
            1, sorted_indices, sorted_indices_to_remove
        )
        logits[indices_to_remove] = filter_value
    return logits


class Sampler(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.proj = nn.Linear(8, 12)

    def forward(self, x, floor: float = -5.0):
        logits = self.proj(x)
        kept = top_k_top_p_filtering(logits.clone(), top_k=4, top_p=0.8)
        logits[logits < torch.topk(logits, 3)[0][..., -1, None]] = floor
        if kept.max() > 0:
            return kept.argmax(-1), logits
        return kept.argmin(-1), logits


def test_top_k_top_p_filtering_and_python_values_through_masks() -> None:
    torch.manual_seed(0)
    m = Sampler().eval()
    cm = dycl_jax.convert(m)
    g = torch.Generator().manual_seed(1)
    for scale in (0.1, 1.0, 5.0, -5.0):
        x = torch.randn(2, 8, generator=g) * scale
        with torch.no_grad():
            want = m(x)
        got = cm(x)
        np.testing.assert_array_equal(np.asarray(got[0]), want[0].numpy())
        np.testing.assert_allclose(np.asarray(got[1]), want[1].numpy(), rtol=1e-6, atol=1e-6)


class BitwiseInPlace(nn.Module):
    def forward(self, x):
        done = x[:, 0] > 0
        done |= x[:, 1] > 0
        both = x[:, 2] > 0
        both &= x[:, 3] > 0
        flip = x[:, 1] > 0
        flip ^= both
        if done.all():
            return done, both, flip, 1
        return done, both, flip, 0


def test_in_place_bitwise_operators_on_bool_tensors() -> None:
    m = BitwiseInPlace().eval()
    cm = dycl_jax.convert(m)
    g = torch.Generator().manual_seed(3)
    for shift in (0.0, 3.0, -0.5):
        x = torch.randn(5, 4, generator=g) + shift
        want = m(x)
        got = cm(x)
        for a, b in zip(got[:3], want[:3]):
            np.testing.assert_array_equal(np.asarray(a), b.numpy())
        assert got[3] == want[3]


class BatchedExit(nn.Module):
    """A batched early exit: rows leave where confident, and every remaining row at the last
    layer (``newly = ~done``); ``done`` starts as ``torch.zeros(n, dtype=torch.bool)``."""

    def __init__(self) -> None:
        super().__init__()
        self.exits = nn.ModuleList([nn.Linear(3, 3) for _ in range(3)])

    def forward(self, x):
        out = torch.zeros(x.shape[0], 3)
        done = torch.zeros(x.shape[0], dtype=torch.bool)
        for i, ex in enumerate(self.exits):
            logits = ex(x)
            newly = (~done) & (logits.amax(-1) > 0.5)
            if i == len(self.exits) - 1:
                newly = ~done
            out[newly] = logits[newly]
            done = done | newly
            x = torch.tanh(x)
        return out, done


class TokenKeep(nn.Module):
    """DynamicViT-style keeping of tokens: a mask inside an index tuple, and a mask indexed."""

    def forward(self, x):
        s = x.sum(-1)
        ok = (s > 0)[0]
        return x[:, s[0] > 0], x[0][ok]


def test_masks_assigned_from_each_other_and_masks_in_index_tuples() -> None:
    torch.manual_seed(0)
    m = BatchedExit().eval()
    cm = dycl_jax.convert(m)
    g = torch.Generator().manual_seed(4)
    for scale in (0.2, 1.0, 4.0):
        x = torch.randn(5, 3, generator=g) * scale
        with torch.no_grad():
            want = m(x)
        got = cm(x)
        np.testing.assert_allclose(np.asarray(got[0]), want[0].numpy(), rtol=1e-6, atol=1e-6)
        np.testing.assert_array_equal(np.asarray(got[1]), want[1].numpy())
    t = TokenKeep().eval()
    ct = dycl_jax.convert(t)
    for _ in range(3):
        x = torch.randn(1, 6, 2, generator=g)
        for a, b in zip(ct(x), t(x)):
            np.testing.assert_array_equal(np.asarray(a), b.numpy())


class MaskInTuple(nn.Module):
    """Masks inside index tuples, read, written and updated in place."""

    def forward(self, x):
        keep = x[0].sum(1) > 0
        y = x * 1.0
        y[:, keep] += 1
        z = x * 1.0
        z[:, keep] = z[:, keep] * 3
        w = x[..., x[0, 0] > 0]
        if y.sum() > 0:
            return y, z, w
        return -y, z, w


def test_masks_inside_index_tuples_read_and_written() -> None:
    m = MaskInTuple().eval()
    cm = dycl_jax.convert(m)
    g = torch.Generator().manual_seed(0)
    for _ in range(4):
        x = torch.randn(2, 3, 5, generator=g)
        for a, b in zip(cm(x), m(x)):
            np.testing.assert_allclose(np.asarray(a), b.numpy(), rtol=1e-6, atol=1e-6)
