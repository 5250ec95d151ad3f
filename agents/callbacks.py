"""Training callbacks shared by ``ncp train`` and the comparison script."""
from __future__ import annotations

import numpy as np
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

    The return statistics (reward scaling) can keep updating while the observation statistics are
    frozen (``rewards=False``): the critic's targets then keep the scale they are learnt at while the
    episodes grow longer after the freeze, and only the policy's input stays put.

    :param after: env steps (summed over the training envs, i.e. ``num_timesteps``) after which the
        statistics are frozen. SB3 resets the env of a freshly built (or loaded) model before any callback
        runs, so a run resumed beyond ``after`` calls :func:`freeze_if_due` first to keep that reset's
        observations out of the statistics as well
    :param rewards: freeze the return statistics too (the default, VecNormalize's ``training=False``);
        False: only the observation statistics, the return variance keeps following the discounted
        returns exactly as VecNormalize computes it (one step later: after the step's reward is scaled)
    :raises UsageError: (at training start) when the training env has no VecNormalize
    """

    def __init__(self, after: int, rewards: bool = True) -> None:
        super().__init__()
        if isinstance(after, bool) or not isinstance(after, int) or after < 0:
            raise UsageError(f"freeze_normalization_after={after!r} must be a non-negative number of env steps")
        if not isinstance(rewards, bool):
            raise UsageError(f"freeze_reward_normalization={rewards!r} must be true or false")
        self.after = after
        self.rewards = rewards
        self.frozen_at: int | None = None
        self._norm: VecNormalize | None = None
        self._returns: np.ndarray | None = None  # discounted returns, while only observations are frozen

    def _init_callback(self) -> None:
        self._norm = find_vecnormalize(self.training_env)
        if self._norm is None:
            raise UsageError("freeze_normalization_after is set but the training env has no VecNormalize; "
                             "set normalize in the preset or drop freeze_normalization_after")

    def _on_training_start(self) -> None:
        self._maybe_freeze()

    def _on_step(self) -> bool:
        if self._returns is not None:
            self._update_return_statistics()
        self._maybe_freeze()
        return True

    def _maybe_freeze(self) -> None:
        norm = self._norm
        assert norm is not None
        if norm.training and freeze_if_due(norm, self.num_timesteps, self.after):
            self.frozen_at = int(self.num_timesteps)
        if not self.rewards and not norm.training and self._returns is None:
            # VecNormalize has accounted for this step's reward; from the next step on, this callback does
            self._returns = np.array(norm.returns, dtype=np.float64)

    def _update_return_statistics(self) -> None:
        """VecNormalize's ``_update_reward`` for the step just taken, and its reset of finished episodes."""
        norm = self._norm
        assert norm is not None and self._returns is not None
        self._returns = self._returns * norm.gamma + norm.get_original_reward()
        norm.ret_rms.update(self._returns)
        self._returns[np.asarray(self.locals["dones"], dtype=bool)] = 0.0


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
