"""``ncp record``: a video (mp4 or gif, via imageio) of a trained model acting."""
from __future__ import annotations

from pathlib import Path

import numpy as np

from .errors import UsageError
from .runs import load_run

FORMATS = (".mp4", ".gif")


def record(path: str | Path, out: str | Path | None = None, episodes: int = 1, env_id: str | None = None,
           stochastic: bool = False, seed: int = 12345, device: str = "cpu", fps: int = 30,
           which: str = "best", max_frames: int = 10_000) -> Path:
    """Render ``episodes`` episodes of a trained model to a video.

    :param path: run directory or model zip inside one
    :param out: ``.mp4`` or ``.gif`` file; ``RUN_DIR/video.mp4`` when None
    :param episodes: number of episodes (>= 1)
    :param env_id: act in this env instead of the training one (spaces must match)
    :param stochastic: sample actions instead of taking the most likely one
    :param seed: seed of the env
    :param device: torch device
    :param fps: frames per second of the video
    :param which: ``"best"`` or ``"last"`` checkpoint of a run directory
    :param max_frames: stop after this many frames whatever the episodes
    :return: the video file
    """
    import imageio.v2 as imageio

    if episodes < 1:
        raise UsageError(f"--episodes must be >= 1, got {episodes}")
    run = load_run(path, env_id=env_id, seed=seed, device=device, render_mode="rgb_array", which=which)
    out = Path(out) if out is not None else run.run_dir / "video.mp4"
    if out.suffix.lower() not in FORMATS:
        raise UsageError(f"--out {out} has an unsupported extension; use one of: {', '.join(FORMATS)}")
    render_env = run.venv.unwrapped.envs[0] if hasattr(run.venv.unwrapped, "envs") else None
    if render_env is None:  # pragma: no cover - make_venv always builds a DummyVecEnv
        raise UsageError("recording needs a DummyVecEnv")
    frames: list[np.ndarray] = []
    obs = run.venv.reset()
    state, start = None, np.ones((1,), dtype=bool)
    done_episodes = 0
    frames.append(render_env.render())
    while done_episodes < episodes and len(frames) < max_frames:
        action, state = run.model.predict(obs, state=state, episode_start=start, deterministic=not stochastic)
        obs, _, dones, _ = run.venv.step(action)
        start = dones
        done_episodes += int(dones[0])
        frames.append(render_env.render())
    run.venv.close()
    out.parent.mkdir(parents=True, exist_ok=True)
    if out.suffix.lower() == ".gif":
        imageio.mimsave(out, frames, duration=1000 / fps, loop=0)
    else:
        imageio.mimsave(out, frames, fps=fps, macro_block_size=1)
    return out
