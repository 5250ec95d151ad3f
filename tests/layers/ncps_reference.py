"""Helpers to compare our modules with ncps 1.0.1 (the reference implementation)."""
from __future__ import annotations

from typing import Any, Callable, Dict, Tuple

import ncps.wirings as ncps_wirings
import torch
from torch import Tensor, nn

import ncp_policies.wirings as our_wirings

# name -> (class name, args); every wiring is built twice (ours and ncps'), with the same arguments.
WIRINGS: Dict[str, Tuple[str, tuple, dict]] = {
    "fully_connected": ("FullyConnected", (8, 3), {}),
    "random": ("Random", (9, 3), {"sparsity_level": 0.5, "random_seed": 7}),
    "ncp": ("NCP", (4, 3, 2, 3, 2, 2, 2), {"seed": 5}),
    "auto_ncp": ("AutoNCP", (12, 3), {"seed": 11}),
}


def wiring_pair(name: str) -> Tuple[Any, Any]:
    """(ours, ncps') wiring for a name of :data:`WIRINGS`."""
    cls, args, kwargs = WIRINGS[name]
    return getattr(our_wirings, cls)(*args, **kwargs), getattr(ncps_wirings, cls)(*args, **kwargs)


def rel_err(a: Tensor, b: Tensor) -> float:
    """max |a - b| / max(1, max |b|)."""
    a, b = a.detach(), b.detach()
    return float((a - b).abs().max() / b.abs().max().clamp(min=1.0))


def assert_close(a: Tensor, b: Tensor, tol: float = 1e-5, what: str = "") -> None:
    assert a.shape == b.shape, f"{what}: shape {tuple(a.shape)} vs {tuple(b.shape)}"
    err = rel_err(a, b)
    assert err <= tol, f"{what}: relative error {err:.3g} > {tol}"


def _flat(hx: Any) -> Tuple[Tensor, ...]:
    return tuple(hx) if isinstance(hx, (tuple, list)) else (hx,)


def compare_with_ncps(
    ours: nn.Module,
    ref: nn.Module,
    x: Tensor,
    hx: Any = None,
    timespans: Any = None,
    tol: float = 1e-5,
    output_map: Callable[[Tensor], Tensor] = lambda y: y,
    ref_timespans: Any = None,
) -> None:
    """Load ref's state_dict into ours (strict) and compare outputs, final states and gradients.

    :param output_map: applied to ncps' output before comparing (e.g. a motor-neuron slice).
    :param ref_timespans: timespans given to ncps if they differ from ours (None: the same).
    """
    ours.load_state_dict(ref.state_dict(), strict=True)
    gen = torch.Generator().manual_seed(123)
    y_o, h_o = ours(x, hx, timespans)
    y_r, h_r = ref(x, hx, timespans if ref_timespans is None else ref_timespans)
    y_r = output_map(y_r)
    assert_close(y_o, y_r, tol, "outputs")
    for i, (a, b) in enumerate(zip(_flat(h_o), _flat(h_r))):
        assert_close(a, b, tol, f"final state {i}")
    # A loss with random weights, so that gradients of every output / state entry count.
    w_y = torch.randn(y_r.shape, generator=gen, dtype=y_r.dtype)
    losses = []
    for y, h in ((y_o, h_o), (y_r, h_r)):
        loss = (y * w_y).sum()
        for i, s in enumerate(_flat(h)):
            loss = loss + (s * torch.linspace(-1, 1, s.shape[-1], dtype=s.dtype)).sum() * (i + 1)
        losses.append(loss)
    losses[0].backward()
    losses[1].backward()
    ours_params = dict(ours.named_parameters())
    checked = 0
    for name, p in ref.named_parameters():
        if not p.requires_grad:
            continue
        assert name in ours_params, f"ncps parameter {name} missing in ours"
        g_o, g_r = ours_params[name].grad, p.grad
        if g_r is None:
            assert g_o is None or not g_o.any(), name
            continue
        assert g_o is not None, f"no gradient for {name}"
        assert_close(g_o, g_r, tol, f"grad {name}")
        checked += 1
    assert checked > 0
