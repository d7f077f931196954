"""The predictions file of an evaluation (PREDICTIONS, docs/data-format.md): one row per
kept simulation, from skip_ms on, of each field of `Predictions`, with the time grid as the
attributes start_ms and dt_ms. evaluate writes it here; the report reads it by these names.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np


@dataclass
class Predictions:
    """Kept simulations, kept bins only (from skip_ms on), aligned with the ground truth."""

    sim_id: np.ndarray  # int64 [n]
    spike_prob: np.ndarray  # float32 [n, T]
    soma_mv: np.ndarray  # float32 [n, T], raw and unclipped
    true_spikes: np.ndarray  # uint8 [n, T]
    true_soma_mv: np.ndarray  # float32 [n, T]


PREDICTION_DATASETS = tuple(Predictions.__dataclass_fields__)  # sim_id, then the traces


def write_predictions(path: Path, pred: Predictions, start_ms: int) -> None:
    """The file at `path`, traces compressed one simulation per chunk; bins are 1 ms."""
    import h5py

    chunks = (1, pred.spike_prob.shape[1]) if len(pred.sim_id) else None
    packed: dict[str, Any] = {"compression": "gzip", "compression_opts": 4, "shuffle": True,
                              "chunks": chunks}
    with h5py.File(path, "w") as h5:
        h5.attrs["start_ms"] = start_ms
        h5.attrs["dt_ms"] = 1
        h5.create_dataset("sim_id", data=pred.sim_id)
        for name in PREDICTION_DATASETS[1:]:
            h5.create_dataset(name, data=getattr(pred, name), **packed)
