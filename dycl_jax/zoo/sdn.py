"""Shallow-Deep Networks (SDN).

Y. Kaya, S. Hong, T. Dumitras, "Shallow-Deep Networks: Understanding and Mitigating Network
Overthinking", ICML 2019. Internal classifiers (ICs) are attached after some blocks of a backbone
(MobileNet, VGG16-BN, ResNet-56, WideResNet-32-4). `forward_all` returns every classifier's
output (training); `early_exit` returns the first output whose max softmax reaches that IC's
confidence threshold, together with the exit index — the dynamic path is the exit taken.

Each layer wrapper returns `(fwd, is_output, output)` as in the authors' code, so `is_output`
is a per-layer Python constant while the exit test is a tensor value read with `.item()`.
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
    split_thresholds,
)


class InternalClassifier(nn.Module):
    """Mixed max/avg pooling (learned mix `alpha`) to a quarter-size map, then a linear layer."""

    def __init__(self, input_size: int, channels: int, num_classes: int):
        super().__init__()
        red = 4 if input_size >= 4 else 1
        self.reduce = red > 1
        self.max_pool = nn.MaxPool2d(kernel_size=red)
        self.avg_pool = nn.AvgPool2d(kernel_size=red)
        self.alpha = nn.Parameter(torch.rand(1))
        self.linear = nn.Linear(channels * (input_size // red) ** 2, num_classes)

    def forward(self, x):
        if self.reduce:
            x = self.alpha * self.max_pool(x) + (1 - self.alpha) * self.avg_pool(x)
        return self.linear(x.view(x.size(0), -1))


class LayerWOutput(nn.Module):
    """A backbone block, optionally followed by an internal classifier."""

    def __init__(self, block: nn.Module, output: nn.Module | None):
        super().__init__()
        self.layers = block
        self.no_output = output is None
        self.output = output if output is not None else nn.Identity()

    def forward(self, x):
        fwd = self.layers(x)
        if self.no_output:
            return fwd, 0, None
        return fwd, 1, self.output(fwd)


# ---- backbone blocks -------------------------------------------------------------------------


def conv_bn(cin, cout, stride=1, pool=False):
    layers = [nn.Conv2d(cin, cout, 3, stride, 1, bias=False), nn.BatchNorm2d(cout), nn.ReLU()]
    if pool:
        layers.append(nn.MaxPool2d(2))
    return nn.Sequential(*layers)


class BasicBlock(nn.Module):
    """CIFAR ResNet block (ResNet-56 uses 3 stages of 9 of these)."""

    def __init__(self, cin, cout, stride=1):
        super().__init__()
        self.conv1 = nn.Conv2d(cin, cout, 3, stride, 1, bias=False)
        self.bn1 = nn.BatchNorm2d(cout)
        self.conv2 = nn.Conv2d(cout, cout, 3, 1, 1, bias=False)
        self.bn2 = nn.BatchNorm2d(cout)
        self.shortcut = nn.Sequential()
        if stride != 1 or cin != cout:
            self.shortcut = nn.Sequential(
                nn.Conv2d(cin, cout, 1, stride, bias=False), nn.BatchNorm2d(cout)
            )

    def forward(self, x):
        out = F.relu(self.bn1(self.conv1(x)))
        out = self.bn2(self.conv2(out))
        return F.relu(out + self.shortcut(x))


class WideBasic(nn.Module):
    """Pre-activation wide block with dropout (identity in eval mode)."""

    def __init__(self, cin, cout, stride=1, dropout=0.3):
        super().__init__()
        self.bn1 = nn.BatchNorm2d(cin)
        self.conv1 = nn.Conv2d(cin, cout, 3, 1, 1, bias=True)
        self.dropout = nn.Dropout(p=dropout)
        self.bn2 = nn.BatchNorm2d(cout)
        self.conv2 = nn.Conv2d(cout, cout, 3, stride, 1, bias=True)
        self.shortcut = nn.Sequential()
        if stride != 1 or cin != cout:
            self.shortcut = nn.Sequential(nn.Conv2d(cin, cout, 1, stride, bias=True))

    def forward(self, x):
        out = self.dropout(self.conv1(F.relu(self.bn1(x))))
        out = self.conv2(F.relu(self.bn2(out)))
        return out + self.shortcut(x)


class DepthwiseBlock(nn.Module):
    """MobileNet depthwise-separable convolution."""

    def __init__(self, cin, cout, stride=1):
        super().__init__()
        self.conv1 = nn.Conv2d(cin, cin, 3, stride, 1, groups=cin, bias=False)
        self.bn1 = nn.BatchNorm2d(cin)
        self.conv2 = nn.Conv2d(cin, cout, 1, 1, 0, bias=False)
        self.bn2 = nn.BatchNorm2d(cout)

    def forward(self, x):
        out = F.relu(self.bn1(self.conv1(x)))
        return F.relu(self.bn2(self.conv2(out)))


# ---- the SDN ---------------------------------------------------------------------------------


class SDN(nn.Module):
    def __init__(self, init_conv, blocks, add_output, end_layers, num_classes):
        """`blocks` is a list of (module, out_channels, out_size); `add_output` a 0/1 list."""
        super().__init__()
        self.num_classes = num_classes
        self.init_conv = init_conv
        self.layers = nn.ModuleList()
        for (block, ch, size), add in zip(blocks, add_output):
            ic = InternalClassifier(size, ch, num_classes) if add else None
            self.layers.append(LayerWOutput(block, ic))
        self.num_output = sum(add_output) + 1
        self.end_layers = end_layers
        self.exit_thresholds = [0.5] * (self.num_output - 1)
        self.early_exit_enabled = True

    def forward(self, x):
        if self.early_exit_enabled:
            return self.early_exit(x)
        return self.forward_all(x)

    def forward_all(self, x):
        outputs = []
        fwd = self.init_conv(x)
        for layer in self.layers:
            fwd, is_output, output = layer(fwd)
            if is_output:
                outputs.append(output)
        outputs.append(self.end_layers(fwd))
        return outputs

    def early_exit(self, x):
        fwd = self.init_conv(x)
        output_id = 0
        for layer in self.layers:
            fwd, is_output, output = layer(fwd)
            if is_output:
                softmax = F.softmax(output, dim=1)
                confidence = torch.max(softmax)
                if confidence.item() >= self.exit_thresholds[output_id]:
                    return output, output_id, True
                output_id += 1
        output = self.end_layers(fwd)
        return output, output_id, False

    @torch.no_grad()
    def calibrate(self, x):
        calibrate_batchnorm(self, lambda: self.forward_all(x))
        outs = self.forward_all(x)[:-1]
        conf = torch.stack([F.softmax(o, dim=1).max(1).values for o in outs], 1)
        self.exit_thresholds = split_thresholds(conf)


def _head(ch, size, num_classes, hidden=()):
    layers: list[nn.Module] = [nn.AdaptiveAvgPool2d(1) if not hidden else nn.Identity()]
    layers.append(nn.Flatten())
    cin = ch if not hidden else ch * size * size
    for h in hidden:
        layers += [nn.Linear(cin, h), nn.ReLU(), nn.Dropout(0.5)]
        cin = h
    layers.append(nn.Linear(cin, num_classes))
    return nn.Sequential(*layers)


def _vgg(cfg, ics, fc, img, nc):
    blocks, cin, size = [], 3, img
    for ch, pool in cfg:
        size = size // 2 if pool else size
        blocks.append((conv_bn(cin, ch, pool=pool), ch, size))
        cin = ch
    return SDN(nn.Sequential(), blocks, ics, _head(cin, size, nc, fc), nc)


def _resnet(widths, nblocks, ics, img, nc, wide=False):
    init = conv_bn(3, 16 if wide else widths[0])
    blocks, cin, size = [], 16 if wide else widths[0], img
    for s, (w, n) in enumerate(zip(widths, nblocks)):
        for b in range(n):
            stride = 2 if (s > 0 and b == 0) else 1
            size //= stride
            blk = WideBasic(cin, w, stride) if wide else BasicBlock(cin, w, stride)
            blocks.append((blk, w, size))
            cin = w
    end = nn.Sequential(nn.BatchNorm2d(cin), nn.ReLU()) if wide else nn.Sequential()
    end.append(_head(cin, size, nc))
    return SDN(init, blocks, ics, end, nc)


def _mobilenet(first, cfg, ics, img, nc):
    init = conv_bn(3, first)
    blocks, cin, size = [], first, img
    for item in cfg:
        ch, stride = item if isinstance(item, tuple) else (item, 1)
        size //= stride
        blocks.append((DepthwiseBlock(cin, ch, stride), ch, size))
        cin = ch
    return SDN(init, blocks, ics, _head(cin, size, nc), nc)


_VGG16 = [(64, 0), (64, 1), (128, 0), (128, 1), (256, 0), (256, 0), (256, 1)]
_VGG16 += [(512, 0), (512, 0), (512, 1), (512, 0), (512, 0), (512, 1)]
_MOBILE = [64, (128, 2), 128, (256, 2), 256, (512, 2), 512, 512, 512, 512, 512, (1024, 2), 1024]

SIZES = {
    "vgg16": {
        "small": {"make": lambda: _vgg([(8, 0), (8, 1), (16, 0), (16, 1), (32, 1)], [1, 0, 1, 1, 0], [32], 16, 10), "img": 16},
        "paper": {"make": lambda: _vgg(_VGG16, [0, 1, 0, 1, 0, 1, 0, 1, 0, 1, 0, 1, 0], [512, 512], 32, 10), "img": 32},
    },
    "resnet56": {
        "small": {"make": lambda: _resnet([4, 8, 16], [2, 2, 2], [1, 0, 1, 0, 1, 0], 16, 10), "img": 16},
        "paper": {"make": lambda: _resnet([16, 32, 64], [9, 9, 9], [0, 0, 0, 1, 0, 0, 0, 1, 0, 0, 0, 0, 0, 1, 0, 0, 0, 1, 0, 1, 0, 0, 0, 1, 0, 0, 0], 32, 10), "img": 32},
    },
    "wrn32_4": {
        "small": {"make": lambda: _resnet([8, 16, 32], [1, 2, 1], [1, 1, 0, 1], 16, 10, wide=True), "img": 16},
        "paper": {"make": lambda: _resnet([64, 128, 256], [5, 5, 5], [0, 0, 1, 0, 1, 0, 1, 0, 1, 0, 1, 0, 1, 0, 0], 32, 10, wide=True), "img": 32},
    },
    "mobilenet": {
        "small": {"make": lambda: _mobilenet(8, [16, (32, 2), 32, (64, 2), 64], [1, 0, 1, 1, 0], 16, 10), "img": 16},
        "paper": {"make": lambda: _mobilenet(32, _MOBILE, [0, 1, 0, 1, 0, 1, 0, 1, 0, 1, 0, 1, 0], 32, 10), "img": 32},
    },
}  # fmt: skip


def _make_entry(backbone: str) -> ZooEntry:
    table = SIZES[backbone]

    example_inputs = image_inputs(table)

    def build(size="small", seed=0):
        spec = check_size(size, table)
        return calibrated(spec["make"], example_inputs, size, seed)

    inputs_for_paths = paths_from(example_inputs)

    return ZooEntry(
        name=f"sdn_{backbone}",
        family="sdn",
        build=build,
        example_inputs=example_inputs,
        inputs_for_paths=inputs_for_paths,
        paths="early exit at internal classifier k (return inside the block loop) or the final head;"
        " returns (logits, exit_index, is_early)",
        paper="Kaya et al., Shallow-Deep Networks, ICML 2019",
        supports_batch=True,
    )


ENTRIES = [_make_entry(b) for b in ("mobilenet", "vgg16", "resnet56", "wrn32_4")]
