"""Shared fixtures: a tiny preset and one trained run directory reused by the read-only tests."""
from __future__ import annotations

from pathlib import Path

import pytest
import yaml

TINY = {
    "description": "test-only: RecurrentPPO on CartPoleNoVel, smallest useful rollout",
    "algo": "RecurrentPPO",
    "env": "ncp/CartPoleNoVel-v1",
    "n_envs": 2,
    "n_timesteps": 128,
    "normalize": {"norm_obs": True, "norm_reward": True},
    "hyperparams": {"n_steps": 32, "batch_size": 64, "n_epochs": 2, "gamma": 0.98, "gae_lambda": 0.8,
                    "learning_rate": "lin_1e-3", "clip_range": "lin_0.2"},
    "policy_kwargs": {"cell": "cfc", "units": 8},
    "eval_freq": 10_000,
    "eval_episodes": 2,
}


@pytest.fixture(scope="session")
def tiny_preset(tmp_path_factory: pytest.TempPathFactory) -> Path:
    path = tmp_path_factory.mktemp("presets") / "tiny.yaml"
    path.write_text(yaml.safe_dump(TINY))
    return path


@pytest.fixture(scope="session")
def trained_run(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """`ncp train` in-process with the bundled default CartPoleNoVel preset on 512 steps."""
    from agents.cli import main

    out = tmp_path_factory.mktemp("runs") / "cartpole"
    assert main(["train", "--env", "ncp/CartPoleNoVel-v1", "--steps", "512", "--seed", "1",
                 "--out", str(out), "--no-progress-bar"]) == 0
    return out
