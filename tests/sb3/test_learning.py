"""Learning tests: NCP policies learn control tasks with small budgets (fixed seeds, one torch thread).

RecurrentPPO runs RL Zoo's CartPoleNoVel-v1 hyperparameters (8 envs, n_steps 32, batch 256, 20 epochs,
gamma 0.98, GAE lambda 0.8, linear schedules from lr 1e-3 and clip 0.2, VecNormalize) on fewer steps.
"""
from __future__ import annotations

import time

import pytest
from sb3_contrib import RecurrentPPO
from stable_baselines3 import PPO, SAC
from stable_baselines3.common.callbacks import EvalCallback, StopTrainingOnRewardThreshold
from stable_baselines3.common.env_util import make_vec_env
from stable_baselines3.common.evaluation import evaluate_policy
from stable_baselines3.common.vec_env import VecNormalize

import envs  # noqa: F401  (registers ncp/CartPoleNoVel-v1)
from ncp_policies.sb3 import NCPActorCriticPolicy, NCPExtractor


def _linear(start: float):
    return lambda progress: progress * start


ZOO_CARTPOLE = dict(
    n_steps=32, batch_size=256, n_epochs=20, gamma=0.98, gae_lambda=0.8, ent_coef=0.0,
    learning_rate=_linear(1e-3), clip_range=_linear(0.2),
)


def _normalized(env_id: str, n_envs: int, seed: int, gamma: float) -> VecNormalize:
    return VecNormalize(make_vec_env(env_id, n_envs=n_envs, seed=seed), gamma=gamma)


def _eval_env(env_id: str, n_envs: int = 10) -> VecNormalize:
    """Evaluation envs (episodes run in parallel); EvalCallback syncs the training observation statistics."""
    return VecNormalize(make_vec_env(env_id, n_envs=n_envs, seed=10_000), training=False, norm_reward=False)


def _train_until(model, eval_env, threshold: float, max_steps: int, eval_every: int = 5_000, episodes: int = 20):
    """Train until the mean deterministic return over ``episodes`` evaluation episodes reaches ``threshold``.

    :return: the best mean evaluation return (the model is left at the evaluation that reached it).
    """
    stop = StopTrainingOnRewardThreshold(threshold)
    callback = EvalCallback(eval_env, n_eval_episodes=episodes, eval_freq=eval_every // model.n_envs,
                            deterministic=True, callback_on_new_best=stop, verbose=0)
    start = time.perf_counter()
    model.learn(max_steps, callback=callback)
    rate = model.num_timesteps / (time.perf_counter() - start)
    print(f"{type(model).__name__}: best {callback.best_mean_reward:.1f} after {model.num_timesteps} steps "
          f"({rate:.0f} steps/s including evaluations)")
    return float(callback.best_mean_reward)


@pytest.mark.slow  # about 60 s: solves at 25k steps
def test_recurrent_ppo_cfc_solves_cartpole_without_velocities():
    env = _normalized("ncp/CartPoleNoVel-v1", 8, seed=0, gamma=0.98)
    model = RecurrentPPO(NCPActorCriticPolicy, env, seed=0, **ZOO_CARTPOLE)
    assert _train_until(model, _eval_env("ncp/CartPoleNoVel-v1"), 475, max_steps=60_000) >= 475


def test_recurrent_ppo_ltc_learns_cartpole_without_velocities():
    """LTC actor (CfC critic, the default), learning rate from 1e-2: the LTC learns slowly at 1e-3."""
    env = _normalized("ncp/CartPoleNoVel-v1", 8, seed=0, gamma=0.98)
    hyperparameters = {**ZOO_CARTPOLE, "learning_rate": _linear(1e-2)}
    model = RecurrentPPO(NCPActorCriticPolicy, env, seed=0, policy_kwargs=dict(cell="ltc"), **hyperparameters)
    eval_env = _eval_env("ncp/CartPoleNoVel-v1")
    eval_env.obs_rms = env.obs_rms
    before, _ = evaluate_policy(model, eval_env, n_eval_episodes=20, deterministic=True)
    after = _train_until(model, eval_env, 250, max_steps=30_000)  # stops once clearly better
    print(f"NCP-LTC CartPoleNoVel: {before:.1f} -> {after:.1f}")
    assert after >= 150 and after >= 4 * before


def test_ppo_with_ncp_extractor_solves_cartpole():
    env = _normalized("CartPole-v1", 8, seed=0, gamma=0.98)
    model = PPO("MlpPolicy", env, seed=0, policy_kwargs=dict(
        features_extractor_class=NCPExtractor, features_extractor_kwargs=dict(units=16)), **ZOO_CARTPOLE)
    assert _train_until(model, _eval_env("CartPole-v1"), 475, max_steps=60_000) >= 475


@pytest.mark.slow  # about 60 s: SAC takes a gradient step per environment step
def test_sac_with_ncp_extractor_improves_pendulum():
    env = VecNormalize(make_vec_env("Pendulum-v1", n_envs=1, seed=0), norm_reward=False)
    model = SAC("MlpPolicy", env, seed=0, learning_rate=1e-3, batch_size=64, learning_starts=200, policy_kwargs=dict(
        net_arch=[64, 64], features_extractor_class=NCPExtractor, features_extractor_kwargs=dict(units=12)))
    eval_env = _eval_env("Pendulum-v1", n_envs=5)
    eval_env.obs_rms = env.obs_rms
    before, _ = evaluate_policy(model, eval_env, n_eval_episodes=10, deterministic=True)
    after = _train_until(model, eval_env, -600, max_steps=6_000, eval_every=1_000, episodes=10)
    print(f"SAC + NCPExtractor Pendulum: {before:.1f} -> {after:.1f}")
    assert after >= -600 and after >= before + 400
