"""Motor neurons are the action outputs: exact mapping to distribution parameters, and clear errors."""
from __future__ import annotations

import numpy as np
import pytest
import torch
from gymnasium import spaces

from ncp_policies.sb3 import motor_count
from ncp_policies.wirings import AutoNCP, FullyConnected

from .helpers import make_policy

OBS = spaces.Box(-1.0, 1.0, (3,), np.float32)


def _motor_outputs(policy, obs: torch.Tensor) -> torch.Tensor:
    """The actor's motor neurons after one step from the zero state, straight from the layer."""
    return policy.actor_network.layer.run(obs.unsqueeze(1)).outputs[:, 0]


def _distribution(policy, obs: torch.Tensor):
    n = obs.shape[0]
    state = (torch.zeros(1, n, policy.actor_network.hidden_size),) * 2
    with torch.no_grad():
        dist, _ = policy.get_distribution(obs, state, torch.zeros(n))
    return dist


def _set_readout(policy, scale, bias) -> None:
    with torch.no_grad():
        policy.motor_readout.scale.copy_(torch.tensor(scale))
        policy.motor_readout.bias.copy_(torch.tensor(bias))


@pytest.mark.parametrize(
    "space, expected",
    [(spaces.Discrete(3), 3), (spaces.MultiDiscrete([3, 2, 4]), 9), (spaces.Box(-1, 1, (2, 3)), 6)],
)
def test_motor_count(space, expected):
    assert motor_count(space) == expected


def test_discrete_logits_are_scaled_motor_neurons():
    policy = make_policy(OBS, spaces.Discrete(3), units=12)
    _set_readout(policy, [2.0, -0.5, 1.5], [0.1, 0.3, -0.2])
    obs = torch.randn(5, 3)
    logits = _motor_outputs(policy, obs).detach() * torch.tensor([2.0, -0.5, 1.5]) + torch.tensor([0.1, 0.3, -0.2])
    dist = _distribution(policy, obs)
    torch.testing.assert_close(dist.distribution.probs, torch.softmax(logits, -1))
    assert policy.actor_network.motor_count == 3


def test_multidiscrete_logits_split_in_nvec_order():
    policy = make_policy(OBS, spaces.MultiDiscrete([3, 2]), units=12)
    scale, bias = [1.0, 2.0, 3.0, -1.0, 0.5], [0.0, 0.1, 0.2, 0.3, 0.4]
    _set_readout(policy, scale, bias)
    obs = torch.randn(4, 3)
    logits = _motor_outputs(policy, obs).detach() * torch.tensor(scale) + torch.tensor(bias)
    dist = _distribution(policy, obs)
    torch.testing.assert_close(dist.distribution[0].probs, torch.softmax(logits[:, :3], -1))
    torch.testing.assert_close(dist.distribution[1].probs, torch.softmax(logits[:, 3:], -1))


@pytest.mark.parametrize("cell", ["cfc", "ltc"])
def test_box_means_are_motor_neurons(cell):
    policy = make_policy(OBS, spaces.Box(-2.0, 2.0, (2,), np.float32), cell=cell, units=10, log_std_init=-0.7)
    obs = torch.randn(6, 3)
    motor = _motor_outputs(policy, obs).detach()
    if cell == "cfc":  # CfC outputs are bounded: a per-motor scale and bias, nothing else
        _set_readout(policy, [2.0, 0.5], [0.25, -1.0])
        motor = motor * torch.tensor([2.0, 0.5]) + torch.tensor([0.25, -1.0])
    else:  # the LTC layer maps its outputs affinely itself: the means are its outputs unchanged
        assert isinstance(policy.motor_readout, torch.nn.Identity)
    dist = _distribution(policy, obs)
    torch.testing.assert_close(dist.distribution.mean, motor)
    torch.testing.assert_close(dist.distribution.stddev, torch.full((6, 2), float(np.exp(-0.7))))


def test_motor_count_mismatch_names_both_numbers():
    with pytest.raises(ValueError, match=r"wiring has 3 motor neurons but the action space Discrete\(2\) needs 2"):
        make_policy(OBS, spaces.Discrete(2), wiring=AutoNCP(12, 3))
    with pytest.raises(ValueError, match=r"wiring has 5 motor neurons but the action space Box\(2,\) needs 2"):
        make_policy(OBS, spaces.Box(-1, 1, (2,)), wiring=FullyConnected(8, 5))


@pytest.mark.parametrize(
    "space, name",
    [
        (spaces.MultiBinary(3), "MultiBinary"),
        (spaces.Dict({"a": spaces.Discrete(2)}), "Dict"),
        (spaces.Tuple((spaces.Discrete(2), spaces.Discrete(3))), "Tuple"),
    ],
)
def test_unsupported_action_space_is_a_clear_error(space, name):
    with pytest.raises(TypeError, match=rf"support Box, Discrete and MultiDiscrete action spaces, got {name}"):
        make_policy(OBS, space)
