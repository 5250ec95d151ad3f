"""Gymnasium tasks where memory and continuous time matter.

Importing this package registers the ``ncp/`` tasks of `TASKS` (idempotent):

- ``ncp/<Base>NoVel-v<N>``: the base task with its velocities hidden (`MaskObservation`, indices in
  `NO_VELOCITY_KEEP`), so the agent must remember;
- ``ncp/<Base>NoVelIrregular-v<N>``: the same with irregular time steps (`IrregularTimeStep`): a
  Dict observation ``{"observation": ..., "elapsed": (1,) frames}`` whose ``"elapsed"`` entry is the
  timespan of a continuous-time network.

``make_env(env_id, **kwargs)`` is ``gym.make`` with these registered and a clear error for an unknown
``ncp/`` id.
"""

from envs.irregular import IrregularTimeStep, env_frame_dt
from envs.masking import NO_VELOCITY_KEEP, MaskObservation, hide_velocities
from envs.registration import NAMESPACE, TASKS, Task, box2d_available, make_env, register_envs

register_envs()

__all__ = [
    "MaskObservation",
    "NO_VELOCITY_KEEP",
    "hide_velocities",
    "IrregularTimeStep",
    "env_frame_dt",
    "NAMESPACE",
    "Task",
    "box2d_available",
    "TASKS",
    "make_env",
    "register_envs",
]
