"""MaskObservation keeps exactly the documented entries, with their bounds, and rejects bad indices."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import gymnasium as gym
import numpy as np
import pytest
from gymnasium import spaces

from envs import NO_VELOCITY_KEEP, IrregularTimeStep, MaskObservation, box2d_available, hide_velocities


def _cartpole(u: Any) -> np.ndarray:
    x, _x_dot, theta, _theta_dot = u.state
    return np.array([x, theta])


def _pendulum(u: Any) -> np.ndarray:
    theta, _theta_dot = u.state
    return np.array([np.cos(theta), np.sin(theta)])


def _acrobot(u: Any) -> np.ndarray:
    th1, th2, _dth1, _dth2 = u.state
    return np.array([np.cos(th1), np.sin(th1), np.cos(th2), np.sin(th2)])


def _mountain_car(u: Any) -> np.ndarray:
    return np.array([u.state[0]])


# What the masked observation must equal, computed from the simulator's internal state (no velocities).
POSITIONS_FROM_STATE: dict[str, Callable[[Any], np.ndarray]] = {
    "CartPole-v1": _cartpole,
    "Pendulum-v1": _pendulum,
    "Acrobot-v1": _acrobot,
    "MountainCar-v0": _mountain_car,
    "MountainCarContinuous-v0": _mountain_car,
}

BOX2D = {"LunarLander-v3", "LunarLanderContinuous-v3"}


def _base_ids() -> list[Any]:
    return [
        pytest.param(b, marks=pytest.mark.skipif(b in BOX2D and not box2d_available(), reason="needs Box2D"))
        for b in NO_VELOCITY_KEEP
    ]


def test_table_covers_the_documented_tasks() -> None:
    assert NO_VELOCITY_KEEP == {
        "CartPole-v1": (0, 2),
        "Pendulum-v1": (0, 1),
        "Acrobot-v1": (0, 1, 2, 3),
        "MountainCar-v0": (0,),
        "MountainCarContinuous-v0": (0,),
        "LunarLander-v3": (0, 1, 4, 6, 7),
        "LunarLanderContinuous-v3": (0, 1, 4, 6, 7),
    }


@pytest.mark.parametrize("base_id", _base_ids())
def test_keeps_exactly_the_documented_entries(base_id: str) -> None:
    keep = NO_VELOCITY_KEEP[base_id]
    plain = gym.make(base_id)
    masked = MaskObservation(gym.make(base_id), keep)
    plain.action_space.seed(0)
    obs_plain, _ = plain.reset(seed=11)
    obs_masked, _ = masked.reset(seed=11)
    for t in range(40):
        np.testing.assert_array_equal(obs_masked, obs_plain[list(keep)])
        assert obs_masked.dtype == obs_plain.dtype
        assert masked.observation_space.contains(obs_masked)
        if base_id in POSITIONS_FROM_STATE:
            # The kept entries are the positions / angles of the simulator's state, nothing else.
            expected = POSITIONS_FROM_STATE[base_id](masked.unwrapped)
            np.testing.assert_allclose(obs_masked, expected, rtol=0, atol=1e-6)
        action = plain.action_space.sample()
        obs_plain, r_plain, term_plain, trunc_plain, _ = plain.step(action)
        obs_masked, r_masked, term_masked, trunc_masked, _ = masked.step(action)
        assert (r_masked, term_masked, trunc_masked) == (r_plain, term_plain, trunc_plain)
        if term_plain or trunc_plain:
            break
    assert t > 3


@pytest.mark.parametrize("base_id", _base_ids())
def test_bounds_are_the_kept_bounds(base_id: str) -> None:
    keep = list(NO_VELOCITY_KEEP[base_id])
    base = gym.make(base_id)
    space = MaskObservation(base, keep).observation_space
    assert isinstance(space, spaces.Box)
    assert space.shape == (len(keep),)
    assert space.dtype == base.observation_space.dtype
    np.testing.assert_array_equal(space.low, base.observation_space.low[keep])
    np.testing.assert_array_equal(space.high, base.observation_space.high[keep])


def test_cartpole_bounds_by_value() -> None:
    space = MaskObservation(gym.make("CartPole-v1"), (0, 2)).observation_space
    np.testing.assert_allclose(space.high, [4.8, 12 * 2 * np.pi / 360 * 2], rtol=1e-6)
    np.testing.assert_allclose(space.low, -space.high)


def test_order_of_keep_is_kept() -> None:
    env = MaskObservation(gym.make("CartPole-v1"), [2, 0])
    obs, _ = env.reset(seed=5)
    x, _, theta, _ = env.unwrapped.state
    np.testing.assert_allclose(obs, [theta, x], atol=1e-7)
    np.testing.assert_allclose(env.observation_space.high, [0.41887903, 4.8], rtol=1e-6)


def test_hide_velocities_looks_up_the_task() -> None:
    env = hide_velocities(gym.make("Pendulum-v1"))
    assert env.keep == (0, 1)
    with pytest.raises(ValueError, match="no velocity mask is known for env id 'FrozenLake-v1'"):
        hide_velocities(gym.make("FrozenLake-v1"))


@pytest.mark.parametrize(
    ("keep", "error", "message"),
    [
        ((0, 4), ValueError, r"indices \[4\] outside the observation's range 0..3"),
        ((-1,), ValueError, r"indices \[-1\] outside"),
        ((0, 2, 0), ValueError, r"names indices \[0\] more than once"),
        ((), ValueError, "keep is empty"),
        ((0, 1.0), TypeError, "keep must hold ints"),
        ((True,), TypeError, "keep must hold ints"),
        (3, TypeError, "keep must be a sequence of ints"),
        ("02", TypeError, "keep must be a sequence of ints"),
    ],
)
def test_bad_indices_raise(keep: Any, error: type[Exception], message: str) -> None:
    with pytest.raises(error, match=message):
        MaskObservation(gym.make("CartPole-v1"), keep)


def test_numpy_indices_are_accepted() -> None:
    env = MaskObservation(gym.make("CartPole-v1"), np.array([0, 2]))
    assert env.keep == (0, 2)


class _ImageEnv(gym.Env[np.ndarray, int]):
    observation_space = spaces.Box(0.0, 1.0, shape=(2, 2), dtype=np.float32)
    action_space = spaces.Discrete(2)


def test_non_box_and_non_flat_spaces_raise() -> None:
    with pytest.raises(TypeError, match="needs a Box observation space"):
        MaskObservation(IrregularTimeStep(gym.make("CartPole-v1")), (0,))
    with pytest.raises(TypeError, match="needs a Box observation space"):
        MaskObservation(gym.make("FrozenLake-v1"), (0,))
    with pytest.raises(ValueError, match=r"1-D Box observation \(shape \(D,\)\), got shape \(2, 2\)"):
        MaskObservation(_ImageEnv(), (0,))
