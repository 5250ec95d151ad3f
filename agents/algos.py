"""The SB3 algorithms a preset may name, and which action spaces each supports."""
from __future__ import annotations

import inspect
from dataclasses import dataclass

from gymnasium import spaces


@dataclass(frozen=True)
class AlgoSpec:
    """How to build one algorithm.

    :param module: module that defines the class
    :param cls_name: class name in that module
    :param recurrent: True if it takes a recurrent policy (the NCP actor-critic), False if it takes
        ``MlpPolicy`` with the NCP as features extractor
    :param action_spaces: action space types it supports
    """

    module: str
    cls_name: str
    recurrent: bool
    action_spaces: tuple[type[spaces.Space], ...]

    def load(self) -> type:
        """:return: the algorithm class (imported on first use)."""
        import importlib

        return getattr(importlib.import_module(self.module), self.cls_name)

    def hyperparam_names(self) -> list[str]:
        """:return: keyword arguments the constructor accepts, minus the ones the CLI sets itself."""
        reserved = {"self", "policy", "env", "policy_kwargs", "tensorboard_log", "verbose", "seed",
                    "device", "_init_setup_model"}
        return [p for p in inspect.signature(self.load().__init__).parameters if p not in reserved]


_DISCRETE = (spaces.Discrete, spaces.MultiDiscrete, spaces.MultiBinary)
ALGOS: dict[str, AlgoSpec] = {
    "RecurrentPPO": AlgoSpec("sb3_contrib", "RecurrentPPO", True, (spaces.Box, *_DISCRETE)),
    "PPO": AlgoSpec("stable_baselines3", "PPO", False, (spaces.Box, *_DISCRETE)),
    "A2C": AlgoSpec("stable_baselines3", "A2C", False, (spaces.Box, *_DISCRETE)),
    "SAC": AlgoSpec("stable_baselines3", "SAC", False, (spaces.Box,)),
    "TD3": AlgoSpec("stable_baselines3", "TD3", False, (spaces.Box,)),
    "DQN": AlgoSpec("stable_baselines3", "DQN", False, (spaces.Discrete,)),
}
CELLS = ("cfc", "ltc")
