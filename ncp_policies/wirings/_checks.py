"""Argument checks shared by the wiring classes: each one names the argument, the value and what is allowed."""
from __future__ import annotations

import math
from numbers import Integral, Real
from typing import Optional

import numpy as np


def check_int(
    owner: str,
    name: str,
    value: object,
    minimum: Optional[int] = None,
    maximum: Optional[int] = None,
    hint: str = "",
) -> int:
    """Return ``value`` as a Python int, or raise ValueError naming ``owner``, ``name`` and the allowed range.

    :param owner: the class or function the argument belongs to (shown in the message), e.g. ``"NCP"``.
    :param name: the argument's name, e.g. ``"inter_neurons"``.
    :param value: the value given; ints and numpy integers pass, bools and floats do not.
    :param minimum: smallest allowed value (inclusive), or None for no lower bound.
    :param maximum: largest allowed value (inclusive), or None for no upper bound.
    :param hint: an extra sentence appended to the message (why the bound exists, how to fix it).
    :return: the value as a Python int.
    """
    allowed = _describe_range(minimum, maximum)
    suffix = f" {hint}" if hint else ""
    if isinstance(value, bool) or not isinstance(value, Integral):
        raise ValueError(f"{owner}: {name} must be an int{allowed}, got {value!r} ({type(value).__name__}).{suffix}")
    result = int(value)
    if (minimum is not None and result < minimum) or (maximum is not None and result > maximum):
        raise ValueError(f"{owner}: {name} must be an int{allowed}, got {result}.{suffix}")
    return result


def check_real(
    owner: str,
    name: str,
    value: object,
    low: float,
    high: float,
    high_inclusive: bool,
    hint: str = "",
) -> float:
    """Return ``value`` as a float in ``[low, high]`` (or ``[low, high)``), or raise ValueError.

    :param owner: the class the argument belongs to (shown in the message).
    :param name: the argument's name.
    :param value: the value given; ints, floats and numpy scalars pass, bools and non-finite values do not.
    :param low: smallest allowed value (inclusive).
    :param high: upper bound.
    :param high_inclusive: whether ``high`` itself is allowed.
    :param hint: an extra sentence appended to the message.
    :return: the value as a Python float.
    """
    bracket = "]" if high_inclusive else ")"
    allowed = f"in [{low}, {high}{bracket}"
    suffix = f" {hint}" if hint else ""
    if isinstance(value, bool) or not isinstance(value, Real):
        raise ValueError(f"{owner}: {name} must be a float {allowed}, got {value!r} ({type(value).__name__}).{suffix}")
    result = float(value)
    too_high = result > high if high_inclusive else result >= high
    if not math.isfinite(result) or result < low or too_high:
        raise ValueError(f"{owner}: {name} must be a float {allowed}, got {result}.{suffix}")
    return result


def check_seed(owner: str, name: str, value: object) -> int:
    """Return a seed as a Python int in ``[0, 2**32 - 1]`` (what ``np.random.RandomState`` accepts).

    :param owner: the class the argument belongs to (shown in the message).
    :param name: the argument's name, e.g. ``"seed"``.
    :param value: the seed given; must be an int (None is refused: wirings are always reproducible).
    :return: the seed as a Python int.
    """
    return check_int(owner, name, value, 0, 2**32 - 1, hint="Pass a fixed int so the wiring is reproducible.")


def check_bool(owner: str, name: str, value: object) -> bool:
    """Return ``value`` if it is a bool (numpy bools included), else raise ValueError.

    :param owner: the class the argument belongs to (shown in the message).
    :param name: the argument's name.
    :param value: the value given.
    :return: the value as a Python bool.
    """
    if not isinstance(value, (bool, np.bool_)):
        raise ValueError(f"{owner}: {name} must be True or False, got {value!r} ({type(value).__name__}).")
    return bool(value)


def _describe_range(minimum: Optional[int], maximum: Optional[int]) -> str:
    if minimum is not None and maximum is not None:
        return f" in [{minimum}, {maximum}]"
    if minimum is not None:
        return f" >= {minimum}"
    if maximum is not None:
        return f" <= {maximum}"
    return ""
