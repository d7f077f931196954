"""check-params: params.yaml against its schema, and what the schema cannot say."""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml

from pipeline.config.checks import check_params
from pipeline.errors import UserError

ROOT = Path(__file__).resolve().parents[1]


def write(tmp_path: Path, change) -> Path:
    params = yaml.safe_load((ROOT / "params.yaml").read_text())
    change(params)
    path = tmp_path / "params.yaml"
    path.write_text(yaml.safe_dump(params, sort_keys=False))
    return path


def test_the_shipped_params_are_valid_and_skip_the_sweep() -> None:
    params = check_params(ROOT / "params.yaml")
    assert params["sweep"]["budgets"] == []


def test_sweep_budgets_as_numbers_or_text(tmp_path: Path) -> None:
    path = write(tmp_path, lambda p: p["sweep"].update(budgets=[1000, "1e4", 1.0e5]))
    assert check_params(path)["sweep"]["budgets"] == [1000, "1e4", 100000.0]


@pytest.mark.parametrize("change, message", [
    (lambda p: p["sweep"].update(budgets=[1000, 50]), "sweep.budgets: '50': a budget must"),
    (lambda p: p["sweep"].update(budgets=["1e3", "1e3"]), "sweep.budgets: a budget is listed"),
    (lambda p: p["sweep"].update(units=[]), "sweep.units"),
    (lambda p: p["sweep"].update(complexities=[0]), "sweep.complexities.0"),
    (lambda p: p["sweep"].update(eval_split="train"), "sweep.eval_split"),
    (lambda p: p["sweep"].update(workers=-1), "sweep.workers"),
    (lambda p: p["sweep"].pop("steps"), "sweep.steps: missing key"),
    (lambda p: p["sweep"].update(seed=1), "sweep.seed: unknown key"),
    (lambda p: p["simulate"].update(kinetics="tabled"), "simulate.kinetics"),
    (lambda p: p.pop("ingest"), "ingest: missing key"),
    (lambda p: p["ingest"].update(workers=0), "ingest.workers"),
    (lambda p: p["train"].update(burn_in_ms=600), "train.burn_in_ms: must be in [0, window_ms)"),
    (lambda p: p["train"].update(steps=0), "train.steps: must be >= 1"),
    (lambda p: p["train"].update(lr=0.0), "train.lr: must be > 0"),
    (lambda p: p["train"].update(steps=1.5), "train.steps: 1.5 is not of type 'integer'"),
])
def test_bad_values_name_the_key(tmp_path: Path, change, message) -> None:
    path = write(tmp_path, change)
    with pytest.raises(UserError) as err:
        check_params(path)
    assert str(path) in str(err.value) and message in str(err.value)
