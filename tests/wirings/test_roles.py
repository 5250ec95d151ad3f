"""Neuron roles, layers, building and the synapse API."""
from __future__ import annotations

import numpy as np
import pytest

import ncps.wirings as nw
import ncp_policies.wirings as ow


def test_ncp_roles_follow_ncps_layers() -> None:
    wiring = ow.NCP(5, 4, 2, 3, 2, 3, 2)
    assert wiring.roles == ["motor"] * 2 + ["command"] * 4 + ["inter"] * 5
    assert wiring.neuron_ids_of_role("motor") == [0, 1] == wiring.get_neurons_of_layer(2)
    assert wiring.neuron_ids_of_role("command") == [2, 3, 4, 5] == wiring.get_neurons_of_layer(1)
    assert wiring.neuron_ids_of_role("inter") == list(range(6, 11)) == wiring.get_neurons_of_layer(0)
    assert wiring.state_size == wiring.units == 11 and wiring.output_dim == 2


@pytest.mark.parametrize("units,output_size,sparsity", [(4, 1, 0.5), (16, 3, 0.5), (48, 6, 0.8), (100, 10, 0.1)])
def test_auto_ncp_role_counts_match_ncps(units: int, output_size: int, sparsity: float) -> None:
    ours, theirs = ow.AutoNCP(units, output_size, sparsity), nw.AutoNCP(units, output_size, sparsity)
    counts = {role: len(ours.neuron_ids_of_role(role)) for role in ("motor", "command", "inter")}
    assert counts == {
        "motor": theirs._num_motor_neurons,
        "command": theirs._num_command_neurons,
        "inter": theirs._num_inter_neurons,
    }
    assert counts["command"] == max(int(0.4 * (units - output_size)), 1)


@pytest.mark.parametrize("make", [lambda: ow.FullyConnected(5, output_dim=2), lambda: ow.Random(5, 2, 0.5)])
def test_flat_wirings_have_motor_then_inter(make) -> None:
    wiring = make()
    assert wiring.roles == ["motor", "motor", "inter", "inter", "inter"]
    assert wiring.neuron_ids_of_role("command") == []
    assert wiring.num_layers == 1 and wiring.get_neurons_of_layer(0) == [0, 1, 2, 3, 4]


def test_base_wiring_without_output_dim_is_all_inter() -> None:
    assert ow.Wiring(3).roles == ["inter"] * 3


def test_layer_lists_and_initializers_are_copies() -> None:
    wiring = ow.NCP(5, 4, 2, 3, 2, 3, 2)
    wiring.build(3)
    wiring.get_neurons_of_layer(0).append(99)
    assert 99 not in wiring.get_neurons_of_layer(0)
    erev, sensory_erev = wiring.erev_initializer(), wiring.sensory_erev_initializer()
    erev[:] = 7
    sensory_erev[:] = 7
    assert not (wiring.adjacency_matrix == 7).any() and not (wiring.sensory_adjacency_matrix == 7).any()


def test_ncp_layers_are_wired_only_forward_plus_command_recurrence() -> None:
    wiring = ow.AutoNCP(24, 4, sparsity_level=0.5, seed=2)
    wiring.build(6)
    motor, command, inter = (wiring.neuron_ids_of_role(r) for r in ("motor", "command", "inter"))
    sensory_targets = set(np.nonzero(wiring.sensory_adjacency_matrix)[1])
    assert sensory_targets == set(inter)  # every inter neuron is reached, nothing else
    allowed = {(s, d) for s in inter for d in command} | {(s, d) for s in command for d in command + motor}
    synapses = set(zip(*(a.tolist() for a in np.nonzero(wiring.adjacency_matrix))))
    assert synapses <= allowed
    assert set(np.nonzero(wiring.adjacency_matrix[:, motor])[0]) == set(command)  # every command neuron drives
    assert set(np.unique(wiring.adjacency_matrix)) <= {-1, 0, 1}


def test_build_sets_input_dim_once() -> None:
    wiring = ow.Random(6, 2, sparsity_level=0.5, random_seed=3)
    assert not wiring.is_built()
    wiring.build(3)
    assert wiring.is_built() and wiring.input_dim == 3
    assert wiring.sensory_adjacency_matrix.shape == (3, 6)
    assert wiring.sensory_synapse_count == round(3 * 6 * 0.5)
    assert wiring.synapse_count == round(6 * 6 * 0.5)


def test_set_input_dim_then_build_still_draws_the_sensory_synapses() -> None:
    ours, theirs = ow.FullyConnected(4, erev_init_seed=5), nw.FullyConnected(4, erev_init_seed=5)
    ours.set_input_dim(3)
    theirs.set_input_dim(3)
    ours.build(3)
    theirs.build(3)
    np.testing.assert_array_equal(ours.sensory_adjacency_matrix, theirs.sensory_adjacency_matrix)
    assert ours.sensory_synapse_count == 12


def test_add_synapse_sets_and_overwrites() -> None:
    wiring = ow.Wiring(3)
    wiring.add_synapse(0, 2, 1)
    wiring.add_synapse(0, 2, -1)
    wiring.add_synapse(np.int64(1), np.int64(1), np.int64(1))
    assert wiring.adjacency_matrix.tolist() == [[0, 0, -1], [0, 1, 0], [0, 0, 0]]
    assert wiring.synapse_count == 2
    wiring.build(1)
    wiring.add_sensory_synapse(0, 1, -1)
    assert wiring.sensory_adjacency_matrix.tolist() == [[0, -1, 0]] and wiring.sensory_synapse_count == 1


def test_graph_without_sensory_neurons_needs_no_build() -> None:
    wiring = ow.NCP(5, 4, 2, 3, 2, 3, 2)
    wiring.add_synapse(6, 2, -1)
    graph = wiring.get_graph(include_sensory_neurons=False)
    assert graph.number_of_nodes() == 11
    assert list(graph.edges(data="polarity")) == [("neuron_6", "neuron_2", "inhibitory")]
    assert graph.nodes["neuron_0"]["neuron_type"] == "motor"
