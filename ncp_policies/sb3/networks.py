"""An NCP layer packaged as a RecurrentPPO recurrent module: padded sequences in, one fused ``run()`` call.

sb3-contrib hands a recurrent policy its minibatches as ``n_seq`` padded sequences flattened to
``(n_seq * T, F)``, one state per sequence shaped ``(n_layers, n_seq, H)``, and the episode-start flags
of every step. Its own LSTM code steps through the sequence in Python whenever any flag is set.
:class:`NCPNetwork` never does: the state of a sequence whose first step starts an episode is zeroed
before the call, any later starts go to the layer as ``resets=``, and the whole minibatch is one
``layer.run(...)`` call. During rollouts T = 1 and ``n_seq`` is the number of environments.
"""
from __future__ import annotations

from typing import Mapping, Optional, Sequence

import torch
from torch import nn
from torch.nn import functional as F

from ncp_policies import wirings
from ncp_policies.layers import LTC, CfC, SequenceOutput

CELLS = ("cfc", "ltc")
CFC_MODES = ("default", "pure", "no_gate")

RecurrentState = tuple[torch.Tensor, torch.Tensor]


def build_layer(
    cell: str,
    input_size: int,
    wiring: wirings.Wiring,
    *,
    mixed_memory: bool = False,
    ode_unfolds: int = 6,
    cfc_mode: str = "default",
    init_ranges: Optional[Mapping[str, Sequence[float]]] = None,
    implicit_param_constraints: bool = True,
) -> nn.Module:
    """A CfC or LTC sequence layer on a wiring.

    :param cell: ``"cfc"`` or ``"ltc"``.
    :param input_size: number of input features F (sensory neurons).
    :param wiring: the wiring (built here for ``input_size``).
    :param mixed_memory: add an LSTM memory cell (the state becomes ``(h, c)``).
    :param ode_unfolds: LTC solver steps per time step (ignored by CfC).
    :param cfc_mode: CfC mode, ``"default"``, ``"pure"`` or ``"no_gate"`` (ignored by LTC).
    :param init_ranges: LTC initialisation ranges ``{name: (min, max)}`` overriding ncps' (see
        ``ncp_policies.cells.ltc_cell.DEFAULT_INIT_RANGES``); a CfC has none, so giving them with
        ``cell="cfc"`` is an error.
    :param implicit_param_constraints: LTC only: keep w, sensory_w, cm and gleak positive through a softplus
        at run time (True, ncps' ``LTC`` default) or use them as they are, clipped at 0 by
        ``apply_weight_constraints()`` after each optimizer step (False, ncps' ``LTCCell`` default).
    :return: a layer with ``run(x, hx, timespans, resets, clamp)``.
    """
    if cell == "cfc":
        if cfc_mode not in CFC_MODES:
            raise ValueError(f"cfc_mode must be one of {list(CFC_MODES)}, got {cfc_mode!r}.")
        if init_ranges:
            raise ValueError(
                f"init_ranges sets LTC parameters ({', '.join(init_ranges)}); a CfC cell has none. "
                "Use cell='ltc' or drop init_ranges."
            )
        return CfC(input_size, wiring, mixed_memory=mixed_memory, mode=cfc_mode)
    if cell == "ltc":
        return LTC(input_size, wiring, mixed_memory=mixed_memory, ode_unfolds=ode_unfolds, init_ranges=init_ranges,
                   implicit_param_constraints=implicit_param_constraints)
    raise ValueError(f"cell must be one of {list(CELLS)}, got {cell!r}.")


class NCPNetwork(nn.Module):
    """One NCP layer run over RecurrentPPO's padded sequences, with states padded to ``hidden_size``.

    The state tuple follows sb3-contrib's LSTM convention ``(h, c)``, each ``(1, n_seq, H)``:
    ``h[..., :N]`` is the full neuron state of the layer (``N = neuron_count``, the state index being the
    layer's state layout, see :attr:`neuron_ids`), ``c[..., :N]`` the mixed-memory cell state (zeros
    when the layer has none). Entries beyond N stay zero.

    Setting :attr:`clamp` to ``(index LongTensor (K,), values (K,))`` overwrites those state entries after
    every step (ablation) in every later call, rollouts and ``model.predict`` included; None turns it off.

    :param layer: a layer with ``run()`` (``ncp_policies.CfC`` / ``LTC``).
    :param hidden_size: H >= the layer's neuron count N.
    """

    num_layers: int = 1  # RecurrentPPO sizes its state buffers as (num_layers, n_envs, hidden_size)

    def __init__(self, layer: nn.Module, hidden_size: int) -> None:
        super().__init__()
        if hidden_size < layer.state_size:
            raise ValueError(
                f"hidden_size={hidden_size} is smaller than the layer's {layer.state_size} neurons; "
                f"use hidden_size >= {layer.state_size}."
            )
        self.layer = layer
        self.hidden_size = int(hidden_size)
        self.clamp: Optional[tuple[torch.Tensor, torch.Tensor]] = None

    @property
    def neuron_count(self) -> int:
        """N, the number of neurons (the layer's state size)."""
        return int(self.layer.state_size)

    @property
    def motor_count(self) -> int:
        """O, the number of motor neurons (the layer's output size)."""
        return int(self.layer.output_size)

    @property
    def wiring(self) -> wirings.Wiring:
        """The layer's wiring."""
        return self.layer.wiring

    @property
    def neuron_ids(self) -> list[int]:
        """Wiring neuron id of each state entry: ``h[..., i]`` is neuron ``neuron_ids[i]``."""
        return self.layer.state_neuron_ids

    @property
    def use_mixed(self) -> bool:
        """Whether the layer carries a mixed-memory cell state."""
        return bool(self.layer.use_mixed)

    def forward(
        self,
        features: torch.Tensor,
        state: RecurrentState,
        episode_starts: torch.Tensor,
        timespans: Optional[torch.Tensor] = None,
        all_neurons: bool = False,
    ) -> tuple[torch.Tensor, RecurrentState]:
        """Run the padded sequences in one call.

        :param features: (n_seq * T, F) inputs, sequence-major (sequence 0's T steps first).
        :param state: (h, c), each (1, n_seq, H): the state before each sequence's first step.
        :param episode_starts: (n_seq * T,) 1.0 where an episode starts (the state is zeroed before that step).
        :param timespans: (n_seq * T,) time elapsed at each step, or None for 1.0.
        :param all_neurons: return every neuron's state (n_seq * T, N) instead of the motor outputs.
        :return: motor outputs (n_seq * T, O) (or all neurons) and the state (h, c), each (1, n_seq, H),
            after the last step.
        """
        out = self.run_sequences(features, state, episode_starts, timespans)
        latent = out.states if all_neurons else out.outputs
        return latent.reshape(-1, latent.shape[-1]), self.pack_state(out.hx, state[1])

    def forward_with_neurons(
        self,
        features: torch.Tensor,
        state: RecurrentState,
        episode_starts: torch.Tensor,
        timespans: Optional[torch.Tensor] = None,
    ) -> tuple[torch.Tensor, torch.Tensor, RecurrentState]:
        """Like :meth:`forward`, but return the motor outputs *and* every neuron's state of the same run.

        :param features: (n_seq * T, F) inputs, sequence-major (sequence 0's T steps first).
        :param state: (h, c), each (1, n_seq, H): the state before each sequence's first step.
        :param episode_starts: (n_seq * T,) 1.0 where an episode starts (the state is zeroed before that step).
        :param timespans: (n_seq * T,) time elapsed at each step, or None for 1.0.
        :return: motor outputs (n_seq * T, O), neuron states after each step (n_seq * T, N) and the state
            (h, c), each (1, n_seq, H), after the last step.
        """
        out = self.run_sequences(features, state, episode_starts, timespans)
        motor = out.outputs.reshape(-1, out.outputs.shape[-1])
        neurons = out.states.reshape(-1, out.states.shape[-1])
        return motor, neurons, self.pack_state(out.hx, state[1])

    def run_sequences(
        self,
        features: torch.Tensor,
        state: RecurrentState,
        episode_starts: torch.Tensor,
        timespans: Optional[torch.Tensor] = None,
    ) -> SequenceOutput:
        """Like :meth:`forward` but return the layer's full ``SequenceOutput`` (batch-first, every neuron).

        :param features: (n_seq * T, F) inputs, sequence-major.
        :param state: (h, c), each (1, n_seq, H).
        :param episode_starts: (n_seq * T,) episode-start flags.
        :param timespans: (n_seq * T,) or None.
        :return: ``SequenceOutput(outputs (n_seq, T, O), states (n_seq, T, N), cell_states, hx)``.
        """
        n_seq = state[0].shape[1]
        x = features.reshape(n_seq, -1, features.shape[-1])  # (n_seq, T, F)
        starts = episode_starts.reshape(n_seq, -1).to(x.dtype)  # (n_seq, T)
        keep = (1.0 - starts[:, :1])  # (n_seq, 1): zero the stored state where the first step starts an episode
        n = self.neuron_count
        h0 = state[0][0, :, :n] * keep
        hx = (h0, state[1][0, :, :n] * keep) if self.use_mixed else h0
        resets = starts if starts.shape[1] > 1 and bool(starts[:, 1:].any()) else None
        ts = None
        if timespans is not None:
            # sb3-contrib pads sequences with all-zero observations, so padded steps read a timespan of 0;
            # they come after every real step (cannot influence it) and are masked out of the loss.
            ts = timespans.reshape(n_seq, -1).to(x.dtype)
            ts = torch.where(ts == 0, torch.ones_like(ts), ts)
        return self.layer.run(x, hx, timespans=ts, resets=resets, clamp=self.clamp)

    def pack_state(self, hx, like_c: torch.Tensor) -> RecurrentState:
        """The layer's final state in RecurrentPPO's ``(h, c)`` format, zero-padded to H.

        :param hx: the layer's state, (n_seq, N) or ((n_seq, N), (n_seq, N)) with mixed memory.
        :param like_c: a (1, n_seq, H) tensor to shape a zero cell state after when the layer has none.
        :return: (h, c), each (1, n_seq, H).
        """
        pad = self.hidden_size - self.neuron_count
        if self.use_mixed:
            h, c = hx
            return F.pad(h, (0, pad)).unsqueeze(0), F.pad(c, (0, pad)).unsqueeze(0)
        return F.pad(hx, (0, pad)).unsqueeze(0), torch.zeros_like(like_c)


def install_weight_constraints(optimizer: torch.optim.Optimizer, layers: Sequence[Optional[nn.Module]]) -> None:
    """Clip the LTC layers' positive parameters at 0 after every ``optimizer.step()``.

    Needed by LTC layers built with ``implicit_param_constraints=False`` (ncps' ``LTCCell`` default, where the
    training loop calls ``apply_weight_constraints()`` itself); other layers, and None, are skipped.

    :param optimizer: the optimizer updating the layers.
    :param layers: the layers (CfC layers and None allowed).
    """
    ltc_layers = [layer for layer in layers if isinstance(layer, LTC)]
    if not ltc_layers:
        return

    def constrain(opt: torch.optim.Optimizer, args: tuple, kwargs: dict) -> None:
        for layer in ltc_layers:
            layer.apply_weight_constraints()

    optimizer.register_step_post_hook(constrain)
