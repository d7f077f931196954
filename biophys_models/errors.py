"""Errors about a cell or its mechanisms that the user can fix (bad spec, bad .mod, ...)."""

from __future__ import annotations

from pipeline.errors import UserError


class CellError(UserError):
    """A bad cell spec, morphology or mechanism: CellError(file, problem), as UserError."""
