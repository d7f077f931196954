"""`neurosurrogate simulate` with real NEURON on real Dask clusters: determinism across
worker counts, resume, worker death, interruption, refusal of mismatched settings."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path

import numpy as np
import pytest

from biophys_models.cell_spec import load_cell_spec
from biophys_models.errors import CellError
from pipeline.cli import main
from pipeline.datasets.dataset import Dataset
from pipeline.datasets.shards import read_shard
from pipeline.runtime.files import sha256_file
from tests.cell_helpers import neurosurrogate
from tests.conftest import error_lines, tree_state

ARGS = ["--num-sims", "4", "--duration-ms", "60", "--sims-per-shard", "1", "--seed", "11"]


def _sim(out: Path, *extra: str) -> int:
    return main(["simulate", "--out", str(out), *ARGS, *extra])


def _digests(folder: Path) -> dict[str, str]:
    return {p.name: sha256_file(p) for p in sorted(folder.glob("shard-*.h5"))}


@pytest.fixture(scope="module")
def reference(tmp_path_factory) -> Path:
    """The data set made on a local cluster of 2 worker processes."""
    out = tmp_path_factory.mktemp("sim") / "two_workers"
    assert _sim(out, "--workers", "2") == 0
    return out


def test_simulation_on_two_processes_fills_the_contract(reference: Path) -> None:
    data = Dataset(reference)
    data.verify()
    assert data.info.num_exc == data.info.num_inh == 639 and data.info.cell == "l5pc"
    assert data.manifest.sim_ids.tolist() == [0, 1, 2, 3]
    pids = set()
    for entry, path in zip(data.manifest.shards, data.shard_paths, strict=True):
        assert entry.extra["wall_s_per_sim"] > 0
        pids.add(entry.extra["pid"])
        batch = read_shard(path)
        assert batch.soma_voltage_mv.shape == (1, 60)
        assert -90 < batch.soma_voltage_mv[0, 0] < -60  # starts near v_init -76 mV
        assert np.all(np.isfinite(batch.nexus_voltage_mv))
        # a 60 ms run sits at a fraction of the mid-run rate: the smoothing window (up to
        # 4341 ms) is zero-padded at both ends (here 21-342 inputs per run)
        assert len(batch.input_sim) > 10
        assert list(np.unique(batch.segments.type)) == ["apical", "basal"]
        assert np.sum(batch.segments.type == "basal") == 262
    assert len(pids) == 2  # both worker processes simulated
    summary = json.loads((reference / "summary.json").read_text())
    assert summary["num_sims"] == 4
    assert 0.5 < summary["input_exc_rate_hz_per_synapse"] < 40  # 1.76 Hz, see above


def test_one_worker_gives_bit_identical_data(reference: Path, tmp_path: Path) -> None:
    """In the default (fast) kinetics: the rate tables are per-process, built the same way."""
    assert Dataset(reference).manifest.settings["run"]["kinetics"] == "fast"
    out = tmp_path / "one_worker"
    assert _sim(out, "--workers", "1") == 0
    assert _digests(out) == _digests(reference)


def test_exact_kinetics_is_recorded_and_kept_apart(reference: Path, tmp_path: Path,
                                                   capsys) -> None:
    out = tmp_path / "exact"
    assert _sim(out, "--workers", "1", "--kinetics", "exact", "--num-sims", "1") == 0
    assert Dataset(out).manifest.settings["run"]["kinetics"] == "exact"
    capsys.readouterr()
    assert _sim(out, "--workers", "1", "--num-sims", "1") == 2  # fast into exact: refused
    (line,) = error_lines(capsys.readouterr().err)
    assert "already holds a different data set" in line


def test_integrators_and_kinetics_as_documented(reference: Path, tmp_path: Path,
                                                capsys) -> None:
    """--coreneuron runs the default fast kinetics and gives the same data; --cvode needs
    --kinetics exact (fast is fixed-step only): one error line, nothing written."""
    out = tmp_path / "core"
    assert _sim(out, "--workers", "1", "--coreneuron") == 0
    assert [read_shard(p).soma_voltage_mv.tobytes() for p in sorted(out.glob("shard-*.h5"))] \
        == [read_shard(p).soma_voltage_mv.tobytes() for p in sorted(reference.glob("shard-*.h5"))]
    capsys.readouterr()
    refused = tmp_path / "cvode_fast"
    assert _sim(refused, "--workers", "1", "--cvode", "--num-sims", "1") == 2
    (line,) = error_lines(capsys.readouterr().err)
    assert "--kinetics" in line and "fixed-step only" in line
    assert not refused.exists()
    cvode = tmp_path / "cvode"
    assert _sim(cvode, "--workers", "1", "--cvode", "--kinetics", "exact", "--num-sims", "1") == 0
    assert Dataset(cvode).manifest.settings["run"]["cvode"] is True


def test_resume_recomputes_only_the_missing_shard(reference: Path, tmp_path: Path) -> None:
    out = tmp_path / "copy"
    out.mkdir()
    for p in reference.iterdir():
        (out / p.name).write_bytes(p.read_bytes())
    (out / "shard-00002.h5").unlink()
    (out / "shard-00003.h5").write_bytes(b"damaged")
    stamp = (out / "shard-00000.h5").stat().st_mtime_ns
    assert _sim(out, "--workers", "1") == 0
    assert (out / "shard-00000.h5").stat().st_mtime_ns == stamp
    assert _digests(out) == _digests(reference)


def test_mismatched_settings_are_refused_untouched(reference: Path, capsys) -> None:
    before = tree_state(reference)
    capsys.readouterr()
    assert main(["simulate", "--out", str(reference), "--num-sims", "4", "--duration-ms", "60",
                 "--sims-per-shard", "1", "--seed", "12", "--workers", "1"]) == 2
    (line,) = error_lines(capsys.readouterr().err)
    assert "already holds a different data set" in line and "seed" in line
    assert tree_state(reference) == before


def test_a_cell_variant_is_simulated_recorded_and_kept_apart(reference: Path,
                                                             tmp_path: Path, capsys) -> None:
    out = tmp_path / "variant"
    variant = ["--synapse", "ampa", "--dendrites", "passive", "--sk-e2-factor", "0.1",
               "--ih-vshift-mv", "-5", "--exc-range", "basal=0,1900 apical=0,2000"]
    assert _sim(out, "--workers", "1", *variant) == 0
    data = Dataset(out)
    assert data.info.cell == "l5pc (AMPA-only, passive dendrites, SK_E2 x0.1, Ih shift -5 mV)"
    settings = data.manifest.settings
    assert settings["variant"] == {"synapse": "ampa", "dendrites": "passive",
                                   "sk_e2_factor": 0.1, "ih_vshift_mv": -5.0}
    assert settings["protocol"]["apical_exc_range"] == [0.0, 2000.0]
    assert settings["protocol"]["basal_inh_offsets"] == [600.0, 200.0]  # the preset's
    # same inputs as the unchanged cell would get for (seed, sim): only the cell differs
    ref_rows = read_shard(reference / "shard-00000.h5").soma_voltage_mv
    assert not np.array_equal(read_shard(out / "shard-00000.h5").soma_voltage_mv, ref_rows)
    before = tree_state(out)
    capsys.readouterr()
    assert _sim(out, "--workers", "1", *variant[:-2]) == 2  # the unchanged protocol: refused
    (line,) = error_lines(capsys.readouterr().err)
    assert "already holds a different data set" in line
    assert tree_state(out) == before
    assert _sim(tmp_path / "bad", "--sk-e2-factor", "-1") == 2
    (line,) = error_lines(capsys.readouterr().err)
    assert line.endswith(": error: --sk-e2-factor: sk_e2_factor must be a number >= 0, got -1.0")
    assert not (tmp_path / "bad").exists()


def test_a_worker_killed_mid_run_is_replaced_and_its_shard_redone(reference: Path,
                                                                   tmp_path: Path) -> None:
    from dask.distributed import Client, LocalCluster

    out = tmp_path / "killed"
    with LocalCluster(n_workers=2, threads_per_worker=1, processes=True,
                      dashboard_address=":0") as cluster, Client(cluster) as client:
        pids = set(client.run(os.getpid).values())
        result: list[int] = []
        runner = threading.Thread(target=lambda: result.append(
            _sim(out, "--scheduler", cluster.scheduler_address)))
        runner.start()
        deadline = time.monotonic() + 120
        while not any(client.processing().values()) and time.monotonic() < deadline:
            time.sleep(0.05)
        time.sleep(0.5)  # inside a task now (building the cell or simulating)
        victim = next(iter(pids))
        os.kill(victim, signal.SIGKILL)
        runner.join(timeout=300)
        assert result == [0]
        assert victim not in set(client.run(os.getpid).values())  # replaced by its nanny
    assert _digests(out) == _digests(reference)


def test_an_interrupted_run_leaves_only_whole_shards_and_finishes_next_time(
        reference: Path, tmp_path: Path) -> None:
    out = tmp_path / "interrupted"
    cmd = [sys.executable, "-m", "pipeline", "simulate", "--out", str(out), *ARGS,
           "--workers", "1"]
    # A shell that starts jobs in the background (CI runners may) makes them ignore SIGINT,
    # and Python then never raises KeyboardInterrupt: give the child the default handler.
    proc = subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True,
                            preexec_fn=lambda: signal.signal(signal.SIGINT, signal.SIG_DFL))
    manifest = out / "manifest.json"
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline:
        if manifest.is_file() and json.loads(manifest.read_text())["shards"]:
            break
        time.sleep(0.05)
    proc.send_signal(signal.SIGINT)
    proc.wait(timeout=60)
    assert proc.returncode != 0
    listed = {s["file"]: s["sha256"] for s in json.loads(manifest.read_text())["shards"]}
    assert listed and json.loads(manifest.read_text())["complete"] is False
    for path in out.glob("shard-*.h5"):  # a file under a shard name is always whole
        read_shard(path)
        assert listed.get(path.name, sha256_file(path)) == sha256_file(path)
    assert _sim(out, "--workers", "1") == 0
    assert _digests(out) == _digests(reference)


def test_export_to_the_published_layout_ingests_back(reference: Path, tmp_path: Path) -> None:
    from pipeline.acquisition.simulate import export_neuronio

    files = export_neuronio(reference, tmp_path / "export", seed=11)
    assert len(files) == 4 and files[0].name.endswith("secDuration__randomSeed_11000.p")
    assert main(["ingest", "--src", str(tmp_path / "export"), "--out", str(tmp_path / "back"),
                 "--workers", "1"]) == 0
    back = read_shard(Dataset(tmp_path / "back").shard_paths[0])
    original = read_shard(Dataset(reference).shard_paths[0])
    np.testing.assert_array_equal(back.input_synapse, original.input_synapse)
    np.testing.assert_array_equal(back.input_time_ms, original.input_time_ms)
    np.testing.assert_allclose(back.soma_voltage_mv, original.soma_voltage_mv, atol=0.05)


def test_a_missing_cell_spec_is_one_line(tmp_path: Path, capsys) -> None:
    assert main(["simulate", "--out", str(tmp_path / "o"), "--num-sims", "1",
                 "--cell", str(tmp_path / "nope.yaml")]) == 2
    (line,) = error_lines(capsys.readouterr().err)
    assert "nope.yaml: no such cell spec" in line
    assert not (tmp_path / "o").exists()


def _simulate_cli(out: Path, spec: Path) -> subprocess.CompletedProcess:
    return neurosurrogate("simulate", "--out", out, "--cell", spec, "--num-sims", "2",
                          "--sims-per-shard", "1", "--duration-ms", "10", "--workers", "2")


def test_a_broken_cell_spec_is_the_whole_stderr_once(tmp_path: Path) -> None:
    spec = tmp_path / "cell.yaml"
    spec.write_text("name: broken\ntemplate: [unclosed\n")
    with pytest.raises(CellError) as expected:
        load_cell_spec(spec)
    proc = _simulate_cli(tmp_path / "out", spec)
    assert proc.returncode == 2
    assert proc.stderr == f"neurosurrogate simulate: error: {expected.value}\n"
    assert "not valid YAML" in proc.stderr
    assert not (tmp_path / "out").exists()  # refused before anything was written


def test_a_cell_that_fails_on_every_worker_is_the_whole_stderr_once(tmp_path: Path) -> None:
    """Only NEURON finds this spec broken: both shards fail on the Dask workers with the
    same CellError, which reaches the terminal as one line, once, with no worker log."""
    (tmp_path / "cell.hoc").write_text("// defines no template\n")
    spec = tmp_path / "cell.yaml"
    spec.write_text(json.dumps({"name": "broken", "template": "cell.hoc",
                                "template_name": "Missing",
                                "section_lists": {"soma": "somatic", "basal": "basal",
                                                  "apical": "apical"}}))
    proc = _simulate_cli(tmp_path / "out", spec)
    assert proc.returncode == 2
    assert proc.stderr == (f"neurosurrogate simulate: error: {spec.resolve()}: cell.hoc "
                           f"defines no template named 'Missing'\n")
    assert json.loads((tmp_path / "out" / "manifest.json").read_text())["shards"] == []
