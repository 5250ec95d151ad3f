"""to_config / Wiring.from_config round trips exactly (matrices included), through JSON, for every class."""
from __future__ import annotations

import json
from typing import Any, Dict

import numpy as np
import pytest

import ncps.wirings as nw
import ncp_policies.wirings as ow
from tests.wirings.cases import REPRESENTATIVES, assert_same_wiring


def _json_round_trip(config: Dict[str, Any]) -> Dict[str, Any]:
    return json.loads(json.dumps(config))


@pytest.mark.parametrize("name,factory", REPRESENTATIVES)
def test_built_wiring_round_trips_exactly_through_json(name: str, factory) -> None:
    wiring = factory(ow)
    wiring.build(4)
    config = wiring.to_config()
    assert config["class"] == name and config["input_dim"] == 4
    assert np.array_equal(config["adjacency_matrix"], wiring.adjacency_matrix)
    restored = ow.Wiring.from_config(_json_round_trip(config))
    assert type(restored) is type(wiring)
    assert_same_wiring(restored, wiring)
    assert restored.is_built() and restored.roles == wiring.roles
    assert restored.to_config() == config
    restored.build(4)  # already built: must keep the stored matrices
    assert_same_wiring(restored, wiring)


@pytest.mark.parametrize("name,factory", REPRESENTATIVES)
def test_unbuilt_wiring_round_trips_and_then_builds_like_the_original(name: str, factory) -> None:
    wiring = factory(ow)
    config = _json_round_trip(wiring.to_config())
    assert config["input_dim"] is None and config["sensory_adjacency_matrix"] is None
    restored = ow.Wiring.from_config(config)
    assert not restored.is_built()
    assert_same_wiring(restored, wiring)
    wiring.build(3)
    restored.build(3)
    assert_same_wiring(restored, wiring)
    assert_same_wiring(restored, _built(factory(nw), 3))  # still ncps' matrices


def _built(wiring: Any, input_dim: int) -> Any:
    wiring.build(input_dim)
    return wiring


@pytest.mark.parametrize("name,factory", REPRESENTATIVES)
def test_edited_matrices_are_what_round_trips(name: str, factory) -> None:
    wiring = factory(ow)
    wiring.build(2)
    wiring.add_synapse(0, wiring.units - 1, -1)
    wiring.add_sensory_synapse(1, 0, 1)
    restored = ow.Wiring.from_config(_json_round_trip(wiring.to_config()))
    assert_same_wiring(restored, wiring)
    assert restored.adjacency_matrix[0, wiring.units - 1] == -1 and restored.sensory_adjacency_matrix[1, 0] == 1


@pytest.mark.parametrize("name,factory", REPRESENTATIVES)
def test_get_config_is_to_config(name: str, factory) -> None:
    wiring = factory(ow)
    wiring.build(3)
    assert wiring.get_config() == wiring.to_config()


def test_ncps_ncp_config_is_broken_and_ours_is_exact() -> None:
    theirs = nw.NCP(5, 4, 2, 3, 2, 3, 2, seed=1)
    theirs.build(3)
    their_config = theirs.get_config()
    assert their_config["seed"] is None  # RandomState.seed() returns None: the seed is lost
    assert their_config["inter_neurons"] == [6, 7, 8, 9, 10]  # neuron ids instead of the count
    with pytest.raises(TypeError):
        nw.NCP.from_config(their_config)

    ours = ow.NCP(5, 4, 2, 3, 2, 3, 2, seed=1)
    ours.build(3)
    config = ours.to_config()
    assert (config["inter_neurons"], config["command_neurons"], config["motor_neurons"], config["seed"]) == (5, 4, 2, 1)
    restored = ow.Wiring.from_config(_json_round_trip(config))
    assert type(restored) is ow.NCP
    assert_same_wiring(restored, theirs)


def test_ncps_style_configs_are_accepted_by_the_class() -> None:
    """Configs written by ncps' get_config (no "class", no matrices) rebuild the same wiring."""
    for their_factory, our_class in [
        (lambda: nw.FullyConnected(5, 2, erev_init_seed=3, self_connections=False), ow.FullyConnected),
        (lambda: nw.Random(6, 2, sparsity_level=0.3, random_seed=4), ow.Random),
        (lambda: nw.AutoNCP(14, 3, sparsity_level=0.6, seed=8), ow.AutoNCP),
    ]:
        theirs = their_factory()
        ours = our_class.from_config(theirs.get_config())
        assert type(ours) is our_class
        ours.build(4)
        theirs.build(4)
        assert_same_wiring(ours, theirs)

    base = nw.Wiring(3)
    base.set_output_dim(1)
    base.add_synapse(0, 2, -1)
    base.build(2)
    base.add_sensory_synapse(1, 2, 1)
    restored = ow.Wiring.from_config(base.get_config())
    assert type(restored) is ow.Wiring
    assert_same_wiring(restored, base)


def test_base_wiring_round_trips() -> None:
    wiring = ow.Wiring(3)
    wiring.set_output_dim(2)
    wiring.add_synapse(2, 0, 1)
    wiring.build(2)
    wiring.add_sensory_synapse(0, 1, -1)
    restored = ow.Wiring.from_config(_json_round_trip(wiring.to_config()))
    assert type(restored) is ow.Wiring
    assert_same_wiring(restored, wiring)
    assert restored.roles == ["motor", "motor", "inter"]


class Chain(ow.Wiring):
    """A user-defined wiring: neuron i excites neuron i + 1, input j excites neuron 0."""

    def __init__(self, units: int, output_dim: int = 1) -> None:
        super().__init__(units)
        self.set_output_dim(output_dim)
        for i in range(units - 1):
            self.add_synapse(i, i + 1, 1)

    def _build_synapses(self) -> None:
        for j in range(self.input_dim):
            self.add_sensory_synapse(j, 0, 1)

    def _constructor_args(self) -> Dict[str, Any]:
        return {"units": self.units, "output_dim": self.output_dim}


def test_user_subclass_round_trips_under_its_qualified_name() -> None:
    wiring = Chain(4, output_dim=2)
    wiring.build(3)
    config = _json_round_trip(wiring.to_config())
    assert config["class"] == f"{__name__}.Chain"
    restored = ow.Wiring.from_config(config)
    assert type(restored) is Chain
    assert_same_wiring(restored, wiring)


@pytest.mark.parametrize("key,value,given", [("units", 12, 11), ("output_dim", 3, 2)])
def test_ncp_config_with_inconsistent_sizes_is_refused(key: str, value: int, given: int) -> None:
    config = ow.NCP(5, 4, 2, 3, 2, 3, 2).to_config()
    config[key] = value
    with pytest.raises(ValueError, match=f"{key}={value} but its constructor arguments give {key}={given}"):
        ow.Wiring.from_config(config)


def test_from_config_on_a_subclass_accepts_its_subclasses_only() -> None:
    auto = ow.AutoNCP(10, 2)
    assert type(ow.NCP.from_config(auto.to_config())) is ow.AutoNCP
    with pytest.raises(ValueError, match="FullyConnected.from_config.*'AutoNCP'.*not a FullyConnected"):
        ow.FullyConnected.from_config(auto.to_config())


@pytest.mark.parametrize(
    "edit,match",
    [
        (lambda c: c.update({"class": "Hexagonal"}), "unknown wiring class 'Hexagonal'"),
        (lambda c: c.update({"colour": "red"}), r"unknown keys \['colour'\]"),
        (lambda c: c.update({"adjacency_matrix": [[0, 1], [1, 0]]}), r"adjacency_matrix must have shape \(6, 6\)"),
        (lambda c: c["adjacency_matrix"][0].__setitem__(0, 2), "entries must be -1, 0 or \\+1"),
        (lambda c: c.update({"sensory_adjacency_matrix": [[0] * 5] * 2}), r"shape \(input_dim, 6\)"),
        (lambda c: c.update({"input_dim": 3}), "input_dim=3 but sensory_adjacency_matrix has 2 rows"),
        (lambda c: c.update({"erev_init_seed": -1}), r"erev_init_seed must be an int in \[0, 4294967295\]"),
    ],
)
def test_invalid_configs_are_refused(edit, match: str) -> None:
    wiring = ow.FullyConnected(6, output_dim=2)
    wiring.build(2)
    config = wiring.to_config()
    edit(config)
    with pytest.raises(ValueError, match=match):
        ow.Wiring.from_config(config)
