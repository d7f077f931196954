"""PyTorch surrogate models of the L5PC (ELM, Branch-ELM, TCN, LSTM) on one interface."""

from surrogates.base import (
    Surrogate,
    SurrogateConfig,
    build,
    load,
    make_config,
    model_names,
    register,
    save,
)

__all__ = ["Surrogate", "SurrogateConfig", "build", "load", "make_config", "model_names",
           "register", "save"]
