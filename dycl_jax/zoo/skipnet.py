"""SkipNet: dynamic block skipping in a CIFAR ResNet-38.

X. Wang, F. Yu, Z.-Y. Dou, T. Darrell, J. E. Gonzalez, "SkipNet: Learning Dynamic Routing in
Convolutional Networks", ECCV 2018. ResNet-38 = 3 groups of 6 basic blocks. Before every block
(except the first) a gate reads the current feature map and the block runs only when the gate's
probability exceeds `gate_threshold` (0.5); a skipped block at a group boundary still applies the
downsampling shortcut. Two gate designs, as in the paper:

* `SkipNetFF` — a feed-forward gate per block (conv + pool + fc), modules registered under
  `group{g}_layer{i}` / `group{g}_gate{i}` / `group{g}_ds{i}` names and fetched with `getattr`,
  the way the authors' code does it;
* `SkipNetRNN` — one LSTM gate shared by all blocks, with a per-group projection; its hidden
  state is carried through the loop.

`forward` is the batch-1 inference form (`.item()` on the gate); `forward_masked` is the
training form that multiplies by hard masks, used here only to calibrate the gates.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from dycl_jax.zoo._common import (
    ZooEntry,
    calibrate_batchnorm,
    calibrated,
    check_size,
    image_inputs,
    paths_from,
)


class BasicBlock(nn.Module):
    def __init__(self, cin, cout, stride=1, downsample=None):
        super().__init__()
        self.conv1 = nn.Conv2d(cin, cout, 3, stride, 1, bias=False)
        self.bn1 = nn.BatchNorm2d(cout)
        self.conv2 = nn.Conv2d(cout, cout, 3, 1, 1, bias=False)
        self.bn2 = nn.BatchNorm2d(cout)
        self.downsample = downsample

    def forward(self, x):
        residual = x
        out = F.relu(self.bn1(self.conv1(x)))
        out = self.bn2(self.conv2(out))
        if self.downsample is not None:
            residual = self.downsample(x)
        return F.relu(out + residual)


def _downsample(cin, cout, stride):
    if stride == 1 and cin == cout:
        return None
    return nn.Sequential(nn.Conv2d(cin, cout, 1, stride, bias=False), nn.BatchNorm2d(cout))


class FeedforwardGate(nn.Module):
    """Conv(stride 2) + BN + ReLU, global average pool, 1x1 conv to two logits; p(execute)."""

    def __init__(self, channels):
        super().__init__()
        self.conv1 = nn.Conv2d(channels, channels, 3, 2, 1, bias=False)
        self.bn1 = nn.BatchNorm2d(channels)
        self.avg_layer = nn.AdaptiveAvgPool2d(1)
        self.linear_layer = nn.Conv2d(channels, 2, kernel_size=1)

    def forward(self, x):
        x = F.relu(self.bn1(self.conv1(x)))
        x = self.linear_layer(self.avg_layer(x)).flatten(1)
        return F.softmax(x, dim=1)[:, 1]


class SkipNetFF(nn.Module):
    def __init__(self, widths=(16, 32, 64), num_layers=(6, 6, 6), num_classes=10):
        super().__init__()
        self.num_layers = list(num_layers)
        self.gate_threshold = 0.5
        self.conv1 = nn.Conv2d(3, widths[0], 3, 1, 1, bias=False)
        self.bn1 = nn.BatchNorm2d(widths[0])
        cin = widths[0]
        for g, (w, n) in enumerate(zip(widths, num_layers)):
            for i in range(n):
                stride = 2 if (g > 0 and i == 0) else 1
                ds = _downsample(cin, w, stride)
                setattr(self, f"group{g + 1}_ds{i}", ds)
                setattr(self, f"group{g + 1}_layer{i}", BasicBlock(cin, w, stride, ds))
                setattr(self, f"group{g + 1}_gate{i}", FeedforwardGate(cin))
                cin = w
        self.avgpool = nn.AdaptiveAvgPool2d(1)
        self.fc = nn.Linear(cin, num_classes)

    def forward(self, x):
        x = F.relu(self.bn1(self.conv1(x)))
        x = self.group1_layer0(x)  # the first block always runs
        masks = [1]
        for g in range(3):
            for i in range(int(g == 0), self.num_layers[g]):
                prob = getattr(self, f"group{g + 1}_gate{i}")(x)
                if prob.item() > self.gate_threshold:
                    x = getattr(self, f"group{g + 1}_layer{i}")(x)
                    masks.append(1)
                else:
                    ds = getattr(self, f"group{g + 1}_ds{i}")
                    if ds is not None:
                        x = ds(x)
                    masks.append(0)
        x = self.avgpool(x).view(x.size(0), -1)
        return self.fc(x), masks

    def forward_masked(self, x, calibrate=False):
        """Training form: every block runs, a hard mask picks block output or shortcut."""
        x = F.relu(self.bn1(self.conv1(x)))
        x = self.group1_layer0(x)
        for g in range(3):
            for i in range(int(g == 0), self.num_layers[g]):
                gate = getattr(self, f"group{g + 1}_gate{i}")
                if calibrate:  # centre the gate logit on this batch: about half the blocks run
                    h = gate.linear_layer(gate.avg_layer(F.relu(gate.bn1(gate.conv1(x)))))
                    diff = (h[:, 1] - h[:, 0]).flatten()
                    gate.linear_layer.bias.data[1] -= diff.median()
                mask = (gate(x) > self.gate_threshold).float().view(-1, 1, 1, 1)
                ds = getattr(self, f"group{g + 1}_ds{i}")
                prev = ds(x) if ds is not None else x
                x = mask * getattr(self, f"group{g + 1}_layer{i}")(x) + (1 - mask) * prev
        return self.fc(self.avgpool(x).flatten(1))

    @torch.no_grad()
    def calibrate(self, x):
        calibrate_batchnorm(self, lambda: self.forward_masked(x))
        self.forward_masked(x, calibrate=True)


class RNNGatePolicy(nn.Module):
    """LSTM gate shared across blocks: features -> LSTM -> linear -> sigmoid."""

    def __init__(self, input_dim, hidden_dim):
        super().__init__()
        self.hidden_dim = hidden_dim
        self.rnn = nn.LSTMCell(input_dim, hidden_dim)
        self.proj = nn.Linear(hidden_dim, 1)

    def init_hidden(self, batch_size, like):
        zeros = like.new_zeros(batch_size, self.hidden_dim)
        return zeros, zeros.clone()

    def forward(self, x, hidden):
        h, c = self.rnn(x.view(x.size(0), -1), hidden)
        prob = torch.sigmoid(self.proj(h)).squeeze(1)
        return prob, (h, c)


class SkipNetRNN(nn.Module):
    def __init__(self, widths=(16, 32, 64), num_layers=(6, 6, 6), embed_dim=10, hidden_dim=10,
                 num_classes=10):  # fmt: skip
        super().__init__()
        self.gate_threshold = 0.5
        self.conv1 = nn.Conv2d(3, widths[0], 3, 1, 1, bias=False)
        self.bn1 = nn.BatchNorm2d(widths[0])
        self.groups = nn.ModuleList()
        self.gate_layers = nn.ModuleList()  # one projection per group (input channel count)
        cin = widths[0]
        for g, (w, n) in enumerate(zip(widths, num_layers)):
            blocks = nn.ModuleList()
            self.gate_layers.append(
                nn.Sequential(nn.AdaptiveAvgPool2d(1), nn.Conv2d(w, embed_dim, 1))
            )
            for i in range(n):
                stride = 2 if (g > 0 and i == 0) else 1
                blocks.append(BasicBlock(cin, w, stride, _downsample(cin, w, stride)))
                cin = w
            self.groups.append(blocks)
        self.control = RNNGatePolicy(embed_dim, hidden_dim)
        self.avgpool = nn.AdaptiveAvgPool2d(1)
        self.fc = nn.Linear(cin, num_classes)

    def forward(self, x):
        batch_size = x.size(0)
        x = F.relu(self.bn1(self.conv1(x)))
        hidden = self.control.init_hidden(batch_size, x)
        x = self.groups[0][0](x)  # the first block always runs
        prob, hidden = self.control(self.gate_layers[0](x), hidden)
        num_executed = 1
        masks = []
        for g, group in enumerate(self.groups):
            for i, block in enumerate(group):
                if g == 0 and i == 0:
                    continue
                if prob.item() > self.gate_threshold:
                    x = block(x)
                    num_executed += 1
                    masks.append(1)
                else:
                    if block.downsample is not None:
                        x = block.downsample(x)
                    masks.append(0)
                # the gate for the next block reads this block's output
                prob, hidden = self.control(self.gate_layers[g](x), hidden)
        x = self.avgpool(x).view(batch_size, -1)
        return self.fc(x), num_executed, masks

    def forward_masked(self, x, collect=None):
        """Training form with hard masks; `collect` gathers (group, gate feature, mask)."""
        x = F.relu(self.bn1(self.conv1(x)))
        hidden = self.control.init_hidden(x.size(0), x)
        x = self.groups[0][0](x)
        feature = self.gate_layers[0](x)
        prob, hidden = self.control(feature, hidden)
        for g, group in enumerate(self.groups):
            for i, block in enumerate(group):
                if g == 0 and i == 0:
                    continue
                mask = (prob > self.gate_threshold).float()
                if collect is not None:
                    collect.append((g, feature.flatten(1), mask))
                mask = mask.view(-1, 1, 1, 1)
                prev = block.downsample(x) if block.downsample is not None else x
                x = mask * block(x) + (1 - mask) * prev
                feature = self.gate_layers[g](x)
                prob, hidden = self.control(feature, hidden)
        return self.fc(self.avgpool(x).flatten(1))

    @torch.no_grad()
    def calibrate(self, x):
        calibrate_batchnorm(self, lambda: self.forward_masked(x))
        # standardise each group's gate features, so the shared LSTM is driven by the input
        seen: list = []
        self.forward_masked(x, collect=seen)
        for g, layer in enumerate(self.gate_layers):
            feats = torch.cat([f for grp, f, _ in seen if grp == g])
            mean, std = feats.mean(0), feats.std(0).clamp_min(1e-6)
            conv = layer[1]
            conv.weight.data /= std.view(-1, 1, 1, 1)
            conv.bias.data = (conv.bias.data - mean) / std
        # the projection is shared by all gates: pick its scale and bias so that every block
        # is kept for a good share of the images (mean binary entropy of the keep rates),
        # replaying the LSTM on the recorded gate features (twice, re-recording in between)
        w0, b0 = self.control.proj.weight.data.clone(), self.control.proj.bias.data.clone()
        for _ in range(2):
            seen = []
            self.forward_masked(x, collect=seen)
            first = self.gate_layers[0](self.groups[0][0](F.relu(self.bn1(self.conv1(x)))))
            feats = [first.flatten(1)] + [f for _, f, _ in seen[1:]]
            best = (-1.0, 1.0, 0.0)
            for scale in (1.0, 2.0, 4.0, 8.0):
                for shift in torch.linspace(-3, 3, 25).tolist():
                    self.control.proj.weight.data = w0 * scale
                    self.control.proj.bias.data = b0 * scale + shift
                    hidden = self.control.init_hidden(x.size(0), x)
                    rates = []
                    for f in feats:
                        prob, hidden = self.control(f, hidden)
                        rates.append((prob > self.gate_threshold).float().mean())
                    rate = torch.stack(rates).clamp(1e-6, 1 - 1e-6)
                    ent = float(-(rate * rate.log() + (1 - rate) * (1 - rate).log()).mean())
                    if ent > best[0] + 1e-9:
                        best = (ent, scale, shift)
            self.control.proj.weight.data = w0 * best[1]
            self.control.proj.bias.data = b0 * best[1] + best[2]


SIZES = {
    "small": {"widths": (4, 8, 16), "num_layers": (2, 2, 2), "img": 16},
    "paper": {"widths": (16, 32, 64), "num_layers": (6, 6, 6), "img": 32},
}


def _make_entry(kind: str) -> ZooEntry:
    cls = SkipNetFF if kind == "ff" else SkipNetRNN

    example_inputs = image_inputs(SIZES)

    def build(size="small", seed=0):
        spec = check_size(size, SIZES)
        return calibrated(
            lambda: cls(widths=spec["widths"], num_layers=spec["num_layers"]),
            example_inputs,
            size,
            seed,
        )

    inputs_for_paths = paths_from(example_inputs)

    gate = "feed-forward conv gate per block" if kind == "ff" else "shared LSTM gate"
    return ZooEntry(
        name=f"skipnet_{kind}",
        family="skipnet",
        build=build,
        example_inputs=example_inputs,
        inputs_for_paths=inputs_for_paths,
        paths=f"each gated block runs or is skipped ({gate}, `.item() > 0.5`); "
        "returns logits and the list of 0/1 block decisions",
        paper="Wang et al., SkipNet, ECCV 2018",
        supports_batch=False,
    )


ENTRIES = [_make_entry("ff"), _make_entry("rnn")]
