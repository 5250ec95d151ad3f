"""The LTC unfold kernels: compiled (C++) against pure torch and ncps 1.0.1, fallback, errors.

The first test to need the compiled kernel builds it (once per machine, ~20-40 s); set
NCP_POLICIES_NO_EXT=1 to skip the compiled-kernel tests on a machine without a C++ compiler.
"""
import warnings

import pytest
import torch
import torch.nn.functional as F
from ncps.torch import LTCCell as NcpsLTCCell
from ncps.wirings import AutoNCP as NcpsAutoNCP

from ncp_policies.cells import csrc
from ncp_policies.cells import ltc_kernel as K

N = 12  # neurons of the random problems
UNFOLDS = 6
EPS = 1e-8
TOL = {torch.float32: 2e-6, torch.float64: 1e-12}


@pytest.fixture(scope="module")
def compiled():
    if csrc.extension_disabled_by_env():
        pytest.skip("NCP_POLICIES_NO_EXT is set: the compiled kernel is disabled")
    assert K.extension_available(), "the C++ LTC kernel did not build (see the warning above)"


def _rel(a, b):
    """max |a - b| / max(1, max |b|)."""
    a, b = a.detach(), b.detach()
    return float((a - b).abs().max() / b.abs().max().clamp(min=1.0))


def _problem(dtype, batch, steps, masked, seed=0):
    """Random unfold inputs (dict in ltc_unfold_sequence's order) and a (N, N) 0/1 mask or None."""
    gen = torch.Generator().manual_seed(seed)

    def rand(*shape):
        return torch.rand(*shape, generator=gen, dtype=dtype)

    w = rand(N, N)  # deliberately not masked: synapse_mask must mask it
    erev = torch.where(rand(N, N) < 0.5, -1.0, 1.0).to(dtype)
    tensors = {
        "v0": rand(batch, N) - 0.5,
        "cm_t": 0.5 + 3 * rand(batch, steps, N),
        "gleak": rand(N),
        "gleak_vleak": 0.2 * rand(N) - 0.1,
        "num_s": rand(batch, steps, N) - 0.5,
        "den_s": rand(batch, steps, N),
        "w": w,
        "w_erev": w * erev,
        "mu": 0.3 + 0.5 * rand(N, N),
        "sigma": 3 + 5 * rand(N, N),
        "keep": (rand(batch, steps) > 0.3).to(dtype),
    }
    mask = (rand(N, N) < 0.35).to(dtype) if masked else None
    return tensors, mask


def _run(fn, tensors, mask, with_keep):
    """Output and the gradients of every tensor input under a fixed random output weighting."""
    leaves = {k: v.clone().requires_grad_() for k, v in tensors.items()}
    keep = leaves.pop("keep")
    keep = keep if with_keep else None
    args = list(leaves.values())
    out = fn(*args, UNFOLDS, EPS, keep, synapse_mask=mask)
    weight = torch.randn(out.shape, generator=torch.Generator().manual_seed(1), dtype=out.dtype)
    (out * weight).sum().backward()
    grads = {k: v.grad for k, v in leaves.items()}
    if with_keep:
        grads["keep"] = keep.grad
    return out, grads


# (batch, steps, keep, masked): B=1 and B=11 leave padding lanes in a group of 8; B=8 fills one.
CASES = [(1, 1, False, True), (1, 9, True, True), (11, 9, True, True), (8, 4, False, False), (3, 1, True, True)]


@pytest.mark.parametrize("dtype", [torch.float32, torch.float64])
@pytest.mark.parametrize("batch,steps,with_keep,masked", CASES)
def test_compiled_matches_torch(compiled, dtype, batch, steps, with_keep, masked):
    tensors, mask = _problem(dtype, batch, steps, masked)
    out_c, grads_c = _run(K.ltc_unfold_sequence, tensors, mask, with_keep)
    out_t, grads_t = _run(K.ltc_unfold_sequence_torch, tensors, mask, with_keep)
    assert type(out_c.grad_fn).__name__.startswith("_CompiledUnfold")
    assert _rel(out_c, out_t) <= TOL[dtype]
    assert grads_c.keys() == grads_t.keys()
    for name in grads_t:
        scale = grads_t[name].abs().max().clamp(min=1e-30)
        err = float((grads_c[name] - grads_t[name]).abs().max() / scale)
        assert err <= 5 * TOL[dtype], f"grad {name}: relative error {err:.3g}"


def test_compiled_no_grad_matches_torch(compiled):
    tensors, mask = _problem(torch.float32, 10, 7, masked=True)
    args = [tensors[k] for k in tensors if k != "keep"]
    with torch.no_grad():
        out_c = K.ltc_unfold_sequence(*args, UNFOLDS, EPS, tensors["keep"], synapse_mask=mask)
        out_t = K.ltc_unfold_sequence_torch(*args, UNFOLDS, EPS, tensors["keep"], synapse_mask=mask)
    assert _rel(out_c, out_t) <= TOL[torch.float32]


@pytest.mark.parametrize("batch", [2, 9])  # one sample per group; two groups of 8 lanes
def test_gradcheck_compiled(compiled, batch):
    gen = torch.Generator().manual_seed(3)
    n, steps = 4, 3

    def rand(*shape):
        return torch.rand(*shape, generator=gen, dtype=torch.float64)

    mask = torch.tensor([[1, 0, 1, 1], [0, 1, 1, 0], [1, 1, 0, 0], [0, 0, 1, 1]], dtype=torch.float64)
    inputs = (
        rand(batch, n) - 0.5, 1 + rand(batch, steps, n), rand(n), rand(n) - 0.5, rand(batch, steps, n) - 0.5,
        rand(batch, steps, n), rand(n, n), rand(n, n) - 0.5, rand(n, n), 2 + 3 * rand(n, n), 0.2 + rand(batch, steps),
    )
    inputs = tuple(t.requires_grad_() for t in inputs)

    def fn(*a):
        return K.ltc_unfold_sequence(*a[:10], 2, EPS, a[10], synapse_mask=mask)

    assert type(fn(*inputs).grad_fn).__name__.startswith("_CompiledUnfold")
    assert torch.autograd.gradcheck(fn, inputs, eps=1e-6, atol=1e-8, rtol=1e-6)


def test_synapse_mask_is_a_multiplication(compiled):
    """f(w, w_erev, mask) == f(w * mask, w_erev * mask) with every synapse, gradients included."""
    tensors, mask = _problem(torch.float64, 4, 5, masked=True)
    out_m, grads_m = _run(K.ltc_unfold_sequence, tensors, mask, with_keep=False)
    dense = dict(tensors, w=tensors["w"] * mask, w_erev=tensors["w_erev"] * mask)
    out_d, grads_d = _run(K.ltc_unfold_sequence, dense, None, with_keep=False)
    assert _rel(out_m, out_d) <= 1e-12
    for name in ("w", "w_erev"):
        assert _rel(grads_m[name], grads_d[name] * mask) <= 1e-12
        assert bool((grads_m[name][mask == 0] == 0).all())
    for name in ("mu", "sigma", "v0", "cm_t"):
        assert _rel(grads_m[name], grads_d[name]) <= 1e-12


# ------------------------------------------------------------------ against ncps 1.0.1


def _ncps_cell(implicit, input_mapping="affine", output_mapping="affine", dtype=torch.float32):
    torch.manual_seed(0)
    cell = NcpsLTCCell(
        NcpsAutoNCP(N, 3, seed=2),
        in_features=5,
        input_mapping=input_mapping,
        output_mapping=output_mapping,
        implicit_param_constraints=implicit,
    ).to(dtype)
    with torch.no_grad():  # move away from the initial values (e.g. output_w = 1, input_b = 0)
        for name, p in cell.named_parameters():
            if p.requires_grad:
                p.add_(0.2 * torch.randn_like(p))
                if not implicit and name in ("w", "sensory_w", "cm", "gleak"):
                    p.clamp_(min=0.01)
    return cell


@pytest.mark.parametrize("use_compiled", [True, False])
@pytest.mark.parametrize("implicit", [False, True])
def test_unfold_matches_ncps_cell(request, monkeypatch, use_compiled, implicit):
    """ltc_unfold_sequence given the terms of an ncps LTCCell steps like the cell: states and gradients."""
    if use_compiled:
        request.getfixturevalue("compiled")
    monkeypatch.setattr(K, "USE_EXTENSION", use_compiled)
    cell = _ncps_cell(implicit, dtype=torch.float64)
    p = dict(cell.named_parameters())
    batch, steps = 3, 5
    gen = torch.Generator().manual_seed(4)
    x = torch.randn(batch, steps, 5, generator=gen, dtype=torch.float64)
    ts = 0.5 + torch.rand(batch, steps, 1, generator=gen, dtype=torch.float64)
    h0 = 0.3 * torch.randn(batch, N, generator=gen, dtype=torch.float64)
    weight = torch.randn(batch, steps, N, generator=gen, dtype=torch.float64)

    h, states_ref = h0, []
    for t in range(steps):
        h = cell(x[:, t], h, ts[:, t])[1]
        states_ref.append(h)
    (torch.stack(states_ref, 1) * weight).sum().backward()
    grads_ref = {k: v.grad.clone() for k, v in p.items() if v.grad is not None}
    cell.zero_grad()

    pos = F.softplus if implicit else (lambda v: v)
    xm = x * p["input_w"] + p["input_b"]
    act = pos(p["sensory_w"]) * torch.sigmoid((xm.unsqueeze(-1) - p["sensory_mu"]) * p["sensory_sigma"])
    act = act * p["sensory_sparsity_mask"]
    gleak = pos(p["gleak"])
    w = pos(p["w"])
    states = K.ltc_unfold_sequence(
        h0, pos(p["cm"]) / (ts / UNFOLDS), gleak, gleak * p["vleak"], (act * p["sensory_erev"]).sum(2), act.sum(2),
        w, w * p["erev"], p["mu"], p["sigma"], UNFOLDS, EPS, synapse_mask=p["sparsity_mask"],
    )
    assert _rel(states, torch.stack(states_ref, 1)) <= 1e-12
    (states * weight).sum().backward()
    for name, g in grads_ref.items():
        assert _rel(p[name].grad, g) <= 1e-11, name


@pytest.mark.parametrize("implicit", [False, True])
@pytest.mark.parametrize("mapping", ["affine", "linear", "none"])
@pytest.mark.parametrize("batch", [1, 10])
@pytest.mark.parametrize("fn", [K.ltc_step_inference, K.ltc_step_inference_torch], ids=["compiled", "torch"])
def test_step_inference_matches_ncps(request, fn, implicit, mapping, batch):
    if fn is K.ltc_step_inference:
        request.getfixturevalue("compiled")
    cell = _ncps_cell(implicit, input_mapping=mapping, output_mapping=mapping)
    gen = torch.Generator().manual_seed(5)
    x = torch.randn(batch, 5, generator=gen)
    h = 0.3 * torch.randn(batch, N, generator=gen)
    ts = 1.5 if batch == 1 else 0.5 + torch.rand(batch, generator=gen)
    with torch.no_grad():
        out_ref, h_ref = cell(x, h, ts if batch == 1 else ts[:, None])
    params = {k: v.detach() for k, v in cell.named_parameters()}
    kwargs = dict(
        params, input_mapping=mapping, output_mapping=mapping, motor_size=3,
        implicit_param_constraints=implicit, ode_unfolds=UNFOLDS, epsilon=EPS,
    )
    out, h_new = fn(x, h, ts, **kwargs)
    assert _rel(h_new, h_ref) <= 2e-6
    assert _rel(out, out_ref) <= 2e-6
    assert not out.requires_grad and not h_new.requires_grad


def test_step_inference_float64_compiled_equals_torch(compiled):
    cell = _ncps_cell(True, dtype=torch.float64)
    params = {k: v.detach() for k, v in cell.named_parameters()}
    gen = torch.Generator().manual_seed(6)
    x = torch.randn(9, 5, generator=gen, dtype=torch.float64)
    h = torch.randn(9, N, generator=gen, dtype=torch.float64)
    ts = torch.rand(9, generator=gen, dtype=torch.float64) + 0.1
    kwargs = dict(params, motor_size=3, implicit_param_constraints=True)
    out_c, h_c = K.ltc_step_inference(x, h, ts, **kwargs)
    out_t, h_t = K.ltc_step_inference_torch(x, h, ts, **kwargs)
    assert _rel(h_c, h_t) <= 1e-12 and _rel(out_c, out_t) <= 1e-12


# ------------------------------------------------------------------ errors


def test_step_inference_mapping_needs_its_parameters():
    params = {k: v.detach() for k, v in _ncps_cell(False).named_parameters()}
    params["input_b"] = None
    with pytest.raises(ValueError, match="input_mapping='affine' needs input_w and input_b"):
        K.ltc_step_inference(torch.zeros(1, 5), torch.zeros(1, N), 1.0, motor_size=3,
                             implicit_param_constraints=False, **params)


def test_compiled_rejects_bad_shapes_and_dtypes(compiled):
    tensors, mask = _problem(torch.float32, 2, 3, masked=True)
    args = [tensors[k] for k in tensors if k != "keep"]
    bad_shape = list(args)
    bad_shape[2] = torch.ones(N + 1)  # gleak
    with pytest.raises(ValueError, match=r"gleak must have shape \[12\]"):
        K.ltc_unfold_sequence(*bad_shape, UNFOLDS, EPS, synapse_mask=mask)
    bad_dtype = list(args)
    bad_dtype[6] = args[6].double()  # w
    with pytest.raises(TypeError, match="w has dtype Double but Float was expected"):
        K.ltc_unfold_sequence(*bad_dtype, UNFOLDS, EPS, synapse_mask=mask)


# ------------------------------------------------------------------ fallback


def test_torch_path_when_extension_is_switched_off(monkeypatch):
    monkeypatch.setattr(K, "USE_EXTENSION", False)
    assert not K.extension_available()
    tensors, mask = _problem(torch.float32, 3, 4, masked=True)
    out, grads = _run(K.ltc_unfold_sequence, tensors, mask, with_keep=True)
    ref, grads_ref = _run(K.ltc_unfold_sequence_torch, tensors, mask, with_keep=True)
    assert not type(out.grad_fn).__name__.startswith("_CompiledUnfold")
    assert torch.equal(out, ref)
    assert all(torch.equal(grads[k], grads_ref[k]) for k in grads_ref)


def test_env_variable_disables_the_extension(monkeypatch):
    monkeypatch.setattr(csrc, "_cached", {})
    monkeypatch.setenv("NCP_POLICIES_NO_EXT", "1")
    assert csrc.extension_disabled_by_env()
    assert csrc.load_ltc_extension() is None
    assert not K.extension_available()


def test_build_failure_warns_once_and_falls_back(monkeypatch):
    def broken_build(source, verbose):
        raise OSError("no C++ compiler")

    monkeypatch.setattr(csrc, "_cached", {})
    monkeypatch.delenv("NCP_POLICIES_NO_EXT", raising=False)
    monkeypatch.setattr(csrc, "_build", broken_build)
    with pytest.warns(RuntimeWarning, match="no C.. compiler.*pure-torch"):
        assert csrc.load_ltc_extension() is None
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        assert csrc.load_ltc_extension() is None
        tensors, mask = _problem(torch.float32, 2, 2, masked=True)
        args = [tensors[k] for k in tensors if k != "keep"]
        out = K.ltc_unfold_sequence(*args, UNFOLDS, EPS, synapse_mask=mask)
    assert torch.equal(out, K.ltc_unfold_sequence_torch(*args, UNFOLDS, EPS, synapse_mask=mask))


@pytest.mark.cuda
@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA GPU")
def test_cuda_tensors_use_the_torch_path():
    tensors, mask = _problem(torch.float32, 3, 4, masked=True)
    args = [tensors[k] for k in tensors if k != "keep"]
    out = K.ltc_unfold_sequence(*(a.cuda() for a in args), UNFOLDS, EPS, synapse_mask=mask.cuda())
    ref = K.ltc_unfold_sequence_torch(*args, UNFOLDS, EPS, synapse_mask=mask)
    assert out.is_cuda and _rel(out.cpu(), ref) <= 1e-5
