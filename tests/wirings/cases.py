"""Wiring configurations shared by the wiring tests: one factory per case, building either package's class."""
from __future__ import annotations

from types import ModuleType
from typing import Any, Callable, List, Tuple

import numpy as np

Factory = Callable[[ModuleType], Any]

NCP_SHAPES: List[Tuple[int, int, int, int, int, int, int]] = [
    # inter, command, motor, sensory_fanout, inter_fanout, recurrent_command_synapses, motor_fanin
    (1, 1, 1, 1, 1, 0, 1),
    (5, 4, 2, 3, 2, 3, 2),
    (10, 6, 3, 1, 1, 0, 1),
    (8, 3, 5, 8, 3, 10, 3),
    (12, 8, 4, 4, 6, 5, 3),
    (3, 10, 2, 2, 7, 20, 9),
]

# One representative of each class (used by the config, roles and drawing tests).
REPRESENTATIVES: List[Tuple[str, Factory]] = [
    ("FullyConnected", lambda m: m.FullyConnected(6, output_dim=2, erev_init_seed=7, self_connections=False)),
    ("Random", lambda m: m.Random(7, output_dim=3, sparsity_level=0.4, random_seed=9)),
    ("NCP", lambda m: m.NCP(5, 4, 2, 3, 2, 3, 2, seed=1)),
    ("AutoNCP", lambda m: m.AutoNCP(16, 3, sparsity_level=0.5, seed=5)),
]


def assert_same_wiring(ours: Any, theirs: Any) -> None:
    """Both wirings have the same sizes and bit-identical int32 matrices."""
    assert (ours.units, ours.input_dim, ours.output_dim) == (theirs.units, theirs.input_dim, theirs.output_dim)
    assert ours.adjacency_matrix.dtype == theirs.adjacency_matrix.dtype == np.int32
    np.testing.assert_array_equal(ours.adjacency_matrix, theirs.adjacency_matrix)
    if theirs.sensory_adjacency_matrix is None:
        assert ours.sensory_adjacency_matrix is None
    else:
        assert ours.sensory_adjacency_matrix.dtype == theirs.sensory_adjacency_matrix.dtype == np.int32
        np.testing.assert_array_equal(ours.sensory_adjacency_matrix, theirs.sensory_adjacency_matrix)
