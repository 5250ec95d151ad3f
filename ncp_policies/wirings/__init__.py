"""Wirings: which neuron connects to which (TEMPORARY re-export, replaced by our own implementation)."""
from ncps.wirings import AutoNCP, FullyConnected, NCP, Random, Wiring  # noqa: F401  # TEMP

__all__ = ["Wiring", "FullyConnected", "Random", "NCP", "AutoNCP"]
