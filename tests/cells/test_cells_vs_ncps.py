"""One-step cells against ncps 1.0.1 (strict state_dict load, outputs, states, gradients)."""
import json

import numpy as np
import pytest
import torch
from ncps.torch import CfCCell as NcpsCfCCell
from ncps.torch import LTCCell as NcpsLTCCell
from ncps.torch import WiredCfCCell as NcpsWiredCfCCell
from ncps.torch.lstm import LSTMCell as NcpsLSTMCell

from ncp_policies import CfC, LTC
from ncp_policies.cells import CfCCell, LSTMCell, LTCCell, WiredCfCCell

from ..layers.ncps_reference import assert_close, wiring_pair

F_IN = 4


def _compare_step(ours, ref, args_ours, args_ref=None, motor=None):
    """Run one step of each, compare (output, state) and the parameter gradients."""
    ours.load_state_dict(ref.state_dict(), strict=True)
    out_o = ours(*args_ours)
    out_r = ref(*(args_ours if args_ref is None else args_ref))
    y_r = out_r[0] if motor is None else out_r[0][..., :motor]
    assert_close(out_o[0], y_r, what="output")
    assert_close(out_o[1], out_r[1], what="state")
    gen = torch.Generator().manual_seed(0)
    w0, w1 = torch.randn(out_o[0].shape, generator=gen), torch.randn(out_o[1].shape, generator=gen)
    ((out_o[0] * w0).sum() + (out_o[1] * w1).sum()).backward()
    ((y_r * w0).sum() + (out_r[1] * w1).sum()).backward()
    ours_p = dict(ours.named_parameters())
    for name, p in ref.named_parameters():
        if p.requires_grad and p.grad is not None:
            assert_close(ours_p[name].grad, p.grad, what=f"grad {name}")


@pytest.mark.parametrize("implicit", [False, True])
@pytest.mark.parametrize("name", ["ncp", "random"])
def test_ltc_cell_matches_ncps(name, implicit):
    torch.manual_seed(0)
    ours_w, ref_w = wiring_pair(name)
    ours = LTCCell(ours_w, F_IN, implicit_param_constraints=implicit)
    ref = NcpsLTCCell(ref_w, F_IN, implicit_param_constraints=implicit)
    x, h = torch.randn(3, F_IN), torch.randn(3, ours.state_size) * 0.3
    _compare_step(ours, ref, (x, h))
    _compare_step(ours, ref, (x, h, 0.4))
    _compare_step(ours, ref, (x, h, torch.tensor(2.0)))


@pytest.mark.parametrize("mode", ["default", "pure", "no_gate"])
def test_cfc_cells_match_ncps(mode):
    torch.manual_seed(1)
    x, h = torch.randn(3, F_IN), torch.randn(3, 5) * 0.3
    backbones = (dict(), dict(backbone_layers=2, backbone_units=7, backbone_activation="silu"), dict(backbone_layers=0))
    for kwargs in backbones:
        _compare_step(CfCCell(F_IN, 5, mode, **kwargs), NcpsCfCCell(F_IN, 5, mode, **kwargs), (x, h, 0.7))
    # per-sample elapsed time (ncps only handles one value, so compare sample by sample)
    ours, ref = CfCCell(F_IN, 5, mode), NcpsCfCCell(F_IN, 5, mode)
    ours.load_state_dict(ref.state_dict())
    ts = torch.tensor([0.5, 1.0, 2.0])
    y, _ = ours(x, h, ts)
    for b in range(3):
        assert_close(y[b], ref(x[b : b + 1], h[b : b + 1], ts[b])[0][0])
    # masked (as used by the wired cell)
    mask = (np.random.default_rng(0).random((F_IN + 5, 5)) < 0.5).astype(int)
    _compare_step(
        CfCCell(F_IN, 5, mode, backbone_layers=0, sparsity_mask=mask),
        NcpsCfCCell(F_IN, 5, mode, backbone_layers=0, sparsity_mask=mask),
        (x, h, 1.0),
    )


@pytest.mark.parametrize("mode", ["default", "pure", "no_gate"])
@pytest.mark.parametrize("name", ["ncp", "auto_ncp", "fully_connected"])
def test_wired_cfc_cell_matches_ncps(name, mode):
    torch.manual_seed(2)
    ours_w, ref_w = wiring_pair(name)
    ours, ref = WiredCfCCell(F_IN, ours_w, mode), NcpsWiredCfCCell(F_IN, ref_w, mode)
    x, h = torch.randn(3, F_IN), torch.randn(3, ours.state_size) * 0.3
    # ncps outputs the last layer: the motor neurons for NCP wirings, every neuron for FullyConnected
    motor = ours.motor_size if ours_w.num_layers == 1 else None
    _compare_step(ours, ref, (x, h, 1.0), motor=motor)
    _compare_step(ours, ref, (x, h, 0.3), motor=motor)


def test_lstm_cell_matches_ncps():
    torch.manual_seed(3)
    ours, ref = LSTMCell(F_IN, 6), NcpsLSTMCell(F_IN, 6)
    x, h, c = torch.randn(3, F_IN), torch.randn(3, 6), torch.randn(3, 6)
    _compare_step(ours, ref, (x, (h, c)))
    torch.manual_seed(4)
    a = LSTMCell(F_IN, 6)
    torch.manual_seed(4)
    b = NcpsLSTMCell(F_IN, 6)
    assert all(torch.equal(v, b.state_dict()[k]) for k, v in a.state_dict().items())


def test_cell_step_equals_layer_run_of_one_step():
    """The cells' forward and the layers' sequence loop share their math (same numbers)."""
    torch.manual_seed(5)
    x, ts = torch.randn(2, 1, F_IN), torch.tensor([0.5, 1.5])
    for layer in (LTC(F_IN, wiring_pair("ncp")[0]), CfC(F_IN, wiring_pair("ncp")[0]), CfC(F_IN, 6)):
        h = torch.randn(2, layer.state_size) * 0.3
        out = layer.run(x, h, timespans=ts.reshape(2, 1))
        y, h1 = layer.rnn_cell(x[:, 0], h, ts)
        torch.testing.assert_close(h1, out.states[:, 0], rtol=1e-6, atol=1e-7)
        torch.testing.assert_close(y, layer.rnn_cell.readout(out.states[:, 0]), rtol=1e-6, atol=1e-7)


def test_cell_forward_without_grad_uses_the_same_numbers():
    torch.manual_seed(7)
    for cell in (LTCCell(wiring_pair("auto_ncp")[0], F_IN), WiredCfCCell(F_IN, wiring_pair("ncp")[0]), CfCCell(F_IN, 5)):
        x, h, ts = torch.randn(3, F_IN), torch.randn(3, cell.state_size) * 0.3, torch.tensor([0.5, 1.0, 2.0])
        y_grad, h_grad = cell(x, h, ts)
        with torch.no_grad():
            y, h1 = cell(x, h, ts)
        torch.testing.assert_close(h1, h_grad, rtol=1e-5, atol=1e-6)
        torch.testing.assert_close(y, y_grad, rtol=1e-5, atol=1e-6)


def test_cell_config_round_trips():
    torch.manual_seed(6)
    cells = [
        LTCCell(wiring_pair("ncp")[0], F_IN, output_mapping="linear", init_ranges={"sigma": [1, 2]}),
        CfCCell(F_IN, 5, "pure", "relu", 9, 2, 0.2),
        CfCCell(F_IN, 5, backbone_layers=0, sparsity_mask=np.ones((F_IN + 5, 5))),
        WiredCfCCell(F_IN, wiring_pair("auto_ncp")[0], "no_gate"),
        LSTMCell(F_IN, 3),
    ]
    for cell in cells:
        cfg = json.loads(json.dumps(cell.get_config()))
        rebuilt = type(cell).from_config(cfg)
        assert rebuilt.get_config() == cfg
        rebuilt.load_state_dict(cell.state_dict(), strict=True)


def test_cell_errors():
    w = wiring_pair("ncp")[0]
    with pytest.raises(ValueError, match="pass in_features"):
        LTCCell(wiring_pair("ncp")[0])
    cell = LTCCell(w, F_IN)
    with pytest.raises(ValueError, match=r"input of shape \(batch, 4\), got \(2, 3\)"):
        cell(torch.randn(2, 3), torch.zeros(2, 9))
    with pytest.raises(ValueError, match=r"hx of shape \(2, 9\), got \(2, 8\)"):
        cell(torch.randn(2, F_IN), torch.zeros(2, 8))
    with pytest.raises(ValueError, match="elapsed time must be positive"):
        cell(torch.randn(2, F_IN), torch.zeros(2, 9), 0.0)
    with pytest.raises(ValueError, match=r"\(2,\) / \(2, 1\)"):
        cell(torch.randn(2, F_IN), torch.zeros(2, 9), torch.ones(3))
    with pytest.raises(ValueError, match="sparsity_mask must have shape"):
        CfCCell(F_IN, 5, sparsity_mask=np.ones((5, 5)))
