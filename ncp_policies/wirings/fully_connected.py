"""`FullyConnected`: every neuron (and, once built, every input) connects to every neuron."""
from __future__ import annotations

from typing import Any, Dict, Optional

import numpy as np

from ._checks import check_bool, check_seed
from .base import Wiring


class FullyConnected(Wiring):
    """All-to-all wiring with random polarities (2/3 excitatory), identical to ``ncps.wirings.FullyConnected``.

    Polarities are drawn from ``np.random.default_rng(erev_init_seed)``, one ``choice([-1, 1, 1])``
    per synapse in row-major order: first the (units, units) synapses here, then the
    (input_dim, units) sensory synapses in ``build``.

    :param units: number of neurons, >= 1.
    :param output_dim: number of motor neurons (ids ``0 .. output_dim - 1``) in ``[1, units]``; None = ``units``.
    :param erev_init_seed: seed of the polarities, an int in ``[0, 2**32 - 1]``.
    :param self_connections: whether each neuron also synapses onto itself.
    """

    def __init__(
        self,
        units: int,
        output_dim: Optional[int] = None,
        erev_init_seed: int = 1111,
        self_connections: bool = True,
    ) -> None:
        super().__init__(units)
        self.self_connections: bool = check_bool("FullyConnected", "self_connections", self_connections)
        self.set_output_dim(self.units if output_dim is None else output_dim)
        self._erev_init_seed: int = check_seed("FullyConnected", "erev_init_seed", erev_init_seed)
        self._rng = np.random.default_rng(self._erev_init_seed)
        for src in range(self.units):
            for dest in range(self.units):
                if src == dest and not self.self_connections:
                    continue
                self.adjacency_matrix[src, dest] = self._rng.choice([-1, 1, 1])

    def _build_synapses(self) -> None:
        assert self.sensory_adjacency_matrix is not None and self.input_dim is not None
        for src in range(self.input_dim):
            for dest in range(self.units):
                self.sensory_adjacency_matrix[src, dest] = self._rng.choice([-1, 1, 1])

    def _constructor_args(self) -> Dict[str, Any]:
        return {
            "units": self.units,
            "output_dim": self.output_dim,
            "erev_init_seed": self._erev_init_seed,
            "self_connections": self.self_connections,
        }
