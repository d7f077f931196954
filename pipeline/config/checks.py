"""The whole check of a params file, for the check-params stage: the schema
(pipeline.config.schema) plus what a schema cannot say, the relations between keys and the
models' own settings. Kept apart from the schema because it imports the models (torch),
which a stage reading its own section does not need.
"""

from __future__ import annotations

from dataclasses import fields
from pathlib import Path
from typing import Any

from pipeline.config.recipes import NO_RECIPE
from pipeline.config.schema import load_params
from pipeline.config.training import SettingError, resolve_settings
from pipeline.errors import UserError


def _check_cross_fields(params: dict[str, Any]) -> list[tuple[str, str]]:
    """What a schema cannot say: relations between keys, and the models' own settings."""
    from surrogates import REGISTRY, model_names

    problems = []
    train, evaluate = params["train"], params["evaluate"]
    given = {k: v for k, v in train.items() if k != "device"}
    # Each model's recipe under the train keys, and no recipe (the sweep's).
    users = [(f"models.{k}", entry["recipe"]) for k, entry in enumerate(params["models"])]
    for where, recipe in [*users, ("the sweep", NO_RECIPE)]:
        try:
            resolve_settings(recipe, given)
        except SettingError as err:
            problems.append((f"train.{err.field}", f"{err.problem} ({where}, recipe {recipe})"))
            break
    if evaluate["burn_in_ms"] >= evaluate["window_ms"]:
        problems.append(("evaluate.burn_in_ms", "must be shorter than evaluate.window_ms"))
    if params["shard"]["split"].strip() == "folders" and not params["data"]["neuronio"]:
        problems.append(("shard.split", "folders (the published NeuronIO folder split) needs "
                                        "data.neuronio: a simulated data set has no folders"))
    if params["simulate"]["duration_ms"] <= evaluate["skip_ms"]:
        problems.append(("evaluate.skip_ms", "leaves nothing of simulate.duration_ms"))
    budgets = params["sweep"]["budgets"]
    if budgets:
        from pipeline.sweep.analysis import parse_budgets

        try:
            parse_budgets(",".join(str(b) for b in budgets))
        except ValueError as err:
            problems.append(("sweep.budgets", str(err)))
    names = [m["name"] for m in params["models"]]
    known = model_names()
    for k, entry in enumerate(params["models"]):
        where = f"models.{k}"
        if names.count(entry["name"]) > 1:
            problems.append((f"{where}.name", f"{entry['name']!r} is used twice"))
        if entry["model"] not in known:
            problems.append((f"{where}.model", f"unknown model {entry['model']!r}; known: "
                                               f"{', '.join(known)}"))
            continue
        settable = {f.name for f in fields(REGISTRY[entry["model"]].config_class)}
        for pair in entry["set"].split():
            key = pair.partition("=")[0]
            if key not in settable:
                problems.append((f"{where}.set", f"{entry['model']} has no setting {key!r}"))
    return problems


def check_params(path: Path) -> dict[str, Any]:
    """`load_params` plus the relations between keys and the models' own settings (which
    imports the models): the check-params stage's full check."""
    params = load_params(path)
    problems = _check_cross_fields(params)
    if problems:
        key, problem = problems[0]
        raise UserError(path, f"{key}: {problem}")
    return params
