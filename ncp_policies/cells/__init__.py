"""Recurrent cells: one-step modules, ncps-compatible (LTC, CfC, wired CfC, LSTM memory)."""
from .base import SequenceCell
from .cfc_cell import CfCCell
from .lstm_cell import LSTMCell
from .ltc_cell import LTCCell
from .wired_cfc_cell import WiredCfCCell

__all__ = ["SequenceCell", "LTCCell", "CfCCell", "WiredCfCCell", "LSTMCell"]
