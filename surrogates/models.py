"""Imports every model module so that each registers its name (see surrogates.base)."""

from surrogates import elm, lstm, tcn  # noqa: F401
