"""Errors about a model, its config or its checkpoint that the user can fix."""

from __future__ import annotations


class ModelError(Exception):
    """One line naming the file (or setting) and the problem; the CLI prints it."""
