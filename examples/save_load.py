"""Save a converted early-exit network and run it in a process where torch cannot be imported.

    cm = dycl_jax.convert(model)
    cm.save("artifact", example_inputs=inputs)   # compiles the paths these inputs take
    model = dycl_jax.load("artifact")            # jax + numpy only

The child process blocks ``import torch`` before anything else, loads the artifact, runs the
same inputs and hands its outputs back; the parent compares them with eager PyTorch.
Run: ``python -m examples.save_load``.
"""

from __future__ import annotations

import os
import pickle
import subprocess
import sys
import tempfile
import time
from typing import Any

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def child(artifact: str, io_file: str) -> None:
    """Load and run the artifact with torch unimportable; write outputs and timings."""
    sys.modules["torch"] = None  # type: ignore[assignment]
    t0 = time.perf_counter()
    import jax
    import numpy as np

    import dycl_jax
    from dycl_jax.portable.structure import map_structure

    t_import = time.perf_counter() - t0
    model = dycl_jax.load(artifact)
    with open(io_file, "rb") as f:
        inputs = pickle.load(f)
    t0 = time.perf_counter()
    outs = [
        map_structure(lambda v: np.asarray(v) if isinstance(v, jax.Array) else v, model(*args))
        for args in inputs
    ]
    t_first = time.perf_counter() - t0
    torch_loaded = [m for m, v in sys.modules.items() if m.split(".")[0] == "torch" and v]
    with open(io_file, "wb") as f:
        pickle.dump(
            {
                "outputs": outs,
                "import_s": t_import,
                "load_s": model.load_seconds,
                "first_calls_s": t_first,
                "torch_modules": torch_loaded,
            },
            f,
        )


def main(name: str = "sdn_resnet56") -> dict[str, Any]:
    import torch

    import dycl_jax
    from dycl_jax.testing import assert_same
    from dycl_jax.zoo import MODELS

    entry = MODELS[name]
    model = entry.build("small", seed=0)
    inputs = list(entry.inputs_for_paths("small", n=12, seed=1))
    t0 = time.perf_counter()
    cm = dycl_jax.convert(model)
    report = cm.save(os.path.join(tempfile.mkdtemp(), name), example_inputs=inputs)
    t_convert_and_save = time.perf_counter() - t0
    io_file = os.path.join(report.path, "io.pkl")
    with open(io_file, "wb") as f:
        pickle.dump([tuple(a.numpy() for a in args) for args in inputs], f)
    subprocess.run(
        [sys.executable, "-m", "examples.save_load", "--child", report.path, io_file],
        cwd=ROOT,
        check=True,
    )
    with open(io_file, "rb") as f:
        result = pickle.load(f)
    assert result["torch_modules"] == [], result["torch_modules"]
    import jax
    import numpy as np

    from dycl_jax.portable.structure import map_structure

    with jax.enable_x64(True):  # int64 outputs stay int64
        for args, got in zip(inputs, result["outputs"], strict=True):
            with torch.no_grad():
                want = model(*args)
            back = map_structure(
                lambda v: jax.numpy.asarray(v) if isinstance(v, np.ndarray) else v, got
            )
            assert_same(back, want)
    size = sum(os.path.getsize(os.path.join(d, f)) for d, _, fs in os.walk(report.path) for f in fs)
    print(
        f"save/load ({name}): convert + {len(inputs)} first calls + save {t_convert_and_save:.1f} s "
        f"-> {report.signatures} signatures, {size / 1e3:.0f} kB on disk "
        f"(exported regions {report.bytes_exported / 1e3:.0f} kB, weights "
        f"{report.bytes_weights / 1e3:.0f} kB)\n"
        f"  torch-free process: import {result['import_s']:.2f} s, load {result['load_s']:.2f} s, "
        f"first {len(inputs)} calls {result['first_calls_s']:.2f} s; all {len(inputs)} outputs "
        "match eager PyTorch"
    )
    return {"report": report, **{k: v for k, v in result.items() if k != "outputs"}}


if __name__ == "__main__":
    if sys.argv[1:2] == ["--child"]:
        child(sys.argv[2], sys.argv[3])
    else:
        main(*sys.argv[1:])
