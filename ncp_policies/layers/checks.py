"""Validation and normalisation of the sequence layers' arguments, with errors that say what to fix.

Each check costs at most one reduction over its tensor (no per-step work).
"""
from __future__ import annotations

import math
import numbers
from typing import Any, Optional, Tuple

import torch
from torch import Tensor

from ..cells.base import Timespans

State = Tuple[Tensor, Optional[Tensor]]


def check_input(x: Any, features: int, owner: str, dtype: torch.dtype) -> None:
    """Check a batch-first input sequence.

    :param x: should be a (B, T, features) floating tensor without NaN / inf, of ``dtype``.
    :param features: the layer's input size.
    :param owner: the layer's name for messages (e.g. ``"LTC"``).
    :param dtype: the layer's parameter dtype.
    """
    if not isinstance(x, Tensor):
        raise TypeError(f"{owner} input must be a torch.Tensor, got {type(x).__name__}")
    if x.dim() != 3 or x.shape[1] < 1:
        raise ValueError(f"{owner} input must have shape (batch, time >= 1, {features}), got {tuple(x.shape)}")
    if x.shape[2] != features:
        raise ValueError(
            f"{owner} expects {features} input features (input_size={features}) but the input has "
            f"{x.shape[2]} (shape {tuple(x.shape)})"
        )
    if x.dtype != dtype:
        raise TypeError(
            f"{owner} input is {x.dtype} but the layer's parameters are {dtype}; "
            f"convert one of them (e.g. x.to({dtype}) or layer.to({x.dtype}))"
        )
    check_finite(x, owner)


def check_finite(x: Tensor, owner: str) -> None:
    """Raise a ValueError naming the counts when ``x`` holds NaN or infinite values.

    One reduction in the common case: the sum of finite values is finite unless it overflows, and
    only then (or when there are NaN / inf) are the elements inspected one by one.

    :param x: a floating tensor of any shape.
    :param owner: the layer's name for the message.
    """
    if math.isfinite(x.sum().item()):
        return
    n_nan = int(torch.isnan(x).sum())
    n_inf = int(torch.isinf(x).sum())
    if n_nan or n_inf:  # else: finite values whose sum overflowed
        raise ValueError(f"{owner} input contains {n_nan} NaN and {n_inf} infinite values; inputs must be finite")


def _check_state(h: Any, batch: int, units: int, owner: str, name: str, like: Tensor) -> Tensor:
    if not isinstance(h, Tensor):
        raise TypeError(f"{owner} {name} must be a torch.Tensor, got {type(h).__name__}")
    if h.shape != (batch, units):
        raise ValueError(f"{owner} {name} must have shape (batch, units) = ({batch}, {units}), got {tuple(h.shape)}")
    if h.dtype != like.dtype or h.device != like.device:
        raise TypeError(f"{owner} {name} is {h.dtype} on {h.device} but the input is {like.dtype} on {like.device}")
    return h


def initial_state(hx: Any, batch: int, units: int, mixed: bool, owner: str, like: Tensor) -> State:
    """Check ``hx`` (or make zeros) and split it into (h, c).

    :param hx: None, a (B, N) tensor, or with mixed memory a tuple of two (B, N) tensors.
    :param batch: B.
    :param units: N.
    :param mixed: whether the layer has mixed memory.
    :param owner: the layer's name for messages.
    :param like: the input, for dtype and device.
    :return: ``(h (B, N), c (B, N) or None)``.
    """
    if hx is None:
        zeros = like.new_zeros(batch, units)
        return zeros, (like.new_zeros(batch, units) if mixed else None)
    if mixed:
        if not isinstance(hx, (tuple, list)) or len(hx) != 2:
            raise TypeError(
                f"{owner} has mixed_memory=True, so hx must be a tuple (h, c) of two (batch, {units}) tensors, "
                f"got {type(hx).__name__}"
            )
        return (
            _check_state(hx[0], batch, units, owner, "hx[0] (h)", like),
            _check_state(hx[1], batch, units, owner, "hx[1] (c)", like),
        )
    if isinstance(hx, (tuple, list)):
        raise TypeError(f"{owner} has mixed_memory=False, so hx must be one (batch, {units}) tensor, got a tuple")
    return _check_state(hx, batch, units, owner, "hx", like), None


def timespans_tensor(timespans: Any, batch: int, steps: int, like: Tensor) -> Timespans:
    """Normalise timespans to a positive float or a (B, T, 1) tensor.

    :param timespans: None (= 1.0), a positive number, a 0-d tensor, or a (B, T) / (B, T, 1) tensor.
    :param batch: B.
    :param steps: T.
    :param like: the input, for dtype and device.
    :return: a float or a (B, T, 1) tensor of ``like``'s dtype and device.
    """
    if timespans is None:
        return 1.0
    if isinstance(timespans, numbers.Real) and not isinstance(timespans, bool):
        if not timespans > 0:
            raise ValueError(f"timespans must be positive, got {timespans}")
        return float(timespans)
    if not isinstance(timespans, Tensor):
        raise TypeError(f"timespans must be None, a float or a tensor, got {type(timespans).__name__}")
    ts = timespans.to(dtype=like.dtype, device=like.device)
    if ts.dim() == 0:
        ts = ts.reshape(1, 1, 1).expand(batch, steps, 1)
    elif ts.shape == (batch, steps):
        ts = ts.unsqueeze(-1)
    elif ts.shape != (batch, steps, 1):
        raise ValueError(
            f"timespans must be a scalar or have shape (batch, time) = ({batch}, {steps}) or "
            f"({batch}, {steps}, 1), got {tuple(timespans.shape)}"
        )
    if not ts.min().item() > 0:  # one reduction; NaN compares False
        raise ValueError("timespans must be positive everywhere (found values <= 0 or NaN)")
    return ts


def keep_from_resets(resets: Any, batch: int, steps: int, like: Tensor) -> Optional[Tensor]:
    """Turn resets into the factors that multiply the state before each step.

    :param resets: None or a (B, T) tensor of 0 / 1 (bool allowed); 1 zeroes the state before step t.
    :param batch: B.
    :param steps: T.
    :param like: the input, for dtype and device.
    :return: None or (B, T) ``1 - resets``.
    """
    if resets is None:
        return None
    if not isinstance(resets, Tensor):
        raise TypeError(f"resets must be a (batch, time) tensor, got {type(resets).__name__}")
    if resets.shape != (batch, steps):
        raise ValueError(f"resets must have shape (batch, time) = ({batch}, {steps}), got {tuple(resets.shape)}")
    resets = resets.to(dtype=like.dtype, device=like.device)
    if not bool(((resets == 0) | (resets == 1)).all()):
        raise ValueError("resets must contain only 0 and 1")
    return 1.0 - resets


def clamp_spec(clamp: Any, batch: int, units: int, like: Tensor) -> Optional[Tuple[Tensor, Tensor]]:
    """Check a clamp (index, values) pair.

    :param clamp: None or ``(index (K,) integer tensor, values (K,) or (B, K))``; indices into the state.
    :param batch: B.
    :param units: N.
    :param like: the input, for dtype and device.
    :return: None or ``(index (K,) long, values (B, K))``.
    """
    if clamp is None:
        return None
    if not isinstance(clamp, (tuple, list)) or len(clamp) != 2:
        raise TypeError("clamp must be a pair (index LongTensor (K,), values (K,))")
    index, values = clamp
    index = torch.as_tensor(index, device=like.device)
    if index.dim() != 1 or index.dtype in (torch.bool,) or index.is_floating_point():
        raise ValueError(f"clamp index must be a 1-D integer tensor, got {index.dtype} of shape {tuple(index.shape)}")
    index = index.long()
    if index.numel() and (int(index.min()) < 0 or int(index.max()) >= units):
        raise ValueError(f"clamp index must be in [0, {units}), got {index.tolist()}")
    values = torch.as_tensor(values, dtype=like.dtype, device=like.device)
    k = index.numel()
    if values.shape == (k,):
        values = values.unsqueeze(0).expand(batch, k)
    elif values.shape != (batch, k):
        raise ValueError(f"clamp values must have shape ({k},) or ({batch}, {k}), got {tuple(values.shape)}")
    return index, values
