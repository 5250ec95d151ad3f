"""A single Gymnasium env that applies a run's frozen VecNormalize observation statistics.

Tools that drive a plain ``gym.Env`` (the audit) must see the observations the policy was trained
on; this wrapper normalises exactly as ``VecNormalize.normalize_obs`` does with ``training=False``.
"""
from __future__ import annotations

from typing import Any

import gymnasium as gym
import numpy as np
from gymnasium import spaces


class FrozenNormalizeObservation(gym.ObservationWrapper):
    """``clip((obs - mean) / sqrt(var + epsilon), -clip_obs, clip_obs)`` with fixed statistics.

    :param env: the env to wrap
    :param state: the dict of :func:`agents.checkpoint.vecnormalize_state` (``obs_rms``, ``settings``)
    """

    def __init__(self, env: gym.Env, state: dict[str, Any]) -> None:
        super().__init__(env)
        settings = state["settings"]
        self.clip_obs, self.epsilon = float(settings["clip_obs"]), float(settings["epsilon"])
        self.enabled = bool(settings["norm_obs"])
        obs = state["obs_rms"]
        if isinstance(env.observation_space, spaces.Dict):
            self.stats = {k: (np.asarray(v["mean"]), np.asarray(v["var"])) for k, v in obs.items()}
        else:
            self.stats = {None: (np.asarray(obs["mean"]), np.asarray(obs["var"]))}
        self.observation_space = self._normalized_space(env.observation_space)

    def _normalized_space(self, space: spaces.Space) -> spaces.Space:
        if not self.enabled:
            return space
        if isinstance(space, spaces.Dict):
            return spaces.Dict({k: (spaces.Box(-self.clip_obs, self.clip_obs, s.shape, np.float32) if k in self.stats
                                    else s) for k, s in space.spaces.items()})
        return spaces.Box(-self.clip_obs, self.clip_obs, space.shape, np.float32)

    def _norm(self, x: np.ndarray, key: Any) -> np.ndarray:
        mean, var = self.stats[key]
        return np.clip((x - mean) / np.sqrt(var + self.epsilon), -self.clip_obs, self.clip_obs).astype(np.float32)

    def observation(self, observation: Any) -> Any:
        """:return: the normalised observation (dict entries without statistics pass through).

        :param observation: raw observation, shape obs_shape (or a dict of them)
        """
        if not self.enabled:
            return observation
        if isinstance(observation, dict):
            return {k: (self._norm(v, k) if k in self.stats else v) for k, v in observation.items()}
        return self._norm(observation, None)
