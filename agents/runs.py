"""Run directories: their layout, and loading a trained model back (no pickle) for evaluation.

Layout written by ``ncp train``::

    RUN_DIR/config.yaml        resolved preset + command-line overrides + the policy actually used
    RUN_DIR/model_last.zip     last checkpoint (SB3 zip + ncp_state.json: timesteps, VecNormalize stats)
    RUN_DIR/model_best.zip     checkpoint with the best evaluation so far
    RUN_DIR/vecnormalize.json  VecNormalize statistics of model_last.zip, readable without Python
    RUN_DIR/tb/                TensorBoard logs
    RUN_DIR/evaluations.npz    timesteps (E,), results (E, episodes), ep_lengths (E, episodes)
    RUN_DIR/metrics.json       last / best evaluation, timesteps, wall time, steps per second
"""
from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml
from gymnasium import spaces
from stable_baselines3.common.vec_env import VecEnv

from .build import build_model, find_vecnormalize, make_single_env, make_venv
from .checkpoint import read_checkpoint_state, restore_vecnormalize
from .errors import UsageError

CONFIG = "config.yaml"
LAST = "model_last.zip"
BEST = "model_best.zip"
VECNORM = "vecnormalize.json"
EVALUATIONS = "evaluations.npz"
METRICS = "metrics.json"
TB = "tb"


@dataclass
class LoadedRun:
    """A trained model ready to act.

    :param model: the SB3 algorithm with the checkpoint's weights
    :param venv: the env it acts in (VecNormalize frozen, rewards not normalised)
    :param config: the run's resolved config (``env`` replaced if another env was asked for)
    :param run_dir: the run directory
    :param checkpoint: the model zip that was loaded
    :param num_timesteps: environment steps the model was trained for
    """

    model: Any
    venv: VecEnv
    config: dict[str, Any]
    run_dir: Path
    checkpoint: Path
    num_timesteps: int


def read_config(run_dir: Path) -> dict[str, Any]:
    """:return: the run's ``config.yaml`` (safe YAML).

    :param run_dir: the run directory
    """
    path = run_dir / CONFIG
    if not path.is_file():
        raise UsageError(f"{run_dir} has no {CONFIG}; pass a directory written by `ncp train` or a model zip inside one")
    return yaml.safe_load(path.read_text())


def resolve_checkpoint(path: str | Path, which: str = "best") -> tuple[Path, Path]:
    """Find the run directory and model zip for ``RUN_DIR`` or ``MODEL.zip``.

    :param path: a run directory or a ``.zip`` inside one
    :param which: for a directory, ``"best"`` (falls back to last) or ``"last"``
    :return: ``(run_dir, checkpoint)``
    """
    path = Path(path)
    if path.is_dir():
        names = [BEST, LAST] if which == "best" else [LAST]
        for name in names:
            if (path / name).is_file():
                return path, path / name
        raise UsageError(f"{path} holds no {' or '.join(names)}; is it a run directory written by `ncp train`?")
    if path.is_file() and path.suffix == ".zip":
        return path.parent, path
    raise UsageError(f"{path} is neither a run directory nor a model .zip")


def _same_spaces(a: spaces.Space, b: spaces.Space) -> bool:
    if type(a) is not type(b):
        return False
    if isinstance(a, spaces.Dict):
        return a.spaces.keys() == b.spaces.keys() and all(_same_spaces(a[k], b[k]) for k in a.spaces)
    if isinstance(a, spaces.Discrete):
        return a.n == b.n
    return a.shape == b.shape


def load_run(path: str | Path, env_id: str | None = None, n_envs: int = 1, seed: int = 12345,
             device: str = "cpu", render_mode: str | None = None, which: str = "best") -> LoadedRun:
    """Rebuild a run's model from its config and load a checkpoint's weights (``weights_only`` torch load).

    :param path: run directory or model zip inside one
    :param env_id: act in this env instead of the training one (spaces must match)
    :param n_envs: number of env copies
    :param seed: seed of the env copies
    :param device: torch device
    :param render_mode: e.g. ``"rgb_array"`` to record
    :param which: ``"best"`` or ``"last"`` checkpoint of a run directory
    :return: the loaded run
    """
    run_dir, ckpt = resolve_checkpoint(path, which)
    config = read_config(run_dir)
    if env_id is not None and env_id != config["env"]:
        trained = make_single_env(config["env"])
        other = make_single_env(env_id)
        for what in ("observation_space", "action_space"):
            if not _same_spaces(getattr(trained, what), getattr(other, what)):
                raise UsageError(f"{env_id}'s {what.split('_')[0]} space {getattr(other, what)} does not match "
                                 f"{getattr(trained, what)} of {config['env']}, the env this model was trained on")
        trained.close(), other.close()
        config = {**config, "env": env_id}
    state = read_checkpoint_state(ckpt)
    venv = make_venv(config, n_envs=n_envs, seed=seed, training=False, render_mode=render_mode)
    vecnorm = find_vecnormalize(venv)
    if vecnorm is not None:
        if state.get("vecnormalize") is None:
            raise UsageError(f"{ckpt} holds no VecNormalize statistics but its config normalises observations")
        restore_vecnormalize(vecnorm, state["vecnormalize"])
    import warnings

    with warnings.catch_warnings():  # rollout-size warnings are irrelevant when only acting
        warnings.simplefilter("ignore")
        model = build_model(config, venv, device=device)
    model.set_parameters(str(ckpt), exact_match=True, device=device)
    model.num_timesteps = int(state["num_timesteps"])
    return LoadedRun(model, venv, config, run_dir, ckpt, int(state["num_timesteps"]))
