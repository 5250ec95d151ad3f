"""Build and import the C++ kernels of this folder (torch JIT extensions: ``ltc.cpp``, ``cfc.cpp``,
``wired_cfc.cpp``; the last two share the CfC combine of ``cfc_combine.h``).

The first use on a machine compiles a source file with ``torch.utils.cpp_extension.load`` (about
15-25 s) into torch's extensions directory (``$TORCH_EXTENSIONS_DIR``, by default
``~/.cache/torch_extensions``); later processes import the cached library directly. The library
name carries a hash of the source and of the headers it includes (``#include "..."``), the compiler
flags, the torch version and the CPU capability, so a changed source or header or a different torch
never loads a stale build. Concurrent first uses (e.g. pytest-xdist workers) are serialised by
torch's lock file in the build directory: one process compiles, the others wait and import.

Set ``NCP_POLICIES_NO_EXT=1`` to never build or load the extension (pure-torch kernels are used).
A failed build warns once and the pure-torch kernels are used.
"""
from __future__ import annotations

import hashlib
import importlib.util
import os
import re
import sys
import time
import warnings
from pathlib import Path
from types import ModuleType
from typing import Optional

import torch

__all__ = [
    "load_ltc_extension",
    "load_cfc_extension",
    "load_wired_cfc_extension",
    "extension_disabled_by_env",
    "LTC_SOURCE",
    "CFC_SOURCE",
    "WIRED_CFC_SOURCE",
]

LTC_SOURCE = Path(__file__).with_name("ltc.cpp")
CFC_SOURCE = Path(__file__).with_name("cfc.cpp")
WIRED_CFC_SOURCE = Path(__file__).with_name("wired_cfc.cpp")

# A lock file older than this is taken to be left behind by a killed build.
_STALE_LOCK_SECONDS = 600.0

_cached: dict = {}  # source path -> the module or None (unavailable); absent: not tried


def extension_disabled_by_env() -> bool:
    """Whether ``NCP_POLICIES_NO_EXT`` asks for the pure-torch kernels (``1``, ``true``, ``yes``)."""
    return os.environ.get("NCP_POLICIES_NO_EXT", "").strip().lower() in ("1", "true", "yes", "on")


def _cflags() -> list[str]:
    # No errno / FP-trap semantics: lets the compiler vectorise the sigmoid loops.
    flags = ["-O3", "-fno-math-errno", "-fno-trapping-math"]
    capability = torch.backends.cpu.get_cpu_capability()
    if capability in ("AVX2", "AVX512"):
        flags += ["-mavx2", "-mfma"]
    return flags


def _library_name(source: Path, cflags: list[str]) -> str:
    digest = hashlib.sha256()
    digest.update(source.read_bytes())
    for header in _local_includes(source):
        digest.update(header.read_bytes())
    digest.update(" ".join(cflags).encode())
    digest.update(torch.__version__.encode())
    digest.update(torch.backends.cpu.get_cpu_capability().encode())
    return f"ncp_policies_{source.stem}_{digest.hexdigest()[:12]}"


def _local_includes(source: Path) -> list[Path]:
    """The headers of this folder that ``source`` includes with ``#include "name"`` (one level)."""
    names = re.findall(r'^\s*#\s*include\s+"([^"]+)"', source.read_text(), flags=re.MULTILINE)
    return [source.with_name(name) for name in names]


def _import_built(name: str, build_dir: Path) -> Optional[ModuleType]:
    """Import an already-built library without running ninja; None if there is none (yet)."""
    if (build_dir / "lock").exists():
        return None  # another process is building it right now: go through torch's lock
    for suffix in (".so", ".pyd"):  # what torch.utils.cpp_extension.load names the library
        path = build_dir / f"{name}{suffix}"
        if path.is_file():
            spec = importlib.util.spec_from_file_location(name, path)
            if spec is None or spec.loader is None:
                return None
            module = importlib.util.module_from_spec(spec)
            spec.loader.exec_module(module)
            sys.modules[name] = module
            return module
    return None


def _build(source: Path, verbose: bool) -> ModuleType:
    from torch.utils import cpp_extension

    cflags = _cflags()
    name = _library_name(source, cflags)
    build_dir = Path(cpp_extension._get_build_directory(name, verbose))
    try:
        module = _import_built(name, build_dir)
    except ImportError:
        module = None  # a broken or partial file: let ninja rebuild it
    if module is not None:
        return module
    lock = build_dir / "lock"
    if lock.exists() and time.time() - lock.stat().st_mtime > _STALE_LOCK_SECONDS:
        raise RuntimeError(
            f"the build lock {lock} is older than {_STALE_LOCK_SECONDS:.0f} s; a previous build was "
            "probably killed. Delete that file to rebuild."
        )
    return cpp_extension.load(
        name=name,
        sources=[str(source)],
        extra_cflags=cflags,
        build_directory=str(build_dir),
        verbose=verbose,
    )


#: The dtypes every compiled kernel takes.
KERNEL_DTYPES = (torch.float32, torch.float64)


def kernel_applies(like: torch.Tensor) -> bool:
    """Whether the compiled kernels can run on tensors like ``like``: on the CPU, float32 or float64.

    :param like: a tensor of the computation (gives device and dtype).
    """
    return like.device.type == "cpu" and like.dtype in KERNEL_DTYPES


def load_ltc_extension(verbose: bool = False) -> Optional[ModuleType]:
    """The compiled LTC kernels, building them on first use; None when disabled or unavailable.

    The result (success or failure) is cached for the process; a failure warns once.

    :param verbose: print the compiler's output while building.
    :return: the extension module (functions ``unfold_forward``, ``unfold_backward``,
        ``step_inference``), or None.
    """
    return _load(LTC_SOURCE, "LTC", verbose)


def load_cfc_extension(verbose: bool = False) -> Optional[ModuleType]:
    """The compiled dense-CfC kernels (``forward``, ``backward``), as :func:`load_ltc_extension`.

    :param verbose: print the compiler's output while building.
    :return: the extension module, or None.
    """
    return _load(CFC_SOURCE, "CfC", verbose)


def load_wired_cfc_extension(verbose: bool = False) -> Optional[ModuleType]:
    """The compiled wired-CfC wavefront kernels (``forward``, ``backward``), as :func:`load_ltc_extension`.

    :param verbose: print the compiler's output while building.
    :return: the extension module, or None.
    """
    return _load(WIRED_CFC_SOURCE, "wired CfC", verbose)


def _load(source: Path, label: str, verbose: bool) -> Optional[ModuleType]:
    if source in _cached:
        return _cached[source]
    if extension_disabled_by_env():
        _cached[source] = None
        return None
    try:
        _cached[source] = _build(source, verbose)
    except Exception as error:  # noqa: BLE001 -- any build problem means: use the torch path
        warnings.warn(
            f"ncp_policies: could not build the C++ {label} kernel ({type(error).__name__}: {error}); "
            f"using the slower pure-torch kernel. Needs a C++ compiler (g++) and ninja; set "
            "NCP_POLICIES_NO_EXT=1 to silence this.",
            RuntimeWarning,
            stacklevel=4,
        )
        _cached[source] = None
    return _cached[source]
