"""The wired CfC cell: one CfC layer per wiring layer (inter → command → motor), ncps-compatible.

The module tree is ncps' (``layer_{l}`` = :class:`CfCCell` without backbone, masked by the wiring) and
so is the state layout: the state is the concatenation of the layers' states, layer 0 first, each
layer's neurons in ``wiring.get_neurons_of_layer(l)`` order (:attr:`WiredCfCCell.state_neuron_ids`).

All layers' fused, masked head weights are packed into one (N, K*N) matrix: a state's layer-l block
feeds layer l (recurrence) and layer l+1 (feed-forward). Over a whole sequence the layers then run
as a *wavefront*: in wave k, layer l computes time step k - l, which needs only what wave k - 1
produced, so every wave is one matrix product and one elementwise combine for all layers at once
(T + L - 1 waves instead of T * L layer steps). The same numbers come out as with the layers run one
after the other per step (which :meth:`WiredCfCCell.step` does). On the CPU the wavefront runs in one
compiled call with a hand-written backward (:mod:`.wired_cfc_kernel`, modes ``"default"`` and
``"no_gate"``); elsewhere, and for mode ``"pure"``, the torch loop of :meth:`WiredCfCCell.unroll` does.
"""
from __future__ import annotations

from dataclasses import dataclass
from functools import cached_property
from typing import Any, Dict, List, Optional, Tuple

import numpy as np
import torch
import torch.nn.functional as F
from torch import Tensor

from .base import SequenceCell, WiredSizes, Timespans, cached_constants, check_wiring, wiring_config, wiring_from_config
from .cfc_cell import CfCCell
from .cfc_kernel import _extension_for
from .cfc_math import MODES, cfc_combine, head_blocks
from .wired_cfc_kernel import wired_cfc_unroll, wired_cfc_unroll_available


@dataclass
class WiredCfCWeights:
    """All layers' heads packed into one matrix (K = number of head blocks, N = neurons)."""

    w_x: Tensor  # (F, K*N): input part of the heads (layer 0 only)
    bias: Tensor  # (K*N,): every layer's bias
    w: Tensor  # (N, K*N): recurrent + feed-forward head weights
    w_rec: Tensor  # (N, K*N): each layer's own-state part
    w_ff: Tensor  # (N, K*N): each layer's previous-layer part
    A: Optional[Tensor]  # (1, N) (mode "pure")
    w_tau: Optional[Tensor]  # (1, N) (mode "pure")


@dataclass
class WiredCfCSequence:
    """Per-sequence constants of a wired CfC cell."""

    weights: WiredCfCWeights
    xp: Tensor  # (B, T, K*N): input part of the heads plus the biases
    ts: Timespans  # float or (B, T, 1)

    # Per-step views, made once: indexing a step out of a (B, T, ...) tensor T times would cost
    # O(T^2) in backward (each index's gradient is a zero-filled tensor of the full size).
    @cached_property
    def xp_steps(self) -> Tuple[Tensor, ...]:
        return self.xp.unbind(1)

    @cached_property
    def ts_steps(self) -> Optional[Tuple[Tensor, ...]]:
        return None if isinstance(self.ts, float) else self.ts.unbind(1)


class WiredCfCCell(WiredSizes, SequenceCell):
    """A CfC cell whose neurons and synapses follow a wiring (ncps ``WiredCfCCell`` compatible).

    The output is the motor neurons (wiring ids ``< output_dim``, in id order); ncps returns the last
    layer's neurons instead, which is the same for NCP wirings and all neurons for single-layer ones.

    :param input_size: number of input features F (None: the wiring must already be built).
    :param wiring: the wiring (``ncp_policies.wirings``).
    :param mode: ``"default"``, ``"pure"`` or ``"no_gate"``.
    """

    def __init__(self, input_size: Optional[int], wiring: Any, mode: str = "default") -> None:
        super().__init__()
        check_wiring(wiring)
        if input_size is not None:
            wiring.build(input_size)
        if not wiring.is_built():
            raise ValueError(
                "the wiring's number of inputs is unknown: pass input_size=... or call wiring.build(n) first"
            )
        if mode not in MODES:
            raise ValueError(f"mode must be one of {MODES}, got {mode!r}")
        self._wiring = wiring
        self.mode = mode

        layer_neurons: List[List[int]] = [list(wiring.get_neurons_of_layer(l)) for l in range(wiring.num_layers)]
        ids = [n for neurons in layer_neurons for n in neurons]
        if sorted(ids) != list(range(wiring.units)):
            raise ValueError(
                f"the wiring's layers must hold each of its {wiring.units} neurons exactly once, "
                f"got layers of sizes {[len(n) for n in layer_neurons]}"
            )
        in_features = wiring.input_dim
        for l, neurons in enumerate(layer_neurons):
            if l == 0:
                sparsity = np.asarray(wiring.sensory_adjacency_matrix)[:, neurons]
            else:
                sparsity = np.asarray(wiring.adjacency_matrix)[layer_neurons[l - 1]][:, neurons]
            sparsity = np.concatenate([sparsity, np.ones((len(neurons), len(neurons)))], axis=0)
            cell = CfCCell(in_features, len(neurons), mode, "lecun_tanh", 0, 0, 0.0, sparsity_mask=sparsity)
            self.register_module(f"layer_{l}", cell)
            in_features = len(neurons)

        self._layer_sizes = [len(n) for n in layer_neurons]
        self._offsets = np.concatenate([[0], np.cumsum(self._layer_sizes)]).tolist()
        self._state_neuron_ids = ids
        stage = torch.cat([torch.full((n,), l, dtype=torch.long) for l, n in enumerate(self._layer_sizes)])
        levels = torch.arange(self.num_layers).unsqueeze(1)
        self.register_buffer("_stage_is", stage.unsqueeze(0) == levels, persistent=False)  # (L, N)
        self.register_buffer("_active", stage.unsqueeze(0) <= levels[:-1], persistent=False)  # (L-1, N)
        motor = sorted((nid, pos) for pos, nid in enumerate(ids) if nid < wiring.output_dim)
        positions = [pos for _, pos in motor]
        self._motor_slice: Optional[Tuple[int, int]] = None
        if positions == list(range(positions[0], positions[0] + len(positions))):
            self._motor_slice = (positions[0], positions[0] + len(positions))
        self.register_buffer("_motor_index", torch.tensor(positions, dtype=torch.long), persistent=False)

    # ------------------------------------------------------------------ sizes
    @property
    def num_layers(self) -> int:
        return len(self._layer_sizes)

    @property
    def layer_sizes(self) -> List[int]:
        """Number of neurons of each layer, in state order."""
        return list(self._layer_sizes)

    @property
    def state_neuron_ids(self) -> List[int]:
        """The wiring neuron id held at each position of the state vector."""
        return list(self._state_neuron_ids)

    def layers(self) -> List[CfCCell]:
        """The per-layer cells ``layer_0 .. layer_{L-1}``."""
        return [getattr(self, f"layer_{l}") for l in range(self.num_layers)]

    # ------------------------------------------------------------------ math
    def prepare_sequence(self, x: Tensor, timespans: Timespans) -> WiredCfCSequence:
        """Pack all layers' heads into one matrix and apply layer 0's input part to all steps.

        :param x: (B, T, F) inputs.
        :param timespans: float or (B, T, 1).
        :return: the per-sequence constants.
        """
        fold = timespans if isinstance(timespans, float) else None
        weights = cached_constants(self, fold, lambda: self._weights(fold))
        return WiredCfCSequence(weights, F.linear(x, weights.w_x.t(), weights.bias), timespans)

    def _weights(self, fold: Optional[float]) -> WiredCfCWeights:
        k_blocks = head_blocks(self.mode, fold is not None)
        n, off = self.state_size, self._offsets
        ref = self.layer_0.ff1.weight
        w_rec = ref.new_zeros(n, k_blocks, n)  # [source state, head block, target neuron]
        w_ff = ref.new_zeros(n, k_blocks, n)
        biases = []
        w_x = ref.new_zeros(0)
        for l, layer in enumerate(self.layers()):
            a, e = off[l], off[l + 1]
            w, b = layer.head_weights(fold)  # (K*H, in + H)
            w = w.view(k_blocks, e - a, -1).permute(2, 0, 1)  # (in + H, K, H)
            n_in = w.shape[0] - (e - a)
            w_rec[a:e, :, a:e] = w[n_in:]
            if l == 0:
                w_x = F.pad(w[:n_in], (0, n - e)).reshape(n_in, k_blocks * n)  # (F, K*N)
            else:
                w_ff[off[l - 1] : a, :, a:e] = w[:n_in]
            biases.append(b.view(k_blocks, e - a))
        w_rec = w_rec.view(n, k_blocks * n)
        w_ff = w_ff.view(n, k_blocks * n)
        A = w_tau = None
        if self.mode == "pure":
            A = torch.cat([layer.A for layer in self.layers()], 1)
            w_tau = torch.cat([layer.w_tau for layer in self.layers()], 1)
        bias = torch.cat(biases, 1).reshape(k_blocks * n)
        return WiredCfCWeights(w_x, bias, w_rec + w_ff, w_rec, w_ff, A, w_tau)

    def inference_step(self, x: Tensor, h: Tensor, timespans: Timespans) -> Optional[Tuple[Tensor, Tensor]]:
        """One step without autograd in one compiled call (rollouts), or None where it does not apply
        (mode ``"pure"``, per-sample timespans, no compiled kernel: the sequence loop's step runs).

        :param x: (B, F) inputs.
        :param h: (B, N) state before the step.
        :param timespans: float or (B, 1, 1).
        :return: ``(motor outputs (B, O), state (B, N))`` or None.
        """
        if self.mode == "pure" or not isinstance(timespans, float):
            return None
        ext = _extension_for(x)
        if ext is None:
            return None
        w_src, w_rec, bias = cached_constants(
            self, timespans, lambda: self._step_weights(timespans), slot="_step_constants"
        )
        state = ext.wired_step(x, h, w_src, w_rec, bias, self._offsets, self.mode == "default")
        return self.readout(state), state

    def _step_weights(self, fold: float) -> Tuple[List[Tensor], List[Tensor], List[Tensor]]:
        """Per layer: the folded heads' (input part (in, 3H), own-state part (H, 3H), bias (3H,))."""
        w_src, w_rec, bias = [], [], []
        for layer, n_h in zip(self.layers(), self._layer_sizes):
            w, b = layer.head_weights(fold)  # (3H, in + H)
            n_in = w.shape[1] - n_h
            w_src.append(w[:, :n_in].t().contiguous())
            w_rec.append(w[:, n_in:].t().contiguous())
            bias.append(b)
        return w_src, w_rec, bias

    def _combine(self, seq: WiredCfCSequence, heads: Tensor, ts: Timespans) -> Tensor:
        return cfc_combine(self.mode, heads, ts, isinstance(ts, float), seq.weights.A, seq.weights.w_tau)

    def step(self, seq: WiredCfCSequence, t: int, h: Tensor) -> Tensor:
        """One time step, layers one after the other (each reads the previous layer's new state)."""
        ts = seq.ts if isinstance(seq.ts, float) else seq.ts_steps[t]
        x_t = seq.xp_steps[t]
        for l in range(self.num_layers):
            new = self._combine(seq, torch.addmm(x_t, h, seq.weights.w), ts)
            h = new if self.num_layers == 1 else torch.where(self._stage_is[l], new, h)
        return h

    def _skew(self, v: Tensor, fill: float) -> Tensor:
        """(B, T, 1) per-step values → (B, T + L - 1, N): layer l's neurons see step k - l in wave k."""
        last = self.num_layers - 1
        parts = [
            F.pad(v, (0, 0, l, last - l), value=fill).expand(-1, -1, size)
            for l, size in enumerate(self._layer_sizes)
        ]
        return torch.cat(parts, 2)

    def unroll(self, seq: WiredCfCSequence, h0: Tensor, keep: Optional[Tensor]) -> Tensor:
        """The wavefront over the whole sequence (see the module docstring): one compiled call where
        :meth:`_compiled_unroll` applies, else the torch loop below (the reference)."""
        compiled = self._compiled_unroll(seq, h0, keep)
        if compiled is not None:
            return compiled
        batch, steps = seq.xp.shape[:2]
        last = self.num_layers - 1
        xp = seq.xp  # (B, T + L - 1, K*N); drain waves reuse the last step (only layer 0 reads x)
        if last:
            xp = torch.cat([xp, xp[:, -1:].expand(-1, last, -1)], 1)
        xp_w = xp.unbind(1)  # once, see WiredCfCSequence.xp_steps
        ts_w = None if isinstance(seq.ts, float) else self._skew(seq.ts, 1.0).unbind(1)
        keep_w = None if keep is None else self._skew(keep.unsqueeze(-1), 1.0).unbind(1)
        w, w_rec, w_ff = seq.weights.w, seq.weights.w_rec, seq.weights.w_ff
        h = h0
        waves = []
        for k in range(steps + last):
            if keep_w is None:
                heads = torch.addmm(xp_w[k], h, w)
            elif last:  # the reset applies to a layer's own state, not to what the previous layer sends
                heads = torch.addmm(torch.addmm(xp_w[k], h * keep_w[k], w_rec), h, w_ff)
            else:
                heads = torch.addmm(xp_w[k], h * keep_w[k], w_rec)
            new = self._combine(seq, heads, seq.ts if ts_w is None else ts_w[k])
            if k < last:  # layers > k have not started yet: keep their initial state
                new = torch.where(self._active[k], new, h)
            waves.append(new)
            h = new
        stacked = torch.stack(waves, 1)  # (B, T + L - 1, N)
        if not last:
            return stacked
        off = self._offsets
        return torch.cat([stacked[:, l : l + steps, off[l] : off[l + 1]] for l in range(last + 1)], 2)

    def _compiled_unroll(self, seq: WiredCfCSequence, h0: Tensor, keep: Optional[Tensor]) -> Optional[Tensor]:
        """The wavefront in :mod:`.wired_cfc_kernel`, or None where it does not apply (mode ``"pure"``,
        timespans or resets that require grad, not a CPU float32 / float64 tensor, no compiled kernel)."""
        ts = None if isinstance(seq.ts, float) else seq.ts
        if self.mode == "pure" or not wired_cfc_unroll_available(h0):
            return None
        if (ts is not None and ts.requires_grad) or (keep is not None and keep.requires_grad):
            return None  # the kernel gives them no gradient
        weights = seq.weights
        if keep is None:
            w_own, w_prev = weights.w, None
        elif self.num_layers == 1:
            w_own, w_prev = weights.w_rec, None
        else:  # the reset multiplies a layer's own state, not what the previous layer sends
            w_own, w_prev = weights.w_rec, weights.w_ff
        ts_bt = None if ts is None else ts.reshape(ts.shape[0], ts.shape[1])
        return wired_cfc_unroll(seq.xp, h0, w_own, w_prev, keep, ts_bt, self._offsets, self.mode == "default")

    def readout(self, states: Tensor) -> Tensor:
        """The motor neurons' states, in wiring id order.

        :param states: (..., N) states.
        :return: (..., O) outputs.
        """
        if self._motor_slice is not None:
            a, e = self._motor_slice
            return states if (a, e) == (0, self.state_size) else states[..., a:e]
        return states.index_select(-1, self._motor_index)

    # ------------------------------------------------------------------ config
    def get_config(self) -> Dict[str, Any]:
        return {"input_size": self.sensory_size, "wiring": wiring_config(self._wiring), "mode": self.mode}

    @classmethod
    def from_config(cls, cfg: Dict[str, Any]) -> "WiredCfCCell":
        cfg = dict(cfg)
        cfg["wiring"] = wiring_from_config(cfg["wiring"])
        return cls(**cfg)

    def extra_repr(self) -> str:
        return f"units={self.state_size}, layers={self._layer_sizes}, motor={self.motor_size}, mode={self.mode!r}"
