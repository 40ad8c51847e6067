"""Op coverage: which core-ATen overloads have a lowering, and which are missing."""

from __future__ import annotations

import torch

from dycl_jax.compat import OpOverload, OpOverloadPacket
from dycl_jax.lower.registry import LOWERINGS


def core_aten_overloads() -> list[OpOverload]:
    """Every overload PyTorch tags ``core`` (the opset decompositions lower to)."""
    out = []
    for name in dir(torch.ops.aten):
        packet = getattr(torch.ops.aten, name, None)
        if not isinstance(packet, OpOverloadPacket):
            continue
        for ov_name in packet.overloads():
            ov = getattr(packet, ov_name)
            if torch.Tag.core in ov.tags:
                out.append(ov)
    return sorted(out, key=str)


def report() -> str:
    """A readable coverage report."""
    core = core_aten_overloads()
    covered = [o for o in core if o in LOWERINGS]
    missing = [o for o in core if o not in LOWERINGS]
    extra = sorted(str(o) for o in LOWERINGS if torch.Tag.core not in o.tags)
    lines = [
        f"registered overloads: {len(LOWERINGS)}",
        f"core ATen overloads covered: {len(covered)}/{len(core)} "
        f"({100.0 * len(covered) / max(len(core), 1):.1f}%)",
        "",
        "registered (core):",
        *(f"  {o}" for o in covered),
        "",
        "registered (non-core, reached before decomposition):",
        *(f"  {o}" for o in extra),
        "",
        "missing core overloads:",
        *(f"  {o}" for o in missing),
    ]
    return "\n".join(lines)
