"""Report tables: cells that keep value and interval, tables with a title and a note."""
from __future__ import annotations

import math
from dataclasses import dataclass

MISSING = "—"  # the text of a cell the run has no value for


@dataclass(frozen=True)
class Cell:
    """A number with its 95% interval (low/high may be NaN: no interval for this metric)."""

    value: float
    low: float = math.nan
    high: float = math.nan
    n: int | None = None

    @property
    def text(self) -> str:
        if self.value is None or math.isnan(self.value):
            return MISSING
        if math.isnan(self.low):
            return fmt(self.value)
        return f"{fmt(self.value)} [{fmt(self.low)}, {fmt(self.high)}]"

    def to_json(self) -> dict:
        clean = {k: (None if v is None or (isinstance(v, float) and math.isnan(v)) else v)
                 for k, v in (("value", self.value), ("ci_low", self.low), ("ci_high", self.high))}
        return {**clean, "n": self.n, "text": self.text}


def fmt(x: float) -> str:
    """Three decimals: every report number is a fraction, an ECE or a score difference."""
    return f"{x:.3f}"


def cell_from_row(row) -> Cell:
    """Cell of one metrics.csv row."""
    n = row.get("n")
    return Cell(float(row["value"]), float(row["ci_low"]), float(row["ci_high"]),
                None if n is None or (isinstance(n, float) and math.isnan(n)) else int(n))


Value = Cell | str


@dataclass
class Table:
    """A titled grid; the first `label_columns` columns are labels, the rest are Cells or text."""

    title: str
    columns: list[str]
    rows: list[list[Value]]
    note: str = ""
    label_columns: int = 1
    key: str = ""

    def to_json(self) -> dict:
        return {"key": self.key, "title": self.title, "note": self.note, "columns": self.columns,
                "rows": [[v.to_json() if isinstance(v, Cell) else v for v in row] for row in self.rows]}


def drop_empty(table: Table) -> Table | None:
    """Drop value columns that no row fills and rows with no value; None when nothing is left."""
    k = table.label_columns
    keep = [i for i in range(len(table.columns)) if i < k or any(r[i] != MISSING for r in table.rows)]
    table.columns = [table.columns[i] for i in keep]
    table.rows = [[r[i] for i in keep] for r in table.rows if any(v != MISSING for v in r[k:])]
    return table if table.rows and len(keep) > k else None
