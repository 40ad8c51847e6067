"""Small dynamic models, one per control-flow construct, written the way DyNN authors write them."""

from __future__ import annotations

import numpy as np
import torch
import torch.nn as nn
import torch.nn.functional as F


class EarlyExit(nn.Module):
    """return inside a loop, Python list accumulation, .item() condition, torch.stack of a list."""

    def __init__(self, threshold: float = 0.4) -> None:
        super().__init__()
        self.blocks = nn.ModuleList([nn.Linear(8, 8) for _ in range(3)])
        self.heads = nn.ModuleList([nn.Linear(8, 4) for _ in range(3)])
        self.threshold = threshold

    def forward(self, x):
        outs = []
        for i, blk in enumerate(self.blocks):
            x = torch.relu(blk(x))
            logits = self.heads[i](x)
            conf = F.softmax(logits, dim=-1).max()
            outs.append(logits)
            if conf.item() > self.threshold:
                return logits, i
        return torch.stack(outs).sum(0), -1


class SkipGate(nn.Module):
    """if on a 0-d tensor (no .item()), if/elif/else, a helper method."""

    def __init__(self) -> None:
        super().__init__()
        self.gate = nn.Linear(6, 1)
        self.a = nn.Linear(6, 6)
        self.b = nn.Linear(6, 6)

    def _score(self, x):
        return torch.sigmoid(self.gate(x)).mean()

    def forward(self, x):
        s = self._score(x)
        if s > 0.6:
            x = self.a(x)
        elif s > 0.4:
            x = self.b(x) * 2
        else:
            x = -x
        return x


class Halting(nn.Module):
    """while on a tensor condition with a step counter and a bounded trip count (break)."""

    def __init__(self, max_steps: int = 6) -> None:
        super().__init__()
        self.cell = nn.GRUCell(4, 4)
        self.halt = nn.Linear(4, 1)
        self.max_steps = max_steps

    def forward(self, x):
        h = torch.zeros(x.shape[0], 4)
        total = torch.zeros(x.shape[0], 1)
        steps = 0
        while (total < 0.99).any():
            h = self.cell(x, h)
            total = total + torch.sigmoid(self.halt(h))
            steps += 1
            if steps >= self.max_steps:
                break
        return h, steps


class GreedyDecoder(nn.Module):
    """for with break on an EOS token read with .item(); tokens list; torch.cat of the list."""

    def __init__(self, vocab: int = 7, eos: int = 0, max_len: int = 8) -> None:
        super().__init__()
        self.emb = nn.Embedding(vocab, 5)
        self.cell = nn.GRUCell(5, 5)
        self.out = nn.Linear(5, vocab)
        self.eos = eos
        self.max_len = max_len

    def forward(self, h, start):
        tok = start
        tokens = []
        for _ in range(self.max_len):
            h = self.cell(self.emb(tok), h)
            tok = self.out(h).argmax(-1)
            tokens.append(tok)
            if tok.item() == self.eos:
                break
        return torch.cat(tokens)


class MoE(nn.Module):
    """a tensor used as a Python index (self.experts[k]) and int() of a tensor."""

    def __init__(self, n: int = 3) -> None:
        super().__init__()
        self.router = nn.Linear(4, n)
        self.experts = nn.ModuleList([nn.Linear(4, 4) for _ in range(n)])

    def forward(self, x):
        k = int(self.router(x).mean(0).argmax())
        y = self.experts[k](x)
        idx = self.router(y).mean(0).argmax()
        return self.experts[idx](y), k


class GatedBlock(nn.Module):
    """A submodule with its own dynamic forward."""

    def __init__(self, d: int) -> None:
        super().__init__()
        self.gate = nn.Linear(d, 1)
        self.body = nn.Sequential(nn.Linear(d, d), nn.ReLU())

    def forward(self, x):
        if torch.sigmoid(self.gate(x)).mean().item() > 0.5:
            return x + self.body(x)
        return x


class NestedSkip(nn.Module):
    """Loop over a ModuleList of dynamic submodules, counter of executed blocks kept on the host."""

    def __init__(self) -> None:
        super().__init__()
        self.blocks = nn.ModuleList([GatedBlock(6) for _ in range(4)])
        self.head = nn.Linear(6, 2)

    def forward(self, x):
        for blk in self.blocks:
            x = blk(x)
        return {"logits": self.head(x), "features": x}


class Expressions(nn.Module):
    """Conditional expression, and/or/not on tensors mixed with Python, continue, no_grad."""

    def __init__(self) -> None:
        super().__init__()
        self.lin = nn.Linear(5, 5)
        self.use_gate = True

    def forward(self, x, scale: float = 1.0):
        with torch.no_grad():
            y = self.lin(x) * scale
        z = y if y.sum() > 0 else -y
        if self.use_gate and y.mean() > 0:
            z = z + 1
        if not (y.max() > 0.5) or scale > 2:
            z = z * 3
        acc = torch.zeros_like(z)
        for i in range(3):
            if z[0, i] < 0:
                continue
            acc = acc + z * i
        return z, acc


class RaiseCatch(nn.Module):
    """An exception raised on a tensor condition and caught in forward."""

    def __init__(self) -> None:
        super().__init__()
        self.lin = nn.Linear(3, 3)

    def _check(self, y):
        if y.abs().max() > 1.0:
            raise ValueError("too large")
        return y

    def forward(self, x):
        y = self.lin(x)
        try:
            y = self._check(y)
            status = 0
        except ValueError:
            y = torch.tanh(y)
            status = 1
        return y, status


class Counter(nn.Module):
    """Module-attribute write in forward (a statistics counter) and a tensor-valued loop bound."""

    def __init__(self) -> None:
        super().__init__()
        self.lin = nn.Linear(3, 3)
        self.calls = 0

    def forward(self, x, n):
        self.calls += 1
        for _ in range(int(n.item())):
            x = torch.tanh(self.lin(x))
        return x


class Rebound(nn.Module):
    """The DyNN idiom of selecting the dynamic path with ``model.forward = model.early_exit``."""

    def __init__(self) -> None:
        super().__init__()
        self.l1 = nn.Linear(4, 4)
        self.l2 = nn.Linear(4, 4)
        self.exit = nn.Linear(4, 2)
        self.final = nn.Linear(4, 2)

    def forward(self, x):
        return self.final(self.l2(self.l1(x)))

    def early_exit(self, x):
        h = self.l1(x)
        out = self.exit(h)
        if F.softmax(out, 1).max().item() > 0.6:
            return out, 1
        return self.final(self.l2(h)), 2


class RNNGate(nn.Module):
    """SkipNet's recurrent gate: hidden state kept on the module and rewritten every call."""

    def __init__(self, d: int) -> None:
        super().__init__()
        self.rnn = nn.LSTMCell(d, 4)
        self.proj = nn.Linear(4, 1)
        self.hidden = None

    def init_hidden(self, batch_size):
        return (torch.zeros(batch_size, 4), torch.zeros(batch_size, 4))

    def forward(self, x):
        self.hidden = self.rnn(x, self.hidden)
        prob = torch.sigmoid(self.proj(self.hidden[0]))
        return (prob > 0.5).float(), prob


class RecurrentSkip(nn.Module):
    """Blocks skipped by a shared recurrent gate whose state lives in a module attribute."""

    def __init__(self) -> None:
        super().__init__()
        self.blocks = nn.ModuleList([nn.Linear(6, 6) for _ in range(4)])
        self.control = RNNGate(6)

    def forward(self, x):
        self.control.hidden = self.control.init_hidden(x.size(0))
        mask, prob = self.control(x)
        skipped = 0
        for blk in self.blocks:
            if mask.item() > 0.5:
                x = torch.relu(blk(x)) + x
            else:
                skipped += 1
            mask, prob = self.control(x)
        return x, prob, skipped


class Base(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.heads = nn.ModuleList([nn.Linear(4, 3) for _ in range(3)])

    def forward(self, x):
        return [h(x) for h in self.heads]


class ComprehensionSuper(Base):
    """super().forward(...), and a list comprehension with .item() inside."""

    def forward(self, x):
        outs = super().forward(x)
        confs = [F.softmax(o, -1).max().item() for o in outs]
        best = max(range(len(confs)), key=lambda i: confs[i])
        return outs[best], best


class NumpyCondition(nn.Module):
    """Condition computed with numpy on a host copy (``.detach().cpu().numpy()``)."""

    def __init__(self) -> None:
        super().__init__()
        self.lin = nn.Linear(4, 3)

    def forward(self, x):
        scores = self.lin(x)
        probs = F.softmax(scores, -1).detach().cpu().numpy()
        if np.max(probs) > 0.5:
            return scores, int(np.argmax(probs))
        return -scores, -1


class LocalHelper(nn.Module):
    """A helper defined inside forward (a new function object on every call)."""

    def __init__(self) -> None:
        super().__init__()
        self.lin = nn.Linear(4, 4)
        self.scale = 2.0

    def forward(self, x):
        def step(h):
            return torch.tanh(self.lin(h)) * self.scale

        for _ in range(3):
            x = step(x)
            if x.sum() < 0:
                break
        return x


class MaskSelect(nn.Module):
    """Boolean-mask indexing (data-dependent shape): keep confident rows, refine only those."""

    def __init__(self) -> None:
        super().__init__()
        self.head = nn.Linear(4, 3)
        self.refine = nn.Linear(4, 4)

    def forward(self, x):
        conf = F.softmax(self.head(x), -1).max(-1)[0]
        keep = (conf > 0.5) & (x.sum(-1) > -10)
        picked = x[keep]
        if picked.shape[0] == 0:
            return x.sum(), 0
        return self.refine(picked).sum(), picked.shape[0]
