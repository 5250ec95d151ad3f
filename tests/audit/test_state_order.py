"""A bare wired CfC stores its state layer by layer (inter, command, motor), so state position !=
wiring id: the audit must index columns by position and label / export them by wiring id."""
from __future__ import annotations

import csv

import gymnasium as gym
import numpy as np
import pytest
import torch

from ncp_policies import CfC
from ncp_policies.audit import NetworkAdapter, ablate, attribute, plot_motor_traces, plot_wiring, record
from ncp_policies.audit import plots as plots_module
from ncp_policies.audit.report import summarize
from ncp_policies.wirings import AutoNCP

from .conftest import ENV_ID

STEPS = 12
N_MOTORS = 2


def _layer() -> CfC:
    torch.manual_seed(0)
    return CfC(3, AutoNCP(12, N_MOTORS, seed=0), batch_first=True)


def _adapter(layer: CfC) -> NetworkAdapter:
    # Pendulum has one action: it is motor neuron 0's output (layer output 0).
    return NetworkAdapter(layer, gym.make(ENV_ID).action_space, output_to_action=lambda y: y[..., :1].clamp(-2, 2))


@pytest.fixture(scope="module")
def wired():
    layer = _layer()
    adapter = _adapter(layer)
    rec = record(adapter, ENV_ID, episodes=2, seed=0, max_steps=STEPS)
    return layer, adapter, rec


def test_state_order_differs_from_id_order(wired) -> None:
    layer, _, _ = wired
    ids = layer.state_neuron_ids
    assert sorted(ids) == list(range(12)) and ids != list(range(12))
    assert ids[-N_MOTORS:] == [0, 1]  # motors are stored last


def test_roles_and_ids_follow_state_positions(wired) -> None:
    layer, adapter, rec = wired
    ids = layer.state_neuron_ids
    roles = layer.wiring.roles
    assert adapter.neuron_ids.tolist() == ids
    assert adapter.roles == [roles[i] for i in ids]
    assert rec.neuron_ids.tolist() == ids
    assert rec.roles.tolist() == [roles[ids[k]] for k in range(12)]
    assert rec.roles.tolist() != list(roles)  # the old (id-order) roles would be wrong here


def test_motor_columns_are_the_wirings_motor_neurons(wired) -> None:
    layer, _, rec = wired
    ids = layer.state_neuron_ids
    motors = rec.neurons_of("motor")
    assert motors.tolist() == [ids.index(0), ids.index(1)]  # positions, motor 0 first
    assert rec.ids_of("motor").tolist() == [0, 1]
    assert rec.columns_of([1, 0]).tolist() == [ids.index(1), ids.index(0)]
    # the motor columns hold the layer's outputs (motor k = output k), replayed open loop
    for sl in rec.episode_slices():
        with torch.no_grad():
            out = layer.run(torch.as_tensor(rec.observations[sl])[None]).outputs[0].numpy()
        np.testing.assert_allclose(rec.activity[sl][:, motors], out, atol=1e-6, rtol=0)
        np.testing.assert_allclose(rec.actions[sl][:, 0], np.clip(out[:, 0], -2, 2), atol=1e-6, rtol=0)


def test_motor_traces_plot_the_motor_columns(wired) -> None:
    _, _, rec = wired
    fig = plot_motor_traces(rec)
    axes = [ax for ax in fig.axes if ax.get_ylabel().startswith("motor")]
    assert [ax.get_ylabel() for ax in axes] == ["motor 0", "motor 1"]
    for ax, column in zip(axes, rec.neurons_of("motor")):
        np.testing.assert_allclose(ax.lines[0].get_ydata(), rec.activity[:, column])


def test_attribution_rows_are_motor_ids_in_order(wired, tmp_path) -> None:
    layer, adapter, rec = wired
    attr = attribute(adapter, rec, n_alphas=16)
    assert attr.motor_ids.tolist() == [0, 1]
    # delta row k = change of layer output k (motor neuron k) between the episode and the zero baseline
    expected = []
    for sl in rec.episode_slices():
        x = torch.as_tensor(rec.observations[sl])
        with torch.no_grad():
            y = layer.run(torch.stack([x, torch.zeros_like(x)])).outputs
        expected.append((y[0].mean(0) - y[1].mean(0)).numpy())
    np.testing.assert_allclose(attr.delta, np.mean(expected, 0), atol=1e-6)
    rows = list(csv.reader(attr.to_csv(tmp_path / "a.csv").open()))
    assert [r[0] for r in rows[1:]] == ["0"] * 3 + ["1"] * 3


def test_ablation_takes_and_reports_wiring_ids(wired) -> None:
    layer, adapter, rec = wired
    ids = layer.state_neuron_ids
    target = 7  # an inter neuron stored at position 1
    assert ids.index(target) != target
    result = ablate(adapter, ENV_ID, rec, episodes=1, neurons=[target, 0], rest="mean", max_steps=STEPS)
    assert result.neuron_ids.tolist() == [target, 0]
    assert result.roles.tolist() == [layer.wiring.roles[target], "motor"]
    np.testing.assert_allclose(result.rest_values, rec.activity.mean(0)[[ids.index(target), ids.index(0)]])
    # the clamp hits state position ids.index(target): same action change as clamping it by hand
    position, value = ids.index(target), float(rec.activity.mean(0)[ids.index(target)])
    diffs = []
    for sl in rec.episode_slices():
        x = torch.as_tensor(rec.observations[sl])[None]
        with torch.no_grad():
            free = layer.run(x).outputs[0, :, 0].clamp(-2, 2)
            held = layer.run(x, clamp=(torch.tensor([position]), torch.tensor([value]))).outputs[0, :, 0].clamp(-2, 2)
        diffs.append((free - held).abs().mean().item())
    assert np.mean(diffs) > 1e-6
    np.testing.assert_allclose(result.action_change[0], np.mean(diffs), rtol=1e-5, atol=1e-8)
    with pytest.raises(ValueError, match="neurons"):
        ablate(adapter, ENV_ID, rec, neurons=[12])


def test_default_ablation_is_in_id_order_and_summary_labels_ids(wired) -> None:
    layer, adapter, rec = wired
    result = ablate(adapter, ENV_ID, rec, episodes=1, max_steps=4)
    assert result.neuron_ids.tolist() == list(range(12))
    assert result.roles.tolist() == list(layer.wiring.roles)
    text = summarize(rec, None, result, top=12)
    lines = [line for line in text.splitlines() if line.startswith("- neuron ")]
    assert len(lines) == 24  # 12 most active + 12 most influential
    for line in lines:
        nid, role = line.split()[2], line.split()[3].strip("():")
        assert layer.wiring.roles[int(nid)] == role


def test_saved_files_name_each_column(wired, tmp_path) -> None:
    layer, _, rec = wired
    paths = rec.save(tmp_path)
    with np.load(paths["npz"], allow_pickle=False) as data:
        assert data["neuron_ids"].tolist() == layer.state_neuron_ids
        np.testing.assert_array_equal(data["activity"], rec.activity)
    rows = list(csv.DictReader(paths["csv"].open()))
    assert len(rows) == rec.n_steps * 12
    for k, row in enumerate(rows[:24]):
        column = k % 12
        assert int(row["neuron_id"]) == layer.state_neuron_ids[column]
        assert row["role"] == layer.wiring.roles[int(row["neuron_id"])]
        assert float(row["activity"]) == pytest.approx(float(rec.activity[k // 12, column]), abs=1e-6)


def test_plot_wiring_colours_land_on_wiring_ids(wired, monkeypatch) -> None:
    layer, _, rec = wired
    ids = np.asarray(layer.state_neuron_ids)
    per_column = np.abs(rec.activity).mean(0)
    expected = np.empty(12)
    expected[ids] = per_column
    assert not np.allclose(expected, per_column)
    wiring = layer.wiring
    seen = {}
    original = wiring.draw_graph

    def spy(*args, **kwargs):
        seen["colors"] = np.asarray(kwargs["neuron_colors"], dtype=float)
        return original(*args, **kwargs)

    monkeypatch.setattr(wiring, "draw_graph", spy)
    plot_wiring(rec, wiring=wiring)
    np.testing.assert_allclose(seen["colors"], expected, rtol=1e-6)
    # networkx fallback: node i is wiring neuron i
    monkeypatch.setattr(plots_module, "_wiring_from_config", lambda config: None)
    fig = plot_wiring(rec)
    nodes = fig.axes[0].collections[0]
    np.testing.assert_allclose(np.asarray(nodes.get_array(), dtype=float), expected, rtol=1e-6)
