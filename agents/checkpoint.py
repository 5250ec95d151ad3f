"""Checkpoints that survive a kill: atomic writes, and VecNormalize statistics without pickle.

A checkpoint is one SB3 model zip (``model.save`` format: parameters and optimizer state as
``.pth`` entries, loaded with ``torch.load(weights_only=True)`` through ``set_parameters``) plus an
extra ``ncp_state.json`` entry holding ``num_timesteps`` and the VecNormalize running statistics of
the same moment, so model and normalisation can never disagree. The zip is written to a temporary
file in the target directory, fsynced and renamed over the target (``os.replace``): a run killed at
any point leaves either the previous or the new checkpoint, never a partial one.
"""
from __future__ import annotations

import io
import json
import os
import tempfile
import zipfile
from pathlib import Path
from typing import Any

import numpy as np
from stable_baselines3.common.running_mean_std import RunningMeanStd
from stable_baselines3.common.vec_env import VecNormalize

from .errors import UsageError

STATE_ENTRY = "ncp_state.json"


def _umask() -> int:
    mask = os.umask(0)
    os.umask(mask)
    return mask


def atomic_write_bytes(path: str | os.PathLike, data: bytes) -> None:
    """Write ``data`` to ``path`` atomically (temp file in the same directory, fsync, ``os.replace``).

    :param path: destination file
    :param data: the full content
    """
    path = Path(path)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        os.chmod(tmp, 0o666 & ~_umask())  # mkstemp creates 0600; give the file the usual permissions
        with os.fdopen(fd, "wb") as f:
            f.write(data)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
    try:  # make the rename itself durable
        dir_fd = os.open(path.parent, os.O_RDONLY)
        try:
            os.fsync(dir_fd)
        finally:
            os.close(dir_fd)
    except OSError:  # pragma: no cover - directories cannot be fsynced on some platforms
        pass


def atomic_write_text(path: str | os.PathLike, text: str) -> None:
    """:func:`atomic_write_bytes` for UTF-8 text.

    :param path: destination file
    :param text: the full content
    """
    atomic_write_bytes(path, text.encode("utf-8"))


def _rms_to_dict(rms: RunningMeanStd) -> dict[str, Any]:
    return {"mean": np.asarray(rms.mean).tolist(), "var": np.asarray(rms.var).tolist(), "count": float(rms.count)}


def _rms_from_dict(d: dict[str, Any]) -> RunningMeanStd:
    mean = np.asarray(d["mean"], dtype=np.float64)
    rms = RunningMeanStd(shape=mean.shape)
    rms.mean, rms.var, rms.count = mean, np.asarray(d["var"], dtype=np.float64), float(d["count"])
    return rms


def vecnormalize_state(venv: VecNormalize) -> dict[str, Any]:
    """Running statistics and settings of a VecNormalize, as a JSON-able dict (no pickle).

    :param venv: the wrapper; ``obs_rms`` is a RunningMeanStd (mean/var of shape obs_shape) or a
        dict of them per observation key
    :return: ``{"obs_rms", "ret_rms", "settings"}``
    """
    obs = venv.obs_rms
    return {
        "obs_rms": {k: _rms_to_dict(v) for k, v in obs.items()} if isinstance(obs, dict) else _rms_to_dict(obs),
        "ret_rms": _rms_to_dict(venv.ret_rms),
        "settings": {"norm_obs": venv.norm_obs, "norm_reward": venv.norm_reward, "clip_obs": venv.clip_obs,
                     "clip_reward": venv.clip_reward, "gamma": venv.gamma, "epsilon": venv.epsilon,
                     "norm_obs_keys": venv.norm_obs_keys},
    }


def restore_vecnormalize(venv: VecNormalize, state: dict[str, Any]) -> None:
    """Load statistics written by :func:`vecnormalize_state` into ``venv`` (in place).

    :param venv: a VecNormalize over the same observation space
    :param state: the dict from :func:`vecnormalize_state`
    """
    obs = state["obs_rms"]
    if isinstance(venv.obs_rms, dict) != ("mean" not in obs):
        raise UsageError("saved VecNormalize statistics do not match this environment's observation space")
    if isinstance(venv.obs_rms, dict):
        venv.obs_rms = {k: _rms_from_dict(v) for k, v in obs.items()}
    else:
        rms = _rms_from_dict(obs)
        if rms.mean.shape != venv.obs_rms.mean.shape:
            raise UsageError(f"saved VecNormalize statistics have shape {rms.mean.shape} but this "
                             f"environment's observations have shape {venv.obs_rms.mean.shape}; use the training env")
        venv.obs_rms = rms
    venv.ret_rms = _rms_from_dict(state["ret_rms"])


def save_checkpoint(model: Any, path: str | os.PathLike, venv: VecNormalize | None) -> None:
    """Write the model, its ``num_timesteps`` and ``venv``'s statistics atomically to one zip.

    :param model: an SB3 algorithm instance
    :param path: destination ``.zip``
    :param venv: the training VecNormalize, or None when observations are not normalised
    """
    buf = io.BytesIO()
    model.save(buf)
    state = {"num_timesteps": int(model.num_timesteps),
             "vecnormalize": vecnormalize_state(venv) if venv is not None else None}
    with zipfile.ZipFile(buf, "a", compression=zipfile.ZIP_DEFLATED) as zf:
        zf.writestr(STATE_ENTRY, json.dumps(state))
    atomic_write_bytes(path, buf.getvalue())


def read_checkpoint_state(path: str | os.PathLike) -> dict[str, Any]:
    """Read the ``ncp_state.json`` entry of a checkpoint (JSON only; nothing is unpickled).

    :param path: a ``.zip`` written by :func:`save_checkpoint`
    :return: ``{"num_timesteps": int, "vecnormalize": dict | None}``
    """
    try:
        with zipfile.ZipFile(path) as zf:
            if STATE_ENTRY not in zf.namelist():
                raise UsageError(f"{path} was not written by `ncp train` (no {STATE_ENTRY}); "
                                 "pass a run directory or one of its model_*.zip files")
            return json.loads(zf.read(STATE_ENTRY))
    except zipfile.BadZipFile:
        raise UsageError(f"{path} is not a model zip (corrupt or not a checkpoint)") from None
