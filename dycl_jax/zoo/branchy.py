"""BranchyNet: side branches that exit when the prediction entropy is low.

S. Teerapittayanon, B. McDanel, H. T. Kung, "BranchyNet: Fast Inference via Early Exiting from
Deep Neural Networks", ICPR 2016. B-AlexNet style: a trunk of conv stages, each but the last
followed by a small branch (conv + fc). At inference a sample leaves at the first branch whose
softmax entropy is below that branch's threshold `T_i`; otherwise the trunk's own head decides.
The exit test reads a tensor (`.item()`) computed by the helper method `self._entropy`; the
trunk and branches are zipped `nn.ModuleList`s and the model returns `(logits, exit_index)`.
For a batch, the sample-wise test becomes "every sample is confident" (the max entropy).
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


def conv_stage(cin, cout, pool=True):
    layers = [nn.Conv2d(cin, cout, 3, 1, 1), nn.BatchNorm2d(cout), nn.ReLU(inplace=True)]
    if pool:
        layers.append(nn.MaxPool2d(3, stride=2, padding=1))
    return nn.Sequential(*layers)


class Branch(nn.Module):
    def __init__(self, cin, width, num_classes):
        super().__init__()
        self.conv = conv_stage(cin, width)
        self.pool = nn.AdaptiveAvgPool2d(2)
        self.fc = nn.Linear(width * 4, num_classes)

    def forward(self, x):
        return self.fc(torch.flatten(self.pool(self.conv(x)), 1))


class BranchyNet(nn.Module):
    def __init__(self, widths, branch_width, fc_dim, num_classes=10):
        super().__init__()
        self.stages = nn.ModuleList()
        cin = 3
        for w in widths:
            self.stages.append(conv_stage(cin, w))
            cin = w
        # a branch after every stage but the last
        self.branches = nn.ModuleList(Branch(w, branch_width, num_classes) for w in widths[:-1])
        self.head = nn.Sequential(
            nn.AdaptiveAvgPool2d(2),
            nn.Flatten(),
            nn.Linear(cin * 4, fc_dim),
            nn.ReLU(inplace=True),
            nn.Dropout(0.5),
            nn.Linear(fc_dim, num_classes),
        )
        self.thresholds = [0.5] * len(self.branches)

    @staticmethod
    def _entropy(logits):
        p = F.softmax(logits, dim=1)
        return -(p * torch.log(p + 1e-10)).sum(dim=1)

    def forward(self, x):
        for i, (stage, branch) in enumerate(zip(self.stages, self.branches)):
            x = stage(x)
            logits = branch(x)
            if self._entropy(logits).max().item() < self.thresholds[i]:
                return logits, i
        x = self.stages[-1](x)
        return self.head(x), len(self.branches)

    def forward_all(self, x):
        outs = []
        for stage, branch in zip(self.stages, self.branches):
            x = stage(x)
            outs.append(branch(x))
        outs.append(self.head(self.stages[-1](x)))
        return outs

    @torch.no_grad()
    def calibrate(self, x):
        calibrate_batchnorm(self, lambda: self.forward_all(x))
        ent = torch.stack([self._entropy(o) for o in self.forward_all(x)[:-1]], 1)
        self.thresholds = split_thresholds(ent, exit_when_high=False)


SIZES = {
    "small": {"widths": (8, 16, 16, 32), "branch_width": 8, "fc_dim": 32, "img": 16},
    "paper": {"widths": (64, 192, 384, 256, 256), "branch_width": 32, "fc_dim": 1024, "img": 32},
}


example_inputs = image_inputs(SIZES)


def build(size="small", seed=0):
    spec = dict(check_size(size, SIZES))
    spec.pop("img")
    return calibrated(lambda: BranchyNet(**spec), example_inputs, size, seed)


inputs_for_paths = paths_from(example_inputs)


ENTRIES = [
    ZooEntry(
        name="branchy",
        family="branchy",
        build=build,
        example_inputs=example_inputs,
        inputs_for_paths=inputs_for_paths,
        paths="exit at the first side branch whose softmax entropy < its threshold "
        "(`return` inside a zip loop), else the trunk head; returns (logits, exit_index)",
        paper="Teerapittayanon et al., BranchyNet, ICPR 2016",
        supports_batch=True,
    )
]
