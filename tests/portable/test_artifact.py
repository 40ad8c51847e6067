"""Saved artifacts: ``cm.save`` then ``dycl_jax.load`` in a process without torch, equal to eager
PyTorch on every path; refusals and errors of the format; the command line."""

from __future__ import annotations

import json
import logging
import math
import os
import pickle
import subprocess
import sys

import jax
import numpy as np
import pytest
import torch
from torch import nn

import dycl_jax
from dycl_jax.errors import ArtifactError
from dycl_jax.portable import keys, tensors, values
from dycl_jax.portable.hostlib import UNDEFINED
from dycl_jax.portable.structure import map_structure
from dycl_jax.testing import difference
from dycl_jax.zoo import MODELS

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
# One model per family and every construct the host programs use: dynamic callees (sdn), gates
# on .item() (skipnet_rnn), host-run topk (moe_token, decoder_beam), raise/except (bert_deebert),
# halting loops (act_rnn), staged ifs (branchy), shared blocks (skipnet_ff).
REPRESENTATIVE = (
    "sdn_resnet56",
    "skipnet_ff",
    "skipnet_rnn",
    "branchy",
    "bert_deebert",
    "act_rnn",
    "moe_token",
    "decoder_beam",
)


def _numpy_args(args: tuple) -> tuple:
    return tuple(a.numpy() if isinstance(a, torch.Tensor) else a for a in args)


def _as_jax(out):
    with jax.enable_x64(True):
        return map_structure(
            lambda v: jax.numpy.asarray(v) if isinstance(v, np.ndarray) else v, out
        )


def _run_torch_free(cases: list, tmp_path) -> dict:
    cases_file, results_file = tmp_path / "cases.pkl", tmp_path / "results.pkl"
    with open(cases_file, "wb") as f:
        pickle.dump(cases, f)
    proc = subprocess.run(
        [sys.executable, "-m", "tests.portable.torchfree", str(cases_file), str(results_file)],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=600,
    )
    assert proc.returncode == 0, proc.stderr[-3000:]
    with open(results_file, "rb") as f:
        results = pickle.load(f)
    assert results.pop("__torch_modules__") == []
    return results


def test_zoo_models_run_saved_without_torch(tmp_path):
    """Each representative zoo model, saved after running inputs that take its different paths,
    loads in a process where ``import torch`` fails and matches eager PyTorch on every input."""
    cases, expected = [], {}
    for name in REPRESENTATIVE:
        entry = MODELS[name]
        model = entry.build("small", seed=0)
        inputs = list(entry.inputs_for_paths("small", n=6, seed=0))
        cm = dycl_jax.convert(model)
        report = cm.save(tmp_path / name, example_inputs=inputs)
        assert report.skipped == [] and report.signatures > 0
        with torch.no_grad():
            expected[name] = [model(*a) for a in inputs]
        cases.append((name, str(tmp_path / name), [_numpy_args(a) for a in inputs]))
    results = _run_torch_free(cases, tmp_path)
    for name in REPRESENTATIVE:
        got = results[name]
        assert not isinstance(got, str), f"{name}:\n{got}"
        for i, (g, w) in enumerate(zip(got, expected[name], strict=True)):
            assert difference(_as_jax(g), w) is None, (
                f"{name} input {i}: {difference(_as_jax(g), w)}"
            )


class Gate(nn.Module):
    def __init__(self):
        super().__init__()
        self.a = nn.Linear(4, 4)
        self.b = nn.Linear(4, 4)
        self.threshold = 0.0
        self.scale = math.pi

    def forward(self, x):
        if x.sum() > self.threshold:
            return self.a(x) * self.scale
        return self.b(x)


def test_unsaved_signature_is_refused_with_the_saved_ones(tmp_path):
    model = Gate().eval()
    cm = dycl_jax.convert(model)
    x = torch.ones(1, 4)
    cm.save(tmp_path / "a", example_inputs=[(x,), (-x,)])
    loaded = dycl_jax.load(tmp_path / "a")
    for v in (x, -x):
        with torch.no_grad():
            assert difference(loaded(v.numpy()), model(v)) is None
    with pytest.raises(
        ArtifactError, match=r"float32\[2,4\](.|\n)*saved signature(.|\n)*float32\[1,4\]"
    ):
        loaded(np.ones((2, 4), np.float32))


def test_loaded_model_keeps_the_attribute_values_it_was_saved_with(tmp_path):
    model = Gate().eval()
    cm = dycl_jax.convert(model)
    x = torch.full((1, 4), 0.1)
    cm.save(tmp_path / "a", example_inputs=[(x,)])
    model.threshold = 100.0  # after saving: the artifact holds the old value
    loaded = dycl_jax.load(tmp_path / "a")
    model.threshold = 0.0
    with torch.no_grad():
        assert difference(loaded(x.numpy()), model(x)) is None
    assert loaded._root.owner.threshold == 0.0


class Stateful(nn.Module):
    def __init__(self):
        super().__init__()
        self.lin = nn.Linear(4, 4)
        self.steps = 0

    def forward(self, x):
        self.steps += 1
        if x.sum() > 0:
            return self.lin(x)
        return x


def test_module_state_written_by_forward_is_refused(tmp_path):
    cm = dycl_jax.convert(Stateful().eval())
    cm(torch.ones(1, 4))
    if not cm.session.state_attrs:
        pytest.skip("the counter is not module state for this model")
    with pytest.raises(ArtifactError, match="keeps state"):
        cm.save(tmp_path / "a")


def test_keys_agree_between_saver_and_loader():
    """The saver translates converter keys into the portable grammar; ``keys.split`` computes it
    from values at a loaded call. Both must be equal for every kind of live-in."""
    from dycl_jax.capture import signature
    from dycl_jax.save import _Saver

    model = Gate().eval()
    cm = dycl_jax.convert(model)
    saver = _Saver(cm, "/nonexistent")
    arr = np.zeros((2, 3), np.float32)
    skel = type("S", (), {"_dycl_path": "a"})()
    live = (arr, 3, 2.5, True, None, "s", [arr, 1], (arr,), {"k": arr}, model.a, UNDEFINED, 7)
    loaded = (arr, 3, 2.5, True, None, "s", [arr, 1], (arr,), {"k": arr}, skel, UNDEFINED, 7)
    dynamic = frozenset({11})
    key, leaves = signature.split(live, dynamic)
    pkey, avals = saver.key(key, tuple(f"v{i}" for i in range(len(live))))
    lkey, lleaves = keys.split(loaded, dynamic)
    assert values.frozen(json.loads(json.dumps(pkey))) == lkey
    assert [(a.shape, a.dtype) for a in avals] == [
        (np.shape(v), np.asarray(v).dtype) for v in lleaves
    ]
    assert len(leaves) == len(lleaves)


@pytest.mark.parametrize(
    "value",
    [
        None,
        True,
        3,
        -2.5,
        float("inf"),
        float("nan"),
        "s",
        1 + 2j,
        [1, (2, 3)],
        {"a": [1]},
        {1: 2},
        (),
        slice(1, None, 2),
        range(3),
        torch.Size([2, 3]),
    ],
)
def test_values_round_trip(value):
    back = values.decode(json.loads(json.dumps(values.encode(value))))
    if isinstance(value, torch.Size):
        assert back == tuple(value) and type(back) is tuple
    elif isinstance(value, float) and math.isnan(value):
        assert math.isnan(back)
    else:
        assert back == value and type(back) is type(value)
    assert values.decode(values.encode(UNDEFINED)) is UNDEFINED


def test_values_refuse_objects():
    with pytest.raises(values.Unencodable, match="object"):
        values.encode(object())


@pytest.mark.parametrize(
    "dtype", ["float32", "float64", "float16", "bfloat16", "int64", "int8", "bool"]
)
def test_weights_round_trip(tmp_path, dtype):
    a = (np.arange(12).reshape(3, 4) % 3).astype(jax.numpy.dtype(dtype))
    n = tensors.write(str(tmp_path / "w.safetensors"), {"x.y": a, "z": a[:1]})
    assert n == os.path.getsize(tmp_path / "w.safetensors")
    back = tensors.read(str(tmp_path / "w.safetensors"))
    assert list(back) == ["x.y", "z"]
    assert back["x.y"].dtype == a.dtype and np.array_equal(back["x.y"], a)
    assert np.array_equal(back["z"], a[:1])


HELPER_CALLS = []


def helper_gate(x, k: int):
    if x.mean() > 0:
        return x * k
    return x - k


log = logging.getLogger("dycl_jax.tests.user")


class UsesGlobals(nn.Module):
    """Host code reading module globals: a stdlib module, a constant, a logger, a module-level
    dynamic function, and a module attribute that cannot be saved (read on one path only)."""

    def __init__(self):
        super().__init__()
        self.lin = nn.Linear(4, 4)
        self.table = {"a": 1.5}
        self.opaque = object()
        self.blocks = nn.ModuleList([nn.Linear(4, 4) for _ in range(3)])

    def forward(self, x, strict: bool = False):
        h = self.lin(x)
        v = h.sum().item()
        log.debug("sum %f", v)
        if math.floor(v) > LIMIT:
            h = helper_gate(h, len(self.blocks))
        for i, b in enumerate(self.blocks):
            if h.max() > i * self.table["a"]:
                h = b(h)
        if strict:
            return h, str(self.opaque)
        return h


LIMIT = -1


def test_host_globals_and_module_attributes(tmp_path):
    model = UsesGlobals().eval()
    cm = dycl_jax.convert(model)
    xs = [torch.randn(1, 4, generator=torch.Generator().manual_seed(s)) * 3 for s in range(8)]
    cm.save(tmp_path / "a", example_inputs=[(x,) for x in xs])
    loaded = dycl_jax.load(tmp_path / "a")
    for x in xs:
        with torch.no_grad():
            assert difference(loaded(x.numpy()), model(x)) is None
    manifest = json.loads((tmp_path / "a" / "manifest.json").read_text())
    kinds = {n: g["kind"] for p in manifest["programs"] for n, g in p["globals"].items()}
    assert kinds["math"] == "import" and kinds["LIMIT"] == "const" and kinds["log"] == "logger"
    assert kinds["helper_gate"] == "program"
    with pytest.raises(ArtifactError, match="UsesGlobals.opaque"):
        loaded(xs[0].numpy(), strict=True)


def test_staged_region_falls_back_to_its_host_form(tmp_path):
    """A staged if (one select in-graph) on a signature that was not saved runs its host form,
    whose own regions may be saved: the result is still exact."""
    model = MODELS["branchy"].build("small", seed=0)
    cm = dycl_jax.convert(model)
    inputs = list(MODELS["branchy"].inputs_for_paths("small", n=4, seed=0))
    cm.save(tmp_path / "a", example_inputs=inputs)
    loaded = dycl_jax.load(tmp_path / "a")
    staged = [r for p in loaded.programs for r in p.regions if r.fallback is not None]
    for r in staged:
        r.signatures.clear()  # as if the staged signature had not been saved
    for a in inputs:
        try:
            got = loaded(*_numpy_args(a))
        except ArtifactError:
            continue  # the host form needs a region signature that was not saved: refused
        with torch.no_grad():
            assert difference(got, model(*a)) is None


def test_save_refuses_non_tuple_examples(tmp_path):
    cm = dycl_jax.convert(Gate().eval())
    with pytest.raises(ArtifactError, match="argument tuples"):
        cm.save(tmp_path / "a", example_inputs=[torch.ones(1, 4)])


def test_load_refuses_other_directories(tmp_path):
    with pytest.raises(ArtifactError, match="not a dycl_jax artifact"):
        dycl_jax.load(tmp_path)
    (tmp_path / "manifest.json").write_text(json.dumps({"format": "other/9"}))
    with pytest.raises(ArtifactError, match="format"):
        dycl_jax.load(tmp_path)


def test_import_without_torch():
    code = (
        "import sys; sys.modules['torch'] = None\n"
        "import dycl_jax, dycl_jax.portable.artifact\n"
        "assert not [m for m in sys.modules if m.startswith('torch.')]\n"
        "try:\n    dycl_jax.convert\nexcept ImportError:\n    pass\n"
        "else:\n    raise AssertionError('convert without torch')\n"
    )
    subprocess.run([sys.executable, "-c", code], cwd=ROOT, check=True, timeout=120)


def test_command_line(tmp_path):
    """convert (with torch), then run and inspect in a process where torch cannot import."""
    env = {**os.environ, "PYTHONPATH": ROOT}
    cli = [sys.executable, "-m", "dycl_jax"]
    for sub in ("convert", "run", "inspect"):
        out = subprocess.run([*cli, sub, "--help"], capture_output=True, text=True, env=env)
        assert out.returncode == 0 and "usage:" in out.stdout
    art = tmp_path / "art"
    subprocess.run(
        [
            *cli,
            "convert",
            "tests.portable.test_artifact:Gate",
            "--example",
            "float32[1,4]",
            "--samples",
            "6",
            "-o",
            str(art),
        ],
        check=True,
        capture_output=True,
        text=True,
        env=env,
        cwd=ROOT,
        timeout=300,
    )
    x = np.full((1, 4), 0.5, np.float32)
    np.save(tmp_path / "x.npy", x)
    blocked = "import sys, runpy; sys.modules['torch'] = None; sys.argv[0] = 'dycl_jax'; "
    run = [sys.executable, "-c", blocked + "runpy.run_module('dycl_jax', run_name='__main__')"]

    def torch_free(*args: str) -> subprocess.CompletedProcess[str]:
        out = subprocess.run(
            [*run, *args], capture_output=True, text=True, env=env, cwd=ROOT, timeout=300
        )
        assert out.returncode == 0, out.stderr
        return out

    torch_free("run", str(art), str(tmp_path / "x.npy"), "-o", str(tmp_path / "y.npz"))
    assert os.listdir(art / "xla_cache")  # compiled regions kept for the next process
    got = np.load(tmp_path / "y.npz")["out"]
    loaded = dycl_jax.load(art)
    assert np.allclose(got, np.asarray(loaded(x)))
    out = torch_free("inspect", str(art), "--source")
    assert "Gate.forward._region" in out.stdout and "def forward(self, x)" in out.stdout


class ExitLog(nn.Module):
    def __init__(self):
        super().__init__()
        self.lin = nn.Linear(4, 4)
        self.exit_log: list[int] = []
        self.sched = {"temp": 1.0}

    def forward(self, x):
        h = self.lin(x)
        if h.sum() > 0:
            self.exit_log.append(1)
        return h / self.sched["temp"]


class Tempered(ExitLog):
    def forward(self, x):
        self.sched["temp"] *= 0.5
        return self.lin(x) / self.sched["temp"]


@pytest.mark.parametrize("cls", [ExitLog, Tempered])
def test_state_written_by_forward_is_refused_at_its_line(tmp_path, cls):
    cm = dycl_jax.convert(cls().eval())
    with pytest.raises(ArtifactError, match="outlives the call") as e:
        cm.save(tmp_path / "a", example_inputs=[(torch.ones(1, 4),)])
    assert e.value.location is not None and e.value.location.filename == __file__


class ExitNow(Exception):
    def __init__(self, logits, layer):
        super().__init__("exit")
        self.logits = logits
        self.layer = layer


class ExitingLayer(nn.Module):
    def __init__(self, i):
        super().__init__()
        self.lin = nn.Linear(4, 4, bias=False)
        self.i = i
        self.skip = None

    def forward(self, x):
        x = torch.tanh(self.lin(x))
        if x.mean() > 0.1 and self.lin.bias is None and self.skip is None:
            raise ExitNow(x * 2, self.i)
        return x


class DeeStyle(nn.Module):
    """DeeBERT's shape: a layer raises a user exception carrying tensors, forward catches it;
    host code reads the class name and None parameter / submodule slots."""

    def __init__(self):
        super().__init__()
        self.layers = nn.ModuleList(ExitingLayer(i) for i in range(3))

    def helper(self):
        return 1

    def forward(self, x, use_helper: bool = False):
        try:
            for layer in self.layers:
                x = layer(x)
        except ExitNow as e:
            return e.logits, e.layer, type(self).__name__
        if use_helper:
            return x, self.helper(), type(self).__name__
        return x, -1, type(self).__name__


def test_exceptions_class_names_and_none_slots(tmp_path):
    torch.manual_seed(0)
    model = DeeStyle().eval()
    cm = dycl_jax.convert(model)
    xs = [torch.randn(1, 4, generator=torch.Generator().manual_seed(s)) * 2 for s in range(10)]
    cm.save(tmp_path / "a", example_inputs=[(x,) for x in xs])
    loaded = dycl_jax.load(tmp_path / "a")
    exits = {}
    for x in xs:
        with torch.no_grad():
            want = model(x)
        assert difference(loaded(x.numpy()), want) is None
        exits[want[1]] = x
    assert len(exits) >= 2 and -1 in exits  # an early exit and a full pass, at least
    with pytest.raises(ArtifactError, match=r"DeeStyle.helper\(\), a method that is not converted"):
        loaded(exits[-1].numpy(), use_helper=True)


TABLE = {"n": 0}


class WritesThroughAliases(nn.Module):
    def __init__(self, how: str):
        super().__init__()
        self.lin = nn.Linear(4, 4)
        self.exit_log: list[int] = []
        self.how = how

    def note(self, log):
        log.append(1)

    def forward(self, x):
        h = self.lin(x)
        if h.sum() > 0:
            if self.how == "alias":
                log = self.exit_log
                log.append(1)
            elif self.how == "setattr":
                setattr(self, "calls", 1)  # noqa: B010  (the form under test)
            elif self.how == "global":
                t = TABLE
                t["n"] += 1
            else:
                self.note(self.exit_log)  # found by running example_inputs
        return h


@pytest.mark.parametrize("how", ["alias", "setattr", "global", "helper"])
def test_state_written_through_aliases_is_refused(tmp_path, how):
    torch.manual_seed(0)
    model = WritesThroughAliases(how).eval()
    x = torch.ones(1, 4)
    with torch.no_grad():
        x = x if model.lin(x).sum() > 0 else -x  # the path that writes
    with pytest.raises(ArtifactError, match="outlives the call"):
        dycl_jax.convert(model).save(tmp_path / "a", example_inputs=[(x,)])


class NamedResults(nn.Module):
    """torch.return_types results kept whole and read in later regions (CALM's
    ``p.topk(2).values``, DynamicViT's ``s.topk(k).indices``)."""

    def forward(self, x):
        s = x.sort(-1)
        m = x.max(-1)
        if m.values.sum() > 0:
            return s.indices.float() + m.values[:, None]
        return x.topk(2, -1).values.sum(-1)


def test_torch_return_types_are_saved(tmp_path):
    m = NamedResults().eval()
    inputs = [(torch.randn(2, 4).abs(),), (-torch.rand(2, 4) - 1,)]
    cm = dycl_jax.convert(m)
    report = cm.save(tmp_path / "a", example_inputs=inputs)
    assert report.skipped == []
    loaded = dycl_jax.load(tmp_path / "a")
    for (x,) in inputs:
        with torch.no_grad():
            assert difference(_as_jax(loaded(x.numpy())), m(x)) is None
            assert difference(cm(x), m(x)) is None


class Recurrent(nn.Module):
    def __init__(self):
        super().__init__()
        self.rnn = nn.LSTM(4, 5, batch_first=True)

    def forward(self, x):
        y, _ = self.rnn(x)
        if y.sum() > 0:
            return y * 2
        return y


def test_rnn_models_save_without_a_call_first(tmp_path):
    """nn.LSTM refreshes its ``_flat_weights`` cache while traced: put back, not state."""
    torch.manual_seed(0)
    m = Recurrent().eval()
    inputs = [(torch.randn(1, 3, 4) * s,) for s in (1.0, -1.0, 3.0)]
    report = dycl_jax.convert(m).save(tmp_path / "a", example_inputs=inputs)
    assert report.skipped == []
    loaded = dycl_jax.load(tmp_path / "a")
    for (x,) in inputs:
        with torch.no_grad():
            assert difference(_as_jax(loaded(x.numpy())), m(x)) is None
