"""The module tree of a saved artifact, without torch: what host programs read from ``self``.

Host programs iterate ``ModuleList``s, read Python attributes (``self.threshold``,
``self.exit_thresholds[i]``), pass modules to regions (keyed by path) and call dynamic methods
and submodules (``_dy.call(self.early_exit, x)``). A :class:`Module` stands for one
``nn.Module``: its saved attributes, its children, its parameters (the loaded arrays) and its
dynamic methods (saved host programs). An attribute that existed but could not be saved is an
:class:`Unsaved` value that raises :class:`~dycl_jax.errors.ArtifactError` when used.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from typing import Any

from dycl_jax.errors import ArtifactError


class Unsaved:
    """A value the artifact does not carry (an object with no saved form); any use raises."""

    __slots__ = ("what",)

    def __init__(self, what: str) -> None:
        self.what = what

    def _fail(self, *args: Any, **kwargs: Any) -> Any:
        raise ArtifactError(
            f"{self.what} was not saved with the model, and the host program uses it",
            hint="keep such values out of forward's host code, or run the model converted "
            "in-process (dycl_jax.convert) instead of loaded",
        )

    def __getattr__(self, name: str) -> Any:
        self._fail()

    __call__ = __bool__ = __iter__ = __len__ = __getitem__ = __index__ = _fail
    __int__ = __float__ = __add__ = __radd__ = __mul__ = __rmul__ = __sub__ = __rsub__ = _fail
    __truediv__ = __lt__ = __le__ = __gt__ = __ge__ = __contains__ = __enter__ = _fail
    # formatting it would print something the original never showed
    __str__ = __repr__ = __format__ = __eq__ = __ne__ = __hash__ = _fail  # type: ignore[assignment]


class Module:
    """One module of the saved tree. Attributes are plain instance attributes (fast reads);
    dynamic methods come from ``_dycl_methods`` on first access."""

    _dycl_methods: dict[str, Callable[[Any], Any]]

    def __init__(self, path: str, cls: str) -> None:
        self._dycl_path = path
        self._dycl_class = cls
        self._dycl_methods = {}
        self._dycl_children: dict[str, Module] = {}

    def __getattr__(self, name: str) -> Any:
        if name.startswith("_dycl"):
            raise AttributeError(name)
        bind = self._dycl_methods.get(name)
        if bind is not None:
            return bind(self)
        raise AttributeError(
            f"'{self._dycl_class}' (module {self._dycl_path or '(root)'} of a saved artifact) "
            f"has no attribute {name!r}"
        )

    def __repr__(self) -> str:
        return f"<saved {self._dycl_class} {self._dycl_path or '(root)'}>"


class ModuleList(Module):
    """A saved ``nn.ModuleList`` / ``nn.Sequential``: iterable, sized, indexable."""

    def __iter__(self) -> Iterator[Module]:
        return iter(self._dycl_children.values())

    def __len__(self) -> int:
        return len(self._dycl_children)

    def __getitem__(self, i: Any) -> Any:
        items = list(self._dycl_children.values())
        return items[i]


class ModuleDict(Module):
    """A saved ``nn.ModuleDict``: a mapping from names to modules."""

    def __iter__(self) -> Iterator[str]:
        return iter(self._dycl_children)

    def __len__(self) -> int:
        return len(self._dycl_children)

    def __getitem__(self, k: str) -> Module:
        return self._dycl_children[k]

    def __contains__(self, k: object) -> bool:
        return k in self._dycl_children

    def keys(self) -> Any:
        return self._dycl_children.keys()

    def values(self) -> Any:
        return self._dycl_children.values()

    def items(self) -> Any:
        return self._dycl_children.items()


KINDS: dict[str, type[Module]] = {"module": Module, "list": ModuleList, "dict": ModuleDict}


_CLASSES: dict[tuple[str, str], type[Module]] = {}


def of_class(kind: str, qualname: str) -> type[Module]:
    """The skeleton class standing for the user's class ``qualname``: named like it, so host
    code reading ``type(self).__name__`` sees the original name."""
    cls = _CLASSES.get((kind, qualname))
    if cls is None:
        name = qualname.rsplit(".", 1)[-1]
        cls = type(name, (KINDS[kind],), {"__qualname__": qualname, "__slots__": ()})
        _CLASSES[(kind, qualname)] = cls
    return cls
