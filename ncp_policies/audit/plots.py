"""Static pictures of a :class:`~ncp_policies.audit.recording.Recording` (matplotlib, never pyplot).

Every ``plot_*`` returns the matplotlib Figure and, given ``path``, saves it (format from the
suffix: ``.png``, ``.svg``, ``.pdf``).
"""
from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
from matplotlib.figure import Figure

from .recording import Recording

ROLE_ORDER = ("inter", "command", "motor")  # top to bottom: sensory side to motor side
ROLE_COLORS = {"inter": "tab:blue", "command": "tab:orange", "motor": "tab:green"}


def _save(fig: Figure, path: str | Path | None) -> Figure:
    if path is not None:
        Path(path).parent.mkdir(parents=True, exist_ok=True)
        fig.savefig(path, dpi=100, bbox_inches="tight")
    return fig


def role_order(roles: np.ndarray, neuron_ids: np.ndarray | None = None) -> np.ndarray:
    """Column positions sorted by role (inter, command, motor), neuron ids ascending within a role.

    :param roles: (N,) role per column
    :param neuron_ids: (N,) wiring id per column (None: the column index)
    """
    ids = np.arange(len(roles)) if neuron_ids is None else np.asarray(neuron_ids)
    rank = {r: i for i, r in enumerate(ROLE_ORDER)}
    return np.array(sorted(range(len(roles)), key=lambda i: (rank.get(str(roles[i]), -1), int(ids[i]))), dtype=np.int64)


def plot_activity_heatmap(recording: Recording, path: str | Path | None = None, max_steps: int | None = None) -> Figure:
    """Neurons x time heatmap, neurons grouped by role, episode starts marked by vertical lines.

    :param recording: the rollout
    :param path: where to save (optional)
    :param max_steps: plot only the first this many steps (None: all)
    """
    s = recording.n_steps if max_steps is None else min(max_steps, recording.n_steps)
    order = role_order(recording.roles, recording.neuron_ids)
    data = recording.activity[:s, order].T  # (N, S)
    lim = float(np.abs(data).max()) or 1.0
    fig = Figure(figsize=(min(4 + s / 60, 14), 1.5 + 0.22 * len(order)))
    ax = fig.add_subplot()
    image = ax.imshow(data, aspect="auto", interpolation="nearest", cmap="RdBu_r", vmin=-lim, vmax=lim)
    fig.colorbar(image, ax=ax, label="neuron state")
    ax.set_yticks(range(len(order)), [f"{recording.roles[i][0]}{recording.neuron_ids[i]}" for i in order], fontsize=7)
    roles_sorted = recording.roles[order]
    for k in range(1, len(order)):
        if roles_sorted[k] != roles_sorted[k - 1]:
            ax.axhline(k - 0.5, color="black", lw=1.2)
    for role in ROLE_ORDER:
        rows = np.flatnonzero(roles_sorted == role)
        if rows.size:
            ax.text(-0.07, rows.mean(), role, transform=ax.get_yaxis_transform(), ha="right", va="center",
                    rotation=90, fontsize=8, color=ROLE_COLORS[role], fontweight="bold")
    for start in np.flatnonzero(recording.step[:s] == 0)[1:]:
        ax.axvline(start - 0.5, color="black", lw=1, ls="--")
    ax.set_xlabel("step (dashed: episode start)")
    ax.set_title("neuron activity by role")
    return _save(fig, path)


def plot_motor_traces(recording: Recording, path: str | Path | None = None, max_steps: int | None = None) -> Figure:
    """One panel per motor neuron: its state (left axis) against the action taken (right axis;
    action dimension i beside motor neuron i, or all dimensions when the counts differ).

    :param recording: the rollout
    :param path: where to save (optional)
    :param max_steps: plot only the first this many steps (None: all)
    """
    motors = recording.neurons_of("motor")  # column positions, motor 0 first
    if motors.size == 0:
        raise ValueError("recording: has no motor neurons to trace (unwired layer?); use plot_activity_heatmap")
    s = recording.n_steps if max_steps is None else min(max_steps, recording.n_steps)
    steps = np.arange(s)
    actions = recording.actions[:s]
    fig = Figure(figsize=(8, 1.8 * len(motors) + 0.6))
    axes = fig.subplots(len(motors), 1, sharex=True, squeeze=False)[:, 0]
    for k, (ax, column) in enumerate(zip(axes, motors)):
        neuron = int(recording.neuron_ids[column])
        ax.plot(steps, recording.activity[:s, column], color="tab:green", lw=1.2, label=f"motor {neuron} state")
        ax.set_ylabel(f"motor {neuron}", color="tab:green")
        twin = ax.twinx()
        dims = [k] if actions.shape[1] == len(motors) else list(range(actions.shape[1]))
        for d in dims:
            twin.step(steps, actions[:, d], where="post", color="tab:purple", lw=1, alpha=0.8, label=f"action[{d}]")
        twin.set_ylabel("action", color="tab:purple")
        for start in np.flatnonzero(recording.step[:s] == 0)[1:]:
            ax.axvline(start - 0.5, color="black", lw=1, ls="--")
    axes[-1].set_xlabel("step")
    axes[0].set_title("motor neurons (green) vs actions taken (purple)")
    return _save(fig, path)


def neuron_values(recording: Recording, color_by: str | int = "activity") -> tuple[np.ndarray, str]:
    """One value per recorded column (state order) for colouring the wiring graph.

    :param recording: the rollout
    :param color_by: ``"activity"`` (mean absolute state) or an observation feature index
        (Pearson correlation of each neuron's state with that feature; 0 where either is constant)
    :return: (N,) values per column (``recording.neuron_ids`` names their neurons) and a label
    """
    if color_by == "activity":
        return np.abs(recording.activity).mean(0), "mean |activity|"
    if isinstance(color_by, (int, np.integer)) and not isinstance(color_by, bool):
        n_features = recording.observations.shape[1]
        if not 0 <= color_by < n_features:
            raise ValueError(f"color_by: observation feature {color_by} out of range [0, {n_features})")
        return correlation(recording.activity, recording.observations[:, color_by]), f"corr. with obs[{color_by}]"
    raise ValueError(f"color_by: expected 'activity' or an observation feature index, got {color_by!r}")


def correlation(activity: np.ndarray, feature: np.ndarray) -> np.ndarray:
    """Pearson correlation of each column of ``activity`` with ``feature`` (0 where constant).

    :param activity: (S, N)
    :param feature: (S,)
    """
    a = activity - activity.mean(0)
    f = feature - feature.mean()
    denom = np.sqrt((a**2).sum(0) * (f**2).sum())
    return np.divide(a.T @ f, denom, out=np.zeros(a.shape[1]), where=denom > 0)


def plot_wiring(
    recording: Recording,
    path: str | Path | None = None,
    color_by: str | int = "activity",
    wiring: Any = None,
) -> Figure:
    """The wiring graph with each neuron coloured by its mean absolute activity or its
    correlation with an observation feature.

    Uses ``wiring.draw_graph(neuron_colors=values)`` (rebuilt from the recording's wiring config
    when ``wiring`` is None); falls back to a plain networkx drawing of the adjacency matrix. The
    per-column values are scattered into wiring-id order first (``colors[neuron_ids] = values``).

    :param recording: the rollout (its ``wiring`` config must not be None)
    :param path: where to save (optional)
    :param color_by: ``"activity"`` or an observation feature index (see :func:`neuron_values`)
    :param wiring: the wiring object, if at hand
    """
    if recording.wiring is None and wiring is None:
        raise ValueError("recording: has no wiring (unwired layer); nothing to draw")
    column_values, label = neuron_values(recording, color_by)
    values = by_neuron_id(recording, column_values)
    wiring = wiring if wiring is not None else _wiring_from_config(recording.wiring)
    if wiring is not None and hasattr(wiring, "to_config"):
        cmap = "viridis" if color_by == "activity" else "coolwarm"
        vlim = {} if color_by == "activity" else {"vmin": -1.0, "vmax": 1.0}
        fig = wiring.draw_graph(neuron_colors=[float(v) for v in values], cmap=cmap, colorbar_label=label,
                                title=f"wiring coloured by {label}", **vlim)
        return _save(fig, path)
    return _save(_draw_adjacency(recording, values, label), path)


def by_neuron_id(recording: Recording, values: np.ndarray) -> np.ndarray:
    """Reorder per-column values into wiring-id order: ``out[neuron_ids[k]] = values[k]``.

    :param recording: the rollout (its ``neuron_ids`` name each column's neuron)
    :param values: (N,) one value per column
    :return: (N,) one value per wiring neuron id
    """
    ids = np.asarray(recording.neuron_ids, dtype=np.int64)
    if values.shape != ids.shape:
        raise ValueError(f"values: expected one per recorded column, shape {ids.shape}, got {values.shape}")
    out = np.zeros(int(ids.max()) + 1 if ids.size else 0, dtype=np.float64)
    out[ids] = values
    return out


def _wiring_from_config(config: dict[str, Any] | None) -> Any:
    try:
        from ncp_policies.wirings import Wiring
    except ImportError:  # pragma: no cover
        return None
    if config is None or not hasattr(Wiring, "from_config") or "class" not in config:
        return None
    try:
        return Wiring.from_config(config)
    except (KeyError, TypeError, ValueError):
        return None


def _draw_adjacency(recording: Recording, values: np.ndarray, label: str) -> Figure:
    """Networkx drawing; ``values``: (N,) per wiring id (nodes are wiring ids)."""
    import networkx as nx

    adjacency = np.asarray(recording.wiring["adjacency_matrix"])
    graph = nx.DiGraph()
    graph.add_nodes_from(range(len(values)))
    graph.add_edges_from(zip(*np.nonzero(adjacency)))
    roles = ["inter"] * len(values)  # per wiring id, like ``values``
    for nid, role in zip(recording.neuron_ids.tolist(), recording.roles.tolist()):
        roles[int(nid)] = str(role)
    layers = {i: ROLE_ORDER.index(r) if r in ROLE_ORDER else 0 for i, r in enumerate(roles)}
    nx.set_node_attributes(graph, layers, "layer")
    pos = nx.multipartite_layout(graph, subset_key="layer")
    fig = Figure(figsize=(6, 5))
    ax = fig.add_subplot()
    nodes = nx.draw_networkx_nodes(graph, pos, ax=ax, node_color=values, cmap="viridis",
                                   edgecolors=[ROLE_COLORS.get(r, "gray") for r in roles], linewidths=2)
    edge_colors = ["tab:green" if adjacency[u, v] > 0 else "tab:red" for u, v in graph.edges]
    nx.draw_networkx_edges(graph, pos, ax=ax, edge_color=edge_colors, alpha=0.5, arrows=True)
    nx.draw_networkx_labels(graph, pos, ax=ax, font_size=7)
    fig.colorbar(nodes, ax=ax, label=label)
    ax.set_title(f"wiring coloured by {label} (outline: role)")
    ax.set_axis_off()
    return fig
