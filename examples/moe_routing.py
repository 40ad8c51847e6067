"""Mixture-of-experts routing: top-2 experts per token, tokens gathered per expert.

    python -m examples.moe_routing

Each expert runs on the tokens routed to it (``x[token_idx]``, data-dependent sizes: run in
PyTorch on the host between compiled regions); experts no token chose are skipped.
"""

from __future__ import annotations

import torch
import torch.nn as nn
import torch.nn.functional as F

import dycl_jax


class TopTwoMoE(nn.Module):
    def __init__(self, width: int = 16, experts: int = 4) -> None:
        super().__init__()
        self.router = nn.Linear(width, experts, bias=False)
        self.experts = nn.ModuleList(
            nn.Sequential(nn.Linear(width, 2 * width), nn.GELU(), nn.Linear(2 * width, width))
            for _ in range(experts)
        )

    def forward(self, x):
        weights = F.softmax(self.router(x), dim=-1)
        weights, chosen = torch.topk(weights, 2, dim=-1)
        weights = weights / weights.sum(dim=-1, keepdim=True)
        out = torch.zeros_like(x)
        for e, expert in enumerate(self.experts):
            token_idx, slot = torch.where(chosen == e)
            if token_idx.shape[0] == 0:
                continue
            out.index_add_(0, token_idx, expert(x[token_idx]) * weights[token_idx, slot, None])
        return out, chosen


def main() -> dict[str, object]:
    torch.manual_seed(0)
    model = TopTwoMoE().eval()
    cm = dycl_jax.convert(model)
    g = torch.Generator().manual_seed(0)
    for tokens in (1, 5, 12):
        x = torch.randn(tokens, 16, generator=g)
        x[0] = 0.0  # a padding token: equal router logits, PyTorch's tie order decides
        with torch.no_grad():
            want = model(x)
        dycl_jax.testing.assert_same(cm(x), want)
    print(f"parity on 3 batches; {cm.stats.compiles} region signatures compiled")
    return {"compiles": cm.stats.compiles}


if __name__ == "__main__":
    main()
