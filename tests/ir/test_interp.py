"""The IR block interpreter computes what the compiled host function computes, on every path of
zoo models that cover early returns in loops, while loops with breaks, try/except, dynamic callees
and Python state."""

from __future__ import annotations

import inspect

import jax
import numpy as np
import pytest

import dycl_jax
from dycl_jax.ir.interp import Interpreter
from dycl_jax.runtime import io
from dycl_jax.zoo import MODELS

CASES = ["sdn_resnet56", "skipnet_rnn", "act_rnn", "decoder_greedy", "moe_token", "bert_deebert"]


def _leaves(v: object) -> list[object]:
    if isinstance(v, list | tuple):
        return [x for e in v for x in _leaves(e)]
    if isinstance(v, dict):
        return [x for e in v.values() for x in _leaves(e)]
    return [v]


@pytest.mark.parametrize("name", CASES)
def test_interpreter_matches_compiled_host(name: str) -> None:
    entry = MODELS[name]
    model = entry.build("small", seed=0)
    cm = dycl_jax.convert(model)
    prog = cm.programs[0]
    interp = Interpreter(prog.ir, prog.host.__globals__)
    sig = inspect.signature(prog.host)
    for args in entry.inputs_for_paths("small", n=4, seed=1):
        want = cm(*args)
        with cm.record() as compiled_path:
            cm(*args)
        bound = sig.bind(prog.owner, *io.inputs(args))
        bound.apply_defaults()
        # Regions run under scoped 64-bit types, as ConvertedModel.__call__ runs them.
        with cm.record() as interpreted_path, jax.enable_x64(True):
            got = interp.run(interp.new_scope(dict(bound.arguments)))
        assert interpreted_path == compiled_path
        got_leaves, want_leaves = _leaves(io.outputs(got)), _leaves(want)
        assert len(got_leaves) == len(want_leaves)
        for g, w in zip(got_leaves, want_leaves, strict=True):
            if hasattr(w, "shape"):
                np.testing.assert_array_equal(np.asarray(g), np.asarray(w))
            else:
                assert g == w
