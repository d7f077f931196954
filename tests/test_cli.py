"""The command line: every stage is a subcommand and a `python -m` module."""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

import pytest

from pipeline.cli import STAGES


def test_top_level_help_lists_every_stage() -> None:
    out = subprocess.run(["neurosurrogate", "--help"], capture_output=True, text=True,
                         check=True).stdout
    for stage in STAGES:
        assert stage in out


@pytest.mark.parametrize("stage", sorted(STAGES))
def test_each_stage_has_help_as_subcommand_and_module(stage: str) -> None:
    sub = subprocess.run(["neurosurrogate", stage, "--help"], capture_output=True, text=True,
                         check=True).stdout
    mod = subprocess.run([sys.executable, "-m", "pipeline", stage, "--help"],
                         capture_output=True, text=True, check=True).stdout
    assert "--out" in sub
    assert sub.split("usage:")[1].split()[2:] == mod.split("usage:")[1].split()[2:]


def _readme_stage_flags() -> dict[str, set[str]]:
    """The flags each stage's row of the README's "Stages" table advertises."""
    text = (Path(__file__).resolve().parents[1] / "README.md").read_text()
    rows = re.findall(r"^\| ([a-z-]+) \| `neurosurrogate \1 ([^`]*)`", text, flags=re.M)
    return {stage: set(re.findall(r"--[a-z][a-z0-9-]*", usage)) for stage, usage in rows}


def test_every_flag_the_readme_lists_is_a_flag_of_its_stage() -> None:
    advertised = _readme_stage_flags()
    assert set(advertised) == set(STAGES)
    for stage, flags in advertised.items():
        usage = subprocess.run(["neurosurrogate", stage, "--help"], capture_output=True,
                               text=True, check=True).stdout
        offered = set(re.findall(r"--[a-z][a-z0-9-]*", usage))
        assert flags <= offered, f"{stage}: README lists {sorted(flags - offered)}"


# What a `--help` must not load: the libraries that simulate, train, predict or draw.
HEAVY = ("torch", "numpy", "scipy", "h5py", "matplotlib", "neuron", "dask", "distributed")


@pytest.mark.parametrize("stage", ["", *sorted(STAGES)])
def test_help_loads_none_of_the_heavy_libraries(stage: str) -> None:
    """`--help` imports only what it shows: each stage imports its library inside run()."""
    done = subprocess.run([sys.executable, "-X", "importtime", "-m", "pipeline",
                           *filter(None, [stage]), "--help"], capture_output=True, text=True,
                          check=True)
    loaded = {line.split("|")[-1].strip().split(".")[0] for line in done.stderr.splitlines()
              if line.startswith("import time:")}
    assert "pipeline" in loaded and not loaded & set(HEAVY)


def test_module_entry_point_reports_user_errors_in_one_line(tmp_path) -> None:
    proc = subprocess.run([sys.executable, "-m", "pipeline", "ingest", "--src",
                           str(tmp_path / "missing.p"), "--out", str(tmp_path / "o")],
                          capture_output=True, text=True)
    assert proc.returncode == 2
    assert proc.stderr.strip().splitlines() == [
        f"neurosurrogate ingest: error: {tmp_path / 'missing.p'}: no such file or folder"]


# ------------------------------------------------------------------ --params

@pytest.fixture
def params_file(tmp_path):
    """The project's params.yaml with a few values changed, so that a default, a params
    value and a flag are told apart."""
    import yaml

    from tests.test_params import ROOT

    params = yaml.safe_load((ROOT / "params.yaml").read_text())
    params["train"].update(steps=7, batch_size=3, lr=0.25)
    params["sweep"].update(steps=11, budgets=[1e3, "1e4"])
    params["evaluate"].update(skip_ms=123, max_spikes=5)
    params["shard"].update(seed=9)
    path = tmp_path / "params.yaml"
    path.write_text(yaml.safe_dump(params))
    return path


def resolved(monkeypatch, argv: list[str]):
    """The arguments `argv` gives its stage (its run() replaced by a recorder)."""
    import importlib

    from pipeline.cli import main

    seen = {}
    module = importlib.import_module(STAGES[argv[0]])
    monkeypatch.setattr(module, "run", lambda args: seen.setdefault("args", args))
    assert main(argv) == 0
    return seen["args"]


def test_params_give_defaults_and_a_flag_wins_wherever_it_stands(monkeypatch, params_file):
    base = ["train", "--data", "d", "--model", "elm", "--out", "o"]
    args = resolved(monkeypatch, base + ["--params", str(params_file)])
    assert (args.steps, args.batch_size, args.lr, args.window_ms) == (7, 3, 0.25, 500)
    first = resolved(monkeypatch, ["train", "--steps", "2", "--params", str(params_file),
                                   *base[1:]])
    last = resolved(monkeypatch, base + ["--params", str(params_file), "--steps", "2"])
    assert first.steps == last.steps == 2 and first.batch_size == last.batch_size == 3
    # no --params: not given (None), so the recipe's value or else TrainSettings' default
    from pipeline.config.training import settings_from_args

    assert resolved(monkeypatch, base).steps is None
    assert settings_from_args(resolved(monkeypatch, base)).steps == 2000
    assert settings_from_args(resolved(monkeypatch, base + ["--recipe", "elm"])).steps == 350_000


def test_the_sweep_reads_train_then_sweep_then_the_evaluate_protocol(monkeypatch,
                                                                      params_file):
    args = resolved(monkeypatch, ["sweep", "--params", str(params_file), "--data", "d",
                                  "--out", "o"])
    assert args.steps == 11 and args.batch_size == 3  # sweep.steps over train.steps
    assert args.budgets == ["1000.0", "1e4"]
    assert (args.eval_skip_ms, args.eval_max_spikes, args.eval_window_ms) == (123, 5, 500)


def test_a_params_key_the_stage_lacks_is_one_error_line(params_file, tmp_path) -> None:
    import yaml

    params = yaml.safe_load(params_file.read_text())
    params["shard"]["num_workers"] = 2
    bad = tmp_path / "bad.yaml"
    bad.write_text(yaml.safe_dump(params))
    proc = subprocess.run(["neurosurrogate", "shard", "--params", str(bad), "--src", "s",
                           "--out", "o"], capture_output=True, text=True)
    assert proc.returncode == 2
    assert proc.stderr.splitlines() == [
        f"neurosurrogate shard: error: {bad}: shard.num_workers is not a setting of "
        f"`neurosurrogate shard` (it has no --num-workers)"]
