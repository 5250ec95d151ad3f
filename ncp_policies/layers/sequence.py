"""The sequence loop: the one place a cell is run over time, for every cell type.

Per step t, in this order: resets (the state, and the LSTM cell state, are multiplied by
``keep[:, t] = 1 - resets[:, t]``), the mixed-memory LSTM step (ncps' order: the LSTM updates h
before the cell does), the cell step, the clamp (chosen neurons overwritten). Everything that does
not depend on the state is computed once per sequence by the cells' ``prepare_sequence``; without
mixed memory or clamp, a cell's fused ``unroll`` (one LTC kernel call, the wired-CfC wavefront) runs
the whole sequence instead of the step loop, and a single step without autograd goes through the
cell's fused ``inference_step`` when it has one.
"""
from __future__ import annotations

from typing import NamedTuple, Optional, Tuple, Union

import torch
from torch import Tensor

from ..cells.base import SequenceCell, Timespans
from ..cells.lstm_cell import LSTMCell


class SequenceOutput(NamedTuple):
    """What :meth:`run` returns (all batch-first).

    outputs:     (B, T, O) what ``forward`` returns per step (motor neurons after output mapping / proj).
    states:      (B, T, N) every neuron's state after each step, in the layout of ``hx``.
    cell_states: (B, T, N) the LSTM cell state after each step (mixed memory), else None.
    hx:          the final state in ``forward``'s format: (B, N), or ((B, N), (B, N)) with mixed memory.
    """

    outputs: Tensor
    states: Tensor
    cell_states: Optional[Tensor]
    hx: Union[Tensor, Tuple[Tensor, Tensor]]


def run_sequence(
    cell: SequenceCell,
    x: Tensor,
    h0: Tensor,
    timespans: Timespans,
    keep: Optional[Tensor] = None,
    clamp: Optional[Tuple[Tensor, Tensor]] = None,
    lstm: Optional[LSTMCell] = None,
    c0: Optional[Tensor] = None,
) -> Tuple[Tensor, Optional[Tensor]]:
    """Run ``cell`` over a sequence. Arguments are assumed validated (see ``layers.checks``).

    :param cell: the recurrent cell.
    :param x: (B, T, F) inputs.
    :param h0: (B, N) initial state.
    :param timespans: a float, or (B, T, 1) positive elapsed times.
    :param keep: optional (B, T) factors multiplying the state before each step (``1 - resets``).
    :param clamp: optional ``(index (K,) long, values (B, K))``: those state entries are set to the
        values after every step.
    :param lstm: the mixed-memory LSTM, or None.
    :param c0: (B, N) initial LSTM cell state (with ``lstm``).
    :return: ``(states (B, T, N), cell_states (B, T, N) or None)``.
    """
    if x.shape[1] == 1 and lstm is None and clamp is None and not torch.is_grad_enabled():
        fast = cell.inference_step(x[:, 0], h0 if keep is None else h0 * keep, timespans)
        if fast is not None:  # rollouts: one fused call
            return fast[1].unsqueeze(1), None
    seq = cell.prepare_sequence(x, timespans)
    if lstm is None and clamp is None:
        states = cell.unroll(seq, h0, keep)
        if states is not None:
            return states, None
    memory = lstm.prepare_sequence(x) if lstm is not None else None
    h, c = h0, c0
    hs, cs = [], []
    for t in range(x.shape[1]):
        if keep is not None:
            k = keep[:, t, None]  # (B, 1)
            h = h * k
            if c is not None:
                c = c * k
        if memory is not None:
            h, c = lstm.step(memory, t, h, c)
        h = cell.step(seq, t, h)
        if clamp is not None:
            h = h.index_copy(1, clamp[0], clamp[1])
        hs.append(h)
        if c is not None:
            cs.append(c)
    return torch.stack(hs, 1), (torch.stack(cs, 1) if memory is not None else None)
