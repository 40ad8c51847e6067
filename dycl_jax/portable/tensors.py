"""A saved artifact's weights in the safetensors format (readable by the ``safetensors``
library and by this module; written and read here with numpy alone)."""

from __future__ import annotations

import json
import struct
from typing import Any

import jax.numpy as jnp
import numpy as np

from dycl_jax.errors import ArtifactError

_CODES = {
    "bool": "BOOL",
    "uint8": "U8",
    "int8": "I8",
    "int16": "I16",
    "uint16": "U16",
    "float16": "F16",
    "bfloat16": "BF16",
    "int32": "I32",
    "uint32": "U32",
    "float32": "F32",
    "float64": "F64",
    "int64": "I64",
    "uint64": "U64",
}
_DTYPES = {code: name for name, code in _CODES.items()}


def write(path: str, arrays: dict[str, np.ndarray], metadata: dict[str, str] | None = None) -> int:
    """Write ``arrays`` to ``path``; returns the file's size in bytes."""
    header: dict[str, Any] = {"__metadata__": metadata or {}}
    blobs: list[bytes] = []
    offset = 0
    for name, a in arrays.items():
        code = _CODES.get(np.dtype(a.dtype).name)
        if code is None:
            raise ArtifactError(f"weight {name} has dtype {a.dtype}, which safetensors cannot hold")
        data = np.ascontiguousarray(a).tobytes()
        header[name] = {
            "dtype": code,
            "shape": list(a.shape),
            "data_offsets": [offset, offset + len(data)],
        }
        blobs.append(data)
        offset += len(data)
    text = json.dumps(header, separators=(",", ":")).encode()
    text += b" " * (-len(text) % 8)
    with open(path, "wb") as f:
        f.write(struct.pack("<Q", len(text)))
        f.write(text)
        for b in blobs:
            f.write(b)
    return 8 + len(text) + offset


def read(path: str) -> dict[str, np.ndarray]:
    """The arrays of a safetensors file, by name (in file order)."""
    with open(path, "rb") as f:
        raw = f.read()
    (n,) = struct.unpack("<Q", raw[:8])
    header = json.loads(raw[8 : 8 + n])
    base = 8 + n
    out: dict[str, np.ndarray] = {}
    for name, spec in header.items():
        if name == "__metadata__":
            continue
        begin, end = spec["data_offsets"]
        dtype = jnp.dtype(_DTYPES[spec["dtype"]])
        a = np.frombuffer(
            raw, dtype=dtype, count=(end - begin) // dtype.itemsize, offset=base + begin
        )
        out[name] = a.reshape(spec["shape"])
    return out
