"""``ncp audit``: load a run and hand it to :func:`ncp_policies.audit.audit` (the audit folder)."""
from __future__ import annotations

from pathlib import Path
from typing import Any

from .build import make_single_env
from .checkpoint import read_checkpoint_state
from .errors import UsageError
from .normalized_env import FrozenNormalizeObservation
from .runs import load_run


def audit_env(env_id: str, checkpoint: Path, render_mode: str | None = None) -> Any:
    """One plain env that shows the policy the observations it was trained on.

    :param env_id: Gymnasium id
    :param checkpoint: model zip whose VecNormalize statistics to apply (if any)
    :param render_mode: e.g. ``"rgb_array"``
    :return: the env, wrapped in :class:`FrozenNormalizeObservation` when the run normalised
    """
    env = make_single_env(env_id, **({"render_mode": render_mode} if render_mode else {}))
    state = read_checkpoint_state(checkpoint).get("vecnormalize")
    return FrozenNormalizeObservation(env, state) if state else env


def run_audit(path: str | Path, env_id: str | None = None, episodes: int = 3, out: str | Path | None = None,
              seed: int = 0, device: str = "cpu") -> Path:
    """Audit a trained model: write the audit folder of :func:`ncp_policies.audit.audit`.

    :param path: run directory or model zip inside one
    :param env_id: audit on this env instead of the training one (spaces must match)
    :param episodes: number of episodes (>= 1)
    :param out: audit folder; ``RUN_DIR/audit`` when None
    :param seed: base seed of the audited episodes
    :param device: torch device
    :return: the audit folder
    """
    try:
        from ncp_policies.audit import audit
    except ImportError:
        raise UsageError("ncp_policies.audit.audit is not available in this installation") from None
    if episodes < 1:
        raise UsageError(f"--episodes must be >= 1, got {episodes}")
    run = load_run(path, env_id=env_id, device=device)
    out_dir = Path(out) if out is not None else run.run_dir / "audit"
    env: Any = run.config["env"]
    if run.config.get("normalize"):
        # the audit drives a plain gym.Env: give it one that normalises as VecNormalize did in training
        env = audit_env(run.config["env"], run.checkpoint, render_mode="rgb_array")
    try:
        result = audit(run.model, env, episodes=episodes, out_dir=out_dir, seed=seed)
    except (TypeError, ValueError) as err:  # e.g. a model without an NCP actor
        raise UsageError(f"cannot audit {run.checkpoint}: {' '.join(str(err).split())}") from None
    run.venv.close()
    return Path(getattr(result, "out_dir", out_dir))
