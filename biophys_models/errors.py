"""Errors about a cell or its mechanisms that the user can fix (bad spec, bad .mod, ...)."""

from __future__ import annotations


class CellError(Exception):
    """One line naming the file and the problem; the CLI prints it and exits non-zero."""
