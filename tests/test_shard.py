"""`neurosurrogate shard` end to end on a real local Dask cluster, and its bad inputs."""

from __future__ import annotations

import json
from pathlib import Path

import h5py
import numpy as np
import pytest

from pipeline.cli import main
from pipeline.datasets.dataset import Dataset, write_dataset
from pipeline.datasets.shards import read_shard
from tests.conftest import error_lines, tree_state
from tests.synthetic import synthetic_batch


@pytest.fixture
def source(tmp_path: Path) -> Path:
    """A data set of 20 simulations in 3 uneven shards, with dendritic voltages."""
    folder = tmp_path / "source"
    ids = np.arange(20) * 7 + 3
    write_dataset(folder, [synthetic_batch(part, num_segments=10, duration_ms=200, seed=2,
                                           dendrites=True)
                           for part in np.split(ids, [9, 13])], {"made_by": "test"})
    return folder


def _by_sim_id(folder: Path) -> dict[int, tuple]:
    out = {}
    for path in sorted(folder.glob("shard-*.h5")):
        batch = read_shard(path)
        for row, sid in enumerate(batch.sim_id.tolist()):
            synapse, time = batch.input_spikes_of(row)
            out[sid] = (batch.soma_voltage_mv[row], batch.nexus_voltage_mv[row],
                        batch.dendritic_voltage_mv[row], synapse, time,
                        batch.output_spikes_of(row))
    return out


def test_shard_on_two_worker_processes(source: Path, tmp_path: Path) -> None:
    out = tmp_path / "sharded"
    assert main(["shard", "--src", str(source), "--out", str(out), "--sims-per-shard", "4",
                 "--workers", "2"]) == 0
    parts = {name: Dataset(out / name) for name in ("train", "valid", "test")}
    ids = {name: d.manifest.sim_ids.tolist() for name, d in parts.items()}
    assert [len(v) for v in ids.values()] == [16, 2, 2]
    assert sorted(sum(ids.values(), [])) == Dataset(source).manifest.sim_ids.tolist()
    assert [len(s.sim_ids) for s in parts["train"].manifest.shards] == [4, 4, 4, 4]
    assert ids["train"] == sorted(ids["train"])  # shards are ordered by sim id
    want = _by_sim_id(source)
    for name, data in parts.items():
        data.verify()
        assert data.info == Dataset(source).info
        with h5py.File(data.shard_paths[0]) as h5:
            assert h5["soma_voltage_mv"].chunks == (1, 200)
            assert h5["soma_voltage_mv"].compression == "gzip"
        for sid, fields in _by_sim_id(out / name).items():
            for got, expected in zip(fields, want[sid], strict=True):
                np.testing.assert_array_equal(got, expected)
    # the same command again changes nothing
    before = tree_state(out)
    assert main(["shard", "--src", str(source), "--out", str(out), "--sims-per-shard", "4",
                 "--workers", "1"]) == 0
    assert tree_state(out) == before


def test_same_split_whatever_the_shard_size_or_workers(source: Path, tmp_path: Path) -> None:
    a, b = tmp_path / "a", tmp_path / "b"
    assert main(["shard", "--src", str(source), "--out", str(a), "--workers", "1"]) == 0
    assert main(["shard", "--src", str(source), "--out", str(b), "--sims-per-shard", "3",
                 "--workers", "2"]) == 0
    for name in ("train", "valid", "test"):
        assert (Dataset(a / name).manifest.sim_ids.tolist()
                == Dataset(b / name).manifest.sim_ids.tolist())


def test_empty_split_gives_an_empty_data_set(source: Path, tmp_path: Path) -> None:
    out = tmp_path / "out"
    assert main(["shard", "--src", str(source), "--out", str(out), "--split",
                 "train=0.9,valid=0.1", "--workers", "1"]) == 0
    assert Dataset(out / "test").num_sims == 0
    assert Dataset(out / "train").num_sims == 18


def _one_error(capsys) -> str:
    (line,) = error_lines(capsys.readouterr().err)
    return line


def test_colliding_sim_ids_are_refused(tmp_path: Path, capsys) -> None:
    src = tmp_path / "src"
    write_dataset(src, [synthetic_batch([1, 2], num_segments=4, duration_ms=50),
                        synthetic_batch([2, 3], num_segments=4, duration_ms=50)], {})
    out = tmp_path / "out"
    assert main(["shard", "--src", str(src), "--out", str(out), "--workers", "1"]) == 2
    assert "sim ids collide" in _one_error(capsys)
    assert not out.exists()


def test_split_not_summing_to_one_writes_nothing(source: Path, tmp_path: Path, capsys) -> None:
    out = tmp_path / "out"
    assert main(["shard", "--src", str(source), "--out", str(out), "--split",
                 "train=0.7,valid=0.1,test=0.1"]) == 2
    assert "sum to 0.9" in _one_error(capsys)
    assert not out.exists()


@pytest.mark.parametrize("damage, problem", [
    (lambda p: p.write_bytes(b"not hdf5 at all"), "not a readable HDF5 file"),
    (lambda p: h5py.File(p, "w").close(), "not a neurosurrogate shard"),
    (lambda p: h5py.File(p, "a").attrs.__setitem__("schema_version", 99),
     "schema_version 99 is not supported"),
    (lambda p: p.unlink(), "no such shard file"),
])
def test_bad_source_shards(source: Path, tmp_path: Path, capsys, damage, problem) -> None:
    victim = source / "shard-00001.h5"
    damage(victim)
    out = tmp_path / "out"
    assert main(["shard", "--src", str(source), "--out", str(out), "--workers", "1"]) == 2
    line = _one_error(capsys)
    assert str(victim) in line and problem in line


def test_incomplete_or_missing_data_sets_are_refused(source: Path, tmp_path: Path,
                                                     capsys) -> None:
    manifest = json.loads((source / "manifest.json").read_text())
    manifest["complete"] = False
    (source / "manifest.json").write_text(json.dumps(manifest))
    assert main(["shard", "--src", str(source), "--out", str(tmp_path / "o")]) == 2
    assert "incomplete" in _one_error(capsys)
    assert main(["shard", "--src", str(tmp_path / "nowhere"), "--out", str(tmp_path / "o")]) == 2
    assert "no manifest" in _one_error(capsys)


def test_output_holding_another_split_is_refused_untouched(source: Path, tmp_path: Path,
                                                           capsys) -> None:
    out = tmp_path / "out"
    assert main(["shard", "--src", str(source), "--out", str(out), "--workers", "1"]) == 0
    before = tree_state(out)
    capsys.readouterr()
    assert main(["shard", "--src", str(source), "--out", str(out), "--seed", "5",
                 "--workers", "1"]) == 2
    line = _one_error(capsys)
    assert "already holds a different data set" in line and "seed" in line
    assert tree_state(out) == before
