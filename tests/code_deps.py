"""Which project code a stage runs: the import closure of its module, by folder.

Every `import` in a module counts, those inside functions too (the stages import their
libraries inside `run`), so the closure is what the command can execute. A module of a
sub-package stands for its folder, a top-level module of `pipeline/` for itself; dvc.yaml
lists code dependencies at that grain, and tests/test_dvc_pipeline.py checks it against this.
"""

from __future__ import annotations

import ast
from functools import cache
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
PACKAGES = ("pipeline", "surrogates", "biophys_models")


def module_file(name: str) -> Path | None:
    """The source file of project module `name`, or None for a third-party one."""
    if name.split(".")[0] not in PACKAGES:
        return None
    base = ROOT.joinpath(*name.split("."))
    for candidate in (base.with_suffix(".py"), base / "__init__.py"):
        if candidate.is_file():
            return candidate
    return None


def _parents(name: str) -> list[str]:
    parts = name.split(".")
    return [".".join(parts[:k]) for k in range(1, len(parts))]


@cache
def imports_of(name: str) -> frozenset[str]:
    """Project modules `name` imports anywhere in its body (and the packages above them,
    whose __init__ runs first)."""
    path = module_file(name)
    if path is None:
        return frozenset()
    package = name if path.name == "__init__.py" else name.rpartition(".")[0]
    found: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.Import):
            found.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                base = ".".join(package.split(".")[: len(package.split(".")) - node.level + 1])
                source = f"{base}.{node.module}" if node.module else base
            else:
                source = node.module or ""
            found.add(source)
            # `from pkg import module` imports a module, `from module import name` a name
            found.update(f"{source}.{alias.name}" for alias in node.names
                         if module_file(f"{source}.{alias.name}") is not None)
    return frozenset(m for m in found | {p for f in found for p in _parents(f)}
                     if module_file(m) is not None)


def closure(*names: str) -> set[str]:
    seen: set[str] = set()
    todo = list(names)
    while todo:
        name = todo.pop()
        if name not in seen and module_file(name) is not None:
            seen.add(name)
            todo.extend(imports_of(name) | set(_parents(name)))
    return seen


def folder_of(name: str) -> str:
    """`pipeline/training` for pipeline.training.run, `pipeline/cli.py` for pipeline.cli,
    `pipeline/stages/train.py` for a stage, `surrogates` for any surrogates module."""
    path = module_file(name)
    assert path is not None
    rel = path.relative_to(ROOT)
    if rel.parts[0] != "pipeline":
        return rel.parts[0]
    if len(rel.parts) == 2 or rel.parts[1] == "stages":  # a stage is its own module
        return rel.as_posix()
    return "/".join(rel.parts[:2])


def stage_code(stage: str) -> set[str]:
    """The folders and files whose code `neurosurrogate STAGE` runs."""
    module = f"pipeline.stages.{stage.replace('-', '_')}"
    # pipeline/__init__.py (empty) and pipeline/stages/__init__.py (empty) hold no code
    return {folder_of(m) for m in closure("pipeline.cli", module)} - {
        "pipeline/__init__.py", "pipeline/stages/__init__.py"}
