"""The wired CfC wavefront over a whole sequence in one compiled call (``csrc/wired_cfc.cpp``).

This is the compiled mirror of ``WiredCfCCell.unroll``'s torch loop (:mod:`.cfc_math` holds the
formulas) for modes ``"default"`` and ``"no_gate"``, with a float timespan folded into the time gate
(K = 3 head blocks) or per-sample timespans (K = 4), with or without resets, on CPU float32 /
float64. ``WiredCfCCell`` uses it when it applies (:func:`wired_cfc_unroll_available`) and its torch
wavefront otherwise; both give the same numbers. ``NCP_POLICIES_NO_EXT=1`` (or
``USE_EXTENSION = False``) forces the torch path.
"""
from __future__ import annotations

from types import ModuleType
from typing import List, Optional, Sequence

import torch
from torch import Tensor

from .csrc import kernel_applies, load_wired_cfc_extension

__all__ = ["wired_cfc_unroll", "wired_cfc_unroll_available"]

#: Set to False to always use the torch wavefront (tests flip it with monkeypatch).
USE_EXTENSION: bool = True


def wired_cfc_unroll_available(like: Tensor) -> bool:
    """Whether the compiled kernel runs on tensors like ``like`` (CPU, float32 / float64, built).

    :param like: a tensor of the sequence (gives device and dtype).
    """
    return _extension_for(like) is not None


def _extension_for(like: Tensor) -> Optional[ModuleType]:
    if not USE_EXTENSION or not kernel_applies(like):
        return None
    return load_wired_cfc_extension()


def wired_cfc_unroll(
    xp: Tensor,
    h0: Tensor,
    w_own: Tensor,
    w_prev: Optional[Tensor],
    keep: Optional[Tensor],
    ts: Optional[Tensor],
    offsets: Sequence[int],
    gated: bool,
) -> Tensor:
    """Run the wired CfC wavefront over a sequence (differentiable, first order).

    Call only when :func:`wired_cfc_unroll_available` is True. In wave k, layer l computes step
    ``k - l`` from ``xp[:, min(k, T - 1)] + [h * keep | h] @ [w_own; w_prev]`` (``h * keep`` alone
    without ``w_prev``, ``h`` alone without either), with ``keep`` and ``ts`` skewed per layer the
    same way; see ``csrc/wired_cfc.cpp``.

    :param xp: (B, T, K*N) input part of the heads, all layers' biases included.
    :param h0: (B, N) state before step 0 (layers in state order).
    :param w_own: (N, K*N) head weights read from the state that ``keep`` multiplies: every layer's
        own-state part with keep and several layers, else all of them.
    :param w_prev: (N, K*N) each layer's previous-layer part when it is kept apart (with keep and
        several layers), else None.
    :param keep: optional (B, T) factors multiplying each layer's own state before its step t
        (``1 - resets``); it gets no gradient.
    :param ts: None (K = 3: the timespan is folded into the heads ``[ff1 | ff2 | gate]``) or (B, T)
        per-sample timespans (K = 4: ``[ff1 | ff2 | time_a | time_b]``); it gets no gradient.
    :param offsets: the layers' first state columns, then N (length L + 1).
    :param gated: mode ``"default"`` (True) or ``"no_gate"`` (False).
    :return: (B, T, N) the state after each step.
    """
    ext = _extension_for(xp)
    if ext is None:
        raise RuntimeError(
            "the compiled wired CfC kernel is not available here; check wired_cfc_unroll_available() first"
        )
    offsets = [int(o) for o in offsets]
    tensors = (xp, h0, w_own) if w_prev is None else (xp, h0, w_own, w_prev)
    if torch.is_grad_enabled() and any(t.requires_grad for t in tensors):
        return _CompiledWiredCfC.apply(ext, keep, ts, offsets, gated, *tensors)
    states, _, _, _ = ext.forward(xp, h0, w_own, w_prev, keep, ts, offsets, gated, False)
    return states


class _CompiledWiredCfC(torch.autograd.Function):
    """`wired_cfc_unroll` on the compiled kernel, with its hand-written backward."""

    @staticmethod
    def forward(ctx, ext, keep, ts, offsets, gated, xp, h0, w_own, w_prev=None):  # noqa: ANN001, ANN205
        states, waves, srcs, acts = ext.forward(xp, h0, w_own, w_prev, keep, ts, offsets, gated, True)
        ctx.ext, ctx.offsets, ctx.gated = ext, offsets, gated
        ctx.save_for_backward(xp, h0, w_own, w_prev, keep, ts, waves, srcs, acts)
        return states

    @staticmethod
    @torch.autograd.function.once_differentiable
    def backward(ctx, grad_states):  # noqa: ANN001, ANN205
        xp, h0, w_own, w_prev, keep, ts, waves, srcs, acts = ctx.saved_tensors
        grads: List[Optional[Tensor]] = list(
            ctx.ext.backward(
                grad_states, xp, h0, w_own, w_prev, keep, ts, ctx.offsets, ctx.gated, waves, srcs, acts
            )
        )
        needs = ctx.needs_input_grad[5:]
        grads = [g if need else None for g, need in zip(grads, needs)]
        return (None, None, None, None, None, *grads)
