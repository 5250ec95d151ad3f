"""Learning-rate / clip-range schedules written as strings in presets (RL Zoo's ``lin_<value>``)."""
from __future__ import annotations

from collections.abc import Callable
from typing import Any


class LinearSchedule:
    """``progress_remaining * initial``: ``initial`` at the start of training, 0 at the end.

    A plain class (not a closure) so that it prints and compares meaningfully.

    :param initial: value at progress_remaining = 1
    """

    def __init__(self, initial: float) -> None:
        self.initial = float(initial)

    def __call__(self, progress_remaining: float) -> float:
        return progress_remaining * self.initial

    def __repr__(self) -> str:
        return f"lin_{self.initial:g}"


def parse_schedule(name: str, value: Any) -> float | Callable[[float], float] | Any:
    """Turn ``"lin_1e-3"`` into a :class:`LinearSchedule`; any other value is returned unchanged.

    :param name: hyperparameter name, used in the error message
    :param value: the preset value (number, string ``lin_<float>``, or anything else)
    :return: the schedule or the value itself
    """
    if isinstance(value, str) and value.startswith("lin_"):
        try:
            return LinearSchedule(float(value[4:]))
        except ValueError:
            raise ValueError(
                f"hyperparams.{name}={value!r} is not a schedule; write lin_<number>, e.g. lin_1e-3"
            ) from None
    return value
