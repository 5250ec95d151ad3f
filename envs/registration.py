"""The project's Gymnasium tasks, registered under the ``ncp/`` namespace (never clashing with RL Zoo).

``import envs`` registers every id of `TASKS` (idempotent: a second import or `register_envs()` call
neither warns nor fails). Each ``ncp/<Base>NoVel-v<N>`` id is the Gymnasium task ``<Base>-v<N>``
with its velocities hidden (`envs.masking.NO_VELOCITY_KEEP`) and the same ``max_episode_steps``;
each ``ncp/<Base>NoVelIrregular-v<N>`` id adds `envs.irregular.IrregularTimeStep` (1 to 4 frames per
agent step, elapsed time in frames under the Dict observation's ``"elapsed"`` key).

In the irregular tasks the original episode limit counts *frames* (simulated time, as in the base
task); the spec's ``max_episode_steps`` is the same number, a bound on agent steps that the frame
limit always reaches first. ``gym.make(id, max_episode_frames=...)`` changes the frame limit; the
wrapper's arguments (``min_frames``, ``max_frames``, ``seed``, ``time_key``, ``frame_dt``,
``in_observation``) can be passed to ``gym.make`` too.

The LunarLander tasks need the optional ``Box2D`` module (``pip install "ncp-policies[box2d]"``);
they are registered regardless and raise ``DependencyNotInstalled`` when made without it.

From a process that has not imported this package, ``gym.make("envs:ncp/CartPoleNoVel-v1")``
imports it first.
"""

from __future__ import annotations

import warnings
from collections.abc import Mapping
from dataclasses import dataclass
from types import MappingProxyType
from typing import Any

import gymnasium as gym
from gymnasium.envs.registration import load_env_creator
from gymnasium.error import DependencyNotInstalled
from gymnasium.wrappers import TimeLimit

from envs.irregular import IrregularTimeStep
from envs.masking import NO_VELOCITY_KEEP, MaskObservation

__all__ = [
    "NAMESPACE",
    "Task",
    "TASKS",
    "box2d_available",
    "register_envs",
    "make_env",
    "make_masked",
    "make_irregular",
]

NAMESPACE = "ncp"


@dataclass(frozen=True)
class Task:
    """One registered task.

    :param id: the registered id, ``ncp/...``
    :param base_id: the Gymnasium id it is built on
    :param keep: observation indices of the base task that remain visible
    :param description: one line for docs and the CLI
    :param irregular: whether agent steps last a random number of frames (`IrregularTimeStep`)
    :param needs_box2d: whether making it needs the optional ``Box2D`` module
    """

    id: str
    base_id: str
    keep: tuple[int, ...]
    description: str
    irregular: bool = False
    needs_box2d: bool = False


_SEEN = {
    "CartPole-v1": "cart position and pole angle (velocities hidden)",
    "Pendulum-v1": "cos and sin of the angle (angular velocity hidden)",
    "Acrobot-v1": "cos and sin of both joint angles (angular velocities hidden)",
    "MountainCar-v0": "car position (velocity hidden)",
    "MountainCarContinuous-v0": "car position (velocity hidden)",
    "LunarLander-v3": "position, angle and leg contacts (linear and angular velocities hidden)",
    "LunarLanderContinuous-v3": "position, angle and leg contacts (linear and angular velocities hidden)",
}
_IRREGULAR_BASES = ("CartPole-v1", "Pendulum-v1", "Acrobot-v1", "MountainCarContinuous-v0")
_BOX2D_BASES = frozenset({"LunarLander-v3", "LunarLanderContinuous-v3"})


def _task_id(base_id: str, suffix: str) -> str:
    name, version = base_id.rsplit("-v", 1)
    return f"{NAMESPACE}/{name}{suffix}-v{version}"


def _build_tasks() -> dict[str, Task]:
    tasks: dict[str, Task] = {}
    for base_id, seen in _SEEN.items():
        task = Task(
            id=_task_id(base_id, "NoVel"),
            base_id=base_id,
            keep=NO_VELOCITY_KEEP[base_id],
            description=f"{base_id}, observing only the {seen}",
            needs_box2d=base_id in _BOX2D_BASES,
        )
        tasks[task.id] = task
    for base_id in _IRREGULAR_BASES:
        task = Task(
            id=_task_id(base_id, "NoVelIrregular"),
            base_id=base_id,
            keep=NO_VELOCITY_KEEP[base_id],
            description=f"{base_id}, observing only the {_SEEN[base_id]}; each step lasts 1-4 frames, "
            'elapsed frames under the "elapsed" key',
            irregular=True,
            needs_box2d=base_id in _BOX2D_BASES,
        )
        tasks[task.id] = task
    return tasks


#: Registered id -> `Task`, in registration order (read-only).
TASKS: Mapping[str, Task] = MappingProxyType(_build_tasks())


def box2d_available() -> bool:
    """Whether the optional ``Box2D`` module (LunarLander tasks) imports.

    Box2D's SWIG bindings emit DeprecationWarnings on import, and the interpreter crashes
    (segmentation fault) when those are turned into errors (``-W error``); they are silenced here,
    and once imported the module is cached, so later imports by Gymnasium are safe.
    """
    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", message=r"builtin type .* has no __module__", category=DeprecationWarning)
        try:
            import Box2D  # noqa: F401
        except ImportError:
            return False
    return True


def _make_base(base_id: str, **kwargs: Any) -> gym.Env[Any, Any]:
    """The bare base environment (no TimeLimit / checker / order wrappers: ``gym.make`` adds those)."""
    if base_id in _BOX2D_BASES and not box2d_available():
        raise DependencyNotInstalled(
            f'{base_id} needs the Box2D module: pip install "ncp-policies[box2d]" (or pip install box2d)'
        )
    spec = gym.spec(base_id)
    creator = load_env_creator(spec.entry_point) if isinstance(spec.entry_point, str) else spec.entry_point
    assert creator is not None, f"{base_id} has no entry point"
    return creator(**{**spec.kwargs, **kwargs})


def make_masked(base_id: str, keep: tuple[int, ...], **kwargs: Any) -> gym.Env[Any, Any]:
    """Entry point of the ``ncp/*NoVel`` ids: the base environment seen through `MaskObservation`.

    :param base_id: Gymnasium id of the base task
    :param keep: observation indices to keep
    :param kwargs: passed to the base environment's constructor (e.g. ``render_mode``)
    :return: ``MaskObservation(base, keep)``
    """
    return MaskObservation(_make_base(base_id, **kwargs), keep)


def make_irregular(
    base_id: str,
    keep: tuple[int, ...],
    max_episode_frames: int | None = None,
    min_frames: int = 1,
    max_frames: int = 4,
    seed: int | None = None,
    time_key: str = "elapsed",
    frame_dt: float | None = 1.0,
    in_observation: bool = True,
    **kwargs: Any,
) -> gym.Env[Any, Any]:
    """Entry point of the ``ncp/*NoVelIrregular`` ids: masked base task, frame limit, irregular steps.

    :param base_id: Gymnasium id of the base task
    :param keep: observation indices to keep
    :param max_episode_frames: episode limit in frames; None = the base task's ``max_episode_steps``
    :param min_frames: see `IrregularTimeStep`
    :param max_frames: see `IrregularTimeStep`
    :param seed: see `IrregularTimeStep`
    :param time_key: see `IrregularTimeStep`
    :param frame_dt: see `IrregularTimeStep`; 1.0 here, so the elapsed time counts frames
    :param in_observation: see `IrregularTimeStep`
    :param kwargs: passed to the base environment's constructor (e.g. ``render_mode``)
    :return: ``IrregularTimeStep(MaskObservation(TimeLimit(base, max_episode_frames), keep), ...)``
    """
    env: gym.Env[Any, Any] = _make_base(base_id, **kwargs)
    limit = gym.spec(base_id).max_episode_steps if max_episode_frames is None else max_episode_frames
    if limit is not None:
        env = TimeLimit(env, max_episode_steps=limit)
    return IrregularTimeStep(
        MaskObservation(env, keep),
        min_frames=min_frames,
        max_frames=max_frames,
        seed=seed,
        time_key=time_key,
        frame_dt=frame_dt,
        in_observation=in_observation,
    )


def register_envs() -> None:
    """Register every id of `TASKS` with Gymnasium; ids already registered are left as they are."""
    for task in TASKS.values():
        if task.id in gym.registry:
            continue
        entry_point = make_irregular if task.irregular else make_masked
        gym.register(
            id=task.id,
            entry_point=f"{__name__}:{entry_point.__name__}",
            max_episode_steps=gym.spec(task.base_id).max_episode_steps,
            reward_threshold=gym.spec(task.base_id).reward_threshold,
            kwargs={"base_id": task.base_id, "keep": task.keep},
        )


def make_env(env_id: str, **kwargs: Any) -> gym.Env[Any, Any]:
    """``gym.make`` with the ``ncp/`` tasks registered and a clear error for an unknown ``ncp/`` id.

    :param env_id: a Gymnasium id, e.g. ``"ncp/CartPoleNoVel-v1"`` or ``"CartPole-v1"``
    :param kwargs: passed to ``gym.make`` (``render_mode``, ``max_episode_steps``, the wrapper's
        arguments for irregular tasks, ...)
    :return: the environment
    """
    register_envs()
    if env_id.startswith(f"{NAMESPACE}/") and env_id not in TASKS:
        raise ValueError(f"unknown env_id {env_id!r}; valid {NAMESPACE}/ ids: {', '.join(TASKS)}")
    return gym.make(env_id, **kwargs)
