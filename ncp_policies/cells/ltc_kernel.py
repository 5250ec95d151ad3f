"""The LTC ODE unfold over a whole sequence: the one place the LTC recurrence is written.

`ltc_unfold_sequence` runs the fused semi-implicit Euler solver of the LTC cell
(Hasani et al., 2021) over T steps. Everything that does not depend on the state (sensory synapse
terms, positive constraints, masks, reversal products, the per-step ``cm / dt``) is computed by
the caller once per sequence and passed in.

Two implementations share one math: the pure-torch functions here (``*_torch``, the reference,
used on non-CPU devices and as the fallback) and their compiled mirror ``csrc/ltc.cpp`` (CPU,
float32 / float64, forward and hand-written backward over the wiring's synapse list; built on
first use, see `ncp_policies.cells.csrc`). The compiled path is used when it is available and the
tensors are on the CPU; ``NCP_POLICIES_NO_EXT=1`` (or ``USE_EXTENSION = False``) forces torch.

`ltc_step_inference` is the fused rollout step: input mapping, sensory synapses, the unfolds and
the output mapping of one LTC cell step in one call, without autograd.
"""
from __future__ import annotations

from types import ModuleType
from typing import Optional, Union

import torch
import torch.nn.functional as F
from torch import Tensor

from .csrc import kernel_applies, load_ltc_extension

__all__ = [
    "ltc_unfold_sequence",
    "ltc_unfold_sequence_torch",
    "ltc_step_inference",
    "ltc_step_inference_torch",
    "LTCStepInference",
    "extension_available",
]

#: Set to False to always use the pure-torch kernels (tests flip it with monkeypatch).
USE_EXTENSION: bool = True

_SCALED_MAPPINGS = ("affine", "linear")


def extension_available() -> bool:
    """Whether the compiled CPU kernel is in use (builds it on the first call, see `csrc`)."""
    return _extension() is not None


def _extension() -> Optional[ModuleType]:
    return load_ltc_extension() if USE_EXTENSION else None


def _use_compiled(x: Tensor) -> Optional[ModuleType]:
    """The extension if it should run on tensors like ``x`` (CPU, float32 / float64), else None."""
    if not kernel_applies(x):
        return None
    return _extension()


# ------------------------------------------------------------------------------------------------
# Sequence unfold (training path)


def ltc_unfold_sequence(
    v0: Tensor,
    cm_t: Tensor,
    gleak: Tensor,
    gleak_vleak: Tensor,
    num_s: Tensor,
    den_s: Tensor,
    w: Tensor,
    w_erev: Tensor,
    mu: Tensor,
    sigma: Tensor,
    ode_unfolds: int,
    epsilon: float,
    keep: Optional[Tensor] = None,
    *,
    synapse_mask: Optional[Tensor] = None,
) -> Tensor:
    """Run the LTC recurrence over a sequence.

    Differentiable with respect to every tensor argument except ``synapse_mask`` (first order;
    the compiled path has no double backward).

    :param v0: (B, N) state before step 0.
    :param cm_t: (B, T, N) membrane capacitance over the unfold step, ``cm / (timespan / unfolds)``
        (cm_t, num_s and den_s may also be anything that broadcasts to (B, T, N)).
    :param gleak: (N,) leak conductance (already constrained positive).
    :param gleak_vleak: (N,) ``gleak * vleak``.
    :param num_s: (B, T, N) sensory numerator ``sum_i w_s * sigmoid_s * erev_s``.
    :param den_s: (B, T, N) sensory denominator ``sum_i w_s * sigmoid_s``.
    :param w: (N, N) synaptic weight ``[pre, post]``, positive and multiplied by the sparsity mask.
    :param w_erev: (N, N) ``w * erev``.
    :param mu: (N, N) sigmoid centres.
    :param sigma: (N, N) sigmoid slopes.
    :param ode_unfolds: solver steps per time step.
    :param epsilon: added to the denominator.
    :param keep: optional (B, T); the state is multiplied by ``keep[:, t]`` before step t (resets).
    :param synapse_mask: optional (N, N) sparsity mask ``[pre, post]`` (e.g. ``|adjacency|``).
        When given, the result is that of ``w * synapse_mask`` and ``w_erev * synapse_mask`` (a
        no-op when they are already masked with it) and the compiled kernel visits only its
        nonzero synapses: pass it for speed. The mask itself gets no gradient.
    :return: (B, T, N) the state after each step.
    """
    ext = _use_compiled(v0)
    if ext is None:
        return ltc_unfold_sequence_torch(
            v0, cm_t, gleak, gleak_vleak, num_s, den_s, w, w_erev, mu, sigma, ode_unfolds,
            epsilon, keep, synapse_mask=synapse_mask,
        )
    if v0.dim() != 2 or cm_t.dim() != 3:
        raise ValueError(
            f"v0 must have shape (B, N) and cm_t (B, T, N); got v0 {tuple(v0.shape)}, "
            f"cm_t {tuple(cm_t.shape)}"
        )
    shape = (v0.shape[0], cm_t.shape[1], v0.shape[1])
    cm_t = _broadcast("cm_t", cm_t, shape)
    num_s = _broadcast("num_s", num_s, shape)
    den_s = _broadcast("den_s", den_s, shape)
    if synapse_mask is not None:
        synapse_mask = synapse_mask.detach().to(v0.dtype)
    tensors = (v0, cm_t, gleak, gleak_vleak, num_s, den_s, w, w_erev, mu, sigma, keep)
    if torch.is_grad_enabled() and any(t is not None and t.requires_grad for t in tensors):
        return _CompiledUnfold.apply(*tensors, synapse_mask, ode_unfolds, epsilon)
    out, _ = ext.unfold_forward(
        v0, cm_t, gleak, gleak_vleak, num_s, den_s, w, w_erev, mu, sigma, synapse_mask,
        ode_unfolds, epsilon, keep, False,
    )
    return out


def ltc_unfold_sequence_torch(
    v0: Tensor,
    cm_t: Tensor,
    gleak: Tensor,
    gleak_vleak: Tensor,
    num_s: Tensor,
    den_s: Tensor,
    w: Tensor,
    w_erev: Tensor,
    mu: Tensor,
    sigma: Tensor,
    ode_unfolds: int,
    epsilon: float,
    keep: Optional[Tensor] = None,
    *,
    synapse_mask: Optional[Tensor] = None,
) -> Tensor:
    """The pure-torch reference of `ltc_unfold_sequence` (same arguments, same result)."""
    if synapse_mask is not None:
        mask = synapse_mask.detach().to(w.dtype)
        w, w_erev = w * mask, w_erev * mask
    steps = cm_t.shape[1]
    v = v0
    out = []
    for t in range(steps):
        if keep is not None:
            v = v * keep[:, t, None]
        cm = cm_t[:, t]
        num_const = gleak_vleak + num_s[:, t]
        den_const = cm + gleak + den_s[:, t]
        for _ in range(ode_unfolds):
            s = torch.sigmoid((v.unsqueeze(-1) - mu) * sigma)  # (B, N_pre, N_post)
            num = cm * v + num_const + (s * w_erev).sum(1)
            den = den_const + (s * w).sum(1)
            v = num / (den + epsilon)
        out.append(v)
    return torch.stack(out, 1)


def _broadcast(name: str, t: Tensor, shape: tuple[int, int, int]) -> Tensor:
    """``t`` expanded to ``shape`` (B, T, N) (a view; its gradient is summed back by autograd)."""
    if t.shape == shape:
        return t
    try:
        return t.expand(shape)
    except RuntimeError:
        raise ValueError(
            f"{name} must have shape (B, T, N) = {shape} or broadcast to it, got {tuple(t.shape)}"
        ) from None


class _CompiledUnfold(torch.autograd.Function):
    """`ltc_unfold_sequence` on the compiled kernel, with its hand-written backward."""

    @staticmethod
    def forward(ctx, v0, cm_t, gleak, gleak_vleak, num_s, den_s, w, w_erev, mu, sigma, keep,
                synapse_mask, ode_unfolds, epsilon):  # noqa: ANN001, ANN205 -- autograd API
        ctx.ext = _extension()  # the same kernel in backward, whatever USE_EXTENSION says by then
        out, states = ctx.ext.unfold_forward(
            v0, cm_t, gleak, gleak_vleak, num_s, den_s, w, w_erev, mu, sigma, synapse_mask,
            ode_unfolds, epsilon, keep, True,
        )
        ctx.save_for_backward(v0, cm_t, gleak, gleak_vleak, num_s, den_s, w, w_erev, mu, sigma,
                              keep, synapse_mask, states)
        ctx.ode_unfolds = ode_unfolds
        ctx.epsilon = epsilon
        return out

    @staticmethod
    @torch.autograd.function.once_differentiable
    def backward(ctx, grad_out):  # noqa: ANN001, ANN205 -- autograd API
        (v0, cm_t, gleak, gleak_vleak, num_s, den_s, w, w_erev, mu, sigma, keep, synapse_mask,
         states) = ctx.saved_tensors
        grads = ctx.ext.unfold_backward(
            grad_out, v0, cm_t, gleak, gleak_vleak, num_s, den_s, w, w_erev, mu, sigma,
            synapse_mask, ctx.ode_unfolds, ctx.epsilon, keep, states,
        )
        grads = [g if need else None for g, need in zip(grads, ctx.needs_input_grad)]
        return (*grads, None, None, None)


# ------------------------------------------------------------------------------------------------
# Fused single step (rollout path)


def ltc_step_inference(
    x: Tensor,
    v: Tensor,
    timespan: Union[float, Tensor],
    *,
    gleak: Tensor,
    vleak: Tensor,
    cm: Tensor,
    sigma: Tensor,
    mu: Tensor,
    w: Tensor,
    erev: Tensor,
    sensory_sigma: Tensor,
    sensory_mu: Tensor,
    sensory_w: Tensor,
    sensory_erev: Tensor,
    sparsity_mask: Tensor,
    sensory_sparsity_mask: Tensor,
    input_w: Optional[Tensor] = None,
    input_b: Optional[Tensor] = None,
    output_w: Optional[Tensor] = None,
    output_b: Optional[Tensor] = None,
    input_mapping: Optional[str] = "affine",
    output_mapping: Optional[str] = "affine",
    motor_size: int,
    implicit_param_constraints: bool,
    ode_unfolds: int = 6,
    epsilon: float = 1e-8,
) -> tuple[Tensor, Tensor]:
    """One LTC cell step (ncps ``LTCCell.forward``) in one fused call, without autograd.

    The parameters are the raw (unconstrained) ones of the cell, named as in ncps 1.0.1's
    ``LTCCell``. The outputs never require grad: call it under ``torch.no_grad()`` for rollouts
    and use `ltc_unfold_sequence` to train. CPU float32 / float64 tensors run the compiled kernel,
    anything else `ltc_step_inference_torch` (same math).

    :param x: (B, F) inputs.
    :param v: (B, N) state before the step.
    :param timespan: elapsed time, a float or a tensor of B elements (or one).
    :param gleak: (N,) leak conductance (raw).
    :param vleak: (N,) leak potential.
    :param cm: (N,) membrane capacitance (raw).
    :param sigma: (N, N) synapse sigmoid slopes ``[pre, post]``.
    :param mu: (N, N) synapse sigmoid centres.
    :param w: (N, N) synapse weights (raw).
    :param erev: (N, N) synapse reversal potentials.
    :param sensory_sigma: (F, N) sensory sigmoid slopes ``[input, post]``.
    :param sensory_mu: (F, N) sensory sigmoid centres.
    :param sensory_w: (F, N) sensory weights (raw).
    :param sensory_erev: (F, N) sensory reversal potentials.
    :param sparsity_mask: (N, N) ``|adjacency_matrix|`` of the wiring.
    :param sensory_sparsity_mask: (F, N) ``|sensory_adjacency_matrix|``.
    :param input_w: (F,) input scale; required when ``input_mapping`` is affine or linear.
    :param input_b: (F,) input shift; required when ``input_mapping`` is affine.
    :param output_w: (O,) output scale; required when ``output_mapping`` is affine or linear.
    :param output_b: (O,) output shift; required when ``output_mapping`` is affine.
    :param input_mapping: "affine" (``x * input_w + input_b``), "linear" (``x * input_w``) or
        anything else for none, as in ncps.
    :param output_mapping: the same for the output, with ``output_w`` / ``output_b``.
    :param motor_size: O, the output is the first O neurons' states (mapped).
    :param implicit_param_constraints: True: ``softplus`` makes w, sensory_w, cm, gleak positive;
        False: they are used as given (ncps clips them after each optimiser step).
    :param ode_unfolds: solver steps per time step.
    :param epsilon: added to the denominator.
    :return: (output (B, O), new state (B, N)).
    """
    input_w, input_b = _mapping_params("input", input_mapping, input_w, input_b)
    output_w, output_b = _mapping_params("output", output_mapping, output_w, output_b)
    ext = _use_compiled(x)
    if ext is None:
        return ltc_step_inference_torch(
            x, v, timespan, gleak=gleak, vleak=vleak, cm=cm, sigma=sigma, mu=mu, w=w, erev=erev,
            sensory_sigma=sensory_sigma, sensory_mu=sensory_mu, sensory_w=sensory_w,
            sensory_erev=sensory_erev, sparsity_mask=sparsity_mask,
            sensory_sparsity_mask=sensory_sparsity_mask, input_w=input_w, input_b=input_b,
            output_w=output_w, output_b=output_b, input_mapping=input_mapping,
            output_mapping=output_mapping, motor_size=motor_size,
            implicit_param_constraints=implicit_param_constraints, ode_unfolds=ode_unfolds,
            epsilon=epsilon,
        )
    if isinstance(timespan, Tensor):
        ts_tensor, ts_float = timespan, 1.0
    else:
        ts_tensor, ts_float = None, float(timespan)
    return ext.step_inference(
        x, v, ts_tensor, ts_float, gleak, vleak, cm, sigma, mu, w, erev, sensory_sigma,
        sensory_mu, sensory_w, sensory_erev, sparsity_mask, sensory_sparsity_mask, input_w,
        input_b, output_w, output_b, motor_size, implicit_param_constraints, ode_unfolds, epsilon,
    )


def ltc_step_inference_torch(
    x: Tensor,
    v: Tensor,
    timespan: Union[float, Tensor],
    *,
    gleak: Tensor,
    vleak: Tensor,
    cm: Tensor,
    sigma: Tensor,
    mu: Tensor,
    w: Tensor,
    erev: Tensor,
    sensory_sigma: Tensor,
    sensory_mu: Tensor,
    sensory_w: Tensor,
    sensory_erev: Tensor,
    sparsity_mask: Tensor,
    sensory_sparsity_mask: Tensor,
    input_w: Optional[Tensor] = None,
    input_b: Optional[Tensor] = None,
    output_w: Optional[Tensor] = None,
    output_b: Optional[Tensor] = None,
    input_mapping: Optional[str] = "affine",
    output_mapping: Optional[str] = "affine",
    motor_size: int,
    implicit_param_constraints: bool,
    ode_unfolds: int = 6,
    epsilon: float = 1e-8,
) -> tuple[Tensor, Tensor]:
    """The pure-torch reference of `ltc_step_inference` (same arguments, same result)."""
    input_w, input_b = _mapping_params("input", input_mapping, input_w, input_b)
    output_w, output_b = _mapping_params("output", output_mapping, output_w, output_b)
    pos = F.softplus if implicit_param_constraints else (lambda t: t)
    with torch.no_grad():
        if input_w is not None:
            x = x * input_w
        if input_b is not None:
            x = x + input_b
        act = pos(sensory_w) * torch.sigmoid((x.unsqueeze(-1) - sensory_mu) * sensory_sigma)
        act = act * sensory_sparsity_mask  # (B, F, N)
        num_s = (act * sensory_erev).sum(1)
        den_s = act.sum(1)
        if isinstance(timespan, Tensor):
            timespan = timespan.reshape(-1, 1)  # (B, 1) or (1, 1)
        cm_t = pos(cm) / (timespan / ode_unfolds)  # (N,) or (B, N)
        batch, units = v.shape
        g = pos(gleak)
        w_m = pos(w) * sparsity_mask
        v_new = ltc_unfold_sequence_torch(
            v, cm_t.expand(batch, units).unsqueeze(1), g, g * vleak, num_s.unsqueeze(1),
            den_s.unsqueeze(1), w_m, w_m * erev, mu, sigma, ode_unfolds, epsilon,
        )[:, 0]
        out = v_new[:, :motor_size]
        if output_w is not None:
            out = out * output_w
        if output_b is not None:
            out = out + output_b
    return out, v_new


def _mapping_params(
    side: str, mapping: Optional[str], scale: Optional[Tensor], shift: Optional[Tensor]
) -> tuple[Optional[Tensor], Optional[Tensor]]:
    """The (scale, shift) a mapping mode uses; None for those it does not."""
    uses_scale = mapping in _SCALED_MAPPINGS
    uses_shift = mapping == "affine"
    if (uses_scale and scale is None) or (uses_shift and shift is None):
        raise ValueError(
            f"{side}_mapping={mapping!r} needs {side}_w" + (f" and {side}_b" if uses_shift else "")
            + f"; got {side}_w={'None' if scale is None else 'a tensor'}, "
            f"{side}_b={'None' if shift is None else 'a tensor'}"
        )
    return (scale if uses_scale else None), (shift if uses_shift else None)


# ------------------------------------------------------------------------------------------------
# The fused single step with a cell's parameters bound once (rollouts call it every env step)


class LTCStepInference:
    """`ltc_step_inference` with the parameters and options bound once (validated at binding).

    Calling it costs one C++ call and no keyword handling: the rollout hot path. It holds the
    parameter *tensors*, not copies, so in-place updates (optimiser steps, ``load_state_dict``,
    ``.to()``) are seen on the next call; rebind when a parameter is replaced by another object.
    Takes the same keyword arguments as `ltc_step_inference` after ``timespan``.
    """

    def __init__(self, **params: object) -> None:
        input_w, input_b = _mapping_params(
            "input", params["input_mapping"], params.get("input_w"), params.get("input_b")  # type: ignore[arg-type]
        )
        output_w, output_b = _mapping_params(
            "output", params["output_mapping"], params.get("output_w"), params.get("output_b")  # type: ignore[arg-type]
        )
        params.update(input_w=input_w, input_b=input_b, output_w=output_w, output_b=output_b)
        self._params = params  # for the pure-torch path
        self._args = tuple(params[name] for name in _STEP_ARG_ORDER)

    def __call__(self, x: Tensor, v: Tensor, timespan: Union[float, Tensor]) -> tuple[Tensor, Tensor]:
        """One step without autograd.

        :param x: (B, F) inputs.
        :param v: (B, N) state before the step.
        :param timespan: a float, or a tensor of B elements (or one).
        :return: (output (B, O), new state (B, N)).
        """
        ext = _use_compiled(x)
        if ext is None:
            return ltc_step_inference_torch(x, v, timespan, **self._params)  # type: ignore[arg-type]
        if isinstance(timespan, Tensor):
            return ext.step_inference(x, v, timespan, 1.0, *self._args)
        return ext.step_inference(x, v, None, float(timespan), *self._args)


#: The compiled step's arguments after (x, v, timespan tensor, timespan float), in order.
_STEP_ARG_ORDER = (
    "gleak", "vleak", "cm", "sigma", "mu", "w", "erev", "sensory_sigma", "sensory_mu", "sensory_w",
    "sensory_erev", "sparsity_mask", "sensory_sparsity_mask", "input_w", "input_b", "output_w",
    "output_b", "motor_size", "implicit_param_constraints", "ode_unfolds", "epsilon",
)
