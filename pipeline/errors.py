"""The one exception type a user is meant to see.

Stages raise `UserError("path: problem")` for anything the user can fix (a missing
file, a malformed pickle, a mismatched output folder); the command line turns it into
one line on stderr and a non-zero exit instead of a traceback.
"""

from __future__ import annotations

from os import PathLike


class UserError(Exception):
    """A problem with the user's input, reported as one line."""

    def __init__(self, where: str | PathLike[str] | None, problem: str):
        self.where = None if where is None else str(where)
        self.problem = problem
        super().__init__(problem if where is None else f"{where}: {problem}")

    def __reduce__(self):
        # Raised inside Dask workers: keep both fields across the pickle boundary.
        return (type(self), (self.where, self.problem))
