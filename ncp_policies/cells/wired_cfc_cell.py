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

import operator
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
class _HeadAssembly:
    """How :meth:`WiredCfCCell._weights` packs the flat head parameters ``p``:
    ``packed = zeros(size).index_add(0, dst, (p * scale)[src])``."""

    src: Tensor  # (E,) long: positions in the flat head parameters (entries with factor 0 left out)
    dst: Tensor  # (E,) long: positions in the packed vector
    scale: Optional[Tensor]  # (P,): factor of each flat parameter (sparsity mask, folded timespan); None if all 0/1
    size: int  # length of the packed vector
    width: int  # K*N, the packed matrices' number of columns


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
        """All layers' fused, masked heads packed into the (K*N)-wide matrices of :class:`WiredCfCWeights`.

        One multiply (mask and folded timespan, skipped when all factors are 0 or 1), one gather and
        one scatter-add of the flat head parameters (see :meth:`_assembly`) instead of masking, fusing
        and placing every layer's blocks one by one: the same values and gradients in a handful of
        autograd nodes. (With a folded timespan other than 1, ``fold * time_a + time_b`` may differ in
        the last bit from ``CfCCell.head_weights``, where ``torch.add`` can use a fused multiply-add.)
        """
        assembly = self._assembly(fold)
        flat = torch.cat(self._head_parameters())
        if assembly.scale is not None:
            flat = flat * assembly.scale
        values = flat.index_select(0, assembly.src)
        packed = flat.new_zeros(assembly.size).index_add(0, assembly.dst, values)
        n, n_x, kn = self.state_size, self.sensory_size, assembly.width
        w_x, bias, w_rec, w_ff, w = packed.split([n_x * kn, kn, n * kn, n * kn, n * kn])
        A = w_tau = None
        if self.mode == "pure":
            A = torch.cat([layer.A for layer in self.layers()], 1)
            w_tau = torch.cat([layer.w_tau for layer in self.layers()], 1)
        return WiredCfCWeights(
            w_x.view(n_x, kn), bias, w.view(n, kn), w_rec.view(n, kn), w_ff.view(n, kn), A, w_tau
        )

    def _head_names(self) -> Tuple[str, ...]:
        """The linear maps of each layer's heads, in head-block order (see :mod:`.cfc_math`)."""
        return ("ff1",) if self.mode == "pure" else ("ff1", "ff2", "time_a", "time_b")

    def _head_parameters(self) -> List[Tensor]:
        """Per layer, its heads' weights stacked (K0*H, in + H) then flattened, and their biases (K0*H,)
        (K0 = number of head maps): concatenated, the flat vector :meth:`_assembly` indexes."""
        names = self._head_names()
        flat = []
        for layer in self.layers():
            maps = [getattr(layer, name) for name in names]
            flat.append(torch.cat([m.weight for m in maps]).view(-1))
            flat.append(torch.cat([m.bias for m in maps]))
        return flat

    def _assembly(self, fold: Optional[float]) -> _HeadAssembly:
        """The index map of :meth:`_weights`, built once per timespan fold, dtype, device and mask values.

        Rebuilt when a sparsity mask changes (in place, replaced or removed), never when the
        parameters do: the map depends only on the wiring, the masks and the folded timespan.
        """
        ref = self.layer_0.ff1.weight
        masks = [layer.sparsity_mask for layer in self.layers()]
        key = (fold, ref.dtype, ref.device)
        try:
            state = tuple(None if m is None else (m._version, m.data_ptr()) for m in masks)
        except RuntimeError:  # inference tensors (made under torch.inference_mode) have no version counter
            return self._build_assembly(fold, ref.dtype, ref.device)
        cache = self.__dict__.get("_assembly_cache")
        if cache is not None and cache[0] == key and cache[1] == state and all(map(operator.is_, cache[2], masks)):
            return cache[3]
        assembly = self._build_assembly(fold, ref.dtype, ref.device)
        self.__dict__["_assembly_cache"] = (key, state, masks, assembly)
        return assembly

    def _build_assembly(self, fold: Optional[float], dtype: torch.dtype, device: torch.device) -> _HeadAssembly:
        """Where each entry of :meth:`_head_parameters`' flat vector lands in the packed vector
        ``[w_x (F, K*N) | bias (K*N,) | w_rec (N, K*N) | w_ff (N, K*N) | w (N, K*N)]``, and with which factor.

        Layer l (neurons ``a:e``, H of them) has heads of ``in + H`` columns: column ``c < in`` reads
        input feature c (layer 0: row c of ``w_x``) or neuron ``off[l-1] + c`` of the previous layer
        (that row of ``w_ff`` and of ``w``); column ``in + j`` reads the layer's own neuron ``a + j``
        (that row of ``w_rec`` and of ``w``). Head map q of neuron ``a + h`` writes column
        ``block(q) * N + a + h``; the time maps share block 2 when the timespan is folded, ``time_a``
        then with the factor ``fold`` (``CfCCell.head_weights``' layout). ff1 / ff2 weights have their
        sparsity mask as factor; entries with factor 0 are left out, so their packed entries stay 0.
        """
        names = self._head_names()
        k_blocks = head_blocks(self.mode, fold is not None)
        n, n_x, off = self.state_size, self.sensory_size, self._offsets
        kn = k_blocks * n
        start_bias = n_x * kn  # w_x starts at 0
        start_rec = start_bias + kn
        start_ff = start_rec + n * kn
        start_w = start_ff + n * kn
        src, dst, factor_parts = [], [], []
        base = 0  # the layer's first entry in the flat parameter vector
        for l, layer in enumerate(self.layers()):
            a, e = off[l], off[l + 1]
            n_h = e - a
            n_cols = layer.ff1.weight.shape[1]
            n_in = n_cols - n_h
            # packed offset of the row(s) each weight column lands in: (in + H, 2); -1 = no second copy
            rows = torch.full((n_cols, 2), -1, dtype=torch.long)
            own = torch.arange(a, e)
            rows[n_in:, 0] = start_rec + own * kn
            rows[n_in:, 1] = start_w + own * kn
            if l == 0:
                rows[:n_in, 0] = torch.arange(n_in) * kn
            else:
                prev = torch.arange(off[l - 1], a)
                rows[:n_in, 0] = start_ff + prev * kn
                rows[:n_in, 1] = start_w + prev * kn
            mask = layer.sparsity_mask
            mask = torch.ones(n_h, n_cols, dtype=dtype) if mask is None else mask.detach().to("cpu", dtype)
            weight_factors, bias_factors = [], []
            for q, name in enumerate(names):
                factor = fold if (fold is not None and name == "time_a") else 1.0
                factors = mask if name in ("ff1", "ff2") else torch.full((n_h, n_cols), factor, dtype=dtype)
                cols = min(q, k_blocks - 1) * n + own  # (H,)
                entry = base + q * n_h * n_cols + torch.arange(n_h * n_cols).view(n_h, n_cols)
                for copy in range(2):
                    kept = (rows[:, copy] >= 0).unsqueeze(0) & (factors != 0)  # (H, in + H)
                    src.append(entry[kept])
                    dst.append((rows[:, copy].unsqueeze(0) + cols.unsqueeze(1))[kept])
                weight_factors.append(factors.reshape(-1))
                bias_factors.append(torch.full((n_h,), factor, dtype=dtype))
                if factor != 0:
                    src.append(base + len(names) * n_h * n_cols + q * n_h + torch.arange(n_h))
                    dst.append(start_bias + cols)
            factor_parts += weight_factors + bias_factors  # the flat order: the layer's weights, then biases
            base += len(names) * n_h * (n_cols + 1)
        factors = torch.cat(factor_parts)
        return _HeadAssembly(
            src=torch.cat(src).to(device),
            dst=torch.cat(dst).to(device),
            scale=None if bool(((factors == 0) | (factors == 1)).all()) else factors.to(device),
            size=start_w + n * kn,
            width=kn,
        )

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
