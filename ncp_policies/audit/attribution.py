"""Attribution: how strongly each observation feature drives each motor neuron over a rollout.

Integrated gradients (Sundararajan et al., 2017) through the whole recurrent network: for each
recorded episode with observations X (T, F) and a baseline X0 (zeros, or the mean observation at
every step), the target of motor neuron m is its mean state over the episode,
``f_m(X) = mean_t h_m(t)`` with the network run from the zero state. The attribution of feature
j at step t is ``(X - X0)[t, j] * mean_alpha d f_m / d X[t, j]`` at ``X0 + alpha (X - X0)``
(midpoint rule, ``n_alphas`` points, all run as one batch). Summed over time this gives a
signed (motors x features) table whose rows add up to ``f_m(X) - f_m(X0)`` (completeness, up to
the quadrature error); ``abs_table`` sums the absolute values instead, so that drives of opposite
sign at different times do not cancel. Both are averaged over episodes.
"""
from __future__ import annotations

import csv
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch
from matplotlib.figure import Figure

from .adapters import make_adapter
from .recording import Recording


@dataclass
class Attribution:
    """Integrated-gradients attribution of observation features to motor neurons.

    :param table: (M, F) signed attribution, summed over time, averaged over episodes
    :param abs_table: (M, F) absolute attribution, summed over time, averaged over episodes
    :param delta: (M,) ``f_m(X) - f_m(X0)`` averaged over episodes (rows of ``table`` sum to it)
    :param motor_ids: (M,) the motor neurons' wiring ids (row order: ascending id, motor 0 first)
    :param feature_names: F names, ``obs[j]`` by default
    :param baseline: ``"zeros"`` or ``"mean"``
    """

    table: np.ndarray
    abs_table: np.ndarray
    delta: np.ndarray
    motor_ids: np.ndarray
    feature_names: list[str]
    baseline: str

    def to_csv(self, path: str | Path) -> Path:
        """Write one row per (motor, feature): ``motor_id, feature, attribution, abs_attribution``.

        :param path: the CSV file
        """
        out = Path(path)
        out.parent.mkdir(parents=True, exist_ok=True)
        with out.open("w", newline="") as f:
            writer = csv.writer(f)
            writer.writerow(["motor_id", "feature", "attribution", "abs_attribution"])
            for i, motor in enumerate(self.motor_ids):
                for j, name in enumerate(self.feature_names):
                    writer.writerow([int(motor), name, float(self.table[i, j]), float(self.abs_table[i, j])])
        return out

    def plot(self, path: str | Path | None = None) -> Figure:
        """Heatmap of the signed table (motors x features), absolute values written in the cells.

        :param path: where to save (optional)
        """
        m, f = self.table.shape
        fig = Figure(figsize=(1.5 + 0.7 * f, 1.2 + 0.5 * m))
        ax = fig.add_subplot()
        lim = float(np.abs(self.table).max()) or 1.0
        image = ax.imshow(self.table, cmap="RdBu_r", vmin=-lim, vmax=lim, aspect="auto")
        for i in range(m):
            for j in range(f):
                ax.text(j, i, f"{self.abs_table[i, j]:.2g}", ha="center", va="center", fontsize=7)
        ax.set_xticks(range(f), self.feature_names, rotation=45, ha="right", fontsize=8)
        ax.set_yticks(range(m), [f"motor {k}" for k in self.motor_ids], fontsize=8)
        fig.colorbar(image, ax=ax, label="integrated gradients (signed; text: |.|)")
        ax.set_title(f"observation -> motor attribution (baseline {self.baseline})")
        if path is not None:
            Path(path).parent.mkdir(parents=True, exist_ok=True)
            fig.savefig(path, dpi=100, bbox_inches="tight")
        return fig


def attribute(
    agent: Any,
    recording: Recording,
    baseline: str = "zeros",
    n_alphas: int = 32,
    feature_names: list[str] | None = None,
    max_steps: int | None = None,
) -> Attribution:
    """Integrated gradients of each motor neuron's mean state w.r.t. the recorded observations.

    :param agent: the agent that was recorded (SB3 model, bare layer or PolicyAdapter)
    :param recording: its rollout; each episode's (T, F) observation sequence is attributed
    :param baseline: ``"zeros"`` (all-zero observations) or ``"mean"`` (mean recorded observation)
    :param n_alphas: integration points (midpoint rule); more = smaller completeness error
    :param feature_names: F names for the table (default ``obs[j]``)
    :param max_steps: attribute only each episode's first this many steps (None: all)
    """
    if baseline not in ("zeros", "mean"):
        raise ValueError(f"baseline: expected 'zeros' or 'mean', got {baseline!r}")
    if n_alphas < 1:
        raise ValueError(f"n_alphas: must be >= 1, got {n_alphas}")
    motors = recording.neurons_of("motor")  # column positions, motor 0 first
    if motors.size == 0:
        raise ValueError("recording: has no motor neurons to attribute to (unwired layer?)")
    n_features = recording.observations.shape[1]
    names = feature_names or [f"obs[{j}]" for j in range(n_features)]
    if len(names) != n_features:
        raise ValueError(f"feature_names: got {len(names)} names for {n_features} observation features")
    adapter = make_adapter(agent, _action_space(agent, recording))
    obs_shape = tuple(recording.metadata.get("obs_shape", (n_features,)))
    x0_row = torch.zeros(n_features) if baseline == "zeros" else torch.as_tensor(recording.observations.mean(0))
    alphas = (torch.arange(n_alphas, dtype=torch.float32) + 0.5) / n_alphas

    signed, absolute, deltas = [], [], []
    for sl in recording.episode_slices():
        x = torch.as_tensor(recording.observations[sl][:max_steps])  # (T, F)
        x0 = x0_row.expand_as(x)
        path = (x0 + alphas[:, None, None] * (x - x0)).requires_grad_(True)  # (A, T, F)
        states = adapter.forward_sequence(path.reshape(n_alphas, len(x), *obs_shape)).states  # (A, T, N)
        target = states[:, :, motors].mean(1)  # (A, M)
        ig = torch.stack([
            torch.autograd.grad(target[:, i].sum(), path, retain_graph=i < len(motors) - 1)[0].mean(0) * (x - x0)
            for i in range(len(motors))
        ])  # (M, T, F)
        with torch.no_grad():
            ends = adapter.forward_sequence(torch.stack([x, x0]).reshape(2, len(x), *obs_shape)).states
            deltas.append((ends[0, :, motors].mean(0) - ends[1, :, motors].mean(0)).numpy())
        signed.append(ig.sum(1).detach().numpy())
        absolute.append(ig.abs().sum(1).detach().numpy())
    return Attribution(
        table=np.mean(signed, 0),
        abs_table=np.mean(absolute, 0),
        delta=np.mean(deltas, 0),
        motor_ids=recording.neuron_ids[motors].astype(np.int64),
        feature_names=list(names),
        baseline=baseline,
    )


def _action_space(agent: Any, recording: Recording) -> Any:
    """The action space a bare layer needs to be wrapped (only its type matters here)."""
    space = getattr(agent, "action_space", None)
    if space is not None:
        return space
    import gymnasium as gym

    return gym.spaces.Box(-np.inf, np.inf, shape=(recording.actions.shape[1],), dtype=np.float32)
