"""A CONDUCTANCE hint for a current linear in v, so that a fast-kinetics step evaluates each
channel's current once instead of twice.

For the matrix of a fixed step NEURON needs each mechanism's di/dv; without a hint nocmodl
takes it as a difference quotient, evaluating the BREAKPOINT current at v + 0.001 mV and at v
(every channel, every compartment, every step). `CONDUCTANCE g USEION x` in the BREAKPOINT
block hands it g instead, with one evaluation. For i = g * (v - e) with g and e free of v that
is di/dv itself (the quotient gives it up to rounding), so the run is the same up to rounding.

`conductance_hinted` adds the hint where the text shows that form: the mechanism writes one
current (one USEION's `i<ion>`, or one NONSPECIFIC_CURRENT), assigned as `i = g * (v - e)`,
and no other statement of its BREAKPOINT reads v or calls a function. A BREAKPOINT may also
state di/dv itself by assigning `didv` (the NMDA synapse, whose Mg block makes g a function of
v, does); the hint then names it. Anything else (several currents, a current of v without
`didv`) is left as it is.
"""

from __future__ import annotations

import re

from biophys_models.mod_text import block, body, code, neuron_block_names, reads_v

#: The name a BREAKPOINT assigns its current's di/dv to, where the current is not linear in v.
DERIVATIVE = "didv"
_LINEAR = re.compile(r"(\w+)\s*=\s*(\w+)\s*\*\s*\(\s*v\s*-\s*(\w+)\s*\)")
_SOLVE = re.compile(r"^\s*SOLVE\b[^\n]*\n", re.M)


def _currents(text: str) -> dict[str, str | None]:
    """The currents a mechanism writes: name -> its ion (None for a nonspecific one)."""
    found = block(text, "NEURON")
    currents: dict[str, str | None] = dict.fromkeys(
        neuron_block_names(text, "NONSPECIFIC_CURRENT"))
    for ion, written in re.findall(r"^\s*USEION\s+(\w+)\b[^\n]*?\bWRITE\s+([\w\s,]+?)\s*"
                                   r"(?:\bVALENCE\b[^\n]*)?$", body(text, found), re.M):
        for name in re.split(r"[\s,]+", written):
            if name == f"i{ion}":
                currents[name] = ion
    return currents


def _linear_conductance(statements: list[str], current: str) -> str | None:
    """g where `current` is assigned as g * (v - e) and no other statement reads v or calls a
    function; None otherwise."""
    conductance = None
    for statement in statements:
        linear = _LINEAR.fullmatch(statement)
        if linear and linear.group(1) == current:
            conductance = linear.group(2)
        elif reads_v(statement) or re.search(r"\w\s*\(", statement):
            return None
    return conductance


def conductance_hinted(text: str) -> str | None:
    """`text` with `CONDUCTANCE g [USEION x]` after its SOLVE statement, or None where the
    module docstring's conditions do not hold."""
    breakpoint_ = block(text, "BREAKPOINT")
    if breakpoint_ is None or block(text, "NEURON") is None:
        return None
    currents = _currents(text)
    statements = [s.strip() for s in _SOLVE.sub("", code(body(text, breakpoint_)) + "\n")
                  .splitlines() if s.strip()]
    if len(currents) != 1 or any(s.startswith("CONDUCTANCE") for s in statements):
        return None
    (current, ion), = currents.items()
    if any(re.match(DERIVATIVE + r"\s*=(?!=)", s) for s in statements):
        conductance = DERIVATIVE
    else:
        conductance = _linear_conductance(statements, current)
    if conductance is None:
        return None
    hint = f"    CONDUCTANCE {conductance}" + (f" USEION {ion}" if ion else "") + "\n"
    inner = body(text, breakpoint_)
    solve = _SOLVE.search(inner)
    at = solve.end() if solve else inner.index("\n") + 1
    return text[:breakpoint_.open_end] + inner[:at] + hint + inner[at:] + \
        text[breakpoint_.close:]
