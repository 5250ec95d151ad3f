import io
import json
import os
import subprocess
import sys
import zipfile
from pathlib import Path

import numpy as np
import pytest
import torch
import yaml

from agents.checkpoint import read_checkpoint_state
from agents.cli import main
from agents.runs import load_run


def _run_files(run: Path) -> set[str]:
    return {p.name for p in run.iterdir()}


def _zip_tensor(path: Path, entry: str) -> dict:
    with zipfile.ZipFile(path) as zf:
        return torch.load(io.BytesIO(zf.read(entry)), weights_only=True)


def test_train_writes_loadable_run_directory(trained_run):
    assert {"config.yaml", "model_last.zip", "model_best.zip", "vecnormalize.json", "tb", "evaluations.npz",
            "metrics.json"} <= _run_files(trained_run)
    config = yaml.safe_load((trained_run / "config.yaml").read_text())
    assert (config["preset"], config["env"], config["n_timesteps"], config["seed"]) == \
        ("cartpole_novel_cfc", "ncp/CartPoleNoVel-v1", 512, 1)
    metrics = json.loads((trained_run / "metrics.json").read_text())
    assert metrics["num_timesteps"] == 512
    with np.load(trained_run / "evaluations.npz", allow_pickle=False) as ev:
        assert ev["timesteps"].tolist() == [512] and ev["results"].shape == (1, 10)
        assert metrics["last"]["mean"] == pytest.approx(ev["results"][0].mean())
    assert any((trained_run / "tb").rglob("events.out.tfevents*"))
    run = load_run(trained_run, which="last")
    assert run.num_timesteps == 512
    saved = _zip_tensor(trained_run / "model_last.zip", "policy.pth")
    for name, value in run.model.policy.state_dict().items():
        torch.testing.assert_close(value, saved[name], rtol=0, atol=0)
    vecnorm = json.loads((trained_run / "vecnormalize.json").read_text())
    assert vecnorm == read_checkpoint_state(trained_run / "model_last.zip")["vecnormalize"]
    assert vecnorm["obs_rms"]["count"] > 512  # statistics were updated during training


def test_default_network_is_the_ncp_policy(trained_run):
    config = yaml.safe_load((trained_run / "config.yaml").read_text())
    try:
        import ncp_policies.sb3  # noqa: F401
    except ImportError:
        pytest.skip("ncp_policies.sb3 is not importable yet; the run used the LSTM fallback")
    assert config["policy"]["class"] == "ncp_policies.sb3.NCPActorCriticPolicy"
    assert config["policy"]["kwargs"]["cell"] == "cfc"


def test_evaluate_is_deterministic_and_prints_mean_std(trained_run, capsys):
    assert main(["evaluate", str(trained_run), "--episodes", "3"]) == 0
    first = capsys.readouterr().out
    assert main(["evaluate", str(trained_run), "--episodes", "3"]) == 0
    assert capsys.readouterr().out == first
    assert "ncp/CartPoleNoVel-v1:" in first and "± " in first and "over 3 episodes (deterministic" in first


def test_record_writes_a_video(trained_run, tmp_path, capsys):
    import imageio.v2 as imageio

    out = tmp_path / "v.gif"
    assert main(["record", str(trained_run), "--out", str(out)]) == 0
    frames = imageio.mimread(out)
    assert len(frames) >= 9 and frames[0].shape[-1] in (3, 4)  # one CartPole episode lasts >= 9 steps
    assert main(["record", str(trained_run), "--out", str(tmp_path / "v.mp4"), "--checkpoint", "last"]) == 0
    assert (tmp_path / "v.mp4").stat().st_size > 1000


def test_audit_writes_the_audit_folder(trained_run, tmp_path):
    config = yaml.safe_load((trained_run / "config.yaml").read_text())
    try:
        from ncp_policies.audit import audit  # noqa: F401
    except ImportError:
        pytest.skip("ncp_policies.audit.audit is not available yet")
    if config["policy"]["class"] != "ncp_policies.sb3.NCPActorCriticPolicy":
        pytest.skip("the run used the LSTM fallback; the audit needs the NCP policy")
    out = tmp_path / "audit"
    assert main(["audit", str(trained_run), "--episodes", "1", "--out", str(out)]) == 0
    assert (out / "summary.md").is_file() and (out / "activity.npz").is_file()


def test_resume_continues_from_the_checkpoint(tiny_preset, tmp_path):
    out = tmp_path / "run"
    args = ["train", "--preset", str(tiny_preset), "--out", str(out), "--no-progress-bar"]
    assert main([*args, "--steps", "128"]) == 0
    ckpt = _zip_tensor(out / "model_last.zip", "policy.pth")
    opt_steps = _zip_tensor(out / "model_last.zip", "policy.optimizer.pth")["state"][0]["step"].item()
    assert opt_steps == 4  # 2 rollouts x 2 epochs x 1 minibatch
    assert main([*args, "--resume", "--steps", "256"]) == 0
    assert read_checkpoint_state(out / "model_last.zip")["num_timesteps"] == 256
    # the optimizer continued (a fresh one would have 4 steps), so the checkpoint was loaded
    assert _zip_tensor(out / "model_last.zip", "policy.optimizer.pth")["state"][0]["step"].item() == 8
    after = _zip_tensor(out / "model_last.zip", "policy.pth")
    assert any(not torch.equal(ckpt[k], after[k]) for k in ckpt)
    with np.load(out / "evaluations.npz", allow_pickle=False) as ev:
        assert ev["timesteps"].tolist() == [128, 256]
    assert len(list((out / "tb").iterdir())) == 1  # TensorBoard continues the same run folder
    assert yaml.safe_load((out / "config.yaml").read_text())["n_timesteps"] == 256


def test_preset_freezes_the_normalization_statistics_and_resume_keeps_them(tiny_preset, tmp_path):
    """freeze_normalization_after: 64 with 2 envs: the reset's 2 observations and 32 steps' 64 reach the
    statistics, the rest of the 128 steps do not, nor does a resumed run (not even its env reset)."""
    preset = tmp_path / "freeze.yaml"
    preset.write_text(yaml.safe_dump({**yaml.safe_load(tiny_preset.read_text()), "freeze_normalization_after": 64}))
    out = tmp_path / "run"
    args = ["train", "--preset", str(preset), "--out", str(out), "--no-progress-bar"]
    assert main([*args, "--steps", "128"]) == 0
    assert yaml.safe_load((out / "config.yaml").read_text())["freeze_normalization_after"] == 64
    stats = json.loads((out / "vecnormalize.json").read_text())
    assert stats["obs_rms"]["count"] == pytest.approx(66, abs=1e-3)
    assert stats["ret_rms"]["count"] == pytest.approx(64, abs=1e-3)  # the 32 steps' 64 returns only
    assert main([*args, "--resume", "--steps", "256"]) == 0
    assert json.loads((out / "vecnormalize.json").read_text())["obs_rms"] == stats["obs_rms"]
    tiny = tmp_path / "tiny_run"
    assert main(["train", "--preset", str(tiny_preset), "--out", str(tiny), "--no-progress-bar", "--steps", "128"]) == 0
    assert json.loads((tiny / "vecnormalize.json").read_text())["obs_rms"]["count"] == pytest.approx(130, abs=1e-3)
    # freeze_reward_normalization: false: the observations' statistics stop at 64 steps, the returns' do not
    preset.write_text(yaml.safe_dump({**yaml.safe_load(preset.read_text()), "freeze_reward_normalization": False}))
    obs_only = tmp_path / "obs_only"
    assert main(["train", "--preset", str(preset), "--out", str(obs_only), "--no-progress-bar", "--steps", "128"]) == 0
    stats = json.loads((obs_only / "vecnormalize.json").read_text())
    assert stats["obs_rms"]["count"] == pytest.approx(66, abs=1e-3)
    assert stats["ret_rms"]["count"] == pytest.approx(128, abs=1e-3)  # all 64 steps'


def test_preset_stops_training_once_solved(tiny_preset, tmp_path):
    """stop_when_solved with an easy return: training ends early, the run is evaluated and checkpointed
    there, and metrics.json says where."""
    preset = tmp_path / "stop.yaml"
    preset.write_text(yaml.safe_dump({**yaml.safe_load(tiny_preset.read_text()),
                                      "stop_when_solved": {"reward": 5, "episodes": 2}}))
    out = tmp_path / "run"
    assert main(["train", "--preset", str(preset), "--out", str(out), "--no-progress-bar", "--steps", "2048"]) == 0
    metrics = json.loads((out / "metrics.json").read_text())
    assert metrics["stopped_when_solved_at"] == metrics["num_timesteps"] < 2048
    assert read_checkpoint_state(out / "model_last.zip")["num_timesteps"] == metrics["num_timesteps"]
    assert yaml.safe_load((out / "config.yaml").read_text())["stop_when_solved"] == {"reward": 5, "episodes": 2}


def test_preset_stops_training_once_an_evaluation_is_solved(tiny_preset, tmp_path):
    """stop_when_solved on evaluation with an easy return: training ends at the first evaluation."""
    base = yaml.safe_load(tiny_preset.read_text())
    preset = tmp_path / "stop_eval.yaml"
    preset.write_text(yaml.safe_dump({**base, "eval_freq": 256,
                                      "stop_when_solved": {"reward": 5, "episodes": 2, "on": "evaluation"}}))
    out = tmp_path / "run"
    assert main(["train", "--preset", str(preset), "--out", str(out), "--no-progress-bar", "--steps", "4096"]) == 0
    metrics = json.loads((out / "metrics.json").read_text())
    assert metrics["stopped_when_solved_at"] == metrics["num_timesteps"] == 256  # the first evaluation passes
    own = tmp_path / "stop_eval_own.yaml"  # the rule's own period, shorter than the preset's evaluations
    own.write_text(yaml.safe_dump({**base, "eval_freq": 1024, "stop_when_solved": {
        "reward": 5, "episodes": 2, "on": "evaluation", "eval_freq": 128}}))
    assert main(["train", "--preset", str(own), "--out", str(tmp_path / "own"), "--no-progress-bar",
                 "--steps", "4096"]) == 0
    assert json.loads((tmp_path / "own" / "metrics.json").read_text())["stopped_when_solved_at"] == 128
    short = tmp_path / "stop_eval_short.yaml"  # the same easy return, on check episodes cut at 3 steps: never met
    short.write_text(yaml.safe_dump({**base, "eval_freq": 256, "stop_when_solved": {
        "reward": 5, "episodes": 2, "on": "evaluation", "episode_steps": 3}}))
    assert main(["train", "--preset", str(short), "--out", str(tmp_path / "short"), "--no-progress-bar",
                 "--steps", "1024"]) == 0
    assert json.loads((tmp_path / "short" / "metrics.json").read_text())["stopped_when_solved_at"] is None


def test_preset_never_solved_with_restore_best_trains_its_budget_and_says_what_it_kept(tiny_preset, tmp_path):
    base = yaml.safe_load(tiny_preset.read_text())
    preset = tmp_path / "stop_best.yaml"
    preset.write_text(yaml.safe_dump({**base, "eval_freq": 256, "stop_when_solved": {
        "reward": 10_000, "episodes": 2, "on": "evaluation", "restore_best": True}}))
    out = tmp_path / "run"
    assert main(["train", "--preset", str(preset), "--out", str(out), "--no-progress-bar", "--steps", "1024"]) == 0
    metrics = json.loads((out / "metrics.json").read_text())
    assert metrics["stopped_when_solved_at"] is None and metrics["num_timesteps"] == 1024
    assert metrics["restored_best_from"] in (None, 256, 512, 768, 1024)
    assert metrics["last"]["timesteps"] == 1024  # the weights it ends with were evaluated


def _one_line_error(capsys, argv, *needles):
    assert main(argv) == 2
    captured = capsys.readouterr()
    err = captured.err.strip()
    assert "\n" not in err and err.startswith("ncp: error: ") and "Traceback" not in err
    for needle in needles:
        assert needle in err, err
    return err


def test_bad_env_preset_cell_give_one_line_errors(capsys, tmp_path):
    _one_line_error(capsys, ["train", "--env", "ncp/CartPoleNoVl-v1"], "unknown env id",
                    "did you mean 'ncp/CartPoleNoVel-v1'", "ncp/PendulumNoVel-v1")
    _one_line_error(capsys, ["train", "--preset", "nope"], "unknown preset 'nope'", "cartpole_novel_cfc")
    _one_line_error(capsys, ["train", "--env", "CartPole-v1", "--cell", "gru"], "invalid choice: 'gru'", "'cfc', 'ltc'")
    _one_line_error(capsys, ["train"], "give --env ID or --preset NAME")
    _one_line_error(capsys, ["frobnicate"], "invalid choice", "train")
    _one_line_error(capsys, ["evaluate", str(tmp_path)], "holds no model_best.zip or model_last.zip")
    _one_line_error(capsys, ["train", "--resume"], "--resume needs --out")


def test_mismatched_spaces_give_one_line_errors(capsys, tmp_path, trained_run):
    dqn = tmp_path / "dqn_pendulum.yaml"
    dqn.write_text(yaml.safe_dump({"algo": "DQN", "env": "ncp/PendulumNoVel-v1", "n_envs": 1}))
    _one_line_error(capsys, ["train", "--preset", str(dqn), "--out", str(tmp_path / "r"), "--steps", "64"],
                    "DQN cannot act in ncp/PendulumNoVel-v1's action space", "RecurrentPPO, PPO, A2C, SAC, TD3")
    assert not (tmp_path / "r").exists()  # nothing written for a run that cannot start
    _one_line_error(capsys, ["evaluate", str(trained_run), "--env", "CartPole-v1"],
                    "observation space", "does not match", "ncp/CartPoleNoVel-v1")
    _one_line_error(capsys, ["train", "--env", "ncp/CartPoleNoVel-v1", "--out", str(trained_run)], "already holds a run")


def test_console_script_in_a_subprocess(tiny_preset, tmp_path):
    ncp = Path(sys.executable).with_name("ncp")
    if not ncp.exists():
        pytest.skip("the ncp console script is not installed (pip install -e .)")
    env = {**os.environ, "PYTHONWARNINGS": "ignore"}
    out = tmp_path / "sub"
    done = subprocess.run([str(ncp), "train", "--preset", str(tiny_preset), "--steps", "64", "--out", str(out),
                           "--no-progress-bar"], capture_output=True, text=True, env=env, timeout=120)
    assert done.returncode == 0, done.stderr
    assert f"run directory: {out}" in done.stdout
    assert read_checkpoint_state(out / "model_last.zip")["num_timesteps"] == 64
    bad = subprocess.run([str(ncp), "train", "--env", "Nope-v0"], capture_output=True, text=True, env=env, timeout=60)
    assert bad.returncode == 2 and bad.stderr.count("\n") == 1 and "unknown env id 'Nope-v0'" in bad.stderr
