"""Adapters: the one place that knows how a given kind of agent turns observations into actions.

The rest of :mod:`ncp_policies.audit` only talks to a :class:`PolicyAdapter`:

* :class:`NetworkAdapter` - a bare LTC / CfC layer plus an ``obs -> input`` and an
  ``outputs -> action`` function;
* :class:`RecurrentPPOAdapter` - an sb3-contrib ``RecurrentPPO`` model whose policy is
  ``NCPActorCriticPolicy`` (the actor's neuron state is ``h[..., :N_actor]`` of the actor state);
* :class:`NCPExtractorAdapter` - an SB3 PPO / A2C / DQN / SAC / TD3 model whose acting features
  extractor is ``ncp_policies.sb3.NCPExtractor`` (an NCP over a frame-stacked window, no memory
  between environment steps).

:func:`make_adapter` picks the right one.
"""
from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import gymnasium as gym
import numpy as np
import torch
from torch import nn

from ._network import (
    Clamp,
    SequenceResult,
    get_wiring,
    neuron_roles,
    run_network,
    state_neuron_ids,
    state_size,
    uses_mixed_memory,
)


@dataclass
class StepResult:
    """One environment step of an agent.

    :param action: the action sent to the environment, shaped like the action space
    :param state: the recurrent state to feed the next step (adapter-specific format)
    :param neurons: (N,) every neuron's state after the step
    :param cells: (N,) the LSTM cell state under mixed memory, else None
    """

    action: np.ndarray
    state: Any
    neurons: np.ndarray
    cells: np.ndarray | None


class PolicyAdapter(ABC):
    """Uniform view of an NCP agent for recording, attribution and ablation.

    Subclasses set ``network`` (the LTC / CfC layer whose neurons are audited) and
    ``action_space``.
    """

    network: nn.Module
    action_space: gym.Space

    @property
    def n_neurons(self) -> int:
        """N, the number of audited neurons."""
        return state_size(self.network)

    @property
    def wiring(self) -> Any | None:
        """The audited layer's wiring (None when unwired)."""
        return get_wiring(self.network)

    @property
    def neuron_ids(self) -> np.ndarray:
        """(N,) int64 wiring neuron id of each state position (a wired CfC orders its state layer by
        layer, so position != id there; identity for LTC / dense CfC)."""
        return np.asarray(state_neuron_ids(self.network, self.n_neurons), dtype=np.int64)

    @property
    def roles(self) -> list[str]:
        """Per state position ``"motor" | "command" | "inter"`` (the role of neuron ``neuron_ids[k]``)."""
        return neuron_roles(self.wiring, self.n_neurons, self.neuron_ids.tolist())

    @property
    def mixed_memory(self) -> bool:
        """Whether the layer carries an LSTM cell state (mixed memory)."""
        return uses_mixed_memory(self.network)

    @abstractmethod
    def initial_state(self) -> Any:
        """The recurrent state at the start of an episode."""

    @abstractmethod
    def act(self, obs: np.ndarray, state: Any, episode_start: bool, clamp: Clamp | None = None) -> StepResult:
        """Choose a (deterministic) action for one observation.

        :param obs: one observation, shaped like the observation space
        :param state: the state returned by the previous step or :meth:`initial_state`
        :param episode_start: True on an episode's first step
        :param clamp: None or (state positions (K,), values (K,)) neurons held at fixed values (ablation)
        """

    @abstractmethod
    def network_input(self, obs: torch.Tensor) -> torch.Tensor:
        """Map observations to the layer's input, differentiably.

        :param obs: (B, T, *obs_shape) float observations
        :return: (B, T, F) layer input
        """

    @abstractmethod
    def outputs_to_actions(self, outputs: torch.Tensor) -> torch.Tensor:
        """Deterministic actions from the layer's outputs (as the agent would send them).

        :param outputs: (B, T, O) layer outputs
        :return: (B, T, A) actions (A = 1 for discrete spaces)
        """

    def forward_sequence(self, obs: torch.Tensor, clamp: Clamp | None = None) -> SequenceResult:
        """Run the layer over whole observation sequences from the initial (zero) state.

        :param obs: (B, T, *obs_shape) float observations
        :param clamp: None or (state positions (K,), values (K,)) neurons held at fixed values
        """
        return run_network(self.network, self.network_input(obs), None, clamp)

    def describe(self) -> dict[str, Any]:
        """JSON-able facts about the agent for the run metadata."""
        return {
            "adapter": type(self).__name__,
            "network": type(self.network).__name__,
            "neurons": self.n_neurons,
            "mixed_memory": self.mixed_memory,
        }


def _flatten_obs(obs: torch.Tensor) -> torch.Tensor:
    return obs.reshape(*obs.shape[:2], -1).float()


def _default_output_to_action(action_space: gym.Space) -> Callable[[torch.Tensor], torch.Tensor]:
    if isinstance(action_space, gym.spaces.Discrete):
        return lambda y: y.argmax(-1, keepdim=True) + int(action_space.start)
    if isinstance(action_space, gym.spaces.Box):
        low = torch.as_tensor(action_space.low, dtype=torch.float32).reshape(-1)
        high = torch.as_tensor(action_space.high, dtype=torch.float32).reshape(-1)
        return lambda y: torch.maximum(torch.minimum(y, high), low)
    raise TypeError(
        f"action_space: no default output->action mapping for {action_space}; "
        "pass output_to_action=... (Box and Discrete are supported by default)"
    )


class NetworkAdapter(PolicyAdapter):
    """A bare LTC / CfC layer acting in an environment.

    :param network: the layer (our ``LTC`` / ``CfC`` or any ncps-compatible layer)
    :param action_space: the environment's action space
    :param obs_to_input: maps (B, T, *obs_shape) observations to (B, T, F) layer input;
        default: flatten to float
    :param output_to_action: maps (B, T, O) outputs to (B, T, A) actions; default: clip to a Box
        space's bounds, argmax for a Discrete space
    """

    def __init__(
        self,
        network: nn.Module,
        action_space: gym.Space,
        obs_to_input: Callable[[torch.Tensor], torch.Tensor] | None = None,
        output_to_action: Callable[[torch.Tensor], torch.Tensor] | None = None,
    ) -> None:
        self.network = network
        self.action_space = action_space
        self._obs_to_input = obs_to_input or _flatten_obs
        self._output_to_action = output_to_action or _default_output_to_action(action_space)

    def initial_state(self) -> Any:
        return None  # zeros, the layer's own default

    def network_input(self, obs: torch.Tensor) -> torch.Tensor:
        return self._obs_to_input(obs)

    def outputs_to_actions(self, outputs: torch.Tensor) -> torch.Tensor:
        return self._output_to_action(outputs)

    def act(self, obs: np.ndarray, state: Any, episode_start: bool, clamp: Clamp | None = None) -> StepResult:
        if episode_start:
            state = self.initial_state()
        x = self.network_input(torch.as_tensor(np.asarray(obs))[None, None])
        out = run_network(self.network, x, state, clamp)
        action = self.outputs_to_actions(out.outputs)[0, 0].detach().cpu().numpy()
        action = action.reshape(self.action_space.shape) if self.action_space.shape else action.reshape(())
        cells = out.cell_states[0, 0].cpu().numpy() if out.cell_states is not None else None
        return StepResult(action, out.hx, out.states[0, 0].cpu().numpy(), cells)


class RecurrentPPOAdapter(PolicyAdapter):
    """An sb3-contrib ``RecurrentPPO`` model whose policy is ``NCPActorCriticPolicy``.

    Unclamped steps go through ``model.predict`` (so the recorded states are exactly those the
    policy used: the first N_actor entries of the actor's hidden state). Clamped steps and whole
    sequences go through the policy's parts: ``extract_features`` -> actor layer (motor outputs)
    -> ``_get_action_dist_from_latent`` -> the distribution's mode, clipped to the action space.
    Policies that read timespans from a Dict observation key are not supported yet.

    :param model: the trained ``RecurrentPPO`` model
    """

    def __init__(self, model: Any) -> None:
        policy = model.policy
        if not hasattr(policy, "actor_network"):
            raise TypeError(
                f"model: its policy {type(policy).__name__} has no `actor_network`; "
                "RecurrentPPOAdapter needs ncp_policies.sb3.NCPActorCriticPolicy"
            )
        self.model = model
        self.policy = policy
        actor = policy.actor_network
        self.network = getattr(actor, "layer", actor)  # NCPNetwork wraps the LTC / CfC layer
        self.action_space = model.action_space
        self._n_actor = int(getattr(policy, "actor_neuron_count", state_size(self.network)))
        if getattr(policy, "timespan_key", None) is not None:
            raise ValueError(
                f"model: its policy reads timespans from observation key {policy.timespan_key!r}; "
                "auditing such policies is not supported yet (train with timespan_key=None)"
            )

    @property
    def n_neurons(self) -> int:
        return self._n_actor

    @property
    def roles(self) -> list[str]:
        roles = getattr(self.policy, "neuron_roles", None)
        if roles is not None:
            return list(roles)[: self._n_actor]  # already in state-position order
        return neuron_roles(self.wiring, self._n_actor, self.neuron_ids.tolist())

    def initial_state(self) -> Any:
        return None  # sb3's predict() starts from zeros when given None

    def network_input(self, obs: torch.Tensor) -> torch.Tensor:
        b, t = obs.shape[:2]
        flat = obs.reshape(b * t, *obs.shape[2:]).to(self.policy.device)
        features = self.policy.extract_features(flat)
        if isinstance(features, tuple):  # separate actor / critic extractors
            features = features[0]
        return features.reshape(b, t, -1)

    def outputs_to_actions(self, outputs: torch.Tensor) -> torch.Tensor:
        b, t = outputs.shape[:2]
        latent = outputs.reshape(b * t, -1)  # NCPActorCriticPolicy: the motor outputs are the actor latent
        if not hasattr(self.policy, "motor_readout"):
            latent = self.policy.mlp_extractor.forward_actor(latent)
        if getattr(self.policy, "use_sde", False) and hasattr(self.policy, "motor_readout"):
            # gSDE noise never changes the deterministic action (the mode is the mean): zero latent is exact
            sde = latent.new_zeros(len(latent), self.policy.actor_neuron_count)
            distribution = self.policy._get_action_dist_from_latent(latent, sde)
        else:
            distribution = self.policy._get_action_dist_from_latent(latent)
        actions = distribution.get_actions(deterministic=True)
        space = self.action_space
        if isinstance(space, gym.spaces.Box):
            if getattr(self.policy, "squash_output", False):
                actions = self.policy.unscale_action(actions)
            low = torch.as_tensor(space.low, dtype=actions.dtype).reshape(-1)
            high = torch.as_tensor(space.high, dtype=actions.dtype).reshape(-1)
            actions = torch.maximum(torch.minimum(actions, high), low)
        return actions.reshape(b, t, -1)

    def act(self, obs: np.ndarray, state: Any, episode_start: bool, clamp: Clamp | None = None) -> StepResult:
        n = self._n_actor
        if clamp is None:
            if episode_start:
                state = None
            action, state = self.model.predict(
                obs, state=state, episode_start=np.array([episode_start]), deterministic=True
            )
            h = np.asarray(state[0])[0, 0]
            cells = np.asarray(state[1])[0, 0, :n] if self.mixed_memory else None
            return StepResult(np.asarray(action), state, h[:n].copy(), cells)
        # Clamped: step the actor layer ourselves, carrying its own state.
        if episode_start or not isinstance(state, _ManualState):
            state = _ManualState(None)
        with torch.no_grad():
            x = self.network_input(torch.as_tensor(np.asarray(obs), dtype=torch.float32)[None, None])
            out = run_network(self.network, x, state.hx, clamp)
            action = self.outputs_to_actions(out.outputs)[0, 0].cpu().numpy()
        space = self.action_space
        action = action.reshape(space.shape) if space.shape else action.reshape(())
        cells = out.cell_states[0, 0, :n].cpu().numpy() if out.cell_states is not None else None
        return StepResult(action, _ManualState(out.hx), out.states[0, 0, :n].cpu().numpy(), cells)

    def describe(self) -> dict[str, Any]:
        info = super().describe()
        info["algorithm"] = type(self.model).__name__
        info["policy"] = type(self.policy).__name__
        return info


@dataclass
class _ManualState:
    hx: Any


class NCPExtractorAdapter(PolicyAdapter):
    """An SB3 PPO / A2C / DQN / SAC / TD3 model whose acting features extractor is ``NCPExtractor``.

    Such a model is memoryless between environment steps: for every observation (a stacked window
    of ``n_stack`` steps, oldest first) the extractor runs its NCP over the window from a zero state.
    The audited activity of one environment step is therefore every neuron's state after the
    window's *newest* step (``layer.run(window).states[:, -1]``), and :class:`StepResult` ``.state``
    is always None. A clamp (ablation) holds neurons at fixed values after every step of the window.

    :meth:`act` calls ``model.predict(obs, deterministic=True)`` once, with the extractor's forward
    temporarily replaced by the same computation run through ``layer.run(..., clamp=...)``, so the
    recorded neuron states are exactly those the action was computed from. :meth:`forward_sequence`
    treats each (B, T) observation independently (no state carried across T), its ``outputs`` are the
    extractor's features (B, T, features_dim) and :meth:`outputs_to_actions` applies the model's own
    heads to them (actor MLP + distribution mode, Q-argmax, SAC / TD3 actor), then rescales / clips like
    ``predict``. Attribution therefore works per step: a step's motor state depends only on its own
    window, and the attributed features are the flattened window (``n_stack * F`` values, oldest step
    first). Only the actor's extractor is audited (a separate critic extractor is ignored).

    :param model: an SB3 model (PPO, A2C, DQN, SAC, TD3) trained with
        ``features_extractor_class=NCPExtractor``
    """

    def __init__(self, model: Any) -> None:
        policy = getattr(model, "policy", None)
        found = _acting_ncp_extractor(policy)
        if found is None:
            raise TypeError(
                f"model: {type(model).__name__} with policy {type(policy).__name__} does not act through an "
                "ncp_policies.sb3.NCPExtractor; train it with policy_kwargs=dict(features_extractor_class=NCPExtractor)"
            )
        self.model = model
        self.policy = policy
        self.extractor, self._head = found
        self.network = self.extractor.layer
        self.action_space = model.action_space

    def initial_state(self) -> Any:
        return None  # memoryless: every step starts its window from zeros

    def network_input(self, obs: torch.Tensor) -> torch.Tensor:
        """Flatten each step's stacked window.

        :param obs: (B, T, *obs_shape) stacked observations, obs_shape = (n_stack * F,) or (n_stack, F)
        :return: (B, T, n_stack * F) float windows, oldest step first (the layer reads them as n_stack steps)
        """
        return obs.reshape(*obs.shape[:2], -1).float()

    def _run_windows(self, windows: torch.Tensor, clamp: Clamp | None) -> tuple[torch.Tensor, SequenceResult]:
        """Run the layer over (M, n_stack * F) windows; return the extractor's features (M, D) and the run."""
        ext = self.extractor
        x = windows.reshape(windows.shape[0], ext.n_stack, ext.step_features).float()
        out = run_network(self.network, x, None, clamp)
        features = out.outputs[:, -1] if ext.output == "motor" else out.states[:, -1]
        return features, out

    def forward_sequence(self, obs: torch.Tensor, clamp: Clamp | None = None) -> SequenceResult:
        """Run the extractor's layer on every step's window independently (no state across T).

        :param obs: (B, T, *obs_shape) float stacked observations
        :param clamp: None or (state positions (K,), values (K,)) neurons held at fixed values
        :return: outputs (B, T, features_dim) the extractor's features; states / cell_states (B, T, N)
            after each window's newest step; hx None
        """
        b, t = obs.shape[:2]
        windows = self.network_input(obs).reshape(b * t, -1).to(self.policy.device)
        features, out = self._run_windows(windows, clamp)
        cells = out.cell_states[:, -1].reshape(b, t, -1) if out.cell_states is not None else None
        return SequenceResult(features.reshape(b, t, -1), out.states[:, -1].reshape(b, t, -1), cells, None)

    def outputs_to_actions(self, outputs: torch.Tensor) -> torch.Tensor:
        b, t = outputs.shape[:2]
        actions = self._head(outputs.reshape(b * t, -1))
        space = self.action_space
        if isinstance(space, gym.spaces.Box):
            low = torch.as_tensor(space.low, dtype=actions.dtype, device=actions.device).reshape(-1)
            high = torch.as_tensor(space.high, dtype=actions.dtype, device=actions.device).reshape(-1)
            if getattr(self.policy, "squash_output", False):
                actions = low + 0.5 * (actions + 1.0) * (high - low)  # BasePolicy.unscale_action
            else:
                actions = torch.maximum(torch.minimum(actions, high), low)
        return actions.reshape(b, t, -1)

    def act(self, obs: np.ndarray, state: Any, episode_start: bool, clamp: Clamp | None = None) -> StepResult:
        ext = self.extractor
        captured: dict[str, SequenceResult] = {}

        def forward(observations: torch.Tensor) -> torch.Tensor:
            features, out = self._run_windows(observations.reshape(observations.shape[0], -1), clamp)
            captured["out"] = out
            return features

        previous = ext.__dict__.get("forward")
        ext.forward = forward  # instance attribute: nn.Module.__call__ dispatches to it
        try:
            action, _ = self.model.predict(np.asarray(obs), deterministic=True)
        finally:
            if previous is None:
                del ext.forward
            else:
                ext.forward = previous
        out = captured["out"]
        cells = out.cell_states[0, -1].cpu().numpy() if out.cell_states is not None else None
        return StepResult(np.asarray(action), None, out.states[0, -1].cpu().numpy(), cells)

    def describe(self) -> dict[str, Any]:
        info = super().describe()
        info.update(
            algorithm=type(self.model).__name__,
            policy=type(self.policy).__name__,
            n_stack=int(self.extractor.n_stack),
            extractor_output=self.extractor.output,
        )
        return info


def _acting_ncp_extractor(policy: Any) -> tuple[nn.Module, Callable[[torch.Tensor], torch.Tensor]] | None:
    """The ``NCPExtractor`` that feeds a policy's actions and its ``(M, D) features -> (M, ...) actions``
    head (before rescaling / clipping), or None when the policy does not act through one."""
    from ncp_policies.sb3.extractor import NCPExtractor  # lazy: keeps the audit import light

    if policy is None:
        return None
    actor = getattr(policy, "actor", None)
    if isinstance(actor, nn.Module) and isinstance(getattr(actor, "features_extractor", None), NCPExtractor):
        if hasattr(actor, "latent_pi"):  # SAC
            return actor.features_extractor, lambda f: _sac_mode(actor, f)
        return actor.features_extractor, lambda f: actor.mu(f)  # TD3: tanh-squashed actions
    q_net = getattr(policy, "q_net", None)
    if isinstance(q_net, nn.Module) and isinstance(getattr(q_net, "features_extractor", None), NCPExtractor):
        return q_net.features_extractor, lambda f: q_net.q_net(f).argmax(dim=1)  # DQN
    extractor = getattr(policy, "pi_features_extractor", None) or getattr(policy, "features_extractor", None)
    if isinstance(extractor, NCPExtractor) and hasattr(policy, "mlp_extractor"):
        if hasattr(policy, "lstm_actor"):
            raise TypeError(
                f"model: policy {type(policy).__name__} puts an LSTM between NCPExtractor and its heads; "
                "auditing it is not supported (use PPO / A2C with NCPExtractor, "
                "or RecurrentPPO with NCPActorCriticPolicy)"
            )

        def head(features: torch.Tensor) -> torch.Tensor:  # PPO / A2C
            latent = policy.mlp_extractor.forward_actor(features)
            return policy._get_action_dist_from_latent(latent).get_actions(deterministic=True)

        return extractor, head
    return None


def _sac_mode(actor: nn.Module, features: torch.Tensor) -> torch.Tensor:
    """SAC's deterministic (squashed) action from features, as ``Actor.forward(deterministic=True)``."""
    from stable_baselines3.sac.policies import LOG_STD_MAX, LOG_STD_MIN

    latent = actor.latent_pi(features)
    mean = actor.mu(latent)
    if actor.use_sde:
        return actor.action_dist.actions_from_params(mean, actor.log_std, deterministic=True, latent_sde=latent)
    log_std = torch.clamp(actor.log_std(latent), LOG_STD_MIN, LOG_STD_MAX)
    return actor.action_dist.actions_from_params(mean, log_std, deterministic=True)


def make_adapter(
    agent: Any,
    action_space: gym.Space | None = None,
    obs_to_input: Callable[[torch.Tensor], torch.Tensor] | None = None,
    output_to_action: Callable[[torch.Tensor], torch.Tensor] | None = None,
) -> PolicyAdapter:
    """Wrap an agent in the adapter that fits it.

    :param agent: a :class:`PolicyAdapter` (returned as is), an SB3 ``RecurrentPPO`` model with
        ``NCPActorCriticPolicy``, an SB3 PPO / A2C / DQN / SAC / TD3 model with ``NCPExtractor``,
        or a bare LTC / CfC layer
    :param action_space: the environment's action space (bare layers only)
    :param obs_to_input: bare layers only: (B, T, *obs_shape) -> (B, T, F); default flatten
    :param output_to_action: bare layers only: (B, T, O) -> (B, T, A); default clip / argmax
    """
    if isinstance(agent, PolicyAdapter):
        return agent
    policy = getattr(agent, "policy", None)
    if policy is not None and hasattr(policy, "actor_network"):
        return RecurrentPPOAdapter(agent)
    if policy is not None and _acting_ncp_extractor(policy) is not None:
        return NCPExtractorAdapter(agent)
    if policy is not None:
        raise TypeError(
            f"agent: {type(agent).__name__} with policy {type(policy).__name__} has no NCP actor; "
            "train it with ncp_policies.sb3.NCPActorCriticPolicy (RecurrentPPO), with "
            "features_extractor_class=ncp_policies.sb3.NCPExtractor, or pass the bare layer"
        )
    if isinstance(agent, nn.Module):
        if action_space is None:
            raise ValueError("action_space: required to act with a bare LTC / CfC layer; pass env.action_space")
        return NetworkAdapter(agent, action_space, obs_to_input, output_to_action)
    raise TypeError(
        f"agent: expected an SB3 model with an NCP policy, an LTC / CfC layer or a PolicyAdapter, "
        f"got {type(agent).__name__}"
    )
