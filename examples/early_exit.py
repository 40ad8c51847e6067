"""Early exit: a classifier with a head per stage that stops once it is confident.

    python -m examples.early_exit

Converts the model, checks parity with eager PyTorch on inputs that exit at every stage (in
checked mode, which compares each new path with eager), then sweeps the confidence threshold
after conversion: the converted model follows the attribute without reconverting.
"""

from __future__ import annotations

import torch
import torch.nn as nn

import dycl_jax


class EarlyExit(nn.Module):
    def __init__(self, width: int = 16, stages: int = 3, classes: int = 4) -> None:
        super().__init__()
        self.stages = nn.ModuleList(
            nn.Sequential(nn.Linear(width, width), nn.ReLU()) for _ in range(stages)
        )
        self.heads = nn.ModuleList(nn.Linear(width, classes) for _ in range(stages))
        self.threshold = 0.5

    def forward(self, x):
        for i, (stage, head) in enumerate(zip(self.stages, self.heads)):
            x = stage(x)
            probs = head(x).softmax(-1)
            if probs.max() > self.threshold:
                return probs, i
        return probs, len(self.stages) - 1


def main() -> dict[str, object]:
    torch.manual_seed(0)
    model = EarlyExit().eval()
    cm = dycl_jax.convert(model, config=dycl_jax.Config(check=True))
    g = torch.Generator().manual_seed(0)
    inputs = [torch.randn(1, 16, generator=g) * s for s in (0.1, 1.0, 4.0, 10.0)]
    exits: dict[float, list[int]] = {}
    for threshold in (0.3, 0.5, 0.9):
        model.threshold = threshold  # followed by the converted model
        exits[threshold] = []
        for x in inputs:
            probs, stage = cm(x)  # checked mode raises MismatchError on any difference
            with torch.no_grad():
                want_probs, want_stage = model(x)
            assert stage == want_stage
            dycl_jax.testing.assert_same(probs, want_probs)
            exits[threshold].append(stage)
    print("exit stage per input, by threshold:", exits)
    print(cm.host_source)
    return {"exits": exits}


if __name__ == "__main__":
    main()
