"""Motor neurons as action outputs: how many an action space needs and how they become a distribution.

No hidden layer sits between the motor neurons and the distribution:

- ``Discrete(n)``: n motor neurons give the n logits.
- ``MultiDiscrete(nvec)``: ``sum(nvec)`` motor neurons give the logits, in ``nvec`` order.
- ``Box(shape)``: ``prod(shape)`` motor neurons give the Gaussian means; the log standard deviation is a
  state-independent parameter, as in stable-baselines3.

:class:`MotorReadout` is the optional learnable per-motor scale and bias, needed when the cell's outputs
are bounded (CfC motor neurons live in about [-1, 1]).
"""
from __future__ import annotations

import numpy as np
import torch
from gymnasium import spaces
from stable_baselines3.common.distributions import (
    CategoricalDistribution,
    DiagGaussianDistribution,
    Distribution,
    MultiCategoricalDistribution,
)
from torch import nn

SUPPORTED_ACTION_SPACES = (spaces.Box, spaces.Discrete, spaces.MultiDiscrete)


def describe_space(space: spaces.Space) -> str:
    """A short name for an action space, as used in error messages: ``Discrete(2)``, ``Box(2,)``.

    :param space: any Gymnasium space.
    :return: the short name.
    """
    if isinstance(space, spaces.Discrete):
        return f"Discrete({int(space.n)})"
    if isinstance(space, spaces.MultiDiscrete):
        return f"MultiDiscrete({[int(n) for n in np.asarray(space.nvec).ravel()]})"
    if isinstance(space, spaces.Box):
        return f"Box{tuple(int(d) for d in space.shape)}"
    return type(space).__name__


def check_action_space(action_space: spaces.Space) -> None:
    """Raise a clear error for an action space that motor neurons cannot drive.

    :param action_space: the environment's action space.
    :raises TypeError: for MultiBinary, Dict, Tuple and other spaces.
    """
    if not isinstance(action_space, SUPPORTED_ACTION_SPACES):
        raise TypeError(
            f"NCP policies support Box, Discrete and MultiDiscrete action spaces, got "
            f"{describe_space(action_space)}: {action_space!r}. Wrap the environment so that its actions are one "
            "of these (e.g. a MultiBinary(n) space as MultiDiscrete([2] * n))."
        )
    if isinstance(action_space, spaces.MultiDiscrete) and np.asarray(action_space.nvec).ndim != 1:
        raise TypeError(
            f"NCP policies support one-dimensional MultiDiscrete action spaces, got nvec of shape "
            f"{np.asarray(action_space.nvec).shape}; flatten the action space."
        )


def motor_count(action_space: spaces.Space) -> int:
    """The number of motor neurons an action space needs.

    :param action_space: a Box, Discrete or MultiDiscrete space.
    :return: n for Discrete(n), sum(nvec) for MultiDiscrete, prod(shape) for Box.
    """
    check_action_space(action_space)
    if isinstance(action_space, spaces.Discrete):
        return int(action_space.n)
    if isinstance(action_space, spaces.MultiDiscrete):
        return int(np.sum(action_space.nvec))
    return int(np.prod(action_space.shape))


def check_motor_count(wiring_motors: int, action_space: spaces.Space, argument: str = "wiring") -> None:
    """Raise if a wiring's motor neurons do not fit the action space.

    :param wiring_motors: the wiring's ``output_dim``.
    :param action_space: the environment's action space.
    :param argument: the argument name to quote in the error.
    :raises ValueError: naming both numbers.
    """
    needed = motor_count(action_space)
    if wiring_motors != needed:
        raise ValueError(
            f"{argument} has {wiring_motors} motor neurons but the action space {describe_space(action_space)} "
            f"needs {needed}: the motor neurons are the action outputs. Build the wiring with {needed} motor "
            f"neurons (e.g. AutoNCP(units, {needed})) or leave {argument}=None to derive it."
        )


def make_action_distribution(action_space: spaces.Space) -> Distribution:
    """The SB3 distribution whose parameters the motor neurons give.

    :param action_space: a Box, Discrete or MultiDiscrete space.
    :return: a Categorical, MultiCategorical or DiagGaussian distribution (not yet parameterised).
    """
    check_action_space(action_space)
    if isinstance(action_space, spaces.Discrete):
        return CategoricalDistribution(int(action_space.n))
    if isinstance(action_space, spaces.MultiDiscrete):
        return MultiCategoricalDistribution([int(n) for n in action_space.nvec])
    return DiagGaussianDistribution(int(np.prod(action_space.shape)))


class MotorReadout(nn.Module):
    """Per-motor affine map ``motor * scale + bias`` (no mixing between motor neurons).

    :param motor_count: number of motor neurons O.
    :param scale_init: initial scale of every motor.
    """

    def __init__(self, motor_count: int, scale_init: float = 1.0) -> None:
        super().__init__()
        self.scale = nn.Parameter(torch.full((motor_count,), float(scale_init)))
        self.bias = nn.Parameter(torch.zeros(motor_count))

    def forward(self, motor: torch.Tensor) -> torch.Tensor:
        """Scale and shift each motor neuron.

        :param motor: (..., O) motor neuron outputs.
        :return: (..., O) distribution parameters.
        """
        return motor * self.scale + self.bias
