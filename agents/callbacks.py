"""Training callbacks shared by ``ncp train`` and the comparison script."""
from __future__ import annotations

import copy
from typing import Any, Callable

import numpy as np
from stable_baselines3.common.callbacks import BaseCallback
from stable_baselines3.common.evaluation import evaluate_policy
from stable_baselines3.common.vec_env import VecEnv, VecNormalize, sync_envs_normalization

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


class StopWhenSolved(BaseCallback):
    """End training once the last ``episodes`` finished training episodes each returned at least ``reward``.

    Why: a policy that has solved a task can still lose it in the remaining updates. On CartPoleNoVel,
    CfC and LTC policies that balanced for tens of thousands of steps ended their budget with the cart
    off the track (``docs/learning.md``); stopping once the agent's own training episodes show the task
    solved keeps the policy that solved it. The rule reads the training episodes only (Monitor's
    undiscounted, unnormalised returns, SB3's ``ep_info_buffer``), never an evaluation: it costs no
    extra env steps, and training that never meets it runs its whole budget unchanged.

    :param reward: the return every one of the last ``episodes`` episodes must reach (e.g. 500 on CartPole,
        the return of an episode that lasted to the time limit)
    :param episodes: how many of the latest finished episodes must reach it; at most the algorithm's
        ``stats_window_size`` (SB3's default 100), the number of episodes it keeps
    :param verbose: 1: print a line when training stops
    :raises UsageError: on invalid values, or (at training start) when the training env has no
        ``Monitor`` (its episodes are not recorded) or keeps fewer episodes than ``episodes``
    """

    def __init__(self, reward: float, episodes: int, verbose: int = 0) -> None:
        super().__init__(verbose)
        if isinstance(reward, bool) or not isinstance(reward, (int, float)) or not np.isfinite(reward):
            raise UsageError(f"stop_when_solved reward={reward!r} must be a finite number")
        if isinstance(episodes, bool) or not isinstance(episodes, int) or episodes < 1:
            raise UsageError(f"stop_when_solved episodes={episodes!r} must be a positive number of episodes")
        self.reward = float(reward)
        self.episodes = episodes
        self.stopped_at: int | None = None

    def _init_callback(self) -> None:
        from stable_baselines3.common.monitor import Monitor

        if not self.training_env.env_is_wrapped(Monitor)[0]:
            raise UsageError("stop_when_solved reads the training episodes' returns, but the training env has "
                             "no Monitor wrapper; wrap each env in stable_baselines3's Monitor")
        kept = self.model.ep_info_buffer.maxlen
        if kept is not None and kept < self.episodes:
            raise UsageError(f"stop_when_solved episodes={self.episodes} exceeds the {kept} episodes the algorithm "
                             f"keeps (stats_window_size); lower episodes or raise stats_window_size")

    def _on_step(self) -> bool:
        if self.solved():
            self.stopped_at = int(self.num_timesteps)
            if self.verbose:
                print(f"Stopping at {self.num_timesteps} steps: the last {self.episodes} training episodes "
                      f"each returned >= {self.reward:g}")
            return False
        return True

    def solved(self) -> bool:
        """:return: whether the last ``episodes`` finished training episodes each returned at least ``reward``."""
        buffer = self.model.ep_info_buffer
        if buffer is None or len(buffer) < self.episodes:
            return False
        return all(info["r"] >= self.reward for info in list(buffer)[-self.episodes:])


class StopWhenEvaluationSolved(BaseCallback):
    """End training once a periodic deterministic evaluation has each of its ``episodes`` return at least
    ``reward``.

    The evaluation counterpart of :class:`StopWhenSolved`, for policies whose greedy actions solve a task
    before their sampled ones do: on CartPoleNoVel an LTC actor often evaluated at 500 for several
    checkpoints while its training episodes, with sampled actions, fell short, and then lost it
    (``docs/learning.md``). Every ``eval_freq`` env steps it runs ``episodes`` episodes on ``eval_env``
    with deterministic actions (VecNormalize statistics copied from the training env first). The
    evaluation env is seeded once, when it is made, so each check sees new start states; give it a seed
    of its own, not that of the evaluation a run is finally scored on, or the score would be chosen on
    the episodes it reports. Evaluation episodes are not training steps: ``num_timesteps`` does not count
    them.

    With ``restore_best``, a run the rule never ends keeps the best it reached: each check whose mean return
    is at least the best so far keeps a copy of the policy's weights and the training env's VecNormalize
    statistics, and at the end of training the final weights are evaluated too and replaced by the kept
    ones when those did strictly better (``restored_from`` then names the check's env step).

    :param eval_env: the env to evaluate on (its VecNormalize, if any, frozen: ``training=False``)
    :param reward: the return each evaluation episode must reach
    :param episodes: evaluation episodes per check
    :param eval_freq: check every this many env steps (counted over all training envs)
    :param restore_best: when the rule never ends training, end it with the weights and statistics of the best
        check (the final weights included)
    :param verbose: 1: print a line when training stops or weights are restored
    :raises UsageError: on invalid values
    """

    def __init__(self, eval_env: VecEnv, reward: float, episodes: int, eval_freq: int, restore_best: bool = False,
                 verbose: int = 0) -> None:
        super().__init__(verbose)
        StopWhenSolved(reward, episodes)  # the same checks of reward and episodes
        if isinstance(eval_freq, bool) or not isinstance(eval_freq, int) or eval_freq < 1:
            raise UsageError(f"stop_when_solved on evaluation needs a positive eval_freq (env steps between "
                             f"checks), got {eval_freq!r}")
        if not isinstance(restore_best, bool):
            raise UsageError(f"stop_when_solved restore_best={restore_best!r} must be true or false")
        self.eval_env, self.reward, self.episodes, self.eval_freq = eval_env, float(reward), episodes, eval_freq
        self.restore_best = restore_best
        self.next_check = eval_freq
        self.stopped_at: int | None = None
        self.restored_from: int | None = None
        self.last_returns: list[float] = []
        self.best_mean = -np.inf
        self._best: tuple[int, dict[str, Any], dict[str, Any]] | None = None  # (step, policy weights, statistics)

    def _evaluate(self) -> list[float]:
        sync_envs_normalization(self.training_env, self.eval_env)
        returns, _ = evaluate_policy(self.model, self.eval_env, n_eval_episodes=self.episodes, deterministic=True,
                                     return_episode_rewards=True, warn=False)
        self.last_returns = [float(r) for r in returns]
        return self.last_returns

    def _on_step(self) -> bool:
        if self.num_timesteps < self.next_check:
            return True
        while self.next_check <= self.num_timesteps:
            self.next_check += self.eval_freq
        returns = self._evaluate()
        if min(returns) >= self.reward:
            self.stopped_at = int(self.num_timesteps)
            if self.verbose:
                print(f"Stopping at {self.num_timesteps} steps: {self.episodes} evaluation episodes each returned "
                      f">= {self.reward:g}")
            return False
        if self.restore_best and float(np.mean(returns)) >= self.best_mean:  # a tie goes to the later check
            self.best_mean = float(np.mean(returns))
            self._best = (int(self.num_timesteps), _clone(self.model.policy.state_dict()),
                          _normalization_state(self.training_env))
        return True

    def _on_training_end(self) -> None:
        if not self.restore_best or self.stopped_at is not None or self._best is None:
            return
        final_mean = float(np.mean(self._evaluate()))
        if self.best_mean <= final_mean:
            return
        step, weights, statistics = self._best
        self.model.policy.load_state_dict(weights)
        _set_normalization_state(self.training_env, statistics)
        self.restored_from = step
        if self.verbose:
            print(f"Restored the weights of the check at {step} steps (mean evaluation return {self.best_mean:g}, "
                  f"the final weights {final_mean:g})")


def _clone(state: dict[str, Any]) -> dict[str, Any]:
    """:return: a copy of a ``state_dict`` that later updates of the module leave alone."""
    return {name: tensor.detach().clone() for name, tensor in state.items()}


def _normalization_state(venv: VecEnv) -> dict[str, Any]:
    """:return: copies of a VecNormalize's running statistics (empty when ``venv`` has none)."""
    norm = find_vecnormalize(venv)
    return {} if norm is None else {"obs_rms": copy.deepcopy(norm.obs_rms), "ret_rms": copy.deepcopy(norm.ret_rms)}


def _set_normalization_state(venv: VecEnv, state: dict[str, Any]) -> None:
    """Put back statistics taken by :func:`_normalization_state`."""
    norm = find_vecnormalize(venv)
    if norm is not None and state:
        norm.obs_rms, norm.ret_rms = copy.deepcopy(state["obs_rms"]), copy.deepcopy(state["ret_rms"])


def stop_callback(rule: dict[str, Any], make_eval_env: Callable[[int | None], VecEnv], eval_freq: int,
                  verbose: int = 0) -> StopWhenSolved | StopWhenEvaluationSolved:
    """Build the callback of a ``stop_when_solved`` rule (``agents.presets.check_stop_when_solved``).

    :param rule: ``{"reward", "episodes"}`` and optionally ``"on"``: ``"training"`` (default) or ``"evaluation"``,
        and with ``"evaluation"`` optionally ``"restore_best"`` (:class:`StopWhenEvaluationSolved`),
        ``"eval_freq"`` (env steps between its checks, in place of the ``eval_freq`` argument) and
        ``"episode_steps"`` (the checks' episodes end at this many steps instead of the env's time limit;
        ``"reward"`` is then judged on those longer episodes)
    :param make_eval_env: called only for ``on: evaluation``, with the rule's ``episode_steps`` (None: the env's
        own time limit): the env to evaluate on, seeded apart from any other evaluation of the run
    :param eval_freq: env steps between evaluations (``on: evaluation``) when the rule names none of its own
    :param verbose: 1: print a line when training stops
    :return: :class:`StopWhenSolved` or :class:`StopWhenEvaluationSolved`
    """
    kwargs = {k: v for k, v in rule.items() if k not in ("on", "eval_freq", "episode_steps")}
    if rule.get("on", "training") == "evaluation":
        return StopWhenEvaluationSolved(make_eval_env(rule.get("episode_steps")),
                                        eval_freq=rule.get("eval_freq", eval_freq), verbose=verbose, **kwargs)
    return StopWhenSolved(verbose=verbose, **kwargs)
