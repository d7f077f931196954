"""Which torch device a stage runs on: the GPU when present, the CPU otherwise.

DEVICE_CHOICES is what every `--device` flag and params.yaml's `device` keys accept; torch
is imported only when a device is picked, so that stages can offer the flag at `--help`
without it."""

from __future__ import annotations

from typing import TYPE_CHECKING

from pipeline.errors import UserError

if TYPE_CHECKING:
    import torch

DEVICE_CHOICES = ("auto", "cpu", "cuda")


def pick_device(name: str = "auto") -> torch.device:
    """`auto` takes CUDA when a GPU is visible; asking for `cuda` without one is an error."""
    import torch

    if name not in DEVICE_CHOICES:
        raise UserError("--device", f"must be one of {', '.join(DEVICE_CHOICES)}, got {name!r}")
    if name == "auto":
        name = "cuda" if torch.cuda.is_available() else "cpu"
    if name == "cuda" and not torch.cuda.is_available():
        raise UserError("--device", "cuda was asked for but no CUDA GPU is visible")
    return torch.device(name)
