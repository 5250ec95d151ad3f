"""Save and load networks as one ``.safetensors`` file: the weights, plus the constructor config in the
file's metadata. Nothing is ever pickled.

Metadata key ``"ncp_policies"`` holds JSON ``{"format": "ncp_policies", "format_version": 1,
"class": <class name>, "config": <module.get_config()>, "library_version": <version>}``.
"""
from __future__ import annotations

import json
import os
from typing import Any, Dict, Type, Union

import torch
from torch import nn

FORMAT = "ncp_policies"
FORMAT_VERSION = 1
METADATA_KEY = "ncp_policies"

PathLike = Union[str, "os.PathLike[str]"]


def _registry() -> Dict[str, Type[nn.Module]]:
    from .cells import CfCCell, LSTMCell, LTCCell, WiredCfCCell
    from .layers import CfC, LTC

    return {cls.__name__: cls for cls in (LTC, CfC, LTCCell, CfCCell, WiredCfCCell, LSTMCell)}


def save(module: nn.Module, path: PathLike) -> None:
    """Write ``module``'s weights and config to one safetensors file.

    :param module: an ``LTC``, ``CfC``, ``LTCCell``, ``CfCCell``, ``WiredCfCCell`` or ``LSTMCell``.
    :param path: destination file (conventionally ``*.safetensors``); overwritten if it exists.
    """
    from safetensors.torch import save_file

    name = type(module).__name__
    if name not in _registry() or not isinstance(module, _registry()[name]):
        raise TypeError(
            f"save() supports {', '.join(sorted(_registry()))}; got {name}. "
            "Save other modules' state_dict with safetensors.torch.save_file directly."
        )
    header = {
        "format": FORMAT,
        "format_version": FORMAT_VERSION,
        "class": name,
        "config": module.get_config(),
        "library_version": _library_version(),
    }
    tensors = {k: v.detach().to("cpu").contiguous().clone() for k, v in module.state_dict().items()}
    save_file(tensors, os.fspath(path), metadata={METADATA_KEY: json.dumps(header)})


def load(path: PathLike, map_location: Union[str, torch.device] = "cpu") -> nn.Module:
    """Rebuild a module saved by :func:`save` and load its weights strictly (dtypes kept bit for bit).

    :param path: the ``.safetensors`` file.
    :param map_location: device for the module's tensors.
    :return: the module.
    """
    from safetensors import safe_open

    path = os.fspath(path)
    if not os.path.isfile(path):
        raise FileNotFoundError(f"no such model file: {path!r}")
    try:
        with safe_open(path, framework="pt", device="cpu") as f:
            metadata = f.metadata() or {}
            tensors = {k: f.get_tensor(k) for k in f.keys()}
    except Exception as exc:  # safetensors raises its own error types for malformed files
        raise ValueError(f"{path!r} is not a readable safetensors file ({type(exc).__name__}: {exc})") from exc

    if METADATA_KEY not in metadata:
        raise ValueError(
            f"{path!r} has no {METADATA_KEY!r} metadata, so it was not written by ncp_policies.save(); "
            "load plain state dicts with safetensors.torch.load_file and module.load_state_dict"
        )
    try:
        header = json.loads(metadata[METADATA_KEY])
    except json.JSONDecodeError as exc:
        raise ValueError(f"{path!r}: the {METADATA_KEY!r} metadata is not valid JSON ({exc})") from exc
    if not isinstance(header, dict) or header.get("format") != FORMAT:
        raise ValueError(f"{path!r}: metadata format is not {FORMAT!r}")
    version = header.get("format_version")
    if version != FORMAT_VERSION:
        raise ValueError(
            f"{path!r} has format_version {version!r}; this ncp_policies reads version {FORMAT_VERSION}"
        )
    registry = _registry()
    name = header.get("class")
    if name not in registry:
        raise ValueError(f"{path!r} holds class {name!r}; known classes: {', '.join(sorted(registry))}")
    config = header.get("config")
    if not isinstance(config, dict):
        raise ValueError(f"{path!r}: metadata has no 'config' dict for {name}")
    try:
        module = registry[name].from_config(config)
    except (TypeError, ValueError, KeyError) as exc:
        raise ValueError(f"{path!r}: cannot rebuild {name} from its config ({exc})") from exc

    _check_tensors(path, name, module, tensors)
    float_dtypes = {t.dtype for t in tensors.values() if t.is_floating_point()}
    if len(float_dtypes) == 1:  # e.g. a float64 model: convert first, so derived buffers follow too
        module.to(float_dtypes.pop())
    module.load_state_dict(tensors, strict=True, assign=True)
    return module.to(map_location)


def _check_tensors(path: str, name: str, module: nn.Module, tensors: Dict[str, torch.Tensor]) -> None:
    expected = module.state_dict()
    missing = sorted(set(expected) - set(tensors))
    unexpected = sorted(set(tensors) - set(expected))
    wrong = [
        f"{k}: file {tuple(tensors[k].shape)} vs model {tuple(v.shape)}"
        for k, v in expected.items()
        if k in tensors and tensors[k].shape != v.shape
    ]
    problems = []
    if missing:
        problems.append(f"missing tensors {missing}")
    if unexpected:
        problems.append(f"unexpected tensors {unexpected}")
    if wrong:
        problems.append(f"shape mismatches {wrong}")
    if problems:
        raise ValueError(f"{path!r}: the tensors do not fit the {name} its config describes: " + "; ".join(problems))


def _library_version() -> str:
    from . import __version__

    return __version__
