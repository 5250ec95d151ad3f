"""Ablation: silence each neuron in turn and measure what the agent loses.

A silenced neuron is clamped to its *rest value* after every step (the layer's ``run(clamp=...)``):

* ``rest="zero"`` (default): 0, the state every episode starts from;
* ``rest="mean"``: its mean state over the given recording (removes its variation only).

Two measures per neuron:

* ``return_drop``: baseline mean return minus the ablated mean return, both over the same seeded
  evaluation episodes (closed loop, deterministic actions);
* ``action_change``: open loop over the recording's observation sequences, the mean absolute
  difference between ablated and unablated actions (Box spaces) or the fraction of steps whose
  action differs (Discrete spaces).
"""
from __future__ import annotations

import csv
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import gymnasium as gym
import numpy as np
import torch
from matplotlib.figure import Figure

from .adapters import PolicyAdapter, make_adapter
from .plots import ROLE_COLORS
from .recording import Recording, columns_for_ids, make_env, record, rollout


@dataclass
class Ablation:
    """Effect of silencing each neuron. K = number of ablated neurons.

    :param neuron_ids: (K,) the ablated neurons' wiring ids
    :param roles: (K,) their roles
    :param rest_values: (K,) the values they were clamped to
    :param returns: (K,) mean evaluation return with the neuron silenced
    :param baseline_return: mean evaluation return of the intact agent
    :param return_drop: (K,) ``baseline_return - returns``
    :param action_change: (K,) mean |delta action| (Box) or fraction of changed actions (Discrete)
    :param rest: ``"zero"`` or ``"mean"``
    """

    neuron_ids: np.ndarray
    roles: np.ndarray
    rest_values: np.ndarray
    returns: np.ndarray
    baseline_return: float
    return_drop: np.ndarray
    action_change: np.ndarray
    rest: str

    def to_csv(self, path: str | Path) -> Path:
        """Write one row per neuron: ``neuron_id, role, rest_value, return, return_drop, action_change``.

        :param path: the CSV file
        """
        out = Path(path)
        out.parent.mkdir(parents=True, exist_ok=True)
        with out.open("w", newline="") as f:
            writer = csv.writer(f)
            writer.writerow(["neuron_id", "role", "rest_value", "return", "return_drop", "action_change"])
            for k in range(len(self.neuron_ids)):
                writer.writerow([int(self.neuron_ids[k]), str(self.roles[k]), float(self.rest_values[k]),
                                 float(self.returns[k]), float(self.return_drop[k]), float(self.action_change[k])])
        return out

    def plot(self, path: str | Path | None = None) -> Figure:
        """Bar plots of the return drop and the action change per neuron, coloured by role.

        :param path: where to save (optional)
        """
        fig = Figure(figsize=(max(5, 0.35 * len(self.neuron_ids) + 2), 4.5))
        ax_ret, ax_act = fig.subplots(2, 1, sharex=True)
        x = np.arange(len(self.neuron_ids))
        colors = [ROLE_COLORS.get(str(r), "gray") for r in self.roles]
        ax_ret.bar(x, self.return_drop, color=colors)
        ax_ret.axhline(0, color="black", lw=0.8)
        ax_ret.set_ylabel("return drop")
        ax_ret.set_title(f"ablation (rest={self.rest}); baseline return {self.baseline_return:.1f}")
        ax_act.bar(x, self.action_change, color=colors)
        ax_act.set_ylabel("action change")
        ax_act.set_xticks(x, [f"{str(r)[0]}{i}" for i, r in zip(self.neuron_ids, self.roles)], fontsize=7)
        ax_act.set_xlabel("neuron (m: motor, c: command, i: inter)")
        if path is not None:
            Path(path).parent.mkdir(parents=True, exist_ok=True)
            fig.savefig(path, dpi=100, bbox_inches="tight")
        return fig


def ablate(
    agent: Any,
    env: str | gym.Env,
    recording: Recording | None = None,
    episodes: int = 3,
    seed: int = 0,
    rest: str = "zero",
    neurons: list[int] | None = None,
    max_steps: int | None = None,
) -> Ablation:
    """Silence each neuron in turn; measure the return drop and the change of actions.

    Cost: (K + 1) x ``episodes`` closed-loop episodes plus K open-loop passes over the recording.

    :param agent: SB3 model with an NCP policy, bare LTC / CfC layer, or PolicyAdapter
    :param env: Gymnasium id or environment for the evaluation episodes
    :param recording: observation sequences for the action change and activity for
        ``rest="mean"``; None records ``episodes`` episodes first
    :param episodes: evaluation episodes per ablation (episode k resets with ``seed + k``)
    :param seed: base seed
    :param rest: ``"zero"`` or ``"mean"`` (see the module docstring)
    :param neurons: wiring ids to ablate, in this order (None: all, by ascending id)
    :param max_steps: cut each evaluation episode after this many steps
    """
    if rest not in ("zero", "mean"):
        raise ValueError(f"rest: expected 'zero' or 'mean', got {rest!r}")
    environment = make_env(env)
    adapter = make_adapter(agent, environment.action_space)
    if recording is None:
        recording = record(adapter, environment, episodes, seed, max_steps=max_steps)
    neuron_ids = adapter.neuron_ids  # wiring id of each state position
    n = len(neuron_ids)
    ids = np.sort(neuron_ids) if neurons is None else np.asarray(neurons, dtype=np.int64).reshape(-1)
    if ids.size == 0 or not np.isin(ids, neuron_ids).all():
        raise ValueError(f"neurons: wiring ids must lie in [0, {n}), got {ids.tolist()}")
    columns = columns_for_ids(neuron_ids, ids)  # state positions: what the clamp and activity index
    rest_all = np.zeros(n, dtype=np.float32) if rest == "zero" else recording.activity.mean(0).astype(np.float32)
    if rest_all.shape != (n,):
        raise ValueError(f"recording: has {rest_all.shape[0]} neurons but the agent has {n}; pass its own recording")
    discrete = isinstance(environment.action_space, gym.spaces.Discrete)

    baseline = np.mean(rollout(adapter, environment, episodes, seed, max_steps=max_steps)["returns"])
    intact = _open_loop_actions(adapter, recording, None)
    returns, changes = [], []
    for col in columns:
        clamp = (torch.tensor([int(col)]), torch.tensor([rest_all[col]]))
        returns.append(np.mean(rollout(adapter, environment, episodes, seed, clamp, max_steps)["returns"]))
        ablated = _open_loop_actions(adapter, recording, clamp)
        diff = [(a != b).any(-1).mean() if discrete else np.abs(a - b).mean() for a, b in zip(ablated, intact)]
        changes.append(float(np.mean(diff)))
    returns_arr = np.asarray(returns, dtype=np.float64)
    roles = np.asarray(adapter.roles)[columns]
    return Ablation(ids, roles, rest_all[columns], returns_arr, float(baseline), float(baseline) - returns_arr,
                    np.asarray(changes), rest)


def _open_loop_actions(adapter: PolicyAdapter, recording: Recording, clamp: Any) -> list[np.ndarray]:
    """Per episode, the (T, A) deterministic actions on the recorded observations."""
    obs_shape = tuple(recording.metadata.get("obs_shape", (recording.observations.shape[1],)))
    out = []
    with torch.no_grad():
        for sl in recording.episode_slices():
            obs = torch.as_tensor(recording.observations[sl]).reshape(1, sl.stop - sl.start, *obs_shape)
            outputs = adapter.forward_sequence(obs, clamp).outputs
            out.append(adapter.outputs_to_actions(outputs)[0].float().numpy())
    return out
