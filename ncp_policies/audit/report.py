"""``audit(...)``: record, draw, attribute and ablate in one call, and write a short summary."""
from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import gymnasium as gym
import numpy as np
import torch

from .ablation import Ablation, ablate
from .adapters import make_adapter
from .attribution import Attribution, attribute
from .plots import plot_activity_heatmap, plot_motor_traces, plot_wiring
from .recording import Recording, make_env, record
from .video import render_video


@dataclass
class AuditReport:
    """Everything :func:`audit` computed and the files it wrote.

    :param recording: the recorded rollout
    :param attribution: observation -> motor attribution (None if skipped)
    :param ablation: per-neuron ablation (None if skipped)
    :param files: written paths by name ("npz", "heatmap", "summary", ...)
    :param summary: the text of ``summary.md``
    """

    recording: Recording
    attribution: Attribution | None
    ablation: Ablation | None
    files: dict[str, Path] = field(default_factory=dict)
    summary: str = ""


def audit(
    model: Any,
    env_id: str | gym.Env,
    episodes: int = 3,
    out_dir: str | Path = "audit",
    seed: int = 0,
    *,
    max_steps: int | None = None,
    video: str | None = "mp4",
    max_frames: int = 200,
    attribution: bool = True,
    ablation: bool = True,
    baseline: str = "zeros",
    rest: str = "zero",
) -> AuditReport:
    """Audit a trained NCP agent and write everything into ``out_dir``.

    Writes ``activity.npz`` / ``activity.csv`` / ``recording.json``, ``heatmap.png``,
    ``motor_traces.png``, ``wiring_activity.png``, ``video.mp4`` (or ``.gif``),
    ``attribution.csv`` / ``.png``, ``ablation.csv`` / ``.png`` and ``summary.md`` naming the most
    active and the most influential neurons. Deterministic given ``seed`` (episode k resets with
    ``seed + k``; torch is seeded too).

    :param model: an SB3 ``RecurrentPPO`` model with ``NCPActorCriticPolicy``, a bare LTC / CfC layer
        (flattened observations in, outputs clipped / argmaxed to actions) or a PolicyAdapter
    :param env_id: Gymnasium id (or environment; a video then needs ``render_mode="rgb_array"``)
    :param episodes: recorded episodes, also the evaluation episodes per ablated neuron
    :param out_dir: output folder (created)
    :param seed: base seed
    :param max_steps: cut every episode after this many steps (None: run to its end)
    :param video: ``"mp4"``, ``"gif"`` or None (no rendering)
    :param max_frames: at most this many video frames
    :param attribution: compute integrated-gradients attribution
    :param ablation: compute per-neuron ablation ((N + 1) x episodes evaluation episodes)
    :param baseline: attribution baseline, ``"zeros"`` or ``"mean"``
    :param rest: ablation rest value, ``"zero"`` or ``"mean"``
    """
    if video not in (None, "mp4", "gif"):
        raise ValueError(f"video: expected 'mp4', 'gif' or None, got {video!r}")
    torch.manual_seed(seed)
    out = Path(out_dir)
    env = make_env(env_id, render=video is not None)
    adapter = make_adapter(model, env.action_space)
    rec = record(adapter, env, episodes, seed, render=video is not None, max_frames=max_frames, max_steps=max_steps)
    if isinstance(env_id, str):
        rec.metadata["env_id"] = env_id
    files: dict[str, Path] = dict(rec.save(out))
    files["heatmap"] = out / "heatmap.png"
    plot_activity_heatmap(rec, files["heatmap"])
    has_motors = rec.neurons_of("motor").size > 0
    if has_motors:
        files["motor_traces"] = out / "motor_traces.png"
        plot_motor_traces(rec, files["motor_traces"])
    if rec.wiring is not None:
        files["wiring"] = out / "wiring_activity.png"
        plot_wiring(rec, files["wiring"], wiring=adapter.wiring)
    if video is not None:
        files["video"] = render_video(rec, out / f"video.{video}", max_frames=max_frames)
    attr = None
    if attribution and has_motors:
        attr = attribute(adapter, rec, baseline=baseline)
        files["attribution_csv"] = attr.to_csv(out / "attribution.csv")
        files["attribution_png"] = out / "attribution.png"
        attr.plot(files["attribution_png"])
    abl = None
    if ablation:
        abl = ablate(adapter, make_env(env_id) if video is not None and isinstance(env_id, str) else env, rec,
                     episodes, seed, rest=rest, max_steps=max_steps)
        files["ablation_csv"] = abl.to_csv(out / "ablation.csv")
        files["ablation_png"] = out / "ablation.png"
        abl.plot(files["ablation_png"])
    text = summarize(rec, attr, abl)
    files["summary"] = out / "summary.md"
    files["summary"].write_text(text)
    return AuditReport(rec, attr, abl, files, text)


def summarize(recording: Recording, attribution: Attribution | None, ablation: Ablation | None, top: int = 3) -> str:
    """Markdown summary: returns, the most active neurons, the most influential neurons and features.

    :param recording: the rollout
    :param attribution: its attribution, or None
    :param ablation: its ablation, or None
    :param top: how many neurons to name per list
    """
    meta = recording.metadata
    lines = [
        f"# NCP audit: {meta.get('env_id')}",
        "",
        f"- episodes: {meta.get('episodes')} (seed {meta.get('seed')}), steps recorded: {recording.n_steps}",
        f"- returns: {', '.join(f'{r:.2f}' for r in recording.returns)} (mean {np.mean(recording.returns):.2f})",
        f"- neurons: {recording.n_neurons} ("
        + ", ".join(f"{int((recording.roles == r).sum())} {r}" for r in ("motor", "command", "inter")) + ")",
        "",
        "## Most active neurons (mean |state|)",
    ]
    activity = np.abs(recording.activity).mean(0)
    for i in np.argsort(-activity)[:top]:
        lines.append(f"- neuron {recording.neuron_ids[i]} ({recording.roles[i]}): {activity[i]:.4f}")
    if ablation is not None:
        lines += ["", f"## Most influential neurons (ablation, rest={ablation.rest}; "
                  f"baseline return {ablation.baseline_return:.2f})"]
        for k in np.lexsort((-ablation.action_change, -ablation.return_drop))[:top]:
            lines.append(f"- neuron {ablation.neuron_ids[k]} ({ablation.roles[k]}): return drop "
                         f"{ablation.return_drop[k]:.3f}, action change {ablation.action_change[k]:.4f}")
    if attribution is not None:
        lines += ["", f"## Strongest observation -> motor drives (integrated gradients, baseline {attribution.baseline})"]
        for m, motor in enumerate(attribution.motor_ids):
            j = int(np.argmax(attribution.abs_table[m]))
            lines.append(f"- motor {motor}: {attribution.feature_names[j]} "
                         f"(|IG| {attribution.abs_table[m, j]:.4f}, signed {attribution.table[m, j]:+.4f})")
    lines += ["", "Files: activity.npz / activity.csv / recording.json, *.png, ablation.csv, attribution.csv.", ""]
    return "\n".join(lines)

