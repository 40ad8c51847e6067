"""Greedy decoding: a GRU decoder that stops at the end-of-sequence token.

    python -m examples.greedy_decoding

The loop, the ``argmax`` read back and the early ``break`` run in the host program; each step's
tensor work is one compiled region.
"""

from __future__ import annotations

import torch
import torch.nn as nn

import dycl_jax

EOS = 0


class GreedyDecoder(nn.Module):
    def __init__(self, vocab: int = 12, width: int = 16, max_len: int = 10) -> None:
        super().__init__()
        self.embed = nn.Embedding(vocab, width)
        self.cell = nn.GRUCell(width, width)
        self.out = nn.Linear(width, vocab)
        self.max_len = max_len

    def forward(self, h):
        token = torch.ones(1, dtype=torch.long)
        tokens = []
        for _ in range(self.max_len):
            h = self.cell(self.embed(token), h)
            token = self.out(h).argmax(-1)
            if token.item() == EOS:
                break
            tokens.append(int(token))
        return tokens


def main() -> dict[str, object]:
    torch.manual_seed(0)
    model = GreedyDecoder().eval()
    cm = dycl_jax.convert(model)
    g = torch.Generator().manual_seed(1)
    lengths = []
    for _ in range(6):
        h = torch.randn(1, 16, generator=g) * 2
        with torch.no_grad():
            want = model(h)
        got = cm(h)
        assert got == want, (got, want)
        lengths.append(len(got))
    print("decoded lengths:", lengths)
    return {"lengths": lengths}


if __name__ == "__main__":
    main()
