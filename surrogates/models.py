"""Imports every model module so that each registers its name (see surrogates.base)."""

from surrogates import elm, elm_network, lstm, tcn  # noqa: F401
