"""Same arguments and seed give bit-identical matrices to ncps 1.0.1, and ncps' own cells read our wirings."""
from __future__ import annotations

import inspect
import itertools

import numpy as np
import pytest

import ncps.wirings as nw
import ncp_policies.wirings as ow
from tests.wirings.cases import NCP_SHAPES, REPRESENTATIVES, assert_same_wiring


def _check_against_ncps(factory, input_dims) -> None:
    """Construct with both packages, compare, then build each input size on fresh copies and compare."""
    assert_same_wiring(factory(ow), factory(nw))  # FullyConnected / Random draw synapses in the constructor
    for input_dim in input_dims:
        ours, theirs = factory(ow), factory(nw)
        ours.build(input_dim)
        theirs.build(input_dim)
        assert_same_wiring(ours, theirs)


@pytest.mark.parametrize("seed", [0, 1111, 2**32 - 1])
@pytest.mark.parametrize("units", [1, 4, 11])
def test_fully_connected_matches_ncps(units: int, seed: int) -> None:
    for output_dim, self_connections in itertools.product([None, 1, units], [True, False]):
        _check_against_ncps(
            lambda m: m.FullyConnected(units, output_dim, erev_init_seed=seed, self_connections=self_connections),
            input_dims=[1, 3],
        )


@pytest.mark.parametrize("seed", [0, 1111, 98765])
@pytest.mark.parametrize("units", [1, 5, 12])
def test_random_matches_ncps(units: int, seed: int) -> None:
    for output_dim, sparsity in itertools.product([None, 1], [0.0, 0.25, 0.5, 0.9, 0.99]):
        _check_against_ncps(
            lambda m: m.Random(units, output_dim, sparsity_level=sparsity, random_seed=seed), input_dims=[1, 4]
        )


@pytest.mark.parametrize("seed", [0, 22222, 4242])
@pytest.mark.parametrize("shape", NCP_SHAPES)
def test_ncp_matches_ncps(shape, seed: int) -> None:
    _check_against_ncps(lambda m: m.NCP(*shape, seed=seed), input_dims=[1, 2, 7, 30])


@pytest.mark.parametrize("seed", [0, 22222])
@pytest.mark.parametrize("units", [4, 8, 19, 48])
def test_auto_ncp_matches_ncps(units: int, seed: int) -> None:
    for output_size, sparsity in itertools.product([1, 3], [0.1, 0.5, 0.75, 0.9]):
        if output_size > units - 3:
            continue
        _check_against_ncps(lambda m: m.AutoNCP(units, output_size, sparsity, seed=seed), input_dims=[1, 6, 25])


def test_numpy_integer_arguments_give_the_same_wiring() -> None:
    ours = ow.AutoNCP(np.int64(20), np.int32(4), np.float32(0.5), seed=np.int64(3))
    theirs = nw.AutoNCP(20, 4, 0.5, seed=3)
    ours.build(np.int64(5))
    theirs.build(5)
    assert_same_wiring(ours, theirs)
    assert type(ours.input_dim) is int and type(ours.units) is int


def test_synapses_added_before_build_stack_like_ncps() -> None:
    ours, theirs = ow.NCP(5, 4, 2, 3, 2, 3, 2, seed=1), nw.NCP(5, 4, 2, 3, 2, 3, 2, seed=1)
    for wiring in (ours, theirs):
        wiring.add_synapse(0, 1, -1)
        wiring.add_synapse(10, 10, 1)
        wiring.build(4)
    assert_same_wiring(ours, theirs)


@pytest.mark.parametrize("name,factory", REPRESENTATIVES)
def test_structure_queries_match_ncps(name: str, factory) -> None:
    ours, theirs = factory(ow), factory(nw)
    ours.build(4)
    theirs.build(4)
    assert ours.num_layers == theirs.num_layers
    for layer in range(theirs.num_layers):
        assert ours.get_neurons_of_layer(layer) == list(theirs.get_neurons_of_layer(layer))
    assert [ours.get_type_of_neuron(i) for i in range(ours.units)] == [
        theirs.get_type_of_neuron(i) for i in range(theirs.units)
    ]
    assert ours.synapse_count == int(theirs.synapse_count) == np.count_nonzero(ours.adjacency_matrix)
    assert ours.sensory_synapse_count == int(theirs.sensory_synapse_count)
    np.testing.assert_array_equal(ours.erev_initializer(), theirs.erev_initializer())
    np.testing.assert_array_equal(ours.sensory_erev_initializer(), theirs.sensory_erev_initializer())
    ours_graph, theirs_graph = ours.get_graph(), theirs.get_graph()
    assert dict(ours_graph.nodes(data="neuron_type")) == dict(theirs_graph.nodes(data="neuron_type"))
    assert set(ours_graph.edges(data="polarity")) == set(theirs_graph.edges(data="polarity"))


@pytest.mark.parametrize("name,factory", REPRESENTATIVES)
def test_every_ncps_attribute_and_argument_is_kept(name: str, factory) -> None:
    ours, theirs = factory(ow), factory(nw)
    ours.build(3)
    theirs.build(3)
    public = {n for n in dir(theirs) if not n.startswith("_")}
    instance_state = set(vars(theirs))  # includes ncps' private fields (e.g. _rng, _num_inter_neurons)
    assert sorted(n for n in public | instance_state if not hasattr(ours, n)) == []
    for method_name in public:
        theirs_method = getattr(theirs, method_name)
        if not callable(theirs_method) or method_name == "build":  # ncps names build's argument input_shape
            continue
        their_args = set(inspect.signature(theirs_method).parameters)
        assert their_args <= set(inspect.signature(getattr(ours, method_name)).parameters), method_name
    assert list(inspect.signature(type(ours).__init__).parameters) == list(
        inspect.signature(type(theirs).__init__).parameters
    )
    for parameter in inspect.signature(type(theirs).__init__).parameters.values():
        ours_parameter = inspect.signature(type(ours).__init__).parameters[parameter.name]
        assert ours_parameter.default == parameter.default, parameter.name


def test_build_is_idempotent_where_ncps_redraws() -> None:
    ours, theirs = ow.AutoNCP(16, 4, seed=1), nw.AutoNCP(16, 4, seed=1)
    ours.build(5)
    theirs.build(5)
    first_ours = (ours.adjacency_matrix.copy(), ours.sensory_adjacency_matrix.copy())
    first_theirs = (theirs.adjacency_matrix.copy(), theirs.sensory_adjacency_matrix.copy())
    ours.build(5)
    theirs.build(5)
    np.testing.assert_array_equal(ours.adjacency_matrix, first_ours[0])
    np.testing.assert_array_equal(ours.sensory_adjacency_matrix, first_ours[1])
    assert not (
        np.array_equal(theirs.adjacency_matrix, first_theirs[0])
        and np.array_equal(theirs.sensory_adjacency_matrix, first_theirs[1])
    ), "ncps 1.0.1 draws new synapses on a second build; if this fails, ncps changed"


@pytest.mark.parametrize("cell_name", ["LTCCell", "WiredCfCCell"])
def test_ncps_cells_read_our_wiring(cell_name: str) -> None:
    """ncps' own cells built on our wiring equal the same cells built on ncps' wiring, parameters and outputs.

    (ncps' sequence layers LTC / CfC test ``isinstance(units, ncps.wirings.Wiring)`` and so cannot take a
    foreign wiring; the cells, which are what reads a wiring, are duck-typed.)
    """
    torch = pytest.importorskip("torch")
    import ncps.torch as ncps_torch

    torch.set_num_threads(1)

    def make(module):
        torch.manual_seed(0)
        wiring = module.AutoNCP(12, 3, seed=3)
        if cell_name == "LTCCell":
            return ncps_torch.LTCCell(wiring, in_features=5)
        return ncps_torch.WiredCfCCell(5, wiring)

    reference, candidate = make(nw), make(ow)
    reference_state, candidate_state = reference.state_dict(), candidate.state_dict()
    assert list(reference_state) == list(candidate_state)
    for key, value in reference_state.items():
        torch.testing.assert_close(candidate_state[key], value, rtol=0, atol=0, msg=key)
    x, h = torch.randn(2, 5), torch.randn(2, 12)
    for got, expected in zip(candidate(x, h, 1.0), reference(x, h, 1.0)):
        torch.testing.assert_close(got, expected, rtol=0, atol=0)
