"""NCPActorCriticPolicy with RecurrentPPO: save/load, predict states, wiring forms, observations."""
from __future__ import annotations

import json
import zipfile

import numpy as np
import pytest
import torch
from gymnasium import spaces
from sb3_contrib import RecurrentPPO
from stable_baselines3.common.torch_layers import NatureCNN
from stable_baselines3.common.vec_env import DummyVecEnv

from ncp_policies import CfC
from ncp_policies.sb3 import NCPActorCriticPolicy
from ncp_policies.wirings import NCP, AutoNCP, FullyConnected, Random

from .helpers import ToyEnv, make_policy

OBS = spaces.Box(-1.0, 1.0, (3,), np.float32)


def _model(obs_space=OBS, action_space=spaces.Discrete(2), n_envs=2, **policy_kwargs) -> RecurrentPPO:
    env = DummyVecEnv([lambda i=i: ToyEnv(obs_space, action_space, seed=i) for i in range(n_envs)])
    return RecurrentPPO(NCPActorCriticPolicy, env, n_steps=16, batch_size=16, n_epochs=2, seed=0,
                        policy_kwargs=policy_kwargs)


def _rollout_predictions(model: RecurrentPPO, obs: np.ndarray, starts: np.ndarray):
    """Deterministic actions and states over a fixed observation sequence, states carried by predict."""
    state, outputs = None, []
    for t in range(obs.shape[0]):
        action, state = model.predict(obs[t], state=state, episode_start=starts[t], deterministic=True)
        outputs.append((action.copy(), state[0].copy(), state[1].copy()))
    return outputs


@pytest.mark.parametrize(
    "wiring_kwargs",
    [
        dict(wiring=AutoNCP(12, 2, seed=5)),
        dict(wiring=FullyConnected(6, 2).to_config()),
        dict(wiring={"class": "Random", "units": 9, "sparsity_level": 0.3}, cell="ltc", ode_unfolds=2),
        dict(units=10, mixed_memory=True, critic="mlp"),
    ],
    ids=["wiring-object", "config", "spec-ltc", "mixed-mlpcritic"],
)
def test_save_load_round_trip(tmp_path, wiring_kwargs):
    model = _model(**wiring_kwargs)
    model.learn(32)
    path = tmp_path / "model.zip"
    model.save(path)
    loaded = RecurrentPPO.load(path, device="cpu")

    for (name, a), (_, b) in zip(model.policy.state_dict().items(), loaded.policy.state_dict().items()):
        assert torch.equal(a, b), name
    np.testing.assert_array_equal(
        loaded.policy.actor_network.wiring.adjacency_matrix, model.policy.actor_network.wiring.adjacency_matrix
    )
    rng = np.random.default_rng(0)
    obs = rng.uniform(-1, 1, (12, 2, 3)).astype(np.float32)
    starts = np.zeros((12, 2), dtype=bool)
    starts[0] = starts[7, 1] = True
    for got, expected in zip(_rollout_predictions(loaded, obs, starts), _rollout_predictions(model, obs, starts)):
        for g, e in zip(got, expected):
            np.testing.assert_array_equal(g, e)


def test_saved_policy_kwargs_stay_json(tmp_path):
    wiring = AutoNCP(12, 2, seed=9)
    wiring.build(3)
    model = _model(wiring=wiring.to_config(), critic_units=10)
    model.save(tmp_path / "model.zip")
    with zipfile.ZipFile(tmp_path / "model.zip") as archive:
        data = json.loads(archive.read("data"))
    kwargs = data["policy_kwargs"]
    assert ":serialized:" not in kwargs and kwargs["wiring"]["class"] == "AutoNCP"
    assert kwargs["wiring"]["adjacency_matrix"] == wiring.adjacency_matrix.tolist()
    # the policy's own constructor parameters are JSON-able data too (wirings as configs)
    params = model.policy._get_constructor_parameters()
    json.dumps(params["wiring"])
    json.dumps(params["critic_wiring"])
    assert params["critic_wiring"]["units"] == 10


def test_wiring_object_is_not_modified():
    wiring = NCP(4, 3, 2, 2, 2, 1, 2)
    policy = make_policy(OBS, spaces.Discrete(2), wiring=wiring)
    assert not wiring.is_built() and policy.actor_network.wiring.is_built()
    assert policy.actor_network.wiring is not wiring


def test_default_wiring_and_state_layout():
    policy = make_policy(OBS, spaces.Discrete(3), units=12, critic_units=18, critic_motors=2)
    actor, critic = policy.actor_network.wiring, policy.critic_network.wiring
    assert isinstance(actor, AutoNCP) and (actor.units, actor.output_dim) == (12, 3)
    assert isinstance(critic, AutoNCP) and (critic.units, critic.output_dim) == (18, 2)
    assert policy.lstm_hidden_state_shape == (1, 1, 18)  # H = max(actor, critic neurons)
    assert policy.lstm_actor.hidden_size == 18 and policy.lstm_actor.num_layers == 1
    assert policy.actor_neuron_count == 12
    assert sorted(set(policy.neuron_roles)) == ["command", "inter", "motor"]
    assert policy.neuron_roles.count("motor") == 3


@pytest.mark.parametrize("readout", ["all", "motor"])
def test_value_head_reads_the_critic_neurons(readout):
    policy = make_policy(OBS, spaces.Discrete(2), units=10, critic_units=14, critic_motors=2, critic_readout=readout)
    obs = torch.randn(4, 3)
    state = (torch.zeros(1, 4, 14),) * 2
    with torch.no_grad():
        values = policy.predict_values(obs, state, torch.zeros(4))
        run = policy.critic_network.layer.run(obs.unsqueeze(1))
        latent = run.states[:, 0] if readout == "all" else run.outputs[:, 0]
    assert policy.value_net.in_features == (14 if readout == "all" else 2)
    torch.testing.assert_close(values, policy.value_net(latent))


def test_predicted_state_is_every_actor_neuron_and_resets_on_episode_start():
    model = _model(units=12, critic_units=16, n_envs=2)
    policy = model.policy
    rng = np.random.default_rng(1)
    obs = rng.uniform(-1, 1, (5, 2, 3)).astype(np.float32)

    state = None
    for t in range(5):
        _, state = model.predict(obs[t], state=state, episode_start=np.array([t == 0, t == 0]))
    # the returned h holds the layer's full state after the last step; entries beyond the actor's are zero
    with torch.no_grad():
        run = policy.actor_network.layer.run(torch.as_tensor(obs).transpose(0, 1))
    neurons = policy.split_state(state).neurons
    np.testing.assert_allclose(neurons, run.states[:, -1].numpy(), rtol=1e-5, atol=1e-6)
    assert neurons.shape == (2, 12) and np.abs(state[0][..., 12:]).max() == 0
    assert policy.split_state(state).cell is None
    # neuron_roles follows the state layout: the entries it calls "motor" are the motor outputs (by neuron id)
    ids = policy.actor_network.neuron_ids
    motors = [i for _, i in sorted((ids[i], i) for i, role in enumerate(policy.neuron_roles) if role == "motor")]
    np.testing.assert_allclose(neurons[:, motors], run.outputs[:, -1].numpy(), rtol=1e-5, atol=1e-6)

    new_obs = obs[0]
    _, kept = model.predict(new_obs, state=state, episode_start=np.array([False, False]))
    _, reset = model.predict(new_obs, state=state, episode_start=np.array([True, False]))
    _, fresh = model.predict(new_obs, state=None, episode_start=np.array([False, False]))
    np.testing.assert_array_equal(reset[0][:, 0], fresh[0][:, 0])  # env 0 restarted from zeros
    np.testing.assert_array_equal(reset[0][:, 1], kept[0][:, 1])  # env 1 carried on
    assert not np.allclose(kept[0][:, 0], fresh[0][:, 0])


def test_clamped_neurons_hold_their_values_in_predict():
    model = _model(units=12)
    policy = model.policy
    obs = np.random.default_rng(3).uniform(-1, 1, (2, 3)).astype(np.float32)
    _, free = model.predict(obs, episode_start=np.array([True, True]))
    policy.actor_network.clamp = (torch.tensor([0, 5]), torch.tensor([0.7, -0.3]))
    _, clamped = model.predict(obs, episode_start=np.array([True, True]))
    policy.actor_network.clamp = None
    np.testing.assert_allclose(policy.split_state(clamped).neurons[:, [0, 5]], [[0.7, -0.3]] * 2)
    assert not np.allclose(free[0], clamped[0])


def test_mixed_memory_cell_state_is_carried():
    model = _model(units=10, mixed_memory=True)
    obs = np.random.default_rng(2).uniform(-1, 1, (2, 3)).astype(np.float32)
    _, state = model.predict(obs, episode_start=np.array([True, True]))
    cell = model.policy.split_state(state).cell
    assert cell is not None and cell.shape == (2, 10) and np.abs(cell).max() > 0
    _, state2 = model.predict(obs, state=state, episode_start=np.array([False, False]))
    _, state3 = model.predict(obs, state=(state[0], np.zeros_like(state[1])), episode_start=np.array([False, False]))
    assert not np.allclose(state2[0], state3[0])  # the c part matters


def _param_count(model: RecurrentPPO) -> int:
    return sum(p.numel() for p in model.policy.parameters())


def test_mixed_memory_on_the_actor_only(tmp_path):
    both = _model(cell="ltc", units=10, critic_units=12, ode_unfolds=2, mixed_memory=True)
    assert both.policy.actor_network.use_mixed and both.policy.critic_network.use_mixed  # default: both
    model = _model(cell="ltc", units=10, critic_units=12, ode_unfolds=2, mixed_memory=True, critic_mixed_memory=False)
    policy = model.policy
    assert policy.actor_network.use_mixed and not policy.critic_network.use_mixed
    critic_lstm = 4 * (3 + 12 + 1) * 12  # the critic's LSTM memory cell: input 3 + hidden 12 + bias, 4 gates
    assert _param_count(both) - _param_count(model) == critic_lstm
    model.learn(32)
    path = tmp_path / "model.zip"
    model.save(path)
    loaded = RecurrentPPO.load(path, device="cpu")
    assert loaded.policy.actor_network.use_mixed and not loaded.policy.critic_network.use_mixed
    obs = np.random.default_rng(4).uniform(-1, 1, (2, 3)).astype(np.float32)
    _, state = loaded.predict(obs, episode_start=np.array([True, True]))
    assert np.abs(loaded.policy.split_state(state).cell).max() > 0  # the actor's memory cell is carried
    _, expected = model.predict(obs, episode_start=np.array([True, True]))
    np.testing.assert_array_equal(state[0], expected[0])


def test_split_state_rejects_other_shapes():
    policy = make_policy(OBS, spaces.Discrete(2), units=10)
    with pytest.raises(ValueError, match=r"each of shape \(1, n_envs, 16\)"):
        policy.split_state((np.zeros((2, 10)), np.zeros((2, 10))))


def test_elapsed_key_feeds_timespans_not_features():
    space = spaces.Dict(
        {"observation": spaces.Box(-1.0, 1.0, (2,), np.float32), "elapsed": spaces.Box(0.0, 4.0, (1,), np.float32)}
    )
    policy = make_policy(space, spaces.Box(-1, 1, (2,), np.float32), units=10)
    assert policy.timespan_key == "elapsed" and policy.features_dim == 2
    x = torch.tensor([[0.3, -0.6], [0.3, -0.6]])
    obs = {"observation": x, "elapsed": torch.tensor([[1.0], [3.0]])}
    state = (torch.zeros(1, 2, 16),) * 2
    with torch.no_grad():
        dist, _ = policy.get_distribution(obs, state, torch.zeros(2))
        expected = policy.actor_network.layer.run(x.unsqueeze(1), timespans=torch.tensor([[1.0], [3.0]])).outputs[:, 0]
    means = dist.distribution.mean
    torch.testing.assert_close(means, policy.motor_readout(expected))
    assert not torch.allclose(means[0], means[1])  # same features, different elapsed time

    plain = make_policy(space, spaces.Box(-1, 1, (2,), np.float32), units=10, timespan_key=None)
    assert plain.timespan_key is None and plain.features_dim == 3
    with pytest.raises(ValueError, match=r"timespan_key='dt' is not a key of the observation space"):
        make_policy(space, spaces.Discrete(2), timespan_key="dt")


def test_irregular_time_step_env_trains():
    import envs  # noqa: F401  (registers the ncp/ tasks)
    from stable_baselines3.common.env_util import make_vec_env
    from stable_baselines3.common.vec_env import VecNormalize

    env = VecNormalize(make_vec_env("ncp/CartPoleNoVelIrregular-v1", n_envs=2, seed=0), norm_obs_keys=["observation"])
    model = RecurrentPPO(NCPActorCriticPolicy, env, n_steps=16, batch_size=16, n_epochs=1, seed=0,
                         policy_kwargs=dict(units=10))
    assert model.policy.timespan_key == "elapsed" and model.policy.features_dim == 2
    model.learn(64)


def test_image_observations_go_through_a_cnn():
    image = spaces.Box(0, 255, (3, 36, 36), np.uint8)
    model = _model(obs_space=image, units=10, features_extractor_kwargs=dict(features_dim=8))
    assert isinstance(model.policy.features_extractor, NatureCNN) and model.policy.features_dim == 8
    before = [p.detach().clone() for p in model.policy.features_extractor.parameters()]
    model.learn(32)
    after = list(model.policy.features_extractor.parameters())
    assert any(not torch.equal(a, b) for a, b in zip(before, after))  # the CNN is trained through the NCP


def test_dict_observations_use_combined_extractor():
    space = spaces.Dict({"pos": spaces.Box(-1, 1, (2,), np.float32), "mode": spaces.Discrete(3)})
    model = _model(obs_space=space, units=10)
    assert model.policy.features_dim == 5
    model.learn(32)


def test_multidiscrete_and_box_actions_train():
    for action_space in (spaces.MultiDiscrete([3, 2]), spaces.Box(-1, 1, (2,), np.float32)):
        model = _model(action_space=action_space, units=10)
        model.learn(32)
        action, _ = model.predict(np.zeros((2, 3), np.float32))
        assert action.shape == (2, *action_space.shape)


def test_per_module_learning_rates():
    policy = make_policy(OBS, spaces.Box(-1, 1, (2,), np.float32), units=10, actor_lr_scale=10.0, critic_lr_scale=0.5)
    groups = policy.optimizer.param_groups
    assert sorted(g["lr_scale"] for g in groups) == [0.5, 10.0]  # FlattenExtractor has no parameters
    assert sum(len(g["params"]) for g in groups) == len(list(policy.parameters()))
    before = {name: p.detach().clone() for name, p in policy.named_parameters()}
    for p in policy.parameters():
        p.grad = torch.ones_like(p)
    policy.optimizer.step()  # Adam's first step moves every parameter by its learning rate
    moved = {name: (p.detach() - before[name]).abs().max().item() for name, p in policy.named_parameters()}
    assert moved["log_std"] == pytest.approx(1e-2, rel=1e-3)
    assert moved["motor_readout.scale"] == pytest.approx(1e-2, rel=1e-3)
    assert moved["value_net.bias"] == pytest.approx(5e-4, rel=1e-3)
    assert all(g["lr"] == 1e-3 for g in groups)  # the base rate SB3's schedule sets is left as it was



@pytest.mark.parametrize("cell, given, expected", [("ltc", None, 3.0), ("cfc", None, 1.0), ("ltc", 1.0, 1.0)])
def test_default_actor_learning_rate_is_faster_for_ltc(cell, given, expected):
    # the LTC actor learns at 3x the algorithm's rate unless the user says otherwise (docs/learning.md)
    kwargs = {} if given is None else {"actor_lr_scale": given}
    policy = make_policy(OBS, spaces.Box(-1, 1, (2,), np.float32), units=10, cell=cell, **kwargs)
    assert policy.actor_lr_scale == expected
    scales = sorted(g["lr_scale"] for g in policy.optimizer.param_groups)
    assert scales == sorted([expected, 1.0])

@pytest.mark.parametrize(
    "optimizer_class, user_kwargs, passed, defaults",
    [
        (torch.optim.Adam, None, dict(eps=1e-5, foreach=True), {}),  # SB3's eps, plus the multi-tensor Adam
        (torch.optim.Adam, dict(eps=1e-6), dict(eps=1e-6, foreach=True), {}),
        (torch.optim.Adam, dict(foreach=False), dict(foreach=False), dict(eps=1e-8)),  # the user's choice wins
        (torch.optim.Adam, dict(fused=True), dict(fused=True), dict(foreach=None)),
        (torch.optim.AdamW, None, dict(foreach=True), dict(eps=1e-8)),  # SB3 sets eps for Adam only
        (torch.optim.SGD, dict(momentum=0.9), dict(momentum=0.9), dict(foreach=None)),  # others: untouched
    ],
    ids=["adam-default", "adam-eps", "adam-foreach-false", "adam-fused", "adamw", "sgd"],
)
def test_default_optimizer_kwargs(optimizer_class, user_kwargs, passed, defaults):
    given = None if user_kwargs is None else dict(user_kwargs)
    policy = make_policy(OBS, spaces.Discrete(2), units=10, optimizer_class=optimizer_class, optimizer_kwargs=given)
    assert type(policy.optimizer) is optimizer_class
    assert policy.optimizer_kwargs == passed
    assert policy._get_constructor_parameters()["optimizer_kwargs"] == passed  # what save() stores
    for key, value in {**passed, **defaults}.items():
        assert all(group[key] == value for group in policy.optimizer.param_groups), key
    assert given == user_kwargs  # the user's dict is not modified


def test_foreach_adam_steps_are_bitwise_those_of_the_per_tensor_loop():
    """The default ``foreach=True`` changes the speed of Adam on the CPU, not its updates."""
    policies = [
        make_policy(OBS, spaces.Box(-1, 1, (2,), np.float32), units=10, actor_lr_scale=3.0, critic_lr_scale=0.5,
                    optimizer_kwargs=kwargs)
        for kwargs in (None, dict(eps=1e-5, foreach=False))
    ]
    assert [p.optimizer.defaults["foreach"] for p in policies] == [True, False]
    gen = torch.Generator().manual_seed(0)
    for step in range(6):
        grads = [torch.randn(p.shape, generator=gen) * 10.0 ** (step % 3 - 1) for p in policies[0].parameters()]
        for policy in policies:
            for p, g in zip(policy.parameters(), grads):
                p.grad = g.clone()
            policy.optimizer.step()
    first, second = (dict(p.named_parameters()) for p in policies)
    start = make_policy(OBS, spaces.Box(-1, 1, (2,), np.float32), units=10)
    assert any(not torch.equal(first[name], p) for name, p in start.named_parameters())  # the steps moved them
    for name, p in first.items():
        assert torch.equal(p, second[name]), name


def test_invalid_arguments_are_clear_errors():
    with pytest.raises(ValueError, match=r"cell must be one of \['cfc', 'ltc'\], got 'gru'"):
        make_policy(OBS, spaces.Discrete(2), cell="gru")
    with pytest.raises(ValueError, match=r"critic must be one of \['ncp', 'mlp'\], got 'lstm'"):
        make_policy(OBS, spaces.Discrete(2), critic="lstm")
    with pytest.raises(ValueError, match=r"gSDE.*needs a Box action space, got Discrete\(2\)"):
        make_policy(OBS, spaces.Discrete(2), use_sde=True)
    with pytest.raises(ValueError, match="unknown wiring class 'Grid'"):
        make_policy(OBS, spaces.Discrete(2), wiring="Grid")
    with pytest.raises(TypeError, match="wiring must be None, a Wiring object"):
        make_policy(OBS, spaces.Discrete(2), wiring=12)
    assert isinstance(make_policy(OBS, spaces.Discrete(2), wiring="Random").actor_network.wiring, Random)


def test_ltc_init_ranges_reach_the_ltc_layers_and_survive_save_load(tmp_path):
    ranges = {"sensory_sigma": (1.0, 2.0), "cm": (0.1, 0.1)}
    model = _model(cell="ltc", critic_cell="ltc", init_ranges=ranges)
    for network in (model.policy.actor_network, model.policy.critic_network):
        params = {name: p.detach() for name, p in network.layer.rnn_cell.named_parameters()}
        assert 1.0 <= float(params["sensory_sigma"].min()) and float(params["sensory_sigma"].max()) <= 2.0
        torch.testing.assert_close(params["cm"], torch.full_like(params["cm"], 0.1))
        assert float(params["sigma"].min()) >= 3.0  # the ranges not given keep ncps' defaults
    model.save(tmp_path / "model.zip")
    loaded = RecurrentPPO.load(tmp_path / "model.zip", device="cpu")
    assert loaded.policy.init_ranges == ranges
    # with a CfC critic, only the actor (the LTC layer) takes the ranges
    mixed = make_policy(OBS, spaces.Discrete(2), cell="ltc", init_ranges={"cm": (0.1, 0.1)})
    assert isinstance(mixed.critic_network.layer, CfC)
    cm = dict(mixed.actor_network.layer.rnn_cell.named_parameters())["cm"]
    torch.testing.assert_close(cm, torch.full_like(cm, 0.1))


def test_explicit_ltc_constraints_clip_after_every_step_and_survive_save_load(tmp_path):
    def push_negative(model):
        """Set one actor gleak and one critic w entry below 0, as a large gradient step could."""
        with torch.no_grad():
            for network in (model.policy.actor_network, model.policy.critic_network):
                cell = network.layer.rnn_cell
                cell.gleak[0] = -0.5
                cell.w.view(-1)[0] = -0.5
        return [network.layer.rnn_cell for network in (model.policy.actor_network, model.policy.critic_network)]

    model = _model(cell="ltc", critic_cell="ltc", implicit_param_constraints=False)
    for network in (model.policy.actor_network, model.policy.critic_network):
        assert not network.layer.rnn_cell.implicit_param_constraints
    cells = push_negative(model)
    model.learn(32)
    for cell in cells:  # clipped at 0 by the optimizer's post-step hook
        assert float(cell.gleak.detach().min()) >= 0.0 and float(cell.w.detach().min()) >= 0.0
    model.save(tmp_path / "model.zip")
    loaded = RecurrentPPO.load(tmp_path / "model.zip", env=model.get_env(), device="cpu")
    assert loaded.policy.implicit_param_constraints is False
    cells = push_negative(loaded)
    loaded.learn(32)
    for cell in cells:
        assert float(cell.gleak.detach().min()) >= 0.0 and float(cell.w.detach().min()) >= 0.0
    # the default (softplus at run time) leaves raw values alone: a negative raw gleak is a valid parameter
    default = _model(cell="ltc", critic_cell="ltc")
    cells = push_negative(default)
    default.learn(32)
    assert float(cells[0].gleak.detach()[0]) < 0.0


def test_init_ranges_errors_name_the_problem():
    with pytest.raises(ValueError, match="init_ranges sets LTC parameters, but this policy has no LTC layer"):
        make_policy(OBS, spaces.Discrete(2), cell="cfc", init_ranges={"w": (0.2, 2.0)})
    with pytest.raises(ValueError, match="unknown parameter 'tau'; allowed: gleak"):
        make_policy(OBS, spaces.Discrete(2), cell="ltc", init_ranges={"tau": (0.2, 2.0)})
    with pytest.raises(ValueError, match=r"init_ranges\['w'\] must be finite with min <= max"):
        make_policy(OBS, spaces.Discrete(2), cell="ltc", init_ranges={"w": (2.0, 0.2)})
    with pytest.raises(ValueError, match=r"init_ranges gives cm negative values, but with implicit_param_constraints=False"):
        make_policy(OBS, spaces.Discrete(2), cell="ltc", init_ranges={"cm": (-2.0, -1.5)}, implicit_param_constraints=False)
    make_policy(OBS, spaces.Discrete(2), cell="ltc", init_ranges={"cm": (-2.0, -1.5)})  # raw values under a softplus


@pytest.mark.cuda
@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA GPU")
def test_cuda_rollout_and_training():
    env = DummyVecEnv([lambda i=i: ToyEnv(OBS, spaces.Discrete(2), seed=i) for i in range(2)])
    model = RecurrentPPO(NCPActorCriticPolicy, env, n_steps=16, batch_size=16, n_epochs=1, seed=0, device="cuda",
                         policy_kwargs=dict(units=10))
    model.learn(32)
    assert next(model.policy.parameters()).device.type == "cuda"
    action, state = model.predict(np.zeros((2, 3), np.float32))
    assert action.shape == (2,) and state[0].shape == (1, 2, 16)


def test_memory_cell_learning_rate():
    policy = make_policy(OBS, spaces.Box(-1, 1, (2,), np.float32), units=10, cell="ltc", mixed_memory=True,
                         critic_mixed_memory=False, actor_lr_scale=8.0, memory_lr_scale=1.0)
    before = {name: p.detach().clone() for name, p in policy.named_parameters()}
    for p in policy.parameters():
        p.grad = torch.ones_like(p)
    policy.optimizer.step()
    moved = {name: (p.detach() - before[name]).abs().max().item() for name, p in policy.named_parameters()}
    memory = [name for name in moved if ".lstm." in name]
    assert memory and all(moved[name] == pytest.approx(1e-3, rel=1e-3) for name in memory)
    ltc = [name for name in moved if name.startswith("actor_network.") and ".lstm." not in name]
    assert ltc and all(moved[name] == pytest.approx(8e-3, rel=1e-3) for name in ltc)
    assert policy._get_constructor_parameters()["memory_lr_scale"] == 1.0
    # unset, the memory cell learns with the rest of the actor, in the actor's group (saved optimizer states load)
    plain = make_policy(OBS, spaces.Box(-1, 1, (2,), np.float32), units=10, cell="ltc", mixed_memory=True,
                        critic_mixed_memory=False, actor_lr_scale=8.0)
    assert sorted(g["lr_scale"] for g in plain.optimizer.param_groups) == [1.0, 8.0]
    with pytest.raises(ValueError, match="mixed_memory=True"):
        make_policy(OBS, spaces.Discrete(2), units=10, memory_lr_scale=1.0)
