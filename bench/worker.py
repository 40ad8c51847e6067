"""One (model, system) measurement in its own process: ``python -m bench.worker JOB.json``.

The job names a file holding the pickled model and inputs (written once by bench.run) and where
to write the result; the result is rewritten after every phase so that a worker killed at its
time budget still reports what it finished.
"""

from __future__ import annotations

import json
import os
import sys
from typing import Any


def _write(path: str, state: dict[str, Any]) -> None:
    tmp = path + ".tmp"
    with open(tmp, "w") as f:
        json.dump(state, f, default=str)
    os.replace(tmp, path)


def main(job_path: str) -> None:
    with open(job_path) as f:
        job = json.load(f)
    from bench.env import set_threads

    set_threads(job["threads"])
    import torch

    from bench.measure import Config, run_system

    payload = torch.load(job["payload"], weights_only=False)
    cfg = Config(**job["config"])
    inputs = {int(b): v for b, v in payload["inputs"].items()}
    model = payload.get("model")
    if model is None:  # the model did not pickle: build it again (deterministic from the seed)
        from dycl_jax.zoo import MODELS

        r = payload["rebuild"]
        model = MODELS[r["name"]].build(r["size"], seed=r["seed"])
    run_system(model, inputs, job["system"], cfg, emit=lambda s: _write(job["result"], s))


if __name__ == "__main__":
    main(sys.argv[1])
