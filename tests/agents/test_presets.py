import pytest

from agents.errors import UsageError
from agents.presets import Preset, load_preset, preset_names, select_preset
from agents.schedules import LinearSchedule, parse_schedule


def test_every_bundled_preset_loads_and_names_a_known_algo():
    names = preset_names()
    assert {"cartpole_novel_cfc", "cartpole_novel_ltc", "pendulum_novel_cfc", "mountaincar_continuous_novel_cfc",
            "lunarlander_novel_cfc", "cartpole_ppo_extractor", "default"} <= set(names)
    for name in names:
        assert load_preset(name).name == name


def test_cartpole_preset_is_rl_zoo_with_a_longer_horizon():
    """RL Zoo's CartPoleNoVel-v1 settings except γ 0.995 (0.98 there), chosen over 5 seeds (docs/learning.md)."""
    p = load_preset("cartpole_novel_cfc")
    assert (p.algo, p.env, p.n_envs, p.n_timesteps) == ("RecurrentPPO", "ncp/CartPoleNoVel-v1", 8, 100_000)
    assert p.hyperparams == {"n_steps": 32, "batch_size": 256, "n_epochs": 20, "gamma": 0.995, "gae_lambda": 0.8,
                             "learning_rate": "lin_1e-3", "clip_range": "lin_0.2", "ent_coef": 0.0}
    assert p.normalize and p.cell == "cfc"
    assert p.stop_when_solved == {"reward": 500, "episodes": 20}  # a full-length episode, 20 in a row
    assert load_preset("cartpole_novel_ltc").cell == "ltc"
    ltc = load_preset("cartpole_novel_ltc")  # a memory cell, a stop on a greedy evaluation, else its best check
    assert ltc.stop_when_solved == {"reward": 500, "episodes": 20, "on": "evaluation", "restore_best": True,
                                    "eval_freq": 5000}  # checks twice as often as the preset's evaluations
    assert ltc.policy_kwargs["mixed_memory"] and not ltc.policy_kwargs["critic_mixed_memory"]
    assert ltc.policy_kwargs["memory_lr_scale"] == 1.0  # the memory cell at the algorithm's rate, the LTC at 3x
    pend = load_preset("pendulum_novel_cfc")
    assert (pend.n_envs, pend.hyperparams["n_steps"], pend.hyperparams["gamma"], pend.hyperparams["n_epochs"]) == (4, 1024, 0.9, 10)


def test_an_unquoted_on_key_in_yaml_reads_as_on(tmp_path):
    """YAML 1.1 parses `on:` as the boolean true; the preset takes it as the key it was written as."""
    path = tmp_path / "p.yaml"
    path.write_text("algo: PPO\nstop_when_solved: {reward: 500, episodes: 10, on: evaluation}\n")
    assert load_preset(str(path)).stop_when_solved == {"reward": 500, "episodes": 10, "on": "evaluation"}
    path.write_text("algo: PPO\nstop_when_solved: {reward: 500, episodes: 20, on: evaluation, restore_best: true}\n")
    assert load_preset(str(path)).stop_when_solved == {"reward": 500, "episodes": 20, "on": "evaluation",
                                                       "restore_best": True}


def test_linear_schedule_values():
    s = parse_schedule("learning_rate", "lin_1e-3")
    assert isinstance(s, LinearSchedule)
    assert s(1.0) == pytest.approx(1e-3) and s(0.25) == pytest.approx(2.5e-4) and s(0.0) == 0.0
    assert parse_schedule("gamma", 0.9) == 0.9
    with pytest.raises(ValueError, match="lin_<number>"):
        parse_schedule("learning_rate", "lin_fast")


def test_select_preset_by_env_and_cell():
    assert select_preset("ncp/CartPoleNoVel-v1").name == "cartpole_novel_cfc"
    assert select_preset("ncp/CartPoleNoVel-v1", "ltc").name == "cartpole_novel_ltc"
    assert select_preset("ncp/PendulumNoVel-v1", "ltc").name == "pendulum_novel_ltc"
    assert select_preset("CartPole-v1").name == "default"


@pytest.mark.parametrize("data, match", [
    ({"algo": "PPO", "n_env": 2}, r"unknown key in preset 'x': 'n_env' \(did you mean 'n_envs'\?\); valid: .*n_envs"),
    ({"algo": "PPOX"}, r"unknown algo .*valid: A2C, DQN, PPO, RecurrentPPO, SAC, TD3"),
    ({"algo": "PPO", "hyperparams": {"n_step": 3}}, r"hyperparameter of PPO .*'n_step'.*did you mean 'n_steps'"),
    ({"algo": "PPO", "policy_kwargs": {"cell": "gru"}}, r"unknown cell .*'gru'; valid: cfc, ltc"),
    ({"algo": "PPO", "normalize": {"clip": 5}}, r"unknown normalize key .*valid: .*clip_obs"),
    ({"algo": "PPO", "n_envs": 0}, r"n_envs=0 must be a positive integer"),
    ({"algo": "RecurrentPPO", "frame_stack": 4}, r"frame_stack is for non-recurrent"),
    ({"algo": "PPO", "normalize": True, "freeze_normalization_after": -1}, r"freeze_normalization_after=-1 must be null"),
    ({"algo": "PPO", "freeze_normalization_after": 5000}, r"freeze_normalization_after=5000 needs normalize"),
    ({"algo": "PPO", "normalize": True, "freeze_normalization_after": 5000, "freeze_reward_normalization": "no"},
     r"freeze_reward_normalization='no' must be true or false"),
    ({"algo": "PPO", "stop_when_solved": 500}, r"stop_when_solved=500 must be null or a mapping \{reward: "),
    ({"algo": "PPO", "stop_when_solved": {"reward": 500}}, r"stop_when_solved=.* must be null or a mapping"),
    ({"algo": "PPO", "stop_when_solved": {"reward": 500, "episodes": 0}}, r"episodes=0 must be a positive number"),
    ({"algo": "PPO", "stop_when_solved": {"reward": 500, "episodes": 5, "on": "eval"}},
     r"on='eval' must be one of \['training', 'evaluation'\]"),
    ({"algo": "PPO", "stop_when_solved": {"reward": 500, "episodes": 5, "every": 3}}, r"must be null or a mapping"),
    ({"algo": "PPO", "stop_when_solved": {"reward": 500, "episodes": 5, "restore_best": True}},
     r"restore_best is a setting of the evaluation checks \(a run never stopped keeps its best check\), so it needs "
     r"on: evaluation"),
    ({"algo": "PPO", "stop_when_solved": {"reward": 500, "episodes": 5, "eval_freq": 5000}},
     r"eval_freq is a setting of the evaluation checks \(env steps between checks\), so it needs on: evaluation"),
    ({"algo": "PPO", "stop_when_solved": {"reward": 500, "episodes": 5, "on": "evaluation", "eval_freq": 0}},
     r"eval_freq=0 must be a positive number of env steps between checks"),
    ({"algo": "PPO", "stop_when_solved": {"reward": 500, "episodes": 5, "on": "evaluation", "eval_freq": 5e3}},
     r"eval_freq=5000.0 must be a positive number"),
    ({"algo": "PPO", "stop_when_solved": {"reward": 1000, "episodes": 5, "episode_steps": 1000}},
     r"episode_steps is a setting of the evaluation checks \(the checks' episodes end at this many steps\), so it "
     r"needs on: evaluation"),
    ({"algo": "PPO", "stop_when_solved": {"reward": 1000, "episodes": 5, "on": "evaluation", "episode_steps": 0}},
     r"episode_steps=0 must be a positive number of steps \(the time limit of the checks' episodes\)"),
    ({"algo": "PPO", "stop_when_solved": {"reward": 1000, "episodes": 5, "on": "evaluation", "episode_steps": True}},
     r"episode_steps=True must be a positive number"),
    ({"algo": "PPO", "stop_when_solved": {"reward": 500, "episodes": 5, "on": "evaluation", "restore_best": 1}},
     r"restore_best=1 must be true or false"),
    ({"env": "CartPole-v1"}, r"has no 'algo'"),
])
def test_invalid_presets_give_one_line_errors(data, match):
    with pytest.raises(UsageError, match=match) as info:
        Preset.from_dict(data, "x")
    assert "\n" not in str(info.value)
