"""Pictures and video: written, non-empty, right format; colouring values are right."""
from __future__ import annotations

import warnings

import imageio.v2 as imageio
import numpy as np
import pytest

from ncp_policies.audit import plot_activity_heatmap, plot_motor_traces, plot_wiring, record, render_video
from ncp_policies.audit.plots import correlation, neuron_values, role_order

from .conftest import ENV_ID, make_layer


@pytest.fixture(scope="module")
def rendered():
    return record(make_layer(), ENV_ID, episodes=2, seed=0, max_steps=6, render=True, max_frames=8)


def test_static_pictures_are_written(rendered, tmp_path) -> None:
    plot_activity_heatmap(rendered, tmp_path / "heat.png")
    plot_motor_traces(rendered, tmp_path / "motor.svg")
    plot_wiring(rendered, tmp_path / "wiring.png")
    plot_wiring(rendered, tmp_path / "wiring_corr.svg", color_by=1)
    for name in ("heat.png", "wiring.png"):
        assert (tmp_path / name).read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
        assert (tmp_path / name).stat().st_size > 5000
    for name in ("motor.svg", "wiring_corr.svg"):
        assert "<svg" in (tmp_path / name).read_text()[:2000]


def test_heatmap_groups_neurons_by_role(rendered) -> None:
    order = role_order(rendered.roles)
    assert rendered.roles[order].tolist() == sorted(rendered.roles.tolist(), key=["inter", "command", "motor"].index)
    image = plot_activity_heatmap(rendered).axes[0].images[0].get_array()
    np.testing.assert_allclose(image, rendered.activity[:, order].T)


def test_neuron_colour_values(rendered) -> None:
    values, _ = neuron_values(rendered, "activity")
    np.testing.assert_allclose(values, np.abs(rendered.activity).mean(0))
    values, _ = neuron_values(rendered, 2)
    expected = [np.corrcoef(rendered.activity[:, i], rendered.observations[:, 2])[0, 1] for i in range(7)]
    np.testing.assert_allclose(values, expected, atol=1e-5)
    np.testing.assert_array_equal(correlation(np.ones((5, 2)), np.arange(5.0)), [0.0, 0.0])
    with pytest.raises(ValueError, match="color_by"):
        neuron_values(rendered, 3)


@pytest.mark.parametrize("suffix", [".mp4", ".gif"])
def test_video_is_written(rendered, tmp_path, suffix: str) -> None:
    path = render_video(rendered, tmp_path / f"run{suffix}", max_frames=5, fps=10)
    assert path.stat().st_size > 1000
    reader = imageio.get_reader(path)
    n_frames = reader.count_frames() if suffix == ".mp4" else reader.get_length()
    assert n_frames == 5
    frame = reader.get_data(2)
    reader.close()
    assert frame.shape[:2] == (256, 512)
    assert frame.std() > 1  # not a blank canvas


def test_video_does_not_colour_uninitialised_memory(rendered, tmp_path, monkeypatch) -> None:
    """The steps not reached yet are masked; what lies beneath must be defined (np.ma.masked_all's is not:
    whatever bytes it holds went through the colormap, with an overflow warning when they were huge)."""
    def masked_garbage(shape, dtype=float):
        return np.ma.masked_array(np.full(shape, 1e308, dtype), mask=True)

    monkeypatch.setattr(np.ma, "masked_all", masked_garbage)
    with warnings.catch_warnings():
        warnings.simplefilter("error", RuntimeWarning)
        render_video(rendered, tmp_path / "run.gif", max_frames=3, fps=10)


def test_video_needs_frames(tmp_path) -> None:
    rec = record(make_layer(), ENV_ID, episodes=1, seed=0, max_steps=3)
    with pytest.raises(ValueError, match="render=True"):
        render_video(rec, tmp_path / "x.mp4")
    rec.frames = [np.zeros((4, 4, 3), np.uint8)]
    with pytest.raises(ValueError, match="mp4 or .gif"):
        render_video(rec, tmp_path / "x.avi")
