"""The interface every recurrent cell offers to the sequence loop (`ncp_policies.layers.sequence`).

A cell splits its work in three parts so that the loop can hoist everything that does not depend
on the state out of the time loop:

* ``prepare_sequence(x, timespans)`` computes the per-sequence constants once (input mappings and
  the input part of every linear map for all T steps at once, constrained / masked / fused weights);
* ``step(seq, t, h)`` advances the state by one time step using those constants;
* ``unroll(seq, h0, keep)`` optionally runs the whole sequence in one fused call (returns ``None``
  when the cell has no such path, and the loop then calls ``step`` T times);
* ``inference_step(x, h, timespans)`` optionally runs one step without autograd on cached
  weight-only constants and returns ``(output, state)`` (rollouts; ``None`` when the cell has no
  such path).

The cell's own one-step ``forward`` (ncps-compatible) is built from the same three functions, so the
formulas exist once.
"""
from __future__ import annotations

import abc
import numbers
import operator
from typing import Any, Callable, Dict, List, Optional, Tuple, TypeVar, Union

import torch
from torch import Tensor, nn

#: A timespan: a positive python float shared by every sample and step, or a (B, T, 1) tensor.
Timespans = Union[float, Tensor]
T = TypeVar("T")


class WiredSizes:
    """Sizes read from the wiring a cell was built from (``self._wiring``); shared by the wired cells."""

    _wiring: Any

    @property
    def wiring(self) -> Any:
        """The wiring this cell was built from."""
        return self._wiring

    @property
    def state_size(self) -> int:
        """Number of neurons N."""
        return int(self._wiring.units)

    @property
    def sensory_size(self) -> int:
        """Number of input features F."""
        return int(self._wiring.input_dim)

    @property
    def motor_size(self) -> int:
        """Number of motor neurons O."""
        return int(self._wiring.output_dim)

    @property
    def synapse_count(self) -> int:
        """Number of synapses between neurons."""
        return int(abs(self._wiring.adjacency_matrix).sum())

    @property
    def sensory_synapse_count(self) -> int:
        """Number of synapses from inputs to neurons."""
        return int(abs(self._wiring.sensory_adjacency_matrix).sum())


class SequenceCell(nn.Module, metaclass=abc.ABCMeta):
    """Base class of the one-step cells (LTC, CfC, wired CfC) that the sequence loop drives."""

    @property
    @abc.abstractmethod
    def state_size(self) -> int:
        """Number of neurons N (size of the hidden state)."""

    @property
    @abc.abstractmethod
    def sensory_size(self) -> int:
        """Number of input features F."""

    @property
    @abc.abstractmethod
    def motor_size(self) -> int:
        """Number of motor (output) neurons O."""

    @property
    def output_size(self) -> int:
        """Size of the cell's output: the motor neurons."""
        return self.motor_size

    @abc.abstractmethod
    def prepare_sequence(self, x: Tensor, timespans: Timespans) -> Any:
        """Compute everything that does not depend on the state, once per sequence.

        :param x: (B, T, F) inputs.
        :param timespans: a positive float, or (B, T, 1) positive tensor of elapsed times.
        :return: an opaque object passed back to :meth:`step` / :meth:`unroll`.
        """

    @abc.abstractmethod
    def step(self, seq: Any, t: int, h: Tensor) -> Tensor:
        """Advance the state by time step ``t``.

        :param seq: what :meth:`prepare_sequence` returned.
        :param t: time index in ``[0, T)``.
        :param h: (B, N) state before the step.
        :return: (B, N) state after the step.
        """

    def unroll(self, seq: Any, h0: Tensor, keep: Optional[Tensor]) -> Optional[Tensor]:
        """Run the whole sequence in one fused call, or return ``None`` when there is no fused path.

        :param seq: what :meth:`prepare_sequence` returned.
        :param h0: (B, N) state before step 0.
        :param keep: optional (B, T) factors; the state is multiplied by ``keep[:, t]`` before step t.
        :return: (B, T, N) states after each step, or ``None``.
        """
        return None

    def inference_step(self, x: Tensor, h: Tensor, timespans: Timespans) -> Optional[Tuple[Tensor, Tensor]]:
        """One step without autograd through a fast path, or ``None`` when there is none.

        Called only with gradients off (rollouts); the result equals ``readout(step(...))``.

        :param x: (B, F) inputs.
        :param h: (B, N) state before the step.
        :param timespans: a float or (B, 1, 1) tensor.
        :return: ``(output (B, O), state after the step (B, N))``, or ``None``.
        """
        return None

    @abc.abstractmethod
    def readout(self, states: Tensor) -> Tensor:
        """Map states to outputs (motor neurons, after any output mapping).

        :param states: (..., N) neuron states.
        :return: (..., O) outputs.
        """

    @abc.abstractmethod
    def get_config(self) -> Dict[str, Any]:
        """JSON-able constructor arguments; ``type(self).from_config(cfg)`` rebuilds the cell."""

    @classmethod
    @abc.abstractmethod
    def from_config(cls, cfg: Dict[str, Any]) -> "SequenceCell":
        """Rebuild a cell from :meth:`get_config`'s output (weights freshly initialised)."""

    def forward(self, input: Tensor, hx: Tensor, ts: Union[float, Tensor] = 1.0):
        """One time step, ncps-compatible.

        :param input: (B, F) inputs.
        :param hx: (B, N) state before the step.
        :param ts: elapsed time: a positive float, a 0-d tensor, or a per-sample (B,) / (B, 1) tensor.
        :return: ``(output (B, O), new state (B, N))``.
        """
        if input.dim() != 2 or input.shape[1] != self.sensory_size:
            raise ValueError(
                f"{type(self).__name__} expects input of shape (batch, {self.sensory_size}), "
                f"got {tuple(input.shape)}"
            )
        if hx.shape != (input.shape[0], self.state_size):
            raise ValueError(
                f"{type(self).__name__} expects hx of shape ({input.shape[0]}, {self.state_size}), "
                f"got {tuple(hx.shape)}"
            )
        timespans = step_timespans(ts, input)
        fast = None if torch.is_grad_enabled() else self.inference_step(input, hx, timespans)
        if fast is not None:
            return fast
        h = self.step(self.prepare_sequence(input.unsqueeze(1), timespans), 0, hx)
        return self.readout(h), h


def step_timespans(ts: Union[float, Tensor], x: Tensor) -> Timespans:
    """Normalise a one-step elapsed time to the cells' convention (float or (B, 1, 1) tensor).

    :param ts: a positive number, a 0-d tensor, or a (B,) / (B, 1) tensor.
    :param x: (B, F) the step's input (gives B, dtype and device).
    :return: a float, or a (B, 1, 1) tensor.
    """
    if isinstance(ts, numbers.Real) and not isinstance(ts, bool):
        if not ts > 0:
            raise ValueError(f"elapsed time must be positive, got {ts}")
        return float(ts)
    if not isinstance(ts, Tensor):
        raise TypeError(f"elapsed time must be a float or a tensor, got {type(ts).__name__}")
    batch = x.shape[0]
    if ts.dim() == 0:
        ts = ts.reshape(1, 1, 1).expand(batch, 1, 1)
    elif ts.shape in ((batch,), (batch, 1)):
        ts = ts.reshape(batch, 1, 1)
    else:
        raise ValueError(
            f"elapsed time must be a scalar or of shape ({batch},) / ({batch}, 1), got {tuple(ts.shape)}"
        )
    ts = ts.to(dtype=x.dtype, device=x.device)
    if not bool((ts > 0).all()):
        raise ValueError("elapsed time must be positive (found values <= 0 or NaN)")
    return ts


def wiring_config(wiring: Any) -> Dict[str, Any]:
    """The JSON-able config of a wiring (``wiring.to_config()``).

    :param wiring: a wiring of ``ncp_policies.wirings``.
    :return: a dict that ``ncp_policies.wirings.Wiring.from_config`` turns back into the wiring.
    """
    to_config = getattr(wiring, "to_config", None)
    if to_config is None:
        raise TypeError(
            f"wiring {type(wiring).__name__} has no to_config(), so it cannot be saved; "
            "build the model with a wiring from ncp_policies.wirings"
        )
    return to_config()


def wiring_from_config(cfg: Dict[str, Any]) -> Any:
    """Rebuild a wiring from :func:`wiring_config`'s output.

    :param cfg: the wiring's ``to_config()`` dict.
    :return: the wiring (of the subclass named in the config).
    """
    from ..wirings import Wiring

    return Wiring.from_config(cfg)


def check_wiring(wiring: Any, name: str = "wiring") -> None:
    """Raise a TypeError when ``wiring`` does not look like a wiring.

    :param wiring: the object to check.
    :param name: the argument's name, for the message.
    """
    needed = ("units", "adjacency_matrix", "sensory_adjacency_matrix", "build", "is_built")
    missing = [a for a in needed if not hasattr(wiring, a)]
    if missing:
        raise TypeError(
            f"{name} must be an int or a wiring from ncp_policies.wirings, got "
            f"{type(wiring).__name__} (missing {', '.join(missing)})"
        )


def cached_constants(module: nn.Module, key: Any, build: Callable[[], T], slot: str = "_constants_cache") -> T:
    """``build()``, reused while gradients are off and no parameter or buffer has changed.

    The weight-only constants of a cell (fused, masked, constrained matrices) are the same for
    every rollout step; rebuilding them costs more than the step itself. With gradients on they
    are always rebuilt (they must be part of the autograd graph). A parameter counts as changed when
    its storage (``.data`` reassigned, ``.to()``) or its version counter (in-place update by an
    optimiser, ``load_state_dict``, ``clamp_``) changes, or when it is replaced by another object.

    :param module: the cell; the cache lives in its ``__dict__``.
    :param key: anything else the constants depend on (e.g. a folded timespan).
    :param build: computes the constants.
    :param slot: the cache's name in ``module.__dict__`` (one value per slot).
    :return: the constants.
    """
    if torch.is_grad_enabled():
        return build()
    tensors = _module_tensors(module)
    try:
        state = (*map(_version_of, tensors), *map(Tensor.data_ptr, tensors))
    except RuntimeError:  # inference tensors (made under torch.inference_mode) have no version counter
        return build()
    cache = module.__dict__.get(slot)
    if cache is not None and cache[0] == key and cache[1] == state and _same_objects(cache[2], tensors):
        return cache[3]
    value = build()
    module.__dict__[slot] = (key, state, tensors, value)
    return value


def cached_on_identity(module: nn.Module, name: str, build: Callable[[], T]) -> T:
    """``build()``, reused while the module tree holds the same parameter and buffer objects.

    For values that *refer to* the parameters rather than being computed from them (a bound
    argument tuple): in-place updates are seen through the references, so only a replaced
    parameter (``module.w = nn.Parameter(...)``, ``load_state_dict(..., assign=True)``) rebuilds.

    :param module: the cell; the cache lives in its ``__dict__`` under ``name``.
    :param name: the cache's name (several caches may live on one module).
    :param build: computes the value.
    :return: the value.
    """
    tensors = _module_tensors(module)
    cache = module.__dict__.get(name)
    if cache is not None and _same_objects(cache[0], tensors):
        return cache[1]
    value = build()
    module.__dict__[name] = (tensors, value)
    return value


def _version_of(t: Tensor) -> int:
    return t._version


def _module_tensors(module: nn.Module) -> List[Tensor]:
    """Every parameter and buffer of the module tree (the tree itself is fixed at construction)."""
    modules = module.__dict__.get("_constants_modules")
    if modules is None:
        modules = module.__dict__["_constants_modules"] = list(module.modules())
    return [t for m in modules for d in (m._parameters, m._buffers) for t in d.values() if t is not None]


def _same_objects(a: List[Any], b: List[Any]) -> bool:
    return len(a) == len(b) and all(map(operator.is_, a, b))
