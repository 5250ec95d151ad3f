"""The fused training path equals sb3-contrib's step-by-step loop, and rollouts equal training passes."""
from __future__ import annotations

import numpy as np
import pytest
import torch
from gymnasium import spaces
from sb3_contrib import RecurrentPPO
from sb3_contrib.common.recurrent.policies import RecurrentActorCriticPolicy
from stable_baselines3.common.vec_env import DummyVecEnv
from torch import nn

from ncp_policies.sb3 import NCPActorCriticPolicy, NCPNetwork

from .helpers import ToyEnv, make_policy

OBS = spaces.Box(-1.0, 1.0, (3,), np.float32)


class LayerAsLSTM(nn.Module):
    """The same NCP layer behind nn.LSTM's calling convention, so sb3-contrib's own code can drive it."""

    def __init__(self, network: NCPNetwork, input_size: int) -> None:
        super().__init__()
        self.network = network
        self.input_size = input_size

    def forward(self, x: torch.Tensor, state: tuple[torch.Tensor, torch.Tensor]):
        n = self.network.neuron_count
        h, c = state[0][0, :, :n], state[1][0, :, :n]
        out = self.network.layer.run(x.transpose(0, 1), (h, c) if self.network.use_mixed else h)
        return out.outputs.transpose(0, 1), self.network.pack_state(out.hx, state[1])


def _sequences(policy: NCPActorCriticPolicy, n_seq: int, steps: int, seed: int):
    """Features, a non-zero initial state and episode starts at first and at middle steps."""
    gen = torch.Generator().manual_seed(seed)
    net = policy.actor_network
    features = torch.randn(n_seq * steps, 3, generator=gen)
    h = torch.zeros(1, n_seq, net.hidden_size)
    c = torch.zeros(1, n_seq, net.hidden_size)
    h[..., : net.neuron_count] = 0.5 * torch.randn(1, n_seq, net.neuron_count, generator=gen)
    if net.use_mixed:
        c[..., : net.neuron_count] = 0.5 * torch.randn(1, n_seq, net.neuron_count, generator=gen)
    starts = torch.zeros(n_seq, steps)
    starts[1, 0] = 1.0  # a sequence that starts an episode: its stored state must be dropped
    starts[0, 3] = 1.0  # episodes starting inside sequences
    starts[2, 2] = 1.0
    starts[2, 5] = 1.0
    return features, (h, c), starts.flatten()


@pytest.mark.parametrize(
    "kwargs",
    [dict(cell="cfc"), dict(cell="ltc"), dict(cell="cfc", mixed_memory=True), dict(cell="ltc", mixed_memory=True)],
    ids=["cfc", "ltc", "cfc-mixed", "ltc-mixed"],
)
def test_fused_sequences_equal_sb3_contrib_step_loop(kwargs):
    policy = make_policy(OBS, spaces.Discrete(2), units=10, critic_units=14, **kwargs)
    features, state, starts = _sequences(policy, n_seq=3, steps=7, seed=1)
    net = policy.actor_network

    motor, (h, c) = net(features, state, starts)
    ref_motor, (ref_h, ref_c) = RecurrentActorCriticPolicy._process_sequence(
        features, state, starts, LayerAsLSTM(net, input_size=3)
    )
    torch.testing.assert_close(motor, ref_motor, rtol=1e-5, atol=1e-6)
    torch.testing.assert_close(h, ref_h, rtol=1e-5, atol=1e-6)
    torch.testing.assert_close(c, ref_c, rtol=1e-5, atol=1e-6)
    assert h[..., net.neuron_count:].abs().max() == 0  # padding beyond the actor's neurons stays zero


def test_fused_sequences_gradients_equal_step_loop():
    policy = make_policy(OBS, spaces.Discrete(2), units=10)
    features, state, starts = _sequences(policy, n_seq=3, steps=6, seed=2)
    net = policy.actor_network
    params = [p for p in net.parameters() if p.requires_grad]
    weights = torch.randn(18, 2, generator=torch.Generator().manual_seed(3))

    (net(features, state, starts)[0] * weights).sum().backward()
    fused = [p.grad.clone() for p in params]
    net.zero_grad()
    ref, _ = RecurrentActorCriticPolicy._process_sequence(features, state, starts, LayerAsLSTM(net, input_size=3))
    (ref * weights).sum().backward()
    for got, expected in zip(fused, (p.grad for p in params)):
        torch.testing.assert_close(got, expected, rtol=1e-4, atol=1e-6)


def _dict_space() -> spaces.Dict:
    return spaces.Dict(
        {"observation": spaces.Box(-1.0, 1.0, (2,), np.float32), "elapsed": spaces.Box(0.5, 4.0, (1,), np.float32)}
    )


@pytest.mark.parametrize(
    "obs_space, kwargs",
    [
        (OBS, dict(cell="cfc")),
        (OBS, dict(cell="ltc", ode_unfolds=2)),
        (OBS, dict(cell="cfc", mixed_memory=True, critic="mlp")),
        (_dict_space(), dict(cell="cfc")),
    ],
    ids=["cfc", "ltc", "cfc-mixed-mlpcritic", "cfc-elapsed"],
)
def test_minibatches_reproduce_the_rollout(obs_space, kwargs):
    """Log-probabilities and values recomputed on RecurrentPPO's padded minibatches equal those of the rollout.

    Toy episodes last 5-12 steps, so minibatches hold many sequences that start an episode.
    """
    env = DummyVecEnv([lambda i=i: ToyEnv(obs_space, spaces.Discrete(3), seed=i) for i in range(3)])
    model = RecurrentPPO(
        NCPActorCriticPolicy, env, n_steps=40, batch_size=32, seed=0, policy_kwargs=dict(units=10, **kwargs)
    )
    _, callback = model._setup_learn(120, callback=None)
    assert model.collect_rollouts(model.env, callback, model.rollout_buffer, n_rollout_steps=model.n_steps)
    seen_starts = 0
    with torch.no_grad():
        for batch in model.rollout_buffer.get(32):
            mask = batch.mask > 0
            values, log_prob, _ = model.policy.evaluate_actions(
                batch.observations, batch.actions.long().flatten(), batch.lstm_states, batch.episode_starts
            )
            torch.testing.assert_close(log_prob[mask], batch.old_log_prob[mask], rtol=1e-4, atol=1e-5)
            torch.testing.assert_close(values.flatten()[mask], batch.old_values[mask], rtol=1e-4, atol=1e-5)
            seen_starts += int(batch.episode_starts.sum())
    assert seen_starts > 5
