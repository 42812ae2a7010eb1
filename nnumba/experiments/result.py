"""What an experiment returns: the lecture's claim, a table, the numbers, the figures."""
from dataclasses import dataclass, field


@dataclass
class Result:
    name: str
    claim: str                      # the lecture's claim the experiment reproduces
    table: str                      # printable, as the lecture shows it
    numbers: dict = field(default_factory=dict)   # the claim's numbers (JSON-friendly)
    figures: list = field(default_factory=list)   # PNG paths written
    notes: list = field(default_factory=list)     # what to know (e.g. how to get figures)

    def __str__(self) -> str:
        parts = [f"== {self.name}: {self.claim}", self.table]
        parts += [f"figure: {path}" for path in self.figures]
        parts += [f"note: {note}" for note in self.notes]
        return "\n".join(parts)


def format_table(headers, rows) -> str:
    """Columns aligned on the widest cell; cells are str() of what is given."""
    cells = [[str(h) for h in headers]] + [[str(c) for c in row] for row in rows]
    widths = [max(len(row[i]) for row in cells) for i in range(len(headers))]
    lines = ["  ".join(c.rjust(w) for c, w in zip(row, widths)) for row in cells]
    lines.insert(1, "  ".join("-" * w for w in widths))
    return "\n".join(lines)


def percent(fraction: float) -> str:
    return f"{100 * fraction:.2f}%"


def vector(values, spec: str = "g") -> str:
    """(v1, v2, ...), each value formatted with ``spec``."""
    return "(" + ", ".join(format(v, spec) for v in values) + ")"
