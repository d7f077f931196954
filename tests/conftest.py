"""Shared fixtures: NeuronIO files in the published form and small data sets."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from pipeline.datasets.contract import SimBatch
from pipeline.datasets.neuronio import batch_to_neuronio, dump_neuronio
from tests.synthetic import synthetic_batch

NUM_SEGMENTS = 12
DURATION_MS = 300


def make_neuronio_file(path: Path, seed: int, num_sims: int = 3, dendrites: bool = True,
                       duration_ms: int = DURATION_MS) -> SimBatch:
    """Write a NeuronIO file; return the batch it holds (values as float16, as published)."""
    batch = synthetic_batch(np.arange(num_sims) + 1000 * seed, num_segments=NUM_SEGMENTS,
                            duration_ms=duration_ms, seed=seed, rate_hz=20.0,
                            dendrites=dendrites)
    dump_neuronio(batch_to_neuronio(batch, random_seed=seed), path)
    return batch


@pytest.fixture
def neuronio_dir(tmp_path: Path) -> tuple[Path, dict[int, SimBatch]]:
    """Two NeuronIO files (seeds 3 and 4) in a nested folder, as the published data sets."""
    src = tmp_path / "neuronio"
    (src / "batch_1").mkdir(parents=True)
    (src / "batch_2").mkdir()
    batches = {
        3: make_neuronio_file(
            src / "batch_1" / "sim__3_simulationRuns__0_secDuration__randomSeed_3.p", 3),
        4: make_neuronio_file(
            src / "batch_2" / "sim__3_simulationRuns__0_secDuration__randomSeed_4.p", 4),
    }
    return src, batches


def error_lines(stderr: str) -> list[str]:
    return [line for line in stderr.splitlines() if ": error: " in line]


def tree_state(folder: Path) -> dict[str, bytes]:
    """Every file under `folder` with its content, to prove nothing was changed."""
    return {str(p.relative_to(folder)): p.read_bytes()
            for p in sorted(folder.rglob("*")) if p.is_file()}
