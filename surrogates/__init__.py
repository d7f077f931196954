"""PyTorch surrogate models of the L5PC (ELM, Branch-ELM, ELM network, TCN, LSTM) on one
interface.

Importing the package imports every model module, each of which registers its name in
`surrogates.registry`; so `build`, `make_config`, `model_names` and `load` see every model
without any lazy import. Import from here (the flat API) rather than from the submodules.
"""

from surrogates import elm, elm_network, lstm, tcn  # noqa: F401  (each registers its model)
from surrogates.base import Surrogate, SurrogateConfig
from surrogates.checkpoints import (
    BEST_CHECKPOINT,
    IMPORTED_CHECKPOINT,
    LAST_CHECKPOINT,
    checkpoint_file,
    load,
    read_checkpoint,
    save,
)
from surrogates.registry import REGISTRY, build, make_config, model_names, register

__all__ = ["BEST_CHECKPOINT", "IMPORTED_CHECKPOINT", "LAST_CHECKPOINT", "REGISTRY",
           "Surrogate", "SurrogateConfig", "build", "checkpoint_file", "load", "make_config",
           "model_names", "read_checkpoint", "register", "save"]
