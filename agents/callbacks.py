"""Training callbacks shared by ``ncp train`` and the comparison script."""
from __future__ import annotations

from stable_baselines3.common.callbacks import BaseCallback
from stable_baselines3.common.vec_env import VecEnv, VecNormalize

from .build import find_vecnormalize
from .errors import UsageError


class FreezeNormalization(BaseCallback):
    """Stop updating the training env's VecNormalize statistics (observation mean / variance and the
    return variance) once ``after`` env steps have been taken; they are still applied afterwards.

    Why: the statistics follow the agent's own behaviour. On CartPoleNoVel a policy that has learnt to
    balance lets the cart drift to one side, the running mean and variance of the cart position follow
    it (variance ×4 between 50k and 100k steps), so the network's input keeps rescaling while the
    learning rate decays to zero, and policies that balanced at 90k steps let the cart leave the track
    at 100k. Frozen for the last fifth of training, the input stays put while the policy settles; frozen
    too early, before the policy has learnt, the statistics describe a policy that is gone
    (``docs/learning.md``).

    :param after: env steps (summed over the training envs, i.e. ``num_timesteps``) after which the
        statistics are frozen. SB3 resets the env of a freshly built (or loaded) model before any callback
        runs, so a run resumed beyond ``after`` calls :func:`freeze_if_due` first to keep that reset's
        observations out of the statistics as well
    :raises UsageError: (at training start) when the training env has no VecNormalize
    """

    def __init__(self, after: int) -> None:
        super().__init__()
        if isinstance(after, bool) or not isinstance(after, int) or after < 0:
            raise UsageError(f"freeze_normalization_after={after!r} must be a non-negative number of env steps")
        self.after = after
        self.frozen_at: int | None = None
        self._norm: VecNormalize | None = None

    def _init_callback(self) -> None:
        self._norm = find_vecnormalize(self.training_env)
        if self._norm is None:
            raise UsageError("freeze_normalization_after is set but the training env has no VecNormalize; "
                             "set normalize in the preset or drop freeze_normalization_after")

    def _on_training_start(self) -> None:
        self._maybe_freeze()

    def _on_step(self) -> bool:
        self._maybe_freeze()
        return True

    def _maybe_freeze(self) -> None:
        assert self._norm is not None
        if self._norm.training and freeze_if_due(self._norm, self.num_timesteps, self.after):
            self.frozen_at = int(self.num_timesteps)


def freeze_if_due(venv: VecEnv, num_timesteps: int, after: int | None) -> bool:
    """Freeze ``venv``'s VecNormalize statistics if ``num_timesteps`` has reached ``after``.

    :param venv: the training env (VecNormalize anywhere in its wrapper chain; none: nothing to do)
    :param num_timesteps: env steps taken so far
    :param after: the freezing step, or None (never)
    :return: whether the statistics are frozen now
    """
    norm = find_vecnormalize(venv)
    if norm is None or after is None or num_timesteps < after:
        return False
    norm.training = False
    return True
