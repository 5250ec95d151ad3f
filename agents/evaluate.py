"""``ncp evaluate``: mean ± std return of a trained model (deterministic actions by default)."""
from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np
from stable_baselines3.common.evaluation import evaluate_policy

from .errors import UsageError
from .runs import load_run


@dataclass
class EvalResult:
    """Returns of evaluation episodes.

    :param returns: undiscounted, unnormalised return per episode, shape (episodes,)
    :param lengths: steps per episode, shape (episodes,)
    :param env: env id evaluated on
    :param checkpoint: the model zip evaluated
    """

    returns: np.ndarray
    lengths: np.ndarray
    env: str
    checkpoint: Path

    @property
    def mean(self) -> float:
        """:return: mean return."""
        return float(self.returns.mean())

    @property
    def std(self) -> float:
        """:return: population standard deviation of the returns."""
        return float(self.returns.std())


def evaluate(path: str | Path, episodes: int = 10, env_id: str | None = None, stochastic: bool = False,
             seed: int = 12345, device: str = "cpu", which: str = "best") -> EvalResult:
    """Run ``episodes`` episodes of a trained model.

    :param path: run directory or model zip inside one
    :param episodes: number of episodes (>= 1)
    :param env_id: evaluate on this env instead of the training one (spaces must match)
    :param stochastic: sample actions instead of taking the most likely one
    :param seed: seed of the evaluation env
    :param device: torch device
    :param which: ``"best"`` or ``"last"`` checkpoint of a run directory
    :return: the returns and lengths
    """
    if episodes < 1:
        raise UsageError(f"--episodes must be >= 1, got {episodes}")
    run = load_run(path, env_id=env_id, seed=seed, device=device, which=which)
    returns, lengths = evaluate_policy(run.model, run.venv, n_eval_episodes=episodes, deterministic=not stochastic,
                                       return_episode_rewards=True, warn=False)
    run.venv.close()
    return EvalResult(np.asarray(returns, dtype=np.float64), np.asarray(lengths), run.config["env"], run.checkpoint)
