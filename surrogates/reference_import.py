"""Convert a checkpoint of the reference ELM implementation into one of our models.

The reference state dict (see the reference sheet) holds `_proto_w_s`, `tau_s`,
`_proto_tau_m`, `input_to_synapse_indices`, `valid_indices_mask`, `mlp.network.{0,2}.*` and
`w_y.*`; its JSON config names the sizes, the routing (None, 'neuronio_routing',
'random_routing') and the tau_m range. The reference feeds signed inputs (+1 exc, -1 inh) with
the excitatory half first; ours are binary and the model applies the same signs, so both
compute the same function. The reference routing is kept as it is: as `neuronio` when it
equals ours slot for slot, as `explicit` buffers otherwise.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import torch

from surrogates.base import Surrogate
from surrogates.checkpoints import torch_load_safely
from surrogates.errors import ModelError
from surrogates.registry import build
from surrogates.routing import neuronio_routing

REQUIRED_CONFIG = ("num_input", "num_output", "num_memory", "num_branch",
                   "num_synapse_per_branch", "input_to_synapse_routing", "memory_tau_min",
                   "memory_tau_max", "learn_memory_tau")
ROUTED = ("neuronio_routing", "random_routing")
REFERENCE_LAMBDA = 5.0
REFERENCE_TAU_S = 5.0


def read_config(path: Path) -> dict[str, Any]:
    path = Path(path)
    try:
        config = json.loads(path.read_text())
    except FileNotFoundError:
        raise ModelError("no such config file", where=path) from None
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as err:
        raise ModelError(f"not a readable JSON config ({err})", where=path) from None
    if not isinstance(config, dict):
        raise ModelError("the config must be a JSON object", where=path)
    return config


def read_state(path: Path) -> dict[str, torch.Tensor]:
    path = Path(path)
    state = torch_load_safely(path)
    if not isinstance(state, dict) or not all(isinstance(v, torch.Tensor)
                                              for v in state.values()):
        raise ModelError("not a state dict of tensors", where=path)
    return state


def _settings(config: dict[str, Any], where: str | Path | None) -> dict[str, Any]:
    """Our config settings from the reference config (without routing)."""
    missing = [k for k in REQUIRED_CONFIG if k not in config]
    if missing:
        raise ModelError(f"config lacks {', '.join(missing)}", where=where)
    num_input, num_memory = config["num_input"], config["num_memory"]
    for key in ("num_input", "num_output", "num_memory", "num_synapse_per_branch"):
        if not isinstance(config[key], int) or config[key] < 1:
            raise ModelError(f"config {key} must be a positive integer, got {config[key]!r}",
                             where=where)
    if num_input % 2:
        raise ModelError(f"num_input {num_input} is odd; the reference's inputs are half "
                         f"excitatory, half inhibitory", where=where)
    if config["num_output"] != 2:
        raise ModelError(f"num_output {config['num_output']} is not 2 (spike, soma)", where=where)
    if config.get("mlp_num_layers", 1) != 1:
        raise ModelError(f"mlp_num_layers {config['mlp_num_layers']} is not supported (one "
                         f"hidden layer only)", where=where)
    activation = config.get("mlp_activation", "relu")
    if activation not in ("relu", "silu"):
        raise ModelError(f"unknown mlp_activation {activation!r} (relu or silu)", where=where)
    try:
        return {"num_exc": num_input // 2, "num_inh": num_input // 2,
                "num_memory": num_memory,
                "mlp_hidden": int(config.get("mlp_hidden_size") or 2 * num_memory),
                "mlp_activation": activation,
                "memory_lambda": float(config.get("lambda_value", REFERENCE_LAMBDA)),
                "tau_s_ms": float(config.get("tau_s_value", REFERENCE_TAU_S)),
                "tau_m_min_ms": float(config["memory_tau_min"]),
                "tau_m_max_ms": float(config["memory_tau_max"]),
                "learn_tau_m": bool(config["learn_memory_tau"]),
                "dt_ms": float(config.get("delta_t", 1.0))}
    except (TypeError, ValueError) as err:
        raise ModelError(f"config value of the wrong type ({err})", where=where) from None


def _expect(state: dict[str, torch.Tensor], shapes: dict[str, tuple[int, ...]],
            where: str | Path | None) -> None:
    missing = [k for k in shapes if k not in state]
    if missing:
        raise ModelError(f"checkpoint lacks {', '.join(missing)}", where=where)
    for key, shape in shapes.items():
        if tuple(state[key].shape) != shape:
            raise ModelError(f"{key} has shape {list(state[key].shape)}, the config "
                             f"implies {list(shape)}", where=where)


def convert(state: dict[str, torch.Tensor], config: dict[str, Any],
            where: str | Path | None = None) -> Surrogate:
    """Our ELM or Branch-ELM computing the same function as the reference checkpoint;
    `where` (the checkpoint's path) names it in the errors."""
    settings = _settings(config, where)
    routing = config["input_to_synapse_routing"]
    if routing is not None and routing not in ROUTED:
        raise ModelError(f"unknown input_to_synapse_routing {routing!r} (known: None, "
                         f"{', '.join(ROUTED)})", where=where)
    n_in, d_m, hidden = config["num_input"], settings["num_memory"], settings["mlp_hidden"]
    per_branch = config["num_synapse_per_branch"]
    branches = config["num_branch"] if config["num_branch"] is not None else n_in
    if not isinstance(branches, int) or branches < 1:
        raise ModelError("config num_branch must be a positive integer or null", where=where)
    slots = branches * per_branch
    if routing is None and slots != n_in:
        raise ModelError(f"without routing num_branch * num_synapse_per_branch ({slots}) "
                         f"must equal num_input ({n_in})", where=where)
    shapes = {"_proto_w_s": (slots,), "tau_s": (slots,), "_proto_tau_m": (d_m,),
              "mlp.network.0.weight": (hidden, branches + d_m), "mlp.network.0.bias": (hidden,),
              "mlp.network.2.weight": (d_m, hidden), "mlp.network.2.bias": (d_m,),
              "w_y.weight": (2, d_m), "w_y.bias": (2,)}
    if routing is not None:
        shapes |= {"input_to_synapse_indices": (slots,), "valid_indices_mask": (slots,)}
    _expect(state, shapes, where)
    if not torch.all(torch.isfinite(state["tau_s"])) or torch.any(state["tau_s"] <= 0):
        raise ModelError("tau_s must be positive and finite", where=where)

    if per_branch == 1 and routing is None:
        model = build("elm", **settings)
    else:
        index, mask = _routing_tensors(state, routing, n_in, slots, where)
        ours = neuronio_routing(n_in // 2, n_in // 2, branches, per_branch)
        same = (routing is not None and torch.equal(mask, ours.mask)
                and torch.equal(index[mask], ours.index[mask]))
        model = build("branch_elm", routing="neuronio" if same else "explicit",
                      num_branches=branches, branch_size=per_branch, **settings)
        model.synapse_index.copy_(index.masked_fill(~mask, 0))
        model.synapse_mask.copy_(mask)
    with torch.no_grad():
        model.w_s_raw.copy_(state["_proto_w_s"])
        model.tau_s.copy_(state["tau_s"])
        model.tau_m_raw.copy_(state["_proto_tau_m"])
        for ours_layer, key in ((model.mlp_in, "mlp.network.0"), (model.mlp_out, "mlp.network.2"),
                                (model.readout, "w_y")):
            ours_layer.weight.copy_(state[f"{key}.weight"])
            ours_layer.bias.copy_(state[f"{key}.bias"])
    return model.eval()


def _routing_tensors(state: dict[str, torch.Tensor], routing: str | None, n_in: int,
                     slots: int, where: str | Path | None) -> tuple[torch.Tensor, torch.Tensor]:
    if routing is None:  # consecutive inputs per branch
        return torch.arange(slots), torch.ones(slots, dtype=torch.bool)
    index, mask = state["input_to_synapse_indices"], state["valid_indices_mask"]
    if index.dtype.is_floating_point or index.dtype == torch.bool:
        raise ModelError("input_to_synapse_indices must hold integers", where=where)
    mask = mask.to(torch.bool)
    index = index.to(torch.int64)
    valid = index[mask]
    if valid.numel() and (valid.min() < 0 or valid.max() >= n_in):
        raise ModelError(f"input_to_synapse_indices point outside 0..{n_in - 1}", where=where)
    return index, mask
