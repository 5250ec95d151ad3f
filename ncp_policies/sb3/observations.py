"""Observation handling for NCP policies: which features extractor, and which key carries time.

An irregular-time-step environment reports, in a Dict observation, how much time passed since the last
step (key ``"elapsed"`` by default). That value is the network's *timespan* (the ODE integration
interval), not a feature: it is removed from the space the features extractor sees and read separately.

Note: ``VecNormalize`` normalizes every Dict key by default, which would turn elapsed times into
z-scores; exclude the key (``VecNormalize(env, norm_obs_keys=[...all other keys...])``).
"""
from __future__ import annotations

from typing import Optional, Union

import numpy as np
import torch
from gymnasium import spaces
from stable_baselines3.common.preprocessing import is_image_space
from stable_baselines3.common.torch_layers import BaseFeaturesExtractor, CombinedExtractor, FlattenExtractor, NatureCNN

DEFAULT_TIMESPAN_KEY = "elapsed"


def resolve_timespan_key(observation_space: spaces.Space, timespan_key: Optional[str]) -> Optional[str]:
    """The Dict key whose value is fed as timespans, or None.

    :param observation_space: the policy's observation space.
    :param timespan_key: ``"auto"`` (``"elapsed"`` if the Dict space has it), a key name, or None (no key).
    :return: the key to use, or None.
    """
    if timespan_key is None:
        return None
    if timespan_key == "auto":
        if isinstance(observation_space, spaces.Dict) and DEFAULT_TIMESPAN_KEY in observation_space.spaces:
            timespan_key = DEFAULT_TIMESPAN_KEY
        else:
            return None
    if not isinstance(observation_space, spaces.Dict) or timespan_key not in observation_space.spaces:
        keys = list(observation_space.spaces) if isinstance(observation_space, spaces.Dict) else None
        raise ValueError(
            f"timespan_key={timespan_key!r} is not a key of the observation space "
            f"({'keys: ' + repr(keys) if keys is not None else type(observation_space).__name__ + ', not a Dict'}); "
            "pass timespan_key=None to run with unit time steps."
        )
    sub = observation_space.spaces[timespan_key]
    if not isinstance(sub, spaces.Box) or int(np.prod(sub.shape)) != 1:
        raise ValueError(
            f"timespan_key={timespan_key!r} must name a Box space with one value per step, got {sub!r}."
        )
    if len(observation_space.spaces) == 1:
        raise ValueError(
            f"the observation space has no key besides timespan_key={timespan_key!r}: nothing to feed the network."
        )
    return timespan_key


def feature_space(observation_space: spaces.Space, timespan_key: Optional[str]) -> spaces.Space:
    """The observation space the features extractor sees: the Dict without the timespan key.

    :param observation_space: the policy's observation space.
    :param timespan_key: key removed from a Dict space, or None.
    :return: the reduced space (the same object when nothing is removed).
    """
    if timespan_key is None:
        return observation_space
    assert isinstance(observation_space, spaces.Dict)
    return spaces.Dict({k: v for k, v in observation_space.spaces.items() if k != timespan_key})


def default_extractor_class(space: spaces.Space) -> type[BaseFeaturesExtractor]:
    """SB3's usual front end for a space: CombinedExtractor for Dict, NatureCNN for images, else Flatten.

    :param space: the space the extractor sees.
    :return: a features extractor class.
    """
    if isinstance(space, spaces.Dict):
        return CombinedExtractor
    if is_image_space(space, check_channels=False):
        return NatureCNN
    return FlattenExtractor


def timespans_from_obs(
    obs: Union[torch.Tensor, dict[str, torch.Tensor]], timespan_key: Optional[str]
) -> Optional[torch.Tensor]:
    """Read the timespans of a batch of observations.

    :param obs: a batch of observations; a dict of (B, ...) tensors when ``timespan_key`` is set.
    :param timespan_key: the key, or None.
    :return: (B,) float timespans, or None.
    """
    if timespan_key is None:
        return None
    assert isinstance(obs, dict)
    value = obs[timespan_key]
    return value.reshape(value.shape[0]).float()
