"""`Random`: a random fraction ``1 - sparsity_level`` of all possible synapses."""
from __future__ import annotations

from typing import Any, Dict, Optional

import numpy as np

from ._checks import check_real, check_seed
from .base import Wiring


class Random(Wiring):
    """Randomly sparse wiring, identical to ``ncps.wirings.Random`` for the same arguments.

    ``round(units * units * (1 - sparsity_level))`` distinct synapses are drawn with
    ``np.random.default_rng(random_seed).choice(all (src, dest) pairs, replace=False)``, each with a
    polarity ``choice([-1, 1, 1])``; ``build`` then draws ``round(input_dim * units * (1 - sparsity_level))``
    sensory synapses from the same generator.

    :param units: number of neurons, >= 1.
    :param output_dim: number of motor neurons (ids ``0 .. output_dim - 1``) in ``[1, units]``; None = ``units``.
    :param sparsity_level: fraction of absent synapses, in ``[0, 1)``.
    :param random_seed: seed of the synapses and polarities, an int in ``[0, 2**32 - 1]``.
    """

    def __init__(
        self,
        units: int,
        output_dim: Optional[int] = None,
        sparsity_level: float = 0.0,
        random_seed: int = 1111,
    ) -> None:
        super().__init__(units)
        self.set_output_dim(self.units if output_dim is None else output_dim)
        self.sparsity_level: float = check_real("Random", "sparsity_level", sparsity_level, 0.0, 1.0, False)
        self._random_seed: int = check_seed("Random", "random_seed", random_seed)
        self._rng = np.random.default_rng(self._random_seed)
        count = int(np.round(self.units * self.units * (1 - self.sparsity_level)))
        for src, dest in self._rng.choice(_all_pairs(self.units, self.units), size=count, replace=False):
            self.adjacency_matrix[src, dest] = self._rng.choice([-1, 1, 1])

    def _build_synapses(self) -> None:
        assert self.sensory_adjacency_matrix is not None and self.input_dim is not None
        count = int(np.round(self.input_dim * self.units * (1 - self.sparsity_level)))
        for src, dest in self._rng.choice(_all_pairs(self.input_dim, self.units), size=count, replace=False):
            # ncps 1.0.1 draws two polarities per sensory synapse and keeps the second: kept for bit-identity.
            self._rng.choice([-1, 1, 1])
            self.sensory_adjacency_matrix[src, dest] = self._rng.choice([-1, 1, 1])

    def _constructor_args(self) -> Dict[str, Any]:
        return {
            "units": self.units,
            "output_dim": self.output_dim,
            "sparsity_level": self.sparsity_level,
            "random_seed": self._random_seed,
        }


def _all_pairs(num_src: int, num_dest: int) -> np.ndarray:
    """All (src, dest) index pairs in row-major order, shape (num_src * num_dest, 2), int64."""
    src, dest = np.meshgrid(np.arange(num_src, dtype=np.int64), np.arange(num_dest, dtype=np.int64), indexing="ij")
    return np.stack([src.ravel(), dest.ravel()], axis=1)
