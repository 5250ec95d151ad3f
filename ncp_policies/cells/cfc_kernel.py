"""The dense CfC recurrence over a whole sequence in one compiled call (``csrc/cfc.cpp``).

This is the compiled mirror of ``CfCCell.step`` (:mod:`.cfc_math` holds the formulas) for the
common configuration: a backbone of tanh layers (lecun_tanh's scales are folded into the weights
by ``CfCCell``), mode ``"default"`` or ``"no_gate"``, one float timespan folded into the time gate
(K = 3 head blocks), no active dropout, CPU float32 / float64. ``CfCCell`` uses it when it applies
(:func:`cfc_unroll_available`) and its per-step torch path otherwise; both give the same numbers.
``NCP_POLICIES_NO_EXT=1`` (or ``USE_EXTENSION = False``) forces the torch path.
"""
from __future__ import annotations

from types import ModuleType
from typing import List, Optional, Sequence, Tuple

import torch
from torch import Tensor

from .csrc import kernel_applies, load_cfc_extension

__all__ = ["cfc_unroll", "cfc_unroll_available"]

#: Set to False to always use the pure-torch step (tests flip it with monkeypatch).
USE_EXTENSION: bool = True


def cfc_unroll_available(like: Tensor) -> bool:
    """Whether the compiled kernel runs on tensors like ``like`` (CPU, float32 / float64, built).

    :param like: a tensor of the sequence (gives device and dtype).
    """
    return _extension_for(like) is not None


def _extension_for(like: Tensor) -> Optional[ModuleType]:
    if not USE_EXTENSION or not kernel_applies(like):
        return None
    return load_cfc_extension()


def cfc_unroll(
    xp: Tensor,
    h0: Tensor,
    rec_wt: Tensor,
    hidden: Sequence[Tuple[Tensor, Tensor]],
    head_wt: Tensor,
    head_b: Tensor,
    keep: Optional[Tensor],
    gated: bool,
) -> Tensor:
    """Run the dense CfC recurrence over a sequence (differentiable, first order).

    Call only when :func:`cfc_unroll_available` is True.

    :param xp: (B, T, U) input part of the first backbone layer, its bias included (lecun scale
        folded in).
    :param h0: (B, H) state before step 0.
    :param rec_wt: (H, U) recurrent part of the first backbone layer, transposed.
    :param hidden: backbone layers 2..: ``(weight (U, U) transposed, bias (U,))`` each.
    :param head_wt: (U, 3H) fused heads ``[ff1 | ff2 | folded time gate]``, transposed.
    :param head_b: (3H,) their biases.
    :param keep: optional (B, T) factors multiplying the state before each step (``1 - resets``);
        it gets no gradient.
    :param gated: mode ``"default"`` (True) or ``"no_gate"`` (False).
    :return: (B, T, H) the state after each step.
    """
    ext = _extension_for(xp)
    if ext is None:
        raise RuntimeError("the compiled CfC kernel is not available here; check cfc_unroll_available() first")
    wts = [w for w, _ in hidden]
    bs = [b for _, b in hidden]
    tensors = (xp, h0, rec_wt, head_wt, head_b, *wts, *bs)
    if torch.is_grad_enabled() and any(t.requires_grad for t in tensors):
        return _CompiledCfC.apply(ext, keep, gated, len(hidden), *tensors)
    states, _, _, _ = ext.forward(xp, h0, rec_wt, wts, bs, head_wt, head_b, keep, gated, False)
    return states


def cfc_step(
    ext: ModuleType,
    xp: Tensor,
    h: Tensor,
    rec_wt: Tensor,
    hidden: Sequence[Tuple[Tensor, Tensor]],
    head_wt: Tensor,
    head_b: Tensor,
    gated: bool,
) -> Tensor:
    """One step without autograd (rollouts): ``cfc_unroll`` for T = 1.

    :param ext: the extension (from :func:`_extension_for`).
    :param xp: (B, U) input part of the first backbone layer, bias included.
    :param h: (B, H) state before the step.
    :return: (B, H) state after the step.
    """
    wts = [w for w, _ in hidden]
    bs = [b for _, b in hidden]
    states, _, _, _ = ext.forward(xp.unsqueeze(1), h, rec_wt, wts, bs, head_wt, head_b, None, gated, False)
    return states[:, 0]


class _CompiledCfC(torch.autograd.Function):
    """`cfc_unroll` on the compiled kernel, with its hand-written backward."""

    @staticmethod
    def forward(ctx, ext, keep, gated, n_hidden, xp, h0, rec_wt, head_wt, head_b, *hidden):  # noqa: ANN001, ANN205
        wts, bs = list(hidden[:n_hidden]), list(hidden[n_hidden:])
        states, h_in, acts, gates = ext.forward(xp, h0, rec_wt, wts, bs, head_wt, head_b, keep, gated, True)
        ctx.ext, ctx.gated, ctx.n_hidden = ext, gated, n_hidden
        ctx.save_for_backward(rec_wt, head_wt, keep, h_in, acts, gates, *wts)
        return states

    @staticmethod
    @torch.autograd.function.once_differentiable
    def backward(ctx, grad_states):  # noqa: ANN001, ANN205
        rec_wt, head_wt, keep, h_in, acts, gates, *wts = ctx.saved_tensors
        grads: List[Optional[Tensor]] = list(
            ctx.ext.backward(grad_states, rec_wt, wts, head_wt, keep, h_in, acts, gates, ctx.gated)
        )
        needs = ctx.needs_input_grad[4:]
        grads = [g if need else None for g, need in zip(grads, needs)]
        return (None, None, None, None, *grads)
