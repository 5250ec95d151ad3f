"""Recording: the recorded values are the ones the network computed, and they round-trip."""
from __future__ import annotations

import csv
import json

import gymnasium as gym
import numpy as np
import pytest
import torch

from ncp_policies.audit import NetworkAdapter, Recording, record
from ncp_policies.audit._network import get_wiring

from .conftest import ENV_ID, STEPS, make_layer


@pytest.mark.parametrize("kind,mixed", [("ltc", False), ("cfc", True)])
def test_activity_matches_manual_forward_pass(kind: str, mixed: bool) -> None:
    layer = make_layer(kind, mixed)
    rec = record(layer, ENV_ID, episodes=2, seed=3, max_steps=STEPS)
    assert rec.activity.shape == (2 * STEPS, 7)
    assert (rec.cell_states is not None) == mixed
    low, high = gym.make(ENV_ID).action_space.low, gym.make(ENV_ID).action_space.high
    for sl in rec.episode_slices():
        obs = torch.as_tensor(rec.observations[sl])[None]  # (1, T, 3)
        with torch.no_grad():
            if hasattr(layer, "run"):
                out = layer.run(obs)
                outputs, states, cells = out.outputs, out.states, out.cell_states
            else:  # ncps reference: step it by hand, keeping every state
                hx, outs, hs, cs = None, [], [], []
                for t in range(obs.shape[1]):
                    y, hx = layer(obs[:, t : t + 1], hx)
                    outs.append(y[:, 0])
                    hs.append(hx[0] if mixed else hx)
                    cs.append(hx[1] if mixed else hx)
                outputs, states, cells = torch.stack(outs, 1), torch.stack(hs, 1), torch.stack(cs, 1)
        np.testing.assert_allclose(rec.activity[sl], states[0].numpy(), atol=1e-6, rtol=0)
        if mixed:
            np.testing.assert_allclose(rec.cell_states[sl], cells[0].numpy(), atol=1e-6, rtol=0)
        np.testing.assert_allclose(rec.actions[sl], np.clip(outputs[0].numpy(), low, high), atol=1e-6, rtol=0)
    assert np.abs(rec.activity).max() > 1e-3  # the network did something


def test_episode_bookkeeping_and_returns() -> None:
    env = gym.make(ENV_ID)
    rec = record(make_layer(), env, episodes=3, seed=5, max_steps=STEPS)
    np.testing.assert_array_equal(rec.episode, np.repeat(np.arange(3), STEPS))
    np.testing.assert_array_equal(rec.step, np.tile(np.arange(STEPS), 3))
    np.testing.assert_array_equal(np.flatnonzero(rec.dones), [STEPS - 1, 2 * STEPS - 1, 3 * STEPS - 1])
    np.testing.assert_allclose(rec.returns, rec.metadata["returns"], rtol=1e-5)
    first_obs, _ = env.reset(seed=5 + 1)  # episode k resets with seed + k
    np.testing.assert_allclose(rec.observations[STEPS], first_obs, rtol=1e-6)


def test_roles_and_ids_match_wiring() -> None:
    layer = make_layer()
    rec = record(layer, ENV_ID, episodes=1, seed=0, max_steps=5)
    wiring = get_wiring(layer)
    assert rec.roles.tolist() == [wiring.get_type_of_neuron(i) for i in range(wiring.units)]
    assert set(rec.roles.tolist()) == {"motor", "command", "inter"}
    np.testing.assert_array_equal(rec.neuron_ids, np.arange(7))
    np.testing.assert_array_equal(np.asarray(rec.wiring["adjacency_matrix"]), wiring.adjacency_matrix)


def test_seeded_rollouts_reproduce() -> None:
    a = record(make_layer(), ENV_ID, episodes=1, seed=1, max_steps=STEPS)
    b = record(make_layer(), ENV_ID, episodes=1, seed=1, max_steps=STEPS)
    c = record(make_layer(), ENV_ID, episodes=1, seed=2, max_steps=STEPS)
    np.testing.assert_array_equal(a.activity, b.activity)
    assert not np.allclose(a.activity, c.activity)


def test_save_round_trip_without_pickle(tmp_path) -> None:
    rec = record(make_layer("cfc", mixed=True), ENV_ID, episodes=2, seed=0, max_steps=6)
    paths = rec.save(tmp_path)
    with np.load(paths["npz"], allow_pickle=False) as data:
        assert {"observations", "actions", "rewards", "episode", "step", "activity", "roles", "neuron_ids"} <= set(data.files)
        assert data["roles"].dtype.kind == "U"
        np.testing.assert_array_equal(data["activity"], rec.activity)
        np.testing.assert_array_equal(data["cell_states"], rec.cell_states)
    back = Recording.load(tmp_path)
    np.testing.assert_array_equal(back.roles, rec.roles)
    np.testing.assert_array_equal(back.neuron_ids, rec.neuron_ids)
    np.testing.assert_array_equal(back.observations, rec.observations)
    with paths["csv"].open() as f:
        rows = list(csv.DictReader(f))
    assert len(rows) == rec.n_steps * rec.n_neurons
    row = rows[3 * rec.n_neurons + 4]  # step 3, state column 4 (wired CfC: neuron_ids[4], not 4)
    assert (int(row["step"]), int(row["neuron_id"]), row["role"]) == (3, int(rec.neuron_ids[4]), rec.roles[4])
    assert float(row["activity"]) == pytest.approx(float(rec.activity[3, 4]), abs=1e-7)
    assert float(row["cell_state"]) == pytest.approx(float(rec.cell_states[3, 4]), abs=1e-7)
    info = json.loads(paths["json"].read_text())
    assert info["metadata"]["env_id"] == ENV_ID and info["metadata"]["seed"] == 0
    assert info["metadata"]["returns"] == pytest.approx(rec.returns, rel=1e-5)
    assert np.asarray(info["wiring"]["adjacency_matrix"]).shape == (7, 7)


def test_custom_input_function_is_used() -> None:
    env = gym.make(ENV_ID)
    layer = make_layer()
    adapter = NetworkAdapter(layer, env.action_space, obs_to_input=lambda o: o.float() * 0.0)
    rec = record(adapter, env, episodes=1, seed=0, max_steps=8)
    plain = record(layer, env, episodes=1, seed=0, max_steps=8)
    assert not np.allclose(rec.activity, plain.activity)
    # zero input: the trajectory of the network does not depend on the observations at all
    rec2 = record(adapter, env, episodes=1, seed=9, max_steps=8)
    np.testing.assert_allclose(rec.activity, rec2.activity, atol=1e-7)


def test_bad_arguments_are_named() -> None:
    with pytest.raises(ValueError, match="episodes"):
        record(make_layer(), ENV_ID, episodes=0)
    with pytest.raises(TypeError, match="agent"):
        record(object(), ENV_ID)
