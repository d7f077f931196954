"""Whole-simulation prediction with overlapping windows, as the published protocol does.

A model trained on windows starts each window from a zero state, so its first steps are
unreliable. Long simulations are therefore cut into windows of `window_ms` with stride
`window_ms - burn_in_ms`; each window after the first discards its first `burn_in_ms`
bins, which the previous window already predicted with enough history. The first window
keeps everything from 0 (nothing earlier exists). As in both published evaluators, there are
int(2 + (T - W) / (W - B)) windows on that stride, the last one zero-padded past the end
(a causal model's outputs before the end do not see the padding), so every window has the
same length and windows batch together.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

from pipeline.protocol import BURN_IN_MS, WINDOW_MS

if TYPE_CHECKING:  # torch is imported where it runs: the CLI reads the defaults for --help
    import torch
    from torch import nn



@dataclass(frozen=True)
class Span:
    """One window: input bins [start, start + length) predict output bins [keep_from,
    keep_to), which no other window provides."""

    start: int
    keep_from: int
    keep_to: int


def window_plan(duration_ms: int, window_ms: int = WINDOW_MS,
                burn_in_ms: int = BURN_IN_MS) -> list[Span]:
    """The windows covering [0, duration_ms): kept ranges are contiguous and disjoint."""
    if not 0 <= burn_in_ms < window_ms:
        raise ValueError(f"need 0 <= burn_in_ms < window_ms, got {burn_in_ms} and {window_ms}")
    if duration_ms < 1:
        raise ValueError(f"duration_ms must be positive, got {duration_ms}")
    if window_ms >= duration_ms:
        return [Span(0, 0, duration_ms)]
    stride = window_ms - burn_in_ms
    spans = [Span(0, 0, window_ms)]
    for k in range(1, int(2 + (duration_ms - window_ms) / stride)):
        start = k * stride
        keep_from, keep_to = start + burn_in_ms, min(start + window_ms, duration_ms)
        if keep_from < keep_to:  # the published count can end on an empty window
            spans.append(Span(start, keep_from, keep_to))
    return spans


def _device_of(model: nn.Module, fallback: torch.device) -> torch.device:
    param = next(model.parameters(), None)
    return fallback if param is None else param.device


def predict_windows(model: nn.Module, x: torch.Tensor, window_ms: int = WINDOW_MS,
                    burn_in_ms: int = BURN_IN_MS, windows_per_pass: int = 32
                    ) -> torch.Tensor:
    """Model output [batch, T, 2] for inputs [batch, T, inputs] (any dtype, e.g. uint8).

    Every output bin comes from the one window that keeps it. At most `windows_per_pass`
    windows are cast to float and run at once, which bounds memory whatever the batch; the
    result lies on the model's device.
    """
    import torch

    if x.ndim != 3:
        raise ValueError(f"inputs must be [batch, time, inputs], got {list(x.shape)}")
    if windows_per_pass < 1:
        raise ValueError(f"windows_per_pass must be at least 1, got {windows_per_pass}")
    batch, duration, _ = x.shape
    plan = window_plan(duration, window_ms, burn_in_ms)
    length = min(window_ms, duration)
    device = _device_of(model, x.device)
    out: torch.Tensor | None = None
    jobs = [(b, span) for b in range(batch) for span in plan]
    with torch.inference_mode():
        for first in range(0, len(jobs), windows_per_pass):
            chunk = jobs[first:first + windows_per_pass]
            windows = torch.zeros(len(chunk), length, x.shape[2], dtype=x.dtype,
                                  device=x.device)
            for j, (b, s) in enumerate(chunk):  # the last window is zero-padded at the end
                part = x[b, s.start:s.start + length]
                windows[j, :len(part)] = part
            y = model(windows.to(device=device, dtype=torch.float32))
            if out is None:
                out = torch.empty(batch, duration, y.shape[-1], dtype=y.dtype, device=y.device)
            for j, (b, s) in enumerate(chunk):
                out[b, s.keep_from:s.keep_to] = y[j, s.keep_from - s.start:s.keep_to - s.start]
    if out is None:  # an empty batch
        return torch.empty(0, duration, 2, device=device)
    return out
