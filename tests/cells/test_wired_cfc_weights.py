"""The wired CfC's packed head matrices (``WiredCfCCell._weights``: one gather and one scatter-add of the
flat head parameters) against the straightforward assembly: each layer's fused, masked heads
(``CfCCell.head_weights``) placed block by block. Values and gradients must be the same bits, except
``fold * time_a + time_b`` for a folded timespan other than 1 (``torch.add`` may round it once, with a
fused multiply-add, where the scatter rounds twice).
"""
from __future__ import annotations

from typing import Callable, Dict, Optional

import pytest
import torch
import torch.nn.functional as F

from ncp_policies import wirings
from ncp_policies.cells.cfc_math import head_blocks
from ncp_policies.cells.wired_cfc_cell import WiredCfCCell, WiredCfCWeights

F_IN = 5
FIELDS = ("w_x", "bias", "w", "w_rec", "w_ff", "A", "w_tau")

WIRINGS: Dict[str, Callable[[], object]] = {
    "auto_ncp": lambda: wirings.AutoNCP(14, 3, sparsity_level=0.4, seed=3),  # 3 layers
    "ncp": lambda: wirings.NCP(5, 4, 2, 3, 2, 2, 2, seed=5),  # 3 layers
    "fully_connected": lambda: wirings.FullyConnected(6, 2),  # 1 layer
    "random": lambda: wirings.Random(9, 3, sparsity_level=0.5, random_seed=7),  # 1 layer, sparse
}


def _reference_weights(cell: WiredCfCCell, fold: Optional[float]) -> WiredCfCWeights:
    """Every layer's ``head_weights`` placed into the packed matrices one block after the other."""
    k_blocks = head_blocks(cell.mode, fold is not None)
    n, off = cell.state_size, cell._offsets
    ref = cell.layer_0.ff1.weight
    w_rec = ref.new_zeros(n, k_blocks, n)  # [source state, head block, target neuron]
    w_ff = ref.new_zeros(n, k_blocks, n)
    biases, w_x = [], ref.new_zeros(0)
    for l, layer in enumerate(cell.layers()):
        a, e = off[l], off[l + 1]
        w, b = layer.head_weights(fold)  # (K*H, in + H)
        w = w.view(k_blocks, e - a, -1).permute(2, 0, 1)  # (in + H, K, H)
        n_in = w.shape[0] - (e - a)
        w_rec[a:e, :, a:e] = w[n_in:]
        if l == 0:
            w_x = F.pad(w[:n_in], (0, n - e)).reshape(n_in, k_blocks * n)
        else:
            w_ff[off[l - 1] : a, :, a:e] = w[:n_in]
        biases.append(b.view(k_blocks, e - a))
    w_rec, w_ff = w_rec.view(n, k_blocks * n), w_ff.view(n, k_blocks * n)
    A = w_tau = None
    if cell.mode == "pure":
        A = torch.cat([layer.A for layer in cell.layers()], 1)
        w_tau = torch.cat([layer.w_tau for layer in cell.layers()], 1)
    bias = torch.cat(biases, 1).reshape(k_blocks * n)
    return WiredCfCWeights(w_x, bias, w_rec + w_ff, w_rec, w_ff, A, w_tau)


def _values_and_grads(cell: WiredCfCCell, build: Callable[[], WiredCfCWeights]):
    """The packed tensors, and the parameters' gradients of a fixed random linear function of all of them."""
    cell.zero_grad(set_to_none=True)
    weights = build()
    gen = torch.Generator().manual_seed(0)
    loss = 0.0
    for name in FIELDS:
        t = getattr(weights, name)
        if t is not None:
            loss = loss + (t * torch.randn(t.shape, generator=gen, dtype=t.dtype)).sum()
    loss.backward()
    values = {name: getattr(weights, name) for name in FIELDS}
    grads = {name: p.grad.clone() for name, p in cell.named_parameters()}
    return values, grads


def _set_masks(cell: WiredCfCCell, masks: str) -> None:
    if masks == "none":  # no sparsity: every synapse of the dense layers
        for layer in cell.layers():
            layer.sparsity_mask = None
    elif masks == "weighted":  # values other than 0 and 1 (the factors go through the multiply)
        gen = torch.Generator().manual_seed(1)
        for layer in cell.layers():
            layer.sparsity_mask.copy_(torch.randint(0, 3, layer.sparsity_mask.shape, generator=gen) * 0.75)


@pytest.mark.parametrize("masks", ["wiring", "none", "weighted"])
@pytest.mark.parametrize("fold", [None, 1.0, 0.37])
@pytest.mark.parametrize("mode", ["default", "no_gate", "pure"])
@pytest.mark.parametrize("wiring", list(WIRINGS))
def test_packed_weights_match_the_per_layer_assembly(wiring, mode, fold, masks):
    torch.manual_seed(4)
    cell = WiredCfCCell(F_IN, WIRINGS[wiring](), mode)
    _set_masks(cell, masks)
    values, grads = _values_and_grads(cell, lambda: cell._weights(fold))
    ref_values, ref_grads = _values_and_grads(cell, lambda: _reference_weights(cell, fold))
    for name in FIELDS:
        if ref_values[name] is None:
            assert values[name] is None, name
            continue
        assert values[name].shape == ref_values[name].shape, name
        if fold in (None, 1.0) or mode == "pure":
            assert torch.equal(values[name], ref_values[name]), name
        else:
            torch.testing.assert_close(values[name], ref_values[name], rtol=0.0, atol=5e-7)
    assert grads.keys() == ref_grads.keys()
    for name, grad in grads.items():
        assert torch.equal(grad, ref_grads[name]), name
    assert any(g.abs().max() > 0 for g in grads.values())


def test_packed_weights_follow_changed_masks_dtype_and_fold():
    """The index map is cached: a mask changed in place, replaced or removed, another dtype or another
    folded timespan must each give the matrices of the new setting."""
    torch.manual_seed(5)
    cell = WiredCfCCell(F_IN, WIRINGS["auto_ncp"](), "default")
    layer = cell.layer_1
    with torch.no_grad():
        first = cell._weights(1.0)
        kept = layer.sparsity_mask.nonzero()[0].tolist()  # a synapse of the wiring
        layer.sparsity_mask[kept[0], kept[1]] = 0.0
        cut = cell._weights(1.0)
        assert not torch.equal(cut.w, first.w)
        assert torch.equal(cut.w, _reference_weights(cell, 1.0).w)

        layer.sparsity_mask = torch.ones_like(layer.sparsity_mask) * 2.0  # replaced: weighted synapses
        assert torch.equal(cell._weights(1.0).w, _reference_weights(cell, 1.0).w)
        layer.sparsity_mask = None  # removed: dense
        dense = cell._weights(1.0)
        assert torch.equal(dense.w_ff, _reference_weights(cell, 1.0).w_ff)
        assert int((dense.w_ff != 0).sum()) > int((first.w_ff != 0).sum())

        assert torch.equal(cell._weights(None).w, _reference_weights(cell, None).w)  # 4 blocks, unfolded
        torch.testing.assert_close(cell._weights(0.5).w, _reference_weights(cell, 0.5).w, rtol=0.0, atol=5e-7)
        cell.double()
        packed = cell._weights(1.0)
        assert packed.w.dtype == torch.float64
        assert torch.equal(packed.w, _reference_weights(cell, 1.0).w)
