"""stable-baselines3 integration: NCPs as RecurrentPPO policies and as SB3 features extractors.

- :class:`NCPActorCriticPolicy`: recurrent actor-critic policy for sb3-contrib's ``RecurrentPPO``;
  the actor's motor neurons are the action outputs.
- :class:`NCPExtractor`: a ``BaseFeaturesExtractor`` running an NCP over stacked observations, for
  PPO, A2C, SAC, TD3 and DQN.
"""
from .action_heads import MotorReadout, motor_count
from .extractor import NCPExtractor
from .networks import NCPNetwork
from .recurrent_policy import NCPActorCriticPolicy, NeuronState

__all__ = ["NCPActorCriticPolicy", "NCPExtractor", "NCPNetwork", "NeuronState", "MotorReadout", "motor_count"]
