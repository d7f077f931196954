"""The pure parts of the parameter-budget sweep: the grid of (N, k_e, k_c) that spends a
budget, the Pareto frontier, power-law fits with confidence intervals, and the sweep's
narrative: the one wording of what it found, which sweep.md and the report both print.

No I/O here: pipeline/sweep/runner.py runs the points, pipeline/sweep/outputs.py writes the
files. numpy, scipy and the model (torch) are imported where they compute, so that the sweep
stage's `--help` can take the defaults below for free.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    import numpy as np

DEFAULT_UNITS = (1, 4, 16, 64, 256, 1024, 4096)
DEFAULT_COMPLEXITIES = (1, 2, 4, 8, 16, 32)
DEFAULT_TOLERANCE = 0.1
DEFAULT_MIN_CONNECTIVITY = 4
CONFIDENCE = 0.95
MIN_FIT_SPAN = 2.0  # largest x over smallest x of a power-law fit


@dataclass(frozen=True)
class GridPoint:
    """One network of the sweep: the budget it spends and its (N, k_e, k_c)."""

    budget: int
    num_units: int
    complexity: int
    connectivity: int
    params: int

    @property
    def name(self) -> str:
        return f"N{self.num_units}_ke{self.complexity}_kc{self.connectivity}"


def parse_budgets(text: str) -> list[int]:
    """'1e3,1e4' -> [1000, 10000]; each budget an integer count of at least 100."""
    budgets = []
    for part in text.split(","):
        try:
            value = float(part)
        except ValueError:
            raise ValueError(f"{part.strip()!r} is not a number") from None
        if not math.isfinite(value) or value < 100 or value != round(value):
            raise ValueError(f"{part.strip()!r}: a budget must be a whole number >= 100")
        budgets.append(int(round(value)))
    if len(set(budgets)) != len(budgets):
        raise ValueError("a budget is listed twice")
    return sorted(budgets)


def parse_sizes(text: str) -> list[int]:
    """'1,4,16' -> [1, 4, 16]; each a positive integer."""
    try:
        sizes = sorted({int(part) for part in text.split(",")})
    except ValueError:
        raise ValueError(f"{text!r} is not a comma-separated list of integers") from None
    if not sizes or sizes[0] < 1:
        raise ValueError(f"{text!r}: sizes must be >= 1")
    return sizes


def budget_grid(budget: int, units: Iterable[int], complexities: Iterable[int],
                num_inputs: int, recurrent_fraction: float,
                tolerance: float = DEFAULT_TOLERANCE,
                min_connectivity: int = DEFAULT_MIN_CONNECTIVITY,
                learn_tau_m: bool = False) -> list[GridPoint]:
    """Every (N, k_e) of the grid whose remaining budget per unit gives a valid k_c.

    k_c = round((P - 2) / N - c(k_e)), c the unit's own parameters, capped at what a unit
    can read (num_inputs + N - 1); the point is kept when k_c >= min_connectivity and the
    network's exact count lies within `tolerance` of P.
    """
    from surrogates.elm_network import connection_counts, param_budget, unit_params

    points = []
    for n in sorted(set(units)):
        for k_e in sorted(set(complexities)):
            own = unit_params(k_e, 0, learn_tau_m)
            k_c = min(math.floor((budget - 2) / n - own + 0.5), num_inputs + n - 1)
            if k_c < min_connectivity:
                continue
            try:
                connection_counts(num_inputs, n, k_c, recurrent_fraction)
            except ValueError:
                continue
            params = param_budget(n, k_e, k_c, learn_tau_m)
            if abs(params - budget) <= tolerance * budget:
                points.append(GridPoint(budget, n, k_e, k_c, params))
    return points


def pareto_frontier(params: Sequence[float], score: Sequence[float]) -> list[int]:
    """Indices of the Pareto-optimal points (PARETO), by increasing parameter count; NaN
    scores never count."""
    order = sorted((p, -s, i) for i, (p, s) in enumerate(zip(params, score, strict=True))
                   if math.isfinite(s))
    frontier, best = [], -math.inf
    for _, neg_score, index in order:
        if -neg_score > best:
            frontier.append(index)
            best = -neg_score
    return frontier


@dataclass(frozen=True)
class PowerLaw:
    """y = prefactor * x^exponent, fitted on log-log axes; the interval is the CONFIDENCE
    t-interval of the slope (NaN with fewer than 3 points)."""

    exponent: float
    low: float
    high: float
    prefactor: float
    num_points: int
    r_squared: float

    def __call__(self, x: np.ndarray) -> np.ndarray:
        import numpy as np

        return self.prefactor * np.asarray(x, dtype=np.float64) ** self.exponent

    def describe(self, digits: int = 3) -> str:
        if not math.isfinite(self.low):
            interval = "no interval from fewer than 3 points"
        elif self.low == self.high:
            interval = "the points lie exactly on the law"
        else:
            interval = f"{CONFIDENCE:.0%} CI [{self.low:.{digits}f}, {self.high:.{digits}f}]"
        return f"{self.exponent:.{digits}f} ({interval}; {self.num_points} points)"


def fit_power_law(x: Sequence[float], y: Sequence[float]) -> PowerLaw:
    """Least squares of log y on log x (scipy linregress); x and y must be > 0."""
    import numpy as np
    from scipy import stats

    lx, ly = np.log(np.asarray(x, dtype=np.float64)), np.log(np.asarray(y, dtype=np.float64))
    if len(lx) < 2 or not (np.all(np.isfinite(lx)) and np.all(np.isfinite(ly))):
        raise ValueError("a power-law fit needs at least 2 points with positive x and y")
    if np.ptp(lx) < math.log(MIN_FIT_SPAN):  # else the slope is noise over a tiny lever
        raise ValueError(f"a power-law fit needs x spanning at least a factor of "
                         f"{MIN_FIT_SPAN:g}")
    fit = stats.linregress(lx, ly)
    low = high = math.nan
    if len(lx) >= 3:
        half = stats.t.ppf(0.5 + CONFIDENCE / 2, len(lx) - 2) * fit.stderr
        low, high = fit.slope - half, fit.slope + half
    return PowerLaw(float(fit.slope), float(low), float(high), float(math.exp(fit.intercept)),
                    len(lx), float(fit.rvalue ** 2))


def optimum_per_budget(rows: Sequence[Mapping[str, Any]], key: str = "spike_auc"
                       ) -> dict[int, Mapping[str, Any]]:
    """The row with the highest `key` of every budget (rows without a finite value skipped)."""
    best: dict[int, Mapping[str, Any]] = {}
    for row in rows:
        value = row.get(key)
        if value is None or not math.isfinite(value):
            continue
        budget = int(row["budget"])
        if budget not in best or value > best[budget][key]:
            best[budget] = row
    return dict(sorted(best.items()))


def direction(values: Sequence[float]) -> str:
    """'grows', 'shrinks', 'stays' or 'no monotone trend' along a sequence."""
    import numpy as np

    steps = np.diff(np.asarray(values, dtype=np.float64))
    if len(steps) == 0 or np.all(steps == 0):
        return "stays"
    if np.all(steps >= 0):
        return "grows"
    if np.all(steps <= 0):
        return "shrinks"
    return "no monotone trend"


@dataclass(frozen=True)
class Analysis:
    """What sweep.md and the report say beyond the table of points."""

    frontier: list[dict[str, Any]]
    fit: PowerLaw | None
    optima: dict[int, dict[str, Any]]
    units_trend: PowerLaw | None
    complexity_trend: PowerLaw | None


def _fit_or_none(x: list[float], y: list[float]) -> PowerLaw | None:
    try:
        return fit_power_law(x, y)
    except ValueError:
        return None


def analyse(rows: list[dict[str, Any]]) -> Analysis:
    """Pareto frontier of spike AUC over parameters, its power law (1 - AUC = c P^b), the
    optimum of every budget and how N and k_e of the optimum scale with the budget."""
    scored = [r for r in rows if math.isfinite(r["spike_auc"])]
    front = [scored[i] for i in pareto_frontier([r["params"] for r in scored],
                                                [r["spike_auc"] for r in scored])]
    usable = [r for r in front if r["spike_auc"] < 1]
    fit = _fit_or_none([r["params"] for r in usable], [1 - r["spike_auc"] for r in usable])
    optima = {b: dict(r) for b, r in optimum_per_budget(scored).items()}
    budgets = [float(b) for b in optima]
    return Analysis(front, fit, optima,
                    _fit_or_none(budgets, [float(r["num_units"]) for r in optima.values()]),
                    _fit_or_none(budgets, [float(r["complexity"]) for r in optima.values()]))


def budgets_of(rows: Iterable[Mapping[str, Any]]) -> list[int]:
    """The budgets the rows were swept at, in increasing order."""
    return sorted({int(row["budget"]) for row in rows})


# ---------------------------------------------------------------- the sweep in words
# One wording for sweep.md (pipeline/sweep/outputs.py) and the report's sweep section
# (pipeline/reporting/sweep_section.py): each lays these pieces out its own way.

TITLE = "ELM network: splitting a parameter budget"
NO_BUDGETS = ("No budgets were given, so nothing was swept (the default of params.yaml; set "
              "sweep.budgets there, e.g. [1e3, 1e4, 1e5], to run it).")
NOISE = ("One training run per point: differences of a few 1e-3 in AUC are within run-to-run "
         "noise.")
OPTIMUM = "Optimum per budget (highest spike AUC)"
PARETO = "no point with as few or fewer parameters scores higher"
QUESTION = "Does the optimum move towards more and more complex neurons?"
PLANE = "spike AUC over (N, k_e); k_c spends the rest of the budget"


def fit_sentence(result: Analysis) -> str:
    """The frontier's power law in words."""
    if result.fit is None:
        return ("No power-law fit: it needs Pareto-optimal points spanning at least a factor "
                f"of {MIN_FIT_SPAN:g} in parameters.")
    return (f"The Pareto frontier fits 1 - AUC = {result.fit.prefactor:.3g} P^b with "
            f"b = {result.fit.describe()}, R^2 = {result.fit.r_squared:.3f}.")


def trend_lines(result: Analysis) -> list[str]:
    """How N and k_e of the per-budget optimum scale with the budget, one line each."""
    return [f"{label} of the optimum ~ P^a with a = {trend.describe(2)}"
            for label, trend in (("N", result.units_trend), ("k_e", result.complexity_trend))
            if trend is not None]


PHRASES = {"grows": "grows", "shrinks": "shrinks", "stays": "stays the same",
           "no monotone trend": "moves without a monotone trend"}


def answer(optima: Mapping[int, Mapping[str, Any]]) -> str:
    """The answer to QUESTION: whether the optimum moves towards more and more complex
    neurons as the budget grows."""
    if len(optima) < 2:
        return "Needs at least two budgets with a scored point."
    units = direction([row["num_units"] for row in optima.values()])
    complexity = direction([row["complexity"] for row in optima.values()])
    both = (f"from budget to budget the optimum's number of units {PHRASES[units]} and its "
            f"complexity {PHRASES[complexity]}")
    verdict = ("Yes" if units == complexity == "grows" else
               "Partly" if "grows" in (units, complexity) else "No")
    return f"{verdict}: {both}, on this data and with this training."
