"""Model names -> model classes, and building a model from its name and settings.

A leaf module: it imports no model module (and not torch), so every model module can import
`register` from here without a cycle. The models register themselves when the package
`surrogates` imports them; this module only holds the table they fill.
"""

from __future__ import annotations

from dataclasses import fields
from typing import TYPE_CHECKING, Any, TypeVar

from surrogates.errors import ModelError

if TYPE_CHECKING:
    from surrogates.base import Surrogate, SurrogateConfig

REGISTRY: dict[str, type[Surrogate]] = {}
M = TypeVar("M", bound="type[Surrogate]")


def register(cls: M) -> M:
    """Class decorator: make `cls` buildable by its `name`; a name taken twice is a bug."""
    if cls.name in REGISTRY:
        raise ValueError(f"model name {cls.name!r} registered twice")
    REGISTRY[cls.name] = cls
    return cls


def model_names() -> list[str]:
    return sorted(REGISTRY)


def lookup(name: str) -> type[Surrogate]:
    """The class registered as `name`; a ModelError listing the known names otherwise."""
    if name not in REGISTRY:
        raise ModelError(f"unknown model {name!r}; known: {', '.join(model_names())}")
    return REGISTRY[name]


def make_config(name: str, **settings: Any) -> SurrogateConfig:
    """The config of model `name` with `settings` overriding its defaults."""
    config_class = lookup(name).config_class
    known = {f.name for f in fields(config_class)}
    unknown = sorted(set(settings) - known)
    if unknown:
        raise ModelError(f"{name}: unknown setting(s) {', '.join(unknown)}; "
                         f"known: {', '.join(sorted(known))}")
    try:
        return config_class(**settings)
    except (ModelError, TypeError, ValueError) as err:
        raise ModelError(f"{name}: invalid config ({err})") from None


def build(name: str, **settings: Any) -> Surrogate:
    """A freshly initialised model (the caller seeds torch for reproducible weights)."""
    return lookup(name)(make_config(name, **settings))
