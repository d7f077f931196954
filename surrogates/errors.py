"""Errors about a model, its config or its checkpoint that the user can fix."""

from __future__ import annotations

from os import PathLike

from pipeline.errors import UserError


class ModelError(UserError):
    """A bad model name, setting or checkpoint; `where` is the checkpoint or the setting."""

    def __init__(self, problem: str, where: str | PathLike[str] | None = None):
        super().__init__(where, problem)
