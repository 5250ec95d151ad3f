"""The LSTM memory cell of ncps' mixed-memory networks (``ncps/torch/lstm.py``), ncps-compatible."""
from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Dict, Tuple

import torch
import torch.nn.functional as F
from torch import Tensor, nn


@dataclass
class LSTMSequence:
    """Per-sequence constants of the LSTM."""

    xz: Tuple[Tensor, ...]  # T x (B, 4H): input map of every step, bias and forget-gate offset included
    rec_wt: Tensor  # (H, 4H): recurrent map, transposed


class LSTMCell(nn.Module):
    """ncps' LSTM cell (gates i, input, forget (+1 offset), output), keys ``input_map`` / ``recurrent_map``.

    :param input_size: number of input features F.
    :param hidden_size: number of units H.
    """

    def __init__(self, input_size: int, hidden_size: int) -> None:
        super().__init__()
        for name, value in (("input_size", input_size), ("hidden_size", hidden_size)):
            if isinstance(value, bool) or not isinstance(value, int) or value < 1:
                raise ValueError(f"{name} must be an int >= 1, got {value!r}")
        self.input_size = input_size
        self.hidden_size = hidden_size
        self.input_map = nn.Linear(input_size, 4 * hidden_size, bias=True)
        self.recurrent_map = nn.Linear(hidden_size, 4 * hidden_size, bias=False)
        offset = torch.zeros(4 * hidden_size)
        offset[2 * hidden_size : 3 * hidden_size] = 1.0  # ncps adds 1.0 to the forget gate
        self.register_buffer("_forget_offset", offset, persistent=False)
        self.init_weights()

    def init_weights(self) -> None:
        """ncps' initialisation: biases U(-0.1, 0.1), input weights Xavier, recurrent weights orthogonal."""
        for w in self.input_map.parameters():
            if w.dim() == 1:
                nn.init.uniform_(w, -0.1, 0.1)
            else:
                nn.init.xavier_uniform_(w)
        for w in self.recurrent_map.parameters():
            if w.dim() == 1:
                nn.init.uniform_(w, -0.1, 0.1)
            else:
                nn.init.orthogonal_(w)

    def prepare_sequence(self, x: Tensor) -> LSTMSequence:
        """Apply the input map to all steps at once.

        :param x: (B, T, F) inputs.
        :return: the per-sequence constants.
        """
        xz = F.linear(x, self.input_map.weight, self.input_map.bias + self._forget_offset)
        return LSTMSequence(xz.unbind(1), self.recurrent_map.weight.t())

    def step(self, seq: LSTMSequence, t: int, h: Tensor, c: Tensor) -> Tuple[Tensor, Tensor]:
        """One step.

        :param seq: what :meth:`prepare_sequence` returned.
        :param t: time index.
        :param h: (B, H) output state.
        :param c: (B, H) cell state.
        :return: new ``(h, c)``, each (B, H).
        """
        z = torch.addmm(seq.xz[t], h, seq.rec_wt)  # (B, 4H)
        hidden = self.hidden_size
        cand = torch.tanh(z[:, :hidden])
        input_gate, forget_gate, output_gate = torch.sigmoid(z[:, hidden:]).chunk(3, 1)
        c = torch.addcmul(c * forget_gate, cand, input_gate)
        return torch.tanh(c) * output_gate, c

    def forward(self, inputs: Tensor, states: Tuple[Tensor, Tensor]) -> Tuple[Tensor, Tensor]:
        """One step, ncps-compatible.

        :param inputs: (B, F) inputs.
        :param states: ``(h (B, H), c (B, H))``.
        :return: new ``(h, c)``.
        """
        h, c = states
        return self.step(self.prepare_sequence(inputs.unsqueeze(1)), 0, h, c)

    def get_config(self) -> Dict[str, Any]:
        """JSON-able constructor arguments."""
        return {"input_size": self.input_size, "hidden_size": self.hidden_size}

    @classmethod
    def from_config(cls, cfg: Dict[str, Any]) -> "LSTMCell":
        """Rebuild from :meth:`get_config`'s output.

        :param cfg: the config dict.
        """
        return cls(**cfg)
