"""`dvc repro` end to end on a tiny configuration: real NEURON, real Dask, real DVC.

The project is copied into a fresh git repository, so the test sees what a user's clone
sees. It checks every output, that a second `dvc repro` reruns nothing, that changing one
training parameter reruns exactly training, evaluation and the report, `dvc metrics show`,
that a bad params.yaml stops the pipeline before any stage runs, and that giving the optional
sweep budgets runs the ELM-network sweep and brings its section into the report.
"""

from __future__ import annotations

import json
import re
import shutil
import subprocess
from pathlib import Path

import numpy as np
import pytest
import yaml

from pipeline.datasets.neuronio import batch_to_neuronio, dump_neuronio
from tests.code_deps import stage_code
from tests.synthetic import synthetic_batch

ROOT = Path(__file__).resolve().parents[1]
MODELS = ("branch_elm", "elm", "tcn", "lstm")
METRIC_KEYS = ("spike_auc", "tpr_at_fpr_0.0025", "tpr_at_fpr_0.01", "soma_rmse_mv",
               "soma_explained_variance_pct", "soma_rmse_mv_raw", "soma_mae_mv", "num_params",
               "num_sims", "sim_ms_per_s", "speedup_vs_neuron")


def tiny_params() -> dict:
    params = yaml.safe_load((ROOT / "params.yaml").read_text())
    params["simulate"].update(num_sims=6, duration_ms=1000, sims_per_shard=2,
                              exc_range="500,900")  # strong drive: spikes in 500 ms
    params["shard"].update(split="train=0.5,valid=0.17,test=0.33", sims_per_shard=2)
    params["train"].update(steps=6, batch_size=2, window_ms=300, min_start_ms=100,
                           burn_in_ms=50, val_every=3, val_windows=2, device="cpu")
    params["evaluate"].update(window_ms=300, burn_in_ms=100, batch_size=4, num_traces=1,
                              device="cpu")
    for entry in params["models"]:
        if entry["model"] == "tcn":
            entry["set"] = "preset=tcn_small"
        elif entry["model"] != "lstm":
            entry["set"] = "num_memory=4"
        else:
            entry["set"] = "hidden_size=8"
    return params


def sh(cwd: Path, *argv: str, ok: bool = True) -> subprocess.CompletedProcess[str]:
    proc = subprocess.run(argv, cwd=cwd, capture_output=True, text=True, timeout=1200)
    if ok and proc.returncode != 0:
        raise AssertionError(f"{' '.join(argv)} failed ({proc.returncode}):\n{proc.stdout}\n"
                             f"{proc.stderr}")
    return proc


def ran_stages(output: str) -> set[str]:
    return set(re.findall(r"Running stage '([^']+)'", output))


def make_project(dest: Path, params: dict) -> Path:
    """A fresh git repository holding the project's files (as a clone would) and `params`."""
    if shutil.which("neurosurrogate") is None or shutil.which("dvc") is None:
        pytest.fail("the package and DVC must be installed (pip install -e .)")
    files = sh(ROOT, "git", "ls-files", "--cached", "--others", "--exclude-standard",
               "-z").stdout.split("\0")
    for name in filter(None, files):
        source = ROOT / name
        if source.is_file():
            (dest / name).parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(source, dest / name)
    (dest / "params.yaml").write_text(yaml.safe_dump(params, sort_keys=False))
    sh(dest, "git", "init", "-q")
    sh(dest, "git", "add", "-A")
    sh(dest, "git", "-c", "user.name=test", "-c", "user.email=test@example.org", "commit",
       "-qm", "project")
    return dest


@pytest.fixture(scope="module")
def project(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return make_project(tmp_path_factory.mktemp("project"), tiny_params())


@pytest.fixture(scope="module")
def first_run(project: Path) -> subprocess.CompletedProcess[str]:
    return sh(project, "dvc", "repro")


def test_repro_makes_every_output(project: Path, first_run) -> None:
    stages = ran_stages(first_run.stdout)
    assert {"check-params", "acquire", "shard", "sweep", "report"} <= stages
    assert {f"{s}@{i}" for s in ("train", "evaluate") for i in range(len(MODELS))} <= stages
    data = project / "data"
    raw = json.loads((data / "raw" / "manifest.json").read_text())
    assert raw["complete"] and len(raw["shards"]) == 3
    counts = {part: sum(len(s["sim_ids"]) for s in json.loads(
        (data / "shards" / part / "manifest.json").read_text())["shards"])
        for part in ("train", "valid", "test")}
    assert sum(counts.values()) == 6 and min(counts.values()) >= 1
    for name in MODELS:
        model = data / "models" / name
        assert (model / "best.pt").is_file() and (model / "last.pt").is_file()
        log = (model / "train_log.csv").read_text().splitlines()
        assert len(log) == 1 + 2  # header + validations at steps 3 and 6
        metrics = json.loads((data / "evals" / name / "metrics.json").read_text())
        assert set(METRIC_KEYS) <= set(metrics)
        assert 0.0 <= metrics["spike_auc"] <= 1.0 and metrics["num_sims"] >= 1
        assert metrics["speedup_vs_neuron"] > 0  # the manifest carried NEURON's wall time
        for output in ("predictions.h5", "roc.png", "roc.csv", "traces.png"):
            assert (data / "evals" / name / output).stat().st_size > 0
    html = (data / "report" / "report.html").read_text()
    assert all(name in html for name in MODELS) and "data:image/png;base64," in html
    # params.yaml lists no sweep budgets: the sweep stage is a no-op that says so.
    assert (data / "sweep" / "points.csv").read_text().count("\n") == 1
    assert "nothing was swept" in html
    assert "data/report" in first_run.stdout  # where to find the report is printed


def test_second_repro_reruns_nothing(project: Path, first_run) -> None:
    again = sh(project, "dvc", "repro")
    assert ran_stages(again.stdout) == set()
    assert "up to date" in sh(project, "dvc", "status").stdout


def test_a_training_parameter_reruns_only_what_depends_on_it(project: Path, first_run
                                                              ) -> None:
    before = (project / "data" / "raw" / "manifest.json").read_bytes()
    params = yaml.safe_load((project / "params.yaml").read_text())
    params["train"]["steps"] = 9
    (project / "params.yaml").write_text(yaml.safe_dump(params, sort_keys=False))
    rerun = sh(project, "dvc", "repro")
    stages = ran_stages(rerun.stdout)
    expected = {f"{s}@{i}" for s in ("train", "evaluate") for i in range(len(MODELS))}
    # check-params re-validates the changed file; its stamp is unchanged, so acquire and
    # shard are not rerun.
    assert stages == expected | {"report", "check-params", "sweep"}
    assert (project / "data" / "raw" / "manifest.json").read_bytes() == before
    shown = sh(project, "dvc", "metrics", "show", "--json")
    metrics = json.loads(shown.stdout)
    text = json.dumps(metrics)
    for name in MODELS:
        assert f"data/evals/{name}/metrics.json" in text
    assert '"spike_auc"' in text and '"steps": 9' in text


def test_a_bad_params_file_stops_before_any_stage(project: Path, first_run) -> None:
    good = (project / "params.yaml").read_text()
    params = yaml.safe_load(good)
    params["train"]["no_such_setting"] = 1
    (project / "params.yaml").write_text(yaml.safe_dump(params, sort_keys=False))
    try:
        failed = sh(project, "dvc", "repro", ok=False)
    finally:
        (project / "params.yaml").write_text(good)
    assert failed.returncode != 0
    assert ran_stages(failed.stdout) == {"check-params"}
    errors = [line for line in (failed.stdout + failed.stderr).splitlines()
              if "error:" in line and "params.yaml" in line]
    assert len(errors) == 1 and "train.no_such_setting: unknown key" in errors[0]


def test_sweep_budgets_run_the_sweep_and_the_report_reads_it(project: Path, first_run
                                                              ) -> None:
    good = (project / "params.yaml").read_text()
    params = yaml.safe_load(good)
    # 1,300 parameters: one unit reading all 1,278 inputs, or two units of 637 sources.
    params["sweep"].update(budgets=[1300], units=[1, 2], complexities=[1], steps=2,
                           val_every=2, workers=1, device="cpu")
    (project / "params.yaml").write_text(yaml.safe_dump(params, sort_keys=False))
    try:
        rerun = sh(project, "dvc", "repro")
    finally:
        (project / "params.yaml").write_text(good)
    assert ran_stages(rerun.stdout) == {"check-params", "sweep", "report"}
    points = (project / "data" / "sweep" / "points.csv").read_text().splitlines()
    assert len(points) == 3 and all(line.endswith(",trained") for line in points[1:])
    assert [line.split(",")[4] for line in points[1:]] == ["1292", "1300"]
    report = (project / "data" / "report" / "report.md").read_text()
    assert "## ELM network: splitting a parameter budget" in report
    assert "(sweep_plane_1300.png)" in report


# ------------------------------------------------------------------ code dependencies

def dvc_stages() -> dict[str, dict]:
    return yaml.safe_load((ROOT / "dvc.yaml").read_text())["stages"]


def code_deps_of(stage: dict) -> set[str]:
    body = stage.get("do", stage)
    return {d for d in body.get("deps", []) if not d.startswith("data/")}


@pytest.mark.parametrize("name", sorted(dvc_stages()))
def test_each_stage_depends_on_exactly_the_code_it_runs(name: str) -> None:
    """dvc.yaml's code deps, by folder, are the import closure of the stage's command: a
    missing one lets `dvc repro` call stale outputs up to date, an extra one reruns a stage
    for code it never runs."""
    assert code_deps_of(dvc_stages()[name]) == stage_code(name)


def touched_stages(project: Path, path: str) -> set[str]:
    """The stages `dvc status` calls changed after one line is appended to `path`."""
    target = project / path
    original = target.read_bytes()
    target.write_bytes(original + b"\n# touched by the test\n")
    try:
        status = json.loads(sh(project, "dvc", "status", "--json").stdout or "{}")
    finally:
        target.write_bytes(original)
    return {stage.split("@")[0] for stage in status}


def one_module_per_folder() -> dict[str, str]:
    """A module of every code folder a stage depends on (and every top-level module)."""
    folders = set().union(*(code_deps_of(s) for s in dvc_stages().values()))
    picked = {}
    for folder in sorted(folders):
        path = ROOT / folder
        module = path if path.is_file() else sorted(path.rglob("*.py"))[-1]
        picked[folder] = module.relative_to(ROOT).as_posix()
    return picked


def test_changing_one_module_of_a_folder_reruns_the_stages_that_run_it(project: Path,
                                                                        first_run) -> None:
    sh(project, "dvc", "repro")  # the tests before may leave params.yaml's last change
    assert "up to date" in sh(project, "dvc", "status").stdout
    for folder, module in one_module_per_folder().items():
        expected = {name for name in dvc_stages() if folder in stage_code(name)}
        assert touched_stages(project, module) == expected, module
    # What the design promises, independently of the import closure:
    assert touched_stages(project, "biophys_models/protocol.py") == {"acquire"}
    assert "acquire" not in touched_stages(project, "surrogates/elm.py")
    assert touched_stages(project, "pipeline/reporting/figures.py") >= {"report"}


# ------------------------------------------------------------------ configs/

CONFIGS = sorted((ROOT / "configs").glob("*.yaml"))


def shrunk(params: dict) -> dict:
    """`params` at test size: fewer and shorter simulations, a few steps, the CPU; the
    models and their settings stay the config's."""
    small = tiny_params()
    sizes = {"simulate": None, "shard": None, "evaluate": None,
             # only the sizes: the optimiser, schedule, loss and precision stay the
             # config's (its models' recipes where it leaves them null)
             "train": ("steps", "batch_size", "window_ms", "min_start_ms", "val_every",
                       "val_windows", "device", "num_workers")}
    for section, keys in sizes.items():
        params[section].update({k: small[section][k] for k in keys or small[section]
                                if k not in ("cell", "seed", "protocol")
                                and (k, params[section].get(k)) != ("split", "folders")})
    params["ingest"].update(workers=1, scheduler=None)
    params["simulate"].update(workers=2, scheduler=None)
    params["sweep"].update(device="cpu", workers=1)
    return params


def fake_neuronio(folder: Path) -> None:
    """Three NeuronIO files of the full cell's size (639 segments) and 1 s each, one in each
    kind of the published folders, so that `shard.split: folders` finds all three splits."""
    for seed, sub in ((1, "full_ergodic_train_batch_2"), (2, "full_ergodic_train_batch_1"),
                      (3, "Data_test")):
        (folder / sub).mkdir(parents=True, exist_ok=True)
        batch = synthetic_batch(np.arange(3) + 10 * seed, num_segments=639, duration_ms=1000,
                                seed=seed, rate_hz=20.0)
        dump_neuronio(batch_to_neuronio(batch, random_seed=seed), folder / sub
                      / f"sim__3_simulationRuns__1_secDuration__randomSeed_{seed}.p")


@pytest.mark.parametrize("config", CONFIGS, ids=lambda p: p.name)
def test_every_config_passes_check_params_and_runs_at_test_size(
        config: Path, tmp_path: Path) -> None:
    assert sh(ROOT, "neurosurrogate", "check-params", str(config)).returncode == 0
    params = shrunk(yaml.safe_load(config.read_text()))
    dest = make_project(tmp_path / "project", params)
    if params["data"]["neuronio"]:
        fake_neuronio(dest / params["data"]["neuronio"])
    run = sh(dest, "dvc", "repro")
    models = [entry["name"] for entry in params["models"]]
    assert {"check-params", "acquire", "shard", "sweep", "report"} <= ran_stages(run.stdout)
    for k, entry in enumerate(params["models"]):
        assert {f"train@{k}", f"evaluate@{k}"} <= ran_stages(run.stdout)
        metrics = json.loads((dest / "data" / "evals" / entry["name"] / "metrics.json"
                              ).read_text())
        # each row says which evaluator and which training recipe produced it
        assert (metrics["protocol"], metrics["recipe"]) == (params["evaluate"]["protocol"],
                                                            entry["recipe"])
    raw = json.loads((dest / "data" / "raw" / "manifest.json").read_text())
    assert raw["info"]["source"] == ("neuronio" if params["data"]["neuronio"] else "simulated")
    if not params["data"]["neuronio"]:  # the config's integrator and kinetics, as run
        run_settings = raw["settings"]["run"]
        assert (run_settings["coreneuron"], run_settings["kinetics"]) == (
            params["simulate"]["coreneuron"], params["simulate"]["kinetics"])
        assert ("--coreneuron" in run.stdout) == params["simulate"]["coreneuron"]
    assert all(name in (dest / "data" / "report" / "report.md").read_text() for name in models)
