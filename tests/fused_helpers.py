"""What the fused-path tests share: the interpreter set-up and the launcher spy.

Importing this module sets TRITON_INTERPRET=1 when no CUDA device is present; it must come
before anything imports triton (`surrogates` imports it lazily, on first fused call), so the
test modules import it first.
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from types import ModuleType

import pytest
import torch

if not torch.cuda.is_available():
    os.environ.setdefault("TRITON_INTERPRET", "1")

from surrogates import triton_scan  # noqa: E402

DEVICE = torch.device("cuda" if torch.cuda.is_available() else "cpu")
TOL = {"rtol": 1e-5, "atol": 1e-5}
needs_triton = pytest.mark.skipif(not triton_scan.available(), reason="triton is not installed")


def spy_fused(monkeypatch: pytest.MonkeyPatch, module: ModuleType,
              names: tuple[str, ...]) -> Iterator[list[str]]:
    """For a fixture: MODE "triton" (CPU tensors included, through the interpreter), and
    module's launchers `names` wrapped so that the list yielded collects the names of those
    called; the kernel table is rebuilt around it so that it picks the wrappers up."""
    monkeypatch.setattr(triton_scan, "MODE", "triton")
    launched: list[str] = []
    for name in names:
        original = getattr(module, name)

        def spy(*args: object, _original=original, _name=name, **kwargs: object) -> object:
            launched.append(_name)
            return _original(*args, **kwargs)

        monkeypatch.setattr(module, name, spy)
    triton_scan._kernels.cache_clear()
    yield launched
    triton_scan._kernels.cache_clear()
