"""Small helpers shared by the test modules of the cell and of the data stages (no fixtures,
no NEURON state)."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import numpy as np

REPO = Path(__file__).resolve().parents[1]
NO_INPUT = (np.zeros(0, dtype=np.int64), np.zeros(0))


def run_python(code: str, timeout_s: float = 600) -> dict:
    """Run `code` in a fresh Python (one mechanism library per process); it prints JSON last."""
    proc = subprocess.run([sys.executable, "-c", code], cwd=REPO, capture_output=True,
                          text=True, timeout=timeout_s)
    if proc.returncode != 0:
        raise AssertionError(f"subprocess failed ({proc.returncode}):\n{proc.stderr[-3000:]}")
    return json.loads(proc.stdout.strip().splitlines()[-1])


def neurosurrogate(*args: object, timeout_s: float = 600) -> subprocess.CompletedProcess:
    """Run the installed `neurosurrogate` command as a user would, capturing its output."""
    command = Path(sys.executable).with_name("neurosurrogate")
    return subprocess.run([str(command), *map(str, args)], cwd=REPO, capture_output=True,
                          text=True, timeout=timeout_s)
