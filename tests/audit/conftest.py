"""Small seeded NCP agents for the audit tests (Pendulum: 3 observation features, 1 action)."""
from __future__ import annotations

from collections.abc import Callable

import pytest
import torch
from torch import nn

ENV_ID = "Pendulum-v1"
STEPS = 25  # per episode: keeps every test well under a second or two


def _layer_classes():
    """Our LTC / CfC once they offer ``run``; the ncps reference layers until then."""
    try:
        from ncp_policies.layers import CfC, LTC  # type: ignore[attr-defined]

        if hasattr(LTC, "run"):
            from ncp_policies.wirings import AutoNCP

            return LTC, CfC, AutoNCP
    except ImportError:
        pass
    from ncps.torch import CfC, LTC
    from ncps.wirings import AutoNCP

    return LTC, CfC, AutoNCP


def make_layer(kind: str = "ltc", mixed: bool = False, seed: int = 0) -> nn.Module:
    """A seeded, untrained 7-neuron AutoNCP layer (1 motor) reading Pendulum's 3 features."""
    ltc, cfc, auto_ncp = _layer_classes()
    torch.manual_seed(seed)
    wiring = auto_ncp(7, 1, seed=seed)
    layer_cls = ltc if kind == "ltc" else cfc
    return layer_cls(3, wiring, batch_first=True, mixed_memory=mixed)



@pytest.fixture
def layer_factory() -> Callable[..., nn.Module]:
    return make_layer
