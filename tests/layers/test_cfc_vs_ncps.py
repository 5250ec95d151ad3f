"""CfC against ncps 1.0.1: an ncps state_dict loads strictly and outputs, states and gradients match."""
import pytest
import torch
from ncps.torch import CfC as NcpsCfC

from ncp_policies import CfC

from .ncps_reference import assert_close, compare_with_ncps, wiring_pair

F_IN = 4
MODES = ["default", "pure", "no_gate"]


def _wired_pair(name, **kwargs):
    ours_w, ref_w = wiring_pair(name)
    return CfC(F_IN, ours_w, **kwargs), NcpsCfC(F_IN, ref_w, **kwargs)


def _motor_of_ncps(layer):
    """ncps returns the last layer's neurons; ours the motor neurons (ids < output_dim)."""
    return lambda y: y[..., : layer.motor_size] if layer.wiring.num_layers == 1 else y


@pytest.mark.parametrize("mode", MODES)
@pytest.mark.parametrize("name", ["ncp", "auto_ncp"])
def test_ncp_wirings_match_ncps(name, mode):
    torch.manual_seed(0)
    ours, ref = _wired_pair(name, mode=mode)
    compare_with_ncps(ours, ref, torch.randn(3, 6, F_IN), hx=torch.randn(3, ours.state_size) * 0.5)


@pytest.mark.parametrize("name", ["fully_connected", "random"])
def test_single_layer_wirings_return_only_motor_neurons(name):
    torch.manual_seed(1)
    ours, ref = _wired_pair(name)
    x = torch.randn(2, 5, F_IN)
    with torch.no_grad():
        y_ref, _ = ref(x)
    assert y_ref.shape[-1] == ours.state_size  # ncps: every neuron
    assert ours.output_size == ours.motor_size < ours.state_size
    compare_with_ncps(ours, ref, x, output_map=lambda y: y[..., : ours.motor_size])
    y_ours, _ = ours(x)
    assert y_ours.shape[-1] == ours.motor_size


@pytest.mark.parametrize("mode", MODES)
@pytest.mark.parametrize("activation", ["lecun_tanh", "tanh", "relu", "gelu", "silu"])
def test_dense_modes_and_activations_match_ncps(mode, activation):
    torch.manual_seed(2)
    kwargs = dict(mode=mode, activation=activation, backbone_units=16)
    compare_with_ncps(CfC(F_IN, 6, **kwargs), NcpsCfC(F_IN, 6, **kwargs), torch.randn(3, 5, F_IN))


@pytest.mark.parametrize(
    "backbone",
    [
        dict(backbone_layers=0),
        dict(backbone_layers=2, backbone_units=12),
        dict(backbone_layers=3, backbone_units=10, backbone_dropout=0.3),
    ],
)
@pytest.mark.parametrize("activation", ["lecun_tanh", "gelu"])
def test_dense_backbones_match_ncps(backbone, activation):
    torch.manual_seed(3)
    ours, ref = CfC(F_IN, 5, activation=activation, **backbone), NcpsCfC(F_IN, 5, activation=activation, **backbone)
    ours.eval(), ref.eval()  # dropout off
    compare_with_ncps(ours, ref, torch.randn(2, 5, F_IN), hx=torch.randn(2, 5) * 0.3)


def test_dense_dropout_trains_like_ncps():
    """Dropout masks follow the same RNG stream as ncps, so training mode matches too."""
    torch.manual_seed(4)
    kwargs = dict(backbone_layers=2, backbone_units=12, backbone_dropout=0.5)
    ours, ref = CfC(F_IN, 5, **kwargs), NcpsCfC(F_IN, 5, **kwargs)
    ours.load_state_dict(ref.state_dict(), strict=True)
    x = torch.randn(2, 5, F_IN)
    torch.manual_seed(9)
    y_ours, _ = ours(x)
    torch.manual_seed(9)
    y_ref, _ = ref(x)
    assert_close(y_ours, y_ref)
    torch.manual_seed(10)
    assert not torch.allclose(ours(x)[0], y_ours)  # dropout is active


@pytest.mark.parametrize("units", [6, "ncp", "auto_ncp"])
def test_mixed_memory_matches_ncps(units):
    torch.manual_seed(5)
    if isinstance(units, int):
        ours, ref = CfC(F_IN, units, mixed_memory=True), NcpsCfC(F_IN, units, mixed_memory=True)
    else:
        ours, ref = _wired_pair(units, mixed_memory=True)
    n = ours.state_size
    compare_with_ncps(ours, ref, torch.randn(2, 5, F_IN), hx=(torch.randn(2, n) * 0.3, torch.randn(2, n) * 0.3))


@pytest.mark.parametrize("shape", [(1, 5), (1, 5, 1)])
@pytest.mark.parametrize("mode", MODES)
def test_timespans_match_ncps_batch_one(shape, mode):
    torch.manual_seed(6)
    ts = torch.rand(shape) + 0.2
    x = torch.randn(1, 5, F_IN)
    compare_with_ncps(CfC(F_IN, 6, mode=mode), NcpsCfC(F_IN, 6, mode=mode), x, timespans=ts)
    compare_with_ncps(*_wired_pair("auto_ncp", mode=mode), x, timespans=ts)


def test_float_timespans_match_ncps():
    """A float timespan (folded into the time gate's weights) equals ncps given that value per step."""
    torch.manual_seed(7)
    x = torch.randn(1, 5, F_IN)
    for ts, (ours, ref) in (
        (0.37, (CfC(F_IN, 6), NcpsCfC(F_IN, 6))),
        (2.5, _wired_pair("ncp", mode="pure")),
        (1.7, _wired_pair("auto_ncp", mode="no_gate")),
    ):
        compare_with_ncps(ours, ref, x, timespans=ts, ref_timespans=torch.full((1, 5), ts))


def test_layouts_and_projection_match_ncps():
    torch.manual_seed(8)
    ours, ref = _wired_pair("auto_ncp", batch_first=False, proj_size=2)
    compare_with_ncps(ours, ref, torch.randn(5, 3, F_IN))
    assert ours.output_size == 2 and ours.motor_size == 3
    ours, ref = CfC(F_IN, 6, return_sequences=False, proj_size=3), NcpsCfC(F_IN, 6, return_sequences=False, proj_size=3)
    compare_with_ncps(ours, ref, torch.randn(3, 5, F_IN))
    ours, ref = _wired_pair("ncp", mixed_memory=True)
    n = ours.state_size
    compare_with_ncps(ours, ref, torch.randn(5, F_IN), hx=(torch.randn(n) * 0.3, torch.randn(n) * 0.3))


def test_same_seed_gives_same_initial_parameters_as_ncps():
    for make in (
        lambda w, cls: cls(F_IN, 6, mixed_memory=True, proj_size=2, backbone_layers=2),
        lambda w, cls: cls(F_IN, w, mode="pure"),
    ):
        ours_w, ref_w = wiring_pair("auto_ncp")
        torch.manual_seed(9)
        ours = make(ours_w, CfC)
        torch.manual_seed(9)
        ref = make(ref_w, NcpsCfC)
        ref_sd = ref.state_dict()
        assert ours.state_dict().keys() == ref_sd.keys()
        for k, v in ours.state_dict().items():
            assert torch.equal(v, ref_sd[k]), k
