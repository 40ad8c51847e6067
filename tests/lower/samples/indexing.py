"""Samples for indexing lowerings."""

from __future__ import annotations

import torch

from tests.lower.samples import Sample, SampleFn

aten = torch.ops.aten

SAMPLES: dict[torch._ops.OpOverload, SampleFn] = {}
