"""Irregular time steps: each agent step lasts a random number of the environment's frames.

A continuous-time network (LTC, CfC) can take the time elapsed between two observations as an
input of its ODE; `IrregularTimeStep` makes that time vary. Each agent step repeats the action for
``k ~ U{min_frames, ..., max_frames}`` frames of the wrapped environment, sums their rewards, stops
early at termination or truncation, and reports the time the step took, ``frames × frame_dt``:

- in ``info[time_key]`` (a float) and ``info["frames"]`` (the int frame count), always;
- in the observation, unless ``in_observation=False``: the observation space becomes
  ``Dict({"observation": <original space>, time_key: Box(0, max_frames × frame_dt, (1,), float32)})``
  and the NCP policy reads ``obs[time_key]`` as the network's timespans. (The upper bound is the
  longest step; an infinite one would draw a warning from Gymnasium's environment checker.) Keep
  the time out of observation normalisation, e.g. ``VecNormalize(..., norm_obs_keys=["observation"])``.

Unit of the elapsed time: ``frame_dt`` per frame. By default ``frame_dt`` is the environment's own
step length when it has one (``env.unwrapped.dt``, e.g. Pendulum 0.05 s, Acrobot 0.2 s, or
``env.unwrapped.tau``, CartPole 0.02 s), else 1.0, i.e. frames. Pass ``frame_dt=1.0`` to count in
frames on every task, which is what the registered ``ncp/*Irregular`` tasks do (a regular step then
has timespan 1.0, the default timespan of the networks).

At reset no frame has run; the reset observation nevertheless carries one frame's duration
(``frame_dt``), the nominal step, so that a network integrating over its timespan does not discard
the first observation (``info["frames"]`` is 0 there).

Randomness: the frame counts come from the wrapper's own generator, seeded from ``seed`` at
construction and re-seeded by every ``reset(seed=s)`` (from ``s``, through a stream distinct from
the environment's own ``np_random``), so an episode's time steps are reproducible from either seed.
"""

from __future__ import annotations

import math
from typing import Any, SupportsFloat

import gymnasium as gym
import numpy as np
from gymnasium import spaces
from gymnasium.utils import RecordConstructorArgs

__all__ = ["IrregularTimeStep", "env_frame_dt"]

# Mixed into the reset seed so the frame generator never replays the environment's own stream.
_FRAME_STREAM = 0x4E4350


def env_frame_dt(env: gym.Env[Any, Any]) -> float | None:
    """The duration of one frame of `env` in its own time unit, if it declares one.

    :param env: any environment; ``env.unwrapped.dt`` then ``env.unwrapped.tau`` are read
    :return: that positive float, or None when the environment declares neither
    """
    for name in ("dt", "tau"):
        value = getattr(env.unwrapped, name, None)
        if isinstance(value, (int, float, np.floating)) and not isinstance(value, bool):
            if math.isfinite(float(value)) and float(value) > 0:
                return float(value)
    return None


def _frames_rng(seed: int | None) -> np.random.Generator:
    """The frame-count generator for `seed` (OS entropy when None), apart from ``np_random``'s stream."""
    return np.random.default_rng(None if seed is None else [seed, _FRAME_STREAM])


def _check_int(name: str, value: Any, minimum: int) -> int:
    if isinstance(value, (bool, np.bool_)) or not isinstance(value, (int, np.integer)):
        raise TypeError(f"{name} must be an int, got {value!r} ({type(value).__name__})")
    if value < minimum:
        raise ValueError(f"{name} must be >= {minimum}, got {value}")
    return int(value)


class IrregularTimeStep(gym.Wrapper[Any, Any, Any, Any], RecordConstructorArgs):
    """Repeat each action for a random number of frames and report the time it took.

    :param env: the environment to step; its observation space is kept as is (nested under
        ``"observation"`` when ``in_observation``)
    :param min_frames: fewest frames per agent step, >= 1
    :param max_frames: most frames per agent step, >= min_frames (k is uniform on both ends included)
    :param seed: seed of the frame-count generator; None draws one from the OS. ``reset(seed=s)``
        re-seeds it from ``s``
    :param time_key: key of the elapsed time in ``info`` and in the Dict observation
    :param frame_dt: duration of one frame, > 0; None = the environment's ``dt`` / ``tau`` if it has
        one, else 1.0 (frames)
    :param in_observation: put the elapsed time in the observation (Dict space); False keeps the
        original observation space and reports the time in ``info`` only
    """

    def __init__(
        self,
        env: gym.Env[Any, Any],
        min_frames: int = 1,
        max_frames: int = 4,
        seed: int | None = None,
        time_key: str = "elapsed",
        frame_dt: float | None = None,
        in_observation: bool = True,
    ) -> None:
        min_frames = _check_int("min_frames", min_frames, 1)
        max_frames = _check_int("max_frames", max_frames, 1)
        if max_frames < min_frames:
            raise ValueError(f"max_frames ({max_frames}) must be >= min_frames ({min_frames})")
        if seed is not None:
            seed = _check_int("seed", seed, 0)
        if not isinstance(time_key, str) or not time_key:
            raise ValueError(f"time_key must be a non-empty str, got {time_key!r}")
        if in_observation and time_key == "observation":
            raise ValueError(
                'time_key="observation" collides with the Dict observation\'s "observation" entry; '
                'choose another key, e.g. "elapsed"'
            )
        if frame_dt is None:
            frame_dt = env_frame_dt(env) or 1.0
        elif (
            isinstance(frame_dt, bool)
            or not isinstance(frame_dt, (int, float, np.floating))
            or not math.isfinite(float(frame_dt))
            or float(frame_dt) <= 0
        ):
            raise ValueError(f"frame_dt must be a finite float > 0 or None, got {frame_dt!r}")
        RecordConstructorArgs.__init__(
            self,
            min_frames=min_frames,
            max_frames=max_frames,
            seed=seed,
            time_key=time_key,
            frame_dt=float(frame_dt),
            in_observation=bool(in_observation),
        )
        gym.Wrapper.__init__(self, env)
        self.min_frames = min_frames
        self.max_frames = max_frames
        self.time_key = time_key
        self.frame_dt = float(frame_dt)
        self.in_observation = bool(in_observation)
        self.frames_rng = _frames_rng(seed)
        if self.in_observation:
            self.observation_space = spaces.Dict(
                {
                    "observation": env.observation_space,
                    time_key: spaces.Box(0.0, max_frames * self.frame_dt, shape=(1,), dtype=np.float32),
                }
            )

    def _wrap(self, observation: Any, elapsed: float) -> Any:
        if not self.in_observation:
            return observation
        return {"observation": observation, self.time_key: np.array([elapsed], dtype=np.float32)}

    def reset(
        self, *, seed: int | None = None, options: dict[str, Any] | None = None
    ) -> tuple[Any, dict[str, Any]]:
        """Reset the environment; ``seed`` also re-seeds the frame-count generator.

        :param seed: seed for the environment and (through a separate stream) the frame counts
        :param options: passed to the environment's reset
        :return: (observation, info); the observation's time is one frame, ``info["frames"]`` is 0
        """
        if seed is not None:
            self.frames_rng = _frames_rng(int(seed))
        observation, info = self.env.reset(seed=seed, options=options)
        info = {**info, self.time_key: self.frame_dt, "frames": 0}
        return self._wrap(observation, self.frame_dt), info

    def step(self, action: Any) -> tuple[Any, SupportsFloat, bool, bool, dict[str, Any]]:
        """Repeat `action` for k random frames (fewer if the episode ends) and sum the rewards.

        :param action: an action of the wrapped environment's action space
        :return: (observation after the last frame, summed reward, terminated, truncated, info of
            the last frame plus ``info[time_key]`` = frames × frame_dt and ``info["frames"]``)
        """
        target = int(self.frames_rng.integers(self.min_frames, self.max_frames, endpoint=True))
        total = 0.0
        frames = 0
        terminated = truncated = False
        observation: Any = None
        info: dict[str, Any] = {}
        while frames < target:
            observation, reward, terminated, truncated, info = self.env.step(action)
            total += float(reward)
            frames += 1
            if terminated or truncated:
                break
        elapsed = frames * self.frame_dt
        info = {**info, self.time_key: elapsed, "frames": frames}
        return self._wrap(observation, elapsed), total, bool(terminated), bool(truncated), info
