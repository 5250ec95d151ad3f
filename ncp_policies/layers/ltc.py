"""The LTC sequence layer (ncps ``LTC`` compatible, plus ``init_ranges`` and :meth:`run`)."""
from __future__ import annotations

from typing import Any, Dict, Mapping, Optional, Sequence, Union

from ..cells.base import check_wiring, wiring_config
from ..cells.ltc_cell import LTCCell
from .base import SequenceLayer


class LTC(SequenceLayer):
    """A liquid time-constant RNN over sequences.

    :param input_size: number of input features F.
    :param units: number of fully connected neurons, or a wiring (``ncp_policies.wirings``).
    :param return_sequences: ``forward`` returns every step's output (True) or only the last.
    :param batch_first: ``forward``'s layout is (B, T, F) (True) or (T, B, F).
    :param mixed_memory: run an LSTM memory cell before the LTC cell at each step.
    :param input_mapping: ``"affine"``, ``"linear"`` or ``"none"``.
    :param output_mapping: ``"affine"``, ``"linear"`` or ``"none"``.
    :param ode_unfolds: solver steps per time step.
    :param epsilon: added to the solver's denominator.
    :param implicit_param_constraints: softplus-constrain the positive parameters at run time.
    :param init_ranges: per-parameter initial ranges, e.g. ``{"w": (0.2, 2.0)}``.
    """

    def __init__(
        self,
        input_size: int,
        units: Union[int, Any],
        return_sequences: bool = True,
        batch_first: bool = True,
        mixed_memory: bool = False,
        input_mapping: str = "affine",
        output_mapping: str = "affine",
        ode_unfolds: int = 6,
        epsilon: float = 1e-8,
        implicit_param_constraints: bool = True,
        init_ranges: Optional[Mapping[str, Sequence[float]]] = None,
    ) -> None:
        super().__init__(input_size, return_sequences, batch_first)
        if isinstance(units, int) and not isinstance(units, bool):
            if units < 1:
                raise ValueError(f"units must be >= 1, got {units}")
            from ..wirings import FullyConnected

            wiring = FullyConnected(units)
        else:
            check_wiring(units, "units")
            wiring = units
        self.wiring_or_units = units
        self.rnn_cell = LTCCell(
            wiring,
            in_features=input_size,
            input_mapping=input_mapping,
            output_mapping=output_mapping,
            ode_unfolds=ode_unfolds,
            epsilon=epsilon,
            implicit_param_constraints=implicit_param_constraints,
            init_ranges=init_ranges,
        )
        self._init_memory(mixed_memory)

    def apply_weight_constraints(self) -> None:
        """Clip the positive parameters (only needed with ``implicit_param_constraints=False``)."""
        self.rnn_cell.apply_weight_constraints()

    def get_config(self) -> Dict[str, Any]:
        """JSON-able constructor arguments (the wiring as its ``to_config()``)."""
        cell = self.rnn_cell
        wired = not isinstance(self.wiring_or_units, int)
        return {
            "input_size": self.input_size,
            "units": None if wired else self.wiring_or_units,
            # informative for int units (rebuilt as FullyConnected(units)); needed for a wiring
            "wiring": wiring_config(cell.wiring) if wired or hasattr(cell.wiring, "to_config") else None,
            "return_sequences": self.return_sequences,
            "batch_first": self.batch_first,
            "mixed_memory": self.use_mixed,
            "input_mapping": cell.input_mapping,
            "output_mapping": cell.output_mapping,
            "ode_unfolds": cell.ode_unfolds,
            "epsilon": cell.epsilon,
            "implicit_param_constraints": cell.implicit_param_constraints,
            "init_ranges": cell.init_range_overrides,
        }
