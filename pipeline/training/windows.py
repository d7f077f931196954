"""Random training windows from a data set, read lazily from the shards.

Window i is a pure function of (seed, i): which simulation, where it starts. The dataset is
map-style, so a DataLoader yields the same batches whatever its number of workers, and a
resumed training run can continue at any step. Shards are opened lazily in each loader
process (h5py handles cannot cross processes) and only the window's rows are read.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
from torch.utils.data import Dataset as TorchDataset

from pipeline.config.training import MIN_START_MS
from pipeline.datasets.contract import input_bins, output_bins
from pipeline.datasets.dataset import Dataset
from pipeline.datasets.shards import ShardReader
from pipeline.errors import UserError
from pipeline.protocol import WINDOW_MS


@dataclass(frozen=True)
class Window:
    shard: int
    row: int
    start_ms: int


class WindowDataset(TorchDataset):
    """Yields dicts: `inputs` float32 [T, num_exc + num_inh] (binary, excitatory first),
    `spikes` float32 [T] (output spike bins), `soma_mv` float32 [T] (raw, unclipped),
    `sim_id` and `start_ms`."""

    def __init__(self, folder: Path, window_ms: int = WINDOW_MS,
                 min_start_ms: int = MIN_START_MS, num_windows: int = 10_000,
                 seed: int = 0):
        self.data = Dataset(folder)
        self.info = self.data.info
        self.window_ms, self.num_windows, self.seed = int(window_ms), int(num_windows), seed
        duration = self.info.duration_ms
        if self.data.num_sims == 0:
            raise UserError(folder, "data set holds no simulations")
        if not 0 < self.window_ms <= duration:
            raise UserError(folder, f"window of {window_ms} ms does not fit simulations of "
                                    f"{duration} ms")
        # Start at >= min_start_ms where the duration allows, else as late as possible.
        self.min_start_ms = max(0, min(int(min_start_ms), duration - self.window_ms))
        self._sims = [(k, row) for k, entry in enumerate(self.data.manifest.shards)
                      for row in range(len(entry.sim_ids))]
        self._readers: dict[int, ShardReader] = {}
        self._pid = os.getpid()

    def __len__(self) -> int:
        return self.num_windows

    def window(self, index: int) -> Window:
        rng = np.random.default_rng([self.seed, index])
        shard, row = self._sims[int(rng.integers(len(self._sims)))]
        last_start = self.info.duration_ms - self.window_ms
        return Window(shard, row, int(rng.integers(self.min_start_ms, last_start + 1)))

    def _reader(self, shard: int) -> ShardReader:
        if self._pid != os.getpid():  # a forked loader worker must not reuse our handles
            self._readers, self._pid = {}, os.getpid()
        if shard not in self._readers:
            self._readers[shard] = ShardReader(self.data.shard_paths[shard])
        return self._readers[shard]

    def read(self, win: Window) -> dict[str, torch.Tensor]:
        reader = self._reader(win.shard)
        stop = win.start_ms + self.window_ms
        synapse, time_ms = reader.input_spikes(win.row, win.start_ms, stop)
        return {
            "inputs": torch.from_numpy(input_bins(synapse, time_ms, win.start_ms, self.window_ms,
                                                  self.info.num_inputs)),
            "spikes": torch.from_numpy(output_bins(reader.output_spikes(win.row), win.start_ms,
                                                   self.window_ms)),
            "soma_mv": torch.from_numpy(reader.soma_voltage(win.row, win.start_ms, stop)),
            "sim_id": torch.tensor(int(reader.sim_id[win.row])),
            "start_ms": torch.tensor(win.start_ms),
        }

    def __getitem__(self, index: int) -> dict[str, torch.Tensor]:
        if not 0 <= index < self.num_windows:
            raise IndexError(index)
        return self.read(self.window(index))

    def __getstate__(self) -> dict:
        state = self.__dict__.copy()
        state["_readers"] = {}
        return state


def window_loader(dataset: WindowDataset, batch_size: int = 8, num_workers: int = 0,
                  start_batch: int = 0) -> torch.utils.data.DataLoader:
    """Batches in index order from `start_batch` on, identical for any number of workers."""
    indices = range(start_batch * batch_size, len(dataset))
    return torch.utils.data.DataLoader(
        torch.utils.data.Subset(dataset, indices), batch_size=batch_size, shuffle=False,
        num_workers=num_workers, persistent_workers=num_workers > 0,
        multiprocessing_context="spawn" if num_workers > 0 else None)
