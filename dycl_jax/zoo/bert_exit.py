"""Early-exit BERT: patience-based (PABEE) and entropy-based (DeeBERT) exits.

* W. Zhou, C. Xu, T. Ge, J. McAuley, K. Xu, F. Wei, "BERT Loses Patience: Fast and Robust
  Inference with Early Exit", NeurIPS 2020. Every layer has a classifier; inference stops once
  the predicted label has stayed the same for `patience` consecutive layers (a patience counter
  carried through the loop, `break`). Works for a batch via `torch.all`.
* J. Xin, R. Tang, J. Lee, Y. Yu, J. Lin, "DeeBERT: Dynamic Early Exiting for Accelerating BERT
  Inference", ACL 2020. Every layer has a "highway" (pooler + classifier); the encoder submodule
  returns from inside its layer loop when the highway's entropy is below that layer's threshold
  (the original raises an exception; here it returns). Batch 1 (`if tensor < float`).

The BERT itself is a from-scratch post-LayerNorm encoder with an additive attention mask.
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
    entropy,
    generator,
    paths_from,
    randint,
    seeded,
    split_thresholds,
)


class BertEmbeddings(nn.Module):
    def __init__(self, vocab, hidden, max_pos, type_vocab=2):
        super().__init__()
        self.word_embeddings = nn.Embedding(vocab, hidden, padding_idx=0)
        self.position_embeddings = nn.Embedding(max_pos, hidden)
        self.token_type_embeddings = nn.Embedding(type_vocab, hidden)
        self.LayerNorm = nn.LayerNorm(hidden, eps=1e-12)
        self.dropout = nn.Dropout(0.1)

    def forward(self, input_ids):
        seq_length = input_ids.size(1)
        position_ids = torch.arange(seq_length, dtype=torch.long).unsqueeze(0)
        token_type_ids = torch.zeros_like(input_ids)
        emb = self.word_embeddings(input_ids) + self.position_embeddings(position_ids)
        emb = emb + self.token_type_embeddings(token_type_ids)
        return self.dropout(self.LayerNorm(emb))


class BertLayer(nn.Module):
    def __init__(self, hidden, heads, intermediate):
        super().__init__()
        self.num_heads, self.head_dim = heads, hidden // heads
        self.query = nn.Linear(hidden, hidden)
        self.key = nn.Linear(hidden, hidden)
        self.value = nn.Linear(hidden, hidden)
        self.attn_out = nn.Linear(hidden, hidden)
        self.attn_norm = nn.LayerNorm(hidden, eps=1e-12)
        self.intermediate = nn.Linear(hidden, intermediate)
        self.output = nn.Linear(intermediate, hidden)
        self.out_norm = nn.LayerNorm(hidden, eps=1e-12)
        self.dropout = nn.Dropout(0.1)

    def transpose_for_scores(self, x):
        b, n, _ = x.size()
        return x.view(b, n, self.num_heads, self.head_dim).permute(0, 2, 1, 3)

    def forward(self, hidden_states, attention_mask):
        q = self.transpose_for_scores(self.query(hidden_states))
        k = self.transpose_for_scores(self.key(hidden_states))
        v = self.transpose_for_scores(self.value(hidden_states))
        scores = torch.matmul(q, k.transpose(-1, -2)) / math.sqrt(self.head_dim)
        probs = self.dropout(F.softmax(scores + attention_mask, dim=-1))
        ctx = torch.matmul(probs, v).permute(0, 2, 1, 3).contiguous()
        ctx = ctx.view(hidden_states.size(0), -1, self.num_heads * self.head_dim)
        h = self.attn_norm(self.dropout(self.attn_out(ctx)) + hidden_states)
        inter = F.gelu(self.intermediate(h))
        return self.out_norm(self.dropout(self.output(inter)) + h)


class BertPooler(nn.Module):
    def __init__(self, hidden):
        super().__init__()
        self.dense = nn.Linear(hidden, hidden)
        self.activation = nn.Tanh()

    def forward(self, hidden_states):
        return self.activation(self.dense(hidden_states[:, 0]))


def extend_mask(attention_mask):
    return (1.0 - attention_mask[:, None, None, :].float()) * -10000.0


class BertPABEE(nn.Module):
    def __init__(self, vocab, hidden, layers, heads, intermediate, max_pos, num_labels, patience):
        super().__init__()
        self.embeddings = BertEmbeddings(vocab, hidden, max_pos)
        self.layer = nn.ModuleList(BertLayer(hidden, heads, intermediate) for _ in range(layers))
        self.pooler = BertPooler(hidden)
        self.dropout = nn.Dropout(0.1)
        self.classifiers = nn.ModuleList(nn.Linear(hidden, num_labels) for _ in range(layers))
        self.patience = patience

    def forward(self, input_ids, attention_mask):
        extended_attention_mask = extend_mask(attention_mask)
        hidden_states = self.embeddings(input_ids)
        patient_counter = 0
        patient_result = None
        calculated_layer_num = 0
        for i in range(len(self.layer)):
            hidden_states = self.layer[i](hidden_states, extended_attention_mask)
            calculated_layer_num += 1
            logits = self.classifiers[i](self.dropout(self.pooler(hidden_states)))
            if patient_result is not None:
                patient_labels = patient_result.detach().argmax(dim=1)
            if patient_result is not None and torch.all(logits.argmax(dim=1).eq(patient_labels)):
                patient_counter += 1
            else:
                patient_counter = 0
            patient_result = logits
            if patient_counter == self.patience:
                break
        return patient_result, calculated_layer_num

    @torch.no_grad()
    def all_logits(self, input_ids, attention_mask):
        mask = extend_mask(attention_mask)
        h, outs = self.embeddings(input_ids), []
        for i, layer in enumerate(self.layer):
            h = layer(h, mask)
            outs.append(self.classifiers[i](self.pooler(h)))
        return torch.stack(outs, 1)  # (B, layers, labels)

    @torch.no_grad()
    def calibrate(self, input_ids, attention_mask):
        """Shift label 0's bias in every classifier so that the exit layer is spread out."""
        logits = self.all_logits(input_ids, attention_mask)
        # random poolers give nearly input-independent logits: centre and scale each classifier
        for i, clf in enumerate(self.classifiers):
            z = logits[:, i] - logits[:, i].mean(0)
            scale = z.std().clamp_min(1e-6)
            clf.weight.data /= scale
            clf.bias.data = (clf.bias.data - logits[:, i].mean(0)) / scale
        logits = self.all_logits(input_ids, attention_mask)
        n, num_layers, _ = logits.shape
        gap = (logits[..., 1:].max(-1).values - logits[..., 0]).flatten().sort().values
        best = (-1.0, 0.0)
        for delta in ((gap[1:] + gap[:-1]) / 2).tolist()[:: max(1, gap.numel() // 200)]:
            shifted = logits.clone()
            shifted[..., 0] += delta
            labels = shifted.argmax(-1)
            same = (labels[:, 1:] == labels[:, :-1]).long()
            exits = torch.full((n,), num_layers)
            run = torch.zeros(n, dtype=torch.long)
            for i in range(num_layers - 1):
                run = (run + 1) * same[:, i]
                exits = torch.where((run == self.patience) & (exits == num_layers), i + 2, exits)
            p = torch.bincount(exits).double() / n
            ent = float(-(p[p > 0] * p[p > 0].log()).sum())
            if ent > best[0]:
                best = (ent, delta)
        for clf in self.classifiers:
            clf.bias.data[0] += best[1]


class DeeBertEncoder(nn.Module):
    """Layers plus one highway per layer; returns from inside the loop on a confident highway."""

    def __init__(self, hidden, layers, heads, intermediate, num_labels):
        super().__init__()
        self.layer = nn.ModuleList(BertLayer(hidden, heads, intermediate) for _ in range(layers))
        self.highway_pooler = nn.ModuleList(BertPooler(hidden) for _ in range(layers))
        self.highway_classifier = nn.ModuleList(nn.Linear(hidden, num_labels) for _ in range(layers))  # fmt: skip
        self.early_exit_entropy = [-1.0] * layers

    def highway(self, i, hidden_states):
        return self.highway_classifier[i](self.highway_pooler[i](hidden_states))

    def forward(self, hidden_states, attention_mask):
        for i, layer_module in enumerate(self.layer):
            hidden_states = layer_module(hidden_states, attention_mask)
            if i == len(self.layer) - 1:
                break
            highway_logits = self.highway(i, hidden_states)
            highway_entropy = entropy(F.softmax(highway_logits, dim=-1))
            if highway_entropy < self.early_exit_entropy[i]:
                return hidden_states, highway_logits, i
        return hidden_states, None, len(self.layer) - 1


class DeeBert(nn.Module):
    def __init__(self, vocab, hidden, layers, heads, intermediate, max_pos, num_labels):
        super().__init__()
        self.embeddings = BertEmbeddings(vocab, hidden, max_pos)
        self.encoder = DeeBertEncoder(hidden, layers, heads, intermediate, num_labels)
        self.pooler = BertPooler(hidden)
        self.classifier = nn.Linear(hidden, num_labels)

    def forward(self, input_ids, attention_mask):
        hidden_states = self.embeddings(input_ids)
        hidden_states, highway_logits, exit_layer = self.encoder(
            hidden_states, extend_mask(attention_mask)
        )
        if highway_logits is not None:
            return highway_logits, exit_layer
        return self.classifier(self.pooler(hidden_states)), exit_layer

    @torch.no_grad()
    def calibrate(self, input_ids, attention_mask):
        h, mask, ents = self.embeddings(input_ids), extend_mask(attention_mask), []
        for i, layer in enumerate(self.encoder.layer[:-1]):
            h = layer(h, mask)
            ents.append(entropy(F.softmax(self.encoder.highway(i, h), dim=-1)))
        thr = split_thresholds(torch.stack(ents, 1), exit_when_high=False)
        self.encoder.early_exit_entropy = thr + [-1.0]


SIZES = {
    "small": {"vocab": 100, "hidden": 32, "layers": 6, "heads": 4, "intermediate": 64, "max_pos": 32,
                  "num_labels": 2, "seq": 16},
    "paper": {"vocab": 30522, "hidden": 768, "layers": 12, "heads": 12, "intermediate": 3072, "max_pos": 512,
                  "num_labels": 2, "seq": 128},
}  # fmt: skip


def example_inputs(size="small", batch=1, seed=0):
    spec = check_size(size, SIZES)
    seq = spec["seq"]
    input_ids = randint(spec["vocab"], (batch, seq), seed, low=5)
    input_ids[:, 0] = 2  # [CLS]
    lengths = torch.randint(seq // 2, seq + 1, (batch,), generator=generator(seed + 1))
    attention_mask = (torch.arange(seq)[None, :] < lengths[:, None]).long()
    input_ids = input_ids * attention_mask  # [PAD] = 0 after the sentence
    return input_ids, attention_mask


inputs_for_paths = paths_from(example_inputs)


def _model_args(size):
    spec = dict(check_size(size, SIZES))
    spec.pop("seq")
    return spec


def build_pabee(size="small", seed=0):
    with seeded(seed):
        model = BertPABEE(**_model_args(size), patience=2 if size == "small" else 3)
    model.eval()
    model.calibrate(*example_inputs(size, 64 if size == "small" else 16, seed + CALIB_SEED_OFFSET))
    return model.eval()


def build_deebert(size="small", seed=0):
    with seeded(seed):
        model = DeeBert(**_model_args(size))
    model.eval()
    model.calibrate(*example_inputs(size, 64 if size == "small" else 16, seed + CALIB_SEED_OFFSET))
    return model.eval()


ENTRIES = [
    ZooEntry(
        name="bert_pabee",
        family="bert_exit",
        build=build_pabee,
        example_inputs=example_inputs,
        inputs_for_paths=inputs_for_paths,
        paths="patience counter over layers; `break` once the label is unchanged for `patience`"
        " layers; returns (logits, number of layers run)",
        paper="Zhou et al., BERT Loses Patience (PABEE), NeurIPS 2020",
        supports_batch=True,
    ),
    ZooEntry(
        name="bert_deebert",
        family="bert_exit",
        build=build_deebert,
        example_inputs=example_inputs,
        inputs_for_paths=inputs_for_paths,
        paths="encoder submodule returns from its layer loop when a highway's entropy is below"
        " that layer's threshold; returns (logits, exit layer)",
        paper="Xin et al., DeeBERT, ACL 2020",
        supports_batch=False,
    ),
]
