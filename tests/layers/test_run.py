"""`run()`: resets, clamp, per-sample timespans, float64 — for every cell kind and both loop paths."""
import pytest
import torch
from ncps.torch import CfC as NcpsCfC
from ncps.torch import LTC as NcpsLTC

from ncp_policies import CfC, LTC

from .ncps_reference import assert_close, wiring_pair

F_IN = 3


def _layer(kind, mixed=False, **kwargs):
    torch.manual_seed(0)
    if kind == "ltc":
        return LTC(F_IN, wiring_pair("auto_ncp")[0], mixed_memory=mixed, **kwargs)
    if kind == "ltc_dense":
        return LTC(F_IN, 5, mixed_memory=mixed, **kwargs)
    if kind == "cfc":
        return CfC(F_IN, 6, mixed_memory=mixed, backbone_units=8, **kwargs)
    if kind == "cfc_wired":
        return CfC(F_IN, wiring_pair("ncp")[0], mixed_memory=mixed, **kwargs)
    if kind == "cfc_wired_pure":
        return CfC(F_IN, wiring_pair("auto_ncp")[0], mixed_memory=mixed, mode="pure", **kwargs)
    raise ValueError(kind)


KINDS = ["ltc", "ltc_dense", "cfc", "cfc_wired", "cfc_wired_pure"]


def _hx(layer, batch, scale=0.5):
    h = torch.randn(batch, layer.state_size) * scale
    return (h, torch.randn(batch, layer.state_size) * scale) if layer.use_mixed else h


def _zero_rows(hx, rows):
    if isinstance(hx, tuple):
        return tuple(_zero_rows(h, rows) for h in hx)
    hx = hx.clone()
    hx[rows] = 0
    return hx


@pytest.mark.parametrize("mixed", [False, True])
@pytest.mark.parametrize("kind", KINDS)
def test_run_matches_forward_and_its_own_fields(kind, mixed):
    layer = _layer(kind, mixed)
    x, hx = torch.randn(2, 5, F_IN), _hx(layer, 2)
    out = layer.run(x, hx)
    y, h = layer(x, hx)
    assert torch.equal(out.outputs, y)
    assert out.states.shape == (2, 5, layer.state_size)
    assert out.outputs.shape == (2, 5, layer.output_size)
    assert torch.equal(out.outputs, layer._project(layer.rnn_cell.readout(out.states)))
    if mixed:
        assert torch.equal(out.hx[0], out.states[:, -1]) and torch.equal(out.hx[1], out.cell_states[:, -1])
        assert torch.equal(h[0], out.hx[0]) and torch.equal(h[1], out.hx[1])
    else:
        assert out.cell_states is None and torch.equal(out.hx, out.states[:, -1]) and torch.equal(h, out.hx)


@pytest.mark.parametrize("clamped", [False, True])
@pytest.mark.parametrize("mixed", [False, True])
@pytest.mark.parametrize("kind", KINDS)
def test_resets_equal_separate_runs(kind, mixed, clamped):
    """Resetting sample 0 before step 3 = a fresh run from zeros on its steps 3.. (both loop paths)."""
    layer = _layer(kind, mixed)
    x, hx = torch.randn(2, 7, F_IN), _hx(layer, 2)
    clamp = (torch.tensor([1]), torch.tensor([0.25])) if clamped else None
    resets = torch.zeros(2, 7)
    resets[0, 3] = 1
    resets[1, 0] = 1  # a reset at step 0 = starting from zeros
    out = layer.run(x, hx, resets=resets, clamp=clamp)
    first = layer.run(x[:, :3], _zero_rows(hx, [1]), clamp=clamp)
    second = layer.run(x[:, 3:], first.hx, clamp=clamp)
    second_reset = layer.run(x[:1, 3:], clamp=clamp)  # sample 0 restarts from zeros
    torch.testing.assert_close(out.states[:, :3], first.states, rtol=1e-6, atol=1e-6)
    torch.testing.assert_close(out.states[1, 3:], second.states[1], rtol=1e-6, atol=1e-6)
    torch.testing.assert_close(out.states[0, 3:], second_reset.states[0], rtol=1e-6, atol=1e-6)
    torch.testing.assert_close(out.outputs[0, 3:], second_reset.outputs[0], rtol=1e-6, atol=1e-6)
    assert not torch.allclose(out.states[0, 3:], second.states[0], atol=1e-4)  # the reset did something


@pytest.mark.parametrize("mixed", [False, True])
@pytest.mark.parametrize("kind", KINDS)
def test_clamp_holds_neurons_and_equals_stepwise_overwrite(kind, mixed):
    layer = _layer(kind, mixed)
    x, hx = torch.randn(2, 6, F_IN), _hx(layer, 2)
    index, values = torch.tensor([0, layer.state_size - 1]), torch.tensor([0.7, -0.3])
    out = layer.run(x, hx, clamp=(index, values))
    assert torch.equal(out.states[:, :, index], values.expand(2, 6, 2))
    # reference: one step at a time without clamp, overwriting the state by hand
    h = hx
    for t in range(6):
        step = layer.run(x[:, t : t + 1], h)
        h = step.hx
        if isinstance(h, tuple):
            h = (h[0].index_copy(1, index, values.expand(2, 2)), h[1])
        else:
            h = h.index_copy(1, index, values.expand(2, 2))
        state = h[0] if isinstance(h, tuple) else h
        torch.testing.assert_close(out.states[:, t], state, rtol=1e-6, atol=1e-6)
    # the clamp changes the other neurons too
    assert not torch.allclose(layer.run(x, hx).states[:, -1, 1:-1], out.states[:, -1, 1:-1], atol=1e-4)


@pytest.mark.parametrize("mixed", [False, True])
@pytest.mark.parametrize("kind", KINDS)
def test_per_sample_timespans_equal_batch_one_runs(kind, mixed):
    layer = _layer(kind, mixed)
    x, hx = torch.randn(3, 5, F_IN), _hx(layer, 3)
    ts = torch.rand(3, 5) * 2 + 0.1
    for shape in ((3, 5), (3, 5, 1)):
        out = layer.run(x, hx, timespans=ts.reshape(shape))
        for b in range(3):
            hb = tuple(h[b : b + 1] for h in hx) if mixed else hx[b : b + 1]
            single = layer.run(x[b : b + 1], hb, timespans=ts[b : b + 1])
            torch.testing.assert_close(out.outputs[b], single.outputs[0], rtol=1e-6, atol=1e-6)
            torch.testing.assert_close(out.states[b], single.states[0], rtol=1e-6, atol=1e-6)
    # a constant tensor equals the float (which is folded into weights for CfC)
    same = layer.run(x, hx, timespans=torch.full((3, 5), 0.6))
    torch.testing.assert_close(same.states, layer.run(x, hx, timespans=0.6).states, rtol=1e-5, atol=1e-6)
    torch.testing.assert_close(layer.run(x, hx, timespans=torch.tensor(0.6)).states, same.states)


@pytest.mark.parametrize("which", ["ltc", "cfc"])
def test_ncps_timespans_are_wrong_for_batches(which):
    """ncps squeezes (B, T, 1) timespans to (B,) per step, which broadcasts against the neurons: with
    B != N it raises, with B == N it silently computes something else. Ours equals batch-1 calls."""
    torch.manual_seed(1)
    units = 4
    ours = LTC(F_IN, units) if which == "ltc" else CfC(F_IN, units)
    ref = NcpsLTC(F_IN, units) if which == "ltc" else NcpsCfC(F_IN, units)
    ours.load_state_dict(ref.state_dict(), strict=True)
    x, ts = torch.randn(units, 5, F_IN), torch.rand(units, 5, 1) + 0.2
    y_ours, _ = ours(x, timespans=ts)
    loop = torch.cat([ref(x[b : b + 1], timespans=ts[b : b + 1])[0] for b in range(units)])
    assert_close(y_ours, loop)  # ours = ncps one sample at a time
    assert not torch.allclose(ref(x, timespans=ts)[0], loop, atol=1e-3)  # ncps batched: wrong
    with pytest.raises(RuntimeError):
        ref(x[:3], timespans=ts[:3])  # B=3 != N=4: ncps fails


@pytest.mark.parametrize("kind", KINDS)
def test_float64_matches_float32_and_keeps_precision(kind):
    layer = _layer(kind, mixed=True)
    layer64 = _layer(kind, mixed=True).double()
    layer64.load_state_dict(layer.state_dict())
    x, hx, ts = torch.randn(2, 5, F_IN), _hx(layer, 2), torch.rand(2, 5) + 0.5
    out32 = layer.run(x, hx, timespans=ts)
    out64 = layer64.run(x.double(), tuple(h.double() for h in hx), timespans=ts.double())
    assert out64.outputs.dtype == out64.states.dtype == torch.float64
    torch.testing.assert_close(out64.states.float(), out32.states, rtol=1e-5, atol=1e-5)
    assert (out64.states - out32.states.double()).abs().max() > 0  # really computed in float64
    (out64.outputs.sum() + out64.hx[0].sum()).backward()
    grads = [p.grad for p in layer64.parameters() if p.grad is not None]
    assert grads and all(g.dtype == torch.float64 for g in grads)


def test_float64_gradients_pass_gradcheck():
    """Analytic gradients of the whole run (fused LTC kernel path, wavefront CfC) vs finite differences."""
    torch.manual_seed(4)
    x = torch.randn(2, 4, F_IN, dtype=torch.float64)
    resets = torch.tensor([[0, 0, 1, 0], [0, 0, 0, 0]], dtype=torch.float64)
    for layer in (LTC(F_IN, wiring_pair("ncp")[0]).double(), CfC(F_IN, wiring_pair("ncp")[0]).double()):
        h0 = torch.randn(2, layer.state_size, dtype=torch.float64, requires_grad=True)
        ts = (torch.rand(2, 4, dtype=torch.float64) + 0.5).requires_grad_()
        assert torch.autograd.gradcheck(lambda h, t: layer.run(x, h, timespans=t, resets=resets).outputs, (h0, ts))


def test_gradients_flow_to_initial_state_through_resets_correctly():
    layer = _layer("cfc_wired")
    x = torch.randn(1, 4, F_IN)
    h0 = torch.randn(1, layer.state_size, requires_grad=True)
    resets = torch.tensor([[0.0, 1.0, 0.0, 0.0]])
    layer.run(x, h0, resets=resets).outputs[:, 1:].sum().backward()
    assert h0.grad is not None and torch.all(h0.grad == 0)  # everything after the reset ignores h0


@pytest.mark.parametrize("kind", KINDS)
def test_no_grad_paths_equal_the_training_path(kind):
    """Without autograd, one step goes through the fused inference step (LTC) and the weight-only
    constants are cached; both give the training path's numbers, also after the weights change."""
    layer = _layer(kind)
    x, hx, ts = torch.randn(3, 4, F_IN), _hx(layer, 3), torch.rand(3, 4) + 0.5
    resets = torch.tensor([[1.0], [0.0], [1.0]])
    optimizer = torch.optim.SGD(layer.parameters(), lr=0.01)
    for _ in range(2):
        with_grad = layer.run(x[:, :1], hx, timespans=ts[:, :1], resets=resets)
        seq_grad = layer.run(x, hx, timespans=0.8)
        with torch.no_grad():
            no_grad = layer.run(x[:, :1], hx, timespans=ts[:, :1], resets=resets)
            seq_no_grad = layer.run(x, hx, timespans=0.8)
            seq_again = layer.run(x, hx, timespans=0.8)  # from the cache
        torch.testing.assert_close(no_grad.states, with_grad.states, rtol=1e-5, atol=1e-6)
        torch.testing.assert_close(no_grad.outputs, with_grad.outputs, rtol=1e-5, atol=1e-6)
        torch.testing.assert_close(seq_no_grad.states, seq_grad.states, rtol=1e-6, atol=1e-7)
        assert torch.equal(seq_again.states, seq_no_grad.states)
        (seq_grad.outputs.sum() + with_grad.outputs.sum()).backward()
        optimizer.step()  # in-place update: the cache must notice
        optimizer.zero_grad()
    with torch.no_grad():
        before = layer.run(x, hx, timespans=0.8).states
        layer.load_state_dict({k: v * 1.1 if v.is_floating_point() else v for k, v in layer.state_dict().items()})
        after = layer.run(x, hx, timespans=0.8).states
    assert not torch.allclose(before, after)
    torch.testing.assert_close(after, layer.run(x, hx, timespans=0.8).states.detach(), rtol=1e-6, atol=1e-7)
