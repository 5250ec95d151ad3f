"""The dense closed-form continuous-time (CfC) cell, ncps-compatible (``ncps.torch.CfCCell``).

Module tree and parameter names are ncps' (``backbone.{i}``, ``ff1``, ``ff2``, ``time_a``, ``time_b``,
``w_tau``, ``A``, ``sparsity_mask``), so an ncps ``state_dict`` loads unchanged. The work per step is
smaller than ncps': the input columns of the first linear map are applied to all T steps at once,
ff1 / ff2 / time_a / time_b are one fused matrix product (see :mod:`.cfc_math`), and lecun_tanh's
two scales are folded into the linear maps around it. With gradients off, these weight-only
constants are cached between calls (rollouts).
"""
from __future__ import annotations

from dataclasses import dataclass
from functools import cached_property
from typing import Any, Callable, Dict, List, Optional, Tuple, Union

import numpy as np
import torch
import torch.nn.functional as F
from torch import Tensor, nn

from .base import SequenceCell, Timespans, cached_constants
from .cfc_kernel import _extension_for, cfc_step, cfc_unroll
from .cfc_math import ACTIVATIONS, MODES, cfc_combine


@dataclass
class CfCWeights:
    """The weight-only constants of a dense CfC cell (fused heads, activation scales folded in)."""

    in_w: Tensor  # (U, F): input columns of the first linear map
    in_b: Tensor  # (U,)
    rec_wt: Tensor  # (H, U): its recurrent columns, transposed
    hidden: List[Tuple[Tensor, Tensor]]  # backbone layers 2..: (weight (U, U) transposed, bias (U,))
    head_wt: Optional[Tensor]  # (U, K*H) fused heads, transposed (None without backbone)
    head_b: Optional[Tensor]  # (K*H,)


@dataclass
class CfCSequence:
    """Per-sequence constants of a dense CfC cell."""

    weights: CfCWeights
    xp_seq: Tensor  # (B, T, U): input part of the first linear map, bias included
    ts: Union[float, Tuple[Tensor, ...]]  # float or T x (B, 1)
    activation: Callable[[Tensor], Tensor]  # the backbone activation (tanh when lecun's is folded)
    dropouts: List[Optional[nn.Dropout]]  # after backbone layers 2..

    @cached_property
    def xp(self) -> Tuple[Tensor, ...]:
        """T x (B, U), unbound once: indexing a step out of a (B, T, U) tensor T times would cost
        O(T^2) in backward."""
        return self.xp_seq.unbind(1)


class CfCCell(SequenceCell):
    """A closed-form continuous-time cell with an optional MLP backbone (ncps ``CfCCell`` compatible).

    :param input_size: number of input features F.
    :param hidden_size: number of neurons H.
    :param mode: ``"default"`` (gated), ``"pure"`` (direct closed-form solution) or ``"no_gate"``.
    :param backbone_activation: ``"lecun_tanh"``, ``"tanh"``, ``"relu"``, ``"gelu"`` or ``"silu"``.
    :param backbone_units: width of the backbone layers.
    :param backbone_layers: number of backbone layers (0: the heads read ``cat([x, h])`` directly).
    :param backbone_dropout: dropout after backbone layers 2.. (as ncps).
    :param sparsity_mask: optional (F + H, H) array ``[source, target]``; ff1 / ff2 weights are
        multiplied by ``|mask|`` (used by :class:`WiredCfCCell`).
    """

    def __init__(
        self,
        input_size: int,
        hidden_size: int,
        mode: str = "default",
        backbone_activation: str = "lecun_tanh",
        backbone_units: int = 128,
        backbone_layers: int = 1,
        backbone_dropout: float = 0.0,
        sparsity_mask: Optional[Union[np.ndarray, Tensor]] = None,
    ) -> None:
        super().__init__()
        _check_int("input_size", input_size, 1)
        _check_int("hidden_size", hidden_size, 1)
        _check_int("backbone_layers", backbone_layers, 0)
        if backbone_layers > 0:
            _check_int("backbone_units", backbone_units, 1)
        if mode not in MODES:
            raise ValueError(f"mode must be one of {MODES}, got {mode!r}")
        if backbone_activation not in ACTIVATIONS:
            raise ValueError(f"backbone_activation must be one of {tuple(ACTIVATIONS)}, got {backbone_activation!r}")
        if not 0.0 <= backbone_dropout < 1.0:
            raise ValueError(f"backbone_dropout must be in [0, 1), got {backbone_dropout!r}")
        self.input_size = input_size
        self.hidden_size = hidden_size
        self.mode = mode
        self.backbone_activation = backbone_activation
        self.backbone_units = backbone_units
        self.backbone_layers = backbone_layers
        self.backbone_dropout = float(backbone_dropout)

        mask = None
        if sparsity_mask is not None:
            if isinstance(sparsity_mask, Tensor):
                sparsity_mask = sparsity_mask.detach().cpu().numpy()
            mask = np.abs(np.asarray(sparsity_mask))
            if mask.shape != (input_size + hidden_size, hidden_size):
                raise ValueError(
                    f"sparsity_mask must have shape (input_size + hidden_size, hidden_size) = "
                    f"({input_size + hidden_size}, {hidden_size}), got {mask.shape}"
                )
            mask = torch.as_tensor(mask.T.astype(np.float64), dtype=torch.get_default_dtype())
        self.register_buffer("sparsity_mask", mask)

        self.backbone: Optional[nn.Sequential] = None
        if backbone_layers > 0:
            activation = ACTIVATIONS[backbone_activation]
            layers = [nn.Linear(input_size + hidden_size, backbone_units), activation()]
            for _ in range(1, backbone_layers):  # ncps' layout, so the module indices match
                layers += [nn.Linear(backbone_units, backbone_units), activation()]
                if backbone_dropout > 0.0:
                    layers.append(nn.Dropout(backbone_dropout))
            self.backbone = nn.Sequential(*layers)
        cat_shape = hidden_size + input_size if backbone_layers == 0 else backbone_units
        self.ff1 = nn.Linear(cat_shape, hidden_size)
        if mode == "pure":
            self.w_tau = nn.Parameter(torch.zeros(1, hidden_size))
            self.A = nn.Parameter(torch.ones(1, hidden_size))
        else:
            self.ff2 = nn.Linear(cat_shape, hidden_size)
            self.time_a = nn.Linear(cat_shape, hidden_size)
            self.time_b = nn.Linear(cat_shape, hidden_size)
        self.init_weights()

    def init_weights(self) -> None:
        """ncps' initialisation: Xavier-uniform for every trainable 2-D parameter."""
        for w in self.parameters():
            if w.dim() == 2 and w.requires_grad:
                nn.init.xavier_uniform_(w)

    # ------------------------------------------------------------------ sizes
    @property
    def state_size(self) -> int:
        return self.hidden_size

    @property
    def sensory_size(self) -> int:
        return self.input_size

    @property
    def motor_size(self) -> int:
        return self.hidden_size

    # ------------------------------------------------------------------ math
    def head_weights(self, fold_ts: Optional[float]) -> Tuple[Tensor, Tensor]:
        """The fused (masked) head weights, see :mod:`.cfc_math` for the layout.

        :param fold_ts: the float timespan to fold into the time gate, or None (per-sample timespans).
        :return: ``(weight (K*H, in), bias (K*H,))`` where ``in`` is the heads' input width.
        """
        w1 = self.ff1.weight
        if self.sparsity_mask is not None:
            w1 = w1 * self.sparsity_mask
        if self.mode == "pure":
            return w1, self.ff1.bias
        w2 = self.ff2.weight
        if self.sparsity_mask is not None:
            w2 = w2 * self.sparsity_mask
        if fold_ts is None:
            weights = (w1, w2, self.time_a.weight, self.time_b.weight)
            biases = (self.ff1.bias, self.ff2.bias, self.time_a.bias, self.time_b.bias)
        else:
            w_t = torch.add(self.time_b.weight, self.time_a.weight, alpha=fold_ts)
            b_t = torch.add(self.time_b.bias, self.time_a.bias, alpha=fold_ts)
            weights, biases = (w1, w2, w_t), (self.ff1.bias, self.ff2.bias, b_t)
        return torch.cat(weights, 0), torch.cat(biases, 0)

    def combine(self, heads: Tensor, ts: Union[float, Tensor], folded: bool) -> Tensor:
        """New state from the fused heads.

        :param heads: (B, K*H) heads.
        :param ts: float or tensor broadcastable to (B, H).
        :param folded: whether ``ts`` is folded into the heads.
        :return: (B, H) new state.
        """
        if self.mode == "pure":
            return cfc_combine(self.mode, heads, ts, folded, self.A, self.w_tau)
        return cfc_combine(self.mode, heads, ts, folded)

    def prepare_sequence(self, x: Tensor, timespans: Timespans) -> CfCSequence:
        """Hoist the input part of the first linear map and fuse the heads.

        :param x: (B, T, F) inputs.
        :param timespans: float or (B, T, 1).
        :return: the per-sequence constants.
        """
        fold = timespans if isinstance(timespans, float) else None
        weights = cached_constants(self, fold, lambda: self._weights(fold))
        xp = F.linear(x, weights.in_w, weights.in_b)
        ts = timespans if fold is not None else timespans.unbind(1)
        return CfCSequence(weights, xp, ts, self._activation(), self._dropouts())

    def _weights(self, fold_ts: Optional[float]) -> CfCWeights:
        n_in = self.input_size
        head_w, head_b = self.head_weights(fold_ts)
        if self.backbone is None:
            return CfCWeights(head_w[:, :n_in], head_b, head_w[:, n_in:].t(), [], None, None)
        # lecun_tanh(z) = 1.7159 * tanh(0.666 * z): the two scales go into the linear maps around it,
        # so each step runs one tanh (pre: this layer's input scale, post: the next layer's weights).
        pre, post = (0.666, 1.7159) if self.backbone_activation == "lecun_tanh" else (1.0, 1.0)
        linears = [m for m in self.backbone if isinstance(m, nn.Linear)]
        w, b = linears[0].weight, linears[0].bias
        if pre != 1.0:
            w, b = w * pre, b * pre
        hidden = [
            ((m.weight * (pre * post)).t(), m.bias * pre) if pre != 1.0 else (m.weight.t(), m.bias)
            for m in linears[1:]
        ]
        head_wt = (head_w * post if post != 1.0 else head_w).t()
        return CfCWeights(w[:, :n_in], b, w[:, n_in:].t(), hidden, head_wt, head_b)

    def step(self, seq: CfCSequence, t: int, h: Tensor) -> Tensor:
        weights = seq.weights
        z = torch.addmm(seq.xp[t], h, weights.rec_wt)  # (B, U)
        if weights.head_wt is not None:  # backbone
            activation = seq.activation
            z = activation(z)
            for (wt, b), dropout in zip(weights.hidden, seq.dropouts):
                z = activation(torch.addmm(b, z, wt))
                if dropout is not None:
                    z = dropout(z)
            z = torch.addmm(weights.head_b, z, weights.head_wt)  # (B, K*H)
        folded = isinstance(seq.ts, float)
        return self.combine(z, seq.ts if folded else seq.ts[t], folded)

    def _compiled_ok(self, folded: bool) -> bool:
        """Whether this configuration is one the compiled kernel (:mod:`.cfc_kernel`) covers."""
        return (
            folded
            and self.backbone is not None
            and self.mode != "pure"
            and self.backbone_activation in ("lecun_tanh", "tanh")
            and not (self.training and self.backbone_dropout > 0.0)
        )

    def unroll(self, seq: CfCSequence, h0: Tensor, keep: Optional[Tensor]) -> Optional[Tensor]:
        """The whole sequence in one compiled call when it covers this configuration, else None."""
        if not self._compiled_ok(isinstance(seq.ts, float)) or _extension_for(h0) is None:
            return None
        w = seq.weights
        return cfc_unroll(seq.xp_seq, h0, w.rec_wt, w.hidden, w.head_wt, w.head_b, keep, self.mode == "default")

    def inference_step(self, x: Tensor, h: Tensor, timespans: Timespans) -> Optional[Tuple[Tensor, Tensor]]:
        """One step without autograd on the cached fused weights (the rollout path).

        :param x: (B, F) inputs.
        :param h: (B, H) state before the step.
        :param timespans: float or (B, 1, 1).
        :return: ``(output (B, H), state (B, H))`` (the same tensor: every neuron is an output).
        """
        folded = isinstance(timespans, float)
        fold = timespans if folded else None
        w = cached_constants(self, fold, lambda: self._weights(fold))
        xp = torch.addmm(w.in_b, x, w.in_w.t())
        ext = _extension_for(x) if self._compiled_ok(folded) else None
        if ext is not None:
            state = cfc_step(ext, xp, h, w.rec_wt, w.hidden, w.head_wt, w.head_b, self.mode == "default")
        else:
            ts = timespans if folded else timespans.reshape(-1, 1)
            seq = CfCSequence(w, xp.unsqueeze(1), ts if folded else (ts,), self._activation(), self._dropouts())
            state = self.step(seq, 0, h)
        return state, state

    def _activation(self) -> Callable[[Tensor], Tensor]:
        """The backbone activation as run per step (tanh for lecun_tanh, whose scales are folded)."""
        if self.backbone is None or self.backbone_activation == "lecun_tanh":
            return torch.tanh
        return self.backbone[1]

    def _dropouts(self) -> List[Optional[nn.Dropout]]:
        """For backbone layers 2..: the dropout that follows each (None where there is none)."""
        out: List[Optional[nn.Dropout]] = []
        for m in list(self.backbone or [])[2:]:
            if isinstance(m, nn.Linear):
                out.append(None)
            elif isinstance(m, nn.Dropout):
                out[-1] = m
        return out

    def readout(self, states: Tensor) -> Tensor:
        """Every neuron is an output of a dense CfC cell. :param states: (..., H). :return: (..., H)."""
        return states

    # ------------------------------------------------------------------ config
    def get_config(self) -> Dict[str, Any]:
        mask = None
        if self.sparsity_mask is not None:
            mask = self.sparsity_mask.t().cpu().numpy().astype(int).tolist()
        return {
            "input_size": self.input_size,
            "hidden_size": self.hidden_size,
            "mode": self.mode,
            "backbone_activation": self.backbone_activation,
            "backbone_units": self.backbone_units,
            "backbone_layers": self.backbone_layers,
            "backbone_dropout": self.backbone_dropout,
            "sparsity_mask": mask,
        }

    @classmethod
    def from_config(cls, cfg: Dict[str, Any]) -> "CfCCell":
        cfg = dict(cfg)
        if cfg.get("sparsity_mask") is not None:
            cfg["sparsity_mask"] = np.asarray(cfg["sparsity_mask"])
        return cls(**cfg)

    def extra_repr(self) -> str:
        return f"input_size={self.input_size}, hidden_size={self.hidden_size}, mode={self.mode!r}"


def _check_int(name: str, value: Any, minimum: int) -> None:
    if isinstance(value, bool) or not isinstance(value, (int, np.integer)) or value < minimum:
        raise ValueError(f"{name} must be an int >= {minimum}, got {value!r}")
