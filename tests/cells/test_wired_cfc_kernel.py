"""The compiled wired-CfC wavefront (csrc/wired_cfc.cpp) against the torch wavefront, fallback, errors.

The first test to need the compiled kernel builds it (once per machine, ~20-40 s); set
NCP_POLICIES_NO_EXT=1 to skip the compiled-kernel tests on a machine without a C++ compiler.
"""
from __future__ import annotations

from pathlib import Path
from typing import Any, Dict, List, Optional

import numpy as np
import pytest
import torch

from ncp_policies import CfC, wirings
from ncp_policies.cells import csrc
from ncp_policies.cells import wired_cfc_kernel as WK
from ncp_policies.wirings import Wiring

F_IN = 5
TOL = {torch.float32: 1e-6, torch.float64: 1e-12}  # states
GRAD_TOL = {torch.float32: 1e-5, torch.float64: 1e-10}


class _TwoLayers(Wiring):
    """A two-layer wiring: inter neurons 2..6 (layer 0, read the inputs) feed motor neurons 0, 1 (layer 1)."""

    def __init__(self) -> None:
        super().__init__(7)
        self.set_output_dim(2)
        rng = np.random.RandomState(3)
        for src in range(2, 7):
            for dest in rng.choice(2, size=1 + src % 2, replace=False):
                self.add_synapse(src, int(dest), int(rng.choice([-1, 1])))

    @property
    def num_layers(self) -> int:
        return 2

    def get_neurons_of_layer(self, layer_id: int) -> List[int]:
        return [[2, 3, 4, 5, 6], [0, 1]][layer_id]

    def _build_synapses(self) -> None:
        for src in range(self.input_dim):
            for dest in (2 + src % 5, 2 + (src + 2) % 5):
                self.add_sensory_synapse(src, dest, 1 if src % 2 else -1)


WIRINGS = {
    "auto_ncp": lambda: wirings.AutoNCP(12, 3, seed=11),  # 3 layers
    "ncp": lambda: wirings.NCP(4, 3, 2, 3, 2, 2, 2, seed=5),  # 3 layers
    "two_layers": _TwoLayers,
    "fully_connected": lambda: wirings.FullyConnected(6, 2),  # 1 layer
}


class _Spy:
    """Stands for the extension module and counts the calls of its entry points."""

    def __init__(self, ext: Any) -> None:
        self.ext = ext
        self.calls: Dict[str, int] = {"forward": 0, "backward": 0}

    def forward(self, *args: Any) -> Any:
        self.calls["forward"] += 1
        return self.ext.forward(*args)

    def backward(self, *args: Any) -> Any:
        self.calls["backward"] += 1
        return self.ext.backward(*args)


@pytest.fixture(scope="module")
def compiled() -> None:
    if csrc.extension_disabled_by_env():
        pytest.skip("NCP_POLICIES_NO_EXT is set: the compiled kernel is disabled")
    assert WK.wired_cfc_unroll_available(torch.zeros(1)), "the C++ wired CfC kernel did not build (see the warning)"


@pytest.fixture
def spy(compiled: None, monkeypatch: pytest.MonkeyPatch) -> _Spy:
    """The kernel, wrapped so that a test sees how often it ran (and cannot pass by falling back)."""
    original = WK._extension_for
    counter = _Spy(csrc.load_wired_cfc_extension())
    monkeypatch.setattr(WK, "_extension_for", lambda like: None if original(like) is None else counter)
    return counter


def _rel(a: torch.Tensor, b: torch.Tensor) -> float:
    """max |a - b| / max(1, max |b|)."""
    a, b = a.detach(), b.detach()
    return float((a - b).abs().max() / b.abs().max().clamp(min=1.0))


def _grad_rel(a: torch.Tensor, b: torch.Tensor) -> float:
    """max |a - b| / max |b| (gradients of any scale)."""
    return float((a - b).abs().max() / b.abs().max().clamp(min=1e-30))


def _problem(wiring: str, mode: str, dtype: torch.dtype, batch: int = 3, steps: int = 7, seed: int = 0):
    """A layer and (x, h0, resets (with resets mid-sequence), per-sample timespans (B, T, 1))."""
    torch.manual_seed(seed)
    layer = CfC(F_IN, WIRINGS[wiring](), mode=mode).to(dtype)
    with torch.no_grad():  # move the biases away from their initial values
        for p in layer.parameters():
            p.add_(0.1 * torch.randn_like(p))
    gen = torch.Generator().manual_seed(seed + 1)
    x = torch.randn(batch, steps, F_IN, generator=gen, dtype=dtype)
    h0 = 0.5 * torch.randn(batch, layer.state_size, generator=gen, dtype=dtype)
    resets = (torch.rand(batch, steps, generator=gen) < 0.2).to(dtype)
    resets[0, min(3, steps - 1)] = resets[batch - 1, min(1, steps - 1)] = resets[1 % batch, steps - 1] = 1.0
    resets[0, 0] = 0.0
    ts = 0.3 + torch.rand(batch, steps, 1, generator=gen, dtype=dtype)
    return layer, x, h0, resets, ts


def _run(layer: CfC, x: torch.Tensor, h0: torch.Tensor, resets: Optional[torch.Tensor], timespans: Any):
    """States, their grad_fn, and the gradients of x, h0 and every parameter under a fixed weighting."""
    layer.zero_grad(set_to_none=True)
    x = x.clone().requires_grad_(True)
    h0 = h0.clone().requires_grad_(True)
    out = layer.run(x, h0, timespans, resets=resets)
    weight = torch.randn(out.states.shape, generator=torch.Generator().manual_seed(9), dtype=x.dtype)
    ((out.states * weight).sum() + out.outputs.square().sum()).backward()
    grads = {name: p.grad.clone() for name, p in layer.named_parameters()}
    grads.update(x=x.grad, h0=h0.grad)
    return out.states.detach(), out.states.grad_fn, grads


# ------------------------------------------------------------------ against the torch wavefront


@pytest.mark.parametrize("dtype", [torch.float32, torch.float64])
@pytest.mark.parametrize("timespans", ["float", "per_sample"])
@pytest.mark.parametrize("with_resets", [False, True])
@pytest.mark.parametrize("mode", ["default", "no_gate"])
@pytest.mark.parametrize("wiring", list(WIRINGS))
def test_compiled_matches_torch(spy, monkeypatch, wiring, mode, with_resets, timespans, dtype):
    layer, x, h0, resets, ts = _problem(wiring, mode, dtype)
    resets = resets if with_resets else None
    ts = 0.7 if timespans == "float" else ts
    states_c, fn_c, grads_c = _run(layer, x, h0, resets, ts)
    assert spy.calls == {"forward": 1, "backward": 1}
    assert type(fn_c).__name__ == "_CompiledWiredCfCBackward"
    monkeypatch.setattr(WK, "USE_EXTENSION", False)
    states_t, fn_t, grads_t = _run(layer, x, h0, resets, ts)
    assert spy.calls == {"forward": 1, "backward": 1}  # the torch path did not call the kernel
    assert type(fn_t).__name__ != "_CompiledWiredCfCBackward"
    assert _rel(states_c, states_t) <= TOL[dtype]
    assert grads_c.keys() == grads_t.keys()
    for name, g in grads_t.items():
        assert _grad_rel(grads_c[name], g) <= GRAD_TOL[dtype], name


@pytest.mark.parametrize("wiring", ["auto_ncp", "fully_connected"])
@pytest.mark.parametrize("with_resets", [False, True])
def test_compiled_without_grad_matches_torch(spy, monkeypatch, wiring, with_resets):
    layer, x, h0, resets, _ = _problem(wiring, "default", torch.float32, batch=4, steps=9)
    resets = resets if with_resets else None
    with torch.no_grad():
        out_c = layer.run(x, h0, resets=resets)
        assert spy.calls == {"forward": 1, "backward": 0}
        monkeypatch.setattr(WK, "USE_EXTENSION", False)
        out_t = layer.run(x, h0, resets=resets)
    assert spy.calls["forward"] == 1
    assert _rel(out_c.states, out_t.states) <= TOL[torch.float32]
    assert _rel(out_c.outputs, out_t.outputs) <= TOL[torch.float32]


@pytest.mark.parametrize("steps", [1, 2])  # fewer steps than layers: the drain waves dominate
def test_short_sequences_match_torch(spy, monkeypatch, steps):
    layer, x, h0, resets, ts = _problem("ncp", "default", torch.float64, batch=2, steps=steps)
    states_c, _, grads_c = _run(layer, x, h0, resets, ts)
    assert spy.calls == {"forward": 1, "backward": 1}
    monkeypatch.setattr(WK, "USE_EXTENSION", False)
    states_t, _, grads_t = _run(layer, x, h0, resets, ts)
    assert _rel(states_c, states_t) <= 1e-12
    for name, g in grads_t.items():
        assert _grad_rel(grads_c[name], g) <= 1e-10, name


def test_large_batch_goes_through_blas_and_matches_torch(spy, monkeypatch):
    """Products above the kernel's BLAS threshold (B * 2N * 3N >= 2^15) take the other branch."""
    torch.manual_seed(4)
    layer = CfC(F_IN, wirings.AutoNCP(32, 4, seed=1)).double()
    gen = torch.Generator().manual_seed(5)
    x = torch.randn(20, 4, F_IN, generator=gen, dtype=torch.float64)
    h0 = torch.randn(20, 32, generator=gen, dtype=torch.float64)
    resets = (torch.rand(20, 4, generator=gen) < 0.3).double()
    states_c, _, grads_c = _run(layer, x, h0, resets, 1.0)
    assert spy.calls == {"forward": 1, "backward": 1}
    monkeypatch.setattr(WK, "USE_EXTENSION", False)
    states_t, _, grads_t = _run(layer, x, h0, resets, 1.0)
    assert _rel(states_c, states_t) <= 1e-12
    for name, g in grads_t.items():
        assert _grad_rel(grads_c[name], g) <= 1e-10, name


# ------------------------------------------------------------------ gradcheck of the kernel itself


@pytest.mark.parametrize(
    "offsets,with_keep,with_prev,with_ts",
    [
        ([0, 2, 3, 4], True, True, False),
        ([0, 2, 3, 4], False, False, True),
        ([0, 1, 4], True, True, True),
        ([0, 4], True, False, False),
    ],
)
def test_gradcheck_compiled(spy, offsets, with_keep, with_prev, with_ts):
    gen = torch.Generator().manual_seed(7)
    batch, steps, n = 2, 3, offsets[-1]
    k = 4 if with_ts else 3

    def rand(*shape: int) -> torch.Tensor:
        return torch.randn(*shape, generator=gen, dtype=torch.float64)

    xp, h0, w_own, w_prev = rand(batch, steps, k * n), rand(batch, n), 0.5 * rand(n, k * n), 0.5 * rand(n, k * n)
    keep = torch.tensor([[1.0, 0.0, 1.0], [1.0, 1.0, 0.0]], dtype=torch.float64) if with_keep else None
    ts = 0.5 + torch.rand(batch, steps, generator=gen, dtype=torch.float64) if with_ts else None
    leaves = [t.requires_grad_() for t in ((xp, h0, w_own, w_prev) if with_prev else (xp, h0, w_own))]

    def fn(*tensors: torch.Tensor) -> torch.Tensor:
        prev = tensors[3] if with_prev else None
        return WK.wired_cfc_unroll(tensors[0], tensors[1], tensors[2], prev, keep, ts, offsets, True)

    assert type(fn(*leaves).grad_fn).__name__ == "_CompiledWiredCfCBackward"
    assert torch.autograd.gradcheck(fn, leaves, eps=1e-6, atol=1e-8, rtol=1e-6)
    assert spy.calls["backward"] > 0


# ------------------------------------------------------------------ where the torch path runs


def test_pure_mode_and_timespans_with_grad_use_the_torch_path(spy):
    layer, x, h0, resets, ts = _problem("auto_ncp", "pure", torch.float64)
    states, fn, _ = _run(layer, x, h0, resets, 0.7)
    assert spy.calls == {"forward": 0, "backward": 0} and type(fn).__name__ != "_CompiledWiredCfCBackward"
    layer, x, h0, resets, ts = _problem("auto_ncp", "default", torch.float64)
    ts = ts.clone().requires_grad_(True)  # the kernel gives timespans no gradient: torch must run
    layer.run(x, h0, ts, resets=resets).states.sum().backward()
    assert spy.calls == {"forward": 0, "backward": 0}
    assert ts.grad is not None and bool(ts.grad.abs().sum() > 0)


def test_torch_path_when_extension_is_switched_off(monkeypatch):
    monkeypatch.setattr(WK, "USE_EXTENSION", False)
    assert not WK.wired_cfc_unroll_available(torch.zeros(1))
    layer, x, h0, resets, _ = _problem("auto_ncp", "default", torch.float32)
    _, fn, _ = _run(layer, x, h0, resets, 1.0)
    assert type(fn).__name__ != "_CompiledWiredCfCBackward"
    with pytest.raises(RuntimeError, match="not available here"):
        WK.wired_cfc_unroll(x, h0, torch.zeros(12, 36), None, None, None, [0, 12], True)


def test_env_variable_disables_the_extension(monkeypatch):
    monkeypatch.setattr(csrc, "_cached", {})
    monkeypatch.setenv("NCP_POLICIES_NO_EXT", "1")
    assert csrc.load_wired_cfc_extension() is None
    assert not WK.wired_cfc_unroll_available(torch.zeros(1))


def test_other_dtypes_use_the_torch_path(spy):
    assert not WK.wired_cfc_unroll_available(torch.zeros(1, dtype=torch.bfloat16))
    assert not WK.wired_cfc_unroll_available(torch.zeros(1, dtype=torch.float16))


@pytest.mark.cuda
@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA GPU")
def test_cuda_tensors_use_the_torch_path(spy, monkeypatch):
    layer, x, h0, resets, _ = _problem("auto_ncp", "default", torch.float32)
    out = layer.cuda().run(x.cuda(), h0.cuda(), resets=resets.cuda())
    assert spy.calls == {"forward": 0, "backward": 0}
    monkeypatch.setattr(WK, "USE_EXTENSION", False)
    ref = layer.cpu().run(x, h0, resets=resets)
    assert _rel(out.states.cpu(), ref.states) <= 1e-5


# ------------------------------------------------------------------ errors and the build


def test_compiled_rejects_bad_shapes_and_dtypes(compiled):
    xp, h0, w = torch.zeros(2, 3, 12), torch.zeros(2, 4), torch.zeros(4, 12)
    with pytest.raises(ValueError, match=r"w_own must be \(N, K\*N\)"):
        WK.wired_cfc_unroll(xp, h0, torch.zeros(4, 9), None, None, None, [0, 4], True)
    with pytest.raises(ValueError, match="offsets must run from 0 to N = 4"):
        WK.wired_cfc_unroll(xp, h0, w, None, None, None, [0, 2, 3], True)
    with pytest.raises(ValueError, match=r"keep must be \(B, T\)"):
        WK.wired_cfc_unroll(xp, h0, w, None, torch.ones(2, 4), None, [0, 4], True)
    with pytest.raises(ValueError, match="xp must have K\\*N = 16 columns"):
        WK.wired_cfc_unroll(xp, h0, torch.zeros(4, 16), None, None, torch.ones(2, 3), [0, 4], True)
    with pytest.raises(TypeError, match="w_own must be a CPU tensor of Float"):
        WK.wired_cfc_unroll(xp, h0, w.double(), None, None, None, [0, 4], True)


def test_library_name_follows_the_included_headers(tmp_path: Path):
    """A changed header (cfc_combine.h, fast_math.h) must not load a stale build."""
    assert csrc._local_includes(csrc.WIRED_CFC_SOURCE) == [
        csrc.WIRED_CFC_SOURCE.with_name("cfc_combine.h"),
        csrc.WIRED_CFC_SOURCE.with_name("fast_math.h"),
    ]
    assert csrc._local_includes(csrc.CFC_SOURCE) == [csrc.CFC_SOURCE.with_name("cfc_combine.h")]
    source, header = tmp_path / "k.cpp", tmp_path / "h.h"
    source.write_text('#include <vector>\n#include "h.h"\nint f() { return g(); }\n')
    header.write_text("inline int g() { return 1; }\n")
    before = csrc._library_name(source, ["-O3"])
    header.write_text("inline int g() { return 2; }\n")
    assert csrc._library_name(source, ["-O3"]) != before
