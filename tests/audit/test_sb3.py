"""RecurrentPPO with NCPActorCriticPolicy: recorded states are the policy's own (needs our layers)."""
from __future__ import annotations

import numpy as np
import pytest
import torch

layers = pytest.importorskip("ncp_policies.layers")
if not hasattr(layers, "LTC"):
    pytest.skip("ncp_policies.layers.LTC not available yet", allow_module_level=True)
sb3 = pytest.importorskip("ncp_policies.sb3")
if not hasattr(sb3, "NCPActorCriticPolicy"):
    pytest.skip("ncp_policies.sb3.NCPActorCriticPolicy not available yet", allow_module_level=True)

from sb3_contrib import RecurrentPPO  # noqa: E402

from ncp_policies.audit import RecurrentPPOAdapter, ablate, attribute, record  # noqa: E402

from .conftest import ENV_ID, STEPS  # noqa: E402


@pytest.fixture(scope="module")
def model():
    torch.manual_seed(0)
    return RecurrentPPO(sb3.NCPActorCriticPolicy, ENV_ID, n_steps=16, batch_size=16, seed=0, device="cpu")


def test_recorded_states_are_the_policys(model) -> None:
    rec = record(model, ENV_ID, episodes=2, seed=0, max_steps=STEPS)
    n = model.policy.actor_neuron_count
    assert rec.activity.shape == (2 * STEPS, n)
    assert rec.roles.tolist() == list(model.policy.neuron_roles)
    assert rec.neuron_ids.tolist() == list(model.policy.actor_network.neuron_ids)
    adapter = RecurrentPPOAdapter(model)
    for sl in rec.episode_slices():
        with torch.no_grad():
            out = adapter.forward_sequence(torch.as_tensor(rec.observations[sl])[None])
            actions = adapter.outputs_to_actions(out.outputs)[0].numpy()
        np.testing.assert_allclose(rec.activity[sl], out.states[0, :, :n].numpy(), atol=1e-6, rtol=0)
        np.testing.assert_allclose(rec.actions[sl], actions, atol=1e-5, rtol=0)


def test_analysis_runs_on_the_model(model) -> None:
    rec = record(model, ENV_ID, episodes=1, seed=0, max_steps=STEPS)
    attr = attribute(model, rec, n_alphas=8)
    assert attr.table.shape == (len(rec.neurons_of("motor")), 3)
    result = ablate(model, ENV_ID, rec, episodes=1, max_steps=STEPS)
    assert result.action_change.shape == (model.policy.actor_neuron_count,)
    motor_id = int(rec.ids_of("motor")[0])
    assert result.action_change[result.neuron_ids.tolist().index(motor_id)] > 0


def test_gsde_policy_actions_are_the_deterministic_ones() -> None:
    """A gSDE model: the audit's actions equal model.predict(deterministic=True), noise never enters."""
    model = RecurrentPPO(sb3.NCPActorCriticPolicy, "Pendulum-v1", n_steps=16, batch_size=16, seed=0, device="cpu",
                         use_sde=True)
    model.policy.reset_noise(1)
    rec = record(model, "Pendulum-v1", episodes=1, seed=0, max_steps=20)
    env_obs = rec.observations[rec.episode_slices()[0]]
    state, start, expected = None, np.ones(1, dtype=bool), []
    for obs in env_obs:
        action, state = model.predict(obs[None], state=state, episode_start=start, deterministic=True)
        start = np.zeros(1, dtype=bool)
        expected.append(action[0])
    np.testing.assert_allclose(rec.actions, np.asarray(expected), atol=1e-5, rtol=0)
    with torch.no_grad():
        out = RecurrentPPOAdapter(model).forward_sequence(torch.as_tensor(env_obs)[None])
        actions = RecurrentPPOAdapter(model).outputs_to_actions(out.outputs)[0].numpy()
    np.testing.assert_allclose(actions, np.asarray(expected), atol=1e-5, rtol=0)
