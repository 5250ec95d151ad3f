"""``NCPActorCriticPolicy``: a Neural Circuit Policy as the recurrent policy of sb3-contrib's RecurrentPPO.

The actor is one NCP (CfC or LTC) whose **motor neurons are the action outputs** (logits or Gaussian
means, through at most a per-motor scale and bias). The critic is, by default, a second NCP of its own
(it needs memory) whose neuron states feed a linear value head; ``critic="mlp"`` gives a memoryless
MLP critic instead. With ``use_sde=True`` (Box actions) exploration is gSDE: the noise is a linear map of
the actor's full neuron state, resampled by ``reset_noise`` (every ``sde_sample_freq`` steps in RecurrentPPO).

Usage::

    from sb3_contrib import RecurrentPPO
    from ncp_policies.sb3 import NCPActorCriticPolicy

    model = RecurrentPPO(NCPActorCriticPolicy, env, policy_kwargs=dict(cell="cfc", units=16))
    model.learn(100_000)
    action, state = model.predict(obs, state=state, episode_start=episode_start)
    activity = model.policy.split_state(state).neurons      # (n_envs, N): every actor neuron after the step

The recurrent state keeps RecurrentPPO's layout: ``RNNStates(pi=(h, c), vf=(h, c))``, each tensor
``(1, n_envs, H)`` with H = max(actor neurons, critic neurons). ``h[0, :, :N_actor]`` of the actor state
is the actor's full neuron state after the step, so ``model.predict``'s returned state *is* the
activity of every actor neuron (in the order of :attr:`NCPActorCriticPolicy.neuron_roles`).
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Optional, Sequence, Union

import numpy as np
import torch
from gymnasium import spaces
from sb3_contrib.common.recurrent.policies import RecurrentActorCriticPolicy
from sb3_contrib.common.recurrent.type_aliases import RNNStates
from stable_baselines3.common.distributions import (
    DiagGaussianDistribution,
    Distribution,
    StateDependentNoiseDistribution,
)
from stable_baselines3.common.policies import ActorCriticPolicy, BasePolicy
from stable_baselines3.common.torch_layers import BaseFeaturesExtractor
from stable_baselines3.common.type_aliases import PyTorchObs, Schedule
from torch import nn

from ncp_policies.cells.ltc_cell import check_init_ranges

from .action_heads import MotorReadout, check_action_space, check_motor_count, describe_space, motor_count
from .lr_scales import install_lr_scales, param_groups
from .networks import CELLS, NCPNetwork, RecurrentState, build_layer, install_weight_constraints
from .observations import default_extractor_class, feature_space, resolve_timespan_key, timespans_from_obs
from .wiring_spec import WiringSpec, neuron_roles, resolve_wiring, wiring_to_data

CRITICS = ("ncp", "mlp")
CRITIC_READOUTS = ("all", "motor")


def _default_optimizer_kwargs(
    optimizer_class: type[torch.optim.Optimizer], optimizer_kwargs: Optional[dict[str, Any]]
) -> dict[str, Any]:
    """The optimizer keyword arguments of :class:`NCPActorCriticPolicy`.

    SB3's default (``eps=1e-5`` for Adam when no keyword arguments are given), plus ``foreach=True`` for
    Adam and AdamW unless ``foreach`` or ``fused`` is given: torch uses the multi-tensor implementation
    by default on CUDA only; on the CPU it loops over the parameters one by one, which dominates an
    update of a policy with some fifty small parameter tensors. Both give bitwise the same updates.

    :param optimizer_class: the optimizer class.
    :param optimizer_kwargs: the user's keyword arguments (not modified), or None.
    :return: the keyword arguments to build the optimizer with (a new dict).
    """
    if optimizer_kwargs is None:
        kwargs: dict[str, Any] = {"eps": 1e-5} if optimizer_class == torch.optim.Adam else {}
    else:
        kwargs = dict(optimizer_kwargs)
    if optimizer_class in (torch.optim.Adam, torch.optim.AdamW) and "foreach" not in kwargs and "fused" not in kwargs:
        kwargs["foreach"] = True
    return kwargs


@dataclass(frozen=True)
class NeuronState:
    """The actor's neuron state read from a recurrent state tuple.

    :param neurons: (n_envs, N) every actor neuron's state after the step (index = :attr:`neuron_roles` order).
    :param cell: (n_envs, N) the mixed-memory cell state, or None without mixed memory.
    """

    neurons: np.ndarray
    cell: Optional[np.ndarray]


class NCPActorCriticPolicy(RecurrentActorCriticPolicy):
    """Recurrent actor-critic policy whose actor is a Neural Circuit Policy (for ``RecurrentPPO``).

    :param observation_space: observation space (Box vectors, images, or Dict).
    :param action_space: Box, Discrete or MultiDiscrete action space (Box only with ``use_sde``).
    :param lr_schedule: learning-rate schedule (``lr_schedule(1)`` is the initial rate).
    :param cell: ``"cfc"`` (closed-form continuous-time, fast) or ``"ltc"`` (liquid time-constant ODE).
    :param units: neurons of the default actor wiring ``AutoNCP(units, motors)``.
    :param wiring: the actor wiring instead of the default: a Wiring object, ``wiring.to_config()``, or a
        simple spec such as ``{"class": "AutoNCP", "units": 32}``; its motor count must fit the action space.
    :param sparsity_level: sparsity of the default AutoNCP wirings (actor and critic).
    :param seed: seed of the default actor wiring (the critic's uses ``seed + 1``).
    :param mixed_memory: give the cells an LSTM memory cell (the state gets a ``c`` part).
    :param critic_mixed_memory: whether the NCP critic gets one too; None = as ``mixed_memory``. False with
        ``mixed_memory=True`` puts the memory cell on the actor only (fewer parameters; the critic only
        serves training).
    :param ode_unfolds: LTC solver steps per time step.
    :param init_ranges: initialisation ranges ``{name: (min, max)}`` of the policy's LTC layers (the actor with
        ``cell="ltc"``, the critic with ``critic_cell="ltc"``), overriding ncps' ranges
        (``ncp_policies.cells.ltc_cell.DEFAULT_INIT_RANGES``), e.g. ``{"sensory_sigma": (1.0, 3.0)}``.
    :param implicit_param_constraints: how the policy's LTC layers keep w, sensory_w, cm and gleak positive:
        through a softplus at run time (True, ncps' ``LTC`` layer default; ``init_ranges`` are then raw values)
        or as they are, clipped at 0 after every optimizer step (False, ncps' ``LTCCell`` default).
    :param cfc_mode: CfC mode, ``"default"``, ``"pure"`` or ``"no_gate"``.
    :param motor_affine: learnable per-motor scale and bias between the motor neurons and the
        distribution; None = on for CfC (bounded outputs), off for LTC (its layer maps outputs affinely).
    :param motor_scale_init: initial per-motor scale (with ``motor_affine``).
    :param actor_lr_scale: the actor's learning rate (network, motor scale and bias, log std or gSDE log std) as a
        multiple of the algorithm's (SB3's schedule sets the base rate, the ratio stays fixed). None = 3.0 for
        an LTC actor, 1.0 for CfC: the LTC learns slower at the algorithm's rate (CartPoleNoVel mean 418.5 →
        455.2 over 5 seeds, LunarLanderNoVel −359.0 → −276.8 over 3; ×10 was worse on CartPole, while the
        LunarLander LTC preset sets 8.0: −220.2 there; docs/learning.md).
    :param memory_lr_scale: the learning rate of the actor's LSTM memory cell (``mixed_memory``) as a multiple
        of the algorithm's; None = ``actor_lr_scale``, like the rest of the actor.
    :param critic_lr_scale: the critic's learning rate (network and value head) as a multiple of the
        algorithm's.
    :param critic: ``"ncp"`` (a recurrent NCP critic of its own) or ``"mlp"`` (memoryless MLP on the features).
    :param critic_cell: cell of the NCP critic, ``"cfc"`` by default whatever the actor's cell: the critic
        only serves training, and a CfC critic learns values faster (with an LTC actor on CartPole
        without velocities, an LTC critic held the actor back).
    :param critic_units: neurons of the default critic wiring ``AutoNCP(critic_units, critic_motors)``.
    :param critic_wiring: the critic wiring instead of the default (same forms as ``wiring``).
    :param critic_motors: motor neurons of the default critic wiring.
    :param critic_readout: what the linear value head of the NCP critic reads: ``"all"`` its neurons'
        states (default; the value needs more than one bounded motor neuron) or ``"motor"`` its motor outputs.
    :param critic_net_arch: hidden layer sizes of the ``"mlp"`` critic.
    :param activation_fn: activation of the ``"mlp"`` critic.
    :param timespan_key: Dict observation key fed as the network's timespans (not as a feature);
        ``"auto"`` = ``"elapsed"`` when the Dict space has it, None = unit time steps.
    :param log_std_init: initial log standard deviation of Gaussian actions (with ``use_sde``: every entry of
        the gSDE ``log_std``, the log std of the exploration-matrix weights).
    :param ortho_init: orthogonal initialisation of the features extractor and MLP critic, as SB3
        (the NCP layers keep their own initialisation).
    :param use_sde: generalized State-Dependent Exploration (Box actions only), as SB3's ``ActorCriticPolicy``:
        the motor neurons stay the means, the noise is ``latent_sde @ exploration_mat`` where ``latent_sde``
        (B, N) is the actor's full neuron state after the step (detached: SB3's ``learn_features=False``),
        ``exploration_mat`` (N, O) is drawn by :meth:`reset_noise` with std ``exp(log_std)``, and
        ``log_std`` is an (N, O) parameter ((N, 1) without ``full_std``). RecurrentPPO passes its own
        ``use_sde`` here.
    :param full_std: with ``use_sde``, one log std per (neuron, action) pair instead of one per neuron.
    :param use_expln: with ``use_sde``, map ``log_std`` to a std through gSDE's ``expln`` instead of ``exp``.
    :param squash_output: with ``use_sde`` only, squash actions with ``tanh`` (``predict`` rescales them to
        the Box bounds).
    :param features_extractor_class: front end; None = CombinedExtractor for Dict spaces, NatureCNN for
        images, FlattenExtractor otherwise.
    :param features_extractor_kwargs: keyword arguments of the features extractor.
    :param share_features_extractor: one features extractor for actor and critic.
    :param normalize_images: divide image observations by 255.
    :param optimizer_class: optimizer class.
    :param optimizer_kwargs: optimizer keyword arguments (default for Adam: ``eps=1e-5``, as SB3). For Adam
        and AdamW, ``foreach=True`` is added unless ``foreach`` or ``fused`` is given (on the CPU torch's default
        is a per-tensor loop, slower over the policy's many small parameters; the updates are bitwise the same).
    """

    def __init__(
        self,
        observation_space: spaces.Space,
        action_space: spaces.Space,
        lr_schedule: Schedule,
        cell: str = "cfc",
        units: int = 16,
        wiring: WiringSpec = None,
        sparsity_level: float = 0.5,
        seed: int = 22222,
        mixed_memory: bool = False,
        critic_mixed_memory: Optional[bool] = None,
        ode_unfolds: int = 6,
        init_ranges: Optional[dict[str, Sequence[float]]] = None,
        implicit_param_constraints: bool = True,
        cfc_mode: str = "default",
        motor_affine: Optional[bool] = None,
        motor_scale_init: float = 1.0,
        actor_lr_scale: Optional[float] = None,
        memory_lr_scale: Optional[float] = None,
        critic_lr_scale: float = 1.0,
        critic: str = "ncp",
        critic_cell: str = "cfc",
        critic_units: int = 16,
        critic_wiring: WiringSpec = None,
        critic_motors: int = 1,
        critic_readout: str = "all",
        critic_net_arch: Sequence[int] = (64, 64),
        activation_fn: type[nn.Module] = nn.Tanh,
        timespan_key: Optional[str] = "auto",
        log_std_init: float = 0.0,
        ortho_init: bool = True,
        use_sde: bool = False,
        full_std: bool = True,
        use_expln: bool = False,
        squash_output: bool = False,
        features_extractor_class: Optional[type[BaseFeaturesExtractor]] = None,
        features_extractor_kwargs: Optional[dict[str, Any]] = None,
        share_features_extractor: bool = True,
        normalize_images: bool = True,
        optimizer_class: type[torch.optim.Optimizer] = torch.optim.Adam,
        optimizer_kwargs: Optional[dict[str, Any]] = None,
    ) -> None:
        check_action_space(action_space)
        if use_sde and not isinstance(action_space, spaces.Box):
            raise ValueError(
                "generalized State-Dependent Exploration (gSDE) can only be used with continuous actions: "
                f"use_sde=True needs a Box action space, got {describe_space(action_space)}. "
                "Use use_sde=False for Discrete and MultiDiscrete actions."
            )
        if squash_output and not use_sde:
            raise ValueError(
                "squash_output=True is only available when using gSDE (use_sde=True), as in SB3; got use_sde=False."
            )
        if cell not in CELLS:
            raise ValueError(f"cell must be one of {list(CELLS)}, got {cell!r}.")
        if critic not in CRITICS:
            raise ValueError(f"critic must be one of {list(CRITICS)}, got {critic!r}.")
        if critic_readout not in CRITIC_READOUTS:
            raise ValueError(f"critic_readout must be one of {list(CRITIC_READOUTS)}, got {critic_readout!r}.")
        if critic_cell not in CELLS:
            raise ValueError(f"critic_cell must be one of {list(CELLS)}, got {critic_cell!r}.")
        # Plain attributes read by _build(), which ActorCriticPolicy.__init__ calls.
        self.cell = cell
        self.mixed_memory = bool(mixed_memory)
        self.critic_mixed_memory = self.mixed_memory if critic_mixed_memory is None else bool(critic_mixed_memory)
        self.ode_unfolds = int(ode_unfolds)
        if init_ranges and "ltc" not in (cell, critic_cell if critic == "ncp" else None):
            raise ValueError(
                f"init_ranges sets LTC parameters, but this policy has no LTC layer (cell={cell!r}, "
                f"critic={critic!r}, critic_cell={critic_cell!r}); use cell='ltc' or drop init_ranges."
            )
        self.init_ranges = check_init_ranges(init_ranges) or None
        self.implicit_param_constraints = bool(implicit_param_constraints)
        self.cfc_mode = cfc_mode
        self.motor_affine = (cell == "cfc") if motor_affine is None else bool(motor_affine)
        self.motor_scale_init = float(motor_scale_init)
        self.actor_lr_scale = (3.0 if cell == "ltc" else 1.0) if actor_lr_scale is None else float(actor_lr_scale)
        if memory_lr_scale is not None and not mixed_memory:
            raise ValueError(
                f"memory_lr_scale={memory_lr_scale} sets the learning rate of the actor's memory cell, but this "
                "policy has none: use mixed_memory=True or drop memory_lr_scale."
            )
        self.memory_lr_scale = None if memory_lr_scale is None else float(memory_lr_scale)
        self.critic_lr_scale = float(critic_lr_scale)
        self.critic_kind = critic
        self.critic_cell = critic_cell
        self.critic_net_arch = [int(n) for n in critic_net_arch]
        self.critic_readout = critic_readout
        self.timespan_key = resolve_timespan_key(observation_space, timespan_key)
        self._feature_space = feature_space(observation_space, self.timespan_key)
        motors = motor_count(action_space)
        self._actor_wiring = resolve_wiring(
            wiring, units=units, motors=motors, sparsity_level=sparsity_level, seed=seed, argument="wiring"
        )
        check_motor_count(self._actor_wiring.output_dim, action_space, argument="wiring")
        self._critic_wiring = None
        if critic == "ncp":
            self._critic_wiring = resolve_wiring(
                critic_wiring, units=critic_units, motors=critic_motors, sparsity_level=sparsity_level,
                seed=seed + 1, argument="critic_wiring",
            )
        if features_extractor_class is None:
            features_extractor_class = default_extractor_class(self._feature_space)
        optimizer_kwargs = _default_optimizer_kwargs(optimizer_class, optimizer_kwargs)
        # RecurrentActorCriticPolicy.__init__ would build LSTMs: skip it and build the NCPs in _build().
        ActorCriticPolicy.__init__(
            self,
            observation_space,
            action_space,
            lr_schedule,
            net_arch=[],
            activation_fn=activation_fn,
            ortho_init=ortho_init,
            use_sde=use_sde,
            log_std_init=log_std_init,
            full_std=full_std,
            use_expln=use_expln,
            squash_output=squash_output,
            features_extractor_class=features_extractor_class,
            features_extractor_kwargs=features_extractor_kwargs,
            share_features_extractor=share_features_extractor,
            normalize_images=normalize_images,
            optimizer_class=optimizer_class,
            optimizer_kwargs=optimizer_kwargs,
        )

    # ------------------------------------------------------------------ construction

    def make_features_extractor(self) -> BaseFeaturesExtractor:
        """The features extractor, on the observation space without the timespan key."""
        return self.features_extractor_class(self._feature_space, **self.features_extractor_kwargs)

    def _build(self, lr_schedule: Schedule) -> None:
        """Build the actor and critic networks, the action and value heads, and the optimizer.

        :param lr_schedule: learning-rate schedule; ``lr_schedule(1)`` is the initial rate.
        """
        actor_layer = build_layer(
            self.cell, self.features_dim, self._actor_wiring,
            mixed_memory=self.mixed_memory, ode_unfolds=self.ode_unfolds, cfc_mode=self.cfc_mode,
            init_ranges=self.init_ranges if self.cell == "ltc" else None,
            implicit_param_constraints=self.implicit_param_constraints,
        )
        critic_layer = None
        if self._critic_wiring is not None:
            critic_layer = build_layer(
                self.critic_cell, self.features_dim, self._critic_wiring,
                mixed_memory=self.critic_mixed_memory, ode_unfolds=self.ode_unfolds, cfc_mode=self.cfc_mode,
                init_ranges=self.init_ranges if self.critic_cell == "ltc" else None,
                implicit_param_constraints=self.implicit_param_constraints,
            )
        hidden = max(actor_layer.state_size, 0 if critic_layer is None else critic_layer.state_size)
        self.actor_network = NCPNetwork(actor_layer, hidden)
        self.critic_network = None if critic_layer is None else NCPNetwork(critic_layer, hidden)
        self.lstm_hidden_state_shape = (1, 1, hidden)
        self.shared_lstm = False
        self.enable_critic_lstm = self.critic_network is not None

        motors = self.actor_network.motor_count
        self.motor_readout = MotorReadout(motors, self.motor_scale_init) if self.motor_affine else nn.Identity()
        if isinstance(self.action_dist, DiagGaussianDistribution):
            self.log_std = nn.Parameter(torch.full((motors,), float(self.log_std_init)))
        elif isinstance(self.action_dist, StateDependentNoiseDistribution):
            # SB3's proba_distribution_net without its linear mean layer (the motor neurons are the means):
            # the noise reads every actor neuron, so latent_sde_dim = N.
            neurons = self.actor_network.neuron_count
            self.action_dist.latent_sde_dim = neurons
            columns = motors if self.action_dist.full_std else 1
            self.log_std = nn.Parameter(torch.full((neurons, columns), float(self.log_std_init)))
            self.action_dist.sample_weights(self.log_std)

        if self.critic_network is not None:
            critic = self.critic_network
            self.value_net = nn.Linear(critic.neuron_count if self.critic_readout == "all" else critic.motor_count, 1)
        else:
            layers: list[nn.Module] = []
            width = self.features_dim
            for size in self.critic_net_arch:
                layers += [nn.Linear(width, size), self.activation_fn()]
                width = size
            self.value_net = nn.Sequential(*layers, nn.Linear(width, 1))

        if self.ortho_init:
            extractors = [self.pi_features_extractor]
            if self.vf_features_extractor is not self.pi_features_extractor:
                extractors.append(self.vf_features_extractor)
            for extractor in extractors:
                extractor.apply(lambda module: self.init_weights(module, gain=np.sqrt(2)))
            if self.critic_network is None:
                for module in self.value_net[:-1]:
                    self.init_weights(module, gain=np.sqrt(2))
                self.init_weights(self.value_net[-1], gain=1.0)

        actor_params = [*self.actor_network.parameters(), *self.motor_readout.parameters()]
        if isinstance(self.action_dist, (DiagGaussianDistribution, StateDependentNoiseDistribution)):
            actor_params.append(self.log_std)
        critic_params = [*self.value_net.parameters()]
        if self.critic_network is not None:
            critic_params += list(self.critic_network.parameters())
        # The memory cell gets a group of its own only when its rate is set: the optimizer's groups (and so
        # the optimizer state that model.save() stores) stay those of policies saved before the option.
        memory_params = [] if self.memory_lr_scale is None else list(actor_layer.lstm.parameters())
        groups = param_groups(
            [(memory_params, self.memory_lr_scale), (actor_params, self.actor_lr_scale),
             (critic_params, self.critic_lr_scale)],
            self,
        )
        self.optimizer = self.optimizer_class(groups, lr=lr_schedule(1), **self.optimizer_kwargs)
        install_lr_scales(self.optimizer)
        if not self.implicit_param_constraints:
            install_weight_constraints(self.optimizer, [actor_layer, critic_layer])

    def _get_constructor_parameters(self) -> dict[str, Any]:
        data = BasePolicy._get_constructor_parameters(self)
        dist_kwargs = self.dist_kwargs or {}
        data.update(
            lr_schedule=self._dummy_schedule,
            cell=self.cell,
            wiring=wiring_to_data(self.actor_network.wiring),
            mixed_memory=self.mixed_memory,
            critic_mixed_memory=self.critic_mixed_memory,
            ode_unfolds=self.ode_unfolds,
            init_ranges=self.init_ranges,
            implicit_param_constraints=self.implicit_param_constraints,
            cfc_mode=self.cfc_mode,
            motor_affine=self.motor_affine,
            motor_scale_init=self.motor_scale_init,
            actor_lr_scale=self.actor_lr_scale,
            memory_lr_scale=self.memory_lr_scale,
            critic_lr_scale=self.critic_lr_scale,
            critic=self.critic_kind,
            critic_cell=self.critic_cell,
            critic_wiring=None if self.critic_network is None else wiring_to_data(self.critic_network.wiring),
            critic_readout=self.critic_readout,
            critic_net_arch=self.critic_net_arch,
            activation_fn=self.activation_fn,
            timespan_key=self.timespan_key,
            log_std_init=self.log_std_init,
            ortho_init=self.ortho_init,
            use_sde=self.use_sde,
            full_std=dist_kwargs.get("full_std", True),
            use_expln=dist_kwargs.get("use_expln", False),
            squash_output=self.squash_output,
            features_extractor_class=self.features_extractor_class,
            features_extractor_kwargs=self.features_extractor_kwargs,
            share_features_extractor=self.share_features_extractor,
            optimizer_class=self.optimizer_class,
            optimizer_kwargs=self.optimizer_kwargs,
        )
        return data

    # ------------------------------------------------------------------ RecurrentPPO compatibility

    @property
    def lstm_actor(self) -> NCPNetwork:
        """The actor network under the name RecurrentPPO reads (``num_layers``, ``hidden_size``)."""
        return self.actor_network

    @property
    def lstm_critic(self) -> Optional[NCPNetwork]:
        """The critic network under sb3-contrib's name (None for the MLP critic)."""
        return self.critic_network

    # ------------------------------------------------------------------ auditing helpers

    @property
    def actor_neuron_count(self) -> int:
        """N_actor: the actor's neurons, i.e. the leading entries of ``h`` in the actor state."""
        return self.actor_network.neuron_count

    @property
    def neuron_roles(self) -> list[str]:
        """Role (``"motor"``, ``"command"``, ``"inter"``) of each actor state entry ``h[..., i]``, i < N_actor."""
        roles = neuron_roles(self.actor_network.wiring)
        return [roles[i] for i in self.actor_network.neuron_ids]

    def split_state(self, state: Union[RecurrentState, tuple[np.ndarray, np.ndarray]]) -> NeuronState:
        """Read the actor's neurons from the state returned by ``model.predict`` / ``policy.predict``.

        :param state: (h, c), each (1, n_envs, H), numpy arrays or tensors.
        :return: :class:`NeuronState` with ``neurons`` (n_envs, N_actor) and ``cell`` (n_envs, N_actor) or None.
        """
        h, c = (np.asarray(s.detach().cpu() if isinstance(s, torch.Tensor) else s) for s in state)
        if h.ndim != 3 or h.shape[0] != 1 or h.shape[2] != self.actor_network.hidden_size:
            raise ValueError(
                f"state must be the (h, c) pair returned by predict, each of shape (1, n_envs, "
                f"{self.actor_network.hidden_size}), got h of shape {h.shape}."
            )
        n = self.actor_neuron_count
        return NeuronState(neurons=h[0, :, :n], cell=c[0, :, :n] if self.actor_network.use_mixed else None)

    # ------------------------------------------------------------------ forward passes

    def reset_noise(self, n_envs: int = 1) -> None:
        """Sample new gSDE exploration matrices: one shared (N, O) matrix and one per environment.

        :param n_envs: number of per-environment matrices (``exploration_matrices`` is (n_envs, N, O)).
        """
        if not isinstance(self.action_dist, StateDependentNoiseDistribution):
            raise ValueError(
                "reset_noise() samples gSDE exploration matrices; it needs use_sde=True (got use_sde=False)."
            )
        self.action_dist.sample_weights(self.log_std, batch_size=n_envs)

    def _get_action_dist_from_latent(
        self, latent_pi: torch.Tensor, latent_sde: Optional[torch.Tensor] = None
    ) -> Distribution:
        """The action distribution from the actor's motor neurons.

        :param latent_pi: (B, O) motor neuron outputs.
        :param latent_sde: (B, N) every actor neuron's state after the step; needed with ``use_sde``.
        :return: Categorical / MultiCategorical over the (scaled) motor logits, or a Gaussian with the
            (scaled) motor outputs as means (with ``use_sde``: its std from ``latent_sde`` and ``log_std``).
        """
        params = self.motor_readout(latent_pi)
        if isinstance(self.action_dist, DiagGaussianDistribution):
            return self.action_dist.proba_distribution(params, self.log_std)
        if isinstance(self.action_dist, StateDependentNoiseDistribution):
            if latent_sde is None:
                raise ValueError("latent_sde (B, N), the actor's neuron states, is needed with use_sde=True.")
            return self.action_dist.proba_distribution(params, self.log_std, latent_sde)
        return self.action_dist.proba_distribution(action_logits=params)

    def _actor(
        self,
        pi_features: torch.Tensor,
        state: RecurrentState,
        episode_starts: torch.Tensor,
        timespans: Optional[torch.Tensor],
    ) -> tuple[Distribution, RecurrentState]:
        # One actor run gives the means (motor neurons) and gSDE's latent features (every neuron).
        motor, neurons, new_state = self.actor_network.forward_with_neurons(
            pi_features, state, episode_starts, timespans
        )
        return self._get_action_dist_from_latent(motor, neurons), new_state

    def _split_features(self, obs: PyTorchObs) -> tuple[torch.Tensor, torch.Tensor, Optional[torch.Tensor]]:
        features = self.extract_features(obs)  # computed once for actor and critic when shared
        pi_features, vf_features = (features, features) if self.share_features_extractor else features
        return pi_features, vf_features, timespans_from_obs(obs, self.timespan_key)

    def _values(
        self,
        vf_features: torch.Tensor,
        state: RecurrentState,
        episode_starts: torch.Tensor,
        timespans: Optional[torch.Tensor],
    ) -> tuple[torch.Tensor, RecurrentState]:
        if self.critic_network is None:
            return self.value_net(vf_features), state
        latent, new_state = self.critic_network(
            vf_features, state, episode_starts, timespans, all_neurons=self.critic_readout == "all"
        )
        return self.value_net(latent), new_state

    def forward(
        self,
        obs: PyTorchObs,
        lstm_states: RNNStates,
        episode_starts: torch.Tensor,
        deterministic: bool = False,
    ) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor, RNNStates]:
        """One rollout step of actor and critic (T = 1 per environment).

        :param obs: (n_envs, ...) observations.
        :param lstm_states: ``RNNStates(pi=(h, c), vf=(h, c))``, each (1, n_envs, H).
        :param episode_starts: (n_envs,) 1.0 where the observation starts an episode.
        :param deterministic: take the distribution's mode instead of sampling.
        :return: actions (n_envs, *action_shape), values (n_envs, 1), log-probabilities (n_envs,), new states.
        """
        pi_features, vf_features, timespans = self._split_features(obs)
        distribution, pi_state = self._actor(pi_features, lstm_states.pi, episode_starts, timespans)
        values, vf_state = self._values(vf_features, lstm_states.vf, episode_starts, timespans)
        actions = distribution.get_actions(deterministic=deterministic)
        log_prob = distribution.log_prob(actions)
        actions = actions.reshape((-1, *self.action_space.shape))
        return actions, values, log_prob, RNNStates(pi_state, vf_state)

    def get_distribution(
        self,
        obs: PyTorchObs,
        lstm_states: RecurrentState,
        episode_starts: torch.Tensor,
    ) -> tuple[Distribution, RecurrentState]:
        """The action distribution and the actor's next state (the actor alone runs).

        :param obs: (n_seq * T, ...) observations.
        :param lstm_states: actor state (h, c), each (1, n_seq, H).
        :param episode_starts: (n_seq * T,) episode-start flags.
        :return: the distribution over n_seq * T actions and the actor state after the last step.
        """
        features = super(ActorCriticPolicy, self).extract_features(obs, self.pi_features_extractor)
        timespans = timespans_from_obs(obs, self.timespan_key)
        return self._actor(features, lstm_states, episode_starts, timespans)

    def predict_values(
        self,
        obs: PyTorchObs,
        lstm_states: RecurrentState,
        episode_starts: torch.Tensor,
    ) -> torch.Tensor:
        """Values of the observations (the critic alone runs).

        :param obs: (n_seq * T, ...) observations.
        :param lstm_states: critic state (h, c), each (1, n_seq, H).
        :param episode_starts: (n_seq * T,) episode-start flags.
        :return: (n_seq * T, 1) values.
        """
        features = super(ActorCriticPolicy, self).extract_features(obs, self.vf_features_extractor)
        values, _ = self._values(features, lstm_states, episode_starts, timespans_from_obs(obs, self.timespan_key))
        return values

    def evaluate_actions(
        self,
        obs: PyTorchObs,
        actions: torch.Tensor,
        lstm_states: RNNStates,
        episode_starts: torch.Tensor,
    ) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """Values, log-likelihoods and entropies over a padded minibatch, one ``run()`` per network.

        :param obs: (n_seq * T, ...) observations of n_seq padded sequences.
        :param actions: (n_seq * T, ...) actions taken.
        :param lstm_states: ``RNNStates`` with each tensor (1, n_seq, H): the state before each sequence.
        :param episode_starts: (n_seq * T,) episode-start flags.
        :return: values (n_seq * T, 1), log-probabilities (n_seq * T,), entropies (n_seq * T,).
        """
        pi_features, vf_features, timespans = self._split_features(obs)
        distribution, _ = self._actor(pi_features, lstm_states.pi, episode_starts, timespans)
        values, _ = self._values(vf_features, lstm_states.vf, episode_starts, timespans)
        return values, distribution.log_prob(actions), distribution.entropy()
