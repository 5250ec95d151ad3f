"""Helpers that read a recurrent NCP layer the same way whatever its origin.

Everything that depends on *which* layer implementation is being audited lives here (and in
:mod:`ncp_policies.audit.adapters`): our ``LTC`` / ``CfC`` layers with their fused
``run(...)`` entry point, or any ncps-compatible layer that only offers
``forward(input, hx, timespans) -> (output, hx)``.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np
import torch
from torch import nn

ROLES = ("motor", "command", "inter")

Clamp = tuple[torch.Tensor, torch.Tensor]


@dataclass
class SequenceResult:
    """What one pass of a recurrent layer over a sequence produced.

    :param outputs: (B, T, O) the layer's outputs per step (motor neurons after output mapping)
    :param states: (B, T, N) every neuron's state after each step
    :param cell_states: (B, T, N) the LSTM cell state per step under mixed memory, else None
    :param hx: the final state in the layer's ``forward()`` format
    """

    outputs: torch.Tensor
    states: torch.Tensor
    cell_states: torch.Tensor | None
    hx: Any


def get_wiring(network: nn.Module) -> Any | None:
    """The wiring of a layer (``wiring`` or ncps' private ``_wiring``), or None when unwired.

    :param network: an LTC / CfC layer
    """
    for name in ("wiring", "_wiring"):
        wiring = getattr(network, name, None)
        if wiring is not None and hasattr(wiring, "units"):
            return wiring
    return None


def state_size(network: nn.Module) -> int:
    """N, the number of neurons of the layer's state.

    :param network: an LTC / CfC layer
    """
    n = getattr(network, "state_size", None)
    if isinstance(n, int):
        return n
    wiring = get_wiring(network)
    if wiring is not None:
        return int(wiring.units)
    raise TypeError(
        f"network: cannot tell the neuron count of {type(network).__name__}; "
        "expected an LTC / CfC layer with a `state_size` property or a `wiring`"
    )


def uses_mixed_memory(network: nn.Module) -> bool:
    """Whether the layer carries an LSTM cell state beside the neuron state (``mixed_memory``).

    :param network: an LTC / CfC layer
    """
    return bool(getattr(network, "use_mixed", False))


def state_neuron_ids(network: nn.Module, n_neurons: int | None = None) -> list[int]:
    """The wiring neuron id held at each state position (``layer.state_neuron_ids``).

    A wired CfC orders its state layer by layer (inter, command, motor), so position != id there;
    LTC, dense CfC and layers without ``state_neuron_ids`` (ncps) hold neuron ``k`` at position ``k``.

    :param network: an LTC / CfC layer
    :param n_neurons: keep only the first this many positions (None: the layer's N)
    :return: (N,) wiring ids, one per state position
    """
    n = state_size(network) if n_neurons is None else n_neurons
    ids = getattr(network, "state_neuron_ids", None)
    if ids is None:
        return list(range(n))
    ids = [int(i) for i in ids][:n]
    if len(ids) != n or sorted(ids) != sorted(set(ids)):
        raise ValueError(
            f"network: its state_neuron_ids {ids} do not name {n} distinct neurons; "
            "expected one wiring id per state position"
        )
    return ids


def neuron_roles(wiring: Any | None, n_neurons: int, neuron_ids: list[int] | None = None) -> list[str]:
    """Per state position ``"motor" | "command" | "inter"``.

    Uses ``wiring.roles`` when the wiring has it, else ``wiring.get_type_of_neuron(i)`` (ncps
    wirings; any other type is reported as ``"inter"``), then reorders them from wiring-id order
    to state order. An unwired layer has only ``"inter"``.

    :param wiring: the layer's wiring, or None
    :param n_neurons: N, the number of state positions
    :param neuron_ids: (N,) the wiring id at each state position (None: the identity)
    """
    if wiring is None:
        return ["inter"] * n_neurons
    units = int(getattr(wiring, "units", n_neurons))
    roles = getattr(wiring, "roles", None)
    if roles is None:
        roles = [wiring.get_type_of_neuron(i) for i in range(units)]
    roles = [r if r in ROLES else "inter" for r in roles]
    ids = list(range(n_neurons)) if neuron_ids is None else [int(i) for i in neuron_ids]
    if len(ids) != n_neurons:
        raise ValueError(f"neuron_ids: expected {n_neurons} ids (one per state position), got {len(ids)}")
    if neuron_ids is None and len(roles) != n_neurons:
        raise ValueError(f"wiring has {len(roles)} neurons but the layer's state has {n_neurons}")
    if ids and (min(ids) < 0 or max(ids) >= len(roles)):
        raise ValueError(f"neuron_ids: ids must lie in [0, {len(roles)}) (the wiring's neurons), got {ids}")
    return [roles[i] for i in ids]


def wiring_config(wiring: Any | None) -> dict[str, Any] | None:
    """A JSON-able description of the wiring (``to_config()`` when available).

    :param wiring: the layer's wiring, or None
    """
    if wiring is None:
        return None
    if hasattr(wiring, "to_config"):
        return wiring.to_config()
    config: dict[str, Any] = {"class": type(wiring).__name__}
    if hasattr(wiring, "get_config"):
        config.update(wiring.get_config())
    for key in ("units", "input_dim", "output_dim"):
        config.setdefault(key, getattr(wiring, key, None))
    for key in ("adjacency_matrix", "sensory_adjacency_matrix"):
        value = getattr(wiring, key, None)
        config[key] = np.asarray(value).tolist() if value is not None else None
    return _jsonable(config)


def _jsonable(value: Any) -> Any:
    if isinstance(value, dict):
        return {str(k): _jsonable(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_jsonable(v) for v in value]
    if isinstance(value, np.ndarray):
        return value.tolist()
    if isinstance(value, np.generic):
        return value.item()
    return value


def run_network(
    network: nn.Module,
    x: torch.Tensor,
    hx: Any = None,
    clamp: Clamp | None = None,
) -> SequenceResult:
    """Run a recurrent layer over a batch-first sequence and return every neuron's state per step.

    Uses the layer's fused ``run(x, hx, clamp=clamp)`` when it has one. An ncps-style layer (only
    ``forward``) is stepped one time step at a time; there ``clamp`` overwrites the clamped
    neurons' states after each step, so they feed the next step, not the current output.

    :param network: an LTC / CfC layer
    :param x: (B, T, F) inputs
    :param hx: (B, N), ((B, N), (B, N)) under mixed memory, or None for zeros
    :param clamp: None or (index LongTensor (K,), values (K,)) neurons held at fixed values
    """
    if x.dim() != 3:
        raise ValueError(f"x: expected a batch-first (B, T, F) tensor, got shape {tuple(x.shape)}")
    if hasattr(network, "run"):
        out = network.run(x, hx, clamp=clamp)
        return SequenceResult(out.outputs, out.states, out.cell_states, out.hx)
    mixed = uses_mixed_memory(network)
    outputs, states, cells = [], [], []
    for t in range(x.shape[1]):
        y, hx = network(x[:, t : t + 1], hx)
        h = hx[0] if mixed else hx
        if clamp is not None:
            index, values = clamp
            h = h.clone()
            h[:, index] = values.to(h.dtype)
            hx = (h, hx[1]) if mixed else h
        outputs.append(y[:, -1] if y.dim() == 3 else y)
        states.append(h)
        if mixed:
            cells.append(hx[1])
    return SequenceResult(
        torch.stack(outputs, 1),
        torch.stack(states, 1),
        torch.stack(cells, 1) if mixed else None,
        hx,
    )
