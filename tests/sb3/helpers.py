"""Shared helpers of the SB3 integration tests: a seeded policy builder and a toy env of any spaces."""
from __future__ import annotations

import gymnasium as gym
import numpy as np
import torch
from gymnasium import spaces

from ncp_policies.sb3 import NCPActorCriticPolicy


def constant_lr(_: float) -> float:
    return 1e-3


def make_policy(observation_space: spaces.Space, action_space: spaces.Space, **kwargs) -> NCPActorCriticPolicy:
    """A policy built directly (no algorithm), seeded."""
    torch.manual_seed(0)
    return NCPActorCriticPolicy(observation_space, action_space, constant_lr, **kwargs)


class ToyEnv(gym.Env):
    """A tiny random-walk env with any observation and action space (episodes of 5 to 12 steps)."""

    def __init__(self, observation_space: spaces.Space, action_space: spaces.Space, seed: int = 0) -> None:
        self.observation_space = observation_space
        self.action_space = action_space
        self._rng = np.random.default_rng(seed)
        self._t = 0
        self._length = 5

    def reset(self, *, seed=None, options=None):
        super().reset(seed=seed)
        if seed is not None:
            self._rng = np.random.default_rng(seed)
        self._t = 0
        self._length = int(self._rng.integers(5, 13))
        return self._sample(), {}

    def step(self, action):
        self._t += 1
        return self._sample(), float(self._rng.normal()), self._t >= self._length, False, {}

    def _sample(self):
        self.observation_space.seed(int(self._rng.integers(2**31)))
        return self.observation_space.sample()
