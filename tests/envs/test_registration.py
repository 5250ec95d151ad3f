"""The ncp/ tasks: registration (idempotent), the TASKS table, make_env, and Gymnasium's env checker."""

from __future__ import annotations

import importlib
import subprocess
import sys
import warnings
from typing import Any

import gymnasium as gym
import numpy as np
import pytest
from gymnasium import spaces
from gymnasium.error import DependencyNotInstalled
from gymnasium.utils.env_checker import check_env

import envs
from envs import NO_VELOCITY_KEEP, TASKS, box2d_available, make_env, register_envs

EXPECTED_IDS = {
    "ncp/CartPoleNoVel-v1": "CartPole-v1",
    "ncp/PendulumNoVel-v1": "Pendulum-v1",
    "ncp/AcrobotNoVel-v1": "Acrobot-v1",
    "ncp/MountainCarNoVel-v0": "MountainCar-v0",
    "ncp/MountainCarContinuousNoVel-v0": "MountainCarContinuous-v0",
    "ncp/LunarLanderNoVel-v3": "LunarLander-v3",
    "ncp/LunarLanderContinuousNoVel-v3": "LunarLanderContinuous-v3",
    "ncp/CartPoleNoVelIrregular-v1": "CartPole-v1",
    "ncp/PendulumNoVelIrregular-v1": "Pendulum-v1",
    "ncp/AcrobotNoVelIrregular-v1": "Acrobot-v1",
    "ncp/MountainCarContinuousNoVelIrregular-v0": "MountainCarContinuous-v0",
}

# Warnings check_env gives for reasons outside this package: it is handed the full `gym.make` stack
# (our wrappers are not `unwrapped`), and Pendulum's own action space is [-2, 2].
KNOWN_WARNINGS = ("is different from the unwrapped version", "For Box action spaces, we recommend")


def _ids() -> list[Any]:
    return [
        pytest.param(
            task.id,
            marks=pytest.mark.skipif(task.needs_box2d and not box2d_available(), reason="needs Box2D"),
        )
        for task in TASKS.values()
    ]


def test_tasks_table() -> None:
    assert {tid: task.base_id for tid, task in TASKS.items()} == EXPECTED_IDS
    for tid, task in TASKS.items():
        assert task.id == tid
        assert task.keep == NO_VELOCITY_KEEP[task.base_id]
        assert task.irregular == tid.endswith(f"Irregular-v{tid[-1]}")
        assert task.needs_box2d == task.base_id.startswith("LunarLander")
        assert task.description.startswith(task.base_id)
        spec = gym.spec(tid)
        assert spec.max_episode_steps == gym.spec(task.base_id).max_episode_steps
        assert spec.kwargs == {"base_id": task.base_id, "keep": task.keep}


def test_registration_is_idempotent() -> None:
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        register_envs()
        importlib.reload(envs)  # re-runs envs/__init__.py, which registers again
        envs.register_envs()
    assert [str(w.message) for w in caught] == []
    assert all(tid in gym.registry for tid in EXPECTED_IDS)


def test_fresh_process_import_twice_with_warnings_as_errors() -> None:
    code = (
        "import importlib, gymnasium as gym\n"
        "env = gym.make('envs:ncp/CartPoleNoVel-v1')\n"  # gymnasium imports the package itself
        "import envs\n"
        "importlib.reload(envs); envs.register_envs()\n"
        "print(env.observation_space.shape)\n"
    )
    result = subprocess.run(
        [sys.executable, "-W", "error", "-c", code], capture_output=True, text=True, timeout=60
    )
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == "(2,)"


@pytest.mark.parametrize("env_id", _ids())
def test_env_checker_passes(env_id: str) -> None:
    env = make_env(env_id)
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        check_env(env)
    unexpected = [str(w.message) for w in caught if not any(k in str(w.message) for k in KNOWN_WARNINGS)]
    assert unexpected == []
    env.close()


@pytest.mark.parametrize("env_id", _ids())
def test_made_env_observes_the_kept_entries(env_id: str) -> None:
    task = TASKS[env_id]
    env = make_env(env_id)
    plain = gym.make(task.base_id)
    obs, _ = env.reset(seed=2)
    plain_obs, _ = plain.reset(seed=2)
    if task.irregular:
        assert isinstance(env.observation_space, spaces.Dict)
        assert env.observation_space["elapsed"].high[0] == 4.0  # 4 frames of 1.0
        assert obs["elapsed"][0] == 1.0
        obs = obs["observation"]
    np.testing.assert_array_equal(obs, plain_obs[list(task.keep)])
    assert env.observation_space.contains(env.reset(seed=2)[0])


def test_irregular_episode_counts_frames_of_the_base_limit() -> None:
    env = make_env("ncp/PendulumNoVelIrregular-v1")
    env.reset(seed=0)
    frames, steps = 0, 0
    while True:
        *_, terminated, truncated, info = env.step(np.zeros(1, dtype=np.float32))
        frames += info["frames"]
        steps += 1
        assert info["elapsed"] == float(info["frames"])  # registered tasks count in frames
        if terminated or truncated:
            break
    assert truncated and frames == 200 and steps < 200

    short = make_env("ncp/PendulumNoVelIrregular-v1", max_episode_frames=10, min_frames=2, max_frames=2)
    short.reset(seed=0)
    counts = []
    while True:
        *_, terminated, truncated, info = short.step(np.zeros(1, dtype=np.float32))
        counts.append(info["frames"])
        if terminated or truncated:
            break
    assert counts == [2, 2, 2, 2, 2]


def test_spec_round_trip_reproduces_the_env() -> None:
    env = make_env("ncp/CartPoleNoVelIrregular-v1", seed=4)
    again = gym.make(env.spec)
    for e in (env, again):
        e.reset(seed=9)
    for _ in range(20):
        a, b = env.step(0), again.step(0)
        np.testing.assert_array_equal(a[0]["observation"], b[0]["observation"])
        assert a[1:4] == b[1:4] and a[4]["frames"] == b[4]["frames"]
        if a[2] or a[3]:
            break
    assert "MaskObservation" in repr(again) and repr(again).count("MaskObservation") == 1


def test_make_env_unknown_ncp_id_lists_the_valid_ones() -> None:
    with pytest.raises(ValueError, match=r"unknown env_id 'ncp/CartPole-v1'; valid ncp/ ids: ncp/CartPoleNoVel-v1, "):
        make_env("ncp/CartPole-v1")
    assert make_env("CartPole-v1").observation_space.shape == (4,)  # plain ids go to gym.make


def test_box2d_task_without_box2d_says_how_to_install(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setitem(sys.modules, "Box2D", None)  # makes `import Box2D` raise ImportError
    assert not box2d_available()
    with pytest.raises(DependencyNotInstalled, match=r'pip install "ncp-policies\[box2d\]"'):
        make_env("ncp/LunarLanderNoVel-v3")
