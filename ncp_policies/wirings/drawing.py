"""Drawing a wiring: networkx layout + matplotlib, without pyplot (safe on headless machines).

Roles are coloured (sensory inputs included), excitatory synapses are solid green and inhibitory
ones dashed red, and a legend names both. Per-neuron floats (e.g. activity) can replace the role
colours: they go through a colormap with a colorbar and the role is kept as the node's outline.
"""
from __future__ import annotations

from numbers import Real
from pathlib import Path
from typing import TYPE_CHECKING, Any, Dict, List, Mapping, Optional, Sequence, Tuple, Union

import numpy as np

if TYPE_CHECKING:  # pragma: no cover - typing only
    import networkx as nx
    from matplotlib.axes import Axes
    from matplotlib.colors import Colormap
    from matplotlib.figure import Figure

    from .base import Wiring

ROLE_COLORS: Dict[str, str] = {
    "sensory": "tab:olive",
    "inter": "tab:blue",
    "command": "tab:purple",
    "motor": "tab:orange",
}
"""Default node colour of each role."""

SYNAPSE_COLORS: Dict[str, str] = {"excitatory": "tab:green", "inhibitory": "tab:red"}
"""Default edge colour of each synapse polarity."""

SYNAPSE_STYLES: Dict[str, str] = {"excitatory": "solid", "inhibitory": "dashed"}
"""Edge line style of each synapse polarity."""

LAYOUTS: Tuple[str, ...] = ("shell", "layered", "spring", "circular", "kamada", "spectral", "spiral", "random")
"""Accepted values of ``layout``."""

_DRAW_ORDER = ("sensory", "inter", "command", "motor")
_NODE_SHAPES = {"sensory": "s", "inter": "o", "command": "o", "motor": "o"}

NeuronColors = Union[None, Mapping[str, str], Sequence[float], Sequence[str], np.ndarray]


def draw_wiring(
    wiring: "Wiring",
    layout: str = "shell",
    neuron_colors: NeuronColors = None,
    *,
    draw_labels: bool = True,
    ax: Optional["Axes"] = None,
    path: Union[None, str, Path] = None,
    synapse_colors: Union[None, str, Mapping[str, str]] = None,
    cmap: Union[str, "Colormap"] = "viridis",
    colorbar_label: str = "activity",
    vmin: Optional[float] = None,
    vmax: Optional[float] = None,
    title: Optional[str] = None,
    seed: int = 0,
    node_size: int = 300,
) -> "Figure":
    """Draw a built wiring and return the matplotlib Figure (saved to ``path`` if given).

    :param wiring: a built wiring (``wiring.build(input_dim)`` called).
    :param layout: one of ``LAYOUTS``: ``"shell"`` (rings: motor inside, then command, inter,
        sensory outside), ``"layered"`` (columns sensory → inter → command → motor), or a networkx
        layout (``"kamada"`` needs scipy).
    :param neuron_colors: None (role colours); a mapping role → colour merged into ``ROLE_COLORS``;
        a sequence / array of ``units`` floats mapped through ``cmap`` (with a colorbar); or a
        sequence of ``units`` colour strings.
    :param draw_labels: write neuron ids (``s{i}`` for input features) on the nodes.
    :param ax: Axes to draw into; None creates a Figure with an Agg canvas (pyplot is not used).
    :param path: file to save to; the suffix picks the format (``.png``, ``.svg``, ``.pdf`` ...).
    :param synapse_colors: one colour for both polarities, or a mapping polarity → colour.
    :param cmap: colormap (or its name) for float ``neuron_colors``.
    :param colorbar_label: colorbar label for float ``neuron_colors``.
    :param vmin: colormap lower bound (default: smallest value).
    :param vmax: colormap upper bound (default: largest value).
    :param title: axes title.
    :param seed: seed of the ``"spring"`` and ``"random"`` layouts.
    :param node_size: node marker area in points².
    :return: the Figure drawn into (``ax.figure`` when ``ax`` is given).
    """
    import networkx as nx
    from matplotlib.colors import Normalize
    from matplotlib.cm import ScalarMappable
    from matplotlib.lines import Line2D
    from matplotlib.patches import Patch

    if not wiring.is_built():
        raise ValueError(
            f"{type(wiring).__name__}.draw_graph needs a built wiring: call wiring.build(input_dim) first "
            "(cells build it when given their input size)."
        )
    graph = wiring.get_graph(include_sensory_neurons=True)
    positions = _layout_positions(graph, wiring, layout, seed)
    role_colors, values, per_neuron = _parse_neuron_colors(neuron_colors, wiring.units)
    edge_colors = _parse_synapse_colors(synapse_colors)
    norm = None
    if values is not None:
        low = float(np.min(values)) if vmin is None else float(vmin)
        high = float(np.max(values)) if vmax is None else float(vmax)
        norm = Normalize(vmin=low, vmax=high if high > low else low + 1e-9)
    colormap = _resolve_colormap(cmap)

    figure, ax = _figure_and_axes(ax, wiring.units + (wiring.input_dim or 0))

    for polarity in ("excitatory", "inhibitory"):
        edges = [(a, b) for a, b, p in graph.edges(data="polarity") if p == polarity]
        if edges:
            drawn = nx.draw_networkx_edges(
                graph, positions, edgelist=edges, ax=ax, edge_color=edge_colors[polarity],
                style=SYNAPSE_STYLES[polarity], arrows=True, arrowsize=8, width=1.0, alpha=0.7,
                node_size=node_size, connectionstyle="arc3,rad=0.08",
            )
            for artist in drawn if isinstance(drawn, list) else [drawn]:
                artist.set_gid(f"edges:{polarity}")

    roles_present: List[str] = []
    for role in _DRAW_ORDER:
        nodes = [n for n, r in graph.nodes(data="neuron_type") if r == role]
        if not nodes:
            continue
        roles_present.append(role)
        ids = [int(n.split("_")[1]) for n in nodes]
        kwargs: Dict[str, Any] = {"edgecolors": role_colors[role], "linewidths": 1.0}
        if role != "sensory" and values is not None:
            kwargs.update(node_color=colormap(norm(values[ids])), linewidths=2.5)
        elif role != "sensory" and per_neuron is not None:
            kwargs.update(node_color=[per_neuron[i] for i in ids], linewidths=2.5)
        else:
            kwargs.update(node_color=role_colors[role])
        collection = nx.draw_networkx_nodes(
            graph, positions, nodelist=nodes, ax=ax, node_size=node_size, node_shape=_NODE_SHAPES[role], **kwargs
        )
        collection.set_gid(f"nodes:{role}")

    if draw_labels:
        labels = {n: (f"s{n.split('_')[1]}" if n.startswith("sensory") else n.split("_")[1]) for n in graph.nodes}
        nx.draw_networkx_labels(graph, positions, labels=labels, ax=ax, font_size=7)

    if norm is not None:
        figure.colorbar(ScalarMappable(norm=norm, cmap=colormap), ax=ax, label=colorbar_label, shrink=0.8)

    handles: List[Any] = [
        Patch(facecolor=role_colors[r] if (values is None and per_neuron is None) or r == "sensory" else "white",
              edgecolor=role_colors[r], linewidth=2.0, label=f"{r} neurons")
        for r in roles_present
    ]
    handles += [
        Line2D([], [], color=edge_colors[p], linestyle=SYNAPSE_STYLES[p], label=f"{p} synapse")
        for p in ("excitatory", "inhibitory")
    ]
    ax.legend(handles=handles, loc="upper center", bbox_to_anchor=(0.5, 0.0), ncol=3, fontsize="small", frameon=False)
    ax.set_axis_off()
    if title is not None:
        ax.set_title(title)
    if path is not None:
        figure.savefig(path, bbox_inches="tight", dpi=120)
    return figure


def _figure_and_axes(ax: Optional["Axes"], num_nodes: int) -> Tuple["Figure", "Axes"]:
    """Use ``ax``'s figure, or make a Figure with an Agg canvas (no pyplot, no global backend change)."""
    if ax is not None:
        return ax.figure, ax
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    side = float(np.clip(4.0 + 0.12 * num_nodes, 5.0, 14.0))
    figure = Figure(figsize=(side + 1.5, side + 1.0))
    FigureCanvasAgg(figure)
    return figure, figure.add_subplot()


def _parse_neuron_colors(
    neuron_colors: NeuronColors, units: int
) -> Tuple[Dict[str, str], Optional[np.ndarray], Optional[List[Any]]]:
    """Split ``neuron_colors`` into (role colours, float values (units,) or None, colours per neuron or None)."""
    role_colors = dict(ROLE_COLORS)
    if neuron_colors is None:
        return role_colors, None, None
    if isinstance(neuron_colors, Mapping):
        unknown = sorted(set(neuron_colors) - set(ROLE_COLORS))
        if unknown:
            raise ValueError(
                f"draw_graph: neuron_colors keys must be roles {list(ROLE_COLORS)}, got unknown keys {unknown}."
            )
        role_colors.update(neuron_colors)
        return role_colors, None, None
    if hasattr(neuron_colors, "detach"):  # a torch tensor (e.g. one state row), without importing torch
        neuron_colors = neuron_colors.detach().cpu().numpy()  # type: ignore[union-attr]
    items = list(neuron_colors) if not isinstance(neuron_colors, np.ndarray) else neuron_colors
    if isinstance(neuron_colors, str) or len(items) != units:
        raise ValueError(
            f"draw_graph: neuron_colors must have one entry per neuron ({units}), "
            f"got {len(items) if not isinstance(neuron_colors, str) else repr(neuron_colors)}."
        )
    if all(isinstance(v, Real) and not isinstance(v, bool) for v in np.asarray(items).ravel().tolist()):
        values = np.asarray(items, dtype=np.float64).reshape(units)
        if not np.all(np.isfinite(values)):
            raise ValueError("draw_graph: neuron_colors values must be finite numbers (got NaN or inf).")
        return role_colors, values, None
    return role_colors, None, list(items)


def _resolve_colormap(cmap: Union[str, "Colormap"]) -> "Colormap":
    from matplotlib import colormaps

    if not isinstance(cmap, str):
        return cmap
    if cmap not in colormaps:
        raise ValueError(f"draw_graph: cmap must be a matplotlib colormap name such as 'viridis', got {cmap!r}.")
    return colormaps[cmap]


def _parse_synapse_colors(synapse_colors: Union[None, str, Mapping[str, str]]) -> Dict[str, str]:
    colors = dict(SYNAPSE_COLORS)
    if isinstance(synapse_colors, str):
        return {"excitatory": synapse_colors, "inhibitory": synapse_colors}
    if synapse_colors is not None:
        unknown = sorted(set(synapse_colors) - set(SYNAPSE_COLORS))
        if unknown:
            raise ValueError(
                f"draw_graph: synapse_colors keys must be {list(SYNAPSE_COLORS)}, got unknown keys {unknown}."
            )
        colors.update(synapse_colors)
    return colors


def _layout_positions(graph: "nx.DiGraph", wiring: "Wiring", layout: str, seed: int) -> Dict[str, np.ndarray]:
    import networkx as nx

    groups = {role: [n for n, r in graph.nodes(data="neuron_type") if r == role] for role in _DRAW_ORDER}
    if layout == "shell":
        shells = [groups[r] for r in ("motor", "command", "inter", "sensory") if groups[r]]
        return nx.shell_layout(graph, nlist=shells)
    if layout == "layered":
        columns = [groups[r] for r in _DRAW_ORDER if groups[r]]
        positions: Dict[str, np.ndarray] = {}
        for x, nodes in enumerate(columns):
            nodes = sorted(nodes, key=lambda n: int(n.split("_")[1]))
            ys = np.linspace(1.0, -1.0, len(nodes)) if len(nodes) > 1 else np.zeros(1)
            for node, y in zip(nodes, ys):
                positions[node] = np.array([x / max(len(columns) - 1, 1) * 2.0 - 1.0, y])
        return positions
    if layout == "spring":
        return nx.spring_layout(graph, seed=seed)
    if layout == "random":
        return nx.random_layout(graph, seed=seed)
    if layout == "kamada":
        try:
            return nx.kamada_kawai_layout(graph)
        except ImportError as error:  # networkx needs scipy here
            raise ValueError(f"draw_graph: layout='kamada' needs scipy ({error}); use 'layered' or 'spring'.") from error
    simple = {"circular": nx.circular_layout, "spectral": nx.spectral_layout, "spiral": nx.spiral_layout}
    if layout not in simple:
        raise ValueError(f"draw_graph: layout must be one of {list(LAYOUTS)}, got {layout!r}.")
    return simple[layout](graph)
