"""Errors about a cell or its mechanisms that the user can fix (bad spec, bad .mod, ...)."""

from __future__ import annotations

from os import PathLike

from pipeline.errors import UserError


class CellError(UserError):
    """A bad cell spec, morphology or mechanism; `where` is the file."""

    def __init__(self, problem: str, where: str | PathLike[str] | None = None):
        super().__init__(where, problem)
