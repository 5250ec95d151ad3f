"""Partially observed control: keep some entries of a Box observation, drop the rest.

`MaskObservation` is the generic wrapper; `NO_VELOCITY_KEEP` says, per Gymnasium task, which entries
remain once every velocity is hidden, so the agent must infer velocities from a history of
observations (a task for a recurrent policy):

==============================  ===========================  ==========================================
base task                       kept indices                 kept (dropped)
==============================  ===========================  ==========================================
``CartPole-v1``                 0, 2                         cart position, pole angle
                                                             (cart velocity, pole angular velocity)
``Pendulum-v1``                 0, 1                         cos θ, sin θ (θ̇)
``Acrobot-v1``                  0, 1, 2, 3                   cos θ1, sin θ1, cos θ2, sin θ2 (θ̇1, θ̇2)
``MountainCar-v0``              0                            position (velocity)
``MountainCarContinuous-v0``    0                            position (velocity)
``LunarLander-v3``              0, 1, 4, 6, 7                x, y, angle, left / right leg contact
``LunarLanderContinuous-v3``    0, 1, 4, 6, 7                (x velocity, y velocity, angular velocity)
==============================  ===========================  ==========================================

How this differs from RL Baselines3 Zoo's ``MaskVelocityWrapper`` (``rl_zoo3/wrappers.py``, behind
its ``*NoVel`` ids): the Zoo hides the same entries (CartPole 1, 3; Pendulum 2; MountainCar 1;
LunarLander 2, 3, 5) but *multiplies them by zero*, so its observation keeps its length, the hidden
slots always read 0 and the observation space still advertises the velocity bounds. Here the hidden
entries are *removed*: the observation is shorter and the new Box carries only the kept bounds.
A policy trained on one does not load into the other. The Zoo has no Acrobot entry and lists
LunarLander ``-v2``; Gymnasium 1.x has only ``-v3``, whose observation layout is unchanged.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import gymnasium as gym
import numpy as np
from gymnasium import spaces
from gymnasium.utils import RecordConstructorArgs

__all__ = ["MaskObservation", "NO_VELOCITY_KEEP", "hide_velocities"]

#: Base Gymnasium id -> indices of the observation kept once the velocities are hidden.
NO_VELOCITY_KEEP: dict[str, tuple[int, ...]] = {
    "CartPole-v1": (0, 2),
    "Pendulum-v1": (0, 1),
    "Acrobot-v1": (0, 1, 2, 3),
    "MountainCar-v0": (0,),
    "MountainCarContinuous-v0": (0,),
    "LunarLander-v3": (0, 1, 4, 6, 7),
    "LunarLanderContinuous-v3": (0, 1, 4, 6, 7),
}


def _check_keep(keep: Sequence[int], size: int) -> tuple[int, ...]:
    """Validate `keep` against an observation of `size` entries and return it as a tuple."""
    if isinstance(keep, (str, bytes)) or not isinstance(keep, Sequence | np.ndarray):
        raise TypeError(f"keep must be a sequence of ints, got {keep!r} ({type(keep).__name__})")
    indices: list[int] = []
    for index in keep:
        if isinstance(index, (bool, np.bool_)) or not isinstance(index, (int, np.integer)):
            raise TypeError(f"keep must hold ints, got {index!r} ({type(index).__name__}) in {list(keep)!r}")
        indices.append(int(index))
    if not indices:
        raise ValueError("keep is empty: name at least one observation index to keep")
    bad = [i for i in indices if not 0 <= i < size]
    if bad:
        raise ValueError(
            f"keep={indices} has indices {bad} outside the observation's range 0..{size - 1} "
            f"(the observation has {size} entries; negative indices are not accepted)"
        )
    duplicates = sorted({i for i in indices if indices.count(i) > 1})
    if duplicates:
        raise ValueError(f"keep={indices} names indices {duplicates} more than once; list each index once")
    return tuple(indices)


class MaskObservation(
    gym.ObservationWrapper[np.ndarray, Any, np.ndarray], RecordConstructorArgs
):
    """Keep only the entries `keep` of a 1-D Box observation, in the order given.

    The new observation space is a Box of ``len(keep)`` entries with the kept entries' bounds and the
    original dtype. Rewards, actions, termination and info are untouched.

    :param env: environment whose observation space is a 1-D ``Box`` of shape ``(D,)``
    :param keep: indices into the observation, each in ``0..D-1`` and listed once; the wrapped
        observation is ``obs[keep]``, shape ``(len(keep),)``
    """

    def __init__(self, env: gym.Env[np.ndarray, Any], keep: Sequence[int]) -> None:
        space = env.observation_space
        if not isinstance(space, spaces.Box):
            raise TypeError(
                f"MaskObservation needs a Box observation space, got {space}; "
                "wrap the environment before any wrapper that changes its observation to a Dict or Tuple"
            )
        if len(space.shape) != 1:
            raise ValueError(
                f"MaskObservation needs a 1-D Box observation (shape (D,)), got shape {space.shape}; "
                "flatten it first (gymnasium.wrappers.FlattenObservation)"
            )
        indices = _check_keep(keep, space.shape[0])
        RecordConstructorArgs.__init__(self, keep=indices)
        gym.ObservationWrapper.__init__(self, env)
        self.keep: tuple[int, ...] = indices
        self._index = np.asarray(indices, dtype=np.intp)
        self.observation_space = spaces.Box(
            low=space.low[self._index], high=space.high[self._index], dtype=space.dtype  # type: ignore[arg-type]
        )

    def observation(self, observation: np.ndarray) -> np.ndarray:
        """Return ``observation[keep]`` (a copy).

        :param observation: the wrapped environment's observation, shape ``(D,)``
        :return: the kept entries, shape ``(len(keep),)``, same dtype
        """
        return np.asarray(observation)[self._index]


def hide_velocities(env: gym.Env[np.ndarray, Any]) -> MaskObservation:
    """Hide the velocities of a known Gymnasium task (`NO_VELOCITY_KEEP`), looked up by its spec id.

    :param env: an environment made with ``gym.make`` of one of ``NO_VELOCITY_KEEP``'s ids
    :return: `MaskObservation` keeping that task's velocity-free entries
    """
    env_id = env.spec.id if env.spec is not None else None
    if env_id not in NO_VELOCITY_KEEP:
        raise ValueError(
            f"no velocity mask is known for env id {env_id!r}; known ids: {sorted(NO_VELOCITY_KEEP)}. "
            "For another task use MaskObservation(env, keep=[...]) with the indices to keep"
        )
    return MaskObservation(env, NO_VELOCITY_KEEP[env_id])

