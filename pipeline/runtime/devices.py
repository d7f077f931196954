"""Which torch device a stage runs on: the GPU when present, the CPU otherwise."""

from __future__ import annotations

import torch

from pipeline.errors import UserError

DEVICE_CHOICES = ("auto", "cpu", "cuda")


def pick_device(name: str = "auto") -> torch.device:
    """`auto` takes CUDA when a GPU is visible; asking for `cuda` without one is an error."""
    if name not in DEVICE_CHOICES:
        raise UserError("--device", f"must be one of {', '.join(DEVICE_CHOICES)}, got {name!r}")
    if name == "auto":
        name = "cuda" if torch.cuda.is_available() else "cpu"
    if name == "cuda" and not torch.cuda.is_available():
        raise UserError("--device", "cuda was asked for but no CUDA GPU is visible")
    return torch.device(name)
