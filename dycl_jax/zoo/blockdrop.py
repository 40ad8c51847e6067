"""BlockDrop: a policy network decides, per image, which residual blocks to run.

Z. Wu, T. Nagarajan, A. Kumar, S. Rennie, L. S. Davis, K. Grauman, R. Feris, "BlockDrop: Dynamic
Inference Paths in Residual Networks", CVPR 2018. A small policy ResNet (the "agent") emits one
keep-probability per block of a FlatResNet (ResNet-110: 54 blocks in the paper); the policy is
thresholded at 0.5 and `FlatResNet.forward_single` runs block t only if some image in the batch
keeps it (`policy[:, t].sum() > 0`), masking per image — so batch 1 is an `if` per block and
larger batches still work with the authors' masking.
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


def conv3x3(cin, cout, stride=1):
    return nn.Conv2d(cin, cout, kernel_size=3, stride=stride, padding=1, bias=False)


class BasicBlock(nn.Module):
    """Residual branch only: FlatResNet adds the shortcut itself."""

    def __init__(self, cin, cout, stride=1):
        super().__init__()
        self.conv1 = conv3x3(cin, cout, stride)
        self.bn1 = nn.BatchNorm2d(cout)
        self.relu = nn.ReLU(inplace=True)
        self.conv2 = conv3x3(cout, cout)
        self.bn2 = nn.BatchNorm2d(cout)

    def forward(self, x):
        out = self.relu(self.bn1(self.conv1(x)))
        return self.bn2(self.conv2(out))


class DownsampleB(nn.Module):
    """Parameter-free shortcut: average pool, then zero-pad the channels."""

    def __init__(self, cin, cout, stride):
        super().__init__()
        self.avg = nn.AvgPool2d(stride)
        self.expand_ratio = cout // cin

    def forward(self, x):
        x = self.avg(x)
        return torch.cat([x] + [x.mul(0)] * (self.expand_ratio - 1), 1)


class FlatResNet(nn.Module):
    def __init__(self, layers, widths=(16, 32, 64), num_classes=10):
        super().__init__()
        self.layer_config = list(layers)
        self.conv1 = conv3x3(3, widths[0])
        self.bn1 = nn.BatchNorm2d(widths[0])
        self.relu = nn.ReLU(inplace=True)
        self.blocks, self.ds = nn.ModuleList(), nn.ModuleList()
        cin = widths[0]
        for i, (w, n) in enumerate(zip(widths, layers)):
            stride = 1 if i == 0 else 2
            segment = nn.ModuleList([BasicBlock(cin, w, stride)])
            segment.extend(BasicBlock(w, w) for _ in range(1, n))
            self.ds.append(nn.Sequential() if stride == 1 else DownsampleB(cin, w, stride))
            self.blocks.append(segment)
            cin = w
        self.avgpool = nn.AdaptiveAvgPool2d(1)
        self.fc = nn.Linear(cin, num_classes)

    def seed(self, x):
        return self.relu(self.bn1(self.conv1(x)))

    def forward_single(self, x, policy):
        x = self.seed(x)
        t = 0
        for segment, num_blocks in enumerate(self.layer_config):
            for b in range(num_blocks):
                residual = self.ds[segment](x) if b == 0 else x
                # skip the block when no image in the batch keeps it
                if policy[:, t].sum() > 0:
                    action = policy[:, t].contiguous()
                    action_mask = action.float().view(-1, 1, 1, 1)
                    fx = F.relu(residual + self.blocks[segment][b](x))
                    x = fx * action_mask + residual * (1 - action_mask)
                else:
                    x = residual
                t += 1
        x = self.avgpool(x).view(x.size(0), -1)
        return self.fc(x)

    def forward_full(self, x):
        x = self.seed(x)
        for segment, num_blocks in enumerate(self.layer_config):
            for b in range(num_blocks):
                residual = self.ds[segment](x) if b == 0 else x
                x = F.relu(residual + self.blocks[segment][b](x))
        return self.fc(self.avgpool(x).flatten(1))


class Policy(nn.Module):
    """The agent: a tiny FlatResNet whose head gives one keep-probability per block."""

    def __init__(self, num_blocks, widths=(16, 32, 64)):
        super().__init__()
        self.features = FlatResNet([1, 1, 1], widths)
        self.features.fc = nn.Identity()
        self.logit = nn.Linear(widths[-1], num_blocks)

    def forward(self, x):
        value = self.features.forward_full(x)
        probs = torch.sigmoid(self.logit(value))
        return probs, value


class BlockDrop(nn.Module):
    def __init__(self, layers, widths, agent_widths, num_classes=10):
        super().__init__()
        self.num_blocks = sum(layers)
        self.agent = Policy(self.num_blocks, agent_widths)
        self.rnet = FlatResNet(layers, widths, num_classes)

    def forward(self, inputs):
        probs, _ = self.agent(inputs)
        policy = probs.clone()
        policy[policy < 0.5] = 0.0
        policy[policy >= 0.5] = 1.0
        preds = self.rnet.forward_single(inputs, policy)
        return preds, policy

    @torch.no_grad()
    def calibrate(self, x):
        calibrate_batchnorm(self.agent, lambda: self.agent(x))
        calibrate_batchnorm(self.rnet, lambda: self.rnet.forward_full(x))
        # centre every block's logit: each block is kept for about half the images
        logit = self.agent.logit(self.agent(x)[1])
        self.agent.logit.bias.data -= logit.median(0).values


SIZES = {
    "small": {"layers": (2, 2, 2), "widths": (4, 8, 16), "agent": (4, 8, 16), "img": 16},
    "paper": {"layers": (18, 18, 18), "widths": (16, 32, 64), "agent": (16, 32, 64), "img": 32},
}


example_inputs = image_inputs(SIZES)


def build(size="small", seed=0):
    spec = check_size(size, SIZES)
    return calibrated(
        lambda: BlockDrop(spec["layers"], spec["widths"], spec["agent"]), example_inputs, size, seed
    )


inputs_for_paths = paths_from(example_inputs)


ENTRIES = [
    ZooEntry(
        name="blockdrop",
        family="blockdrop",
        build=build,
        example_inputs=example_inputs,
        inputs_for_paths=inputs_for_paths,
        paths="block t of the FlatResNet runs iff policy[:, t] keeps it for some image "
        "(`if policy[:, t].sum() > 0`); returns (logits, 0/1 policy)",
        paper="Wu et al., BlockDrop, CVPR 2018",
        supports_batch=True,
    )
]
