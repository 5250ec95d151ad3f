"""PPO with NCPExtractor on frame-stacked CartPole: recorded states are the extractor layer's own."""
from __future__ import annotations

import gymnasium as gym
import numpy as np
import pytest
import torch
from stable_baselines3 import PPO

from ncp_policies.audit import NCPExtractorAdapter, ablate, attribute, make_adapter, record
from ncp_policies.sb3 import NCPExtractor

N_STACK, STEPS = 4, 20


def _env() -> gym.Env:
    return gym.wrappers.FrameStackObservation(gym.make("CartPole-v1"), N_STACK)  # (4, 4) observations


@pytest.fixture(scope="module")
def model() -> PPO:
    torch.manual_seed(0)
    kwargs = dict(features_extractor_class=NCPExtractor, features_extractor_kwargs=dict(units=8, motors=2))
    return PPO("MlpPolicy", _env(), n_steps=16, batch_size=16, seed=0, device="cpu", policy_kwargs=kwargs)


def test_make_adapter_picks_it(model) -> None:
    adapter = make_adapter(model)
    assert isinstance(adapter, NCPExtractorAdapter)
    assert adapter.network is model.policy.features_extractor.layer
    assert adapter.n_neurons == 8


def test_recorded_activity_is_the_extractor_layers(model) -> None:
    rec = record(model, _env(), episodes=2, seed=0, max_steps=STEPS)
    layer = model.policy.features_extractor.layer
    assert rec.activity.shape == (rec.n_steps, 8)
    windows = torch.as_tensor(rec.observations).reshape(-1, N_STACK, 4)
    with torch.no_grad():
        manual = layer.run(windows).states[:, -1].numpy()  # each step: a fresh run over its own window
        predicted = model.predict(rec.observations.reshape(-1, N_STACK, 4), deterministic=True)[0]
    np.testing.assert_allclose(rec.activity, manual, atol=1e-6, rtol=0)
    np.testing.assert_array_equal(rec.actions[:, 0], predicted)
    assert np.abs(rec.activity).max() > 1e-3  # the neurons do move
    # open-loop path (parts of the policy) agrees with predict's actions and the extractor's features
    adapter = make_adapter(model)
    obs = torch.as_tensor(rec.observations).reshape(1, rec.n_steps, N_STACK, 4)
    with torch.no_grad():
        out = adapter.forward_sequence(obs)
        actions = adapter.outputs_to_actions(out.outputs)[0, :, 0].numpy()
        features = model.policy.features_extractor(obs[0]).numpy()
    np.testing.assert_allclose(out.outputs[0].numpy(), features, atol=1e-6, rtol=0)
    np.testing.assert_array_equal(actions, rec.actions[:, 0])


def test_roles_follow_the_wiring(model) -> None:
    rec = record(model, _env(), episodes=1, seed=0, max_steps=5)
    layer = model.policy.features_extractor.layer
    ids = list(layer.state_neuron_ids)
    assert rec.neuron_ids.tolist() == ids
    assert rec.roles.tolist() == [layer.wiring.roles[i] for i in ids]
    assert sorted(rec.ids_of("motor").tolist()) == [0, 1]  # the wiring's 2 motor neurons (ids 0..motors-1)
    assert set(rec.roles.tolist()) == {"motor", "command", "inter"}


def test_clamp_reaches_the_layer_and_ablation_runs(model) -> None:
    adapter = make_adapter(model)
    obs, _ = _env().reset(seed=0)
    column = int(np.flatnonzero(np.asarray(adapter.roles) == "command")[0])
    clamp = (torch.tensor([column]), torch.tensor([0.7]))
    step = adapter.act(obs, None, True, clamp)
    with torch.no_grad():
        expected = adapter.network.run(torch.as_tensor(obs)[None].float(), clamp=clamp).states[0, -1].numpy()
    assert step.neurons[column] == pytest.approx(0.7)
    np.testing.assert_allclose(step.neurons, expected, atol=1e-6, rtol=0)
    rec = record(model, _env(), episodes=1, seed=0, max_steps=STEPS)
    result = ablate(model, _env(), rec, episodes=1, max_steps=STEPS)
    assert result.returns.shape == result.action_change.shape == (8,)
    assert sorted(result.neuron_ids.tolist()) == list(range(8))
    assert result.action_change.max() > 0  # silencing some neuron flips some action
    attr = attribute(model, rec, n_alphas=4)
    assert attr.table.shape == (2, N_STACK * 4)
    np.testing.assert_allclose(attr.table.sum(1), attr.delta, atol=0.05 * np.abs(attr.delta).max() + 1e-4)
