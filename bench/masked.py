"""The usual way to serve a batch of a dynamic network in eager PyTorch: run each block for the
whole batch whenever any row still needs it, and mask the rows that do not (an exited row keeps
its output, a skipped block keeps the row's shortcut). Hand-written per model family, as users
write it; each returns, per row, what the model returns on that row alone (checked by
``bench.serving`` before it is timed).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import torch
import torch.nn.functional as F

from dycl_jax.zoo.sdn import SDN
from dycl_jax.zoo.skipnet import SkipNetFF


def sdn(model: SDN, x: torch.Tensor) -> list[Any]:
    """Early exit: every row goes through each block until every row has exited; a row exits at
    the first head whose softmax maximum reaches that head's threshold."""
    rows = x.shape[0]
    result: list[Any] = [None] * rows
    active = torch.ones(rows, dtype=torch.bool)
    fwd = model.init_conv(x)
    output_id = 0
    for layer in model.layers:
        fwd, is_output, output = layer(fwd)
        if is_output:
            conf = F.softmax(output, dim=1).amax(1)
            now = active & (conf >= model.exit_thresholds[output_id])
            for i in now.nonzero().flatten().tolist():
                result[i] = (output[i : i + 1], output_id, True)
            active &= ~now
            if not active.any():
                return result
            output_id += 1
    output = model.end_layers(fwd)
    for i in active.nonzero().flatten().tolist():
        result[i] = (output[i : i + 1], output_id, False)
    return result


def skipnet_ff(model: SkipNetFF, x: torch.Tensor) -> list[Any]:
    """Gated blocks: a block runs for the whole batch when any row's gate opens; rows whose gate
    stays closed keep their shortcut (the downsampled input)."""
    x = F.relu(model.bn1(model.conv1(x)))
    x = model.group1_layer0(x)
    masks = torch.ones(x.shape[0], 1, dtype=torch.long)
    for g in range(3):
        for i in range(int(g == 0), model.num_layers[g]):
            gate = getattr(model, f"group{g + 1}_gate{i}")(x) > model.gate_threshold
            ds = getattr(model, f"group{g + 1}_ds{i}")
            skip = ds(x) if ds is not None else x
            if gate.any():
                ran = getattr(model, f"group{g + 1}_layer{i}")(x)
                x = torch.where(gate.view(-1, 1, 1, 1), ran, skip)
            else:
                x = skip
            masks = torch.cat([masks, gate.long().view(-1, 1)], 1)
    logits = model.fc(model.avgpool(x).flatten(1))
    return [(logits[i : i + 1], masks[i].tolist()) for i in range(x.shape[0])]


BASELINES: dict[str, Callable[[Any, torch.Tensor], list[Any]]] = {
    "sdn_resnet56": sdn,
    "sdn_vgg16": sdn,
    "sdn_mobilenet": sdn,
    "sdn_wrn32_4": sdn,
    "skipnet_ff": skipnet_ff,
}
