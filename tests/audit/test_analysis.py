"""Attribution and ablation: one value per motor x feature / neuron, right values, weight-sensitive."""
from __future__ import annotations

import gymnasium as gym
import numpy as np
import pytest
import torch

from ncp_policies.audit import NetworkAdapter, ablate, attribute, record

from .conftest import ENV_ID, STEPS, make_layer


def _perturbed(layer):
    with torch.no_grad():
        for p in layer.parameters():
            p.mul_(1.5)
    return layer


@pytest.mark.parametrize("baseline", ["zeros", "mean"])
def test_attribution_table_is_complete(baseline: str, tmp_path) -> None:
    layer = make_layer("cfc")
    rec = record(layer, ENV_ID, episodes=2, seed=0, max_steps=STEPS)
    attr = attribute(layer, rec, baseline=baseline, n_alphas=48)
    assert attr.table.shape == attr.abs_table.shape == (1, 3)
    assert attr.motor_ids.tolist() == rec.ids_of("motor").tolist() == [0]
    # integrated gradients: each row adds up to f(X) - f(baseline)
    np.testing.assert_allclose(attr.table.sum(1), attr.delta, rtol=2e-2, atol=1e-4)
    assert np.abs(attr.delta).max() > 1e-3
    assert (attr.abs_table >= np.abs(attr.table) - 1e-7).all()
    rows = attr.to_csv(tmp_path / "a.csv").read_text().splitlines()
    assert rows[0] == "motor_id,feature,attribution,abs_attribution" and len(rows) == 4
    attr.plot(tmp_path / "a.png")
    assert (tmp_path / "a.png").stat().st_size > 1000


def test_attribution_of_an_ignored_feature_is_zero() -> None:
    env = gym.make(ENV_ID)
    mask = torch.tensor([1.0, 1.0, 0.0])
    adapter = NetworkAdapter(make_layer(), env.action_space, obs_to_input=lambda o: o.float() * mask)
    rec = record(adapter, env, episodes=1, seed=0, max_steps=STEPS)
    attr = attribute(adapter, rec, n_alphas=8)
    assert attr.abs_table[0, 2] == 0.0
    assert attr.abs_table[0, :2].min() > 0.0


def test_attribution_changes_with_weights() -> None:
    rec = record(make_layer(), ENV_ID, episodes=1, seed=0, max_steps=STEPS)
    before = attribute(make_layer(), rec, n_alphas=8).table
    after = attribute(_perturbed(make_layer()), rec, n_alphas=8).table
    assert not np.allclose(before, after, rtol=1e-3)


def test_ablation_one_value_per_neuron_and_motor_matters(tmp_path) -> None:
    layer = make_layer()
    rec = record(layer, ENV_ID, episodes=2, seed=0, max_steps=STEPS)
    result = ablate(layer, ENV_ID, rec, episodes=2, seed=0, max_steps=STEPS)
    assert result.neuron_ids.tolist() == list(range(7))
    assert result.roles.tolist() == rec.roles.tolist()
    assert result.returns.shape == result.action_change.shape == result.return_drop.shape == (7,)
    np.testing.assert_allclose(result.baseline_return, np.mean(rec.returns), rtol=1e-5)
    np.testing.assert_allclose(result.return_drop, result.baseline_return - result.returns)
    motor = int(rec.neurons_of("motor")[0])
    assert result.action_change[motor] > 1e-3  # silencing the motor neuron visibly moves the actions
    assert result.action_change.max() > 0 and (result.action_change >= 0).all()
    rows = result.to_csv(tmp_path / "ab.csv").read_text().splitlines()
    assert len(rows) == 8 and rows[0].startswith("neuron_id,role")
    result.plot(tmp_path / "ab.png")
    assert (tmp_path / "ab.png").stat().st_size > 1000


def test_ablation_mean_rest_and_weight_sensitivity() -> None:
    rec = record(make_layer(), ENV_ID, episodes=1, seed=0, max_steps=STEPS)
    a = ablate(make_layer(), ENV_ID, rec, episodes=1, neurons=[0, 3], rest="mean", max_steps=STEPS)
    np.testing.assert_allclose(a.rest_values, rec.activity.mean(0)[[0, 3]])
    b = ablate(_perturbed(make_layer()), ENV_ID, rec, episodes=1, neurons=[0, 3], rest="mean", max_steps=STEPS)
    assert not np.allclose(a.action_change, b.action_change)
    with pytest.raises(ValueError, match="neurons"):
        ablate(make_layer(), ENV_ID, rec, neurons=[7])
    with pytest.raises(ValueError, match="rest"):
        ablate(make_layer(), ENV_ID, rec, rest="one")
