"""Bad arguments raise errors that name the argument, what was given and what is allowed."""
import pytest
import torch

from ncp_policies import CfC, LTC

from .ncps_reference import wiring_pair

F_IN = 3


@pytest.fixture(params=["ltc", "cfc", "cfc_wired"])
def layer(request):
    torch.manual_seed(0)
    if request.param == "ltc":
        return LTC(F_IN, wiring_pair("ncp")[0])
    if request.param == "cfc":
        return CfC(F_IN, 5)
    return CfC(F_IN, wiring_pair("ncp")[0])


def test_wrong_feature_count(layer):
    with pytest.raises(ValueError, match=r"expects 3 input features .* has 4"):
        layer(torch.randn(2, 5, 4))
    with pytest.raises(ValueError, match=r"must be \(batch, time, features\)"):
        layer(torch.randn(2, 5, 3, 1))
    with pytest.raises(ValueError, match=r"shape \(batch, time >= 1, 3\)"):
        layer.run(torch.randn(5, 3))


def test_nan_and_inf_inputs(layer):
    x = torch.randn(2, 5, F_IN)
    x[1, 2, 0] = float("nan")
    with pytest.raises(ValueError, match="1 NaN and 0 infinite"):
        layer(x)
    x[1, 2, 0] = float("inf")
    with pytest.raises(ValueError, match="0 NaN and 1 infinite"):
        layer.run(x)


def test_dtype_mismatch(layer):
    with pytest.raises(TypeError, match="float64 but the layer's parameters are torch.float32"):
        layer(torch.randn(2, 5, F_IN, dtype=torch.float64))


def test_wrong_hx(layer):
    x = torch.randn(2, 5, F_IN)
    n = layer.state_size
    with pytest.raises(ValueError, match=rf"hx must have shape \(batch, units\) = \(2, {n}\), got \(2, {n + 1}\)"):
        layer(x, torch.zeros(2, n + 1))
    with pytest.raises(ValueError, match=rf"got \(3, {n}\)"):
        layer(x, torch.zeros(3, n))
    with pytest.raises(TypeError, match="mixed_memory=False"):
        layer(x, (torch.zeros(2, n), torch.zeros(2, n)))
    with pytest.raises(ValueError, match="hx must be 1-D"):
        layer(x[0], torch.zeros(2, n))


def test_mixed_memory_needs_a_tuple():
    torch.manual_seed(0)
    layer = CfC(F_IN, 4, mixed_memory=True)
    with pytest.raises(TypeError, match=r"mixed_memory=True, so hx must be a tuple \(h, c\)"):
        layer(torch.randn(2, 5, F_IN), torch.zeros(2, 4))
    with pytest.raises(ValueError, match=r"hx\[1\] \(c\) must have shape"):
        layer(torch.randn(2, 5, F_IN), (torch.zeros(2, 4), torch.zeros(2, 3)))


def test_bad_timespans(layer):
    x = torch.randn(2, 5, F_IN)
    with pytest.raises(ValueError, match=r"shape \(batch, time\) = \(2, 5\) or \(2, 5, 1\), got \(2, 4\)"):
        layer(x, timespans=torch.ones(2, 4))
    with pytest.raises(ValueError, match="positive everywhere"):
        layer(x, timespans=torch.zeros(2, 5))
    with pytest.raises(ValueError, match="positive everywhere"):
        layer(x, timespans=torch.full((2, 5, 1), float("nan")))
    with pytest.raises(ValueError, match="must be positive, got -1"):
        layer(x, timespans=-1.0)
    with pytest.raises(TypeError, match="timespans must be None, a float or a tensor"):
        layer(x, timespans="1")


def test_bad_resets_and_clamp(layer):
    x = torch.randn(2, 5, F_IN)
    with pytest.raises(ValueError, match=r"resets must have shape \(batch, time\) = \(2, 5\)"):
        layer.run(x, resets=torch.zeros(2, 5, 1))
    with pytest.raises(ValueError, match="only 0 and 1"):
        layer.run(x, resets=torch.full((2, 5), 0.5))
    n = layer.state_size
    with pytest.raises(ValueError, match=rf"clamp index must be in \[0, {n}\)"):
        layer.run(x, clamp=(torch.tensor([n]), torch.tensor([0.0])))
    with pytest.raises(ValueError, match=r"clamp values must have shape \(1,\) or \(2, 1\)"):
        layer.run(x, clamp=(torch.tensor([0]), torch.tensor([0.0, 1.0])))
    with pytest.raises(ValueError, match="1-D integer tensor"):
        layer.run(x, clamp=(torch.tensor([0.0]), torch.tensor([0.0])))
    with pytest.raises(TypeError, match="clamp must be a pair"):
        layer.run(x, clamp=torch.tensor([0]))


def test_bad_constructor_arguments():
    w = wiring_pair("ncp")[0]
    with pytest.raises(ValueError, match="input_size must be an int >= 1, got 0"):
        LTC(0, 4)
    with pytest.raises(TypeError, match="units must be an int or a wiring"):
        LTC(F_IN, "8")
    with pytest.raises(ValueError, match="backbone_units is only for a dense CfC"):
        CfC(F_IN, w, backbone_units=8)
    with pytest.raises(ValueError, match=r"mode must be one of \('default', 'pure', 'no_gate'\), got 'fast'"):
        CfC(F_IN, 4, mode="fast")
    with pytest.raises(ValueError, match="backbone_activation must be one of"):
        CfC(F_IN, 4, activation="sigmoid")
    with pytest.raises(ValueError, match="proj_size must be None or an int >= 1"):
        CfC(F_IN, 4, proj_size=0)
    with pytest.raises(ValueError, match="input_mapping must be one of"):
        LTC(F_IN, 4, input_mapping="log")
    with pytest.raises(ValueError, match="ode_unfolds must be an int >= 1"):
        LTC(F_IN, 4, ode_unfolds=0)
