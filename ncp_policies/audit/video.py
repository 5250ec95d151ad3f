"""Video: the environment's frames beside a live panel of neuron activity (mp4 or gif)."""
from __future__ import annotations

from pathlib import Path

import numpy as np
from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.figure import Figure

from .plots import role_order
from .recording import Recording


def render_video(
    recording: Recording,
    path: str | Path,
    max_frames: int = 200,
    fps: int = 20,
    dpi: int = 80,
) -> Path:
    """Write a video of the rollout: rendered frame on the left, neurons x time activity on the
    right (filled in up to the current step, neurons grouped by role, cursor at the current step).

    Frame k shows the environment before step k and the activity after step k. The canvas is
    512 x 256 pixels at the default ``dpi``; cost is about one small matplotlib draw per frame.

    :param recording: a rollout recorded with ``render=True`` (its ``frames`` are used)
    :param path: ``.mp4`` (imageio-ffmpeg) or ``.gif`` (imageio)
    :param max_frames: at most this many frames are written
    :param fps: frames per second
    :param dpi: resolution of the 6.4 x 3.2 inch canvas
    :return: the written path
    """
    import imageio.v2 as imageio

    out = Path(path)
    if out.suffix not in (".mp4", ".gif"):
        raise ValueError(f"path: video format must be .mp4 or .gif, got {out.suffix!r} in {str(path)!r}")
    if not recording.frames:
        raise ValueError("recording: has no frames; record it with render=True (e.g. record(..., render=True))")
    if max_frames < 1:
        raise ValueError(f"max_frames: must be >= 1, got {max_frames}")
    n_frames = min(max_frames, len(recording.frames), recording.n_steps)
    order = role_order(recording.roles, recording.neuron_ids)
    activity = recording.activity[:n_frames, order].T  # (N, F)
    lim = float(np.abs(activity).max()) or 1.0

    fig = Figure(figsize=(6.4, 3.2), dpi=dpi)
    canvas = FigureCanvasAgg(fig)
    ax_env, ax_act = fig.subplots(1, 2, gridspec_kw={"width_ratios": [1, 1.3]})
    stride = max(1, recording.frames[0].shape[0] // (2 * 128 * dpi // 80))  # no more pixels than shown
    env_image = ax_env.imshow(recording.frames[0][::stride, ::stride])
    ax_env.set_axis_off()
    # steps not reached yet are masked; zeros beneath (masked_all leaves memory uninitialised, which the
    # colormap still scales: overflow warnings on whatever bytes were there)
    shown = np.ma.masked_array(np.zeros(activity.shape), mask=True)
    act_image = ax_act.imshow(shown, aspect="auto", interpolation="nearest", cmap="RdBu_r", vmin=-lim, vmax=lim,
                              extent=(-0.5, n_frames - 0.5, len(order) - 0.5, -0.5))
    ax_act.set_yticks(range(len(order)), [f"{recording.roles[i][0]}{recording.neuron_ids[i]}" for i in order],
                      fontsize=5)
    ax_act.set_xlabel("step", fontsize=7)
    ax_act.tick_params(axis="x", labelsize=6)
    cursor = ax_act.axvline(0, color="black", lw=1)
    title = ax_act.set_title("episode 0  step 0", fontsize=8)
    fig.tight_layout()
    moving = (env_image, act_image, cursor, title)
    for artist in moving:
        artist.set_animated(True)
    canvas.draw()
    background = canvas.copy_from_bbox(fig.bbox)  # axes, ticks, labels: drawn once, blitted per frame

    out.parent.mkdir(parents=True, exist_ok=True)
    writer = imageio.get_writer(out, fps=fps) if out.suffix == ".mp4" else None
    gif_frames = []
    try:
        for k in range(n_frames):
            env_image.set_data(recording.frames[k][::stride, ::stride])
            shown[:, k] = activity[:, k]
            act_image.set_data(shown)
            cursor.set_xdata([k, k])
            title.set_text(f"episode {recording.episode[k]}  step {recording.step[k]}")
            canvas.restore_region(background)
            for artist in moving:
                fig.draw_artist(artist)
            rgb = np.asarray(canvas.buffer_rgba())[..., :3].copy()
            if writer is not None:
                writer.append_data(rgb)
            else:
                gif_frames.append(rgb)
    finally:
        if writer is not None:
            writer.close()
    if writer is None:
        imageio.mimsave(out, gif_frames, duration=1000 / fps, loop=0)
    return out
