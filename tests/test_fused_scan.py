"""The fused (Triton) ELM recurrences equal the TorchScript loops and the definition.

Without a GPU the kernels run in Triton's interpreter on CPU tensors: TRITON_INTERPRET=1 must
be in the environment before triton is first imported, which importing tests.fused_helpers
first does (only when no CUDA device is present). With a GPU the same tests run the compiled
kernels on CUDA, and the end-to-end test compares whole models against the TorchScript path.
"""

from __future__ import annotations

from collections.abc import Iterator

from tests.fused_helpers import DEVICE, TOL, assert_model_equals_definition, needs_triton, spy_fused  # isort: skip  (first: the interpreter)

import pytest  # noqa: E402
import torch  # noqa: E402

from surrogates import build, triton_scan  # noqa: E402
from surrogates.elm_recurrence import exp_filter, memory_scan, step_by_step  # noqa: E402

pytestmark = needs_triton


@pytest.fixture
def fused(monkeypatch: pytest.MonkeyPatch) -> Iterator[list[str]]:
    """Route every recurrence through Triton, CPU tensors included (interpreter); the list
    it gives collects the names of the kernels launched, so a test can see they ran."""
    yield from spy_fused(monkeypatch, triton_scan,
                         ("_scan_forward", "_scan_backward", "_exp_filter"))


def scan_inputs(steps: int, units: int, batch: int, mem: int, hidden: int,
                seed: int = 0) -> list[torch.Tensor]:
    gen = torch.Generator().manual_seed(seed)

    def rnd(*shape: int, scale: float = 1.0) -> torch.Tensor:
        return (scale * torch.randn(*shape, generator=gen)).to(DEVICE).requires_grad_()

    kappa = torch.rand(units, mem, generator=gen).mul(0.5).add(0.45).to(DEVICE)
    gain = torch.rand(units, mem, generator=gen).mul(0.3).to(DEVICE)
    return [rnd(steps, units, batch, hidden), rnd(units, batch, mem),
            kappa.requires_grad_(), gain.requires_grad_(),
            rnd(units, hidden, mem, scale=0.4), rnd(units, mem, hidden, scale=0.4),
            rnd(units, mem, scale=0.5)]


def values_and_grads(fn, inputs: list[torch.Tensor], seed: int = 1
                     ) -> tuple[torch.Tensor, list[torch.Tensor]]:
    out = fn(*inputs)
    weight = torch.randn(out.shape, generator=torch.Generator().manual_seed(seed)).to(DEVICE)
    grads = torch.autograd.grad((out * weight).sum(), inputs)
    return out.detach(), list(grads)


@pytest.mark.parametrize(("units", "batch", "mem", "hidden", "activation"), [
    (1, 3, 5, 11, "relu"),      # nothing a power of two
    (1, 8, 20, 40, "relu"),     # the published Branch-ELM width
    (3, 2, 6, 12, "silu"),      # several units, as the ELM Network layer
    (2, 5, 4, 8, "silu"),
])
def test_memory_scan_equals_torchscript(fused: list[str], units: int, batch: int, mem: int,
                                        hidden: int, activation: str) -> None:
    inputs = scan_inputs(30, units, batch, mem, hidden)
    got, got_grads = values_and_grads(
        lambda *a: memory_scan(*a, activation=activation), inputs)
    triton_scan.MODE = "off"
    ref, ref_grads = values_and_grads(
        lambda *a: memory_scan(*a, activation=activation, use_cpp=False), inputs)
    assert fused == ["_scan_forward", "_scan_backward"]
    assert ref.abs().max() > 0.1  # a non-trivial memory
    torch.testing.assert_close(got, ref, **TOL)
    names = ("drive", "m0", "kappa", "gain", "wq", "wo", "bo")
    for name, g, r in zip(names, got_grads, ref_grads, strict=True):
        assert r.abs().max() > 0, name
        torch.testing.assert_close(g, r, **TOL, msg=name)


def test_memory_scan_carried_state_equals_one_pass(fused: list[str]) -> None:
    """Two windows, the second starting from the first's last memory, equal one pass."""
    drive, m0, *weights = [t.detach() for t in scan_inputs(40, 2, 3, 7, 13)]
    whole = memory_scan(drive, m0, *weights)
    first = memory_scan(drive[:25], m0, *weights)
    second = memory_scan(drive[25:], first[-1], *weights)
    torch.testing.assert_close(torch.cat([first, second]), whole, rtol=0, atol=1e-6)


def test_memory_scan_computes_in_float32_from_bfloat16(fused: list[str]) -> None:
    """bf16 autocast feeds the scan a bfloat16 drive: the kernels compute in float32 and the
    drive's gradient comes back in its own dtype."""
    inputs = scan_inputs(20, 1, 3, 5, 10)
    drive16 = inputs[0].detach().to(torch.bfloat16).requires_grad_()
    got = memory_scan(drive16, *inputs[1:])
    assert got.dtype == torch.float32
    got.sum().backward()
    assert drive16.grad is not None and drive16.grad.dtype == torch.bfloat16
    triton_scan.MODE = "off"
    ref = memory_scan(drive16.detach().float(), *[t.detach() for t in inputs[1:]],
                      use_cpp=False)
    torch.testing.assert_close(got.detach(), ref, **TOL)


@pytest.mark.parametrize("width", [(3,), (4, 37)])
def test_exp_filter_equals_torchscript(fused: list[str], width: tuple[int, ...]) -> None:
    gen = torch.Generator().manual_seed(0)
    p = torch.randn(45, *width, generator=gen).to(DEVICE).requires_grad_()
    z0 = torch.randn(*width, generator=gen).to(DEVICE).requires_grad_()
    k = torch.rand(width[-1], generator=gen).to(DEVICE)
    got, got_grads = values_and_grads(lambda a, b: exp_filter(a, k, b), [p, z0])
    triton_scan.MODE = "off"
    ref, ref_grads = values_and_grads(lambda a, b: exp_filter(a, k, b, use_cpp=False), [p, z0])
    torch.testing.assert_close(got, ref, **TOL)
    for g, r in zip(got_grads, ref_grads, strict=True):
        torch.testing.assert_close(g, r, **TOL)


def test_branch_elm_equals_the_definition(fused: list[str]) -> None:
    """The whole model through the fused loops against the step-by-step definition."""
    torch.manual_seed(0)
    model = build("branch_elm", num_exc=6, num_inh=6, num_branches=3, branch_size=5,
                  num_memory=5).to(DEVICE)
    assert_model_equals_definition(model, step_by_step, (2, 40, 12), 0.1, fused)
    assert {"_scan_forward", "_scan_backward", "_exp_filter"} <= set(fused)


def test_dispatch(monkeypatch: pytest.MonkeyPatch) -> None:
    cpu = torch.zeros(2)
    monkeypatch.setattr(triton_scan, "MODE", "auto")
    assert triton_scan.usable(cpu) is None  # auto: CUDA tensors only
    assert triton_scan.usable(cpu.double()) is None
    monkeypatch.setattr(triton_scan, "MODE", "triton")
    assert triton_scan.usable(cpu, hidden=40, memory=20) is not None
    assert triton_scan.usable(cpu.double()) is None  # float64 stays on the exact loops
    assert triton_scan.usable(cpu, hidden=400, memory=200) is None  # too wide for registers
    monkeypatch.setattr(triton_scan, "MODE", "off")
    assert triton_scan.usable(cpu) is None
    monkeypatch.setattr(triton_scan, "MODE", "fast")
    with pytest.raises(ValueError, match="NEUROSURROGATE_FUSED_SCAN"):
        triton_scan.usable(cpu)


def _model_grads(model: torch.nn.Module, x: torch.Tensor, weight: torch.Tensor
                 ) -> tuple[torch.Tensor, dict[str, torch.Tensor]]:
    model.zero_grad()
    y = model(x)
    (y * weight).sum().backward()
    return y.detach(), {n: p.grad.clone() for n, p in model.named_parameters()
                        if p.grad is not None}


@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA device")
@pytest.mark.parametrize(("name", "settings"), [
    ("branch_elm", {"num_memory": 20}),
    ("elm", {"num_memory": 20}),
    ("elm_network", {"num_units": 16, "complexity": 4}),
    ("elm_network", {"num_units": 64, "complexity": 8, "mlp_activation": "silu"}),  # 2 tiles
    ("elm_network", {"num_units": 16, "complexity": 3, "recurrent_fraction": 0.0}),
])
def test_cuda_models_fused_equal_torchscript(monkeypatch: pytest.MonkeyPatch, name: str,
                                             settings: dict) -> None:
    torch.manual_seed(0)
    model = build(name, **settings).cuda()
    x = (torch.rand(4, 300, model.config.num_inputs) < 0.02).float().cuda()
    weight = torch.randn(4, 300, 2).cuda()
    monkeypatch.setattr(triton_scan, "MODE", "auto")
    got, got_grads = _model_grads(model, x, weight)
    monkeypatch.setattr(triton_scan, "MODE", "off")
    ref, ref_grads = _model_grads(model, x, weight)
    torch.testing.assert_close(got, ref, **TOL)
    assert got_grads.keys() == ref_grads.keys()
    for key, g in got_grads.items():
        torch.testing.assert_close(g, ref_grads[key], **TOL, msg=key)
