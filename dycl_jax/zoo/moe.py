"""Top-k mixture-of-experts routers.

N. Shazeer, A. Mirhoseini, K. Maziarz, A. Davis, Q. Le, G. Hinton, J. Dean, "Outrageously Large
Neural Networks: The Sparsely-Gated Mixture-of-Experts Layer", ICLR 2017; token routing as in
W. Fedus, B. Zoph, N. Shazeer, "Switch Transformers", JMLR 2022 and the Mixtral sparse MoE block.

* `MoESeqClassifier` routes a whole sequence: the router reads the mean token, `topk` picks k
  experts, and the host loops over `zip(weights.tolist(), indices.tolist())` calling
  `self.experts[idx]` — which expert modules run is the dynamic path (batch 1).
* `MoETokenClassifier` routes every token: for each expert, `torch.where` finds the tokens that
  chose it, the expert runs on just those rows (data-dependent shapes) and `index_add_` scatters
  the result back; experts nobody chose are skipped with `continue`. Works for any batch.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from dycl_jax.zoo._common import (
    ZooEntry,
    calibrated,
    check_size,
    paths_from,
    randint,
)


class Expert(nn.Module):
    def __init__(self, d_model, d_ff):
        super().__init__()
        self.w1 = nn.Linear(d_model, d_ff)
        self.w2 = nn.Linear(d_ff, d_model)

    def forward(self, x):
        return self.w2(F.gelu(self.w1(x)))


class SeqMoE(nn.Module):
    def __init__(self, d_model, d_ff, num_experts, k):
        super().__init__()
        self.k = k
        self.router = nn.Linear(d_model, num_experts, bias=False)
        self.experts = nn.ModuleList(Expert(d_model, d_ff) for _ in range(num_experts))

    def forward(self, x):
        gates = F.softmax(self.router(x.mean(dim=1)), dim=-1)  # (1, E)
        weights, indices = torch.topk(gates, self.k, dim=-1)
        weights = weights / weights.sum(dim=-1, keepdim=True)
        out = torch.zeros_like(x)
        for w, idx in zip(weights[0].tolist(), indices[0].tolist()):
            out = out + w * self.experts[idx](x)
        return out, indices


class TokenMoE(nn.Module):
    def __init__(self, d_model, d_ff, num_experts, k):
        super().__init__()
        self.k = k
        self.num_experts = num_experts
        self.router = nn.Linear(d_model, num_experts, bias=False)
        self.experts = nn.ModuleList(Expert(d_model, d_ff) for _ in range(num_experts))

    def forward(self, hidden_states):
        batch, seq, d = hidden_states.shape
        x = hidden_states.view(-1, d)
        routing_weights = F.softmax(self.router(x), dim=1)
        routing_weights, selected = torch.topk(routing_weights, self.k, dim=-1)
        routing_weights = routing_weights / routing_weights.sum(dim=-1, keepdim=True)
        out = torch.zeros_like(x)
        for expert_idx in range(self.num_experts):
            token_idx, slot = torch.where(selected == expert_idx)
            if token_idx.shape[0] == 0:
                continue
            current = self.experts[expert_idx](x[token_idx])
            current = current * routing_weights[token_idx, slot, None]
            out.index_add_(0, token_idx, current)
        return out.view(batch, seq, d), selected.view(batch, seq, self.k)


class Block(nn.Module):
    def __init__(self, d_model, heads, moe):
        super().__init__()
        self.norm1 = nn.LayerNorm(d_model)
        self.qkv = nn.Linear(d_model, 3 * d_model)
        self.proj = nn.Linear(d_model, d_model)
        self.heads = heads
        self.norm2 = nn.LayerNorm(d_model)
        self.moe = moe

    def forward(self, x):
        b, n, d = x.shape
        q, k, v = self.qkv(self.norm1(x)).chunk(3, dim=-1)
        q, k, v = (t.view(b, n, self.heads, d // self.heads).transpose(1, 2) for t in (q, k, v))
        att = F.scaled_dot_product_attention(q, k, v)
        x = x + self.proj(att.transpose(1, 2).reshape(b, n, d))
        moe_out, routes = self.moe(self.norm2(x))
        return x + moe_out, routes


class MoEClassifier(nn.Module):
    def __init__(self, moe_cls, vocab, d_model, heads, d_ff, num_experts, k, layers, max_len,
                 num_classes):  # fmt: skip
        super().__init__()
        self.embed = nn.Embedding(vocab, d_model)
        self.pos = nn.Parameter(torch.randn(1, max_len, d_model) * 0.02)
        self.blocks = nn.ModuleList(
            Block(d_model, heads, moe_cls(d_model, d_ff, num_experts, k)) for _ in range(layers)
        )
        self.norm = nn.LayerNorm(d_model)
        self.head = nn.Linear(d_model, num_classes)

    def forward(self, input_ids):
        x = self.embed(input_ids) + self.pos[:, : input_ids.size(1)]
        routes = []
        for block in self.blocks:
            x, r = block(x)
            routes.append(r)
        return self.head(self.norm(x).mean(dim=1)), routes

    @torch.no_grad()
    def calibrate(self, input_ids):
        """Sharpen routers: random routers see near-identical mean tokens, so rescale them."""
        x = self.embed(input_ids) + self.pos[:, : input_ids.size(1)]
        for block in self.blocks:
            h = block.norm2(x)
            if isinstance(block.moe, SeqMoE):
                h = h.mean(dim=1)
            logits = block.moe.router(h.reshape(-1, h.size(-1)))
            centred = logits - logits.mean(0)
            block.moe.router.weight.data /= centred.std().clamp_min(1e-6)
            x, _ = block(x)


SIZES = {
    "small": {"vocab": 100, "d_model": 16, "heads": 2, "d_ff": 32, "num_experts": 8, "k": 2, "layers": 2,
                  "max_len": 16, "num_classes": 4, "seq": 8},
    "paper": {"vocab": 32000, "d_model": 512, "heads": 8, "d_ff": 2048, "num_experts": 8, "k": 2, "layers": 4,
                  "max_len": 128, "num_classes": 10, "seq": 128},
}  # fmt: skip


def example_inputs(size="small", batch=1, seed=0):
    spec = check_size(size, SIZES)
    return (randint(spec["vocab"], (batch, spec["seq"]), seed),)


inputs_for_paths = paths_from(example_inputs)


def _builder(moe_cls):
    def build(size="small", seed=0):
        spec = dict(check_size(size, SIZES))
        spec.pop("seq")
        return calibrated(
            lambda: MoEClassifier(moe_cls, **spec), example_inputs, size, seed, batch=32
        )

    return build


ENTRIES = [
    ZooEntry(
        name="moe_seq",
        family="moe",
        build=_builder(SeqMoE),
        example_inputs=example_inputs,
        inputs_for_paths=inputs_for_paths,
        paths="per layer, the k experts picked by `topk(...).tolist()` run via self.experts[idx];"
        " returns (logits, per-layer expert indices)",
        paper="Shazeer et al., Sparsely-Gated Mixture-of-Experts, ICLR 2017",
        supports_batch=False,
    ),
    ZooEntry(
        name="moe_token",
        family="moe",
        build=_builder(TokenMoE),
        example_inputs=example_inputs,
        inputs_for_paths=inputs_for_paths,
        paths="per layer and expert, the tokens routed to it (torch.where, data-dependent row "
        "count) or `continue` when none; returns (logits, per-layer (B, L, k) routes)",
        paper="Fedus et al., Switch Transformers, JMLR 2022 (Mixtral-style block)",
        supports_batch=True,
    ),
]
