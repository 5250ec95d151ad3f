"""ncp-policies: Neural Circuit Policies (LTC / CfC) for Gymnasium and stable-baselines3."""
from __future__ import annotations

__version__ = "0.1.0"

__all__ = ["LTCCell", "CfCCell", "WiredCfCCell", "LSTMCell", "LTC", "CfC", "save", "load", "wirings"]


def __getattr__(name: str):  # lazy: importing a sub-package does not pull in the rest
    if name in ("LTCCell", "CfCCell", "WiredCfCCell", "LSTMCell"):
        from . import cells

        return getattr(cells, name)
    if name in ("LTC", "CfC"):
        from . import layers

        return getattr(layers, name)
    if name in ("save", "load"):
        from . import io

        return getattr(io, name)
    if name == "wirings":
        import importlib

        return importlib.import_module(".wirings", __name__)
    raise AttributeError(f"module 'ncp_policies' has no attribute {name!r}")
