"""Reading NMODL text: its top-level blocks and declarations (for `fixed_step` and
`rate_tables`, which rewrite .mod files as text)."""

from __future__ import annotations

import re
from dataclasses import dataclass


@dataclass(frozen=True)
class Block:
    """A top-level NMODL block: text[start:open_end] is its header, text[open_end:close]
    its body (close indexes its final brace)."""

    start: int
    open_end: int
    close: int


def block(text: str, header: str) -> Block | None:
    """The first block whose header (from a line start up to its `{`) matches `header`."""
    found = re.search(r"^" + header + r"[^{\n]*\{", text, re.M)
    if found is None:
        return None
    depth = 0
    for i in range(found.end() - 1, len(text)):
        depth += {"{": 1, "}": -1}.get(text[i], 0)
        if depth == 0:
            return Block(found.start(), found.end(), i)
    raise ValueError(f"unbalanced braces after {header!r}")


_V = re.compile(r"(?<![\w.])v(?![\w.])")


def code(text: str) -> str:
    """`text` without its comments (COMMENT blocks, and `:` to the end of a line)."""
    text = re.sub(r"\bCOMMENT\b.*?\bENDCOMMENT\b", "", text, flags=re.S)
    return "\n".join(line.split(":")[0] for line in text.splitlines())


def reads_v(expression: str) -> bool:
    """Whether NMODL code mentions the membrane potential v (as a name of its own)."""
    return _V.search(expression) is not None


def body(text: str, found: Block) -> str:
    return text[found.open_end:found.close]


def declared(text: str, header: str) -> set[str]:
    """Names declared in a block such as PARAMETER, ASSIGNED or STATE (one per line)."""
    found = block(text, header)
    return set() if found is None else {
        m.group(1) for m in re.finditer(r"^\s*(\w+)", body(text, found), re.M)}


def neuron_block_names(text: str, keyword: str) -> set[str]:
    """Names the NEURON block lists after `keyword` (RANGE, GLOBAL, ...)."""
    found = block(text, "NEURON")
    if found is None:
        return set()
    return {name for line in re.findall(r"^\s*" + keyword + r"\b([^\n:]*)", body(text, found),
                                        re.M)
            for name in re.split(r"[\s,]+", line) if name}
