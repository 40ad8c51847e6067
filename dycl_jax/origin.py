"""Where code comes from: the user's own, the standard library, or an installed package.

dycl_jax analyses, guards and converts the user's code; torch, the standard library and installed
packages are taken as they are (traced, run on the host, or left alone). One place decides which
is which, from file paths.
"""

from __future__ import annotations

import os
import site
import sys
import sysconfig
import types
from typing import Any

SITE_DIRS = tuple(
    os.path.normcase(os.path.abspath(p)) + os.sep
    for p in {*site.getsitepackages(), site.getusersitepackages(), sysconfig.get_paths()["purelib"]}
)
STDLIB_DIR = os.path.normcase(os.path.abspath(sysconfig.get_paths()["stdlib"])) + os.sep
# Top-level packages whose classes are never the user's model code (besides torch*).
_FOREIGN_CLASS_PACKAGES = frozenset(
    {"builtins", "math", "numpy", "functools", "operator", "typing", "abc"}
)


def file_origin(path: str) -> str | None:
    """ "site-packages" or "stdlib" for a file of an installed package or the standard library,
    None for the user's own."""
    if path.startswith("<frozen "):  # a frozen standard-library module (os, _collections_abc)
        return "stdlib"
    path = os.path.normcase(os.path.abspath(path))
    if path.startswith(SITE_DIRS):
        return "site-packages"
    if path.startswith(STDLIB_DIR):
        return "stdlib"
    return None


def library_origin(fobj: Any) -> str | None:
    """ "stdlib" or "site-packages" for a Python function from the standard library or an
    installed package, None for user code. Standard-library functions (logging, warnings, time)
    are host effects; installed packages' functions (einops, a model zoo's helpers) are traced
    as opaque Python: a tensor-dependent branch inside one fails loudly at capture."""
    fn = getattr(fobj, "__func__", fobj)
    code = getattr(fn, "__code__", None)
    if code is None:
        module = getattr(fobj, "__module__", None)
        owner = getattr(fobj, "__self__", None)
        if not module and owner is not None:  # a builtin method: random.random, time.time
            module = (
                owner.__name__ if isinstance(owner, types.ModuleType) else type(owner).__module__
            )
        top = (module or "").split(".")[0]
        return "stdlib" if top in sys.stdlib_module_names and top != "builtins" else None
    return file_origin(code.co_filename)


def foreign(fn: Any) -> bool:
    """A function of torch, the standard library or an installed package (not analysed)."""
    return (getattr(fn, "__module__", None) or "").startswith("torch") or (
        library_origin(fn) is not None
    )


def unwrap_foreign(fn: Any) -> Any:
    """The user's function under wrappers that torch or a library put around it
    (``@torch.no_grad()``, ``functools.wraps`` in an installed package); a user's own wrapper
    is kept (its decorators are checked against the source when it gets a program)."""
    while isinstance(getattr(fn, "__wrapped__", None), types.FunctionType) and foreign(fn):
        fn = fn.__wrapped__
    return fn


def user_module(m: types.ModuleType) -> bool:
    """A module of the user's own code (not built in, standard library or installed)."""
    path = getattr(m, "__file__", None)
    return isinstance(path, str) and file_origin(path) is None


def user_class(c: type) -> bool:
    """A class of the user's (or an installed package's model code, e.g. an HF ``ModelOutput``),
    not one of Python's, torch's or numpy's own."""
    top = (getattr(c, "__module__", None) or "builtins").split(".")[0]
    return not top.startswith("torch") and top not in _FOREIGN_CLASS_PACKAGES
