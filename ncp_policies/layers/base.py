"""What the LTC and CfC sequence layers share: argument handling, ``run`` and ncps' ``forward``."""
from __future__ import annotations

from typing import Any, Dict, List, Optional, Tuple, Union

import torch
from torch import Tensor, nn

from ..cells.base import SequenceCell, wiring_from_config
from ..cells.lstm_cell import LSTMCell
from .checks import check_input, clamp_spec, initial_state, keep_from_resets, timespans_tensor
from .sequence import SequenceOutput, run_sequence

HiddenState = Union[Tensor, Tuple[Tensor, Tensor]]


class SequenceLayer(nn.Module):
    """Base of :class:`~ncp_policies.layers.LTC` and :class:`~ncp_policies.layers.CfC`.

    Subclasses set ``self.rnn_cell`` (a :class:`SequenceCell`), then call :meth:`_init_memory`.

    :param input_size: number of input features F.
    :param return_sequences: ``forward`` returns every step's output (True) or only the last.
    :param batch_first: ``forward``'s layout is (B, T, F) (True) or (T, B, F).
    """

    rnn_cell: SequenceCell

    def __init__(self, input_size: int, return_sequences: bool = True, batch_first: bool = True) -> None:
        super().__init__()
        if isinstance(input_size, bool) or not isinstance(input_size, int) or input_size < 1:
            raise ValueError(f"input_size must be an int >= 1, got {input_size!r}")
        self.input_size = input_size
        self.return_sequences = bool(return_sequences)
        self.batch_first = bool(batch_first)
        self._use_mixed = False
        self.lstm: Optional[LSTMCell] = None

    def _init_memory(self, mixed_memory: bool) -> None:
        self._use_mixed = bool(mixed_memory)
        if self._use_mixed:
            self.lstm = LSTMCell(self.input_size, self.state_size)

    # ------------------------------------------------------------------ properties
    @property
    def wiring(self) -> Optional[Any]:
        """The wiring (None for a dense CfC)."""
        return getattr(self.rnn_cell, "wiring", None)

    @property
    def state_size(self) -> int:
        """Number of neurons N."""
        return self.rnn_cell.state_size

    @property
    def sensory_size(self) -> int:
        """Number of input features F."""
        return self.input_size

    @property
    def motor_size(self) -> int:
        """Number of motor neurons read out (before any projection)."""
        return self.rnn_cell.motor_size

    @property
    def output_size(self) -> int:
        """Size of each step's output O."""
        return self.motor_size

    @property
    def use_mixed(self) -> bool:
        """Whether an LSTM memory cell runs before the cell at each step."""
        return self._use_mixed

    @property
    def state_neuron_ids(self) -> List[int]:
        """The wiring neuron id held at each position of the state (identity except for wired CfC)."""
        ids = getattr(self.rnn_cell, "state_neuron_ids", None)
        return list(range(self.state_size)) if ids is None else list(ids)

    def _project(self, outputs: Tensor) -> Tensor:
        """Map the cell's outputs (..., motor) to the layer's outputs (..., O). Identity by default."""
        return outputs

    def get_config(self) -> Dict[str, Any]:
        """JSON-able constructor arguments (each subclass lists its own)."""
        raise NotImplementedError(f"{type(self).__name__} must implement get_config()")

    @classmethod
    def from_config(cls, cfg: Dict[str, Any]) -> "SequenceLayer":
        """Rebuild a layer (fresh weights) from :meth:`get_config`'s output.

        :param cfg: the config dict; its ``"wiring"`` entry (a wiring config) is used when
            ``"units"`` is None.
        """
        cfg = dict(cfg)
        wiring = cfg.pop("wiring", None)
        if cfg.get("units") is None:
            cfg["units"] = wiring_from_config(wiring)
        return cls(**cfg)

    # ------------------------------------------------------------------ running

    def run(
        self,
        x: Tensor,
        hx: Optional[HiddenState] = None,
        timespans: Optional[Union[float, Tensor]] = None,
        resets: Optional[Tensor] = None,
        clamp: Optional[Tuple[Tensor, Tensor]] = None,
    ) -> SequenceOutput:
        """Run a batch-first sequence and return outputs and every state.

        :param x: (B, T, F) inputs.
        :param hx: None (zeros), (B, N), or with mixed memory a tuple ((B, N), (B, N)).
        :param timespans: None (1.0), a positive float, or (B, T) / (B, T, 1) per sample and step.
        :param resets: None or (B, T) of 0 / 1: 1 zeroes the state (h and c) before step t.
        :param clamp: None or (index (K,) long, values (K,) or (B, K)): those state entries are
            overwritten with the values after every step.
        :return: :class:`SequenceOutput` (outputs (B, T, O), states (B, T, N), cell_states, hx).
        """
        owner = type(self).__name__
        check_input(x, self.input_size, owner, self._param_dtype())
        batch, steps = x.shape[0], x.shape[1]
        h0, c0 = initial_state(hx, batch, self.state_size, self._use_mixed, owner, x)
        ts = timespans_tensor(timespans, batch, steps, x)
        keep = keep_from_resets(resets, batch, steps, x)
        clamp_ = clamp_spec(clamp, batch, self.state_size, x)
        if steps == 1 and clamp_ is None and self.lstm is None and not torch.is_grad_enabled():
            # rollouts: the cell's fast step, whose output is already read out
            fast = self.rnn_cell.inference_step(x[:, 0], h0 if keep is None else h0 * keep, ts)
            if fast is not None:
                out, h = fast
                return SequenceOutput(self._project(out).unsqueeze(1), h.unsqueeze(1), None, h)
        states, cell_states = run_sequence(self.rnn_cell, x, h0, ts, keep, clamp_, self.lstm, c0)
        outputs = self._project(self.rnn_cell.readout(states))
        h = states[:, -1]
        final: HiddenState = h if cell_states is None else (h, cell_states[:, -1])
        return SequenceOutput(outputs, states, cell_states, final)

    def forward(
        self,
        input: Tensor,
        hx: Optional[HiddenState] = None,
        timespans: Optional[Union[float, Tensor]] = None,
    ) -> Tuple[Tensor, HiddenState]:
        """ncps' interface.

        :param input: (B, T, F) if ``batch_first`` else (T, B, F); or unbatched (T, F).
        :param hx: None, (B, N) ((N,) unbatched), or with mixed memory a tuple (h, c) of those.
        :param timespans: None, a float, or per step: (B, T) / (B, T, 1) in the input's layout
            ((T, B) / (T, B, 1) when not batch-first, (T,) / (T, 1) unbatched).
        :return: ``(output, hx)``: output (B, T, O) in the input's layout, or (B, O) when
            ``return_sequences`` is False; hx the final state in the format of ``hx``.
        """
        if not isinstance(input, Tensor) or input.dim() not in (2, 3):
            shape = tuple(input.shape) if isinstance(input, Tensor) else type(input).__name__
            raise ValueError(
                f"{type(self).__name__} input must be (batch, time, features), (time, batch, features) "
                f"with batch_first=False, or unbatched (time, features); got {shape}"
            )
        batched = input.dim() == 3
        if not batched:
            x = input.unsqueeze(0)
            if isinstance(timespans, Tensor) and timespans.dim() >= 1:
                timespans = timespans.unsqueeze(0)
            hx = self._batch_state(hx)
        elif self.batch_first:
            x = input
        else:
            x = input.transpose(0, 1)
            if isinstance(timespans, Tensor) and timespans.dim() >= 2:
                timespans = timespans.transpose(0, 1)
        out = self.run(x, hx, timespans)
        y = out.outputs if self.return_sequences else out.outputs[:, -1]
        final = out.hx
        if not batched:
            y = y[0]
            final = (final[0][0], final[1][0]) if isinstance(final, tuple) else final[0]
        elif not self.batch_first and self.return_sequences:
            y = y.transpose(0, 1)
        return y, final

    def _batch_state(self, hx: Optional[HiddenState]) -> Optional[HiddenState]:
        """Add the batch dimension to an unbatched (N,) state (or tuple of them)."""
        if hx is None:
            return None
        parts = hx if isinstance(hx, (tuple, list)) else (hx,)
        for p in parts:
            if isinstance(p, Tensor) and p.dim() != 1:
                raise ValueError(
                    f"for unbatched (time, features) input, hx must be 1-D ({self.state_size},), got {tuple(p.shape)}"
                )
        if isinstance(hx, (tuple, list)):
            return tuple(p.unsqueeze(0) if isinstance(p, Tensor) else p for p in hx)
        return hx.unsqueeze(0) if isinstance(hx, Tensor) else hx

    def _param_dtype(self) -> torch.dtype:
        """The dtype of the cell's parameters (looked up through a cached (dict, name) pair)."""
        ref = self.__dict__.get("_dtype_ref")
        if ref is None:
            ref = next(
                (m._parameters, name)
                for m in self.rnn_cell.modules()
                for name, p in m._parameters.items()
                if p is not None
            )
            self.__dict__["_dtype_ref"] = ref
        return ref[0][ref[1]].dtype
