"""Turn the ``wiring=`` argument of the SB3 classes into a fresh Wiring, and back into JSON-able data.

Accepted forms (``motors`` is derived from the action space or the extractor's settings):

- ``None``: ``AutoNCP(units, motors, sparsity_level, seed)``.
- a ``Wiring`` object (NCP, AutoNCP, FullyConnected, Random, ...): copied, never built in place.
- a full config, as ``wiring.to_config()`` returns it (has ``"adjacency_matrix"``):
  ``Wiring.from_config(config)``, exact.
- a simple spec: ``{"class": "AutoNCP", "units": 32, "sparsity_level": 0.6}`` or just ``"AutoNCP"``:
  the class is built with these constructor arguments; for the four built-in classes ``units``, the
  motor count, the seed and the sparsity are filled in where missing.
"""
from __future__ import annotations

import copy
from typing import Any, Mapping, Union

from ncp_policies import wirings

WiringSpec = Union[wirings.Wiring, Mapping[str, Any], str, None]

# constructor argument that holds the motor count, per wiring class
_MOTOR_ARGUMENT = {
    "AutoNCP": "output_size", "NCP": "motor_neurons", "FullyConnected": "output_dim", "Random": "output_dim"
}
_SEED_ARGUMENT = {"AutoNCP": "seed", "NCP": "seed", "Random": "random_seed", "FullyConnected": "erev_init_seed"}


def resolve_wiring(
    wiring: WiringSpec,
    *,
    units: int,
    motors: int,
    sparsity_level: float = 0.5,
    seed: int = 22222,
    argument: str = "wiring",
) -> wirings.Wiring:
    """A new Wiring for one network, from any accepted form of ``wiring=``.

    :param wiring: None, a Wiring, a ``to_config()`` dict, a simple spec dict or a class name.
    :param units: total neuron count used when the spec does not give one.
    :param motors: motor neuron count used when the spec does not give one.
    :param sparsity_level: sparsity of the default AutoNCP (and of a spec that does not give one).
    :param seed: seed of the default AutoNCP (and of a spec that does not give one).
    :param argument: the argument name to quote in errors.
    :return: a Wiring owned by the caller (the argument itself is never modified).
    """
    if isinstance(wiring, wirings.Wiring):
        return copy.deepcopy(wiring)  # building mutates a wiring; keep the caller's (and the saved kwargs') intact
    if wiring is None:
        wiring = {"class": "AutoNCP"}
    elif isinstance(wiring, str):
        wiring = {"class": wiring}
    if not isinstance(wiring, Mapping):
        raise TypeError(
            f"{argument} must be None, a Wiring object, a config dict or a wiring class name, got "
            f"{type(wiring).__name__}: {wiring!r}."
        )
    if "class" not in wiring:
        raise ValueError(
            f"{argument}={dict(wiring)!r} has no 'class' key; give e.g. {{'class': 'AutoNCP', 'units': 16}} "
            "or the dict returned by wiring.to_config()."
        )
    spec = dict(wiring)
    name = spec["class"]
    if "adjacency_matrix" not in spec and name in _MOTOR_ARGUMENT:  # a simple spec: fill in what it leaves out
        spec.setdefault(_MOTOR_ARGUMENT[name], motors)
        spec.setdefault(_SEED_ARGUMENT[name], seed)
        if name != "NCP":  # NCP takes its layer sizes explicitly
            spec.setdefault("units", units)
        if name in ("AutoNCP", "Random"):
            spec.setdefault("sparsity_level", sparsity_level)
    return wirings.Wiring.from_config(spec)


def wiring_to_data(wiring: wirings.Wiring) -> dict[str, Any]:
    """JSON-able data that :func:`resolve_wiring` turns back into the same wiring (matrices included).

    :param wiring: a wiring.
    :return: ``wiring.to_config()``.
    """
    return wiring.to_config()


def neuron_roles(wiring: wirings.Wiring) -> list[str]:
    """Role of every neuron, by neuron id: ``"motor"``, ``"command"`` or ``"inter"``.

    :param wiring: a built wiring.
    :return: a list of ``wiring.units`` strings.
    """
    roles = getattr(wiring, "roles", None)
    if roles is not None:
        return list(roles)
    return [str(wiring.get_type_of_neuron(i)) for i in range(wiring.units)]
