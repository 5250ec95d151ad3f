"""IrregularTimeStep: reproducible frame counts, summed rewards, exact frame accounting, termination."""

from __future__ import annotations

import math
from typing import Any, SupportsFloat

import gymnasium as gym
import numpy as np
import pytest
from gymnasium import spaces

from envs import IrregularTimeStep, env_frame_dt


class _Recorder(gym.Wrapper[Any, Any, Any, Any]):
    """Records every underlying frame: its reward, observation and whether it ended the episode."""

    def __init__(self, env: gym.Env[Any, Any]) -> None:
        super().__init__(env)
        self.rewards: list[float] = []
        self.observations: list[Any] = []
        self.ended = False
        self.steps_after_end = 0

    def reset(self, **kwargs: Any) -> tuple[Any, dict[str, Any]]:
        self.ended = False
        return self.env.reset(**kwargs)

    def step(self, action: Any) -> tuple[Any, SupportsFloat, bool, bool, dict[str, Any]]:
        if self.ended:
            self.steps_after_end += 1
        obs, reward, terminated, truncated, info = self.env.step(action)
        self.rewards.append(float(reward))
        self.observations.append(obs)
        self.ended = terminated or truncated
        return obs, reward, terminated, truncated, info


def _episode_frames(env: IrregularTimeStep, reset_seed: int | None = None, steps: int = 60) -> list[int]:
    env.reset(seed=reset_seed)
    frames = []
    for _ in range(steps):
        *_, terminated, truncated, info = env.step(np.zeros(1, dtype=np.float32))
        frames.append(info["frames"])
        if terminated or truncated:
            break
    return frames


def test_frame_counts_reproducible_from_the_wrapper_seed() -> None:
    a = _episode_frames(IrregularTimeStep(gym.make("Pendulum-v1"), seed=7))
    b = _episode_frames(IrregularTimeStep(gym.make("Pendulum-v1"), seed=7))
    c = _episode_frames(IrregularTimeStep(gym.make("Pendulum-v1"), seed=8))
    assert a == b
    assert a != c
    assert set(a) == {1, 2, 3, 4}  # U{1..4}, both ends included
    assert abs(np.mean(a) - 2.5) < 0.5


def test_frame_counts_reproducible_from_the_reset_seed() -> None:
    env = IrregularTimeStep(gym.make("Pendulum-v1"))  # unseeded wrapper
    first = _episode_frames(env, reset_seed=3)
    _episode_frames(env)  # an unseeded episode in between
    again = _episode_frames(env, reset_seed=3)
    other = _episode_frames(env, reset_seed=4)
    assert first == again
    assert first != other
    # the wrapper's seed and reset's seed name the same stream
    assert _episode_frames(IrregularTimeStep(gym.make("Pendulum-v1"), seed=3)) == first


def test_frame_stream_is_not_the_env_stream() -> None:
    # Same seed for both: the frame counts must not be drawn from the environment's np_random.
    env = IrregularTimeStep(gym.make("Pendulum-v1"), min_frames=1, max_frames=1000)
    env.reset(seed=0)
    k = env.frames_rng.integers(1, 1000, endpoint=True)
    twin = np.random.default_rng(0)
    twin.uniform(size=2)  # what Pendulum's reset drew
    assert k != twin.integers(1, 1000, endpoint=True)
    assert k != np.random.default_rng(0).integers(1, 1000, endpoint=True)


def test_frames_rewards_and_observations_match_the_underlying_env() -> None:
    recorder = _Recorder(gym.make("Pendulum-v1"))  # TimeLimit 200 frames inside
    env = IrregularTimeStep(recorder, min_frames=2, max_frames=5, seed=1)
    obs, info = env.reset(seed=1)
    assert info["frames"] == 0
    assert env_frame_dt(env) == pytest.approx(0.05)
    total_frames = 0
    rng = np.random.default_rng(0)
    while True:
        before = len(recorder.rewards)
        obs, reward, terminated, truncated, info = env.step(rng.uniform(-2, 2, size=1).astype(np.float32))
        k = len(recorder.rewards) - before
        assert info["frames"] == k
        assert 1 <= k <= 5 and (k >= 2 or truncated)
        assert reward == pytest.approx(sum(recorder.rewards[before:]), rel=0, abs=1e-12)
        np.testing.assert_array_equal(obs["observation"], recorder.observations[-1])
        assert info["elapsed"] == pytest.approx(k * 0.05)
        assert obs["elapsed"].dtype == np.float32 and obs["elapsed"][0] == np.float32(k * 0.05)
        assert env.observation_space.contains(obs)
        total_frames += k
        if terminated or truncated:
            break
    assert truncated and not terminated
    assert total_frames == len(recorder.rewards) == 200
    assert recorder.steps_after_end == 0


def test_termination_stops_mid_step() -> None:
    # Pushing right only: CartPole falls after T frames; with k fixed to K the last step is short.
    probe = gym.make("CartPole-v1")
    probe.reset(seed=0)
    fall = 0
    while True:
        fall += 1
        if probe.step(1)[2]:
            break
    frames_per_step = next(k for k in range(3, 9) if fall % k)
    recorder = _Recorder(gym.make("CartPole-v1"))
    env = IrregularTimeStep(recorder, min_frames=frames_per_step, max_frames=frames_per_step, seed=0)
    env.reset(seed=0)
    counts, rewards = [], []
    while True:
        _, reward, terminated, truncated, info = env.step(1)
        counts.append(info["frames"])
        rewards.append(reward)
        if terminated or truncated:
            break
    assert terminated and not truncated
    assert counts[:-1] == [frames_per_step] * (len(counts) - 1)
    assert counts[-1] == fall % frames_per_step
    assert sum(counts) == fall == len(recorder.rewards)
    assert sum(rewards) == pytest.approx(float(fall))  # CartPole pays 1 per frame
    assert recorder.steps_after_end == 0
    assert info["elapsed"] == pytest.approx(counts[-1] * 0.02)  # CartPole's tau


def test_spaces_and_reset_observation() -> None:
    env = IrregularTimeStep(gym.make("CartPole-v1"), max_frames=3, time_key="dt")
    assert isinstance(env.observation_space, spaces.Dict)
    assert env.observation_space["observation"] == gym.make("CartPole-v1").observation_space
    time_space = env.observation_space["dt"]
    assert isinstance(time_space, spaces.Box) and time_space.shape == (1,)
    assert time_space.low[0] == 0.0 and time_space.high[0] == pytest.approx(3 * 0.02)
    obs, info = env.reset(seed=0)
    assert obs["dt"][0] == np.float32(0.02) and info["dt"] == pytest.approx(0.02) and info["frames"] == 0


def test_time_only_in_info() -> None:
    base = gym.make("MountainCarContinuous-v0")
    env = IrregularTimeStep(base, seed=0, in_observation=False)
    assert env.observation_space == base.observation_space
    assert env_frame_dt(base) is None and env.frame_dt == 1.0  # no dt / tau: frames
    obs, _ = env.reset(seed=0)
    assert isinstance(obs, np.ndarray)
    obs, _, _, _, info = env.step(np.zeros(1, dtype=np.float32))
    assert isinstance(obs, np.ndarray) and info["elapsed"] == float(info["frames"])


def test_explicit_frame_dt() -> None:
    env = IrregularTimeStep(gym.make("Acrobot-v1"), frame_dt=1.0, seed=0)
    assert env_frame_dt(gym.make("Acrobot-v1")) == pytest.approx(0.2)
    env.reset(seed=0)
    _, _, _, _, info = env.step(0)
    assert info["elapsed"] == float(info["frames"])


@pytest.mark.parametrize(
    ("kwargs", "error", "message"),
    [
        ({"min_frames": 0}, ValueError, "min_frames must be >= 1, got 0"),
        ({"min_frames": 3, "max_frames": 2}, ValueError, r"max_frames \(2\) must be >= min_frames \(3\)"),
        ({"max_frames": 2.5}, TypeError, "max_frames must be an int"),
        ({"frame_dt": 0.0}, ValueError, "frame_dt must be a finite float > 0"),
        ({"frame_dt": math.nan}, ValueError, "frame_dt must be a finite float > 0"),
        ({"time_key": "observation"}, ValueError, 'time_key="observation" collides'),
        ({"time_key": ""}, ValueError, "time_key must be a non-empty str"),
        ({"seed": -1}, ValueError, "seed must be >= 0"),
    ],
)
def test_bad_arguments_raise(kwargs: dict[str, Any], error: type[Exception], message: str) -> None:
    with pytest.raises(error, match=message):
        IrregularTimeStep(gym.make("CartPole-v1"), **kwargs)
