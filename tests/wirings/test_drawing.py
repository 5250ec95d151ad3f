"""draw_graph: nodes and synapses drawn, roles and polarities distinguished, per-neuron values, files written."""
from __future__ import annotations

import sys
from pathlib import Path

import numpy as np
import pytest

import ncp_policies.wirings as ow
from ncp_policies.wirings.drawing import LAYOUTS, ROLE_COLORS


def _built_ncp() -> ow.NCP:
    wiring = ow.AutoNCP(12, 3, sparsity_level=0.5, seed=4)
    wiring.build(4)
    return wiring


def _node_collections(figure):
    return [c for ax in figure.axes for c in ax.collections if (c.get_gid() or "").startswith("nodes:")]


def _edge_artists(figure, polarity: str):
    return [p for ax in figure.axes for p in ax.patches if p.get_gid() == f"edges:{polarity}"]


def _excitatory_and_inhibitory(wiring) -> tuple:
    both = np.concatenate([wiring.adjacency_matrix.ravel(), wiring.sensory_adjacency_matrix.ravel()])
    return int((both > 0).sum()), int((both < 0).sum())


@pytest.mark.parametrize("layout", [name for name in LAYOUTS if name != "kamada"])
def test_every_node_and_synapse_is_drawn(layout: str) -> None:
    wiring = _built_ncp()
    figure = wiring.draw_graph(layout=layout)
    collections = {c.get_gid(): len(c.get_offsets()) for c in _node_collections(figure)}
    assert collections == {"nodes:sensory": 4, "nodes:inter": 6, "nodes:command": 3, "nodes:motor": 3}
    assert sum(collections.values()) == wiring.units + wiring.input_dim
    excitatory, inhibitory = _excitatory_and_inhibitory(wiring)
    assert (len(_edge_artists(figure, "excitatory")), len(_edge_artists(figure, "inhibitory"))) == (excitatory, inhibitory)


def test_roles_polarities_and_legend_are_distinguished() -> None:
    from matplotlib.colors import to_rgba

    figure = _built_ncp().draw_graph(draw_labels=True)
    for collection in _node_collections(figure):
        role = collection.get_gid().split(":")[1]
        faces = collection.get_facecolor()
        np.testing.assert_allclose(faces, np.broadcast_to(to_rgba(ROLE_COLORS[role]), faces.shape))
    inhibitory, excitatory = _edge_artists(figure, "inhibitory"), _edge_artists(figure, "excitatory")
    assert {p.get_linestyle() for p in inhibitory} == {"dashed"} and {p.get_linestyle() for p in excitatory} == {"solid"}
    assert inhibitory[0].get_edgecolor()[:3] == pytest.approx(to_rgba("tab:red")[:3])
    ax = figure.axes[0]
    legend = [t.get_text() for t in ax.get_legend().get_texts()]
    assert legend == [
        "sensory neurons", "inter neurons", "command neurons", "motor neurons", "excitatory synapse", "inhibitory synapse",
    ]
    assert len(ax.texts) == 16  # one label per node


def test_per_neuron_values_go_through_the_colormap_with_a_colorbar() -> None:
    from matplotlib import colormaps
    from matplotlib.colors import to_rgba

    wiring = _built_ncp()
    values = np.linspace(-1.0, 2.0, wiring.units)
    figure = wiring.draw_graph(layout="layered", neuron_colors=values, cmap="magma")
    assert len(figure.axes) == 2 and figure.axes[1].get_ylabel() == "activity"  # the colorbar
    motor = next(c for c in _node_collections(figure) if c.get_gid() == "nodes:motor")
    expected = colormaps["magma"]((values[:3] + 1.0) / 3.0)
    np.testing.assert_allclose(motor.get_facecolor(), expected, atol=1e-6)
    np.testing.assert_allclose(motor.get_edgecolor()[0], to_rgba(ROLE_COLORS["motor"]))  # role kept as outline


def test_values_as_a_torch_tensor_and_fixed_color_range() -> None:
    torch = pytest.importorskip("torch")
    wiring = _built_ncp()
    figure = wiring.draw_graph(neuron_colors=torch.zeros(wiring.units), vmin=-1.0, vmax=1.0, colorbar_label="h")
    assert figure.axes[1].get_ylabel() == "h"
    inter = next(c for c in _node_collections(figure) if c.get_gid() == "nodes:inter")
    from matplotlib import colormaps

    np.testing.assert_allclose(inter.get_facecolor()[0], colormaps["viridis"](0.5), atol=1e-6)


def test_saves_png_and_svg(tmp_path: Path) -> None:
    wiring = _built_ncp()
    png, svg = tmp_path / "wiring.png", tmp_path / "wiring.svg"
    wiring.draw_graph(path=png)
    wiring.draw_graph(layout="spring", neuron_colors=np.arange(wiring.units, dtype=float), path=svg)
    assert png.stat().st_size > 1000 and png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    assert svg.stat().st_size > 1000 and b"<svg" in svg.read_bytes()[:1000]


def test_draws_into_a_given_axes_and_leaves_pyplot_alone() -> None:
    from matplotlib.figure import Figure

    figure = Figure()
    ax = figure.add_subplot(1, 2, 2)
    wiring = ow.FullyConnected(3, output_dim=1)
    wiring.build(2)
    fignums_before = sys.modules["matplotlib.pyplot"].get_fignums() if "matplotlib.pyplot" in sys.modules else []
    assert wiring.draw_graph(ax=ax, neuron_colors={"motor": "black"}) is figure
    if "matplotlib.pyplot" in sys.modules:
        assert sys.modules["matplotlib.pyplot"].get_fignums() == fignums_before
    motor = next(c for c in ax.collections if c.get_gid() == "nodes:motor")
    np.testing.assert_allclose(motor.get_facecolor()[0], (0.0, 0.0, 0.0, 1.0))
    assert len(_edge_artists(figure, "excitatory")) + len(_edge_artists(figure, "inhibitory")) == 9 + 6


@pytest.mark.parametrize(
    "kwargs,match",
    [
        ({"layout": "hexagonal"}, r"layout must be one of \['shell', 'layered'"),
        ({"neuron_colors": [0.1, 0.2]}, r"neuron_colors must have one entry per neuron \(12\), got 2"),
        ({"neuron_colors": {"glial": "red"}}, r"neuron_colors keys must be roles .* unknown keys \['glial'\]"),
        ({"neuron_colors": [float("nan")] * 12}, r"neuron_colors values must be finite"),
        ({"neuron_colors": [0.0] * 12, "cmap": "no-such-map"}, r"cmap must be a matplotlib colormap name"),
        ({"synapse_colors": {"electrical": "k"}}, r"synapse_colors keys must be .* \['electrical'\]"),
    ],
)
def test_invalid_drawing_arguments(kwargs, match: str) -> None:
    with pytest.raises(ValueError, match=match):
        _built_ncp().draw_graph(**kwargs)


def test_unbuilt_wiring_cannot_be_drawn() -> None:
    with pytest.raises(ValueError, match=r"needs a built wiring: call wiring.build\(input_dim\)"):
        ow.AutoNCP(8, 2).draw_graph()


def test_kamada_layout_draws_or_asks_for_scipy() -> None:
    wiring = _built_ncp()
    try:
        import scipy  # noqa: F401
    except ImportError:
        with pytest.raises(ValueError, match=r"layout='kamada' needs scipy"):
            wiring.draw_graph(layout="kamada")
    else:
        assert len(_node_collections(wiring.draw_graph(layout="kamada"))) == 4
