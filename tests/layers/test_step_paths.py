"""The rollout (T = 1, no grad) fast paths and the compiled dense-CfC recurrence equal the torch paths."""
import pytest
import torch

from ncp_policies import CfC, LTC, wirings
from ncp_policies.cells import cfc_kernel

needs_cfc_kernel = pytest.mark.skipif(
    not cfc_kernel.cfc_unroll_available(torch.zeros(1)), reason="compiled CfC kernel unavailable"
)


def _layers():
    torch.manual_seed(0)
    return {
        "ltc": LTC(5, wirings.AutoNCP(12, 3, seed=2)),
        "wired_cfc": CfC(5, wirings.AutoNCP(12, 3, seed=2)),
        "dense_cfc": CfC(5, 16, backbone_units=24),
    }


@pytest.mark.parametrize("name", ["ltc", "wired_cfc", "dense_cfc"])
@pytest.mark.parametrize("batch", [1, 8])
@pytest.mark.parametrize("timespans", [None, 0.5, "tensor"])
def test_fast_step_equals_the_autograd_step(name, batch, timespans):
    layer = _layers()[name]
    x = torch.randn(batch, 1, 5)
    h = torch.randn(batch, layer.state_size) * 0.5
    ts = torch.rand(batch, 1) + 0.5 if timespans == "tensor" else timespans
    ref = layer.run(x, h, ts)  # gradients on: the sequence loop's step
    with torch.no_grad():
        fast = layer.run(x, h, ts)
        out, hx = layer(x, h, ts)
    torch.testing.assert_close(fast.outputs, ref.outputs.detach(), rtol=1e-5, atol=1e-6)
    torch.testing.assert_close(fast.states, ref.states.detach(), rtol=1e-5, atol=1e-6)
    torch.testing.assert_close(out, ref.outputs.detach(), rtol=1e-5, atol=1e-6)
    torch.testing.assert_close(hx, ref.hx.detach(), rtol=1e-5, atol=1e-6)


@pytest.mark.parametrize("name", ["ltc", "wired_cfc", "dense_cfc"])
def test_cached_step_constants_notice_optimizer_steps_and_replaced_parameters(name):
    layer = _layers()[name]
    x, h = torch.randn(2, 1, 5), torch.randn(2, layer.state_size) * 0.5
    with torch.no_grad():
        before = layer.run(x, h).outputs.clone()
    opt = torch.optim.SGD(layer.parameters(), lr=0.5)
    layer.run(torch.randn(4, 3, 5)).outputs.square().sum().backward()
    opt.step()
    with torch.no_grad():
        after = layer.run(x, h).outputs
    assert not torch.allclose(before, after)
    torch.testing.assert_close(after, layer.run(x, h).outputs.detach(), rtol=1e-5, atol=1e-6)
    # a state dict loaded with assign=True replaces the parameter objects
    other = _layers()[name]
    with torch.no_grad():
        for p in other.parameters():
            p.add_(0.1)
        layer.load_state_dict(other.state_dict(), assign=True)
        torch.testing.assert_close(layer.run(x, h).outputs, other.run(x, h).outputs)


@pytest.mark.parametrize("bad, counts", [(float("nan"), "1 NaN and 0 infinite"), (float("inf"), "0 NaN and 1 infinite")])
@pytest.mark.parametrize("steps", [1, 4])
def test_non_finite_input_still_raises(bad, counts, steps):
    layer = _layers()["ltc"]
    x = torch.randn(2, steps, 5)
    x[1, -1, 2] = bad
    with torch.no_grad(), pytest.raises(ValueError, match=f"LTC input contains {counts} values"):
        layer.run(x)
    with pytest.raises(ValueError, match="NaN"):
        layer(x)


def test_finite_input_whose_sum_overflows_is_accepted():
    layer = _layers()["ltc"]
    x = torch.full((1, 1, 5), 3e38)  # finite, but the sum is inf in float32
    with torch.no_grad():
        out = layer.run(x)
    assert out.outputs.shape == (1, 1, layer.output_size)


def test_param_dtype_follows_the_module():
    layer = _layers()["dense_cfc"]
    with torch.no_grad():
        layer.run(torch.randn(1, 1, 5))
        layer.double()
        assert layer.run(torch.randn(1, 1, 5, dtype=torch.float64)).outputs.dtype == torch.float64
        with pytest.raises(TypeError, match="float32 but the layer's parameters are torch.float64"):
            layer.run(torch.randn(1, 1, 5))


def _cfc_grads(layer, x, h0, resets, use_ext, monkeypatch):
    monkeypatch.setattr(cfc_kernel, "USE_EXTENSION", use_ext)
    layer.zero_grad(set_to_none=True)
    h0 = h0.clone().requires_grad_(True)
    x = x.clone().requires_grad_(True)
    out = layer.run(x, h0, resets=resets)
    weights = torch.linspace(-1, 1, out.outputs.numel(), dtype=x.dtype).view_as(out.outputs)
    (out.outputs * weights).sum().backward()
    grads = {k: p.grad.clone() for k, p in layer.named_parameters()}
    return out.outputs.detach(), grads, x.grad, h0.grad, out.outputs.grad_fn


@needs_cfc_kernel
@pytest.mark.parametrize("mode", ["default", "no_gate"])
@pytest.mark.parametrize("backbone_layers", [1, 2])
@pytest.mark.parametrize("with_resets", [False, True])
def test_compiled_cfc_equals_torch_in_values_and_gradients(monkeypatch, mode, backbone_layers, with_resets):
    torch.manual_seed(1)
    layer = CfC(5, 16, mode=mode, backbone_units=24, backbone_layers=backbone_layers).double()
    x = torch.randn(3, 7, 5, dtype=torch.float64)
    h0 = torch.randn(3, 16, dtype=torch.float64) * 0.5
    resets = (torch.rand(3, 7) < 0.3).double() if with_resets else None
    out_c, grads_c, gx_c, gh_c, fn_c = _cfc_grads(layer, x, h0, resets, True, monkeypatch)
    out_t, grads_t, gx_t, gh_t, fn_t = _cfc_grads(layer, x, h0, resets, False, monkeypatch)
    assert type(fn_c).__name__ == "_CompiledCfCBackward" and type(fn_t).__name__ != "_CompiledCfCBackward"
    torch.testing.assert_close(out_c, out_t, rtol=1e-12, atol=1e-12)
    torch.testing.assert_close(gx_c, gx_t, rtol=1e-10, atol=1e-12)
    torch.testing.assert_close(gh_c, gh_t, rtol=1e-10, atol=1e-12)
    assert grads_c.keys() == grads_t.keys()
    for k in grads_t:
        torch.testing.assert_close(grads_c[k], grads_t[k], rtol=1e-10, atol=1e-12, msg=k)


@needs_cfc_kernel
def test_compiled_cfc_is_what_training_runs_and_passes_gradcheck():
    torch.manual_seed(2)
    layer = CfC(3, 4, backbone_units=5).double()
    seq = layer.rnn_cell.prepare_sequence(torch.randn(2, 3, 3, dtype=torch.float64), 1.0)
    w = seq.weights
    h0 = torch.randn(2, 4, dtype=torch.float64, requires_grad=True)
    xp = seq.xp_seq.detach().requires_grad_(True)
    rec_wt = w.rec_wt.detach().requires_grad_(True)
    head_wt = w.head_wt.detach().requires_grad_(True)
    head_b = w.head_b.detach().requires_grad_(True)
    keep = torch.tensor([[1.0, 0.0, 1.0], [1.0, 1.0, 1.0]], dtype=torch.float64)

    def fn(xp, h0, rec_wt, head_wt, head_b):
        return cfc_kernel.cfc_unroll(xp, h0, rec_wt, [], head_wt, head_b, keep, True)

    assert type(fn(xp, h0, rec_wt, head_wt, head_b).grad_fn).__name__ == "_CompiledCfCBackward"
    assert torch.autograd.gradcheck(fn, (xp, h0, rec_wt, head_wt, head_b))
