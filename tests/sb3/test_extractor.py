"""NCPExtractor: stacked-observation layouts, features, errors, and use by non-recurrent algorithms."""
from __future__ import annotations

import numpy as np
import pytest
import torch
from gymnasium import spaces
from stable_baselines3 import DQN, TD3
from stable_baselines3.common.vec_env import DummyVecEnv, VecFrameStack

from ncp_policies.sb3 import NCPExtractor
from ncp_policies.wirings import FullyConnected

from .helpers import ToyEnv


def test_both_stacking_layouts_give_the_last_steps_motor_outputs():
    torch.manual_seed(0)
    flat = NCPExtractor(spaces.Box(-1, 1, (4 * 3,), np.float32), n_stack=4, units=12, motors=5, output="motor")
    torch.manual_seed(0)
    stacked = NCPExtractor(spaces.Box(-1, 1, (4, 3), np.float32), units=12, motors=5, output="motor")
    assert flat.features_dim == stacked.features_dim == 5 and stacked.n_stack == 4

    window = torch.randn(6, 4, 3)  # (B, n_stack, F), oldest first
    with torch.no_grad():
        expected = flat.layer.run(window).outputs[:, -1]
        torch.testing.assert_close(flat(window.reshape(6, 12)), expected)
        torch.testing.assert_close(stacked(window), expected)


def test_all_neurons_output_is_the_default():
    extractor = NCPExtractor(spaces.Box(-1, 1, (2 * 3,), np.float32), n_stack=2, units=10, motors=3)
    assert extractor.output == "all" and extractor.features_dim == 10
    window = torch.randn(5, 2, 3)
    with torch.no_grad():
        torch.testing.assert_close(extractor(window.reshape(5, 6)), extractor.layer.run(window).states[:, -1])


def test_explicit_wiring_sets_features_dim():
    extractor = NCPExtractor(spaces.Box(-1, 1, (3,), np.float32), wiring=FullyConnected(7, 4), output="motor")
    assert extractor.features_dim == 4 and extractor.n_stack == 1
    assert NCPExtractor(spaces.Box(-1, 1, (3,), np.float32), wiring=FullyConnected(7, 4)).features_dim == 7


def test_ltc_init_ranges_and_their_errors():
    extractor = NCPExtractor(spaces.Box(-1, 1, (3,), np.float32), cell="ltc", units=8, init_ranges={"w": (0.5, 0.5)})
    w = dict(extractor.layer.rnn_cell.named_parameters())["w"]
    torch.testing.assert_close(w, torch.full_like(w, 0.5))
    with pytest.raises(ValueError, match="a CfC cell has none. Use cell='ltc'"):
        NCPExtractor(spaces.Box(-1, 1, (3,), np.float32), cell="cfc", init_ranges={"w": (0.5, 0.5)})


def test_shape_errors_name_n_stack():
    with pytest.raises(ValueError, match=r"cannot be split into n_stack=3 steps"):
        NCPExtractor(spaces.Box(-1, 1, (10,), np.float32), n_stack=3)
    with pytest.raises(ValueError, match=r"holds 4 stacked steps .* but n_stack=2; pass n_stack=4"):
        NCPExtractor(spaces.Box(-1, 1, (4, 3), np.float32), n_stack=2)
    with pytest.raises(ValueError, match=r"needs a Box observation space of shape \(n_stack \* F,\)"):
        NCPExtractor(spaces.Box(0, 255, (3, 36, 36), np.uint8))
    with pytest.raises(ValueError, match=r"output must be one of \['all', 'motor'\]"):
        NCPExtractor(spaces.Box(-1, 1, (3,), np.float32), output="last")


@pytest.mark.parametrize("algo", [DQN, TD3])
def test_off_policy_algorithms_train_with_the_extractor(algo):
    action_space = spaces.Discrete(2) if algo is DQN else spaces.Box(-1, 1, (2,), np.float32)
    env = VecFrameStack(DummyVecEnv([lambda: ToyEnv(spaces.Box(-1, 1, (3,), np.float32), action_space)]), n_stack=3)
    model = algo("MlpPolicy", env, learning_starts=16, buffer_size=200, batch_size=8, seed=0, policy_kwargs=dict(
        features_extractor_class=NCPExtractor, features_extractor_kwargs=dict(n_stack=3, units=8)))
    extractor = model.policy.actor.features_extractor if algo is TD3 else model.policy.q_net.features_extractor
    before = [p.detach().clone() for p in extractor.layer.parameters()]
    model.learn(48)
    assert isinstance(extractor, NCPExtractor)
    assert any(not torch.equal(a, b) for a, b in zip(before, extractor.layer.parameters()))
