"""Loads the C++ loops of `csrc/elm_scan.cpp`, building them on first use.

The extension is compiled once by `torch.utils.cpp_extension.load` (needs a C++ compiler and
the `ninja` package) into TORCH_EXTENSIONS_DIR, which defaults here to
~/.cache/neurosurrogate/torch_extensions; torch rebuilds it when the source or the compiler
flags change. When it cannot be built, `extension()` returns None after one warning line
and callers keep their TorchScript loops. NEUROSURROGATE_NO_CPP=1 disables it (for tests of
the fallback). Float32 inference of small models (hidden <= 64, memory <= 32) takes a
specialised AVX2 kernel where the CPU has one; `FAST_INFER = False` (or
NEUROSURROGATE_NO_FAST_INFER=1) keeps the generic loop, for tests that compare the two.
"""

from __future__ import annotations

import functools
import logging
import os
from pathlib import Path
from types import ModuleType

import torch

SOURCE = Path(__file__).with_name("csrc") / "elm_scan.cpp"
log = logging.getLogger(__name__)
FAST_INFER = os.environ.get("NEUROSURROGATE_NO_FAST_INFER", "") in ("", "0")


@functools.cache
def extension() -> ModuleType | None:
    """The compiled module (scan_forward, scan_backward, exp_filter, infer, project), or
    None."""
    if os.environ.get("NEUROSURROGATE_NO_CPP", "") not in ("", "0"):
        return None
    os.environ.setdefault("TORCH_EXTENSIONS_DIR",
                          str(Path.home() / ".cache" / "neurosurrogate" / "torch_extensions"))
    try:
        from torch.utils import cpp_extension

        return cpp_extension.load(name="neurosurrogate_elm_scan", sources=[str(SOURCE)],
                                  extra_cflags=["-O3"], verbose=False)
    except Exception as err:  # no compiler, no ninja, a build error: fall back
        first = str(err).strip().splitlines()[0] if str(err).strip() else ""
        log.warning("ELM C++ loops unavailable, using TorchScript (%s: %s)",
                    type(err).__name__, first[:200])
        return None


def usable(*tensors: torch.Tensor) -> ModuleType | None:
    """The extension when every tensor is a float32/float64 CPU tensor, else None."""
    if not all(t.device.type == "cpu" and t.dtype in (torch.float32, torch.float64)
               for t in tensors):
        return None
    return extension()


def inference_kernel(hidden: int, memory: int, dtype: torch.dtype = torch.float32) -> str:
    """Which loop runs an ELM's CPU inference (no autograd, uniform tau_s) for these widths:
    'avx2' (the specialised kernel), 'cpp' (the generic C++ loop) or 'torchscript'."""
    ext = extension() if dtype in (torch.float32, torch.float64) else None
    if ext is None:
        return "torchscript"
    if FAST_INFER and dtype == torch.float32 and ext.fast_infer_available(hidden, memory):
        return "avx2"
    return "cpp"


class _SparseProject(torch.autograd.Function):
    @staticmethod
    def forward(ctx, x: torch.Tensor, w: torch.Tensor, ext: ModuleType) -> torch.Tensor:
        out, offsets, cols, vals = ext.project(x, w)
        ctx.save_for_backward(offsets, cols, vals)
        ctx.ext, ctx.num_inputs = ext, w.shape[0]
        return out

    @staticmethod
    def backward(ctx, grad: torch.Tensor) -> tuple[None, torch.Tensor | None, None]:
        if not ctx.needs_input_grad[1]:
            return None, None, None
        offsets, cols, vals = ctx.saved_tensors
        return None, ctx.ext.project_grad(offsets, cols, vals, grad.contiguous(),
                                          ctx.num_inputs), None


def project(x: torch.Tensor, w: torch.Tensor) -> torch.Tensor:
    """x [..., N] @ w [N, H], visiting only the nonzero entries of x (spike inputs are ~1 %
    active) when the C++ loops are built and x needs no gradient; a dense matmul otherwise."""
    ext = usable(x, w)
    if ext is None or x.requires_grad or x.dtype != w.dtype:
        return x @ w
    flat = x.reshape(-1, x.shape[-1]).contiguous()
    return _SparseProject.apply(flat, w.contiguous(), ext).view(*x.shape[:-1], w.shape[1])
