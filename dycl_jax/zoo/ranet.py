"""RANet: resolution-adaptive early exit.

L. Yang, Y. Han, X. Chen, S. Song, J. Dai, G. Huang, "Resolution Adaptive Networks for
Efficient Inference", CVPR 2020. An initial layer builds a feature pyramid. Sub-networks run from
the lowest resolution upwards; each has its own classifier, and a sample that is already
confident on the cheap low-resolution features exits there. A higher-resolution sub-network
fuses the previous sub-network's block features (upsample + concat + 1x1 conv) into its own
blocks, so `prev_feats` is a Python list carried across the outer loop (`None` at first).
Returns `(logits, exit_index)`.
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


def conv_bn_relu(cin, cout, stride=1, k=3):
    return nn.Sequential(
        nn.Conv2d(cin, cout, k, stride, k // 2, bias=False),
        nn.BatchNorm2d(cout),
        nn.ReLU(inplace=True),
    )


class DenseLayer(nn.Module):
    """Bottleneck conv whose output is concatenated to its input, then compressed back."""

    def __init__(self, channels, growth):
        super().__init__()
        self.conv = nn.Sequential(
            conv_bn_relu(channels, growth * 2, k=1), conv_bn_relu(growth * 2, growth)
        )
        self.compress = conv_bn_relu(channels + growth, channels, k=1)

    def forward(self, x):
        return self.compress(torch.cat([x, self.conv(x)], dim=1))


class UpFuse(nn.Module):
    """Fuse a lower-resolution feature map into this scale's features."""

    def __init__(self, channels, low_channels):
        super().__init__()
        self.conv = conv_bn_relu(channels + low_channels, channels, k=1)

    def forward(self, x, low):
        low = F.interpolate(low, size=x.shape[2:], mode="bilinear", align_corners=False)
        return self.conv(torch.cat([x, low], dim=1))


class ClassifierModule(nn.Module):
    def __init__(self, channels, num_classes):
        super().__init__()
        self.conv = conv_bn_relu(channels, channels, stride=2)
        self.linear = nn.Linear(channels, num_classes)

    def forward(self, x):
        x = self.conv(x)
        x = F.adaptive_avg_pool2d(x, 1)
        return self.linear(x.view(x.size(0), -1))


class RANet(nn.Module):
    def __init__(self, channels, num_blocks, growth, num_classes=10):
        """`channels[s]` is the width at scale s (0 = full resolution, each next one halves)."""
        super().__init__()
        self.num_scales = len(channels)
        self.initial = nn.ModuleList()
        cin = 3
        for s, c in enumerate(channels):
            self.initial.append(conv_bn_relu(cin, c, stride=1 if s == 0 else 2))
            cin = c
        self.subnets = nn.ModuleList()
        self.fusions = nn.ModuleList()
        self.classifiers = nn.ModuleList()
        for k in range(self.num_scales):  # k = 0 is the lowest resolution
            c = channels[self.num_scales - 1 - k]
            self.subnets.append(nn.ModuleList(DenseLayer(c, growth) for _ in range(num_blocks)))
            if k == 0:
                self.fusions.append(nn.ModuleList())
            else:
                low = channels[self.num_scales - k]
                self.fusions.append(nn.ModuleList(UpFuse(c, low) for _ in range(num_blocks)))
            self.classifiers.append(ClassifierModule(c, num_classes))
        self.exit_thresholds = [0.5] * (self.num_scales - 1)

    def _pyramid(self, x):
        feats = []
        for layer in self.initial:
            x = layer(x)
            feats.append(x)
        return feats

    def forward(self, x):
        pyramid = self._pyramid(x)
        prev_feats = None
        for k, subnet in enumerate(self.subnets):
            h = pyramid[self.num_scales - 1 - k]
            feats = []
            for j, block in enumerate(subnet):
                if prev_feats is not None:
                    h = self.fusions[k][j](h, prev_feats[j])
                h = block(h)
                feats.append(h)
            logits = self.classifiers[k](h)
            if k < self.num_scales - 1:
                confidence = F.softmax(logits, dim=1).max()
                if confidence.item() >= self.exit_thresholds[k]:
                    return logits, k
            prev_feats = feats
        return logits, self.num_scales - 1

    def forward_all(self, x):
        pyramid = self._pyramid(x)
        prev_feats, outs = None, []
        for k, subnet in enumerate(self.subnets):
            h, feats = pyramid[self.num_scales - 1 - k], []
            for j, block in enumerate(subnet):
                if prev_feats is not None:
                    h = self.fusions[k][j](h, prev_feats[j])
                h = block(h)
                feats.append(h)
            outs.append(self.classifiers[k](h))
            prev_feats = feats
        return outs

    @torch.no_grad()
    def calibrate(self, x):
        calibrate_batchnorm(self, lambda: self.forward_all(x))
        outs = self.forward_all(x)[:-1]
        conf = torch.stack([F.softmax(o, dim=1).max(1).values for o in outs], 1)
        self.exit_thresholds = split_thresholds(conf)


SIZES = {
    "small": {"channels": (8, 16, 16), "num_blocks": 2, "growth": 4, "img": 16},
    "paper": {"channels": (32, 64, 128), "num_blocks": 4, "growth": 16, "img": 32},
}


example_inputs = image_inputs(SIZES)


def build(size="small", seed=0):
    spec = dict(check_size(size, SIZES))
    spec.pop("img")
    return calibrated(lambda: RANet(**spec), example_inputs, size, seed)


inputs_for_paths = paths_from(example_inputs)


ENTRIES = [
    ZooEntry(
        name="ranet",
        family="ranet",
        build=build,
        example_inputs=example_inputs,
        inputs_for_paths=inputs_for_paths,
        paths="exit after the low-, mid- or full-resolution sub-network when max softmax >= "
        "its threshold; returns (logits, exit_index)",
        paper="Yang et al., Resolution Adaptive Networks, CVPR 2020",
        supports_batch=True,
    )
]
