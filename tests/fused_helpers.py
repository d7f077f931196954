"""What the fused-path tests share: the interpreter set-up and the launcher spy.

Importing this module sets TRITON_INTERPRET=1 when no CUDA device is present; it must come
before anything imports triton (`surrogates` imports it lazily, on first fused call), so the
test modules import it first.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Iterator
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


def assert_model_equals_definition(model: torch.nn.Module, definition: Callable[..., torch.Tensor],
                                   x_shape: tuple[int, int, int], noise: float,
                                   fused: list[str]) -> list[str]:
    """Move the model's parameters by `noise` x N(0, 1) off their initialisation, run it on
    random spikes of `x_shape` forward and backward through the fused loops and through
    `definition(model.tensors(), x)`, the step-by-step reference, and hold the outputs and
    every gradient to TOL. Returns the launchers the fused pass called."""
    with torch.no_grad():
        for p in model.parameters():
            p.add_(noise * torch.randn_like(p))
    x = (torch.rand(*x_shape) < 0.3).float().to(DEVICE)
    weight = torch.randn(*x_shape[:2], 2).to(DEVICE)
    (model(x) * weight).sum().backward()
    fast = {n: p.grad.clone() for n, p in model.named_parameters()}
    launched = list(fused)
    model.zero_grad()
    ref = definition(model.tensors(), x)
    (ref * weight).sum().backward()
    with torch.no_grad():
        torch.testing.assert_close(model(x), ref, **TOL)
    for name, p in model.named_parameters():
        torch.testing.assert_close(fast[name], p.grad, **TOL, msg=name)
    return launched
