"""The liquid time-constant (LTC) cell (Hasani et al., AAAI 2021), ncps-compatible.

The parameters and their names are those of ``ncps.torch.LTCCell`` so that an ncps ``state_dict``
loads unchanged. The ODE unfold itself lives in :mod:`ncp_policies.cells.ltc_kernel`; this module
computes the per-sequence constants it needs.
"""
from __future__ import annotations

import math
from dataclasses import dataclass
from functools import cached_property
from typing import Any, Dict, Mapping, Optional, Sequence, Tuple

import numpy as np
import torch
import torch.nn.functional as F
from torch import Tensor, nn

from .base import (
    SequenceCell,
    Timespans,
    WiredSizes,
    cached_constants,
    cached_on_identity,
    check_wiring,
    wiring_config,
    wiring_from_config,
)
from .ltc_kernel import LTCStepInference, ltc_unfold_sequence

#: The parameters kept >= 0: through a softplus at run time (implicit constraints) or by apply_weight_constraints().
POSITIVE_PARAMS: Tuple[str, ...] = ("w", "sensory_w", "cm", "gleak")

#: ncps' initialisation ranges (uniform in [min, max]) of the LTC parameters.
DEFAULT_INIT_RANGES: Dict[str, Tuple[float, float]] = {
    "gleak": (0.001, 1.0),
    "vleak": (-0.2, 0.2),
    "cm": (0.4, 0.6),
    "w": (0.001, 1.0),
    "sigma": (3.0, 8.0),
    "mu": (0.3, 0.8),
    "sensory_w": (0.001, 1.0),
    "sensory_sigma": (3.0, 8.0),
    "sensory_mu": (0.3, 0.8),
}

MAPPINGS = ("affine", "linear", "none")


def check_init_ranges(init_ranges: Optional[Mapping[str, Sequence[float]]]) -> Dict[str, Tuple[float, float]]:
    """Validate per-parameter initialisation overrides.

    :param init_ranges: ``{name: (min, max)}`` for some of :data:`DEFAULT_INIT_RANGES`' names, or None.
    :return: the overrides as ``{name: (float min, float max)}``.
    """
    if init_ranges is None:
        return {}
    if not isinstance(init_ranges, Mapping):
        raise TypeError(f"init_ranges must be a dict {{name: (min, max)}}, got {type(init_ranges).__name__}")
    out: Dict[str, Tuple[float, float]] = {}
    for name, bounds in init_ranges.items():
        if name not in DEFAULT_INIT_RANGES:
            raise ValueError(
                f"init_ranges has unknown parameter {name!r}; allowed: {', '.join(DEFAULT_INIT_RANGES)}"
            )
        try:
            lo, hi = (float(b) for b in bounds)
        except (TypeError, ValueError):
            raise ValueError(f"init_ranges[{name!r}] must be a pair (min, max) of numbers, got {bounds!r}") from None
        if not (math.isfinite(lo) and math.isfinite(hi)) or lo > hi:
            raise ValueError(f"init_ranges[{name!r}] must be finite with min <= max, got ({lo}, {hi})")
        out[name] = (lo, hi)
    return out


def _check_mapping(value: Optional[str], name: str) -> str:
    value = "none" if value is None else value
    if value not in MAPPINGS:
        raise ValueError(f"{name} must be one of {MAPPINGS}, got {value!r}")
    return value


@dataclass
class LTCWeights:
    """The weight-only constants of an LTC cell (constrained, masked, multiplied out)."""

    sensory_w: Tensor  # (S, N) positive and masked
    sensory_w_erev: Tensor  # (S, N)
    cm: Tensor  # (N,) positive
    gleak: Tensor  # (N,) positive
    gleak_vleak: Tensor  # (N,)
    w: Tensor  # (N, N) positive and masked
    w_erev: Tensor  # (N, N)


@dataclass
class LTCSequence:
    """Per-sequence constants of the LTC unfold (see ``ltc_unfold_sequence`` for their meaning)."""

    cm_t: Tensor  # (B, T, N)
    gleak: Tensor  # (N,)
    gleak_vleak: Tensor  # (N,)
    num_s: Tensor  # (B, T, N)
    den_s: Tensor  # (B, T, N)
    w: Tensor  # (N, N)
    w_erev: Tensor  # (N, N)
    mu: Tensor  # (N, N)
    sigma: Tensor  # (N, N)

    @cached_property
    def steps(self) -> Tuple[Tuple[Tensor, Tensor, Tensor], ...]:
        """Per-step (cm_t, num_s, den_s), each (B, 1, N), split once (indexing a (B, T, N) tensor T
        times would cost O(T^2) in backward)."""
        return tuple(zip(*(v.split(1, dim=1) for v in (self.cm_t, self.num_s, self.den_s))))


class LTCCell(WiredSizes, SequenceCell):
    """A liquid time-constant cell whose synapses follow a wiring (ncps ``LTCCell`` compatible).

    :param wiring: the wiring (``ncp_policies.wirings``); built with ``in_features`` if given.
    :param in_features: number of input features F (None: the wiring must already be built).
    :param input_mapping: ``"affine"`` (x * input_w + input_b), ``"linear"`` (x * input_w) or ``"none"``.
    :param output_mapping: same choices, applied to the motor neurons' states.
    :param ode_unfolds: semi-implicit Euler steps per time step.
    :param epsilon: added to the solver's denominator.
    :param implicit_param_constraints: keep w, sensory_w, cm, gleak positive through a softplus at run
        time (True) or by clipping in :meth:`apply_weight_constraints` (False).
    :param init_ranges: overrides of :data:`DEFAULT_INIT_RANGES`, e.g. ``{"w": (0.2, 2.0)}``.
    """

    def __init__(
        self,
        wiring: Any,
        in_features: Optional[int] = None,
        input_mapping: str = "affine",
        output_mapping: str = "affine",
        ode_unfolds: int = 6,
        epsilon: float = 1e-8,
        implicit_param_constraints: bool = False,
        init_ranges: Optional[Mapping[str, Sequence[float]]] = None,
    ) -> None:
        super().__init__()
        check_wiring(wiring)
        if in_features is not None:
            wiring.build(in_features)
        if not wiring.is_built():
            raise ValueError(
                "the wiring's number of inputs is unknown: pass in_features=... or call wiring.build(n) first"
            )
        if not isinstance(ode_unfolds, int) or ode_unfolds < 1:
            raise ValueError(f"ode_unfolds must be an int >= 1, got {ode_unfolds!r}")
        if not epsilon >= 0:
            raise ValueError(f"epsilon must be >= 0, got {epsilon!r}")
        self._wiring = wiring
        self._input_mapping = _check_mapping(input_mapping, "input_mapping")
        self._output_mapping = _check_mapping(output_mapping, "output_mapping")
        self._ode_unfolds = ode_unfolds
        self._epsilon = float(epsilon)
        self._implicit_param_constraints = bool(implicit_param_constraints)
        self._init_overrides = check_init_ranges(init_ranges)
        negative = [k for k in POSITIVE_PARAMS if self._init_overrides.get(k, (0.0, 0.0))[0] < 0]
        if negative and not self._implicit_param_constraints:
            raise ValueError(
                f"init_ranges gives {', '.join(negative)} negative values, but with "
                "implicit_param_constraints=False these parameters are used as they are and clipped at 0. "
                "Give ranges >= 0, or use implicit_param_constraints=True (ranges are then raw values "
                "passed through a softplus)."
            )
        self._init_ranges = {**DEFAULT_INIT_RANGES, **self._init_overrides}

        n, s = self.state_size, self.sensory_size
        # Same creation order as ncps, so the same seed gives the same initial values.
        self.gleak = nn.Parameter(self._init_value((n,), "gleak"))
        self.vleak = nn.Parameter(self._init_value((n,), "vleak"))
        self.cm = nn.Parameter(self._init_value((n,), "cm"))
        self.sigma = nn.Parameter(self._init_value((n, n), "sigma"))
        self.mu = nn.Parameter(self._init_value((n, n), "mu"))
        self.w = nn.Parameter(self._init_value((n, n), "w"))
        self.erev = nn.Parameter(_as_float_tensor(wiring.erev_initializer()))
        self.sensory_sigma = nn.Parameter(self._init_value((s, n), "sensory_sigma"))
        self.sensory_mu = nn.Parameter(self._init_value((s, n), "sensory_mu"))
        self.sensory_w = nn.Parameter(self._init_value((s, n), "sensory_w"))
        self.sensory_erev = nn.Parameter(_as_float_tensor(wiring.sensory_erev_initializer()))
        self.register_buffer("sparsity_mask", _as_float_tensor(np.abs(wiring.adjacency_matrix)))
        self.register_buffer("sensory_sparsity_mask", _as_float_tensor(np.abs(wiring.sensory_adjacency_matrix)))
        self.input_w: Optional[nn.Parameter] = None
        self.input_b: Optional[nn.Parameter] = None
        self.output_w: Optional[nn.Parameter] = None
        self.output_b: Optional[nn.Parameter] = None
        if self._input_mapping in ("affine", "linear"):
            self.input_w = nn.Parameter(torch.ones(s))
        if self._input_mapping == "affine":
            self.input_b = nn.Parameter(torch.zeros(s))
        if self._output_mapping in ("affine", "linear"):
            self.output_w = nn.Parameter(torch.ones(self.motor_size))
        if self._output_mapping == "affine":
            self.output_b = nn.Parameter(torch.zeros(self.motor_size))

    # ------------------------------------------------------------------ sizes
    @property
    def ode_unfolds(self) -> int:
        return self._ode_unfolds

    @property
    def epsilon(self) -> float:
        return self._epsilon

    @property
    def implicit_param_constraints(self) -> bool:
        return self._implicit_param_constraints

    @property
    def input_mapping(self) -> str:
        return self._input_mapping

    @property
    def output_mapping(self) -> str:
        return self._output_mapping

    @property
    def init_range_overrides(self) -> Optional[Dict[str, list]]:
        """The ``init_ranges`` given at construction (JSON-able), or None."""
        return {k: list(v) for k, v in self._init_overrides.items()} or None

    def _init_value(self, shape: Tuple[int, ...], name: str) -> Tensor:
        lo, hi = self._init_ranges[name]
        if lo == hi:
            return torch.ones(shape) * lo
        return torch.rand(*shape) * (hi - lo) + lo

    def _positive(self, p: Tensor) -> Tensor:
        return F.softplus(p) if self._implicit_param_constraints else p

    def apply_weight_constraints(self) -> None:
        """Clip w, sensory_w, cm and gleak at 0 (explicit-constraint mode; no-op with softplus)."""
        if not self._implicit_param_constraints:
            with torch.no_grad():
                for p in (getattr(self, name) for name in POSITIVE_PARAMS):
                    p.clamp_(min=0.0)

    # ------------------------------------------------------------------ math
    def map_inputs(self, x: Tensor) -> Tensor:
        """Input mapping.

        :param x: (..., F) raw inputs.
        :return: (..., F) mapped inputs.
        """
        if self.input_w is not None:
            x = x * self.input_w
        if self.input_b is not None:
            x = x + self.input_b
        return x

    def readout(self, states: Tensor) -> Tensor:
        """Motor neurons (ids < output_dim) after the output mapping.

        :param states: (..., N) states.
        :return: (..., O) outputs.
        """
        out = states[..., : self.motor_size] if self.motor_size < self.state_size else states
        if self.output_w is not None:
            out = out * self.output_w
        if self.output_b is not None:
            out = out + self.output_b
        return out

    def prepare_sequence(self, x: Tensor, timespans: Timespans) -> LTCSequence:
        """Per-sequence constants: input mapping, sensory synapse terms for all steps, constraints.

        :param x: (B, T, F) raw inputs.
        :param timespans: float or (B, T, 1) elapsed times.
        :return: the constants of the unfold.
        """
        batch, steps = x.shape[0], x.shape[1]
        weights = cached_constants(self, None, self._weights)
        x = self.map_inputs(x)
        sensory_act = torch.sigmoid((x.unsqueeze(-1) - self.sensory_mu) * self.sensory_sigma)  # (B, T, S, N)
        num_s = (sensory_act * weights.sensory_w_erev).sum(-2)  # (B, T, N)
        den_s = (sensory_act * weights.sensory_w).sum(-2)  # (B, T, N)
        cm_t = weights.cm / (timespans / self._ode_unfolds)  # (N,) or (B, T, N)
        return LTCSequence(
            cm_t=cm_t.expand(batch, steps, self.state_size),
            gleak=weights.gleak,
            gleak_vleak=weights.gleak_vleak,
            num_s=num_s,
            den_s=den_s,
            w=weights.w,
            w_erev=weights.w_erev,
            mu=self.mu,
            sigma=self.sigma,
        )

    def _weights(self) -> LTCWeights:
        sensory_w = self._positive(self.sensory_w) * self.sensory_sparsity_mask
        gleak = self._positive(self.gleak)
        w = self._positive(self.w) * self.sparsity_mask
        return LTCWeights(
            sensory_w=sensory_w,
            sensory_w_erev=sensory_w * self.sensory_erev,
            cm=self._positive(self.cm),
            gleak=gleak,
            gleak_vleak=gleak * self.vleak,
            w=w,
            w_erev=w * self.erev,
        )

    def inference_step(self, x: Tensor, h: Tensor, timespans: Timespans) -> Tuple[Tensor, Tensor]:
        """One step without autograd, fused into one kernel call (the rollout path).

        The kernel's arguments are bound once (:class:`LTCStepInference`, rebound only when a
        parameter object is replaced); in-place parameter updates are read on every call.

        :param x: (B, F) raw inputs.
        :param h: (B, N) state before the step.
        :param timespans: float or (B, 1, 1).
        :return: ``(output (B, O) after the output mapping, state (B, N))``.
        """
        step = cached_on_identity(self, "_inference_step", self._bind_inference_step)
        return step(x, h, timespans if isinstance(timespans, float) else timespans.reshape(-1))

    def _bind_inference_step(self) -> LTCStepInference:
        return LTCStepInference(
            gleak=self.gleak,
            vleak=self.vleak,
            cm=self.cm,
            sigma=self.sigma,
            mu=self.mu,
            w=self.w,
            erev=self.erev,
            sensory_sigma=self.sensory_sigma,
            sensory_mu=self.sensory_mu,
            sensory_w=self.sensory_w,
            sensory_erev=self.sensory_erev,
            sparsity_mask=self.sparsity_mask,
            sensory_sparsity_mask=self.sensory_sparsity_mask,
            input_w=self.input_w,
            input_b=self.input_b,
            output_w=self.output_w,
            output_b=self.output_b,
            input_mapping=self._input_mapping,
            output_mapping=self._output_mapping,
            motor_size=self.motor_size,
            implicit_param_constraints=self._implicit_param_constraints,
            ode_unfolds=self._ode_unfolds,
            epsilon=self._epsilon,
        )

    def _unfold(
        self, seq: LTCSequence, v0: Tensor, cm_t: Tensor, num_s: Tensor, den_s: Tensor, keep: Optional[Tensor]
    ) -> Tensor:
        return ltc_unfold_sequence(
            v0,
            cm_t,
            seq.gleak,
            seq.gleak_vleak,
            num_s,
            den_s,
            seq.w,
            seq.w_erev,
            seq.mu,
            seq.sigma,
            self._ode_unfolds,
            self._epsilon,
            keep,
            synapse_mask=self.sparsity_mask,  # lets the compiled kernel visit only the synapses
        )

    def step(self, seq: LTCSequence, t: int, h: Tensor) -> Tensor:
        if seq.cm_t.shape[1] == 1:
            return self._unfold(seq, h, seq.cm_t, seq.num_s, seq.den_s, None)[:, 0]
        return self._unfold(seq, h, *seq.steps[t], None)[:, 0]

    def unroll(self, seq: LTCSequence, h0: Tensor, keep: Optional[Tensor]) -> Tensor:
        return self._unfold(seq, h0, seq.cm_t, seq.num_s, seq.den_s, keep)

    # ------------------------------------------------------------------ config
    def get_config(self) -> Dict[str, Any]:
        return {
            "wiring": wiring_config(self._wiring),
            "in_features": self.sensory_size,
            "input_mapping": self._input_mapping,
            "output_mapping": self._output_mapping,
            "ode_unfolds": self._ode_unfolds,
            "epsilon": self._epsilon,
            "implicit_param_constraints": self._implicit_param_constraints,
            "init_ranges": self.init_range_overrides,
        }

    @classmethod
    def from_config(cls, cfg: Dict[str, Any]) -> "LTCCell":
        cfg = dict(cfg)
        cfg["wiring"] = wiring_from_config(cfg["wiring"])
        return cls(**cfg)

    def extra_repr(self) -> str:
        return (
            f"units={self.state_size}, in_features={self.sensory_size}, motor={self.motor_size}, "
            f"ode_unfolds={self._ode_unfolds}, implicit_param_constraints={self._implicit_param_constraints}"
        )


def _as_float_tensor(a: Any) -> Tensor:
    return torch.as_tensor(np.asarray(a, dtype=np.float64), dtype=torch.get_default_dtype())
