"""`neurosurrogate ingest` end to end on a real local Dask cluster."""

from __future__ import annotations

import json
import os
import pickle
from pathlib import Path

import numpy as np
import pytest

from pipeline.cli import main
from pipeline.datasets.dataset import Dataset
from pipeline.datasets.neuronio import SIM_ID_STRIDE, load_neuronio
from pipeline.datasets.shards import read_shard
from pipeline.errors import UserError
from pipeline.runtime.files import sha256_file
from tests.cell_helpers import neurosurrogate
from tests.conftest import error_lines, make_neuronio_file, tree_state


def test_ingest_on_two_worker_processes_round_trips_every_field(neuronio_dir, tmp_path,
                                                                 capsys) -> None:
    src, batches = neuronio_dir
    out = tmp_path / "ingested"
    assert main(["ingest", "--src", str(src), "--out", str(out), "--workers", "2"]) == 0
    assert "2 local worker process(es)" in capsys.readouterr().out
    data = Dataset(out)
    data.verify()
    manifest = json.loads((out / "manifest.json").read_text())
    assert manifest["complete"] is True
    assert [s["extra"]["source_file"] for s in manifest["shards"]] == [
        "sim__3_simulationRuns__0_secDuration__randomSeed_3.p",
        "sim__3_simulationRuns__0_secDuration__randomSeed_4.p"]
    assert [f["path"].split("/")[0] for f in manifest["settings"]["files"]] == ["batch_1",
                                                                              "batch_2"]
    for entry, seed in zip(data.manifest.shards, (3, 4), strict=True):
        assert entry.sha256 == sha256_file(out / entry.file)
        got, want = read_shard(out / entry.file), batches[seed]
        assert got.sim_id.tolist() == entry.sim_ids == [seed * SIM_ID_STRIDE + i
                                                        for i in range(3)]
        for name in ("input_sim", "input_synapse", "input_time_ms", "output_sim",
                     "dendritic_voltage_mv"):
            np.testing.assert_array_equal(getattr(got, name), getattr(want, name), err_msg=name)
        for name in ("soma_voltage_mv", "nexus_voltage_mv", "output_time_ms"):
            np.testing.assert_array_equal(
                getattr(got, name), getattr(want, name).astype(np.float16).astype(np.float32),
                err_msg=name)
        assert list(got.segments.type) == list(want.segments.type)
        np.testing.assert_array_equal(got.segments.distance_um, want.segments.distance_um)
        np.testing.assert_array_equal(got.segments.branch, want.segments.branch)
        assert got.info.source == "neuronio" and got.info.duration_ms == 300


def test_rerun_redoes_only_missing_or_damaged_shards(neuronio_dir, tmp_path) -> None:
    src, _ = neuronio_dir
    out = tmp_path / "ingested"
    args = ["ingest", "--src", str(src), "--out", str(out), "--workers", "1"]
    assert main(args) == 0
    first, second = out / "shard-00000.h5", out / "shard-00001.h5"
    digest = sha256_file(second)
    stamp = first.stat().st_mtime_ns
    second.unlink()
    assert main(args) == 0
    assert first.stat().st_mtime_ns == stamp  # untouched
    assert sha256_file(second) == digest  # regenerated identically
    second.write_bytes(b"damaged")
    assert main(args) == 0
    assert sha256_file(second) == digest
    Dataset(out).verify()


def test_a_different_data_set_in_the_output_folder_is_refused_untouched(neuronio_dir, tmp_path,
                                                                         capsys) -> None:
    src, _ = neuronio_dir
    out = tmp_path / "ingested"
    assert main(["ingest", "--src", str(src / "batch_1"), "--out", str(out),
                 "--workers", "1"]) == 0
    before = tree_state(out)
    capsys.readouterr()
    assert main(["ingest", "--src", str(src), "--out", str(out), "--workers", "1"]) == 2
    (line,) = error_lines(capsys.readouterr().err)
    assert str(out) in line and "already holds a different data set" in line
    assert tree_state(out) == before


def _malicious(path: Path, marker: Path) -> None:
    class Payload:
        def __reduce__(self):
            return (os.system, (f"touch {marker}",))
    path.write_bytes(pickle.dumps({"Params": {}, "Results": Payload()}, protocol=2))


@pytest.mark.parametrize("make_bad, problem", [
    (lambda p, m: None, "no such file"),
    (lambda p, m: p.write_bytes(p.with_name("good.p").read_bytes()[:2000]),
     "truncated or corrupt"),
    (lambda p, m: _malicious(p, m), "unsafe pickle: refused global"),
    (lambda p, m: p.write_bytes(pickle.dumps({"Params": {}, "Results": {}}, protocol=2)),
     "not a NeuronIO file"),
])
def test_bad_input_files_give_one_line_and_write_nothing(tmp_path, capsys, make_bad,
                                                         problem) -> None:
    src = tmp_path / "src"
    src.mkdir()
    make_neuronio_file(src / "good.p", seed=1)
    bad = src / "bad.p"
    marker = tmp_path / "payload_ran"
    make_bad(bad, marker)
    target = bad if bad.exists() else bad  # a missing file is named directly
    out = tmp_path / "out"
    code = main(["ingest", "--src", str(target), "--out", str(out), "--workers", "1"])
    assert code == 2
    (line,) = error_lines(capsys.readouterr().err)
    assert str(bad) in line and problem in line
    assert not list(out.glob("*.h5")) if out.exists() else True
    assert not marker.exists()


def test_a_bad_file_among_good_ones_fails_the_run_but_keeps_the_good_shards(tmp_path,
                                                                           capsys) -> None:
    src = tmp_path / "src"
    src.mkdir()
    make_neuronio_file(src / "a.p", seed=1)
    (src / "b.p").write_bytes(b"\x80\x02}q\x00")  # truncated
    out = tmp_path / "out"
    assert main(["ingest", "--src", str(src), "--out", str(out), "--workers", "1"]) == 2
    lines = error_lines(capsys.readouterr().err)
    assert len(lines) == 1 and "b.p" in lines[0]
    manifest = json.loads((out / "manifest.json").read_text())
    assert manifest["complete"] is False  # later stages refuse an incomplete data set
    assert [s["file"] for s in manifest["shards"]] == ["shard-00000.h5"]
    assert not (out / "shard-00001.h5").exists()


def test_duplicate_seeds_collide_and_are_refused(tmp_path, capsys) -> None:
    src = tmp_path / "src"
    src.mkdir()
    make_neuronio_file(src / "a.p", seed=7)
    make_neuronio_file(src / "b.p", seed=7)
    out = tmp_path / "out"
    assert main(["ingest", "--src", str(src), "--out", str(out), "--workers", "1"]) == 2
    (line,) = error_lines(capsys.readouterr().err)
    assert "shard-00001.h5" in line and "also in shard-00000.h5" in line


def test_ingest_on_an_existing_cluster(neuronio_dir, tmp_path) -> None:
    from dask.distributed import LocalCluster

    src, _ = neuronio_dir
    out = tmp_path / "ingested"
    with LocalCluster(n_workers=1, threads_per_worker=1, processes=True,
                      dashboard_address=":0") as cluster:
        assert main(["ingest", "--src", str(src), "--out", str(out),
                     "--scheduler", cluster.scheduler_address]) == 0
    assert Dataset(out).num_sims == 6


def test_a_truncated_pickle_is_the_whole_stderr_once(tmp_path) -> None:
    """The error is raised on a Dask worker: no worker log, no traceback, no second copy."""
    src = tmp_path / "src"
    src.mkdir()
    make_neuronio_file(tmp_path / "good.p", seed=1)
    bad = (src / "bad.p").resolve()
    bad.write_bytes((tmp_path / "good.p").read_bytes()[:2000])
    with pytest.raises(UserError) as expected:
        load_neuronio(bad)
    proc = neurosurrogate("ingest", "--src", src, "--out", tmp_path / "out", "--workers", "2")
    assert proc.returncode == 2
    assert proc.stderr == f"neurosurrogate ingest: error: {expected.value}\n"
    assert str(expected.value).startswith(f"{bad}: truncated or corrupt pickle")
