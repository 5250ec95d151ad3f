"""LTC against ncps 1.0.1: an ncps state_dict loads strictly and outputs, states and gradients match."""
import pytest
import torch
from ncps.torch import LTC as NcpsLTC

from ncp_policies import LTC

from .ncps_reference import WIRINGS, compare_with_ncps, wiring_pair

F_IN = 4


def _pair(units, **kwargs):
    if isinstance(units, int):
        return LTC(F_IN, units, **kwargs), NcpsLTC(F_IN, units, **kwargs)
    ours_w, ref_w = wiring_pair(units)
    return LTC(F_IN, ours_w, **kwargs), NcpsLTC(F_IN, ref_w, **kwargs)


@pytest.mark.parametrize("units", [6, *WIRINGS])
def test_wirings_match_ncps(units):
    torch.manual_seed(0)
    ours, ref = _pair(units)
    compare_with_ncps(ours, ref, torch.randn(3, 5, F_IN))


@pytest.mark.parametrize("input_mapping", ["affine", "linear", "none"])
@pytest.mark.parametrize("output_mapping", ["affine", "linear", "none"])
def test_mappings_match_ncps(input_mapping, output_mapping):
    torch.manual_seed(1)
    ours, ref = _pair("auto_ncp", input_mapping=input_mapping, output_mapping=output_mapping)
    with torch.no_grad():  # non-trivial mapping weights
        for name, p in ref.named_parameters():
            if name.split(".")[-1] in ("input_w", "input_b", "output_w", "output_b"):
                p.uniform_(-1.5, 1.5)
    compare_with_ncps(ours, ref, torch.randn(2, 4, F_IN))


@pytest.mark.parametrize("implicit", [True, False])
def test_param_constraints_match_ncps(implicit):
    torch.manual_seed(2)
    ours, ref = _pair("ncp", implicit_param_constraints=implicit)
    compare_with_ncps(ours, ref, torch.randn(2, 4, F_IN))


@pytest.mark.parametrize("units", [5, "ncp"])
def test_mixed_memory_matches_ncps(units):
    torch.manual_seed(3)
    ours, ref = _pair(units, mixed_memory=True)
    n = ours.state_size
    hx = (torch.randn(2, n) * 0.1, torch.randn(2, n) * 0.1)
    compare_with_ncps(ours, ref, torch.randn(2, 4, F_IN), hx=hx)
    compare_with_ncps(*_pair(units, mixed_memory=True), torch.randn(2, 3, F_IN))


@pytest.mark.parametrize("shape", [(1, 5), (1, 5, 1)])
def test_timespans_match_ncps_batch_one(shape):
    torch.manual_seed(4)
    ours, ref = _pair("auto_ncp")
    ts = torch.rand(shape) + 0.2
    compare_with_ncps(ours, ref, torch.randn(1, 5, F_IN), timespans=ts)


def test_layouts_match_ncps():
    torch.manual_seed(5)
    # time-major
    ours, ref = _pair("auto_ncp", batch_first=False)
    compare_with_ncps(ours, ref, torch.randn(5, 3, F_IN), hx=torch.randn(3, 12) * 0.1)
    # unbatched, with a state
    ours, ref = _pair("ncp")
    compare_with_ncps(ours, ref, torch.randn(5, F_IN), hx=torch.randn(ours.state_size) * 0.1)
    # last output only
    ours, ref = _pair("random", return_sequences=False)
    compare_with_ncps(ours, ref, torch.randn(3, 5, F_IN))
    # unbatched + time-major + mixed memory + last output only (ncps squeezes the wrong dimension
    # there and returns (1, O); ours returns (O,) like every other unbatched case)
    ours, ref = _pair(4, batch_first=False, mixed_memory=True, return_sequences=False)
    compare_with_ncps(ours, ref, torch.randn(5, F_IN), output_map=lambda y: y[0])


def test_same_seed_gives_same_initial_parameters_as_ncps():
    ours_w, ref_w = wiring_pair("auto_ncp")
    torch.manual_seed(6)
    ours = LTC(F_IN, ours_w, mixed_memory=True)
    torch.manual_seed(6)
    ref = NcpsLTC(F_IN, ref_w, mixed_memory=True)
    ref_sd = ref.state_dict()
    for k, v in ours.state_dict().items():
        assert torch.equal(v, ref_sd[k]), k
