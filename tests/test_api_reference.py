"""docs/API.md lists the public API: every public name there exists, and every public name of
the package, of ConvertedModel, LoadedModel and Config, and of dycl_jax.testing is listed."""

from __future__ import annotations

import dataclasses
import inspect
import os
import re

import dycl_jax
import dycl_jax.testing
from dycl_jax.api import ConvertedModel
from dycl_jax.portable.artifact import LoadedModel
from dycl_jax.save import SaveReport

DOC = open(os.path.join(os.path.dirname(os.path.dirname(__file__)), "docs", "API.md")).read()
LISTED = set(re.findall(r"`(?:[\w.]+\.)?(\w+)[(`]", DOC)) | set(re.findall(r"`(\w+)`", DOC))


def _public(names: object) -> set[str]:
    return {n for n in names if not n.startswith("_")}  # type: ignore[attr-defined]


def test_every_public_name_is_documented() -> None:
    names = _public(dir(dycl_jax)) - {"annotations", "config", "errors", "portable", "log"}
    names |= _public(vars(ConvertedModel)) | _public(vars(LoadedModel))
    names |= {f.name for f in dataclasses.fields(dycl_jax.Config)}
    names |= {f.name for f in dataclasses.fields(SaveReport)}
    names |= {
        n
        for n, v in vars(dycl_jax.testing).items()
        if not n.startswith("_") and inspect.isfunction(v) and v.__module__ == "dycl_jax.testing"
    }
    modules = {n for n in names if inspect.ismodule(getattr(dycl_jax, n, None))}
    missing = sorted(names - modules - LISTED)
    assert not missing, f"not in docs/API.md: {missing}"


def test_documented_members_exist() -> None:
    for name in ("convert", "load", "to_nnx", "Config", "RegionInfo", "ArtifactError"):
        assert hasattr(dycl_jax, name)
    owners = (ConvertedModel, LoadedModel, dycl_jax.testing, dycl_jax)
    known = {f.name for f in dataclasses.fields(dycl_jax.Config)}
    known |= set(re.findall(r"self\.(\w+) =", inspect.getsource(LoadedModel.__init__)))
    known |= {"cm", "model", "field", "member", "name", "error"}  # table headers, call rows
    for name in re.findall(r"^\| `(\w+)", DOC, flags=re.M):
        assert name in known or any(hasattr(o, name) for o in owners), name
