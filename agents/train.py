"""``ncp train``: resolve a preset into a run config, train with periodic evaluation, checkpoint atomically."""
from __future__ import annotations

import json
import re
import time
import warnings
from pathlib import Path
from typing import Any

import numpy as np
import torch
import yaml
from stable_baselines3.common.callbacks import BaseCallback, CallbackList
from stable_baselines3.common.evaluation import evaluate_policy
from stable_baselines3.common.vec_env import VecEnv, sync_envs_normalization

from .algos import CELLS
from .build import build_model, check_env_id, check_spaces, find_vecnormalize, make_venv, resolve_policy
from .callbacks import FreezeNormalization, StopWhenEvaluationSolved, freeze_if_due, stop_callback
from .checkpoint import atomic_write_bytes, atomic_write_text, read_checkpoint_state, restore_vecnormalize, \
    save_checkpoint, vecnormalize_state
from .errors import UsageError, unknown
from .presets import load_preset, select_preset
from .runs import BEST, CONFIG, EVALUATIONS, LAST, METRICS, TB, VECNORM, read_config

DEVICES = ("cpu", "cuda", "auto")
EVAL_SEED_OFFSET = 10_000
STOP_EVAL_SEED_OFFSET = 20_000  # stop_when_solved on evaluation: start states apart from the checkpoints' evaluation


class EvalCheckpointCallback(BaseCallback):
    """Every ``eval_freq`` env steps: evaluate on a separate env with the training VecNormalize
    statistics, append to ``evaluations.npz``, write ``model_last.zip`` and, on a new best mean
    return, ``model_best.zip`` (all atomically), and ``metrics.json``.

    :param eval_env: evaluation env (its VecNormalize, if any, is frozen and synced before each evaluation)
    :param run_dir: run directory
    :param eval_freq: evaluate every this many environment steps (summed over the training envs)
    :param n_eval_episodes: episodes per evaluation
    :param best_mean: best mean return seen so far (continuing runs)
    """

    def __init__(self, eval_env: VecEnv, run_dir: Path, eval_freq: int, n_eval_episodes: int,
                 best_mean: float = -np.inf) -> None:
        super().__init__()
        self.eval_env, self.run_dir = eval_env, run_dir
        self.eval_freq, self.n_eval_episodes = eval_freq, n_eval_episodes
        self.best_mean = best_mean
        self.best: dict[str, float] = {"mean": best_mean}
        self.last_eval_at = -1
        self.last: dict[str, float] | None = None
        self._next_eval = 0

    def _init_callback(self) -> None:
        self._next_eval = (self.num_timesteps // self.eval_freq + 1) * self.eval_freq

    def _on_step(self) -> bool:
        if self.num_timesteps >= self._next_eval:
            self._next_eval = (self.num_timesteps // self.eval_freq + 1) * self.eval_freq
            self.evaluate_and_save()
        return True

    def evaluate_and_save(self) -> dict[str, float]:
        """Evaluate now, record, checkpoint. :return: ``{"timesteps", "mean", "std"}``."""
        model = self.model
        sync_envs_normalization(model.get_env(), self.eval_env)
        rewards, lengths = evaluate_policy(model, self.eval_env, n_eval_episodes=self.n_eval_episodes,
                                           deterministic=True, return_episode_rewards=True, warn=False)
        t = int(model.num_timesteps)
        result = {"timesteps": t, "mean": float(np.mean(rewards)), "std": float(np.std(rewards)),
                  "mean_length": float(np.mean(lengths))}
        self.last, self.last_eval_at = result, t
        if self.logger is not None:
            self.logger.record("eval/mean_reward", result["mean"])
            self.logger.record("eval/mean_ep_length", result["mean_length"])
            self.logger.dump(t)
        self._append_evaluations(t, rewards, lengths)
        train_norm = find_vecnormalize(model.get_env())
        if result["mean"] > self.best_mean:
            self.best_mean, self.best = result["mean"], dict(result)
            save_checkpoint(model, self.run_dir / BEST, train_norm)
        save_last(model, self.run_dir)
        atomic_write_text(self.run_dir / METRICS, json.dumps(
            {"num_timesteps": t, "last": self.last, "best": self.best}, indent=2))
        return result

    def _append_evaluations(self, t: int, rewards: list[float], lengths: list[int]) -> None:
        path = self.run_dir / EVALUATIONS
        ts, res, lens = np.zeros(0, np.int64), np.zeros((0, len(rewards))), np.zeros((0, len(rewards)), np.int64)
        if path.is_file():
            with np.load(path, allow_pickle=False) as old:
                if old["results"].shape[1:] == (len(rewards),):
                    ts, res, lens = old["timesteps"], old["results"], old["ep_lengths"]
        import io

        buf = io.BytesIO()
        np.savez(buf, timesteps=np.append(ts, t), results=np.vstack([res, [rewards]]),
                 ep_lengths=np.vstack([lens, [lengths]]))
        atomic_write_bytes(path, buf.getvalue())


def save_last(model: Any, run_dir: Path) -> None:
    """Write ``model_last.zip`` and ``vecnormalize.json`` atomically.

    :param model: the algorithm being trained
    :param run_dir: run directory
    """
    norm = find_vecnormalize(model.get_env())
    save_checkpoint(model, run_dir / LAST, norm)
    if norm is not None:
        atomic_write_text(run_dir / VECNORM, json.dumps(vecnormalize_state(norm)))


def _slug(text: str) -> str:
    return re.sub(r"[^A-Za-z0-9._-]+", "_", text).strip("_")


def resolve_config(env_id: str | None, preset: str | None, cell: str | None, steps: int | None,
                   seed: int, device: str) -> dict[str, Any]:
    """Merge a preset with command-line overrides into the run config written to ``config.yaml``.

    :param env_id: env id, or None to use the preset's
    :param preset: preset name or YAML path, or None to choose one from ``env_id`` and ``cell``
    :param cell: ``"cfc"`` / ``"ltc"`` override, or None
    :param steps: training budget override, or None
    :param seed: run seed
    :param device: torch device
    :return: the resolved config
    """
    if cell is not None and cell not in CELLS:
        raise unknown("cell", cell, CELLS)
    if env_id is None and preset is None:
        raise UsageError("give --env ID or --preset NAME (see `ncp list`)")
    if env_id is not None:
        check_env_id(env_id)
    p = load_preset(preset) if preset is not None else select_preset(env_id, cell)  # type: ignore[arg-type]
    config = p.to_dict()
    config.pop("name")
    config["env"] = env_id or p.env
    if config["env"] is None:
        raise UsageError(f"preset {p.name!r} is generic; give --env ID")
    check_env_id(config["env"])
    if cell is not None:
        config["policy_kwargs"]["cell"] = cell
    if steps is not None:
        config["n_timesteps"] = steps
    return {"preset": p.name, "seed": seed, "device": device, **config}


def _check_device(device: str) -> None:
    if device not in DEVICES:
        raise unknown("device", device, DEVICES)
    if device == "cuda" and not torch.cuda.is_available():
        raise UsageError("--device cuda but torch sees no CUDA GPU; use --device cpu")


def default_run_dir(config: dict[str, Any]) -> Path:
    """:return: ``runs/<preset>_<env>_<cell>_seed<seed>`` for a config.

    :param config: resolved run config
    """
    cell = config.get("policy_kwargs", {}).get("cell", "cfc")
    return Path("runs") / _slug(f"{config['preset']}_{config['env'].replace('/', '-')}_{cell}_seed{config['seed']}")


def train(env_id: str | None = None, preset: str | None = None, cell: str | None = None, steps: int | None = None,
          seed: int = 0, device: str = "cpu", out: str | Path | None = None, resume: bool = False,
          progress_bar: bool = True, eval_freq: int | None = None, eval_episodes: int | None = None,
          force: bool = False, verbose: int = 0) -> Path:
    """Train an agent and write its run directory (see :mod:`agents.runs` for the layout).

    :param env_id: Gymnasium id; the preset's env when None
    :param preset: preset name or YAML path; chosen from ``env_id`` and ``cell`` when None
    :param cell: ``"cfc"`` or ``"ltc"``, overriding the preset's
    :param steps: total training budget in env steps (with ``resume``: the total to reach)
    :param seed: seed of the agent and the training envs
    :param device: ``"cpu"``, ``"cuda"`` or ``"auto"``
    :param out: run directory; ``runs/<preset>_<env>_<cell>_seed<seed>`` when None
    :param resume: continue the run in ``out`` from ``model_last.zip``
    :param progress_bar: show SB3's progress bar
    :param eval_freq: override the preset's evaluation period (env steps)
    :param eval_episodes: override the preset's episodes per evaluation
    :param force: train into an existing run directory, replacing its files
    :param verbose: SB3 verbosity
    :return: the run directory
    """
    _check_device(device)
    if resume:
        if out is None:
            raise UsageError("--resume needs --out RUN_DIR (the run to continue)")
        run_dir = Path(out)
        config = read_config(run_dir)
        given = {"env": env_id, "preset": Path(preset).stem if preset and preset.endswith((".yaml", ".yml")) else preset}
        for key, value in given.items():
            if value is not None and value != config[key]:
                raise UsageError(f"--resume continues {run_dir} as configured ({key}={config[key]!r}); "
                                 f"drop --{key} {value} or train a new run with another --out")
        if cell is not None and cell != config["policy_kwargs"].get("cell", "cfc"):
            raise UsageError(f"--resume continues {run_dir} with cell {config['policy_kwargs'].get('cell')!r}; drop --cell")
        if not (run_dir / LAST).is_file():
            raise UsageError(f"{run_dir} has no {LAST} to resume from; train it without --resume")
        if steps is not None:
            config["n_timesteps"] = steps
        config["device"] = device
    else:
        config = resolve_config(env_id, preset, cell, steps, seed, device)
        run_dir = Path(out) if out is not None else default_run_dir(config)
        if (run_dir / CONFIG).exists() and not force:
            raise UsageError(f"{run_dir} already holds a run; pass --resume to continue it, --force to "
                             "overwrite it, or --out NEW_DIR")
    if eval_freq is not None:
        config["eval_freq"] = eval_freq
    if eval_episodes is not None:
        config["eval_episodes"] = eval_episodes

    seed = int(config["seed"])
    venv = make_venv(config, n_envs=int(config["n_envs"]), seed=seed, training=True)
    check_spaces(config["algo"], venv, config["env"])  # before anything is written
    eval_env = make_venv(config, n_envs=1, seed=seed + EVAL_SEED_OFFSET, training=False)
    if not resume:
        config["policy"] = resolve_policy(config, seed, venv.observation_space)
    model = build_model(config, venv, device=device, tensorboard_log=str(run_dir / TB), verbose=verbose)
    run_dir.mkdir(parents=True, exist_ok=True)  # only once the model could be built
    atomic_write_text(run_dir / CONFIG, yaml.safe_dump(config, sort_keys=False))
    best_mean = -np.inf
    if resume:
        state = read_checkpoint_state(run_dir / LAST)
        model.set_parameters(str(run_dir / LAST), exact_match=True, device=device)
        model.num_timesteps = int(state["num_timesteps"])
        norm = find_vecnormalize(venv)
        if norm is not None and state.get("vecnormalize"):
            restore_vecnormalize(norm, state["vecnormalize"])
        if (run_dir / METRICS).is_file():
            best_mean = json.loads((run_dir / METRICS).read_text()).get("best", {}).get("mean", -np.inf)
    start_steps = int(model.num_timesteps)
    remaining = int(config["n_timesteps"]) - start_steps
    if remaining <= 0:
        raise UsageError(f"{run_dir} is already at {start_steps} steps >= the budget {config['n_timesteps']}; "
                         "pass a larger --steps to continue")

    callback = EvalCheckpointCallback(eval_env, run_dir, int(config["eval_freq"]), int(config["eval_episodes"]),
                                      best_mean)
    callbacks: list[BaseCallback] = [callback]
    if config.get("freeze_normalization_after") is not None:
        freeze = FreezeNormalization(config["freeze_normalization_after"],  # checks the values
                                     rewards=config.get("freeze_reward_normalization", True))
        freeze_if_due(venv, start_steps, freeze.after)  # a resumed run: before SB3 resets the env
        callbacks.insert(0, freeze)
    stop = None
    if config.get("stop_when_solved") is not None:
        stop = stop_callback(config["stop_when_solved"], lambda limit: make_venv(
            config, n_envs=1, seed=seed + STOP_EVAL_SEED_OFFSET, training=False, max_episode_steps=limit),
            int(config["eval_freq"]), verbose)
        callbacks.append(stop)
    t0 = time.perf_counter()
    try:
        with warnings.catch_warnings():
            warnings.filterwarnings("ignore", message=".*progress bar.*")
            model.learn(total_timesteps=remaining, callback=CallbackList(callbacks), progress_bar=progress_bar,
                        reset_num_timesteps=not resume, tb_log_name="run")
    except KeyboardInterrupt:
        save_last(model, run_dir)
        raise
    wall = time.perf_counter() - t0
    restored_from = getattr(stop, "restored_from", None)
    if callback.last_eval_at != model.num_timesteps or restored_from is not None:  # restored: not the weights evaluated
        callback.evaluate_and_save()
    else:
        save_last(model, run_dir)
    n_params = sum(p.numel() for p in model.policy.parameters() if p.requires_grad)
    metrics = {"env": config["env"], "algo": config["algo"], "policy": config["policy"]["class"],
               "num_timesteps": int(model.num_timesteps), "trainable_params": int(n_params),
               "last": callback.last, "best": callback.best,
               "stopped_when_solved_at": stop.stopped_at if stop is not None else None,
               "restored_best_from": restored_from,
               "wall_time_s": round(wall, 2), "steps_per_s": round((model.num_timesteps - start_steps) / wall, 1)}
    atomic_write_text(run_dir / METRICS, json.dumps(metrics, indent=2))
    venv.close(), eval_env.close()
    if isinstance(stop, StopWhenEvaluationSolved):
        stop.eval_env.close()
    return run_dir
