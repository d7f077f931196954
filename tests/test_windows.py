"""The window loader: correct content, seeded, identical for any number of workers."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch

from pipeline.datasets.contract import input_bins, output_bins
from pipeline.datasets.dataset import write_dataset
from pipeline.datasets.shards import read_shard
from pipeline.errors import UserError
from pipeline.training.windows import WindowDataset, window_loader
from tests.synthetic import synthetic_batch


@pytest.fixture(scope="module")
def folder(tmp_path_factory) -> Path:
    root = tmp_path_factory.mktemp("windows") / "data"
    write_dataset(root, [synthetic_batch(ids, num_segments=6, duration_ms=1500, seed=4)
                         for ids in ([10, 11, 12], [20, 21])], {"made_by": "test"})
    return root


def test_windows_match_the_stored_simulations(folder: Path) -> None:
    data = WindowDataset(folder, window_ms=400, min_start_ms=500, num_windows=40, seed=3)
    shards = {p.name: read_shard(p) for p in data.data.shard_paths}
    for i in range(len(data)):
        item = data[i]
        start = int(item["start_ms"])
        assert 500 <= start <= 1100
        shard = next(b for b in shards.values() if int(item["sim_id"]) in b.sim_id.tolist())
        row = shard.sim_id.tolist().index(int(item["sim_id"]))
        synapse, time = shard.input_spikes_of(row)
        keep = (time >= start) & (time < start + 400)
        assert item["inputs"].dtype == torch.float32 and item["inputs"].shape == (400, 12)
        np.testing.assert_array_equal(item["inputs"].numpy(),
                                      input_bins(synapse[keep], time[keep], start, 400, 12))
        np.testing.assert_array_equal(item["spikes"].numpy(),
                                      output_bins(shard.output_spikes_of(row), start, 400))
        np.testing.assert_array_equal(item["soma_mv"].numpy(),
                                      shard.soma_voltage_mv[row, start:start + 400])
    sims = {int(data[i]["sim_id"]) for i in range(len(data))}
    assert sims == {10, 11, 12, 20, 21}


def test_same_seed_same_batches_for_any_number_of_workers(folder: Path) -> None:
    data = WindowDataset(folder, window_ms=300, num_windows=24, seed=7)
    serial = list(window_loader(data, batch_size=4, num_workers=0))
    parallel = list(window_loader(data, batch_size=4, num_workers=2))
    assert len(serial) == len(parallel) == 6
    for a, b in zip(serial, parallel, strict=True):
        for key in a:
            assert torch.equal(a[key], b[key])
    resumed = list(window_loader(data, batch_size=4, num_workers=0, start_batch=4))
    assert torch.equal(resumed[0]["inputs"], serial[4]["inputs"])
    other = WindowDataset(folder, window_ms=300, num_windows=24, seed=8)
    assert not torch.equal(other[0]["start_ms"], data[0]["start_ms"]) or \
        not torch.equal(other[0]["sim_id"], data[0]["sim_id"])


def test_short_simulations_start_as_late_as_they_can(folder: Path) -> None:
    data = WindowDataset(folder, window_ms=1200, min_start_ms=500, num_windows=20)
    assert {int(data[i]["start_ms"]) for i in range(20)} <= set(range(0, 301))


def test_window_longer_than_simulation_is_refused(folder: Path) -> None:
    with pytest.raises(UserError, match="does not fit"):
        WindowDataset(folder, window_ms=2000)
