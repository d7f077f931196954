"""The parameter-budget sweep: grid, frontier and fits, and a tiny real sweep end to end
(parallel on Dask, then resumed)."""

from __future__ import annotations

import csv
import math
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from pipeline.cli import main
from pipeline.config.training import TrainSettings
from pipeline.datasets.dataset import write_dataset
from pipeline.errors import UserError
from pipeline.filenames import (
    EVAL_METRICS,
    SWEEP_FRONTIER,
    SWEEP_MARKDOWN,
    SWEEP_POINTS,
    TRAIN_METRICS,
)
from pipeline.sweep.analysis import (
    answer,
    budget_grid,
    fit_power_law,
    pareto_frontier,
    parse_budgets,
)
from pipeline.sweep.outputs import NO_BUDGETS
from pipeline.sweep.outputs import read_points as read_typed_points
from pipeline.sweep.runner import sweep
from surrogates import BEST_CHECKPOINT
from surrogates.elm_network import connection_counts, param_budget
from surrogates.errors import ModelError
from tests.conftest import error_lines
from tests.synthetic import synthetic_batch

SEGMENTS = 16
GRID = {"units": [2, 4, 8, 16], "complexities": [1, 2, 4]}
BUDGETS = [300, 1000]


@pytest.fixture(scope="module")
def shards(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A tiny shard root: 32 inputs, 1.5 s simulations, train/valid/test."""
    root = tmp_path_factory.mktemp("shards")
    for part, ids in (("train", range(8)), ("valid", range(100, 103)),
                      ("test", range(200, 203))):
        batch = synthetic_batch(np.array(list(ids)), num_segments=SEGMENTS, duration_ms=1500,
                                rate_hz=12.0)
        write_dataset(root / part, [batch], {"stage": "test", "part": part})
    return root


def quick() -> TrainSettings:
    return TrainSettings(steps=6, batch_size=4, window_ms=200, min_start_ms=100, burn_in_ms=50,
                         val_every=3, val_windows=4, lr=3e-3)


def read_points(out: Path) -> list[dict[str, str]]:
    with (out / SWEEP_POINTS).open(newline="") as f:
        return list(csv.DictReader(f))


# ----------------------------------------------------------------------------- pure parts

@pytest.mark.parametrize("budget", [1_000, 10_000, 100_000, 1_000_000])
def test_grid_spends_the_budget_with_valid_networks(budget: int) -> None:
    points = budget_grid(budget, [1, 4, 16, 64, 256, 1024, 4096], [1, 2, 4, 8, 16, 32],
                         num_inputs=1278, recurrent_fraction=0.25)
    assert len(points) >= 5
    for p in points:
        assert p.params == param_budget(p.num_units, p.complexity, p.connectivity)
        assert abs(p.params - budget) <= 0.1 * budget
        assert 4 <= p.connectivity <= 1278 + p.num_units - 1
        connection_counts(1278, p.num_units, p.connectivity, 0.25)  # raises if invalid
    assert len({(p.num_units, p.complexity) for p in points}) == len(points)


def test_grid_leaves_out_what_cannot_spend_the_budget() -> None:
    # One unit of complexity 32 alone costs 4290 parameters: over a budget of 1000.
    assert budget_grid(1000, [1], [32], 1278, 0.25) == []
    # 16 units on 32 inputs can read at most 47 sources: 3000 cannot be spent within 10 %.
    assert budget_grid(3000, [16], [1], 32, 0.25) == []


def test_pareto_frontier() -> None:
    params = [100, 200, 150, 400, 300, 300]
    auc = [0.7, 0.75, 0.6, 0.9, 0.8, math.nan]
    assert pareto_frontier(params, auc) == [0, 1, 4, 3]
    assert pareto_frontier([10, 10], [0.5, 0.6]) == [1]


def test_power_law_fit_recovers_the_exponent_with_an_interval() -> None:
    rng = np.random.default_rng(0)
    x = np.geomspace(1e3, 1e6, 12)
    y = 3.0 * x ** -0.4 * np.exp(rng.normal(0, 0.05, x.size))
    fit = fit_power_law(x, y)
    assert fit.low < -0.4 < fit.high and fit.high - fit.low < 0.1
    assert fit.prefactor == pytest.approx(3.0, rel=0.3)
    two = fit_power_law([1e3, 1e4], [0.1, 0.05])
    assert two.exponent == pytest.approx(math.log10(0.5)) and math.isnan(two.low)
    with pytest.raises(ValueError):
        fit_power_law([1e3], [0.1])
    with pytest.raises(ValueError, match="factor of 2"):  # a slope over 1,292 to 1,300
        fit_power_law([1292, 1300], [0.88, 0.2])


def test_parse_budgets() -> None:
    assert parse_budgets("1e4, 1e3,3e3") == [1000, 3000, 10000]
    for bad in ("1e3,abc", "50", "1e3,1e3", "1.5e2,nan"):
        with pytest.raises(ValueError):
            parse_budgets(bad)


def test_answer_reads_the_direction_of_the_optimum() -> None:
    def optima(*pairs: tuple[int, int]) -> dict[int, dict[str, int]]:
        return {10 ** (i + 3): {"num_units": n, "complexity": k}
                for i, (n, k) in enumerate(pairs)}

    assert answer(optima((4, 1), (16, 2), (64, 4))).startswith("Yes")
    assert answer(optima((4, 2), (16, 2), (64, 2))).startswith("Partly")
    assert answer(optima((64, 4), (16, 2))).startswith("No")


# ----------------------------------------------------------------------------- end to end

def test_tiny_sweep_runs_in_parallel_then_resumes(shards: Path, tmp_path: Path,
                                                  monkeypatch: pytest.MonkeyPatch) -> None:
    out = tmp_path / "sweep"
    rows = sweep(shards, BUDGETS, out, quick(), device="cpu", workers=2, **GRID)
    expected = [(p.budget, p.num_units, p.complexity, p.connectivity)
                for b in BUDGETS for p in budget_grid(b, GRID["units"], GRID["complexities"],
                                                      2 * SEGMENTS, 0.25)]
    assert [(r["budget"], r["num_units"], r["complexity"], r["connectivity"])
            for r in rows] == expected
    assert all(r["status"] == "trained" and 0 <= r["spike_auc"] <= 1 for r in rows)
    for name in (SWEEP_POINTS, SWEEP_MARKDOWN, SWEEP_FRONTIER, "plane_300.png", "plane_1000.png"):
        assert (out / name).is_file(), name
    table = read_points(out)
    assert len(table) == len(expected)
    assert all(int(r["params"]) == param_budget(int(r["num_units"]), int(r["complexity"]),
                                                int(r["connectivity"])) for r in table)
    text = (out / SWEEP_MARKDOWN).read_text()
    assert "## Optimum per budget" in text and "more and more complex" in text
    assert read_typed_points(out) == rows  # what the report reads is what the sweep wrote

    # Rerun: nothing is trained again.
    checkpoints = {p: p.read_bytes() for p in out.rglob(BEST_CHECKPOINT)}
    again = sweep(shards, BUDGETS, out, quick(), device="cpu", workers=0, **GRID)
    assert {r["status"] for r in again} == {"reused"}
    assert {p: p.read_bytes() for p in out.rglob(BEST_CHECKPOINT)} == checkpoints
    assert [r["spike_auc"] for r in again] == [r["spike_auc"] for r in rows]

    # A point whose evaluation was lost is redone, and only that one; a failing point is
    # recorded, the others go on, and the sweep ends with a user error.
    first = out / "points" / "P300" / f"N{rows[0]['num_units']}_ke{rows[0]['complexity']}" \
        f"_kc{rows[0]['connectivity']}"
    (first / "eval" / EVAL_METRICS).unlink()
    redone = sweep(shards, BUDGETS, out, quick(), device="cpu", workers=0, **GRID)
    assert [r["status"] for r in redone] == ["trained"] + ["reused"] * (len(rows) - 1)

    import pipeline.training.run

    def diverged(*args: object, **kwargs: object) -> None:
        raise ModelError("diverged")

    monkeypatch.setattr(pipeline.training.run, "train", diverged)
    (first / "model" / TRAIN_METRICS).unlink()
    (first / "eval" / EVAL_METRICS).unlink()
    with pytest.raises(UserError, match="1 point"):
        sweep(shards, BUDGETS, out, quick(), device="cpu", workers=0, **GRID)
    table = read_points(out)
    assert table[0]["status"] == "failed: ModelError: diverged" and table[0]["spike_auc"] == ""
    assert "diverged" in (first / "log.txt").read_text()

    # Anything else is a bug: it stops the sweep with its traceback, not as a failed point.
    def buggy(*args: object, **kwargs: object) -> None:
        raise ZeroDivisionError("a bug")

    monkeypatch.setattr(pipeline.training.run, "train", buggy)
    with pytest.raises(ZeroDivisionError, match="a bug"):
        sweep(shards, BUDGETS, out, quick(), device="cpu", workers=0, **GRID)


def test_a_sweep_folder_keeps_its_settings(shards: Path, tmp_path: Path) -> None:
    out = tmp_path / "sweep"
    sweep(shards, [300], out, quick(), device="cpu", workers=0, units=[8], complexities=[2])
    with pytest.raises(UserError, match="other train"):
        sweep(shards, [300], out, TrainSettings(**{**quick().to_dict(), "steps": 7}),
              device="cpu", workers=0, units=[8], complexities=[2])


def test_bad_input_is_one_line_and_exit_2(shards: Path, tmp_path: Path,
                                          capsys: pytest.CaptureFixture[str]) -> None:
    cases = [
        (["--data", str(tmp_path / "none"), "--budgets", "1e3"], "missing"),
        (["--data", str(shards), "--budgets", "1e3,x"], "--budgets"),
        (["--data", str(shards), "--budgets", "1e9", "--units", "2"], "no (N, k_e)"),
        (["--data", str(shards), "--budgets", "1e3", "--set", "num_units=3"], "set by the grid"),
        (["--data", str(shards), "--budgets", "1e3", "--set", "update=v9"], "update"),
        (["--data", str(shards), "--budgets", "1e3", "--steps", "0"], "--steps: must be >= 1"),
        (["--data", str(shards), "--budgets", "1e3", "--tolerance", "1.5"], "--tolerance"),
        # Lists as DVC passes them (separate words) are read as comma-separated ones.
        (["--data", str(shards), "--budgets", "1e3", "x"], "--budgets: 'x'"),
        (["--data", str(shards), "--budgets", "1e9", "2e9", "--units", "2", "4"],
         "no (N, k_e)"),
        (["--data", str(shards), "--budgets", "1e3", "--complexities", "2", "0"],
         "--complexities"),
    ]
    for args, message in cases:
        assert main(["sweep", *args, "--out", str(tmp_path / "out")]) == 2
        lines = error_lines(capsys.readouterr().err)
        assert len(lines) == 1 and message in lines[0], lines
    assert not (tmp_path / "out").exists()


def test_no_budgets_is_an_empty_sweep_that_says_so(shards: Path, tmp_path: Path) -> None:
    out = tmp_path / "sweep"
    assert main(["sweep", "--data", str(shards), "--out", str(out)]) == 0
    assert read_typed_points(out) == []
    assert NO_BUDGETS in (out / SWEEP_MARKDOWN).read_text()
    assert not list(out.glob("*.png"))


def test_the_stage_runs_as_a_module(tmp_path: Path) -> None:
    result = subprocess.run([sys.executable, "-m", "pipeline", "sweep", "--data",
                             str(tmp_path), "--budgets", "1e3", "--out", str(tmp_path / "o")],
                            capture_output=True, text=True, timeout=120)
    assert result.returncode == 2 and len(error_lines(result.stderr)) == 1, result.stderr
