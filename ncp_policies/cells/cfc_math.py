"""The closed-form continuous-time (CfC) update (Hasani et al., Nature MI 2022): the one place it is written.

A CfC neuron layer computes "heads" from ``cat([input, h])`` with up to four linear maps
(ff1, ff2, time_a, time_b) and combines them. Here the heads are one fused matrix product
(see ``CfCCell.head_weights``), laid out as K blocks of H columns:

* mode ``"pure"``: ``[ff1]`` (K = 1);
* other modes with a per-sample timespan: ``[ff1 | ff2 | time_a | time_b]`` (K = 4);
* other modes with one float timespan ``c``: ``[ff1 | ff2 | c * time_a + time_b]`` (K = 3, folded).
"""
from __future__ import annotations

from typing import Callable, Dict, Optional, Union

import torch
from torch import Tensor, nn

MODES = ("default", "pure", "no_gate")


class LeCunTanh(nn.Module):
    """LeCun's scaled tanh, ``1.7159 * tanh(0.666 * x)`` (ncps' ``LeCun``)."""

    def forward(self, x: Tensor) -> Tensor:
        """:param x: any shape. :return: same shape."""
        return 1.7159 * torch.tanh(0.666 * x)


#: Backbone activations by name (ncps' names).
ACTIVATIONS: Dict[str, Callable[[], nn.Module]] = {
    "lecun_tanh": LeCunTanh,
    "tanh": nn.Tanh,
    "relu": nn.ReLU,
    "gelu": nn.GELU,
    "silu": nn.SiLU,
}


def head_blocks(mode: str, folded: bool) -> int:
    """Number K of H-wide blocks in the fused heads.

    :param mode: CfC mode.
    :param folded: whether the timespan is folded into the time gate weights.
    :return: 1, 3 or 4.
    """
    if mode == "pure":
        return 1
    return 3 if folded else 4


def cfc_combine(
    mode: str,
    heads: Tensor,
    ts: Union[float, Tensor],
    folded: bool,
    A: Optional[Tensor] = None,
    w_tau: Optional[Tensor] = None,
) -> Tensor:
    """Combine the heads into the new state.

    :param mode: ``"default"``, ``"pure"`` or ``"no_gate"``.
    :param heads: (B, K * H) fused heads (see the module docstring for the layout).
    :param ts: elapsed time: a float, or a tensor broadcastable to (B, H) ((B, 1) or (B, H)).
    :param folded: True when the time gate is already ``ts * time_a + time_b`` (then ``ts`` is unused
        except in mode ``"pure"``).
    :param A: (1, H) amplitude (mode ``"pure"``).
    :param w_tau: (1, H) time constant (mode ``"pure"``).
    :return: (B, H) new state.
    """
    if mode == "pure":
        # ncps: -A * exp(-ts * (|w_tau| + |ff1|)) * ff1 + A
        return -A * torch.exp(-ts * (torch.abs(w_tau) + torch.abs(heads))) * heads + A
    hidden = heads.shape[-1] // head_blocks(mode, folded)
    # split (one autograd node) rather than slicing (one zero-filled gradient per slice)
    if folded:
        ff_pre, gate_pre = heads.split([2 * hidden, hidden], 1)
    else:
        ff_pre, t_a, t_b = heads.split([2 * hidden, hidden, hidden], 1)
        gate_pre = torch.addcmul(t_b, t_a, ts)
    ff1, ff2 = torch.tanh(ff_pre).chunk(2, 1)
    gate = torch.sigmoid(gate_pre)
    if mode == "no_gate":
        return torch.addcmul(ff1, gate, ff2)
    return torch.lerp(ff1, ff2, gate)  # ff1 * (1 - gate) + gate * ff2
