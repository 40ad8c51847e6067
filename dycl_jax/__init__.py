"""dycl_jax: run PyTorch dynamic neural networks on JAX/XLA by program rewriting.

import dycl_jax
cm = dycl_jax.convert(model.eval())
out = cm(x)
print(cm.host_source)
cm.save("artifact")                      # compiled regions + host programs + weights
model2 = dycl_jax.load("artifact")       # needs jax and numpy only, not torch

Importing the package does not import torch: the converter (``convert``, ``ConvertedModel``) is
loaded on first use, so a saved artifact runs where torch is not installed.
"""

from typing import TYPE_CHECKING, Any

from dycl_jax import config as _config
from dycl_jax._version import __version__ as __version__
from dycl_jax.config import Config as Config
from dycl_jax.errors import ArtifactError as ArtifactError
from dycl_jax.errors import CaptureError as CaptureError
from dycl_jax.errors import ConversionError as ConversionError
from dycl_jax.errors import DataDependentError as DataDependentError
from dycl_jax.errors import DtypeError as DtypeError
from dycl_jax.errors import DyclError as DyclError
from dycl_jax.errors import InputError as InputError
from dycl_jax.errors import InternalError as InternalError
from dycl_jax.errors import LoweringError as LoweringError
from dycl_jax.errors import MismatchError as MismatchError
from dycl_jax.errors import MissingLoweringError as MissingLoweringError
from dycl_jax.errors import OpaqueOutputError as OpaqueOutputError
from dycl_jax.errors import SourceLocation as SourceLocation
from dycl_jax.errors import SourceUnavailableError as SourceUnavailableError
from dycl_jax.errors import UnsupportedConstructError as UnsupportedConstructError
from dycl_jax.portable.artifact import LoadedModel as LoadedModel
from dycl_jax.portable.artifact import load as load

# Synchronous CPU dispatch when JAX has not started yet (see dycl_jax.config); before anything
# below creates a JAX array.
_config.prefer_sync_cpu_dispatch()

if TYPE_CHECKING:
    from dycl_jax.api import ConvertedModel as ConvertedModel
    from dycl_jax.api import RegionInfo as RegionInfo
    from dycl_jax.api import convert as convert
    from dycl_jax.nnx import ConvertedNNX

# The converter's names, imported (with torch and the op table) on first use.
_LAZY = {"convert": "dycl_jax.api", "ConvertedModel": "dycl_jax.api", "RegionInfo": "dycl_jax.api"}


def __getattr__(name: str) -> Any:
    module = _LAZY.get(name)
    if module is None:
        raise AttributeError(f"module 'dycl_jax' has no attribute {name!r}")
    import importlib

    value = getattr(importlib.import_module(module), name)
    globals()[name] = value
    return value


def __dir__() -> list[str]:
    return sorted({*globals(), *_LAZY})


def to_nnx(cm: "ConvertedModel") -> "ConvertedNNX":
    """Wrap a converted model as a flax ``nnx.Module`` with one ``nnx.Param`` per parameter
    (see :mod:`dycl_jax.nnx`; flax is imported on first use)."""
    from dycl_jax.nnx import to_nnx as _to_nnx

    return _to_nnx(cm)


del Any, TYPE_CHECKING  # typing helpers, not part of the package's namespace
