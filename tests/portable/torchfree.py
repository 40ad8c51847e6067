"""Run saved artifacts in a process where importing torch fails (used by the artifact tests).

    python -m tests.portable.torchfree CASES.pkl RESULTS.pkl

CASES holds ``[(name, artifact_dir, [args, ...]), ...]`` (numpy arguments); RESULTS receives,
per case, the list of outputs (jax arrays as numpy arrays) or the error text.
"""

from __future__ import annotations

import pickle
import sys
import traceback
from typing import Any

sys.modules["torch"] = None  # type: ignore[assignment]  # `import torch` raises ImportError


def main(cases_file: str, results_file: str) -> None:
    import jax
    import numpy as np

    import dycl_jax
    from dycl_jax.portable.structure import map_structure

    with open(cases_file, "rb") as f:
        cases = pickle.load(f)
    results: dict[str, Any] = {}
    for name, path, calls in cases:
        try:
            model = dycl_jax.load(path)
            outs = []
            for args in calls:
                out = model(*args)
                outs.append(
                    map_structure(lambda v: np.asarray(v) if isinstance(v, jax.Array) else v, out)
                )
            results[name] = outs
        except Exception:
            results[name] = traceback.format_exc()
    leaked = sorted(m for m in sys.modules if m == "torch" or m.startswith("torch."))
    results["__torch_modules__"] = [m for m in leaked if sys.modules[m] is not None]
    with open(results_file, "wb") as f:
        pickle.dump(results, f)


if __name__ == "__main__":
    main(sys.argv[1], sys.argv[2])
