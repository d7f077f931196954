"""ELM and Branch-ELM: sizes, routings, the fused recurrence against the definition, state."""

from __future__ import annotations

import json
from dataclasses import asdict
from pathlib import Path

import numpy as np
import pytest
import torch

from surrogates import build, load, save
from surrogates.elm import BranchElm, BranchElmConfig, Elm
from surrogates.elm_recurrence import exp_filter, memory_scan, step_by_step
from surrogates.errors import ModelError
from surrogates.routing import interleaved_order


def spikes(batch: int, steps: int, width: int = 1278, rate: float = 0.02,
           seed: int = 0) -> torch.Tensor:
    gen = torch.Generator().manual_seed(seed)
    return (torch.rand(batch, steps, width, generator=gen) < rate).float()


def perturbed(model: Elm, seed: int = 0) -> Elm:
    """Move every weight off its initial value (w_s starts constant) so tests see each one."""
    gen = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for p in model.parameters():
            p.add_(0.1 * torch.randn(p.shape, generator=gen, dtype=p.dtype))
    return model


# ---------------------------------------------------------------- sizes


def test_published_branch_elm_size() -> None:
    model = build("branch_elm", num_memory=20)
    assert model.num_params() == 8002
    assert model.w_s_raw.numel() == 4500 and model.mlp_in.in_features == 45 + 20
    y = model(spikes(2, 7))
    assert y.shape == (2, 7, 2)


def test_elm_size_terms() -> None:
    """54,100 = w_s 1278 + MLP (1298*40+40) + (40*20+20) + readout 42; the paper's 52.9K is
    discussed in surrogates.elm's docstring."""
    model = build("elm", num_memory=20)
    assert model.num_params() == 1278 + (1298 * 40 + 40) + (40 * 20 + 20) + 42 == 54_100
    assert model.num_params() - model.w_s_raw.numel() == 52_822
    assert build("elm", num_memory=100).num_params() == 297_380


@pytest.mark.parametrize("name", ["elm", "branch_elm"])
def test_learnable_tau_m(name: str) -> None:
    fixed, learned = build(name), build(name, learn_tau_m=True)
    assert learned.num_params() == fixed.num_params() + 20
    assert learned.tau_m_raw.requires_grad and not fixed.tau_m_raw.requires_grad
    assert "tau_m_raw" in dict(fixed.named_buffers())
    tau = fixed.tau_m
    assert tau[0] == pytest.approx(1.0, abs=1e-4) and tau[-1] == pytest.approx(150.0, abs=1e-3)
    torch.testing.assert_close(tau.log().diff(), tau.log().diff()[:1].expand(19), atol=1e-4,
                               rtol=0)  # log-spaced
    learned(spikes(1, 30)).sum().backward()
    assert learned.tau_m_raw.grad is not None and learned.tau_m_raw.grad.abs().sum() > 0


# ---------------------------------------------------------------- routings


def test_neuronio_routing_is_the_reference_scheme() -> None:
    model = build("branch_elm")
    index = model.synapse_index.view(45, 100)
    mask = model.synapse_mask.view(45, 100)
    order = interleaved_order(639, 639)
    assert list(order[:6]) == [0, 639, 1, 640, 2, 641]
    assert int(mask.sum()) == 4282
    assert index[0].tolist() == order[:100].tolist()  # window 0: interleaved 0..99
    assert index[1].tolist() == order[29:129].tolist()  # stride ceil(1278 / 45) = 29
    assert index[44][:2].tolist() == [638, 1277] and mask[44].tolist() == [True] * 2 + [False] * 98
    assert mask[:41].all() and mask[41].sum() == 89
    covered = set(index[mask].tolist())
    assert covered == set(range(1278))


def test_random_routing_is_seeded() -> None:
    a, b = build("branch_elm", routing="random"), build("branch_elm", routing="random")
    c = build("branch_elm", routing="random", routing_seed=1)
    assert torch.equal(a.synapse_index, b.synapse_index)
    assert not torch.equal(a.synapse_index, c.synapse_index)
    assert int(a.synapse_mask.sum()) == 4282
    assert set(a.synapse_index[a.synapse_mask].tolist()) == set(range(1278))


def morphology_model(seed: int = 0, **settings: object) -> BranchElm:
    segment_branch = np.random.default_rng(seed).integers(0, 7, size=639)
    segment_branch[:3] = 9  # a small branch, to see masking
    return build("branch_elm", routing="morphology", segment_branch=segment_branch.tolist(),
                 **settings)


def test_morphology_routing_groups_segments_by_branch() -> None:
    model = morphology_model()
    ids = np.asarray(model.config.segment_branch)
    counts = np.bincount(ids)
    assert model.num_branches == len(np.unique(ids)) == 8
    assert model.branch_size == 2 * counts.max()
    index = model.synapse_index.view(model.num_branches, -1)
    mask = model.synapse_mask.view(model.num_branches, -1)
    for row, branch_id in enumerate(np.unique(ids)):
        used = index[row][mask[row]].numpy()
        segments = used % 639  # exc k and inh 639 + k sit on segment k
        assert np.all(ids[segments] == branch_id)  # only synapses of that branch
        assert sorted(used.tolist()) == sorted(
            np.concatenate([np.flatnonzero(ids == branch_id),
                            639 + np.flatnonzero(ids == branch_id)]).tolist())
    assert int(mask.sum()) == 1278
    assert model.num_params() == model.w_s_raw.numel() + (8 + 20) * 40 + 40 + 820 + 42


def test_morphology_config_needs_consistent_branches() -> None:
    with pytest.raises(ModelError, match="segment_branch"):
        build("branch_elm", routing="morphology")
    with pytest.raises(ModelError, match="one branch id per segment"):
        build("branch_elm", routing="morphology", segment_branch=[0, 1, 1])
    with pytest.raises(ModelError, match="routing"):
        build("branch_elm", routing="tree")


# ---------------------------------------------------------------- fused == definition


@pytest.mark.parametrize(("name", "settings", "steps"), [
    ("branch_elm", {}, 6000),
    ("elm", {}, 1000),
    ("branch_elm", {"update": "v2", "mlp_activation": "silu"}, 1000),
    ("branch_elm", {"routing": "random", "learn_tau_m": True, "num_memory": 7}, 500),
])
def test_fused_equals_step_by_step_float32(name: str, settings: dict, steps: int) -> None:
    torch.manual_seed(0)
    model = perturbed(build(name, **settings))
    x = spikes(2, steps)
    with torch.no_grad():
        fast, ref = model(x), step_by_step(model.tensors(), x)
    assert fast.abs().max() > 0.1  # a non-trivial output
    torch.testing.assert_close(fast, ref, rtol=0, atol=1e-5)


def test_v2_update_differs_from_v1() -> None:
    torch.manual_seed(0)
    v1 = perturbed(build("branch_elm", num_memory=5))
    v2 = build("branch_elm", num_memory=5, update="v2")
    v2.load_state_dict(v1.state_dict())
    x = spikes(1, 200)
    with torch.no_grad():
        k1, g1 = v1.tensors().kappa_m, v1.tensors().gain
        _, g2 = v2.tensors().kappa_m, v2.tensors().gain
        torch.testing.assert_close(g1, 5.0 * (1 - k1))
        torch.testing.assert_close(g2, 1 - torch.exp(-5.0 / v2.tau_m))
        assert not torch.allclose(v1(x), v2(x))


def test_general_path_with_unequal_trace_time_constants() -> None:
    """A per-synapse tau_s (possible in a checkpoint) takes the exact slot-wide path."""
    torch.manual_seed(0)
    model = perturbed(build("branch_elm", num_memory=6))
    with torch.no_grad():
        model.tau_s.copy_(torch.linspace(2.0, 9.0, model.tau_s.numel()))
    assert not model._uniform_tau_s()
    x = spikes(2, 400)
    with torch.no_grad():
        torch.testing.assert_close(model(x), step_by_step(model.tensors(), x), rtol=0,
                                   atol=1e-5)


@pytest.mark.parametrize("uniform", [True, False])
def test_model_gradients_equal_the_definition_float64(uniform: bool) -> None:
    torch.manual_seed(0)
    model = perturbed(build("branch_elm", num_exc=6, num_inh=6, num_branches=3, branch_size=5,
                            num_memory=3, learn_tau_m=True)).double()
    if not uniform:
        with torch.no_grad():
            model.tau_s.copy_(torch.linspace(2.0, 9.0, 15))
    x = spikes(2, 25, width=12, rate=0.3).double()
    weight = torch.randn(2, 25, 2, dtype=torch.float64)
    (model(x) * weight).sum().backward()
    fast = {n: p.grad.clone() for n, p in model.named_parameters()}
    model.zero_grad()
    (step_by_step(model.tensors(), x) * weight).sum().backward()
    for name, p in model.named_parameters():
        torch.testing.assert_close(fast[name], p.grad, rtol=1e-9, atol=1e-10, msg=name)


@pytest.mark.parametrize("activation", ["relu", "silu"])
def test_memory_scan_gradcheck(activation: str) -> None:
    gen = torch.Generator().manual_seed(0)

    def rnd(*shape: int) -> torch.Tensor:
        return torch.randn(*shape, generator=gen, dtype=torch.float64).requires_grad_()

    units, batch, hidden, d_m, steps = 2, 3, 4, 3, 6
    kappa = torch.rand(units, d_m, generator=gen, dtype=torch.float64).requires_grad_()
    args = (rnd(steps, units, batch, hidden), rnd(units, batch, d_m), kappa,
            rnd(units, d_m), rnd(units, hidden, d_m), rnd(units, d_m, hidden), rnd(units, d_m))
    assert torch.autograd.gradcheck(lambda *a: memory_scan(*a, activation=activation), args)


def test_exp_filter_gradcheck() -> None:
    gen = torch.Generator().manual_seed(0)
    p = torch.randn(7, 2, 3, generator=gen, dtype=torch.float64, requires_grad=True)
    z0 = torch.randn(2, 3, generator=gen, dtype=torch.float64, requires_grad=True)
    k = torch.rand(3, generator=gen, dtype=torch.float64)
    assert torch.autograd.gradcheck(lambda a, b: exp_filter(a, k, b), (p, z0))


def test_memory_scan_units_are_independent() -> None:
    """Unit u of a multi-unit scan equals a scan of unit u alone (for an ELM layer)."""
    gen = torch.Generator().manual_seed(1)
    shapes = [(9, 3, 2, 4), (3, 2, 5), (3, 5), (3, 5), (3, 4, 5), (3, 5, 4), (3, 5)]
    args = [torch.randn(*s, generator=gen) for s in shapes]
    args[2] = torch.rand(3, 5, generator=gen)
    together = memory_scan(*args)
    for u in range(3):
        alone = memory_scan(args[0][:, u:u + 1], *(a[u:u + 1] for a in args[1:]))
        torch.testing.assert_close(together[:, u:u + 1], alone)


# ---------------------------------------------------------------- state across windows


@pytest.mark.parametrize("uniform", [True, False])
def test_chunks_carrying_state_equal_one_pass(uniform: bool) -> None:
    torch.manual_seed(0)
    model = perturbed(build("branch_elm", num_memory=8))
    if not uniform:
        with torch.no_grad():
            model.tau_s.copy_(torch.linspace(3.0, 7.0, 4500))
    x = spikes(3, 1000)
    with torch.no_grad():
        whole = model(x)
        parts, state = [], None
        for start, stop in ((0, 1), (1, 333), (333, 700), (700, 1000)):
            y, state = model(x[:, start:stop], state, return_state=True)
            parts.append(y)
        torch.testing.assert_close(torch.cat(parts, 1), whole, rtol=0, atol=1e-6)
        torch.testing.assert_close(model.predict(x.bool(), chunk_ms=128), whole, rtol=0,
                                   atol=1e-6)


def test_gradients_flow_through_carried_state() -> None:
    model = perturbed(build("elm", num_exc=4, num_inh=4, num_memory=3)).double()
    x = spikes(2, 20, width=8, rate=0.3).double()
    y1, state = model(x[:, :10], return_state=True)
    y2 = model(x[:, 10:], state)
    torch.cat([y1, y2], 1).sum().backward()
    chunked = [p.grad.clone() for p in model.parameters()]
    model.zero_grad()
    model(x).sum().backward()
    for g, p in zip(chunked, model.parameters(), strict=True):
        torch.testing.assert_close(g, p.grad)


# ---------------------------------------------------------------- checkpoints and errors


@pytest.mark.parametrize("name", ["elm", "branch_elm", "morphology"])
def test_save_load_round_trip(name: str, tmp_path: Path) -> None:
    torch.manual_seed(0)
    model = perturbed(morphology_model(learn_tau_m=True) if name == "morphology"
                      else build(name, num_memory=9, mlp_activation="silu"))
    path = tmp_path / "model.pt"
    save(model, path)
    loaded = load(path)
    assert loaded.config == model.config
    assert type(model.config)(**json.loads(json.dumps(asdict(model.config)))) == model.config
    x = spikes(2, 50)
    with torch.no_grad():
        torch.testing.assert_close(loaded(x), model(x), rtol=0, atol=0)


def test_config_lists_become_tuples() -> None:
    config = BranchElmConfig(routing="morphology", num_exc=4, num_inh=4,
                             segment_branch=[3, 3, 5, 3])
    assert config.segment_branch == (3, 3, 5, 3)
    assert (config.num_branches, config.branch_size) == (2, 6)


def test_bad_inputs_give_one_line_errors() -> None:
    model = build("branch_elm", num_memory=4)
    for bad in (torch.zeros(2, 5, 1000), torch.zeros(5, 1278)):
        with pytest.raises(ModelError, match=r"branch_elm expects inputs \[batch, time, 1278\]"):
            model(bad)
    with pytest.raises(ModelError, match="mlp_activation"):
        build("elm", mlp_activation="gelu")
    with pytest.raises(ModelError, match="update"):
        build("elm", update="v3")


def test_checkpoint_routing_must_match_its_config(tmp_path: Path) -> None:
    """A checkpoint whose config builds another routing than its buffers is refused."""
    model = build("branch_elm", num_memory=4)
    path = tmp_path / "model.pt"
    save(model, path)
    payload = torch.load(path, weights_only=True)
    payload["config"]["num_exc"], payload["config"]["num_inh"] = 640, 638
    torch.save(payload, path)
    with pytest.raises(ModelError, match=r"model\.pt: branch_elm: checkpoint's synapse_index"):
        load(path)
    other = build("branch_elm", num_memory=4, num_exc=640, num_inh=638)
    with pytest.raises(ModelError, match="differs from the 'neuronio' routing"):
        other.load_state_dict(model.state_dict())
    explicit = build("branch_elm", num_memory=4, routing="explicit")
    explicit.load_state_dict(model.state_dict())  # explicit routing takes the buffers
    assert torch.equal(explicit.synapse_index, model.synapse_index)


# ---------------------------------------------------------------- C++ loops


def cpp_available() -> bool:
    from surrogates import cpp_scan

    return cpp_scan.extension() is not None


needs_cpp = pytest.mark.skipif(not cpp_available(), reason="C++ extension not built")


@needs_cpp
@pytest.mark.parametrize("activation", ["relu", "silu"])
def test_memory_scan_cpp_equals_torchscript(activation: str) -> None:
    gen = torch.Generator().manual_seed(2)
    shapes = [(40, 3, 4, 6), (3, 4, 5), (3, 5), (3, 5), (3, 6, 5), (3, 5, 6), (3, 5)]
    args = [torch.randn(*s, generator=gen, dtype=torch.float64, requires_grad=True)
            for s in shapes]
    with torch.no_grad():
        args[2].copy_(torch.rand(3, 5, generator=gen, dtype=torch.float64))
    weight = torch.randn(40, 3, 4, 5, generator=gen, dtype=torch.float64)
    results = []
    for use_cpp in (True, False):
        out = memory_scan(*args, activation=activation, use_cpp=use_cpp)
        grads = torch.autograd.grad((out * weight).sum(), args)
        results.append((out, grads))
    torch.testing.assert_close(results[0][0], results[1][0], rtol=1e-12, atol=1e-12)
    for a, b in zip(results[0][1], results[1][1], strict=True):
        torch.testing.assert_close(a, b, rtol=1e-10, atol=1e-12)


@needs_cpp
@pytest.mark.parametrize("activation", ["relu", "silu"])
def test_memory_scan_cpp_gradcheck_float64(activation: str) -> None:
    gen = torch.Generator().manual_seed(3)

    def rnd(*shape: int) -> torch.Tensor:
        return torch.randn(*shape, generator=gen, dtype=torch.float64).requires_grad_()

    kappa = torch.rand(2, 3, generator=gen, dtype=torch.float64).requires_grad_()
    args = (rnd(7, 2, 3, 4), rnd(2, 3, 3), kappa, rnd(2, 3), rnd(2, 4, 3), rnd(2, 3, 4),
            rnd(2, 3))
    assert torch.autograd.gradcheck(
        lambda *a: memory_scan(*a, activation=activation, use_cpp=True), args)


@needs_cpp
def test_exp_filter_cpp_equals_torchscript() -> None:
    gen = torch.Generator().manual_seed(4)
    p = torch.randn(30, 2, 5, generator=gen, dtype=torch.float64, requires_grad=True)
    z0 = torch.randn(2, 5, generator=gen, dtype=torch.float64, requires_grad=True)
    k = torch.rand(5, generator=gen, dtype=torch.float64)
    outs = [exp_filter(p, k, z0, use_cpp=flag) for flag in (True, False)]
    torch.testing.assert_close(outs[0], outs[1], rtol=1e-13, atol=1e-13)
    weight = torch.randn(30, 2, 5, generator=gen, dtype=torch.float64)
    grads = [torch.autograd.grad((o * weight).sum(), (p, z0)) for o in outs]
    for a, b in zip(*grads, strict=True):
        torch.testing.assert_close(a, b, rtol=1e-13, atol=1e-13)
    assert torch.autograd.gradcheck(lambda a, b: exp_filter(a, k, b, use_cpp=True), (p, z0))


@needs_cpp
@pytest.mark.parametrize("dtype", [torch.float32, torch.float64])
def test_cpp_inference_equals_fused_training_path(dtype: torch.dtype) -> None:
    """No-grad forward (one C++ loop over the active inputs) equals the autograd path."""
    torch.manual_seed(0)
    model = perturbed(build("branch_elm", num_memory=6, mlp_activation="silu")).to(dtype)
    x = spikes(3, 300).to(dtype)
    x[0, 5, 7] = 2.5  # a non-binary value is projected exactly too
    with torch.no_grad():
        y_cpp, state_cpp = model(x, return_state=True)
    y_ref, state_ref = model(x, return_state=True)  # grad enabled: the autograd path
    tol = 1e-5 if dtype == torch.float32 else 1e-12
    torch.testing.assert_close(y_cpp, y_ref.detach(), rtol=0, atol=tol)
    for a, b in zip(state_cpp, state_ref, strict=True):
        torch.testing.assert_close(a, b.detach(), rtol=0, atol=tol)


def fast_kernel_here() -> bool:
    from surrogates import cpp_scan

    return cpp_available() and cpp_scan.inference_kernel(40, 20) == "avx2"


needs_fast = pytest.mark.skipif(not fast_kernel_here(),
                                reason="specialised kernel needs the C++ loops and AVX2/FMA")


@needs_fast
def test_fast_kernel_sizes() -> None:
    """The specialised kernel covers hidden <= 64 and memory <= 32, float32 only."""
    from surrogates import cpp_scan

    assert cpp_scan.inference_kernel(64, 32) == "avx2"
    assert cpp_scan.inference_kernel(1, 1) == "avx2"
    assert cpp_scan.inference_kernel(65, 20) == "cpp"
    assert cpp_scan.inference_kernel(40, 33) == "cpp"
    assert cpp_scan.inference_kernel(40, 20, torch.float64) == "cpp"


@needs_fast
@pytest.mark.parametrize("silu", [False, True])
def test_fast_activations_are_accurate(silu: bool) -> None:
    """The kernel's own tanh and SiLU against float64, over the whole range, +-0 and NaN."""
    from surrogates import cpp_scan

    ext = cpp_scan.extension()
    v = torch.cat([torch.linspace(-100.0, 100.0, 200_001), torch.logspace(-30, 1, 1001),
                   -torch.logspace(-30, 1, 1001), torch.tensor([0.0, -0.0, float("nan")])])
    got = ext.fast_activation(v, silu).double()[:-1]
    exact = (torch.nn.functional.silu(v.double()) if silu else torch.tanh(v.double()))[:-1]
    tiny = exact.abs() < 1e-35  # SiLU below -87, where its exponent is clamped
    assert float(((got - exact).abs() / exact.abs())[~tiny].max()) < 4e-7  # relative
    assert float(got[tiny].abs().max()) < 1e-35 and got[-2] == 0 and got[-1] == 0
    assert torch.isnan(ext.fast_activation(torch.tensor([float("nan")]), silu)).all()


def fast_and_generic(model: Elm, x: torch.Tensor, cuts: tuple[int, ...],
                     monkeypatch: pytest.MonkeyPatch) -> list[list[torch.Tensor]]:
    """Outputs and final state of `model` over x cut into windows at `cuts` (state carried),
    once by the specialised kernel and once by the generic loop."""
    from surrogates import cpp_scan

    results = []
    for fast in (True, False):
        monkeypatch.setattr(cpp_scan, "FAST_INFER", fast)
        hidden, d_m = model.config.hidden, model.config.num_memory
        assert cpp_scan.inference_kernel(hidden, d_m) == ("avx2" if fast else "cpp")
        parts, state = [], None
        with torch.no_grad():
            for start, stop in zip((0, *cuts), (*cuts, x.shape[1]), strict=True):
                y, state = model(x[:, start:stop], state, return_state=True)
                parts.append(y)
        results.append([torch.cat(parts, 1), *state])
    return results


@needs_fast
@pytest.mark.parametrize(("name", "settings", "batch"), [
    ("branch_elm", {}, 5),
    ("branch_elm", {"update": "v2", "mlp_activation": "silu", "num_memory": 7}, 3),
    ("branch_elm", {"num_memory": 32}, 1),
    ("branch_elm", {"num_memory": 9, "mlp_hidden": 13}, 4),
    ("elm", {"num_memory": 3}, 2),
    ("elm", {"num_exc": 5, "num_inh": 4, "num_memory": 20, "mlp_activation": "silu"}, 7),
])
def test_fast_kernel_equals_generic_loop(name: str, settings: dict, batch: int,
                                         monkeypatch: pytest.MonkeyPatch) -> None:
    """Specialised kernel == generic C++ loop == definition (in float64, from which both are
    about as far as the float32 definition is): odd widths (padded lanes), odd batches, state
    carried over windows of 1 step and odd lengths, non-binary and -0 inputs."""
    torch.manual_seed(0)
    model = perturbed(build(name, **settings))
    x = spikes(batch, 700, width=model.config.num_inputs, rate=0.03)
    x[0, 3, 1] = 2.5
    x[-1, 10, :] = -0.0
    fast, generic = fast_and_generic(model, x, (1, 2, 257, 600), monkeypatch)
    assert fast[0].abs().max() > 0.1
    for a, b in zip(fast, generic, strict=True):
        torch.testing.assert_close(a, b, rtol=0, atol=1e-5)
    with torch.no_grad():
        exact = step_by_step(model.double().tensors(), x.double())
    for y in (fast[0], generic[0]):
        torch.testing.assert_close(y.double(), exact, rtol=0, atol=1e-5)


@needs_fast
def test_fast_kernel_propagates_nan(monkeypatch: pytest.MonkeyPatch) -> None:
    """A NaN input turns that row's outputs NaN from its step on, as in the definition
    (torch.relu keeps NaN; both C++ loops do too)."""
    torch.manual_seed(0)
    model = perturbed(build("branch_elm", num_memory=6))
    x = spikes(2, 40)
    x[1, 20, 100] = float("nan")
    fast, generic = fast_and_generic(model, x, (), monkeypatch)
    with torch.no_grad():
        ref = step_by_step(model.tensors(), x)
    for y in (fast[0], generic[0]):
        torch.testing.assert_close(y, ref, rtol=0, atol=1e-5, equal_nan=True)
    assert torch.isnan(ref[1, 20:]).all() and not torch.isnan(ref[0]).any()
    assert not torch.isnan(ref[1, :20]).any()
