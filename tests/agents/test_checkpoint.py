import json
import os

import numpy as np
import pytest
from stable_baselines3.common.vec_env import DummyVecEnv, VecNormalize

import agents.checkpoint as ckpt
from agents.build import make_single_env
from agents.normalized_env import FrozenNormalizeObservation


def _fitted_vecnormalize(seed=0):
    venv = VecNormalize(DummyVecEnv([lambda: make_single_env("ncp/CartPoleNoVel-v1")]), clip_obs=3.0)
    venv.seed(seed)
    venv.reset()
    for _ in range(50):
        venv.step(np.array([venv.action_space.sample()]))
    return venv


def test_atomic_write_replaces_whole_file(tmp_path):
    target = tmp_path / "f.bin"
    ckpt.atomic_write_bytes(target, b"old")
    ckpt.atomic_write_bytes(target, b"new content")
    assert target.read_bytes() == b"new content"
    assert os.listdir(tmp_path) == ["f.bin"]


def test_failed_write_leaves_old_file_and_no_temp(tmp_path, monkeypatch):
    target = tmp_path / "model_last.zip"
    ckpt.atomic_write_bytes(target, b"good checkpoint")

    def boom(fd):
        raise OSError("disk full")

    monkeypatch.setattr(ckpt.os, "fsync", boom)  # fails after the bytes went to the temp file
    with pytest.raises(OSError, match="disk full"):
        ckpt.atomic_write_bytes(target, b"partial")
    assert target.read_bytes() == b"good checkpoint"
    assert os.listdir(tmp_path) == ["model_last.zip"]


def test_failed_model_save_keeps_previous_checkpoint(trained_run, tmp_path, monkeypatch):
    from agents.runs import load_run

    run = load_run(trained_run, which="last")
    target = tmp_path / "model_last.zip"
    ckpt.save_checkpoint(run.model, target, None)
    before = target.read_bytes()

    def half_save(buf, *a, **k):
        buf.write(b"PK\x03\x04 half a zip")
        raise RuntimeError("killed mid-save")

    monkeypatch.setattr(run.model, "save", half_save)
    with pytest.raises(RuntimeError, match="killed mid-save"):
        ckpt.save_checkpoint(run.model, target, None)
    assert target.read_bytes() == before
    assert ckpt.read_checkpoint_state(target)["num_timesteps"] == run.num_timesteps
    assert os.listdir(tmp_path) == ["model_last.zip"]


def test_vecnormalize_state_round_trip_is_exact():
    src = _fitted_vecnormalize()
    state = json.loads(json.dumps(ckpt.vecnormalize_state(src)))
    dst = VecNormalize(DummyVecEnv([lambda: make_single_env("ncp/CartPoleNoVel-v1")]), training=False)
    ckpt.restore_vecnormalize(dst, state)
    np.testing.assert_array_equal(dst.obs_rms.mean, src.obs_rms.mean)
    np.testing.assert_array_equal(dst.obs_rms.var, src.obs_rms.var)
    assert dst.obs_rms.count == src.obs_rms.count and dst.ret_rms.var == src.ret_rms.var
    x = np.array([[0.3, -0.1]], dtype=np.float32)
    dst.clip_obs = src.clip_obs
    np.testing.assert_array_equal(dst.normalize_obs(x), src.normalize_obs(x))


def test_frozen_normalize_wrapper_matches_vecnormalize():
    src = _fitted_vecnormalize()
    env = FrozenNormalizeObservation(make_single_env("ncp/CartPoleNoVel-v1"), ckpt.vecnormalize_state(src))
    for x in ([0.3, -0.1], [4.0, 0.4], [-2.0, 0.0]):
        x = np.array(x, dtype=np.float32)
        np.testing.assert_allclose(env.observation(x), src.normalize_obs(x[None])[0], rtol=1e-6)
    assert np.abs(env.observation(np.array([1e3, 1e3], np.float32))).max() == 3.0  # clipped at clip_obs
