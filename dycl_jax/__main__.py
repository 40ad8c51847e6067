"""The command line: convert a model to a saved artifact, run an artifact, inspect one.

    python -m dycl_jax convert MODULE:FACTORY --example 'float32[1,3,16,16]' -o DIR
    python -m dycl_jax run DIR INPUT.npy [INPUT.npy ...] [-o OUT.npz]
    python -m dycl_jax inspect DIR [--source]

``run`` and ``inspect`` need jax and numpy only; ``convert`` needs torch.
"""

from __future__ import annotations

import argparse
import importlib
import json
import os
import re
import sys
from collections.abc import Sequence
from typing import Any

import numpy as np

_SPEC = re.compile(r"^(?P<dtype>\w+)\[(?P<shape>[\d, ]*)\](?::(?P<low>-?\d+):(?P<high>-?\d+))?$")


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m dycl_jax", description=__doc__.split("\n")[0])
    sub = parser.add_subparsers(dest="command", required=True)

    c = sub.add_parser(
        "convert",
        help="convert a PyTorch model and save it as an artifact",
        description="Convert MODULE:FACTORY (an nn.Module, or a callable returning one, named "
        "by import path) and save it to DIR, with every region signature that random example "
        "inputs reach compiled and exported.",
    )
    c.add_argument("factory", help="import path of the model: package.module:name")
    c.add_argument(
        "--example",
        action="append",
        required=True,
        metavar="SPEC",
        help="one positional argument per --example: DTYPE[SHAPE], e.g. float32[1,3,32,32]; "
        "integers take a range, int64[1,8]:0:100 (random normal floats, uniform integers)",
    )
    c.add_argument("--samples", type=int, default=8, help="random input tuples to run (paths)")
    c.add_argument("--seed", type=int, default=0)
    c.add_argument("-o", "--output", required=True, metavar="DIR")

    r = sub.add_parser(
        "run",
        help="run a saved artifact on .npy inputs (no torch needed)",
        description="Load the artifact DIR and call it with the arrays in the .npy files, in order.",
    )
    r.add_argument("artifact", metavar="DIR")
    r.add_argument("inputs", nargs="+", metavar="INPUT.npy")
    r.add_argument(
        "-o",
        "--output",
        metavar="OUT.npz",
        help="write the output arrays here, named by their place in the output (out[0]['logits'])",
    )
    r.add_argument(
        "--no-compile-cache",
        action="store_true",
        help="do not keep compiled regions in DIR/xla_cache for the next run",
    )

    i = sub.add_parser(
        "inspect",
        help="describe a saved artifact: regions, signatures, sizes",
        description="Print an artifact's model, versions, programs, regions and their saved "
        "signatures, and file sizes.",
    )
    i.add_argument("artifact", metavar="DIR")
    i.add_argument("--source", action="store_true", help="also print the host programs")

    args = parser.parse_args(argv)
    return {"convert": _convert, "run": _run, "inspect": _inspect}[args.command](args)


def _convert(args: argparse.Namespace) -> int:
    import torch

    import dycl_jax

    module_name, _, attr = args.factory.partition(":")
    sys.path.insert(0, os.getcwd())
    obj: Any = importlib.import_module(module_name)
    for part in (attr or "model").split("."):
        obj = getattr(obj, part)
    model = obj if isinstance(obj, torch.nn.Module) else obj()
    if not isinstance(model, torch.nn.Module):
        print(f"error: {args.factory} is not an nn.Module", file=sys.stderr)
        return 2
    model.eval()
    specs = [_parse_spec(s) for s in args.example]
    rng = np.random.default_rng(args.seed)
    examples = [tuple(_random(s, rng) for s in specs) for _ in range(args.samples)]
    cm = dycl_jax.convert(model)
    report = cm.save(
        args.output, example_inputs=[tuple(map(torch.from_numpy, e)) for e in examples]
    )
    print(
        f"saved {type(model).__name__} to {args.output}: {report.signatures} signatures, "
        f"{report.exported} exported functions ({report.bytes_exported / 1e3:.0f} kB), weights "
        f"{report.bytes_weights / 1e6:.2f} MB, {report.seconds:.1f} s"
    )
    for s in report.skipped:
        print(f"  left out: {s}")
    return 0


def _parse_spec(text: str) -> tuple[str, tuple[int, ...], tuple[int, int] | None]:
    m = _SPEC.match(text.strip())
    if m is None:
        raise SystemExit(f"error: --example {text!r}: expected DTYPE[SHAPE], e.g. float32[1,16]")
    shape = tuple(int(d) for d in m["shape"].replace(" ", "").split(",") if d)
    bounds = (int(m["low"]), int(m["high"])) if m["low"] is not None else None
    return m["dtype"], shape, bounds


def _random(spec: tuple[str, tuple[int, ...], tuple[int, int] | None], rng: Any) -> np.ndarray:
    dtype, shape, bounds = spec
    if np.issubdtype(np.dtype(dtype), np.integer):
        low, high = bounds or (0, 10)
        return rng.integers(low, high, size=shape).astype(dtype)
    if dtype == "bool":
        return rng.random(shape) < 0.5
    return rng.standard_normal(shape).astype(dtype)


def _run(args: argparse.Namespace) -> int:
    import jax

    import dycl_jax

    model = dycl_jax.load(args.artifact, compile_cache=not args.no_compile_cache)
    out = model(*(np.load(p) for p in args.inputs))
    leaves, _ = jax.tree_util.tree_flatten_with_path(out)
    arrays = {}
    for path, leaf in leaves:
        name = "out" + jax.tree_util.keystr(path)  # out[0]['logits']: the output's structure
        a = np.asarray(leaf)
        arrays[name] = a
        body = np.array2string(a, threshold=8, edgeitems=3, precision=5)
        print(f"{name}: {a.dtype}{list(a.shape)} {body}")
    if args.output:
        np.savez(args.output, **arrays)  # type: ignore[arg-type]
    return 0


def _inspect(args: argparse.Namespace) -> int:
    import dycl_jax

    with open(os.path.join(args.artifact, "manifest.json")) as f:
        manifest = json.load(f)
    sizes: dict[str, int] = {}
    for root, _, files in os.walk(args.artifact):
        for name in files:
            part = os.path.relpath(root, args.artifact).split(os.sep)[0]
            part = name if part == "." else part
            sizes[part] = sizes.get(part, 0) + os.path.getsize(os.path.join(root, name))
    v = manifest["versions"]
    print(
        f"{manifest['model']}  ({manifest['format']}; saved by dycl_jax {v['dycl_jax']}, "
        f"jax {v['jax']}, torch {v['torch']}; platforms {', '.join(manifest['platforms'])})"
    )
    print("files: " + ", ".join(f"{k} {n / 1e3:.1f} kB" for k, n in sorted(sizes.items())))
    model = dycl_jax.load(args.artifact)
    for program, signatures in model.signatures().items():
        print(f"{program}: {len(signatures)} signature(s)")
        for s in signatures:
            print(f"    {s}")
    for e in manifest["examples"]:
        print(f"example: {e['inputs']} -> {e['output']}")
    for s in manifest["skipped"]:
        print(f"left out: {s}")
    if args.source:
        print()
        print(model.host_source)
    return 0


if __name__ == "__main__":
    sys.exit(main())
