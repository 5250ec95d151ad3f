"""FreezeNormalization: VecNormalize statistics stop at the given step, are still applied, and resume frozen.
StopWhenSolved: training ends once the latest training episodes all reach the return, and only then.
StopWhenEvaluationSolved: the same on a periodic deterministic evaluation of its own; with restore_best, a run
never stopped ends with the weights and statistics of its best check."""
from __future__ import annotations

from copy import deepcopy

import numpy as np
import pytest
import torch
from stable_baselines3 import PPO
from stable_baselines3.common.callbacks import BaseCallback, CallbackList
from stable_baselines3.common.env_util import make_vec_env
from stable_baselines3.common.vec_env import VecNormalize

from agents.callbacks import (FreezeNormalization, StopWhenEvaluationSolved, StopWhenSolved, freeze_if_due,
                              stop_callback)
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


class _RewardLog(BaseCallback):
    """Records each step's unnormalised rewards and dones, as the training env returned them."""

    def __init__(self) -> None:
        super().__init__()
        self.steps: list[tuple[np.ndarray, np.ndarray]] = []

    def _on_step(self) -> bool:
        norm = self.model.get_env()
        self.steps.append((norm.get_original_reward().copy(), np.asarray(self.locals["dones"], dtype=bool).copy()))
        return True


def test_rewards_false_freezes_the_observations_and_keeps_the_return_statistics_exact() -> None:
    """The observation statistics stop at the step; the return variance goes on exactly as VecNormalize's own
    update would take it over the same rewards (discounted with its gamma, reset where episodes end)."""
    model = _model()
    norm = model.get_env()
    model.learn(96, callback=FreezeNormalization(after=96, rewards=False))
    assert not norm.training
    obs_count, obs_mean, ret_count = norm.obs_rms.count, norm.obs_rms.mean.copy(), norm.ret_rms.count
    expected = VecNormalize(make_vec_env("CartPole-v1", n_envs=2, seed=0), gamma=norm.gamma)  # its update only
    expected.ret_rms, expected.returns = deepcopy(norm.ret_rms), norm.returns.copy()
    log = _RewardLog()
    model.learn(128, callback=CallbackList([FreezeNormalization(after=96, rewards=False), log]),
                reset_num_timesteps=False)
    for rewards, dones in log.steps:
        expected._update_reward(rewards)
        expected.returns[dones] = 0
    assert len(log.steps) == 64 and any(d.any() for _, d in log.steps)  # episodes did end meanwhile
    np.testing.assert_array_equal(norm.obs_rms.mean, obs_mean)
    assert norm.obs_rms.count == obs_count
    assert norm.ret_rms.count == expected.ret_rms.count == pytest.approx(ret_count + 64 * 2)  # 64 steps x 2 envs
    np.testing.assert_allclose(norm.ret_rms.var, expected.ret_rms.var, rtol=1e-12)
    np.testing.assert_allclose(norm.ret_rms.mean, expected.ret_rms.mean, rtol=1e-12)


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
    with pytest.raises(UsageError, match="freeze_reward_normalization"):
        FreezeNormalization(after=10, rewards="no")  # type: ignore[arg-type]
    with pytest.raises(UsageError, match="no VecNormalize"):
        _model(normalize=False).learn(64, callback=FreezeNormalization(after=10))


class _EpisodeLog(BaseCallback):
    """Records, at every step, the returns of the training episodes finished so far (SB3's buffer)."""

    def __init__(self) -> None:
        super().__init__()
        self.seen: list[list[float]] = []

    def _on_step(self) -> bool:
        self.seen.append([info["r"] for info in self.model.ep_info_buffer])
        return True


def test_training_stops_once_the_latest_episodes_all_reach_the_return() -> None:
    model = _model(normalize=False)
    log, stop = _EpisodeLog(), StopWhenSolved(reward=20.0, episodes=3)
    model.learn(4096, callback=CallbackList([log, stop]))
    assert stop.stopped_at is not None and stop.stopped_at == model.num_timesteps < 4096
    assert all(r >= 20.0 for r in log.seen[-1][-3:]) and len(log.seen[-1]) >= 3
    # at no earlier step were the latest three all at 20 or more: it stopped at the first chance
    assert not any(len(seen) >= 3 and all(r >= 20.0 for r in seen[-3:]) for seen in log.seen[:-1])
    assert any(r < 20.0 for seen in log.seen for r in seen)  # the rule had something to reject


def test_training_runs_its_whole_budget_when_never_solved() -> None:
    model = _model(normalize=False)
    stop = StopWhenSolved(reward=10_000.0, episodes=2)
    model.learn(256, callback=stop)
    assert stop.stopped_at is None and model.num_timesteps == 256


@pytest.mark.parametrize("reward, episodes", [(float("nan"), 5), ("500", 5), (500.0, 0), (500.0, 2.5), (500.0, True)])
def test_invalid_stop_settings_are_rejected(reward, episodes) -> None:
    with pytest.raises(UsageError, match="stop_when_solved"):
        StopWhenSolved(reward, episodes)


def test_stopping_needs_recorded_episodes() -> None:
    from stable_baselines3.common.vec_env import DummyVecEnv
    import gymnasium as gym

    bare = PPO("MlpPolicy", DummyVecEnv([lambda: gym.make("CartPole-v1")]), n_steps=32, batch_size=32, device="cpu")
    with pytest.raises(UsageError, match="no Monitor wrapper"):
        bare.learn(32, callback=StopWhenSolved(500.0, 5))
    with pytest.raises(UsageError, match="exceeds the 100 episodes"):
        _model(normalize=False).learn(32, callback=StopWhenSolved(500.0, 101))


class _Evaluations(StopWhenEvaluationSolved):
    """Records the step and returns of every check."""

    def __init__(self, *args, **kwargs) -> None:
        super().__init__(*args, **kwargs)
        self.checks: list[tuple[int, list[float]]] = []

    def _on_step(self) -> bool:
        before = self.next_check
        go_on = super()._on_step()
        if self.next_check != before:
            self.checks.append((int(self.num_timesteps), list(self.last_returns)))
        return go_on


def test_training_stops_at_the_first_evaluation_whose_episodes_all_reach_the_return() -> None:
    model = _model(normalize=False)
    stop = _Evaluations(make_vec_env("CartPole-v1", n_envs=1, seed=123), reward=60.0, episodes=3, eval_freq=128)
    model.learn(8192, callback=stop)
    assert stop.stopped_at is not None and stop.stopped_at == model.num_timesteps < 8192
    steps = [step for step, _ in stop.checks]
    assert steps == [128 * (i + 1) for i in range(len(steps))] and steps[-1] == stop.stopped_at  # every 128 steps
    assert len(stop.checks[-1][1]) == 3 and min(stop.checks[-1][1]) >= 60.0
    assert all(min(returns) < 60.0 for _, returns in stop.checks[:-1]) and len(stop.checks) > 1


def test_an_evaluation_rule_never_met_trains_the_whole_budget_and_checks_on_new_start_states() -> None:
    model = _model()
    stop = _Evaluations(VecNormalize(make_vec_env("CartPole-v1", n_envs=1, seed=123), training=False),
                        reward=10_000.0, episodes=2, eval_freq=64)
    model.learn(256, callback=stop)
    assert stop.stopped_at is None and model.num_timesteps == 256 and len(stop.checks) == 4
    # the evaluation env's statistics are the training env's at each check
    np.testing.assert_array_equal(stop.eval_env.obs_rms.mean, model.get_env().obs_rms.mean)


@pytest.mark.parametrize("kwargs, needle", [({"reward": float("nan")}, "reward"), ({"episodes": 0}, "episodes"),
                                            ({"eval_freq": 0}, "eval_freq"), ({"eval_freq": 2.5}, "eval_freq")])
def test_invalid_evaluation_stop_settings_are_rejected(kwargs, needle) -> None:
    settings = {"reward": 500.0, "episodes": 5, "eval_freq": 1000, **kwargs}
    with pytest.raises(UsageError, match=needle):
        StopWhenEvaluationSolved(make_vec_env("CartPole-v1", n_envs=1), **settings)


def test_the_rule_picks_its_callback_and_makes_an_env_only_for_evaluation() -> None:
    made: list[int | None] = []

    def make_env(limit):
        made.append(limit)
        return make_vec_env("CartPole-v1", n_envs=1)

    training = stop_callback({"reward": 5, "episodes": 2}, make_env, 100)
    assert type(training) is StopWhenSolved and not made
    assert type(stop_callback({"reward": 5, "episodes": 2, "on": "training"}, make_env, 100)) is StopWhenSolved
    evaluation = stop_callback({"reward": 5, "episodes": 2, "on": "evaluation"}, make_env, 100)
    assert isinstance(evaluation, StopWhenEvaluationSolved) and made == [None]
    assert (evaluation.reward, evaluation.episodes, evaluation.eval_freq) == (5.0, 2, 100)
    own = stop_callback({"reward": 5, "episodes": 2, "on": "evaluation", "eval_freq": 30, "restore_best": True},
                        make_env, 100)  # the rule's own period wins over the run's
    assert (own.eval_freq, own.next_check, own.restore_best) == (30, 30, True) and made == [None, None]
    longer = stop_callback({"reward": 1000, "episodes": 2, "on": "evaluation", "episode_steps": 1000}, make_env, 100)
    assert made == [None, None, 1000] and longer.reward == 1000.0  # the env is made with the checks' time limit


def _balance_for(steps: int):
    """:return: a ``predict`` for CartPole (one env) that balances the pole for ``steps`` steps of each episode,
    then always pushes left."""
    t = [0]

    def predict(obs, state=None, episode_start=None, deterministic=True):
        t[0] = 0 if episode_start is not None and episode_start[0] else t[0] + 1
        x, x_dot, theta, theta_dot = obs[0]
        return np.array([int(t[0] < steps and theta + 0.5 * theta_dot > 0)]), state

    return predict


def test_checks_with_a_longer_time_limit_see_a_policy_fail_that_the_task_s_limit_hides() -> None:
    """A policy that keeps CartPole up for 60-odd steps and then lets it fall passes checks limited to 50 steps
    and fails checks of 200 steps: ``episode_steps`` reaches the env the checks run on."""
    from agents.build import make_venv

    def make(limit):
        return make_venv({"env": "CartPole-v1", "normalize": False}, n_envs=1, seed=0, training=False,
                         max_episode_steps=limit)

    assert make(50).envs[0].spec.max_episode_steps == 50
    model = PPO("MlpPolicy", make_vec_env("CartPole-v1", n_envs=1, seed=0), seed=0)

    def check(limit):
        stop = stop_callback({"reward": limit, "episodes": 3, "on": "evaluation", "episode_steps": limit}, make, 1)
        stop.init_callback(model)
        model.predict = _balance_for(60)  # a controller that gives up after 60 steps
        return stop._evaluate()

    assert check(50) == [50.0] * 3  # every episode cut at the checks' limit: solved
    assert 60 < max(check(200)) < 100  # the pole falls soon after the controller gives up: not solved


class _Snapshots(_Evaluations):
    """Also records, at each check, the policy's weights and the training env's observation mean."""

    def __init__(self, *args, **kwargs) -> None:
        super().__init__(*args, **kwargs)
        self.snapshots: dict[int, tuple[dict, np.ndarray]] = {}

    def _on_step(self) -> bool:
        before = self.next_check
        if self.num_timesteps >= before:
            state = {k: v.clone() for k, v in self.model.policy.state_dict().items()}
            self.snapshots[int(self.num_timesteps)] = (state, self.model.get_env().obs_rms.mean.copy())
        return super()._on_step()


class _SpoilAtTheEnd(BaseCallback):
    """At the end of training, makes the policy push the cart one way only (CartPole falls within ~10 steps)."""

    def _on_step(self) -> bool:
        return True

    def _on_training_end(self) -> None:
        with torch.no_grad():
            self.model.policy.action_net.weight.zero_()
            self.model.policy.action_net.bias.copy_(torch.tensor([10.0, -10.0]))


def test_restore_best_puts_back_the_weights_and_statistics_of_the_best_check() -> None:
    model = _model()
    stop = _Snapshots(VecNormalize(make_vec_env("CartPole-v1", n_envs=1, seed=123), training=False),
                      reward=10_000.0, episodes=3, eval_freq=128, restore_best=True)
    model.learn(1024, callback=CallbackList([_SpoilAtTheEnd(), stop]))
    means = [float(np.mean(returns)) for _, returns in stop.checks]
    assert len(means) == 8 and max(stop.last_returns) < 15  # last_returns: the spoilt final weights' evaluation
    best = max(i for i, m in enumerate(means) if m == max(means))  # a tie goes to the later check
    step = stop.checks[best][0]
    assert stop.stopped_at is None and stop.restored_from == step and stop.best_mean == max(means) > 15
    weights, obs_mean = stop.snapshots[step]
    for name, tensor in model.policy.state_dict().items():
        torch.testing.assert_close(tensor, weights[name], rtol=0, atol=0)
    np.testing.assert_array_equal(model.get_env().obs_rms.mean, obs_mean)
    assert step < 1024 and not np.array_equal(obs_mean, stop.snapshots[1024][1])  # they moved after that check


def test_restore_best_leaves_alone_a_stopped_run_and_one_never_checked() -> None:
    model = _model(normalize=False)
    stop = StopWhenEvaluationSolved(make_vec_env("CartPole-v1", n_envs=1, seed=123), reward=0.0, episodes=2,
                                    eval_freq=64, restore_best=True)
    model.learn(1024, callback=CallbackList([_SpoilAtTheEnd(), stop]))
    assert stop.stopped_at == 64 and stop.restored_from is None
    assert model.policy.action_net.bias[0].item() == 10.0  # the weights as training left them
    never = StopWhenEvaluationSolved(make_vec_env("CartPole-v1", n_envs=1, seed=123), reward=10_000.0, episodes=2,
                                     eval_freq=10_000, restore_best=True)
    model.learn(128, callback=CallbackList([_SpoilAtTheEnd(), never]))
    assert never.restored_from is None and never.last_returns == [] and never.stopped_at is None
    with pytest.raises(UsageError, match="restore_best"):
        StopWhenEvaluationSolved(make_vec_env("CartPole-v1", n_envs=1), 500.0, 5, 1000, restore_best="yes")
