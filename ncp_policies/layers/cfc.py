"""The CfC sequence layer (ncps ``CfC`` compatible, plus :meth:`run`)."""
from __future__ import annotations

from typing import Any, Dict, Optional, Union

from torch import Tensor, nn

from ..cells.base import check_wiring, wiring_config
from ..cells.cfc_cell import CfCCell
from ..cells.wired_cfc_cell import WiredCfCCell
from .base import SequenceLayer


class CfC(SequenceLayer):
    """A closed-form continuous-time RNN over sequences.

    With an int ``units`` it is a dense CfC (MLP backbone, every neuron an output); with a wiring it
    is a wired CfC whose outputs are the motor neurons (also for single-layer wirings such as
    FullyConnected, where ncps returns every neuron).

    :param input_size: number of input features F.
    :param units: number of neurons (dense), or a wiring (``ncp_policies.wirings``).
    :param proj_size: if set, a linear layer maps the outputs to this size.
    :param return_sequences: ``forward`` returns every step's output (True) or only the last.
    :param batch_first: ``forward``'s layout is (B, T, F) (True) or (T, B, F).
    :param mixed_memory: run an LSTM memory cell before the CfC cell at each step.
    :param mode: ``"default"``, ``"pure"`` or ``"no_gate"``.
    :param activation: backbone activation (dense only): ``"lecun_tanh"``, ``"tanh"``, ``"relu"``,
        ``"gelu"`` or ``"silu"``.
    :param backbone_units: backbone width (dense only; default 128).
    :param backbone_layers: backbone depth (dense only; default 1).
    :param backbone_dropout: backbone dropout (dense only; default 0).
    """

    def __init__(
        self,
        input_size: int,
        units: Union[int, Any],
        proj_size: Optional[int] = None,
        return_sequences: bool = True,
        batch_first: bool = True,
        mixed_memory: bool = False,
        mode: str = "default",
        activation: str = "lecun_tanh",
        backbone_units: Optional[int] = None,
        backbone_layers: Optional[int] = None,
        backbone_dropout: Optional[float] = None,
    ) -> None:
        super().__init__(input_size, return_sequences, batch_first)
        self.wiring_or_units = units
        self.proj_size = proj_size
        self.mode = mode
        self.activation = activation
        self.backbone_units = backbone_units
        self.backbone_layers = backbone_layers
        self.backbone_dropout = backbone_dropout
        if isinstance(units, int) and not isinstance(units, bool):
            self.rnn_cell = CfCCell(
                input_size,
                units,
                mode,
                activation,
                128 if backbone_units is None else backbone_units,
                1 if backbone_layers is None else backbone_layers,
                0.0 if backbone_dropout is None else backbone_dropout,
            )
        else:
            check_wiring(units, "units")
            for name, value in (
                ("backbone_units", backbone_units),
                ("backbone_layers", backbone_layers),
                ("backbone_dropout", backbone_dropout),
            ):
                if value is not None:
                    raise ValueError(f"{name} is only for a dense CfC (int units); a wired CfC has no backbone")
            self.rnn_cell = WiredCfCCell(input_size, units, mode)
        self._init_memory(mixed_memory)
        if proj_size is None:
            self.fc: nn.Module = nn.Identity()
        else:
            if isinstance(proj_size, bool) or not isinstance(proj_size, int) or proj_size < 1:
                raise ValueError(f"proj_size must be None or an int >= 1, got {proj_size!r}")
            self.fc = nn.Linear(self.motor_size, proj_size)

    @property
    def output_size(self) -> int:
        """Size of each step's output: ``proj_size`` if set, else the number of motor neurons."""
        return self.motor_size if self.proj_size is None else self.proj_size

    def _project(self, outputs: Tensor) -> Tensor:
        return outputs if self.proj_size is None else self.fc(outputs)

    def get_config(self) -> Dict[str, Any]:
        """JSON-able constructor arguments (the wiring as its ``to_config()``)."""
        wired = isinstance(self.rnn_cell, WiredCfCCell)
        return {
            "input_size": self.input_size,
            "units": None if wired else self.wiring_or_units,
            "wiring": wiring_config(self.rnn_cell.wiring) if wired else None,
            "proj_size": self.proj_size,
            "return_sequences": self.return_sequences,
            "batch_first": self.batch_first,
            "mixed_memory": self.use_mixed,
            "mode": self.mode,
            "activation": self.activation,
            "backbone_units": self.backbone_units,
            "backbone_layers": self.backbone_layers,
            "backbone_dropout": self.backbone_dropout,
        }
