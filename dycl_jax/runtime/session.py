"""A converted model's session: its parameters, statistics, and the runtime programs of the
functions it runs (the forward and dynamic callees, built lazily from their IR)."""

from __future__ import annotations

import threading
from collections.abc import Callable
from typing import Any

import jax
import torch

from dycl_jax import compat
from dycl_jax.capture import guards
from dycl_jax.capture.trace import shadow_of
from dycl_jax.ir.program import Program as IRProgram
from dycl_jax.ir.program import Region
from dycl_jax.log import logger
from dycl_jax.lower import dtypes
from dycl_jax.runtime.runner import RegionRunner, Stats


class Session:
    """Per converted model: parameters, statistics, and the programs of dynamic callees."""

    def __init__(
        self,
        root: torch.nn.Module | None,
        program_factory: Callable[[Any, Any], Program],
    ) -> None:
        self.root = root
        self.params: dict[str, Any] = {}
        # Compiled regions close over their parameters (runner.FREEZE_MAX_BYTES) until the
        # weights change after convert; from then on they are arguments, so a model whose
        # weights keep changing (fine-tuned in PyTorch between calls) never recompiles for it.
        self.freeze_params = True
        guards.install_structure_watch()
        self._collect()
        self._epoch = guards.structure_epoch()
        self.stats = Stats()
        # Module attributes that host code writes (e.g. a recurrent gate's hidden state). Regions
        # read them as extra inputs so no capture bakes in a value that later changes.
        self.state_attrs: list[tuple[Any, str]] = []
        # jitted region functions by captured-graph structure (see runner.structure_key)
        self.executables: dict[tuple[Any, ...], Any] = {}
        # vmapped region executables of ConvertedModel.per_sample (see runtime.per_sample)
        self.vmapped: dict[Any, Any] = {}
        self._factory = program_factory
        self.programs: dict[tuple[Any, int], Program] = {}
        self._lock = threading.RLock()
        self.capture_lock = threading.RLock()

    def _collect(self) -> None:
        """Read the root's parameters and buffers: one name per (module, attribute), so a module
        registered twice (SkipNet's shared downsample) is re-parametrised once while tied weights
        (``b.weight = a.weight``) are an input under each name that reads them."""
        named: dict[str, torch.Tensor] = {}
        owners: list[int] = []  # id of the module holding each, in the same order
        buffers: set[str] = set()
        root = self.root
        if root is not None:
            seen: set[tuple[int, str]] = set()
            params = root.named_parameters(remove_duplicate=False)
            for n, t, is_buffer in [
                *((n, t, False) for n, t in params),
                *((n, t, True) for n, t in root.named_buffers(remove_duplicate=False)),
            ]:
                prefix, _, attr = n.rpartition(".")
                owner = root.get_submodule(prefix) if prefix else root
                if (id(owner), attr) not in seen:
                    seen.add((id(owner), attr))
                    named[n] = t
                    owners.append(id(owner))
                    if is_buffer:
                        buffers.add(n)
        self.param_names = tuple(named)
        # Buffers (batch-norm statistics, num_batches_tracked) among param_names: state, not
        # trainable parameters (flax keeps them apart as batch_stats).
        self.buffer_names = frozenset(buffers)
        self.torch_params = tuple(t.detach() for t in named.values())
        # the module's own tensors: `weight.set_(other)` swaps one's storage (and bumps its
        # version counter) where the detached alias above keeps reading the old storage
        self._live = tuple(named.values())
        self._owners = tuple(owners)
        self._meta: dict[str, torch.Tensor] | None = None  # see shadows()
        # the module's own tensor objects (detach() makes new ones each time): which changed
        self._sources = tuple(id(t) for t in named.values())
        self.params = {}
        self._load_params()
        # The sum of the tensors' version counters: any in-place write to a parameter or buffer
        # (an optimizer step, load_state_dict, `weight.mul_(...)` under no_grad) increases it.
        self._weights_version = compat.tensor_versions(self.torch_params)

    def params_under(
        self, modules: list[torch.nn.Module]
    ) -> tuple[tuple[str, ...], tuple[Any, ...]]:
        """(names, tensors) of the parameters and buffers held by ``modules`` and their
        submodules: what a capture whose live-ins are those modules re-parametrises. Tracing
        with every parameter of a large model costs a placeholder and a fake tensor each (an
        SDN-ResNet56 block's capture took 0.8 s for 363 of them); the runner traces with all of
        them if the capture touched another one (see ``shadows``)."""
        root = self.root
        if root is None or any(m is root for m in modules):
            return self.param_names, self.torch_params
        inside = {id(sub) for m in modules for sub in m.modules()}
        keep = [i for i, o in enumerate(self._owners) if o in inside]
        return (
            tuple(self.param_names[i] for i in keep),
            tuple(self.torch_params[i] for i in keep),
        )

    def shadows(self, names: tuple[str, ...]) -> dict[str, torch.Tensor]:
        """Data-free stand-ins (``capture.trace.Shadow``) for every parameter and buffer not in
        ``names``, for a capture given only ``names``: touching one in any way (an op, its
        device or shape) is recorded, and the capture is traced again with all of them."""
        if self._meta is None:
            self._meta = {n: shadow_of(t) for n, t in zip(self.param_names, self.torch_params)}
        given = set(names)
        return {n: t for n, t in self._meta.items() if n not in given}

    def _structure_changed(self) -> bool:
        """Re-read the module tree's tensors after a structural write; True if they changed.
        Same names, shapes and dtypes (a ModuleList entry replaced by a like module): compiled
        regions stay, fed the new tensors. Otherwise every region is cleared."""
        before = [(n, t.shape, t.dtype) for n, t in zip(self.param_names, self.torch_params)]
        ids, version = self._sources, self._weights_version
        with self.capture_lock:
            self._collect()
            after = [(n, t.shape, t.dtype) for n, t in zip(self.param_names, self.torch_params)]
            if self._sources == ids and after == before:
                # the same tensors: an in-place write since is still to be seen as one
                self._weights_version = version
                return False
            if after == before:
                self.freeze_params = False  # new tensors in place of the old: new weights
            for prog in self.programs.values():
                for runner in prog.runners:
                    if after == before:
                        runner.reload_params(self.params)
                    else:
                        runner.clear()
        logger.info("module tree changed since the last call: parameters re-read")
        return True

    def program_codes(self) -> frozenset[Any]:
        """The code objects of the functions converted to host programs so far."""
        return frozenset(getattr(fn, "__code__", None) for fn, _ in self.programs)

    def reread_structure(self) -> None:
        """After a guard saw another submodule in a place (``self.cur = self.b`` in forward, a
        module swapped in mid-call): the tree's tensors re-read, compiled regions kept where
        they are the same tensors (see _structure_changed)."""
        self._structure_changed()

    def _storage_swapped(self) -> bool:
        """Whether a parameter or buffer now holds other storage than its detached alias reads
        (``Tensor.set_``): the aliases must be taken again."""
        return any(
            a.data_ptr() != b.data_ptr() or a.shape != b.shape or a.stride() != b.stride()
            for a, b in zip(self._live, self.torch_params)
        )

    def rebuild(self) -> None:
        """Re-read the module tree's parameters and buffers and forget every compiled region:
        after a submodule, a parameter object or a dtype was replaced."""
        with self.capture_lock:
            self._collect()
            for prog in self.programs.values():
                for runner in prog.runners:
                    runner.clear()
        logger.info("module structure changed since convert: parameters re-read, regions cleared")

    def _load_params(self) -> None:
        with jax.enable_x64(True):
            for n, t in zip(self.param_names, self.torch_params):
                self.params[n] = jax.numpy.array(dtypes.tensor_to_numpy(t), copy=True)

    def refresh_if_stale(self) -> bool:
        """Reload parameters and buffers written in place since they were last read (checked on
        every call: one version-counter read per tensor, about 0.07 µs each). Compiled regions
        take parameters as inputs, so nothing recompiles."""
        guards.check_watched_methods(self.root)  # a method replaced on a class moves the epoch
        epoch = guards.structure_epoch()
        if epoch != self._epoch:  # a module, parameter or buffer was set somewhere since
            self._epoch = epoch
            if self._structure_changed():
                return True
        version = compat.tensor_versions(self.torch_params)
        if version == self._weights_version:
            return False
        # `weight.set_(other)`: the detached aliases are taken again, as after a structural
        # write (the new storage may have another shape); same shapes reload below
        if self._storage_swapped() and self._structure_changed():
            return True
        with self.capture_lock:
            self._load_params()
            self.freeze_params = False
            for prog in self.programs.values():
                for runner in prog.runners:
                    runner.reload_params(self.params)
            self._weights_version = version
        logger.info(
            "parameters changed in place since the last call: reloaded, and passed to compiled "
            "regions as arguments from now on"
        )
        return True

    def program_for(self, fn: Any, owner: Any) -> Program:
        key = (fn, id(owner))
        prog = self.programs.get(key)
        if prog is None:
            with self._lock:
                prog = self.programs.get(key)
                if prog is None:
                    prog = self._factory(fn, owner)
                    self.programs[key] = prog
        return prog


class Program:
    """One converted function: its IR, host function and region runners."""

    def __init__(
        self, ir: IRProgram, host_source: str, host: Callable[..., Any], owner: Any
    ) -> None:
        self.ir = ir
        self.qualname = ir.qualname
        self.host_source = host_source
        self.host = host
        self.owner = owner
        self.runners: list[RegionRunner] = []
        # the host function's globals (its runtime, regions, the user's module globals)
        self.namespace: dict[str, Any] = {}

    @property
    def regions(self) -> tuple[Region, ...]:
        return self.ir.regions

    def run(self, args: tuple[Any, ...], kwargs: dict[str, Any]) -> Any:
        if self.owner is not None:
            return self.host(self.owner, *args, **kwargs)
        return self.host(*args, **kwargs)
