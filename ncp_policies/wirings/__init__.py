"""Wirings: which neuron connects to which, as signed adjacency matrices that cells read.

Attribute-compatible with ``ncps.wirings`` 1.0.1 (same seeds give bit-identical matrices), with an
idempotent ``build``, exact ``to_config`` / ``Wiring.from_config`` round trips, neuron ``roles`` and
``draw_graph``.
"""
from .base import Wiring
from .fully_connected import FullyConnected
from .ncp import NCP, AutoNCP
from .random import Random

__all__ = ["Wiring", "FullyConnected", "Random", "NCP", "AutoNCP"]
