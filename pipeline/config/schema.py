"""The schema of params.yaml: every key, its type and its range, in one place.

`load_params` reads a params file and returns it parsed and checked against SCHEMA, or raises
one UserError naming the first bad key. The checks that need the models are in
pipeline.config.checks; a stage's `--params` reads its sections without either
(pipeline.config.stage_params), since check-params runs first in dvc.yaml.
"""

from __future__ import annotations

from dataclasses import fields
from pathlib import Path
from typing import Any

from pipeline.config.recipes import RECIPE_NAMES
from pipeline.config.stage_params import read_params
from pipeline.config.training import CHOICES, TrainSettings
from pipeline.errors import UserError
from pipeline.protocol import DENDRITES, EVALUATORS, KINETICS, PROTOCOL_PRESETS, SYNAPSES
from pipeline.runtime.devices import DEVICE_CHOICES

SCHEMA_VERSION = 1


def _obj(properties: dict[str, Any], required: list[str] | None = None) -> dict[str, Any]:
    return {"type": "object", "properties": properties, "additionalProperties": False,
            "required": list(properties) if required is None else required}


def _int(minimum: int = 0) -> dict[str, Any]:
    return {"type": "integer", "minimum": minimum}


def _fields_schema(settings: type) -> dict[str, Any]:
    """The properties of a settings dataclass, typed by its annotations (`from __future__
    import annotations` makes them the names below)."""
    kinds = {"int": {"type": "integer"}, "float": {"type": "number"},
             "bool": {"type": "boolean"}, "str": {"type": "string"}}
    return {f.name: kinds[f.type] for f in fields(settings)}


def _train_fields() -> dict[str, Any]:
    nullable = {}
    for name, kind in _fields_schema(TrainSettings).items():
        if name == "recipe":
            continue
        if name in CHOICES:
            nullable[name] = {"enum": [*CHOICES[name], None]}
        else:
            nullable[name] = {"type": [kind["type"], "null"]}
    return nullable


_DEVICE = {"enum": list(DEVICE_CHOICES)}
_PAIR = r"[0-9.]+\s*,\s*[0-9.]+"
# "A,B" for both trees, or "basal=A,B apical=C,D" (either tree may be left out)
_TREE_PAIRS = rf"^\s*({_PAIR}|(basal|apical)={_PAIR}(\s+(basal|apical)={_PAIR})?)\s*$"
_WORKERS = _int(1)

SCHEMA: dict[str, Any] = _obj({
    "data": _obj({
        # A NeuronIO .p file or a folder of them: ingest it instead of simulating.
        "neuronio": {"type": ["string", "null"], "minLength": 1},
    }),
    "simulate": _obj({
        "cell": {"type": "string", "minLength": 1},  # l5pc or a cell spec YAML
        "num_sims": _int(1),
        "duration_ms": _int(1),
        "seed": _int(),
        "sims_per_shard": _int(1),
        # The NeuronIO paper's cell variant (biophys_models.cell_variant.CellVariant)
        "synapse": {"enum": list(SYNAPSES)},
        "dendrites": {"enum": list(DENDRITES)},
        "sk_e2_factor": {"type": "number", "minimum": 0},
        "ih_vshift_mv": {"type": "number"},
        # NeuronIO protocol: a preset of per-tree ranges, then the excitation ranges and
        # the inhibition offsets that replace the preset's (null: the preset's; see simulate)
        "protocol_preset": {"enum": list(PROTOCOL_PRESETS)},
        # cnexp and the rate expressions, or fixed-step forms (README, "Fast kinetics")
        "kinetics": {"enum": list(KINETICS)},
        # fixed step on CoreNEURON (same trace as NEURON's; README, "Fast kinetics")
        "coreneuron": {"type": "boolean"},
        "exc_range": {"type": ["string", "null"], "pattern": _TREE_PAIRS},
        "inh_offsets": {"type": ["string", "null"], "pattern": _TREE_PAIRS},
        "workers": _WORKERS,
        "scheduler": {"type": ["string", "null"]},  # a Dask scheduler address
    }),
    # Ingesting NeuronIO files (data.neuronio set): its own Dask workers.
    "ingest": _obj({
        "workers": _WORKERS,
        "scheduler": {"type": ["string", "null"]},
    }),
    "shard": _obj({
        # NAME=FRACTION pairs (the hash split), or folders (the published NeuronIO folders)
        "split": {"type": "string",
                  "pattern": r"^\s*(folders|\w+=[0-9.]+(\s*,\s*\w+=[0-9.]+)*)\s*$"},
        "sims_per_shard": _int(1),
        "seed": _int(),
        "workers": _WORKERS,
    }),
    # Every TrainSettings field but the per-model recipe, typed; its ranges are TrainSettings'
    # own (pipeline.config.checks). null: not given, the model's recipe's value (or the
    # default without a recipe).
    "train": _obj({**_train_fields(), "device": _DEVICE}),
    "evaluate": _obj({
        "protocol": {"enum": list(EVALUATORS)},  # the published evaluator
        "window_ms": _int(1),
        "burn_in_ms": _int(),
        "skip_ms": _int(),
        "max_spikes": _int(),
        "batch_size": _int(1),
        "num_traces": _int(),
        "bootstrap_replicates": _int(1),
        "bootstrap_seed": _int(),
        "device": _DEVICE,
    }),
    # The ELM-network budget sweep (docs/elm-network.md); no budgets: the stage writes an
    # empty sweep and the report says so. A budget may be a number or text such as "1e5".
    "sweep": _obj({
        "budgets": {"type": "array", "items": {"type": ["number", "string"]}},
        "units": {"type": "array", "minItems": 1, "items": _int(1)},
        "complexities": {"type": "array", "minItems": 1, "items": _int(1)},
        "steps": _int(1),
        "val_every": _int(1),
        "eval_split": {"enum": ["test", "valid"]},
        "workers": _int(0),
        "device": _DEVICE,
    }),
    "models": {"type": "array", "minItems": 1, "items": _obj({
        "name": {"type": "string", "pattern": r"^[A-Za-z0-9][A-Za-z0-9_.-]*$"},
        "model": {"type": "string"},
        # Model config settings as the train stage's --set takes them: "key=value key=value"
        "set": {"type": "string", "pattern": r"^(\s*[A-Za-z_]\w*=\S+)*\s*$"},
        # The model's training recipe (pipeline/config/recipes.py): its train settings under
        # the train section's non-null keys; none: the train section and our defaults only.
        "recipe": {"enum": list(RECIPE_NAMES)},
    })},
})


def _key_of(error: Any) -> str:
    """The dotted key an error is about; for an unknown key, that key itself."""
    path = ".".join(str(p) for p in error.absolute_path)
    if error.validator == "additionalProperties":
        extra = sorted(set(error.instance) - set(error.schema.get("properties", {})))
        return ".".join(filter(None, [path, extra[0] if extra else ""]))
    if error.validator == "required":
        missing = [k for k in error.validator_value if k not in error.instance]
        return ".".join(filter(None, [path, missing[0] if missing else ""]))
    return path or "(top level)"


def _message(error: Any) -> str:
    if error.validator == "additionalProperties":
        return "unknown key"
    if error.validator == "required":
        return "missing key"
    return error.message


def load_params(path: Path) -> dict[str, Any]:
    """The parsed params checked against SCHEMA (types, ranges, unknown and missing keys), or
    a UserError naming the first bad key."""
    from jsonschema import Draft202012Validator
    from jsonschema.exceptions import best_match

    params = read_params(path)
    error = best_match(Draft202012Validator(SCHEMA).iter_errors(params))
    if error is not None:
        raise UserError(path, f"{_key_of(error)}: {_message(error)}")
    return params
