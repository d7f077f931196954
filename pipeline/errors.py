"""The one base of every error a user is meant to see, for all three packages.

Anything the user can fix (a missing file, a malformed pickle, a bad setting, a broken cell
spec or checkpoint) raises a `UserError` or one of its kinds: `biophys_models.errors.CellError`
and `surrogates.errors.ModelError`. The command line turns each into one line on stderr and a
non-zero exit instead of a traceback; anything else is a bug and keeps its traceback.

A leaf module (no imports of the project), so that `biophys_models` and `surrogates` can
subclass it: the one place where those packages import from `pipeline`.
"""

from __future__ import annotations

from os import PathLike
from typing import Any


class UserError(Exception):
    """`where` (a path or a command-line flag, or None) and the problem, shown as one line."""

    def __init__(self, where: str | PathLike[str] | None, problem: str):
        self.where = None if where is None else str(where)
        self.problem = problem
        super().__init__(problem if where is None else f"{where}: {problem}")

    def __reduce__(self) -> tuple[Any, ...]:
        # Raised inside Dask workers: keep the kind and both fields across the pickle boundary.
        return _rebuild, (type(self), self.where, self.problem)


def _rebuild(kind: type[UserError], where: str | None, problem: str) -> UserError:
    err = kind.__new__(kind)
    UserError.__init__(err, where, problem)
    return err
