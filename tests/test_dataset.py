"""The data contract: shard round trip, validation, atomic writes, binning conventions."""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path

import h5py
import numpy as np
import pytest

from pipeline.datasets.contract import SCHEMA_VERSION, concat, input_bins, output_bins
from pipeline.datasets.shards import ShardReader, read_shard, write_shard
from pipeline.errors import UserError
from pipeline.runtime.files import atomic_path
from tests.synthetic import synthetic_batch


@pytest.fixture
def batch():
    return synthetic_batch([5, 9, 2], num_segments=8, duration_ms=700, seed=3, dendrites=True)


def test_shard_round_trip_and_layout(batch, tmp_path: Path) -> None:
    path = tmp_path / "s.h5"
    write_shard(path, batch)
    with h5py.File(path) as h5:
        assert dict(h5.attrs) == {"schema_version": SCHEMA_VERSION, "num_exc": 8, "num_inh": 8,
                                  "duration_ms": 700, "source": "simulated",
                                  "cell": "synthetic"}
        assert h5["soma_voltage_mv"].dtype == np.float32
        assert h5["dendritic_voltage_mv"].dtype == np.float16
        assert h5["dendritic_voltage_mv"].shape == (3, 8, 700)
        for name in ("sim", "synapse", "time_ms"):
            assert h5[f"input_spikes/{name}"].dtype == np.int32
        assert h5["output_spikes/time_ms"].dtype == np.float32
        assert set(h5["segments"]) == {"type", "length_um", "distance_um", "section", "branch"}
    got = read_shard(path)
    for name in ("sim_id", "soma_voltage_mv", "input_sim", "input_synapse", "input_time_ms",
                 "output_sim", "output_time_ms", "nexus_voltage_mv", "dendritic_voltage_mv"):
        np.testing.assert_array_equal(getattr(got, name), getattr(batch, name), err_msg=name)
    part = read_shard(path, rows=[0, 2])
    expected = batch.select([0, 2])
    for name in ("sim_id", "input_sim", "input_synapse", "input_time_ms", "output_time_ms"):
        np.testing.assert_array_equal(getattr(part, name), getattr(expected, name))


def test_reader_reads_windows_without_the_whole_shard(batch, tmp_path: Path) -> None:
    path = tmp_path / "s.h5"
    write_shard(path, batch)
    with ShardReader(path) as reader:
        synapse, time = reader.input_spikes(1, 100, 250)
        want_syn, want_time = batch.input_spikes_of(1)
        keep = (want_time >= 100) & (want_time < 250)
        np.testing.assert_array_equal(time, want_time[keep])
        np.testing.assert_array_equal(synapse, want_syn[keep])
        np.testing.assert_array_equal(reader.soma_voltage(2, 100, 250),
                                      batch.soma_voltage_mv[2, 100:250])


def test_concat_renumbers_rows(batch) -> None:
    both = concat([batch.select([2]), batch.select([0, 1])])
    assert both.sim_id.tolist() == [2, 5, 9]
    np.testing.assert_array_equal(both.input_spikes_of(0)[1], batch.input_spikes_of(2)[1])
    np.testing.assert_array_equal(both.output_spikes_of(2), batch.output_spikes_of(1))
    both.validate("concat")


@pytest.mark.parametrize("edit, message", [
    (lambda b: replace(b, sim_id=np.array([1, 1, 2])), "duplicate sim_id"),
    (lambda b: replace(b, soma_voltage_mv=b.soma_voltage_mv[:, :-1]), "soma_voltage_mv has"),
    (lambda b: replace(b, input_synapse=b.input_synapse + 100), "synapse index outside"),
    (lambda b: replace(b, input_time_ms=b.input_time_ms[::-1].copy()), "not sorted"),
    (lambda b: replace(b, output_time_ms=b.output_time_ms + 1e4), "time outside"),
    (lambda b: replace(b, info=replace(b.info, source="made up")), "source must be"),
])
def test_contract_violations_are_refused_and_nothing_is_written(batch, tmp_path: Path, edit,
                                                               message: str) -> None:
    path = tmp_path / "bad.h5"
    with pytest.raises(UserError, match=message):
        write_shard(path, edit(batch))
    assert list(tmp_path.iterdir()) == []


def test_atomic_path_leaves_nothing_on_failure(tmp_path: Path) -> None:
    target = tmp_path / "f.txt"
    target.write_text("old")
    with pytest.raises(RuntimeError), atomic_path(target) as tmp:
        tmp.write_text("half")
        raise RuntimeError("interrupted")
    assert target.read_text() == "old"
    assert [p.name for p in tmp_path.iterdir()] == ["f.txt"]


def test_binning_conventions() -> None:
    dense = input_bins(np.array([3, 0, 3]), np.array([100, 101, 149]), 100, 50, 4)
    assert dense.shape == (50, 4) and dense.sum() == 3
    assert dense[0, 3] == dense[1, 0] == dense[49, 3] == 1
    # NeuronIO: an output spike at t ms is bin int(t - 0.5)
    target = output_bins(np.array([100.4, 100.6, 149.9, 150.6, 99.0]), 100, 50)
    assert np.flatnonzero(target).tolist() == [0, 49]  # 100.4 -> 99 (outside), 100.6 -> 100
