"""How params.yaml reaches a stage: `--params FILE` makes the stage's sections of that file
its defaults, so every setting has one spelling (the params key is the flag's name with `_`
for `-`) and a flag given on the command line always wins, whatever the order.

Precedence: a flag on the command line > the params file > the stage's own default. A stage
reading several sections (the sweep: `train`, then `sweep`) takes a key from the later
section where both have it; that order is part of the stage's declaration in pipeline.cli,
never of the command line.
"""

from __future__ import annotations

import argparse
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from pipeline.errors import UserError


@dataclass(frozen=True)
class Section:
    """A params section a stage reads: all its keys, or only `keys`, each as the flag
    `--{prefix}{key}` (the sweep reads evaluate's protocol as --eval-window-ms, ...)."""

    name: str
    prefix: str = ""
    keys: tuple[str, ...] | None = None


def read_params(path: Path) -> dict[str, Any]:
    """A params file parsed (a mapping), or a UserError naming the file."""
    import yaml

    path = Path(path)
    if not path.is_file():
        raise UserError(path, "no such params file")
    try:
        params = yaml.safe_load(path.read_text(encoding="utf-8"))
    except yaml.YAMLError as err:
        mark = getattr(err, "problem_mark", None)
        where = f" (line {mark.line + 1})" if mark is not None else ""
        raise UserError(path, f"not valid YAML{where}") from None
    if not isinstance(params, dict):
        raise UserError(path, "must be a mapping of sections (see params.yaml)")
    return params


def _actions(parser: argparse.ArgumentParser) -> dict[str, argparse.Action]:
    return {a.dest: a for a in parser._actions if a.option_strings and a.dest != "help"}


def _flag(action: argparse.Action) -> str:
    return max(action.option_strings, key=len)


def _value(action: argparse.Action, value: Any) -> Any:
    """`value` as argparse would have made it from the command line (ValueError if it
    cannot be)."""

    def convert(item: Any) -> Any:
        if isinstance(item, str) and action.type is not None:
            return action.type(item)  # text, as from the command line
        if action.type is None and not isinstance(item, (str, bool)):
            return str(item)  # a flag without a type takes text: 1e3 -> "1000.0"
        return item  # already typed by YAML

    if action.nargs in ("*", "+") or isinstance(action.nargs, int):
        return [convert(item) for item in (value if isinstance(value, list) else [value])]
    if isinstance(value, list):
        raise ValueError(f"takes one value, not a list (it is {_flag(action)})")
    value = convert(value)
    if action.choices is not None and value not in action.choices:
        raise ValueError(f"must be one of {', '.join(map(str, action.choices))}, got {value!r}")
    return value


def params_defaults(parser: argparse.ArgumentParser, path: Path,
                    sections: Sequence[str | Section]) -> dict[str, Any]:
    """The defaults that `sections` of the params file give the stage's flags; a key that is
    not a flag of the stage, or a value its flag would refuse, is an error naming the key."""
    params = read_params(path)
    actions = _actions(parser)
    defaults: dict[str, Any] = {}
    for section in (s if isinstance(s, Section) else Section(s) for s in sections):
        values = params.get(section.name) or {}
        if not isinstance(values, dict):
            raise UserError(path, f"{section.name}: must be a mapping of settings")
        for key, value in values.items():
            if section.keys is not None and key not in section.keys:
                continue
            dest = section.prefix + key
            if dest not in actions:
                raise UserError(path, f"{section.name}.{key} is not a setting of "
                                      f"`{parser.prog}` (it has no --{dest.replace('_', '-')})")
            try:
                defaults[dest] = None if value is None else _value(actions[dest], value)
            except (TypeError, ValueError, argparse.ArgumentTypeError) as err:
                raise UserError(path, f"{section.name}.{key}: {err}") from None
    return defaults
