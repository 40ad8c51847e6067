"""Show, Attend and Tell: image captioning with soft attention, greedy decoding.

K. Xu, J. Ba, R. Kiros, K. Cho, A. Courville, R. Salakhutdinov, R. Zemel, Y. Bengio, "Show,
Attend and Tell: Neural Image Caption Generation with Visual Attention", ICML 2015. A CNN encoder
gives an (enc x enc) grid of annotation vectors; an LSTMCell decoder attends over them each step
(with the gating scalar `beta`), predicts the next word greedily and stops with `break` when it
predicts `<end>`, or after `max_len` (10) steps. The dynamic path is the caption length.

The `<end>` logit's bias is calibrated at construction so random weights stop at varied steps.
"""

from __future__ import annotations

import torch
from torch import nn

from dycl_jax.zoo._common import (
    ZooEntry,
    calibrate_batchnorm,
    calibrated,
    check_size,
    choose_stop_token,
    image_inputs,
    paths_from,
)


class Encoder(nn.Module):
    """A small VGG-like CNN standing in for the ImageNet backbone; pooled to a fixed grid."""

    def __init__(self, channels, encoded_image_size):
        super().__init__()
        layers, cin = [], 3
        for c in channels:
            layers += [nn.Conv2d(cin, c, 3, 2, 1, bias=False), nn.BatchNorm2d(c), nn.ReLU()]
            cin = c
        self.cnn = nn.Sequential(*layers)
        self.adaptive_pool = nn.AdaptiveAvgPool2d((encoded_image_size, encoded_image_size))

    def forward(self, images):
        out = self.adaptive_pool(self.cnn(images))  # (B, C, enc, enc)
        return out.permute(0, 2, 3, 1)  # (B, enc, enc, C)


class Attention(nn.Module):
    def __init__(self, encoder_dim, decoder_dim, attention_dim):
        super().__init__()
        self.encoder_att = nn.Linear(encoder_dim, attention_dim)
        self.decoder_att = nn.Linear(decoder_dim, attention_dim)
        self.full_att = nn.Linear(attention_dim, 1)
        self.relu = nn.ReLU()
        self.softmax = nn.Softmax(dim=1)

    def forward(self, encoder_out, decoder_hidden):
        att1 = self.encoder_att(encoder_out)  # (B, P, A)
        att2 = self.decoder_att(decoder_hidden)  # (B, A)
        att = self.full_att(self.relu(att1 + att2.unsqueeze(1))).squeeze(2)  # (B, P)
        alpha = self.softmax(att)
        attention_weighted_encoding = (encoder_out * alpha.unsqueeze(2)).sum(dim=1)
        return attention_weighted_encoding, alpha


class DecoderWithAttention(nn.Module):
    def __init__(self, attention_dim, embed_dim, decoder_dim, vocab_size, encoder_dim):
        super().__init__()
        self.vocab_size = vocab_size
        self.attention = Attention(encoder_dim, decoder_dim, attention_dim)
        self.embedding = nn.Embedding(vocab_size, embed_dim)
        self.dropout = nn.Dropout(p=0.5)
        self.decode_step = nn.LSTMCell(embed_dim + encoder_dim, decoder_dim, bias=True)
        self.init_h = nn.Linear(encoder_dim, decoder_dim)
        self.init_c = nn.Linear(encoder_dim, decoder_dim)
        self.f_beta = nn.Linear(decoder_dim, encoder_dim)
        self.sigmoid = nn.Sigmoid()
        self.fc = nn.Linear(decoder_dim, vocab_size)

    def init_hidden_state(self, encoder_out):
        mean_encoder_out = encoder_out.mean(dim=1)
        return self.init_h(mean_encoder_out), self.init_c(mean_encoder_out)

    def step(self, encoder_out, prev_words, h, c):
        embeddings = self.embedding(prev_words)
        awe, alpha = self.attention(encoder_out, h)
        gate = self.sigmoid(self.f_beta(h))
        awe = gate * awe
        h, c = self.decode_step(torch.cat([embeddings, awe], dim=1), (h, c))
        scores = self.fc(self.dropout(h))
        return scores, h, c, alpha


class ShowAttendTell(nn.Module):
    def __init__(self, enc_channels, enc_size, attention_dim, embed_dim, decoder_dim, vocab_size,
                 max_len=10):  # fmt: skip
        super().__init__()
        self.encoder = Encoder(enc_channels, enc_size)
        self.decoder = DecoderWithAttention(
            attention_dim, embed_dim, decoder_dim, vocab_size, enc_channels[-1]
        )
        self.start_idx, self.end_idx = 1, 2  # word_map['<start>'], word_map['<end>']
        self.max_len = max_len

    def forward(self, image):
        encoder_out = self.encoder(image)
        batch_size, encoder_dim = encoder_out.size(0), encoder_out.size(-1)
        encoder_out = encoder_out.view(batch_size, -1, encoder_dim)  # (B, num_pixels, C)
        h, c = self.decoder.init_hidden_state(encoder_out)
        prev_words = torch.full((batch_size,), self.start_idx, dtype=torch.long)
        seq, alphas = [], []
        for _ in range(self.max_len):
            scores, h, c, alpha = self.decoder.step(encoder_out, prev_words, h, c)
            next_word = scores.argmax(dim=1)
            seq.append(next_word)
            alphas.append(alpha)
            if next_word.item() == self.end_idx:
                break
            prev_words = next_word
        return torch.stack(seq, dim=1), torch.stack(alphas, dim=1)

    @torch.no_grad()
    def _margins(self, enc, end_idx):
        """Roll out with `end_idx` masked; how far its logit is below the best word each step."""
        h, c = self.decoder.init_hidden_state(enc)
        words = torch.full((enc.size(0),), self.start_idx, dtype=torch.long)
        margins, seen = [], []
        for _ in range(self.max_len):
            scores, h, c, _ = self.decoder.step(enc, words, h, c)
            end = scores[:, end_idx].clone()
            scores[:, end_idx] = float("-inf")
            best = scores.max(dim=1)
            margins.append(best.values - end)
            words = best.indices
            seen.append(words)
        return torch.stack(margins, 1), torch.cat(seen)

    @torch.no_grad()
    def calibrate(self, images):
        """Choose `<end>` among frequent words, and its logit bias, to spread caption lengths."""
        calibrate_batchnorm(self.encoder, lambda: self.encoder(images))
        enc = self.encoder(images)
        enc = enc.view(enc.size(0), -1, enc.size(-1))
        _, seen = self._margins(enc, self.end_idx)
        candidates = torch.bincount(seen, minlength=self.decoder.vocab_size).topk(12).indices
        candidates = [t for t in candidates.tolist() if t != self.start_idx]
        self.end_idx, bias = choose_stop_token(lambda tok: self._margins(enc, tok)[0], candidates)
        self.decoder.fc.bias.data[self.end_idx] += bias


SIZES = {
    "small": {"enc_channels": (8, 16), "enc_size": 4, "attention_dim": 16, "embed_dim": 16,
                  "decoder_dim": 16, "vocab_size": 50, "img": 16},
    "paper": {"enc_channels": (64, 128, 256, 512), "enc_size": 14, "attention_dim": 512,
                  "embed_dim": 512, "decoder_dim": 512, "vocab_size": 5000, "img": 224},
}  # fmt: skip


example_inputs = image_inputs(SIZES)


def build(size="small", seed=0):
    spec = dict(check_size(size, SIZES))
    spec.pop("img")
    calib = 64 if size == "small" else 16
    return calibrated(lambda: ShowAttendTell(**spec), example_inputs, size, seed, batch=calib)


inputs_for_paths = paths_from(example_inputs)


ENTRIES = [
    ZooEntry(
        name="caption",
        family="caption",
        build=build,
        example_inputs=example_inputs,
        inputs_for_paths=inputs_for_paths,
        paths="greedy decode breaks when the word is <end> (`if next_word.item() == end: break`),"
        " max 10 steps; returns (tokens (1, T), attention maps (1, T, P)) with T the path",
        paper="Xu et al., Show, Attend and Tell, ICML 2015",
        supports_batch=False,
    )
]
