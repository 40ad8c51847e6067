"""Where code comes from (dycl_jax.origin): the user's, the standard library's, an installed
package's."""

from __future__ import annotations

import json
import logging
import os
import sys

import numpy as np
import torch

from dycl_jax import origin


class _Mine:
    pass


def _mine(x):
    return x


@torch.no_grad()
def _decorated(x):
    return x


def test_modules_classes_and_functions_by_origin() -> None:
    assert origin.user_module(sys.modules[__name__])
    assert not origin.user_module(json) and not origin.user_module(torch)
    assert not origin.user_module(sys)  # built in, no file
    assert origin.user_class(_Mine)
    assert not any(origin.user_class(c) for c in (int, np.ndarray, torch.nn.Linear))
    assert origin.library_origin(logging.getLogger) == "stdlib"
    assert origin.library_origin(_mine) is None
    assert origin.foreign(torch.relu) and not origin.foreign(_mine)
    # frozen standard-library modules: os.environ.get is Mapping.get from <frozen ...>
    assert origin.file_origin(os.environ.get.__code__.co_filename) == "stdlib"
    assert origin.library_origin(os.environ.get) == "stdlib"


def test_unwrap_foreign_reaches_the_users_function() -> None:
    assert origin.unwrap_foreign(_decorated).__name__ == "_decorated"
    assert origin.unwrap_foreign(_decorated) is not _decorated
    assert origin.unwrap_foreign(_mine) is _mine
