"""FreezeNormalization: VecNormalize statistics stop at the given step, are still applied, and resume frozen."""
from __future__ import annotations

import numpy as np
import pytest
from stable_baselines3 import PPO
from stable_baselines3.common.env_util import make_vec_env
from stable_baselines3.common.vec_env import VecNormalize

from agents.callbacks import FreezeNormalization, freeze_if_due
from agents.errors import UsageError


def _model(normalize: bool = True) -> PPO:
    venv = make_vec_env("CartPole-v1", n_envs=2, seed=0)
    if normalize:
        venv = VecNormalize(venv)
    return PPO("MlpPolicy", venv, n_steps=32, batch_size=64, n_epochs=1, seed=0, device="cpu")


def test_statistics_stop_updating_at_the_step_and_are_still_applied() -> None:
    model = _model()
    norm = model.get_env()
    freeze = FreezeNormalization(after=96)
    model.learn(96, callback=freeze)
    assert freeze.frozen_at == 96 and not norm.training
    count, mean, ret_count = norm.obs_rms.count, norm.obs_rms.mean.copy(), norm.ret_rms.count
    model.learn(128, callback=FreezeNormalization(after=96), reset_num_timesteps=False)
    assert norm.obs_rms.count == count and norm.ret_rms.count == ret_count
    np.testing.assert_array_equal(norm.obs_rms.mean, mean)
    raw = norm.get_original_obs()
    np.testing.assert_allclose(norm.normalize_obs(raw), np.clip((raw - mean) / np.sqrt(norm.obs_rms.var + norm.epsilon),
                                                                -norm.clip_obs, norm.clip_obs), rtol=1e-6)


def test_without_freezing_the_statistics_keep_updating() -> None:
    """The control of the test above: the same training does move the statistics."""
    model = _model()
    norm = model.get_env()
    model.learn(96)
    count = norm.obs_rms.count
    model.learn(128, reset_num_timesteps=False)
    assert norm.training and norm.obs_rms.count > count


def test_a_run_resumed_beyond_the_step_is_frozen_from_its_first_step() -> None:
    model = _model()
    model.num_timesteps = 1000
    norm = model.get_env()
    before = norm.obs_rms.count
    assert not freeze_if_due(norm, 499, 500) and norm.training
    assert freeze_if_due(norm, model.num_timesteps, 500)  # as `ncp train --resume` does before learning
    model.learn(64, callback=FreezeNormalization(after=500), reset_num_timesteps=False)
    assert norm.obs_rms.count == before  # not even the reset's observations


def test_bad_arguments_and_a_missing_vecnormalize_are_named() -> None:
    for bad in (-1, 1.5, True, "50000"):
        with pytest.raises(UsageError, match="freeze_normalization_after"):
            FreezeNormalization(after=bad)  # type: ignore[arg-type]
    with pytest.raises(UsageError, match="no VecNormalize"):
        _model(normalize=False).learn(64, callback=FreezeNormalization(after=10))
