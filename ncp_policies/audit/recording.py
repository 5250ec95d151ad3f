"""Recording: run an NCP agent for a few seeded episodes and keep every step and every neuron."""
from __future__ import annotations

import csv
import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import gymnasium as gym
import numpy as np
import torch

from ._network import Clamp, wiring_config
from .adapters import PolicyAdapter, make_adapter

ROLE_DTYPE = "<U7"  # fixed width: loads with allow_pickle=False


@dataclass
class Recording:
    """Every step of a rollout. S = total steps over all episodes, N = neurons.

    :param observations: (S, obs_dim) float32 flattened observations the agent saw
    :param actions: (S, act_dim) float32 actions it sent (act_dim = 1 for discrete spaces)
    :param rewards: (S,) float32 rewards received
    :param dones: (S,) bool, True on an episode's last step
    :param episode: (S,) int64 episode index of each step
    :param step: (S,) int64 step index within its episode
    :param activity: (S, N) float32 every neuron's state after the step, columns in the layer's
        state order (a wired CfC: layer by layer, so column k is neuron ``neuron_ids[k]``)
    :param cell_states: (S, N) float32 LSTM cell state under mixed memory, else None (same columns)
    :param roles: (N,) "motor" | "command" | "inter" of each column
    :param neuron_ids: (N,) int64 wiring neuron id of each column (the layer's ``state_neuron_ids``)
    :param wiring: the wiring's JSON-able config, or None for an unwired layer
    :param metadata: env id, episodes, seed, returns, lengths, agent description
    :param frames: rendered rgb frames (at most ``max_frames``) when recorded with ``render=True``
    """

    observations: np.ndarray
    actions: np.ndarray
    rewards: np.ndarray
    dones: np.ndarray
    episode: np.ndarray
    step: np.ndarray
    activity: np.ndarray
    cell_states: np.ndarray | None
    roles: np.ndarray
    neuron_ids: np.ndarray
    wiring: dict[str, Any] | None
    metadata: dict[str, Any]
    frames: list[np.ndarray] = field(default_factory=list)

    @property
    def n_steps(self) -> int:
        """S, the total number of recorded steps."""
        return int(self.activity.shape[0])

    @property
    def n_neurons(self) -> int:
        """N, the number of recorded neurons."""
        return int(self.activity.shape[1])

    @property
    def returns(self) -> list[float]:
        """Undiscounted return of each episode."""
        return [float(self.rewards[self.episode == e].sum()) for e in np.unique(self.episode)]

    def episode_slices(self) -> list[slice]:
        """The step range of each episode, in order."""
        starts = np.flatnonzero(self.step == 0).tolist() + [self.n_steps]
        return [slice(a, b) for a, b in zip(starts[:-1], starts[1:])]

    def neurons_of(self, role: str) -> np.ndarray:
        """Column positions (into ``activity``'s last axis) of the neurons with the given role,
        sorted by neuron id, so that motor neuron 0 (action 0) comes first.

        Use these to index ``activity``; ``neuron_ids[neurons_of(role)]`` (= :meth:`ids_of`) to
        label them.

        :param role: "motor", "command" or "inter"
        :return: (K,) int64 column positions
        """
        columns = np.flatnonzero(self.roles == role)
        return columns[np.argsort(self.neuron_ids[columns], kind="stable")].astype(np.int64)

    def ids_of(self, role: str) -> np.ndarray:
        """Wiring ids of the neurons with the given role, ascending (same order as :meth:`neurons_of`).

        :param role: "motor", "command" or "inter"
        :return: (K,) int64 wiring neuron ids
        """
        return self.neuron_ids[self.neurons_of(role)].astype(np.int64)

    def columns_of(self, ids: Any) -> np.ndarray:
        """Column positions of the given wiring neuron ids.

        :param ids: (K,) wiring neuron ids
        :return: (K,) int64 column positions, in the order of ``ids``
        """
        wanted = np.asarray(ids, dtype=np.int64).reshape(-1)
        return columns_for_ids(self.neuron_ids, wanted)

    def save(self, directory: str | Path) -> dict[str, Path]:
        """Write ``activity.npz``, ``activity.csv`` (long format, one row per step x neuron) and
        ``recording.json`` (wiring config and run metadata) into ``directory``.

        Columns stay in state order; ``neuron_ids`` (npz) and the CSV's ``neuron_id`` column name
        the wiring neuron of each.

        :param directory: output folder (created if missing)
        :return: the written paths by kind ("npz", "csv", "json")
        """
        out = Path(directory)
        out.mkdir(parents=True, exist_ok=True)
        arrays = {
            "observations": self.observations,
            "actions": self.actions,
            "rewards": self.rewards,
            "dones": self.dones,
            "episode": self.episode,
            "step": self.step,
            "activity": self.activity,
            "roles": self.roles.astype(ROLE_DTYPE),
            "neuron_ids": self.neuron_ids,
        }
        if self.cell_states is not None:
            arrays["cell_states"] = self.cell_states
        paths = {"npz": out / "activity.npz", "csv": out / "activity.csv", "json": out / "recording.json"}
        np.savez_compressed(paths["npz"], **arrays)
        self._write_csv(paths["csv"])
        paths["json"].write_text(json.dumps({"wiring": self.wiring, "metadata": self.metadata}, indent=2))
        return paths

    def _write_csv(self, path: Path) -> None:
        s, n = self.activity.shape
        columns = ["episode", "step", "neuron_id", "role", "activity"]
        values = [
            np.repeat(self.episode, n),
            np.repeat(self.step, n),
            np.tile(self.neuron_ids, s),
            np.tile(self.roles, s),
            self.activity.reshape(-1),
        ]
        if self.cell_states is not None:
            columns.append("cell_state")
            values.append(self.cell_states.reshape(-1))
        with path.open("w", newline="") as f:
            writer = csv.writer(f)
            writer.writerow(columns)
            writer.writerows(zip(*(v.tolist() for v in values)))

    @classmethod
    def load(cls, directory: str | Path) -> Recording:
        """Read a recording written by :meth:`save` (never unpickles; frames are not saved).

        :param directory: the folder given to :meth:`save`
        """
        src = Path(directory)
        with np.load(src / "activity.npz", allow_pickle=False) as data:
            arrays = {k: data[k] for k in data.files}
        info = json.loads((src / "recording.json").read_text())
        return cls(
            observations=arrays["observations"],
            actions=arrays["actions"],
            rewards=arrays["rewards"],
            dones=arrays["dones"],
            episode=arrays["episode"],
            step=arrays["step"],
            activity=arrays["activity"],
            cell_states=arrays.get("cell_states"),
            roles=arrays["roles"],
            neuron_ids=arrays["neuron_ids"],
            wiring=info["wiring"],
            metadata=info["metadata"],
        )


def columns_for_ids(neuron_ids: np.ndarray, ids: np.ndarray) -> np.ndarray:
    """Column positions holding the given wiring ids.

    :param neuron_ids: (N,) wiring id of each column
    :param ids: (K,) wiring ids to find
    :return: (K,) int64 positions, in the order of ``ids``
    """
    position = {int(nid): k for k, nid in enumerate(np.asarray(neuron_ids).tolist())}
    missing = [int(i) for i in ids if int(i) not in position]
    if missing:
        raise ValueError(
            f"neurons: ids {missing} are not recorded neurons; allowed wiring ids: {sorted(position)}"
        )
    return np.asarray([position[int(i)] for i in ids], dtype=np.int64)


def make_env(env: str | gym.Env, render: bool = False) -> gym.Env:
    """An environment from an id (``gym.make``, with ``render_mode="rgb_array"`` when rendering).

    :param env: a Gymnasium id or an environment (returned as is)
    :param render: whether frames will be needed
    """
    if isinstance(env, gym.Env):
        if render and env.render_mode != "rgb_array":
            raise ValueError(
                f"env: rendering needs render_mode='rgb_array', this env has {env.render_mode!r}; "
                "create it with gym.make(..., render_mode='rgb_array') or pass its id"
            )
        return env
    if isinstance(env, str):
        return gym.make(env, render_mode="rgb_array") if render else gym.make(env)
    raise TypeError(f"env: expected a Gymnasium id or gym.Env, got {type(env).__name__}")


def rollout(
    adapter: PolicyAdapter,
    env: gym.Env,
    episodes: int,
    seed: int,
    clamp: Clamp | None = None,
    max_steps: int | None = None,
    render: bool = False,
    max_frames: int = 200,
) -> dict[str, Any]:
    """Run ``episodes`` seeded episodes (episode k resets with ``seed + k``) and collect raw lists.

    :param adapter: the agent
    :param env: the environment
    :param episodes: number of episodes (>= 1)
    :param seed: base seed
    :param clamp: None or (state positions (K,), values (K,)) neurons held at fixed values
    :param max_steps: cut each episode after this many steps (None: until terminated / truncated)
    :param render: keep rgb frames (the first ``max_frames``)
    :param max_frames: at most this many frames are kept
    """
    if episodes < 1:
        raise ValueError(f"episodes: must be >= 1, got {episodes}")
    cols: dict[str, list[Any]] = {k: [] for k in ("obs", "act", "rew", "done", "ep", "t", "h", "c")}
    frames: list[np.ndarray] = []
    returns, lengths = [], []
    env.action_space.seed(seed)
    with torch.no_grad():
        for ep in range(episodes):
            obs, _ = env.reset(seed=seed + ep)
            state, total, t, done = adapter.initial_state(), 0.0, 0, False
            while not done:
                if render and len(frames) < max_frames:
                    frames.append(np.asarray(env.render()))
                res = adapter.act(obs, state, t == 0, clamp)
                next_obs, reward, terminated, truncated, _ = env.step(res.action)
                done = bool(terminated or truncated) or (max_steps is not None and t + 1 >= max_steps)
                cols["obs"].append(np.asarray(obs, dtype=np.float32).reshape(-1))
                cols["act"].append(np.asarray(res.action, dtype=np.float32).reshape(-1))
                cols["rew"].append(float(reward))
                cols["done"].append(done)
                cols["ep"].append(ep)
                cols["t"].append(t)
                cols["h"].append(np.asarray(res.neurons, dtype=np.float32))
                if res.cells is not None:
                    cols["c"].append(np.asarray(res.cells, dtype=np.float32))
                total += float(reward)
                obs, state, t = next_obs, res.state, t + 1
            returns.append(total)
            lengths.append(t)
    cols["frames"] = frames
    cols["returns"], cols["lengths"] = returns, lengths
    return cols


def record(
    agent: Any,
    env: str | gym.Env,
    episodes: int = 1,
    seed: int = 0,
    *,
    render: bool = False,
    max_frames: int = 200,
    max_steps: int | None = None,
    obs_to_input: Any = None,
    output_to_action: Any = None,
) -> Recording:
    """Run an agent deterministically for seeded episodes and record every step and neuron.

    Runs under ``torch.no_grad()`` on the agent's device; memory grows linearly with the steps.

    :param agent: an SB3 ``RecurrentPPO`` model with ``NCPActorCriticPolicy``, a bare LTC / CfC
        layer, or a :class:`~ncp_policies.audit.adapters.PolicyAdapter`
    :param env: a Gymnasium id or environment
    :param episodes: number of episodes; episode k resets with ``seed + k``
    :param seed: base seed
    :param render: keep rgb frames for a video (needs ``render_mode="rgb_array"``)
    :param max_frames: at most this many frames are kept
    :param max_steps: cut each episode after this many steps (None: run to its end)
    :param obs_to_input: bare layers only: (B, T, *obs_shape) -> (B, T, F); default flatten
    :param output_to_action: bare layers only: (B, T, O) -> (B, T, A); default clip / argmax
    """
    environment = make_env(env, render)
    adapter = make_adapter(agent, environment.action_space, obs_to_input, output_to_action)
    raw = rollout(adapter, environment, episodes, seed, None, max_steps, render, max_frames)
    env_id = env if isinstance(env, str) else getattr(environment.spec, "id", type(environment).__name__)
    metadata = {
        "env_id": env_id,
        "episodes": episodes,
        "seed": seed,
        "max_steps": max_steps,
        "obs_shape": list(environment.observation_space.shape or ()),
        "returns": raw["returns"],
        "lengths": raw["lengths"],
        "agent": adapter.describe(),
    }
    return Recording(
        observations=np.stack(raw["obs"]),
        actions=np.stack(raw["act"]),
        rewards=np.asarray(raw["rew"], dtype=np.float32),
        dones=np.asarray(raw["done"], dtype=bool),
        episode=np.asarray(raw["ep"], dtype=np.int64),
        step=np.asarray(raw["t"], dtype=np.int64),
        activity=np.stack(raw["h"]),
        cell_states=np.stack(raw["c"]) if raw["c"] else None,
        roles=np.asarray(adapter.roles, dtype=ROLE_DTYPE),
        neuron_ids=np.asarray(adapter.neuron_ids, dtype=np.int64),
        wiring=wiring_config(adapter.wiring),
        metadata=metadata,
        frames=raw["frames"],
    )
