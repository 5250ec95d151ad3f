"""ncp_policies.save / load: one safetensors file, config in its metadata, bitwise round trips."""
import json

import pytest
import torch
from safetensors.torch import load_file, save_file

import ncp_policies
import ncp_policies.wirings as wirings
from ncp_policies import CfC, LTC, load, save
from ncp_policies.cells import CfCCell, LSTMCell, LTCCell, WiredCfCCell



MODULES = {
    "ltc_ncp": lambda: LTC(3, wirings.NCP(4, 3, 2, 3, 2, 2, 2), mixed_memory=True, init_ranges={"w": (0.1, 2)}),
    "ltc_int": lambda: LTC(3, 5, input_mapping="none", batch_first=False),
    "cfc_autoncp": lambda: CfC(3, wirings.AutoNCP(10, 2), mode="pure", proj_size=4),
    "cfc_dense": lambda: CfC(3, 6, backbone_layers=2, activation="silu", mixed_memory=True),
    "ltc_cell": lambda: LTCCell(wirings.Random(6, 2, 0.5), 3),
    "cfc_cell": lambda: CfCCell(3, 4, "no_gate"),
    "wired_cfc_cell": lambda: WiredCfCCell(3, wirings.FullyConnected(5, 2)),
    "lstm_cell": lambda: LSTMCell(3, 4),
}


def _perturb(module):
    """Random values everywhere, so a round trip that dropped or re-initialised a tensor shows."""
    with torch.no_grad():
        for p in module.parameters():
            p.add_(torch.randn_like(p) * 0.1)


@pytest.mark.parametrize("dtype", [torch.float32, torch.float64])
@pytest.mark.parametrize("name", MODULES)
def test_round_trip_is_bitwise(tmp_path, name, dtype):
    torch.manual_seed(0)
    module = MODULES[name]().to(dtype)
    _perturb(module)
    path = tmp_path / "model.safetensors"
    save(module, path)
    loaded = load(path)
    assert type(loaded) is type(module)
    assert loaded.get_config() == module.get_config()
    original = module.state_dict()
    assert loaded.state_dict().keys() == original.keys()
    for k, v in loaded.state_dict().items():
        assert v.dtype == original[k].dtype and torch.equal(v, original[k]), k
    assert all(p.requires_grad for p in loaded.parameters())
    if isinstance(module, (LTC, CfC)):
        x = torch.randn(2, 4, 3, dtype=dtype)
        assert torch.equal(module(x)[0], loaded(x)[0])


def test_file_is_plain_safetensors_with_json_metadata(tmp_path):
    module = CfC(3, 4)
    path = tmp_path / "m.safetensors"
    save(module, str(path))
    tensors = load_file(str(path))
    assert tensors.keys() == module.state_dict().keys()
    from safetensors import safe_open

    with safe_open(str(path), framework="pt") as f:
        header = json.loads(f.metadata()["ncp_policies"])
    assert header["class"] == "CfC" and header["format_version"] == 1
    assert header["config"] == module.get_config()
    assert header["library_version"] == ncp_policies.__version__


def test_load_to_another_device_name(tmp_path):
    path = tmp_path / "m.safetensors"
    save(LTC(3, 4), path)
    assert next(load(path, map_location=torch.device("cpu")).parameters()).device.type == "cpu"


def test_missing_file(tmp_path):
    with pytest.raises(FileNotFoundError, match="nope.safetensors"):
        load(tmp_path / "nope.safetensors")


def test_corrupt_file(tmp_path):
    path = tmp_path / "bad.safetensors"
    path.write_bytes(b"\x10\x00\x00\x00\x00\x00\x00\x00not json at all, truncated")
    with pytest.raises(ValueError, match="bad.safetensors.*not a readable safetensors file"):
        load(path)
    good = tmp_path / "good.safetensors"
    save(CfC(3, 4), good)
    truncated = tmp_path / "truncated.safetensors"
    truncated.write_bytes(good.read_bytes()[:-50])
    with pytest.raises(ValueError, match="truncated.safetensors"):
        load(truncated)


def _write(path, tensors, header):
    metadata = None if header is None else {"ncp_policies": header if isinstance(header, str) else json.dumps(header)}
    save_file(tensors, str(path), metadata=metadata)


def test_wrong_or_missing_metadata(tmp_path):
    module = CfC(3, 4)
    tensors = {k: v.contiguous() for k, v in module.state_dict().items()}
    good = {"format": "ncp_policies", "format_version": 1, "class": "CfC", "config": module.get_config()}
    cases = [
        (None, "has no 'ncp_policies' metadata"),
        ("{not json", "not valid JSON"),
        ({**good, "format": "other"}, "metadata format is not 'ncp_policies'"),
        ({**good, "format_version": 99}, "format_version 99; this ncp_policies reads version 1"),
        ({**good, "class": "Transformer"}, "holds class 'Transformer'; known classes: CfC, CfCCell"),
        ({**good, "config": None}, "no 'config' dict"),
        ({**good, "config": {**good["config"], "mode": "warp"}}, "cannot rebuild CfC from its config"),
    ]
    for i, (header, message) in enumerate(cases):
        path = tmp_path / f"case{i}.safetensors"
        _write(path, tensors, header)
        with pytest.raises(ValueError, match=message):
            load(path)


def test_mismatched_tensors(tmp_path):
    module = CfC(3, 4)
    header = {"format": "ncp_policies", "format_version": 1, "class": "CfC", "config": module.get_config()}
    tensors = {k: v.contiguous() for k, v in module.state_dict().items()}
    missing = dict(tensors)
    missing.pop("rnn_cell.ff1.bias")
    extra = {**tensors, "rnn_cell.extra": torch.zeros(2)}
    reshaped = {**tensors, "rnn_cell.ff1.bias": torch.zeros(5)}
    for tensors_, message in (
        (missing, r"missing tensors \['rnn_cell.ff1.bias'\]"),
        (extra, r"unexpected tensors \['rnn_cell.extra'\]"),
        (reshaped, r"rnn_cell.ff1.bias: file \(5,\) vs model \(4,\)"),
    ):
        path = tmp_path / "m.safetensors"
        _write(path, tensors_, header)
        with pytest.raises(ValueError, match=message):
            load(path)


def test_save_rejects_other_modules(tmp_path):
    with pytest.raises(TypeError, match="save\\(\\) supports CfC, CfCCell"):
        save(torch.nn.Linear(2, 2), tmp_path / "x.safetensors")
