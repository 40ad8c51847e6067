"""Transformer encoder-decoder with autoregressive greedy and beam-search decoding.

A. Vaswani et al., "Attention Is All You Need", NeurIPS 2017, written in the style of "The
Annotated Transformer" (pre-norm sublayers, `subsequent_mask`). Both decoders re-run the decoder
on the growing target prefix every step, so tensor shapes change from step to step:

* `TransformerGreedy.forward` — `greedy_decode`: append the arg-max word, `break` at `<eos>`;
  returns the (1, T) token tensor (T is the path).
* `TransformerBeam.forward` — beam search with `beam_size` hypotheses kept as a (n, T) tensor;
  the host splits the top-k candidates with `.tolist()` into finished (`<eos>`) and alive ones,
  so the number of live beams shrinks; stops when `beam_size` hypotheses finished or none is
  alive. Returns (best tokens (1, T), its length-normalised score as a Python float).
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
    choose_stop_token,
    paths_from,
    randint,
    seeded,
)


def subsequent_mask(size):
    attn_shape = (1, size, size)
    return torch.triu(torch.ones(attn_shape), diagonal=1).type(torch.uint8) == 0


def attention(query, key, value, mask=None):
    d_k = query.size(-1)
    scores = torch.matmul(query, key.transpose(-2, -1)) / math.sqrt(d_k)
    if mask is not None:
        scores = scores.masked_fill(mask == 0, -1e9)
    return torch.matmul(F.softmax(scores, dim=-1), value)


class MultiHeadedAttention(nn.Module):
    def __init__(self, h, d_model):
        super().__init__()
        self.d_k, self.h = d_model // h, h
        self.linears = nn.ModuleList(nn.Linear(d_model, d_model) for _ in range(4))

    def forward(self, query, key, value, mask=None):
        if mask is not None:
            mask = mask.unsqueeze(1)  # same mask for every head
        nbatches = query.size(0)
        query, key, value = [
            lin(x).view(nbatches, -1, self.h, self.d_k).transpose(1, 2)
            for lin, x in zip(self.linears, (query, key, value))
        ]
        x = attention(query, key, value, mask=mask)
        x = x.transpose(1, 2).contiguous().view(nbatches, -1, self.h * self.d_k)
        return self.linears[-1](x)


class PositionwiseFeedForward(nn.Module):
    def __init__(self, d_model, d_ff):
        super().__init__()
        self.w_1, self.w_2 = nn.Linear(d_model, d_ff), nn.Linear(d_ff, d_model)

    def forward(self, x):
        return self.w_2(F.relu(self.w_1(x)))


class EncoderLayer(nn.Module):
    def __init__(self, d_model, h, d_ff):
        super().__init__()
        self.self_attn = MultiHeadedAttention(h, d_model)
        self.feed_forward = PositionwiseFeedForward(d_model, d_ff)
        self.norms = nn.ModuleList(nn.LayerNorm(d_model) for _ in range(2))

    def forward(self, x, mask):
        h = self.norms[0](x)
        x = x + self.self_attn(h, h, h, mask)
        return x + self.feed_forward(self.norms[1](x))


class DecoderLayer(nn.Module):
    def __init__(self, d_model, h, d_ff):
        super().__init__()
        self.self_attn = MultiHeadedAttention(h, d_model)
        self.src_attn = MultiHeadedAttention(h, d_model)
        self.feed_forward = PositionwiseFeedForward(d_model, d_ff)
        self.norms = nn.ModuleList(nn.LayerNorm(d_model) for _ in range(3))

    def forward(self, x, memory, src_mask, tgt_mask):
        h = self.norms[0](x)
        x = x + self.self_attn(h, h, h, tgt_mask)
        x = x + self.src_attn(self.norms[1](x), memory, memory, src_mask)
        return x + self.feed_forward(self.norms[2](x))


class Embeddings(nn.Module):
    def __init__(self, vocab, d_model, max_len=256):
        super().__init__()
        self.lut = nn.Embedding(vocab, d_model)
        self.d_model = d_model
        pe = torch.zeros(max_len, d_model)
        position = torch.arange(0, max_len).unsqueeze(1)
        div_term = torch.exp(torch.arange(0, d_model, 2) * -(math.log(10000.0) / d_model))
        pe[:, 0::2] = torch.sin(position * div_term)
        pe[:, 1::2] = torch.cos(position * div_term)
        self.register_buffer("pe", pe.unsqueeze(0))

    def forward(self, x):
        return self.lut(x) * math.sqrt(self.d_model) + self.pe[:, : x.size(1)]


class EncoderDecoder(nn.Module):
    def __init__(self, vocab, d_model, h, d_ff, n_layers):
        super().__init__()
        self.src_embed = Embeddings(vocab, d_model)
        self.tgt_embed = Embeddings(vocab, d_model)
        self.encoder = nn.ModuleList(EncoderLayer(d_model, h, d_ff) for _ in range(n_layers))
        self.decoder = nn.ModuleList(DecoderLayer(d_model, h, d_ff) for _ in range(n_layers))
        self.enc_norm, self.dec_norm = nn.LayerNorm(d_model), nn.LayerNorm(d_model)
        self.generator = nn.Linear(d_model, vocab)

    def encode(self, src, src_mask):
        x = self.src_embed(src)
        for layer in self.encoder:
            x = layer(x, src_mask)
        return self.enc_norm(x)

    def decode(self, memory, src_mask, tgt, tgt_mask):
        x = self.tgt_embed(tgt)
        for layer in self.decoder:
            x = layer(x, memory, src_mask, tgt_mask)
        return self.dec_norm(x)

    def log_probs(self, out):
        return F.log_softmax(self.generator(out), dim=-1)


class _Seq2Seq(nn.Module):
    pad_idx, bos_idx = 0, 1

    def __init__(self, vocab, d_model, h, d_ff, n_layers, max_len):
        super().__init__()
        self.model = EncoderDecoder(vocab, d_model, h, d_ff, n_layers)
        self.max_len = max_len
        self.eos_idx = 2

    @torch.no_grad()
    def calibrate(self, src, num_candidates=8):
        """Choose `<eos>` among frequent words and bias its logit to spread output lengths."""
        src_mask = (src != self.pad_idx).unsqueeze(-2)
        memory = self.model.encode(src, src_mask)

        def margins_for(eos):
            ys = torch.full((src.size(0), 1), self.bos_idx, dtype=torch.long)
            margins = []
            for _ in range(self.max_len - 1):
                out = self.model.decode(memory, src_mask, ys, subsequent_mask(ys.size(1)))
                logits = self.model.generator(out[:, -1])
                end = logits[:, eos].clone()
                logits[:, eos] = float("-inf")
                best = logits.max(dim=1)
                margins.append(best.values - end)
                ys = torch.cat([ys, best.indices[:, None]], dim=1)
            return torch.stack(margins, 1), ys

        _, ys = margins_for(self.eos_idx)
        counts = torch.bincount(ys[:, 1:].flatten(), minlength=self.model.generator.out_features)
        counts[: self.bos_idx + 1] = 0
        candidates = counts.topk(num_candidates).indices.tolist()
        self.eos_idx, bias = choose_stop_token(lambda t: margins_for(t)[0], candidates)
        self.model.generator.bias.data[self.eos_idx] += bias


class TransformerGreedy(_Seq2Seq):
    def forward(self, src):
        src_mask = (src != self.pad_idx).unsqueeze(-2)
        memory = self.model.encode(src, src_mask)
        ys = torch.zeros(1, 1).fill_(self.bos_idx).type_as(src.data)
        for _ in range(self.max_len - 1):
            out = self.model.decode(
                memory, src_mask, ys, subsequent_mask(ys.size(1)).type_as(src.data)
            )
            prob = self.model.log_probs(out[:, -1])
            _, next_word = torch.max(prob, dim=1)
            next_word = next_word.data[0]
            ys = torch.cat([ys, torch.zeros(1, 1).type_as(src.data).fill_(next_word)], dim=1)
            if next_word == self.eos_idx:
                break
        return ys


class TransformerBeam(_Seq2Seq):
    def __init__(self, *args, beam_size=3, **kwargs):
        super().__init__(*args, **kwargs)
        self.beam_size = beam_size

    @torch.no_grad()
    def calibrate(self, src, num_candidates=8):
        """Greedy calibration, then a shift of the `<eos>` bias tuned on real beam searches."""
        super().calibrate(src, num_candidates)
        base = self.model.generator.bias.data[self.eos_idx].item()
        best = (-1.0, 0.0)
        src_mask = (src != self.pad_idx).unsqueeze(-2)
        ys = torch.full((src.size(0), 1), self.bos_idx, dtype=torch.long)
        out = self.model.decode(self.model.encode(src, src_mask), src_mask, ys, subsequent_mask(1))
        spread = self.model.generator(out).std().item()  # the scale of a logit gap
        for k in (-1.0, -0.5, -0.25, 0.0, 0.25, 0.5, 1.0, 2.0):
            shift = k * spread
            self.model.generator.bias.data[self.eos_idx] = base + shift
            lengths = torch.tensor([self(row[None])[0].size(1) for row in src[:8]])
            p = torch.bincount(lengths).double() / lengths.numel()
            ent = float(-(p[p > 0] * p[p > 0].log()).sum())
            if ent > best[0] + 1e-9:
                best = (ent, shift)
        self.model.generator.bias.data[self.eos_idx] = base + best[1]

    def forward(self, src):
        src_mask = (src != self.pad_idx).unsqueeze(-2)
        memory = self.model.encode(src, src_mask)
        ys = torch.full((1, 1), self.bos_idx, dtype=torch.long)
        scores = torch.zeros(1)
        finished = []
        for _ in range(self.max_len - 1):
            n = ys.size(0)
            out = self.model.decode(
                memory.expand(n, -1, -1),
                src_mask.expand(n, -1, -1),
                ys,
                subsequent_mask(ys.size(1)),
            )
            log_probs = self.model.log_probs(out[:, -1])  # (n, vocab)
            vocab = log_probs.size(1)
            candidates = (scores.unsqueeze(1) + log_probs).view(-1)
            top_scores, top_ids = candidates.topk(self.beam_size)
            alive_rows, alive_scores = [], []
            for score, idx in zip(top_scores.tolist(), top_ids.tolist()):
                beam, word = idx // vocab, idx % vocab
                seq = torch.cat([ys[beam], ys.new_tensor([word])])
                if word == self.eos_idx:
                    finished.append((score / seq.size(0), seq))
                else:
                    alive_rows.append(seq)
                    alive_scores.append(score)
            if len(finished) >= self.beam_size or not alive_rows:
                break
            ys = torch.stack(alive_rows)
            scores = torch.tensor(alive_scores)
        if not finished:
            finished = [(s / row.size(0), row) for s, row in zip(scores.tolist(), ys)]
        best_score, best_seq = max(finished, key=lambda f: f[0])
        return best_seq.unsqueeze(0), best_score


SIZES = {
    "small": {"vocab": 32, "d_model": 16, "h": 2, "d_ff": 32, "n_layers": 2, "max_len": 10,
              "src_len": 6},
    "paper": {"vocab": 8000, "d_model": 512, "h": 8, "d_ff": 2048, "n_layers": 6, "max_len": 20,
              "src_len": 32},
}  # fmt: skip


def example_inputs(size="small", batch=1, seed=0):
    spec = check_size(size, SIZES)
    return (randint(spec["vocab"], (batch, spec["src_len"]), seed, low=3),)


inputs_for_paths = paths_from(example_inputs)


def _builder(cls, **extra):
    def build(size="small", seed=0):
        spec = dict(check_size(size, SIZES))
        spec.pop("src_len")
        with seeded(seed):
            model = cls(**spec, **extra).eval()
        small = size == "small"
        calib = example_inputs(size, 64 if small else 8, seed + CALIB_SEED_OFFSET)[0]
        model.calibrate(calib, num_candidates=8 if small else 3)
        return model

    return build


ENTRIES = [
    ZooEntry(
        name="decoder_greedy",
        family="decoder",
        build=_builder(TransformerGreedy),
        example_inputs=example_inputs,
        inputs_for_paths=inputs_for_paths,
        paths="greedy decoding on a growing prefix, `break` when the word is <eos> (max_len-1 "
        "steps); returns the (1, T) tokens",
        paper="Vaswani et al., Attention Is All You Need, NeurIPS 2017 (Annotated Transformer)",
        supports_batch=False,
    ),
    ZooEntry(
        name="decoder_beam",
        family="decoder",
        build=_builder(TransformerBeam, beam_size=3),
        example_inputs=example_inputs,
        inputs_for_paths=inputs_for_paths,
        paths="beam search (beam 3): live beams shrink as hypotheses end in <eos>; stops when 3 "
        "finished or none alive; returns (best (1, T) tokens, score)",
        paper="Vaswani et al., Attention Is All You Need, NeurIPS 2017 (beam search decoding)",
        supports_batch=False,
    ),
]
