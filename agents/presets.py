"""Presets: one YAML per task (and cell), in RL Zoo's spirit, loaded and validated here.

A preset file holds::

    algo: RecurrentPPO            # one of agents.algos.ALGOS
    env: ncp/CartPoleNoVel-v1     # the task it was tuned for (null: generic fallback)
    n_envs: 8
    n_timesteps: 100000
    normalize: {norm_obs: true, norm_reward: true}   # VecNormalize kwargs, or false
    freeze_normalization_after: 80000   # env steps after which VecNormalize stops updating (null: never)
    freeze_reward_normalization: true   # false: that freeze leaves the return statistics updating
    stop_when_solved: {reward: 500, episodes: 20}   # end training once the last 20 training episodes each
                                  # returned >= 500 (null: always train the whole budget); with
                                  # on: evaluation, once 20 deterministic evaluation episodes (every
                                  # eval_freq steps, start states of their own) each did; there
                                  # restore_best: true keeps a run's best check and eval_freq: 5000
                                  # checks on a period of its own
    frame_stack: null             # n frames for NCPExtractor with non-recurrent algos
    hyperparams: {...}            # algorithm kwargs; "lin_1e-3" = linear schedule from 1e-3
    policy_kwargs: {...}          # NCP policy / extractor kwargs (cell, units, ...)
    eval_freq: 10000              # evaluate every this many env steps (total over all envs)
    eval_episodes: 10
"""
from __future__ import annotations

import copy
import inspect
from dataclasses import asdict, dataclass, field, fields
from importlib import resources
from pathlib import Path
from typing import Any

import yaml

from .algos import ALGOS, CELLS
from .errors import UsageError, unknown

DEFAULT_PRESET = "default"
STOP_ON = ("training", "evaluation")  # what stop_when_solved reads (its "on"; the first is the default)
EVALUATION_ONLY = {"restore_best": "a run never stopped keeps its best check",  # stop_when_solved keys of on: evaluation
                   "eval_freq": "env steps between checks",
                   "episode_steps": "the checks' episodes end at this many steps"}


@dataclass
class Preset:
    """A validated training recipe.

    :param name: preset name (file stem)
    :param algo: algorithm name, a key of ``ALGOS``
    :param env: Gymnasium id the preset is tuned for, or None for the generic fallback
    :param n_envs: number of parallel training environments
    :param n_timesteps: training budget in environment steps
    :param normalize: VecNormalize keyword arguments, or False for no normalisation
    :param freeze_normalization_after: env steps after which VecNormalize's statistics stop updating
        (still applied; :class:`agents.callbacks.FreezeNormalization`), or None to update them throughout
    :param freeze_reward_normalization: whether that freeze covers the return statistics (reward scaling)
        as well as the observation statistics; False: only the observations'
    :param stop_when_solved: ``{"reward": r, "episodes": n}``: training ends once the last ``n`` finished
        training episodes each returned at least ``r`` (:class:`agents.callbacks.StopWhenSolved`); with
        ``"on": "evaluation"``, once ``n`` deterministic evaluation episodes, run every ``eval_freq`` env
        steps on start states of their own, each did (:class:`agents.callbacks.StopWhenEvaluationSolved`);
        or None to always train the whole budget
    :param frame_stack: frames stacked for the NCPExtractor of non-recurrent algorithms, or None
    :param hyperparams: algorithm keyword arguments (schedules as ``lin_<float>``)
    :param policy_kwargs: NCP policy / extractor keyword arguments
    :param eval_freq: evaluate every this many environment steps
    :param eval_episodes: episodes per evaluation
    :param description: one line shown by ``ncp list``
    """

    name: str
    algo: str
    env: str | None = None
    n_envs: int = 1
    n_timesteps: int = 100_000
    normalize: dict[str, Any] | bool = False
    freeze_normalization_after: int | None = None
    freeze_reward_normalization: bool = True
    stop_when_solved: dict[str, Any] | None = None
    frame_stack: int | None = None
    hyperparams: dict[str, Any] = field(default_factory=dict)
    policy_kwargs: dict[str, Any] = field(default_factory=dict)
    eval_freq: int = 10_000
    eval_episodes: int = 10
    description: str = ""

    @property
    def cell(self) -> str:
        """:return: the cell named in ``policy_kwargs`` (``"cfc"`` when unset)."""
        return str(self.policy_kwargs.get("cell", "cfc"))

    def to_dict(self) -> dict[str, Any]:
        """:return: a YAML-able copy of every field."""
        return copy.deepcopy(asdict(self))

    @classmethod
    def from_dict(cls, data: dict[str, Any], name: str) -> "Preset":
        """Validate ``data`` and build a preset.

        :param data: the parsed YAML mapping
        :param name: name used in error messages
        :return: the preset
        :raises UsageError: on unknown keys, algorithms, cells, hyperparameters or bad values
        """
        if not isinstance(data, dict):
            raise UsageError(f"preset {name!r} must be a YAML mapping, got {type(data).__name__}")
        valid = [f.name for f in fields(cls) if f.name != "name"]
        for key in data:
            if key not in valid:
                raise unknown(f"key in preset {name!r}:", str(key), valid)
        if "algo" not in data:
            raise UsageError(f"preset {name!r} has no 'algo'; set one of: {', '.join(ALGOS)}")
        preset = cls(name=name, **copy.deepcopy(data))
        preset.validate()
        return preset

    def validate(self) -> None:
        """Check every field; raise a one-line :class:`UsageError` naming the field and what is valid."""
        where = f"preset {self.name!r}"
        if self.algo not in ALGOS:
            raise unknown(f"algo in {where}:", self.algo, ALGOS)
        for key in ("n_envs", "n_timesteps", "eval_freq", "eval_episodes"):
            value = getattr(self, key)
            if not isinstance(value, int) or isinstance(value, bool) or value < 1:
                raise UsageError(f"{where}: {key}={value!r} must be a positive integer")
        if self.frame_stack is not None and (not isinstance(self.frame_stack, int) or self.frame_stack < 1):
            raise UsageError(f"{where}: frame_stack={self.frame_stack!r} must be null or a positive integer")
        if self.frame_stack is not None and ALGOS[self.algo].recurrent:
            raise UsageError(f"{where}: frame_stack is for non-recurrent algorithms "
                             f"(the NCPExtractor); {self.algo} keeps its own state, remove frame_stack")
        if self.normalize is True:
            self.normalize = {}
        if isinstance(self.normalize, dict):
            from stable_baselines3.common.vec_env import VecNormalize

            ok = [p for p in inspect.signature(VecNormalize.__init__).parameters if p not in ("self", "venv")]
            for key in self.normalize:
                if key not in ok:
                    raise unknown(f"normalize key in {where}:", str(key), ok)
        elif self.normalize is not False:
            raise UsageError(f"{where}: normalize={self.normalize!r} must be false or a mapping of VecNormalize kwargs")
        freeze = self.freeze_normalization_after
        if freeze is not None:
            if isinstance(freeze, bool) or not isinstance(freeze, int) or freeze < 0:
                raise UsageError(f"{where}: freeze_normalization_after={freeze!r} must be null or a non-negative "
                                 "number of env steps")
            if self.normalize is False:
                raise UsageError(f"{where}: freeze_normalization_after={freeze} needs normalize (there are no "
                                 "VecNormalize statistics to freeze); set normalize or drop it")
        if not isinstance(self.freeze_reward_normalization, bool):
            raise UsageError(f"{where}: freeze_reward_normalization={self.freeze_reward_normalization!r} must be "
                             "true or false")
        if isinstance(self.stop_when_solved, dict) and True in self.stop_when_solved:
            # YAML 1.1 reads an unquoted `on:` key as the boolean true: take it as the "on" it was written as
            self.stop_when_solved = {("on" if key is True else key): value
                                     for key, value in self.stop_when_solved.items()}
        if self.stop_when_solved is not None:
            check_stop_when_solved(self.stop_when_solved, where)
        for key, value in (("hyperparams", self.hyperparams), ("policy_kwargs", self.policy_kwargs)):
            if not isinstance(value, dict):
                raise UsageError(f"{where}: {key} must be a mapping, got {value!r}")
        names = ALGOS[self.algo].hyperparam_names()
        for key in self.hyperparams:
            if key not in names:
                raise unknown(f"hyperparameter of {self.algo} in {where}:", str(key), names)
        if self.cell not in CELLS:
            raise unknown(f"cell in {where}:", self.cell, CELLS)


def check_stop_when_solved(value: Any, where: str = "stop_when_solved") -> None:
    """Check a ``stop_when_solved`` setting: a mapping ``{"reward": number, "episodes": positive int}``, with
    optionally ``"on": "training"`` (the default: the latest training episodes, :class:`StopWhenSolved`) or
    ``"evaluation"`` (a periodic deterministic evaluation of that many episodes,
    :class:`StopWhenEvaluationSolved`), and with ``"evaluation"`` optionally ``"restore_best": true|false``
    (a run the rule never ends keeps the weights of its best check) and ``"eval_freq": <env steps>`` (the
    checks' period, in place of the preset's ``eval_freq``).

    :param value: the setting
    :param where: what to name in the error (the preset)
    :raises UsageError: when it is not such a mapping
    """
    if not isinstance(value, dict) or not {"reward", "episodes"} <= set(value) <= {"reward", "episodes", "on",
                                                                                    *EVALUATION_ONLY}:
        raise UsageError(f"{where}: stop_when_solved={value!r} must be null or a mapping "
                         "{reward: <return>, episodes: <count>[, on: training|evaluation][, restore_best: true]"
                         "[, eval_freq: <env steps>][, episode_steps: <steps>]}, e.g. {reward: 500, episodes: 20}")
    on = value.get("on", STOP_ON[0])
    if on not in STOP_ON:
        raise UsageError(f"{where}: stop_when_solved on={on!r} must be one of {list(STOP_ON)}")
    if "restore_best" in value:
        if not isinstance(value["restore_best"], bool):
            raise UsageError(f"{where}: stop_when_solved restore_best={value['restore_best']!r} must be true or false")
    for key, what in (("eval_freq", "env steps between checks"),
                      ("episode_steps", "steps (the time limit of the checks' episodes)")):
        count = value.get(key, 1)
        if isinstance(count, bool) or not isinstance(count, int) or count < 1:
            raise UsageError(f"{where}: stop_when_solved {key}={count!r} must be a positive number of {what}")
    for key in EVALUATION_ONLY:
        if key in value and on != "evaluation":
            raise UsageError(f"{where}: stop_when_solved {key} is a setting of the evaluation checks "
                             f"({EVALUATION_ONLY[key]}), so it needs on: evaluation")
    from .callbacks import StopWhenSolved

    try:
        StopWhenSolved(value["reward"], value["episodes"])
    except UsageError as err:
        raise UsageError(f"{where}: {err}") from None


def preset_dir() -> Path:
    """:return: the folder of the bundled preset YAML files."""
    return Path(str(resources.files("agents") / "presets"))


def preset_names() -> list[str]:
    """:return: names of the bundled presets, sorted."""
    return sorted(p.stem for p in preset_dir().glob("*.yaml"))


def load_preset(name_or_path: str) -> Preset:
    """Load a bundled preset by name, or a YAML file by path.

    :param name_or_path: preset name (see :func:`preset_names`) or path to a ``.yaml`` file
    :return: the validated preset
    :raises UsageError: if it does not exist or is invalid
    """
    path = Path(name_or_path)
    if path.suffix in (".yaml", ".yml") and path.is_file():
        name = path.stem
    else:
        path = preset_dir() / f"{name_or_path}.yaml"
        name = name_or_path
        if not path.is_file():
            raise unknown("preset", name_or_path, preset_names(), "or a path to a .yaml file")
    try:
        data = yaml.safe_load(path.read_text())
    except yaml.YAMLError as err:
        raise UsageError(f"preset {name!r} is not valid YAML: {str(err).splitlines()[0]}") from None
    return Preset.from_dict(data, name)


def all_presets() -> list[Preset]:
    """:return: every bundled preset, loaded and validated."""
    return [load_preset(n) for n in preset_names()]


def select_preset(env_id: str, cell: str | None = None) -> Preset:
    """Choose the preset for an environment: one tuned for ``env_id`` (and ``cell``), else the default.

    Among presets for ``env_id``, a RecurrentPPO one whose cell matches wins; the cell is then
    overridden by the caller if the match was not exact.

    :param env_id: Gymnasium id
    :param cell: wanted cell (``"cfc"`` or ``"ltc"``) or None for any
    :return: the chosen preset
    """
    matches = [p for p in all_presets() if p.env == env_id]
    if not matches:
        return load_preset(DEFAULT_PRESET)

    def rank(p: Preset) -> tuple[int, int, str]:
        return (p.cell != (cell or "cfc"), not ALGOS[p.algo].recurrent, p.name)

    return min(matches, key=rank)
