"""get_config() is JSON-able and from_config() rebuilds the same network; layer properties."""
import json

import pytest
import torch

import ncp_policies.wirings as our_wirings
from ncp_policies import CfC, LTC

from .ncps_reference import wiring_pair

F_IN = 3
needs_wiring_config = pytest.mark.skipif(
    not hasattr(our_wirings.Wiring, "to_config"), reason="ncp_policies.wirings has no to_config() yet"
)

CASES = {
    "ltc_int": lambda: LTC(
        F_IN, 5, mixed_memory=True, input_mapping="linear", ode_unfolds=3, init_ranges={"w": (0.2, 2.0)}
    ),
    "cfc_dense": lambda: CfC(
        F_IN, 6, proj_size=2, mode="no_gate", activation="gelu",
        backbone_layers=2, backbone_units=9, backbone_dropout=0.1,
    ),
    "ltc_wired": lambda: LTC(
        F_IN, wiring_pair("ncp")[0], return_sequences=False, batch_first=False, implicit_param_constraints=False
    ),
    "cfc_wired": lambda: CfC(F_IN, wiring_pair("auto_ncp")[0], mixed_memory=True, mode="pure"),
}


@pytest.mark.parametrize(
    "case", [c if "wired" not in c else pytest.param(c, marks=needs_wiring_config) for c in CASES]
)
def test_config_round_trip(case):
    torch.manual_seed(0)
    layer = CASES[case]()
    cfg = json.loads(json.dumps(layer.get_config()))  # JSON-able
    rebuilt = type(layer).from_config(cfg)
    assert rebuilt.get_config() == cfg
    rebuilt.load_state_dict(layer.state_dict(), strict=True)
    layer.eval(), rebuilt.eval()
    x = torch.randn(2, 4, F_IN) if layer.batch_first else torch.randn(4, 2, F_IN)
    y1, _ = layer(x)
    y2, _ = rebuilt(x)
    assert torch.equal(y1, y2)


def test_properties():
    torch.manual_seed(0)
    w = wiring_pair("ncp")[0]  # 4 inter, 3 command, 2 motor
    ltc = LTC(F_IN, w, mixed_memory=True)
    assert (ltc.state_size, ltc.motor_size, ltc.output_size, ltc.sensory_size) == (9, 2, 2, F_IN)
    assert ltc.use_mixed and ltc.wiring is w and ltc.state_neuron_ids == list(range(9))
    cfc = CfC(F_IN, wiring_pair("ncp")[0], proj_size=5)
    assert (cfc.state_size, cfc.motor_size, cfc.output_size) == (9, 2, 5) and not cfc.use_mixed
    # ncps' state layout: layer by layer (inter, command, motor); motor neurons are ids 0, 1
    assert cfc.state_neuron_ids == [5, 6, 7, 8, 2, 3, 4, 0, 1]
    dense = CfC(F_IN, 7)
    assert dense.wiring is None and dense.output_size == dense.motor_size == dense.state_size == 7


def test_init_ranges_override_and_validation():
    torch.manual_seed(0)
    ltc = LTC(F_IN, 6, init_ranges={"w": (0.2, 2.0), "cm": (0.5, 0.5)})
    w = ltc.rnn_cell.w
    assert w.min() >= 0.2 and w.max() <= 2.0 and w.max() > 1.0  # default range is (0.001, 1)
    assert torch.all(ltc.rnn_cell.cm == 0.5)
    with pytest.raises(ValueError, match="unknown parameter 'weights'"):
        LTC(F_IN, 6, init_ranges={"weights": (0, 1)})
    with pytest.raises(ValueError, match=r"min <= max, got \(2.0, 1.0\)"):
        LTC(F_IN, 6, init_ranges={"w": (2.0, 1.0)})
    with pytest.raises(ValueError, match="pair"):
        LTC(F_IN, 6, init_ranges={"w": 1.0})
    with pytest.raises(ValueError, match="init_ranges gives cm, gleak negative values, but with implicit_param_constraints=False"):
        LTC(F_IN, 6, init_ranges={"cm": (-2.0, -1.5), "gleak": (-0.1, 0.5)}, implicit_param_constraints=False)
    LTC(F_IN, 6, init_ranges={"cm": (-2.0, -1.5)})  # raw values under the default softplus


def test_apply_weight_constraints_clips_in_explicit_mode_only():
    torch.manual_seed(0)
    for implicit in (False, True):
        ltc = LTC(F_IN, 4, implicit_param_constraints=implicit)
        with torch.no_grad():
            ltc.rnn_cell.w.fill_(-1.0)
            ltc.rnn_cell.sigma.fill_(-1.0)
        ltc.apply_weight_constraints()
        assert torch.all(ltc.rnn_cell.w == (-1.0 if implicit else 0.0))
        assert torch.all(ltc.rnn_cell.sigma == -1.0)  # not a constrained parameter
