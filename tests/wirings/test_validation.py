"""Invalid arguments raise ValueError naming the argument, the value and the allowed range."""
from __future__ import annotations

import math

import pytest

import ncp_policies.wirings as ow

NCP_OK = dict(
    inter_neurons=5, command_neurons=4, motor_neurons=2, sensory_fanout=3, inter_fanout=2,
    recurrent_command_synapses=3, motor_fanin=2,
)


def _ncp(**changes):
    return ow.NCP(**{**NCP_OK, **changes})


CONSTRUCTOR_CASES = [
    # (make, regex the message must match)
    (lambda: ow.Wiring(0), r"Wiring: units must be an int >= 1, got 0"),
    (lambda: ow.Wiring(2.0), r"units must be an int >= 1, got 2\.0 \(float\)"),
    (lambda: ow.Wiring(True), r"units must be an int >= 1, got True \(bool\)"),
    (lambda: ow.FullyConnected(-3), r"FullyConnected: units must be an int >= 1, got -3"),
    (lambda: ow.FullyConnected(4, output_dim=5), r"output_dim must be an int in \[1, 4\], got 5"),
    (lambda: ow.FullyConnected(4, output_dim=0), r"output_dim must be an int in \[1, 4\], got 0"),
    (lambda: ow.FullyConnected(4, erev_init_seed=1.5), r"erev_init_seed must be an int in \[0, 4294967295\]"),
    (lambda: ow.FullyConnected(4, erev_init_seed=None), r"erev_init_seed must be an int in \[0, 4294967295\], got None"),
    (lambda: ow.FullyConnected(4, erev_init_seed=-1), r"erev_init_seed must be an int in \[0, 4294967295\], got -1"),
    (lambda: ow.FullyConnected(4, self_connections=1), r"self_connections must be True or False, got 1"),
    (lambda: ow.Random(4, sparsity_level=1.0), r"Random: sparsity_level must be a float in \[0\.0, 1\.0\), got 1\.0"),
    (lambda: ow.Random(4, sparsity_level=-0.1), r"sparsity_level must be a float in \[0\.0, 1\.0\), got -0\.1"),
    (lambda: ow.Random(4, sparsity_level=math.nan), r"sparsity_level must be a float in \[0\.0, 1\.0\), got nan"),
    (lambda: ow.Random(4, sparsity_level="0.5"), r"sparsity_level must be a float in \[0\.0, 1\.0\), got '0\.5'"),
    (lambda: ow.Random(4, random_seed=2**32), r"random_seed must be an int in \[0, 4294967295\], got 4294967296"),
    (lambda: ow.Random(4, output_dim=9), r"output_dim must be an int in \[1, 4\], got 9"),
    (lambda: _ncp(inter_neurons=0), r"NCP: inter_neurons must be an int >= 1, got 0"),
    (lambda: _ncp(command_neurons=-2), r"command_neurons must be an int >= 1, got -2"),
    (lambda: _ncp(motor_neurons=2.5), r"motor_neurons must be an int >= 1, got 2\.5"),
    (lambda: _ncp(sensory_fanout=6), r"sensory_fanout must be an int in \[1, 5\], got 6\..*there are 5"),
    (lambda: _ncp(sensory_fanout=0), r"sensory_fanout must be an int in \[1, 5\], got 0"),
    (lambda: _ncp(inter_fanout=5), r"inter_fanout must be an int in \[1, 4\], got 5"),
    (lambda: _ncp(motor_fanin=5), r"motor_fanin must be an int in \[1, 4\], got 5"),
    (lambda: _ncp(recurrent_command_synapses=-1), r"recurrent_command_synapses must be an int >= 0, got -1"),
    (lambda: _ncp(recurrent_command_synapses=1.5), r"recurrent_command_synapses must be an int >= 0, got 1\.5"),
    (lambda: _ncp(seed="7"), r"NCP: seed must be an int in \[0, 4294967295\], got '7'"),
    (lambda: ow.AutoNCP(3, 1), r"AutoNCP: units must be an int >= 4, got 3"),
    (lambda: ow.AutoNCP(10, 8), r"output_size must be an int in \[1, 7\], got 8"),
    (lambda: ow.AutoNCP(10, 12), r"output_size must be an int in \[1, 7\], got 12"),
    (lambda: ow.AutoNCP(10, 0), r"output_size must be an int in \[1, 7\], got 0"),
    (lambda: ow.AutoNCP(10, 2, sparsity_level=0.05), r"sparsity_level must be a float in \[0\.1, 1\.0\], got 0\.05"),
    (lambda: ow.AutoNCP(10, 2, sparsity_level=1.05), r"sparsity_level must be a float in \[0\.1, 1\.0\], got 1\.05"),
    (lambda: ow.AutoNCP(10, 2, seed=3.0), r"AutoNCP: seed must be an int in \[0, 4294967295\], got 3\.0"),
]


@pytest.mark.parametrize("make,match", CONSTRUCTOR_CASES)
def test_invalid_constructor_argument_is_named(make, match: str) -> None:
    with pytest.raises(ValueError, match=match):
        make()


def test_range_edges_are_accepted() -> None:
    ow.Random(3, sparsity_level=0.0)
    ow.Random(3, sparsity_level=0.999)
    ow.AutoNCP(4, 1, sparsity_level=0.1)
    ow.AutoNCP(10, 7, sparsity_level=0.9, seed=2**32 - 1)
    ow.NCP(**{**NCP_OK, "sensory_fanout": 5, "inter_fanout": 4, "motor_fanin": 4, "recurrent_command_synapses": 0})


def test_build_with_another_input_size_names_both_sizes() -> None:
    wiring = ow.AutoNCP(10, 2)
    wiring.build(4)
    with pytest.raises(ValueError, match="already built for input_dim=4 .* input_dim=5"):
        wiring.build(5)
    assert wiring.input_dim == 4


@pytest.mark.parametrize(
    "value,match", [(0, r"input_dim must be an int >= 1, got 0"), (2.5, r"input_dim must be an int >= 1, got 2\.5")]
)
def test_build_rejects_invalid_input_dim(value, match: str) -> None:
    wiring = ow.FullyConnected(3)
    with pytest.raises(ValueError, match=match):
        wiring.build(value)
    assert not wiring.is_built()


def test_synapse_and_query_arguments_are_checked() -> None:
    wiring = ow.NCP(**NCP_OK)
    with pytest.raises(ValueError, match=r"add_sensory_synapse needs the sensory synapses.*build\(input_dim\)"):
        wiring.add_sensory_synapse(0, 0, 1)
    with pytest.raises(ValueError, match=r"sensory_synapse_count needs the sensory synapses"):
        _ = wiring.sensory_synapse_count
    with pytest.raises(ValueError, match=r"src must be an int in \[0, 10\], got 11"):
        wiring.add_synapse(11, 0, 1)
    with pytest.raises(ValueError, match=r"dest must be an int in \[0, 10\], got -1"):
        wiring.add_synapse(0, -1, 1)
    with pytest.raises(ValueError, match=r"polarity must be -1 \(inhibitory\) or \+1 \(excitatory\), got 0"):
        wiring.add_synapse(0, 1, 0)
    wiring.build(2)
    with pytest.raises(ValueError, match=r"src must be an int in \[0, 1\], got 2"):
        wiring.add_sensory_synapse(2, 0, 1)
    with pytest.raises(ValueError, match=r"layer_id must be an int in \[0, 2\], got 3"):
        wiring.get_neurons_of_layer(3)
    with pytest.raises(ValueError, match=r"neuron_id must be an int in \[0, 10\], got 11"):
        wiring.get_type_of_neuron(11)
    with pytest.raises(ValueError, match=r"role must be one of \['motor', 'command', 'inter'\], got 'sensory'"):
        wiring.neuron_ids_of_role("sensory")
    with pytest.raises(ValueError, match=r"output_dim must be an int in \[1, 3\], got 4"):
        ow.Wiring(3).set_output_dim(4)
