"""The fused (Triton) ELM Network recurrence equals its TorchScript loops and the definition.

Without a GPU the kernels run in Triton's interpreter on CPU tensors (tests.fused_helpers,
imported first, sets TRITON_INTERPRET=1). Sizes
are tiny: the interpreter runs every op of every step in numpy.
"""

from __future__ import annotations

from collections.abc import Iterator

from tests.fused_helpers import DEVICE, TOL, assert_model_equals_definition, needs_triton, spy_fused  # isort: skip  (first: the interpreter)

import pytest  # noqa: E402
import torch  # noqa: E402

from surrogates import build, triton_network, triton_scan  # noqa: E402
from surrogates.elm_network import _NetworkScan, _scripted, step_by_step  # noqa: E402

pytestmark = needs_triton
NAMES = ("ext", "kappa", "gain", "w_u", "b_in", "wq", "wo", "bo", "out", "w_rec")


@pytest.fixture
def fused(monkeypatch: pytest.MonkeyPatch) -> Iterator[list[str]]:
    """MODE "triton" (CPU tensors too); the list collects the network launchers called."""
    yield from spy_fused(monkeypatch, triton_network, ("forward", "backward"))


def network_inputs(steps: int, batch: int, mem: int, hidden: int, sources: list[list[int]],
                   seed: int = 0) -> tuple[list[torch.Tensor], torch.Tensor]:
    """_NetworkScan's float inputs (ext, kappa, gain, w_u, b_in, wq, wo, bo, out, w_rec), all
    requiring grad, and rec_src [N, K] from `sources` (one row per unit)."""
    units = len(sources)
    gen = torch.Generator().manual_seed(seed)

    def rnd(*shape: int, scale: float = 0.5) -> torch.Tensor:
        return scale * torch.randn(*shape, generator=gen)

    rec_src = torch.tensor(sources, dtype=torch.int64).reshape(units, -1)
    floats = [rnd(steps, units, batch, scale=1.0),
              torch.rand(units, mem, generator=gen).mul(0.5).add(0.45),
              torch.rand(units, mem, generator=gen).mul(0.8).add(0.2),
              rnd(units, hidden), rnd(units, hidden), rnd(units, hidden, mem),
              rnd(units, mem, hidden), rnd(units, mem), rnd(units, mem),
              rnd(units, rec_src.shape[1], scale=0.8)]
    return [t.to(DEVICE).requires_grad_() for t in floats], rec_src.to(DEVICE)


def torchscript_forward(inputs: list[torch.Tensor], rec_src: torch.Tensor,
                        silu: bool) -> tuple[torch.Tensor, ...]:
    """`_forward_loop` in the layouts `_NetworkScan.forward` gives it."""
    ext, kappa, gain, w_u, b_in, wq, wo, bo, out, w_rec = (t.detach() for t in inputs)
    return _scripted()["_forward_loop"](
        ext, kappa.unsqueeze(1), gain.unsqueeze(1), w_u.unsqueeze(1), b_in.unsqueeze(1),
        wq.transpose(1, 2).contiguous(), wo.transpose(1, 2).contiguous(), bo.unsqueeze(1),
        out.unsqueeze(-1), rec_src, w_rec.unsqueeze(-1), silu)


def grads(inputs: list[torch.Tensor], rec_src: torch.Tensor,
          silu: bool) -> tuple[torch.Tensor, list[torch.Tensor]]:
    *floats, w_rec = inputs
    o = _NetworkScan.apply(*floats, rec_src, w_rec, silu)
    weight = torch.randn(o.shape, generator=torch.Generator().manual_seed(1)).to(DEVICE)
    return o.detach(), list(torch.autograd.grad((o * weight).sum(), inputs))


OVERLAP = [[1, 2], [2, 3], [0, 2], [2, 1]]  # unit 2 read by three units, unit 1 by two
CASES = {  # steps, batch, D, H, sources, activation, tile (elements; None: the default)
    "overlapping_relu": (8, 3, 3, 5, OVERLAP, "relu", None),
    "no_recurrence_silu": (7, 3, 2, 3, [[], [], []], "silu", None),
    # Several unit tiles (2 units each, the last one half empty), uneven reader counts.
    "tiled_silu": (6, 3, 3, 6, [[1, 4, 2], [0, 2, 3], [0, 1, 4], [0, 1, 2], [2, 3, 1]],
                   "silu", 64),
    "one_source_relu": (10, 5, 2, 4, [[1], [0], [0]], "relu", None),
}


@pytest.mark.parametrize("case", list(CASES))
def test_network_scan_equals_torchscript(fused: list[str], monkeypatch: pytest.MonkeyPatch,
                                         case: str) -> None:
    steps, batch, mem, hidden, sources, activation, tile = CASES[case]
    if tile is not None:
        monkeypatch.setattr(triton_network, "TILE", tile)
        assert triton_network.unit_tile(len(sources), 8, 4, 4) < len(sources)
    silu = activation == "silu"
    inputs, rec_src = network_inputs(steps, batch, mem, hidden, sources)
    kernels = triton_scan.usable(inputs[0], hidden=hidden, memory=mem)
    assert kernels is not None
    got = kernels.network_forward(*[t.detach() for t in inputs[:-1]], rec_src,
                                  inputs[-1].detach(), silu)
    ref = torchscript_forward(inputs, rec_src, silu)
    for name, g, r in zip(("o", "u", "m"), got, ref, strict=True):
        torch.testing.assert_close(g, r, **TOL, msg=name)
    assert ref[0].abs().max() > 0.1
    got_o, got_grads = grads(inputs, rec_src, silu)
    assert fused == ["forward", "forward", "backward"]
    triton_scan.MODE = "off"
    ref_o, ref_grads = grads(inputs, rec_src, silu)
    torch.testing.assert_close(got_o, ref_o, **TOL)
    for name, g, r in zip(NAMES, got_grads, ref_grads, strict=True):
        assert g.shape == r.shape, name
        if r.numel():
            assert r.abs().max() > 0, name
        torch.testing.assert_close(g, r, **TOL, msg=name)


def test_readers_table_lists_every_synapse_of_each_source() -> None:
    table = triton_network.readers(torch.tensor(OVERLAP), 4)
    assert table.dtype == torch.int32
    # flat i K + k: unit 0 is read by (2, 0); unit 1 by (0, 0), (3, 1); unit 2 by (0, 1),
    # (1, 0), (2, 1), (3, 0); unit 3 by (1, 1).
    assert table.tolist() == [[4, -1, -1, -1], [0, 7, -1, -1], [1, 2, 5, 6], [3, -1, -1, -1]]
    unread = triton_network.readers(torch.tensor([[1], [0], [0]]), 3)
    assert unread.tolist() == [[1, 2], [0, -1], [-1, -1]]


@pytest.mark.parametrize(("activation", "fraction"), [("relu", 0.5), ("silu", 0.0)])
def test_elm_network_equals_the_definition(fused: list[str], activation: str,
                                           fraction: float) -> None:
    """The whole model through the fused loops against the step-by-step definition."""
    torch.manual_seed(0)
    model = build("elm_network", num_exc=6, num_inh=6, num_units=5, complexity=3,
                  connectivity=6, recurrent_fraction=fraction,
                  mlp_activation=activation).to(DEVICE)
    launched = assert_model_equals_definition(model, step_by_step, (3, 12, 12), 0.3, fused)
    assert launched == ["forward", "backward"]


@pytest.mark.parametrize("mode", ["auto", "off"])
def test_cpu_network_keeps_torchscript_unless_forced(fused: list[str], mode: str) -> None:
    triton_scan.MODE = mode
    inputs, rec_src = network_inputs(4, 2, 2, 4, OVERLAP)
    grads(inputs, rec_src, False)
    expected = [] if DEVICE.type == "cpu" or mode == "off" else ["forward", "backward"]
    assert fused == expected
