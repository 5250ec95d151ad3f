"""Build what a run needs from its resolved config: vectorised envs and the SB3 model.

The network defaults to the NCP: RecurrentPPO gets ``ncp_policies.sb3.NCPActorCriticPolicy``
(an AutoNCP-wired CfC / LTC actor whose motor neurons are the actions, and a recurrent critic);
other algorithms get ``MlpPolicy`` with ``ncp_policies.sb3.NCPExtractor`` as features extractor
over ``frame_stack`` stacked observations. The policy actually used is recorded in the run's
config (``policy``) so that loading rebuilds exactly the same network.
"""
from __future__ import annotations

import importlib
import inspect
import warnings
from collections.abc import Callable
from typing import Any

import gymnasium as gym
from gymnasium import spaces
from stable_baselines3.common.env_util import make_vec_env
from stable_baselines3.common.vec_env import DummyVecEnv, VecEnv, VecFrameStack, VecNormalize

from .algos import ALGOS, CELLS
from .errors import UsageError, unknown
from .schedules import parse_schedule

NCP_POLICY = "ncp_policies.sb3.NCPActorCriticPolicy"
NCP_EXTRACTOR = "ncp_policies.sb3.NCPExtractor"
# Names a config may use for classes: resolved from this table only (configs never name arbitrary code).
_CLASSES = {
    NCP_POLICY: ("ncp_policies.sb3", "NCPActorCriticPolicy"),
    NCP_EXTRACTOR: ("ncp_policies.sb3", "NCPExtractor"),
}


def _import_class(path: str) -> type | None:
    module, name = _CLASSES[path]
    try:
        return getattr(importlib.import_module(module), name)
    except (ImportError, AttributeError):
        return None


def _envs_module() -> Any | None:
    try:
        return importlib.import_module("envs")
    except ImportError:  # pragma: no cover - the envs package ships with this project
        return None


def ncp_env_ids() -> list[str]:
    """:return: the project's registered ``ncp/`` task ids."""
    mod = _envs_module()
    return list(getattr(mod, "TASKS", {})) if mod is not None else []


def check_env_id(env_id: str) -> None:
    """Raise a one-line :class:`UsageError` listing valid ids if ``env_id`` is not registered.

    :param env_id: Gymnasium id, e.g. ``ncp/CartPoleNoVel-v1`` or ``CartPole-v1``
    """
    _envs_module()
    if env_id not in gym.registry:
        raise unknown("env id", env_id, ncp_env_ids(), "or any registered Gymnasium id (see `ncp list`)")


def make_single_env(env_id: str, **kwargs: Any) -> gym.Env:
    """Make one environment, turning a missing optional dependency into a :class:`UsageError`.

    :param env_id: Gymnasium id
    :param kwargs: passed to ``gym.make`` (e.g. ``render_mode``)
    :return: the environment
    """
    check_env_id(env_id)
    try:
        mod = _envs_module()
        return mod.make_env(env_id, **kwargs) if mod is not None else gym.make(env_id, **kwargs)
    except gym.error.DependencyNotInstalled as err:
        raise UsageError(f"env {env_id!r} needs an optional dependency: {str(err).splitlines()[0]}") from None


def make_venv(config: dict[str, Any], n_envs: int, seed: int, training: bool,
              render_mode: str | None = None, max_episode_steps: int | None = None) -> VecEnv:
    """Vectorised env as the config prescribes: Monitor → DummyVecEnv → VecFrameStack → VecNormalize.

    :param config: resolved run config (``env``, ``normalize``, ``frame_stack``, ``hyperparams``)
    :param n_envs: number of copies
    :param seed: seed of the first copy (copy i gets seed + i)
    :param training: False freezes VecNormalize statistics and leaves rewards unnormalised (evaluation)
    :param render_mode: passed to every copy, e.g. ``"rgb_array"`` for recording
    :param max_episode_steps: every copy's time limit in place of the env's own (``gym.make``'s), or None
    :return: the vectorised env
    """
    env_id = config["env"]
    kwargs: dict[str, Any] = {"render_mode": render_mode} if render_mode else {}
    if max_episode_steps is not None:
        kwargs["max_episode_steps"] = int(max_episode_steps)
    make_single_env(env_id, **kwargs).close()  # fail early, with a one-line message
    venv: VecEnv = make_vec_env(lambda **kw: make_single_env(env_id, **kw), n_envs=n_envs, seed=seed,
                                env_kwargs=kwargs, vec_env_cls=DummyVecEnv)
    if config.get("frame_stack"):
        venv = VecFrameStack(venv, n_stack=int(config["frame_stack"]))
    norm = config.get("normalize")
    if norm is not False and norm is not None:
        norm = dict(norm)
        norm.setdefault("gamma", float(config.get("hyperparams", {}).get("gamma", 0.99)))
        if isinstance(venv.observation_space, spaces.Dict) and "norm_obs_keys" not in norm:
            # irregular-time tasks: normalise the observation, never the elapsed time
            norm["norm_obs_keys"] = [k for k in venv.observation_space.spaces if k != "elapsed"]
        if not training:
            norm["norm_reward"] = False
        venv = VecNormalize(venv, training=training, **norm)
    return venv


def find_vecnormalize(venv: VecEnv) -> VecNormalize | None:
    """:return: the VecNormalize in ``venv``'s wrapper chain, or None.

    :param venv: a vectorised env
    """
    while True:
        if isinstance(venv, VecNormalize):
            return venv
        if not hasattr(venv, "venv"):
            return None
        venv = venv.venv


def resolve_policy(config: dict[str, Any], seed: int, observation_space: spaces.Space) -> dict[str, Any]:
    """Decide the policy class and kwargs for a config (done once, at the start of training).

    :param config: resolved run config (``algo``, ``policy_kwargs``, ``frame_stack``)
    :param seed: run seed, given to the NCP wiring when the policy takes a ``seed``
    :param observation_space: the training env's observation space (Dict → multi-input policies)
    :return: ``{"class": name, "kwargs": dict, "extractor": name | None, "extractor_kwargs": dict}``
    """
    spec = ALGOS[config["algo"]]
    pkw = dict(config.get("policy_kwargs") or {})
    cell = pkw.get("cell", "cfc")
    if cell not in CELLS:
        raise unknown("cell", str(cell), CELLS)
    obs_is_dict = isinstance(observation_space, spaces.Dict)
    if spec.recurrent:
        cls = _import_class(NCP_POLICY)
        if cls is None:
            warnings.warn(f"{NCP_POLICY} is not available; training with sb3-contrib's LSTM policy instead")
            lstm_kwargs = {"lstm_hidden_size": 64, "enable_critic_lstm": True, "ortho_init": False,
                           "net_arch": {"pi": [64], "vf": [64]}}  # RL Zoo's, less the ReLU (not YAML-able)
            return {"class": "MultiInputLstmPolicy" if obs_is_dict else "MlpLstmPolicy", "kwargs": lstm_kwargs,
                    "extractor": None, "extractor_kwargs": {}}
        params = inspect.signature(cls.__init__).parameters
        if "seed" in params and "seed" not in pkw:
            pkw["seed"] = seed
        return {"class": NCP_POLICY, "kwargs": pkw, "extractor": None, "extractor_kwargs": {}}
    policy_kw = {k: pkw.pop(k) for k in ("net_arch", "activation_fn", "ortho_init") if k in pkw}
    ext = _import_class(NCP_EXTRACTOR)
    base = "MultiInputPolicy" if obs_is_dict else "MlpPolicy"
    if ext is None:
        warnings.warn(f"{NCP_EXTRACTOR} is not available; training with a plain MLP on the stacked frames")
        return {"class": base, "kwargs": policy_kw, "extractor": None, "extractor_kwargs": {}}
    params = inspect.signature(ext.__init__).parameters
    if config.get("frame_stack") and "n_stack" in params:
        pkw.setdefault("n_stack", int(config["frame_stack"]))
    if "seed" in params and "seed" not in pkw:
        pkw["seed"] = seed
    return {"class": base, "kwargs": policy_kw, "extractor": NCP_EXTRACTOR, "extractor_kwargs": pkw}


def _policy_args(policy: dict[str, Any]) -> tuple[Any, dict[str, Any]]:
    name = policy["class"]
    if name in _CLASSES:
        cls = _import_class(name)
        if cls is None:
            raise UsageError(f"this run was trained with {name}, which cannot be imported here; "
                             "install the matching ncp-policies version")
        name = cls
    kwargs = dict(policy.get("kwargs") or {})
    if policy.get("extractor"):
        ext = _import_class(policy["extractor"])
        if ext is None:
            raise UsageError(f"this run was trained with {policy['extractor']}, which cannot be imported here")
        kwargs["features_extractor_class"] = ext
        kwargs["features_extractor_kwargs"] = dict(policy.get("extractor_kwargs") or {})
    return name, kwargs


def check_spaces(algo: str, venv: VecEnv, env_id: str) -> None:
    """Raise a one-line :class:`UsageError` if ``algo`` cannot act in ``venv``'s action space.

    :param algo: algorithm name
    :param venv: the env
    :param env_id: its id, for the message
    """
    spec = ALGOS[algo]
    if not isinstance(venv.action_space, spec.action_spaces):
        ok = [a for a, s in ALGOS.items() if isinstance(venv.action_space, s.action_spaces)]
        raise UsageError(f"{algo} cannot act in {env_id}'s action space {venv.action_space}; "
                         f"algorithms for it: {', '.join(ok)}")


def build_model(config: dict[str, Any], venv: VecEnv, device: str, tensorboard_log: str | None = None,
                verbose: int = 0) -> Any:
    """Instantiate the SB3 algorithm of ``config`` on ``venv``.

    :param config: resolved run config, including the ``policy`` entry from :func:`resolve_policy`
    :param venv: the env it trains or evaluates on
    :param device: ``"cpu"``, ``"cuda"`` or ``"auto"``
    :param tensorboard_log: TensorBoard folder, or None
    :param verbose: SB3 verbosity
    :return: the algorithm instance (fresh weights; load a checkpoint with ``set_parameters``)
    """
    check_spaces(config["algo"], venv, config["env"])
    cls = ALGOS[config["algo"]].load()
    hyper: dict[str, Any] = {k: parse_schedule(k, v) for k, v in (config.get("hyperparams") or {}).items()}
    policy, policy_kwargs = _policy_args(config["policy"])
    try:
        return cls(policy, venv, policy_kwargs=policy_kwargs, tensorboard_log=tensorboard_log, verbose=verbose,
                   seed=config["seed"], device=device, **hyper)
    except (TypeError, ValueError, AssertionError) as err:
        msg = " ".join(str(err).split())
        raise UsageError(f"cannot build {config['algo']} on {config['env']}: {msg}") from None
