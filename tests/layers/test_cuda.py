"""The layers on a CUDA device give the CPU's numbers (skipped without a GPU)."""
import pytest
import torch

from ncp_policies import CfC, LTC, load, save

from .ncps_reference import assert_close, wiring_pair

pytestmark = [
    pytest.mark.cuda,
    pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA GPU"),
]


@pytest.mark.parametrize("mixed", [False, True])
@pytest.mark.parametrize("kind", ["ltc", "cfc", "cfc_wired"])
def test_cuda_matches_cpu(kind, mixed):
    torch.manual_seed(0)
    if kind == "ltc":
        layer = LTC(3, wiring_pair("auto_ncp")[0], mixed_memory=mixed)
    elif kind == "cfc":
        layer = CfC(3, 6, mixed_memory=mixed)
    else:
        layer = CfC(3, wiring_pair("ncp")[0], mixed_memory=mixed)
    x, ts = torch.randn(4, 6, 3), torch.rand(4, 6) + 0.5
    resets = torch.zeros(4, 6)
    resets[1, 3] = 1
    clamp = (torch.tensor([0]), torch.tensor([0.2]))
    gpu = type(layer).from_config(layer.get_config())
    gpu.load_state_dict(layer.state_dict())
    gpu = gpu.to("cuda")
    for kwargs in (dict(), dict(timespans=ts, resets=resets), dict(clamp=clamp)):
        cpu_out = layer.run(x, **kwargs)
        gpu_kwargs = {
            k: (tuple(t.cuda() for t in v) if isinstance(v, tuple) else v.cuda()) for k, v in kwargs.items()
        }
        gpu_out = gpu.run(x.cuda(), **gpu_kwargs)
        assert gpu_out.states.device.type == "cuda"
        assert_close(gpu_out.states.cpu(), cpu_out.states)
        assert_close(gpu_out.outputs.cpu(), cpu_out.outputs)
        gpu_out.outputs.sum().backward()
    assert all(p.grad is not None and p.grad.device.type == "cuda" for p in gpu.parameters() if p.requires_grad)


def test_cuda_errors_and_io(tmp_path):
    layer = CfC(3, wiring_pair("auto_ncp")[0]).to("cuda")
    with pytest.raises(TypeError, match="on cpu but the input is torch.float32 on cuda"):
        layer(torch.randn(2, 4, 3, device="cuda"), torch.zeros(2, layer.state_size))
    path = tmp_path / "m.safetensors"
    save(layer, path)
    loaded = load(path, map_location="cuda")
    x = torch.randn(2, 4, 3, device="cuda")
    assert torch.equal(loaded(x)[0], layer(x)[0])
