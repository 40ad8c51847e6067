"""Adaptive computation time: an ACT RNN and a Universal-Transformer-style halting encoder.

* A. Graves, "Adaptive Computation Time for Recurrent Neural Networks", arXiv 1603.08983, 2016.
  For every input step the RNN cell "ponders": it is applied repeatedly, each application
  emitting a halting probability, `while` the accumulated halting sum stays below `1 - eps` (and
  fewer than `max_ponder` steps ran); the last step takes the remainder. The state and output
  are the halting-weighted means. Batch 1 (`.item()` in the `while` test).
* M. Dehghani, S. Gouws, O. Vinyals, J. Uszkoreit, L. Kaiser, "Universal Transformers", ICLR
  2019. One shared transformer layer is applied to all positions repeatedly; each position halts
  on its own (ACT per position) and the loop runs `while ((halting_probability < threshold) &
  (n_updates < max_hop)).byte().any()` — a tensor-valued `while` that works for any batch.
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import nn

from dycl_jax.zoo._common import (
    CALIB_SEED_OFFSET,
    ZooEntry,
    check_size,
    randint,
    randn,
    seeded,
)


class ACTRNN(nn.Module):
    def __init__(self, input_size, hidden_size, num_classes, max_ponder=6, eps=0.01):
        super().__init__()
        self.hidden_size = hidden_size
        self.cell = nn.GRUCell(input_size + 1, hidden_size)  # +1: the "first ponder step" flag
        self.halting_unit = nn.Linear(hidden_size, 1)
        self.out = nn.Linear(hidden_size, num_classes)
        self.max_ponder = max_ponder
        self.eps = eps

    def _halt(self, state):
        return torch.sigmoid(self.halting_unit(state)).squeeze(1)

    def ponder(self, x_t, state):
        halting_sum = x_t.new_zeros(x_t.size(0))
        acc_state = torch.zeros_like(state)
        n = 0
        while halting_sum.item() < 1.0 - self.eps and n < self.max_ponder:
            flag = x_t.new_full((x_t.size(0), 1), 1.0 if n == 0 else 0.0)
            state = self.cell(torch.cat([x_t, flag], dim=1), state)
            p = self._halt(state)
            n += 1
            if (halting_sum + p).item() > 1.0 - self.eps or n == self.max_ponder:
                p = 1.0 - halting_sum  # the remainder
            acc_state = acc_state + p.unsqueeze(1) * state
            halting_sum = halting_sum + p
        return acc_state, n

    def forward(self, inputs):
        """inputs: (batch=1, seq, features). Returns logits per step and ponder counts."""
        state = inputs.new_zeros(inputs.size(0), self.hidden_size)
        outputs, ponder_steps = [], []
        for t in range(inputs.size(1)):
            state, n = self.ponder(inputs[:, t], state)
            outputs.append(self.out(state))
            ponder_steps.append(n)
        return torch.stack(outputs, dim=1), ponder_steps


class UTLayer(nn.Module):
    """The shared transition: pre-norm self-attention and a feed-forward block."""

    def __init__(self, d_model, heads, d_ff):
        super().__init__()
        self.attn = nn.MultiheadAttention(d_model, heads, batch_first=True)
        self.norm1 = nn.LayerNorm(d_model)
        self.norm2 = nn.LayerNorm(d_model)
        self.ff = nn.Sequential(nn.Linear(d_model, d_ff), nn.ReLU(), nn.Linear(d_ff, d_model))

    def forward(self, x):
        h = self.norm1(x)
        x = x + self.attn(h, h, h, need_weights=False)[0]
        return x + self.ff(self.norm2(x))


def timing_signal(length, channels, min_timescale=1.0, max_timescale=1.0e4):
    position = torch.arange(length, dtype=torch.float32)
    num_timescales = channels // 2
    log_inc = math.log(max_timescale / min_timescale) / max(num_timescales - 1, 1)
    inv = min_timescale * torch.exp(torch.arange(num_timescales, dtype=torch.float32) * -log_inc)
    scaled = position[:, None] * inv[None, :]
    signal = torch.cat([torch.sin(scaled), torch.cos(scaled)], dim=1)
    return F.pad(signal, (0, channels % 2)).unsqueeze(0)  # (1, length, channels)


class ACTBasic(nn.Module):
    def __init__(self, d_model):
        super().__init__()
        self.p = nn.Linear(d_model, 1)
        self.threshold = 1 - 0.1

    def forward(self, state, inputs, fn, time_enc, pos_enc, max_hop):
        halting_probability = torch.zeros(inputs.shape[0], inputs.shape[1])
        remainders = torch.zeros(inputs.shape[0], inputs.shape[1])
        n_updates = torch.zeros(inputs.shape[0], inputs.shape[1])
        previous_state = torch.zeros_like(inputs)
        step = 0
        while ((halting_probability < self.threshold) & (n_updates < max_hop)).byte().any():
            state = state + time_enc[:, : inputs.shape[1], :].type_as(inputs.data)
            state = state + pos_enc[:, step, :].unsqueeze(1).repeat(1, inputs.shape[1], 1)
            p = torch.sigmoid(self.p(state)).squeeze(-1)
            still_running = (halting_probability < 1.0).float()
            new_halted = (
                halting_probability + p * still_running > self.threshold
            ).float() * still_running
            still_running = (
                halting_probability + p * still_running <= self.threshold
            ).float() * still_running
            halting_probability = halting_probability + p * still_running
            remainders = remainders + new_halted * (1 - halting_probability)
            halting_probability = halting_probability + new_halted * remainders
            n_updates = n_updates + still_running + new_halted
            update_weights = p * still_running + new_halted * remainders
            state = fn(state)
            previous_state = (state * update_weights.unsqueeze(-1)) + (
                previous_state * (1 - update_weights.unsqueeze(-1))
            )
            step += 1
        return previous_state, (remainders, n_updates)


class UniversalTransformer(nn.Module):
    def __init__(self, vocab, d_model, heads, d_ff, max_len, max_hop, num_classes):
        super().__init__()
        self.embedding = nn.Embedding(vocab, d_model)
        self.enc = UTLayer(d_model, heads, d_ff)
        self.act_fn = ACTBasic(d_model)
        self.max_hop = max_hop
        self.register_buffer("timing_signal", timing_signal(max_len, d_model))
        self.register_buffer("position_signal", timing_signal(max_hop, d_model))
        self.norm = nn.LayerNorm(d_model)
        self.classifier = nn.Linear(d_model, num_classes)

    def forward(self, input_ids):
        x = self.embedding(input_ids)
        x, (remainders, n_updates) = self.act_fn(
            x, x, self.enc, self.timing_signal, self.position_signal, self.max_hop
        )
        logits = self.classifier(self.norm(x).mean(dim=1))
        return logits, n_updates


@torch.no_grad()
def _calibrate_bias(linear: nn.Linear, run, targets) -> None:
    """Try halting-unit biases; keep the one whose step counts (from `run`) spread most."""
    base = linear.bias.data.clone()
    best = (-1.0, 0.0)
    for b in targets:
        linear.bias.data = base + b
        counts = torch.bincount(torch.as_tensor(run()))
        p = counts[counts > 0].double() / counts.sum()
        ent = float(-(p * p.log()).sum())
        if ent > best[0] + 1e-9:
            best = (ent, b)
    linear.bias.data = base + best[1]


SIZES_ACT = {
    "small": {"input_size": 8, "hidden_size": 16, "num_classes": 4, "seq": 4},
    "paper": {"input_size": 64, "hidden_size": 128, "num_classes": 10, "seq": 20},
}
SIZES_UT = {
    "small": {"vocab": 100, "d_model": 32, "heads": 4, "d_ff": 64, "max_len": 16, "max_hop": 6,
                  "num_classes": 4, "seq": 8},
    "paper": {"vocab": 10000, "d_model": 512, "heads": 8, "d_ff": 2048, "max_len": 64, "max_hop": 8,
                  "num_classes": 10, "seq": 64},
}  # fmt: skip


def act_inputs(size="small", batch=1, seed=0):
    spec = check_size(size, SIZES_ACT)
    return (randn((batch, spec["seq"], spec["input_size"]), seed),)


def build_act(size="small", seed=0):
    spec = dict(check_size(size, SIZES_ACT))
    spec.pop("seq")
    with seeded(seed):
        model = ACTRNN(**spec).eval()
    calib = [
        act_inputs(size, 1, seed + CALIB_SEED_OFFSET + i)
        for i in range(16 if size == "small" else 8)
    ]

    def run():
        return [n for (x,) in calib for n in model(x)[1]]

    _calibrate_bias(model.halting_unit, run, [b / 4 for b in range(-12, 5)])
    return model


def ut_inputs(size="small", batch=1, seed=0):
    spec = check_size(size, SIZES_UT)
    return (randint(spec["vocab"], (batch, spec["seq"]), seed),)


def build_ut(size="small", seed=0):
    spec = dict(check_size(size, SIZES_UT))
    spec.pop("seq")
    with seeded(seed):
        model = UniversalTransformer(**spec).eval()
    calib = [
        ut_inputs(size, 1, seed + CALIB_SEED_OFFSET + i)
        for i in range(24 if size == "small" else 8)
    ]

    def run():  # loop iterations = the largest per-position update count
        return [int(model(x)[1].max()) for (x,) in calib]

    _calibrate_bias(model.act_fn.p, run, [b / 4 for b in range(-16, 9)])
    return model


def _paths(inputs):
    def inputs_for_paths(size="small", n=16, seed=0):
        return [inputs(size, 1, seed + i) for i in range(n)]

    return inputs_for_paths


ENTRIES = [
    ZooEntry(
        name="act_rnn",
        family="act",
        build=build_act,
        example_inputs=act_inputs,
        inputs_for_paths=_paths(act_inputs),
        paths="per input step, a `while halting_sum.item() < 1 - eps and n < max_ponder` ponder"
        " loop; returns (logits (1, T, C), list of ponder counts)",
        paper="Graves, Adaptive Computation Time for RNNs, 2016",
        supports_batch=False,
    ),
    ZooEntry(
        name="ut_halting",
        family="act",
        build=build_ut,
        example_inputs=ut_inputs,
        inputs_for_paths=_paths(ut_inputs),
        paths="`while ((halting < thr) & (n_updates < max_hop)).byte().any()` over a shared "
        "layer; returns (logits, per-position update counts); path = number of iterations",
        paper="Dehghani et al., Universal Transformers, ICLR 2019",
        supports_batch=True,
    ),
]
