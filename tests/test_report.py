"""`neurosurrogate report` on synthetic evaluation folders, its bad inputs, and the report
rendered in a real (headless) browser."""

from __future__ import annotations

import base64
import json
import re
from pathlib import Path

import h5py
import numpy as np
import pytest

from pipeline.cli import main
from pipeline.reporting.draw import trace_window
from pipeline.reporting.tables import COLUMNS, rank
from tests.browser_check import find_browser, render_and_check
from tests.conftest import error_lines, tree_state

STEPS = 1500
START_MS = 500.0


def _roc(truth: np.ndarray, score: np.ndarray) -> tuple[np.ndarray, np.ndarray, float]:
    """A plain ROC (one point per distinct score) and its trapezoid AUC, for the fixture."""
    order = np.argsort(-score, kind="stable")
    hits = truth[order].astype(np.float64)
    tp, fp = np.cumsum(hits), np.cumsum(1 - hits)
    last = np.r_[np.diff(score[order]) != 0, True]
    tpr = np.r_[0.0, tp[last] / tp[-1]]
    fpr = np.r_[0.0, fp[last] / fp[-1]]
    return fpr, tpr, float(np.trapezoid(tpr, fpr))


def make_eval(folder: Path, label: str, skill: float, sim_ids=(3, 5, 8), seed: int = 0,
              num_params: int = 8002, speedup: float | None = 120.0, **extra) -> Path:
    """An evaluation folder as the evaluate stage writes it, for a model whose predictions
    are the truth plus noise shrinking with `skill`."""
    rng = np.random.default_rng(seed)
    n = len(sim_ids)
    # The truth of a simulation depends on its id only, as in real evaluations.
    true_spikes = np.zeros((n, STEPS), dtype=np.uint8)
    for row, sid in enumerate(sim_ids):  # 3 * sid spikes
        true_spikes[row, np.random.default_rng(sid).choice(STEPS, 3 * sid, replace=False)] = 1
    t = np.arange(STEPS)
    true_mv = -70 + 4 * np.sin(t / 37.0 + np.asarray(sim_ids)[:, None])
    true_mv = np.where(true_spikes.astype(bool), -55.0, true_mv).astype(np.float32)
    soma = (true_mv + rng.normal(0, 1.0 / skill, true_mv.shape)).astype(np.float32)
    logit = -5 + 4 * true_spikes * skill + rng.normal(0, 1.5, true_spikes.shape)
    prob = (1 / (1 + np.exp(-logit))).astype(np.float32)
    fpr, tpr, auc = _roc(true_spikes.ravel(), prob.ravel().astype(np.float64))
    folder.mkdir(parents=True)
    with h5py.File(folder / "predictions.h5", "w") as h5:
        h5["sim_id"] = np.asarray(sim_ids, dtype=np.int64)
        h5["spike_prob"], h5["soma_mv"] = prob, soma
        h5["true_spikes"], h5["true_soma_mv"] = true_spikes, true_mv
        h5.attrs["start_ms"], h5.attrs["dt_ms"] = START_MS, 1.0
    np.savetxt(folder / "roc.csv", np.c_[fpr, tpr], delimiter=",", header="fpr,tpr",
               comments="", fmt="%.6g")
    low = tpr[np.argmin(np.abs(fpr - 0.0025))]
    rmse = float(np.sqrt(np.mean((soma - true_mv) ** 2)))
    metrics = {
        "label": label, "model": "branch_elm", "num_params": num_params, "spike_auc": auc,
        "tpr_at_fpr_0.0025": float(low), "tpr_at_fpr_0.01": float(low),
        "soma_rmse_mv": rmse, "soma_rmse_mv_raw": rmse * 1.1, "soma_mae_mv": rmse * 0.8,
        "soma_explained_variance_pct": 100 * (1 - rmse**2 / float(np.var(true_mv))),
        "num_sims": n, "sim_ms_per_s": 1000.0, "speedup_vs_neuron": speedup, "device": "cpu",
        **extra,
    }
    (folder / "metrics.json").write_text(json.dumps(metrics))
    return folder


@pytest.fixture
def evals(tmp_path: Path) -> list[Path]:
    return [make_eval(tmp_path / "e1", "small ELM", skill=0.6, seed=1, num_params=5_900),
            make_eval(tmp_path / "e2", "big TCN", skill=1.5, seed=2, num_params=900_000,
                      speedup=None),
            make_eval(tmp_path / "e3", "branch | elm", skill=1.0, seed=3, sim_ids=(8, 5, 9))]


def _table(md: str) -> list[list[str]]:
    rows = [line for line in md.splitlines() if line.startswith("| ")]
    return [[c.strip() for c in re.split(r"(?<!\\)\|", r)[1:-1]] for r in rows]


def test_report_ranks_tabulates_and_draws(evals: list[Path], tmp_path: Path, capsys) -> None:
    out = tmp_path / "report"
    assert main(["report", "--evals", *map(str, evals), "--out", str(out)]) == 0
    printed = capsys.readouterr().out
    assert printed.rstrip().endswith(f"{out / 'report.md'} and {out / 'report.html'}")
    md = (out / "report.md").read_text()
    table = _table(md)
    assert table[0] == list(COLUMNS)
    ranked = [row[1] for row in table[1:4]]
    assert ranked == ["big TCN", "branch \\| elm", "small ELM"]  # by AUC, best first
    aucs = [float(row[3]) for row in table[1:4]]
    assert aucs == sorted(aucs, reverse=True) and aucs[0] > 0.9
    assert table[1][2] == "900,000" and table[1][7] == "n/a" and table[2][7] == "120x"
    for name in ("auc_vs_params.png", "roc.png", "traces.png"):
        assert (out / name).read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
        assert f"]({name})" in md
    assert "Traces of simulation 8" in md  # of those all three share, the most spikes
    page = (out / "report.html").read_text()
    images = re.findall(r'src="data:image/png;base64,([^"]+)"', page)
    assert len(images) == 3
    assert base64.b64decode(images[1]) == (out / "roc.png").read_bytes()
    # self-contained: no other src/href at all, no external URL
    assert not re.search(r'(src|href)="(?!data:)', page) and "http" not in page
    assert "branch | elm" in page and "&lt;" not in md


def test_no_shared_simulation_is_said_and_skips_traces(tmp_path: Path) -> None:
    a = make_eval(tmp_path / "a", "A", skill=1.0, sim_ids=(1, 2))
    b = make_eval(tmp_path / "b", "B", skill=0.8, sim_ids=(3, 4))
    out = tmp_path / "out"
    out.mkdir()
    (out / "traces.png").write_bytes(b"stale")
    assert main(["report", "--evals", str(a), str(b), "--out", str(out)]) == 0
    md = (out / "report.md").read_text()
    assert "share no simulation" in md and "traces.png" not in md
    assert not (out / "traces.png").exists()
    assert "share no simulation" in (out / "report.html").read_text()


def test_one_evaluation_is_enough(evals: list[Path], tmp_path: Path) -> None:
    out = tmp_path / "one"
    assert main(["report", "--evals", str(evals[0]), "--out", str(out)]) == 0
    md = (out / "report.md").read_text()
    assert len(_table(md)) == 4  # the ranking and the details, one model each
    assert "Traces of simulation 8" in md


def test_ties_in_auc_are_broken_by_rmse(tmp_path: Path) -> None:
    from pipeline.reporting.evaluations import load_evaluations

    a = make_eval(tmp_path / "a", "A", skill=1.0, spike_auc=0.95, soma_rmse_mv=1.2)
    b = make_eval(tmp_path / "b", "B", skill=1.0, spike_auc=0.95, soma_rmse_mv=0.9)
    c = make_eval(tmp_path / "c", "C", skill=1.0, spike_auc=None, soma_rmse_mv=0.1)
    assert [e.label for e in rank(load_evaluations([a, c, b]))] == ["B", "A", "C"]


def test_trace_window_holds_the_most_spikes() -> None:
    time_ms = 500.0 + np.arange(6000)
    spikes = np.zeros(6000, np.uint8)
    spikes[[100, 4100, 4500, 5000]] = 1
    window = trace_window(time_ms, spikes, 2000.0)
    assert window.stop - window.start == 2000 and spikes[window].sum() == 3


def _damage_metrics(key: str, value) -> callable:
    def damage(folder: Path) -> None:
        metrics = json.loads((folder / "metrics.json").read_text())
        if value is KeyError:
            del metrics[key]
        else:
            metrics[key] = value
        (folder / "metrics.json").write_text(json.dumps(metrics))
    return damage


@pytest.mark.parametrize("damage, where, problem", [
    (lambda f: (f / "metrics.json").unlink(), "metrics.json", "not an evaluation folder"),
    (lambda f: (f / "metrics.json").write_text("{oops"), "metrics.json", "not valid JSON"),
    (_damage_metrics("spike_auc", KeyError), "metrics.json", "missing keys: spike_auc"),
    (_damage_metrics("num_params", "many"), "metrics.json", "'num_params' must be"),
    (_damage_metrics("label", "small ELM"), "metrics.json", "label 'small ELM' is also"),
    (lambda f: (f / "roc.csv").write_text("a,b\n1,2\n"), "roc.csv", "header must be"),
    (lambda f: (f / "predictions.h5").unlink(), "predictions.h5", "missing"),
    (lambda f: h5py.File(f / "predictions.h5", "a").__delitem__("soma_mv"), "predictions.h5",
     "missing datasets: soma_mv"),
])
def test_bad_evaluations_get_one_line_and_write_nothing(evals: list[Path], tmp_path: Path,
                                                        capsys, damage, where,
                                                        problem) -> None:
    damage(evals[1])
    out = tmp_path / "out"
    assert main(["report", "--evals", *map(str, evals), "--out", str(out)]) == 2
    (line,) = error_lines(capsys.readouterr().err)
    assert str(evals[1] / where) in line and problem in line
    assert not out.exists()


def test_missing_folder_and_no_folder(evals: list[Path], tmp_path: Path, capsys) -> None:
    assert main(["report", "--evals", str(tmp_path / "nowhere"), "--out",
                 str(tmp_path / "o")]) == 2
    (line,) = error_lines(capsys.readouterr().err)
    assert "nowhere: no such evaluation folder" in line
    assert main(["report", "--evals", str(evals[0]), str(evals[0]), "--out",
                 str(tmp_path / "o")]) == 2
    (line,) = error_lines(capsys.readouterr().err)
    assert f"{evals[0]}: given twice in --evals" in line
    with pytest.raises(SystemExit) as exc:
        main(["report", "--evals", "--out", str(tmp_path / "o")])
    assert exc.value.code == 2
    assert not (tmp_path / "o").exists()


def test_a_failing_report_keeps_the_previous_one(evals: list[Path], tmp_path: Path,
                                                 monkeypatch) -> None:
    out = tmp_path / "out"
    assert main(["report", "--evals", *map(str, evals), "--out", str(out)]) == 0
    before = tree_state(out)

    def broken(*args, **kwargs) -> None:
        raise RuntimeError("disk full")

    monkeypatch.setattr("pipeline.reporting.build.render_html", broken)
    with pytest.raises(RuntimeError):
        main(["report", "--evals", *map(str, evals[:2]), "--out", str(out)])
    assert tree_state(out) == before  # figures and all: no mix of two reports


@pytest.mark.skipif(find_browser() is None,
                    reason="no chromium, chromium-browser or google-chrome on PATH "
                           "(apt-get install chromium)")
def test_report_renders_in_a_real_browser(evals: list[Path], tmp_path: Path) -> None:
    out = tmp_path / "report"
    assert main(["report", "--evals", *map(str, evals), "--out", str(out)]) == 0
    check = render_and_check(out / "report.html", tmp_path / "shot.png")
    assert check.problems() == []
    assert check.images_in_page == 3 and all(w > 500 for w in check.image_widths_px)
    assert check.height_px > check.height_without_images_px + 1000
    # the same page with its images broken must fail the check
    page = (out / "report.html").read_text()
    broken = tmp_path / "broken.html"
    broken.write_text(re.sub(r"base64,[^\"]+", "base64,AAAA", page))
    assert any("did not decode" in p
               for p in render_and_check(broken, tmp_path / "broken.png").problems())


def test_report_of_two_real_evaluations(tmp_path: Path) -> None:
    """Two untrained models scored by the evaluate stage on a tiny data set, then reported:
    the report reads exactly what evaluate writes."""
    import surrogates
    from pipeline.datasets.dataset import write_dataset
    from pipeline.evaluation.run import Protocol, evaluate
    from tests.synthetic import synthetic_batch

    data = tmp_path / "test"
    write_dataset(data, [synthetic_batch(np.arange(4), num_segments=8, duration_ms=800,
                                         rate_hz=12.0)], {"stage": "test"})
    protocol = Protocol(window_ms=300, burn_in_ms=50, skip_ms=100, max_spikes=1000)
    folders = []
    for name, settings in (("elm", {"num_memory": 4}),
                           ("tcn", {"channels": 6, "kernel_sizes": [9, 5]})):
        run_dir, out = tmp_path / f"run-{name}", tmp_path / f"eval-{name}"
        run_dir.mkdir()
        surrogates.save(surrogates.build(name, num_exc=8, num_inh=8, **settings),
                        run_dir / "best.pt")
        evaluate(data, run_dir, out, protocol=protocol, batch_size=4, device="cpu",
                 label=f"untrained {name}", num_traces=1)
        folders.append(out)
    report = tmp_path / "report"
    assert main(["report", "--evals", *map(str, folders), "--out", str(report)]) == 0
    table = _table((report / "report.md").read_text())
    assert sorted(row[1] for row in table[1:3]) == ["untrained elm", "untrained tcn"]
    by_label = {}
    for folder in folders:
        metrics = json.loads((folder / "metrics.json").read_text())
        by_label[metrics["label"]] = metrics
    for row in table[1:3]:
        assert row[2] == f"{by_label[row[1]]['num_params']:,}"
        m = by_label[row[1]]
        assert row[3] == (f"{m['spike_auc']:.4f} [{m['spike_auc_ci_low']:.4f}, "
                          f"{m['spike_auc_ci_high']:.4f}]")
        assert row[7] == "n/a"  # synthetic data carry no NEURON wall time
        assert row[8] == "elm / n/a"  # scored by the elm evaluator; untrained: no recipe
    assert (report / "traces.png").is_file()  # both scored the same simulations
    md = (report / "report.md").read_text()
    # four simulations: the report says in words that it cannot rank them
    assert "too small to rank these models: 4 simulations" in md
    first, second = table[1][1], table[2][1]
    assert f"{first} over {second}: AUC difference" in md
    assert "NOT resolved" in md or "resolved: the 95 % interval" in md


# ---------------------------------------------------------------- the sweep section


def make_sweep(folder: Path, budgets=(1_000, 10_000, 100_000)) -> Path:
    """A sweep folder as `neurosurrogate sweep` leaves it, with AUC rising with the budget
    and, at each budget, with N: the optimum moves to more units."""
    from pipeline.sweep.analysis import GridPoint
    from pipeline.sweep.outputs import rows_to_csv
    from pipeline.sweep.runner import point_row

    rows = []
    for k, budget in enumerate(budgets):
        for j, n in enumerate((4, 16, 64)):
            point = GridPoint(budget, n, 2 ** k, budget // n - 20, budget + j)
            rows.append(point_row(point, "trained", {"val_spike_auc": 0.8},
                                  {"spike_auc": 0.7 + 0.08 * k + 0.01 * j,
                                   "soma_rmse_mv": 2.0 - 0.3 * k}))
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "points.csv").write_text(rows_to_csv(rows))
    return folder


def test_the_sweep_section_reads_the_optimum_and_the_frontier(evals: list[Path],
                                                               tmp_path: Path) -> None:
    out = tmp_path / "report"
    sweep = make_sweep(tmp_path / "sweep")
    assert main(["report", "--evals", *map(str, evals), "--sweep", str(sweep), "--out",
                 str(out)]) == 0
    md = (out / "report.md").read_text()
    section = md[md.index("## ELM network: splitting a parameter budget"):md.index("## Details")]
    optimum = [row for row in _table(section) if row[0].replace(",", "").isdigit()]
    assert [(row[0], row[1], row[2], row[5]) for row in optimum] == [
        ("1,000", "64", "1", "0.7200"), ("10,000", "64", "2", "0.8000"),
        ("100,000", "64", "4", "0.8800")]
    assert re.search(r"1 - AUC = \S+ P\^b with b = -0\.\d+ \(95% CI \[", section)
    assert "Partly: from budget to budget the optimum's number of units stays the same and " \
           "its complexity grows" in section
    figures = ["sweep_frontier.png", *(f"sweep_plane_{b}.png" for b in (1000, 10000, 100000))]
    for name in figures:
        assert (out / name).read_bytes()[:8] == b"\x89PNG\r\n\x1a\n" and f"]({name})" in md
    page = (out / "report.html").read_text()
    assert len(re.findall(r'src="data:image/png;base64,', page)) == 3 + len(figures)
    assert "<li>k_e of the optimum ~ P^a" in page

    # An empty sweep (params.yaml's default) is said in words, and no sweep figure stays.
    empty = tmp_path / "empty"
    empty.mkdir()
    (empty / "points.csv").write_text((sweep / "points.csv").read_text().splitlines()[0] + "\n")
    assert main(["report", "--evals", *map(str, evals), "--sweep", str(empty), "--out",
                 str(out)]) == 0
    md = (out / "report.md").read_text()
    assert "No budgets were given, so nothing was swept" in md
    assert not list(out.glob("sweep_*.png"))


@pytest.mark.parametrize("damage, problem", [
    (lambda text: text.replace("budget,", "budgets,", 1), "header must be"),
    (lambda text: text.replace("\n1000,4,", "\n1000,four,", 1), "line 2"),
])
def test_a_bad_sweep_table_is_one_line_and_writes_nothing(evals: list[Path], tmp_path: Path,
                                                          capsys, damage, problem) -> None:
    sweep = make_sweep(tmp_path / "sweep")
    path = sweep / "points.csv"
    path.write_text(damage(path.read_text()))
    out = tmp_path / "out"
    assert main(["report", "--evals", *map(str, evals), "--sweep", str(sweep), "--out",
                 str(out)]) == 2
    (line,) = error_lines(capsys.readouterr().err)
    assert str(path) in line and problem in line
    assert main(["report", "--evals", str(evals[0]), "--sweep", str(tmp_path), "--out",
                 str(out)]) == 2
    assert "not a sweep folder" in error_lines(capsys.readouterr().err)[0]
    assert not out.exists()


# ---------------------------------------------------------------- tables and start-up


def test_one_table_writer_keeps_a_bar_in_a_cell() -> None:
    """The report's and the sweep's tables come from the same writer, which escapes a | (a
    failed point's status may hold one) so the row keeps its columns."""
    from pipeline.reporting.tables import markdown_table
    from pipeline.sweep.outputs import point_table

    text = markdown_table(("a", "b"), [("x | y", "line\nbreak")])
    assert _table(text) == [["a", "b"], ["x \\| y", "line break"]]
    row = {"budget": 1000, "num_units": 4, "status": "failed: ValueError: a|b"}
    sweep = point_table([row], ("budget", "num_units", "status"))
    assert _table(sweep) == [["budget", "N", "status"],
                             ["1000", "4", "failed: ValueError: a\\|b"]]
