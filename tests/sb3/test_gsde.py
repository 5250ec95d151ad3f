"""gSDE (``use_sde=True``) in NCPActorCriticPolicy: noise read from the actor's neurons, as SB3's ActorCriticPolicy."""
from __future__ import annotations

import numpy as np
import pytest
import torch
from gymnasium import spaces
from sb3_contrib import RecurrentPPO
from sb3_contrib.common.recurrent.type_aliases import RNNStates
from stable_baselines3.common.distributions import StateDependentNoiseDistribution
from stable_baselines3.common.vec_env import DummyVecEnv

import envs  # noqa: F401  (registers ncp/PendulumNoVel-v1)
from ncp_policies.sb3 import NCPActorCriticPolicy

from .helpers import ToyEnv, make_policy

OBS = spaces.Box(-1.0, 1.0, (3,), np.float32)
BOX2 = spaces.Box(-1.0, 1.0, (2,), np.float32)


def _states(policy: NCPActorCriticPolicy, n_envs: int, seed: int = 0) -> RNNStates:
    """Random (non-zero) recurrent states, each (1, n_envs, H)."""
    g = torch.Generator().manual_seed(seed)
    shape = (1, n_envs, policy.lstm_actor.hidden_size)
    return RNNStates(
        (torch.rand(shape, generator=g) - 0.5, torch.zeros(shape)),
        (torch.rand(shape, generator=g) - 0.5, torch.zeros(shape)),
    )


def _step(policy, obs, states, deterministic=False):
    with torch.no_grad():
        return policy(obs, states, torch.zeros(obs.shape[0]), deterministic=deterministic)


def _model(n_envs=2, **kwargs) -> RecurrentPPO:
    env = DummyVecEnv([lambda i=i: ToyEnv(OBS, BOX2, seed=i) for i in range(n_envs)])
    policy_kwargs = dict(units=10, critic_units=8, **kwargs.pop("policy_kwargs", {}))
    return RecurrentPPO(NCPActorCriticPolicy, env, n_steps=40, batch_size=32, n_epochs=1, seed=0, use_sde=True,
                        policy_kwargs=policy_kwargs, **kwargs)


def test_trains_on_pendulum_without_velocity():
    model = RecurrentPPO(NCPActorCriticPolicy, "ncp/PendulumNoVel-v1", use_sde=True, sde_sample_freq=4,
                         n_steps=128, batch_size=64, n_epochs=2, seed=0,
                         policy_kwargs=dict(units=10, critic_units=8, log_std_init=-2.0))
    policy = model.policy
    assert isinstance(policy.action_dist, StateDependentNoiseDistribution)
    n = policy.actor_neuron_count
    assert policy.log_std.shape == (n, 1)  # (N, motors): Pendulum has one action
    assert policy.action_dist.exploration_mat.shape == (n, 1)
    before = policy.log_std.detach().clone()
    model.learn(256)
    after = policy.log_std.detach()
    assert torch.isfinite(after).all() and not torch.equal(before, after)  # the gSDE log std learns
    assert all(torch.isfinite(p).all() for p in policy.parameters())
    assert model.logger.name_to_value["train/std"] == pytest.approx(after.exp().mean().item())


def test_noise_is_the_neuron_state_times_the_exploration_matrix():
    policy = make_policy(OBS, BOX2, units=10, use_sde=True, log_std_init=-1.0)
    n = policy.actor_neuron_count
    assert policy.log_std.shape == (n, 2) and torch.all(policy.log_std == -1.0)
    policy.reset_noise(1)  # one matrix shared by the 3 environments below
    obs = torch.tensor(np.random.default_rng(0).uniform(-1, 1, (3, 3)), dtype=torch.float32)
    states = _states(policy, 3)
    actions, _, log_prob, new_states = _step(policy, obs, states)
    means, _, _, _ = _step(policy, obs, states, deterministic=True)
    neurons = new_states.pi[0][0, :, :n]  # the actor's full neuron state after the step
    mat = policy.action_dist.exploration_mat
    noise = actions - means
    torch.testing.assert_close(noise, neurons @ mat, rtol=1e-5, atol=1e-6)
    assert (noise[0] - noise[1]).abs().min() > 1e-4 and (noise[1] - noise[2]).abs().min() > 1e-4
    # the distribution's std is the gSDE one: sqrt(latent_sde^2 @ std^2 + eps), latent_sde detached
    dist = policy.action_dist
    expected_std = torch.sqrt(neurons**2 @ policy.log_std.exp().detach() ** 2 + dist.epsilon)
    torch.testing.assert_close(dist.distribution.stddev, expected_std, rtol=1e-5, atol=1e-6)
    expected_log_prob = torch.distributions.Normal(means, expected_std).log_prob(actions).sum(-1)
    torch.testing.assert_close(log_prob, expected_log_prob, rtol=1e-5, atol=1e-5)
    # with autograd on, the means carry gradients and the noise features do not (SB3's learn_features=False)
    dist, _ = policy.get_distribution(obs, states.pi, torch.zeros(3))
    assert dist.distribution.mean.requires_grad and not dist._latent_sde.requires_grad
    torch.testing.assert_close(dist._latent_sde, neurons, rtol=1e-5, atol=1e-6)  # autograd path vs fused step


def test_one_exploration_matrix_per_environment():
    policy = make_policy(OBS, BOX2, units=10, use_sde=True)
    policy.reset_noise(3)
    obs = torch.zeros(3, 3)
    states = _states(policy, 3, seed=1)
    actions, _, _, new_states = _step(policy, obs, states)
    means, _, _, _ = _step(policy, obs, states, deterministic=True)
    neurons = new_states.pi[0][0, :, : policy.actor_neuron_count]
    mats = policy.action_dist.exploration_matrices  # (n_envs, N, O)
    assert mats.shape == (3, policy.actor_neuron_count, 2)
    expected = torch.einsum("bn,bno->bo", neurons, mats)
    torch.testing.assert_close(actions - means, expected, rtol=1e-5, atol=1e-6)


def test_noise_is_fixed_between_resets():
    policy = make_policy(OBS, BOX2, units=10, use_sde=True)
    obs = torch.tensor(np.random.default_rng(1).uniform(-1, 1, (2, 3)), dtype=torch.float32)
    states = _states(policy, 2)
    policy.reset_noise(2)
    first, _, _, _ = _step(policy, obs, states)
    second, _, _, _ = _step(policy, obs, states)
    torch.testing.assert_close(first, second, rtol=0, atol=0)  # same matrix, same state: same action
    policy.reset_noise(2)
    third, _, _, _ = _step(policy, obs, states)
    assert (third - first).abs().min() > 1e-4


def test_rollout_keeps_the_noise_for_sde_sample_freq_steps():
    """During RecurrentPPO rollouts the exploration matrices change exactly every sde_sample_freq steps."""
    model = _model(n_envs=2, sde_sample_freq=4)
    seen = []
    original = model.policy.forward

    def recording_forward(*args, **kwargs):
        seen.append(model.policy.action_dist.exploration_matrices.clone())
        return original(*args, **kwargs)

    model.policy.forward = recording_forward
    _, callback = model._setup_learn(40, callback=None)
    assert model.collect_rollouts(model.env, callback, model.rollout_buffer, n_rollout_steps=12)
    assert len(seen) == 12 and seen[0].shape == (2, model.policy.actor_neuron_count, 2)
    for t in range(1, 12):
        same = torch.equal(seen[t], seen[t - 1])
        assert same == (t % 4 != 0), t


def test_minibatch_log_prob_equals_the_rollout_log_prob():
    model = _model(n_envs=3)
    _, callback = model._setup_learn(120, callback=None)
    assert model.collect_rollouts(model.env, callback, model.rollout_buffer, n_rollout_steps=model.n_steps)
    model.policy.reset_noise(32)  # the log-likelihood must not depend on the exploration matrices
    seen_starts = 0
    with torch.no_grad():
        for batch in model.rollout_buffer.get(32):
            mask = batch.mask > 0
            values, log_prob, entropy = model.policy.evaluate_actions(
                batch.observations, batch.actions, batch.lstm_states, batch.episode_starts
            )
            torch.testing.assert_close(log_prob[mask], batch.old_log_prob[mask], rtol=1e-4, atol=1e-5)
            torch.testing.assert_close(values.flatten()[mask], batch.old_values[mask], rtol=1e-4, atol=1e-5)
            assert torch.isfinite(entropy).all()
            seen_starts += int(batch.episode_starts.sum())
    assert seen_starts > 5


@pytest.mark.parametrize(
    "sde_kwargs", [dict(), dict(full_std=False, use_expln=True, squash_output=True, log_std_init=-3.29)],
    ids=["defaults", "sde-options"],
)
def test_save_load_round_trip(tmp_path, sde_kwargs):
    model = _model(policy_kwargs=sde_kwargs)
    model.learn(40)
    model.save(tmp_path / "model.zip")
    loaded = RecurrentPPO.load(tmp_path / "model.zip", device="cpu")
    policy, other = model.policy, loaded.policy
    assert other.use_sde and other.dist_kwargs == policy.dist_kwargs and other.squash_output == policy.squash_output
    params = other._get_constructor_parameters()
    assert (params["use_sde"], params["full_std"], params["use_expln"], params["squash_output"]) == (
        True, sde_kwargs.get("full_std", True), sde_kwargs.get("use_expln", False), sde_kwargs.get("squash_output", False)
    )
    torch.testing.assert_close(other.log_std, policy.log_std, rtol=0, atol=0)
    assert other.log_std.shape == (policy.actor_neuron_count, 1 if sde_kwargs else 2)
    obs = np.random.default_rng(0).uniform(-1, 1, (8, 2, 3)).astype(np.float32)
    state_a = state_b = None
    for t in range(8):
        a, state_a = model.predict(obs[t], state=state_a, episode_start=np.full(2, t == 0), deterministic=True)
        b, state_b = loaded.predict(obs[t], state=state_b, episode_start=np.full(2, t == 0), deterministic=True)
        np.testing.assert_array_equal(a, b)
        np.testing.assert_array_equal(state_a[0], state_b[0])
    # a policy rebuilt from its own constructor parameters has the same distribution kind
    rebuilt = NCPActorCriticPolicy(**params)
    assert isinstance(rebuilt.action_dist, StateDependentNoiseDistribution)
    assert rebuilt.log_std.shape == policy.log_std.shape


def test_log_std_learns_at_the_actor_rate():
    policy = make_policy(OBS, BOX2, units=10, use_sde=True, actor_lr_scale=10.0, critic_lr_scale=0.5)
    (group,) = [g for g in policy.optimizer.param_groups if any(p is policy.log_std for p in g["params"])]
    assert group["lr_scale"] == 10.0
    assert sum(len(g["params"]) for g in policy.optimizer.param_groups) == len(list(policy.parameters()))
    before = policy.log_std.detach().clone()
    for p in policy.parameters():
        p.grad = torch.ones_like(p)
    policy.optimizer.step()  # Adam's first step moves every parameter by its learning rate
    torch.testing.assert_close(before - policy.log_std.detach(), torch.full_like(before, 1e-2), rtol=1e-3, atol=0)


def test_invalid_sde_arguments_are_clear_errors():
    for space, name in ((spaces.Discrete(2), r"Discrete\(2\)"), (spaces.MultiDiscrete([2, 3]), r"MultiDiscrete")):
        with pytest.raises(ValueError, match=rf"gSDE.*continuous actions.*Box action space, got {name}.*use_sde=False"):
            make_policy(OBS, space, use_sde=True)
    with pytest.raises(ValueError, match=r"squash_output=True is only available when using gSDE \(use_sde=True\)"):
        make_policy(OBS, BOX2, squash_output=True)
    with pytest.raises(ValueError, match=r"reset_noise\(\) .* needs use_sde=True"):
        make_policy(OBS, BOX2).reset_noise(2)
