"""Shared helpers for the zoo: seeding, random inputs and path-mixing calibration.

None of this code is part of a model's forward: it runs once at construction, the way a
researcher would tune a threshold on a validation batch.
"""

from __future__ import annotations

import contextlib
import math
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from typing import Any

import torch
from torch import nn

CALIB_SEED_OFFSET = 10_007  # calibration batches never share a seed with test inputs


@dataclass(frozen=True)
class ZooEntry:
    """One model of the zoo.

    `build(size, seed)` returns the model in eval mode; `example_inputs(size, batch, seed)` a tuple
    of forward arguments; `inputs_for_paths(size, n, seed)` n argument tuples (batch 1) that
    together drive the model down several dynamic paths; `paths` says what those paths are.
    """

    name: str
    family: str
    build: Callable[..., nn.Module]
    example_inputs: Callable[..., tuple]
    inputs_for_paths: Callable[..., list[tuple]]
    paths: str
    paper: str
    supports_batch: bool = False  # True when forward also runs (same semantics) for batch > 1
    sizes: tuple[str, ...] = ("small", "paper")
    notes: dict[str, Any] = field(default_factory=dict)


@contextlib.contextmanager
def seeded(seed: int) -> Iterator[None]:
    """Run a block with torch's global RNG seeded, restoring the previous state afterwards."""
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        yield


def generator(seed: int) -> torch.Generator:
    return torch.Generator().manual_seed(int(seed))


def randn(shape: tuple[int, ...], seed: int) -> torch.Tensor:
    return torch.randn(*shape, generator=generator(seed))


def randint(high: int, shape: tuple[int, ...], seed: int, low: int = 0) -> torch.Tensor:
    return torch.randint(low, high, shape, generator=generator(seed))


def check_size(size: str, table: dict) -> dict:
    if size not in table:
        raise ValueError(f"unknown size {size!r}; choose one of {sorted(table)}")
    return table[size]


@torch.no_grad()
def calibrate_batchnorm(model: nn.Module, run: Callable[[], Any]) -> None:
    """Set every BatchNorm's running statistics to those of one pass of `run()`.

    Random weights with default running stats (mean 0, var 1) blow activations up or down with
    depth; real trained models have statistics that keep them normalised. This mimics that.
    """
    bns = [m for m in model.modules() if isinstance(m, nn.modules.batchnorm._BatchNorm)]
    for bn in bns:
        bn.reset_running_stats()
        bn.momentum = None  # cumulative average over the pass
        bn.train()
    run()
    for bn in bns:
        bn.momentum = 0.1
    model.eval()


def split_thresholds(scores: torch.Tensor, exit_when_high: bool = True) -> list[float]:
    """Per-exit thresholds so that exits are taken about evenly on a calibration batch.

    `scores` is (N, K): the score of each of the K optional exits (the last, mandatory exit is not
    included). The model exits at the first i with score >= thr[i] (or <= when not
    `exit_when_high`). Thresholds are midpoints between neighbouring calibration scores, so
    nothing sits exactly on a boundary.
    """
    s_all = scores.double() if exit_when_high else -scores.double()
    n, k = s_all.shape
    remaining = torch.ones(n, dtype=torch.bool)
    thresholds: list[float] = []
    for i in range(k):
        s = s_all[remaining, i].sort().values
        m = s.numel()
        if m < 2:
            thr = float(s_all[:, i].max()) + 1.0
        else:
            stay = round(m * (1.0 - 1.0 / (k + 1 - i)))
            stay = min(max(stay, 1), m - 1)
            thr = float((s[stay - 1] + s[stay]) / 2)
        thresholds.append(thr if exit_when_high else -thr)
        remaining &= s_all[:, i] < thr
    return thresholds


def stop_step_bias(margins: torch.Tensor) -> tuple[float, float]:
    """Pick a logit bias for a stop token so that the stop step is spread over a batch.

    `margins` is (N, T): at step t, how far the stop token's logit is below the best other
    token's, on rollouts that never stop. With bias b the sequence stops at the first t with
    margin < b (or never). Returns the b (a midpoint between observed margins) whose
    distribution of stop steps has the highest entropy, and that entropy.
    """
    n, t = margins.shape
    flat = margins.flatten().double().sort().values
    mids = (flat[1:] + flat[:-1]) / 2
    step = max(1, mids.numel() // 400)
    best_b, best_h = 0.0, -1.0
    for b in mids[::step].tolist():
        hit = margins.double() < b
        first = torch.where(hit.any(1), hit.float().argmax(1), torch.full((n,), t))
        counts = torch.bincount(first, minlength=t + 1).double()
        p = counts[counts > 0] / n
        h = float(-(p * p.log()).sum())
        if h > best_h + 1e-9:
            best_b, best_h = b, h
    return best_b, best_h


def choose_stop_token(
    margins_for: Callable[[int], torch.Tensor], candidates: list[int]
) -> tuple[int, float]:
    """Among candidate stop tokens, the one (and its bias) that best spreads the stop step."""
    best = (-1.0, candidates[0], 0.0)
    for tok in candidates:
        bias, ent = stop_step_bias(margins_for(tok))
        if ent > best[0] + 1e-9:
            best = (ent, tok, bias)
    return best[1], best[2]


def entropy(p: torch.Tensor, dim: int = -1) -> torch.Tensor:
    return -(p * torch.log(p.clamp_min(1e-12))).sum(dim)


def conv_out(size: int, stride: int) -> int:
    return int(math.ceil(size / stride))


def image_inputs(sizes: dict[str, dict[str, Any]]) -> Callable[..., tuple]:
    """``example_inputs(size, batch, seed)`` for a model taking one batch of 3 x img x img images."""

    def example_inputs(size: str = "small", batch: int = 1, seed: int = 0) -> tuple:
        img = check_size(size, sizes)["img"]
        return (randn((batch, 3, img, img), seed),)

    return example_inputs


def paths_from(example_inputs: Callable[..., tuple]) -> Callable[..., list[tuple]]:
    """``inputs_for_paths(size, n, seed)``: n batch-1 inputs from consecutive seeds."""

    def inputs_for_paths(size: str = "small", n: int = 16, seed: int = 0) -> list[tuple]:
        return [example_inputs(size, 1, seed + i) for i in range(n)]

    return inputs_for_paths


def calibrated(
    make: Callable[[], nn.Module],
    example_inputs: Callable[..., tuple],
    size: str,
    seed: int,
    batch: int = 64,
) -> nn.Module:
    """``make()`` under ``seed``, in eval mode, calibrated on a fixed-seed batch of ``batch``."""
    with seeded(seed):
        model = make()
    model.eval()
    model.calibrate(example_inputs(size, batch, seed + CALIB_SEED_OFFSET)[0])
    return model.eval()
