"""Sequence layers (LTC, CfC) and the sequence loop they share."""
from .base import SequenceLayer
from .cfc import CfC
from .ltc import LTC
from .sequence import SequenceOutput, run_sequence

__all__ = ["LTC", "CfC", "SequenceLayer", "SequenceOutput", "run_sequence"]
