"""ncp_policies.audit: look inside trained NCP agents.

``record`` a seeded rollout (every step, every neuron), draw it (``plot_*``, ``render_video``),
``attribute`` motor neurons to observation features (integrated gradients), ``ablate`` each
neuron, or do everything with ``audit(model, env_id, episodes, out_dir, seed)``.
"""
from __future__ import annotations

from .ablation import Ablation, ablate
from .adapters import NCPExtractorAdapter, NetworkAdapter, PolicyAdapter, RecurrentPPOAdapter, StepResult, make_adapter
from .attribution import Attribution, attribute
from .plots import plot_activity_heatmap, plot_motor_traces, plot_wiring
from .recording import Recording, record
from .report import AuditReport, audit, summarize
from .video import render_video

__all__ = [
    "Ablation",
    "Attribution",
    "AuditReport",
    "NCPExtractorAdapter",
    "NetworkAdapter",
    "PolicyAdapter",
    "Recording",
    "RecurrentPPOAdapter",
    "StepResult",
    "ablate",
    "attribute",
    "audit",
    "make_adapter",
    "plot_activity_heatmap",
    "plot_motor_traces",
    "plot_wiring",
    "record",
    "render_video",
    "summarize",
]
