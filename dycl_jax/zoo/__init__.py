"""A zoo of PyTorch dynamic neural networks (DyNNs), written the way their authors write them.

Each family lives in its own module and cites its paper. Every model is randomly initialised
from a fixed seed, in eval mode, and its exit thresholds / gate biases are calibrated at
construction on a fixed-seed batch so that random inputs take several different dynamic paths.

    from dycl_jax.zoo import MODELS
    entry = MODELS["sdn_resnet56"]
    model = entry.build("small", seed=0)
    out = model(*entry.example_inputs("small", batch=1, seed=0))
    for args in entry.inputs_for_paths("small", n=16, seed=0):
        model(*args)

Sizes: "small" (tiny widths, 16x16 images, a few blocks — for tests) and "paper" (the
architecture sizes of the original papers, CIFAR-sized images).
"""

from __future__ import annotations

from dycl_jax.zoo import (
    act,
    bert_exit,
    blockdrop,
    branchy,
    caption,
    decoder,
    moe,
    ranet,
    sdn,
    skipnet,
)
from dycl_jax.zoo._common import ZooEntry

_FAMILIES = (sdn, skipnet, blockdrop, caption, branchy, ranet, bert_exit, act, moe, decoder)

MODELS: dict[str, ZooEntry] = {e.name: e for fam in _FAMILIES for e in fam.ENTRIES}

# The nine subjects of the DyCL paper (ISSTA 2023), in its order; captioning is one model here.
DYCL_SUBJECTS = (
    "sdn_mobilenet",
    "sdn_vgg16",
    "sdn_resnet56",
    "sdn_wrn32_4",
    "skipnet_rnn",
    "skipnet_ff",
    "caption",
    "blockdrop",
)

__all__ = ["DYCL_SUBJECTS", "MODELS", "ZooEntry"]
