"""``NCPExtractor``: an NCP over a window of stacked observations, as an SB3 features extractor.

For algorithms without recurrent state (PPO, A2C, SAC, TD3, DQN) memory comes from frame stacking:
the extractor reshapes the stacked window to (n_stack, F), runs the NCP over it from a zero state and
returns the neuron outputs of the last step. ::

    from stable_baselines3 import SAC
    from stable_baselines3.common.vec_env import VecFrameStack
    from ncp_policies.sb3 import NCPExtractor

    env = VecFrameStack(vec_env, n_stack=4)                          # observations (4 * F,)
    model = SAC("MlpPolicy", env, policy_kwargs=dict(
        features_extractor_class=NCPExtractor,
        features_extractor_kwargs=dict(n_stack=4, units=16)))

Both stacking layouts are read the same way, oldest step first: ``VecFrameStack`` concatenates along
the last axis, (n_stack * F,); gymnasium's ``FrameStackObservation`` gives (n_stack, F).
"""
from __future__ import annotations

from typing import Optional, Sequence

import numpy as np
import torch
from gymnasium import spaces
from stable_baselines3.common.torch_layers import BaseFeaturesExtractor

from .networks import CELLS, build_layer
from .wiring_spec import WiringSpec, resolve_wiring

OUTPUTS = ("all", "motor")


class NCPExtractor(BaseFeaturesExtractor):
    """Run an NCP over stacked observations and return its last step's neuron outputs.

    ``features_dim`` is the number of neurons (``output="all"``, the default: every neuron's state after
    the newest step, motor neurons included) or of motor neurons (``output="motor"``: only the network's
    outputs). The policy's heads (SB3's ``net_arch`` MLPs) read these features. Measured on CartPole-v1
    with PPO: the 16 neuron states are learned from in 5k steps, the 8 bounded motor outputs of a
    16-neuron NCP not in 60k (a 3-command-neuron bottleneck).

    :param observation_space: Box of shape (n_stack * F,) (VecFrameStack) or (n_stack, F) (FrameStackObservation).
    :param n_stack: number of stacked steps; None = the first axis of a 2-D space, 1 for a 1-D space.
    :param cell: ``"cfc"`` or ``"ltc"``.
    :param units: neurons of the default wiring ``AutoNCP(units, motors)``.
    :param motors: motor neurons of the default wiring (its output size with ``output="motor"``).
    :param wiring: an explicit wiring instead (Wiring object, ``to_config()`` dict or simple spec).
    :param sparsity_level: sparsity of the default wiring.
    :param seed: seed of the default wiring.
    :param output: ``"all"`` (every neuron's state) or ``"motor"`` (motor neuron outputs).
    :param mixed_memory: give the cell an LSTM memory cell.
    :param ode_unfolds: LTC solver steps per time step.
    :param cfc_mode: CfC mode, ``"default"``, ``"pure"`` or ``"no_gate"``.
    :param init_ranges: LTC initialisation ranges ``{name: (min, max)}`` overriding ncps' (``cell="ltc"`` only).
    """

    def __init__(
        self,
        observation_space: spaces.Box,
        n_stack: Optional[int] = None,
        cell: str = "cfc",
        units: int = 16,
        motors: int = 4,
        wiring: WiringSpec = None,
        sparsity_level: float = 0.5,
        seed: int = 22222,
        output: str = "all",
        mixed_memory: bool = False,
        ode_unfolds: int = 6,
        cfc_mode: str = "default",
        init_ranges: Optional[dict[str, Sequence[float]]] = None,
    ) -> None:
        if cell not in CELLS:
            raise ValueError(f"cell must be one of {list(CELLS)}, got {cell!r}.")
        if output not in OUTPUTS:
            raise ValueError(f"output must be one of {list(OUTPUTS)}, got {output!r}.")
        self.n_stack, self.step_features = _window_shape(observation_space, n_stack)
        resolved = resolve_wiring(wiring, units=units, motors=motors, sparsity_level=sparsity_level, seed=seed)
        features_dim = resolved.output_dim if output == "motor" else resolved.units
        super().__init__(observation_space, features_dim)
        self.output = output
        self.layer = build_layer(
            cell, self.step_features, resolved, mixed_memory=mixed_memory, ode_unfolds=ode_unfolds,
            cfc_mode=cfc_mode, init_ranges=init_ranges,
        )

    def forward(self, observations: torch.Tensor) -> torch.Tensor:
        """Run the window and return the last step's outputs.

        :param observations: (B, n_stack * F) or (B, n_stack, F) stacked observations, oldest first.
        :return: (B, features_dim) motor outputs or all neuron states after the newest step.
        """
        x = observations.reshape(observations.shape[0], self.n_stack, self.step_features).float()
        out = self.layer.run(x)
        return out.outputs[:, -1] if self.output == "motor" else out.states[:, -1]


def _window_shape(observation_space: spaces.Space, n_stack: Optional[int]) -> tuple[int, int]:
    """(n_stack, F) of a stacked observation space, with errors that say which layout was expected."""
    if not isinstance(observation_space, spaces.Box) or len(observation_space.shape) not in (1, 2):
        raise ValueError(
            f"NCPExtractor needs a Box observation space of shape (n_stack * F,) or (n_stack, F), got "
            f"{observation_space!r}; for images or Dict observations use NCPActorCriticPolicy with RecurrentPPO."
        )
    shape = observation_space.shape
    if n_stack is None:
        n_stack = shape[0] if len(shape) == 2 else 1
    if not isinstance(n_stack, (int, np.integer)) or n_stack < 1:
        raise ValueError(f"n_stack must be a positive int, got {n_stack!r}.")
    if len(shape) == 2:
        if shape[0] != n_stack:
            raise ValueError(
                f"observation shape {shape} holds {shape[0]} stacked steps (FrameStackObservation layout) but "
                f"n_stack={n_stack}; pass n_stack={shape[0]}."
            )
        return int(n_stack), int(shape[1])
    if shape[0] % n_stack != 0:
        raise ValueError(
            f"observation shape {shape} cannot be split into n_stack={n_stack} steps (VecFrameStack stacks along "
            f"the last axis, giving n_stack * F values); pass the n_stack given to VecFrameStack."
        )
    return int(n_stack), int(shape[0] // n_stack)
