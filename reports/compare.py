"""Renderings of a comparison of compressed models with their original: tables (terminal, Markdown), a tidy CSV and
JSON. Every number comes from `robustbench_local.compare`; nothing is computed here but ratios for display."""
from __future__ import annotations

import json
from dataclasses import asdict

import pandas as pd

from robustbench_local.compare import Comparison, MetricChange

from .render_md import md_code, md_table, md_text
from .table import MISSING, Table

CSV_COLUMNS = ["model", "section", "condition", "metric", "higher_is_better", "original", "value", "change", "ci_low",
               "ci_high", "n"]
FACTS_SECTION = "model"  # the CSV's section of size, parameters, sparsity and latency rows
FACTS = (("size_bytes", "size on disk (bytes)", False), ("parameters", "parameters", False),
         ("sparsity", "sparsity of conv/linear weights", True))  # (field, label, shown as a difference)


def _signed(x: float) -> str:
    return f"{x:+.4f}"


def _change_text(c: MetricChange) -> str:
    return f"{_signed(c.change)} [{_signed(c.ci_low)}, {_signed(c.ci_high)}]"


def metric_tables(comparison: Comparison) -> list[Table]:
    """One table per suite: each headline metric and condition, the original's value, each compressed model's value
    and its change (compressed − original) with the paired-bootstrap 95% interval."""
    others = list(comparison.runs)[1:]
    columns = ["condition", "metric", comparison.original]
    for name in others:
        columns += [name, f"change {name} [95% CI]"]
    tables: dict[str, dict[tuple[str, str], list]] = {}
    for c in comparison.changes:
        arrow = "↑" if c.higher_is_better else "↓"
        row = tables.setdefault(c.suite, {}).setdefault((c.condition, c.metric),
                                                       [c.condition, f"{c.metric} {arrow}", f"{c.original:.4f}"])
        row += [f"{c.value:.4f}", _change_text(c)]
    return [Table(suite, columns, list(rows.values()),
                  note="change = compressed − original; ↑ higher is better, ↓ lower is better; 95% intervals from a "
                       "paired bootstrap over the same resamples of the sample ids", label_columns=2, key=suite)
            for suite, rows in tables.items()]


def _ratio(value: float | None, original: float | None) -> str:
    return "" if value is None or not original else f" (×{value / original:.2f})"


def facts_table(comparison: Comparison) -> Table | None:
    """Size on disk, parameter count, sparsity and CPU latency per image of every model (None in a comparison of
    run directories, which has no models at hand)."""
    if not comparison.facts:
        return None
    original = comparison.facts[0]
    rows = []
    for field, label, difference in FACTS:
        row = [label]
        for i, facts in enumerate(comparison.facts):
            value, base = getattr(facts, field), getattr(original, field)
            if value is None:
                row.append(MISSING)
                continue
            text = f"{value:.4f}" if isinstance(value, float) else f"{value:,}"
            if i and difference:
                text += f" ({_signed(value - base)})" if base is not None else ""
            elif i:
                text += _ratio(value, base)
            row.append(text)
        rows.append(row)
    for size in dict.fromkeys(t.batch_size for t in comparison.latency):
        ms = {t.model: t.ms_per_image for t in comparison.latency if t.batch_size == size}
        rows.append([f"latency ms/image, batch {size}"]
                    + [f"{ms[f.name]:.3f}" + (_ratio(ms[f.name], ms[original.name]) if i else "")
                       for i, f in enumerate(comparison.facts)])
    sizes = "; ".join(f"{f.name}: {f.size_of}" for f in comparison.facts)
    note = f"size of: {sizes}. (×r): ratio to {original.name}."
    if comparison.latency_setup is not None:
        note += f" {comparison.latency_setup.describe()}."
    return Table("models", ["", *(f.name for f in comparison.facts)], rows, note=note, key="models")


def tables(comparison: Comparison) -> list[Table]:
    facts = facts_table(comparison)
    return [*metric_tables(comparison), *([facts] if facts else [])]


def text_table(table: Table) -> str:
    """A table as aligned plain text with its title above and its note below."""
    rows = [table.columns, *table.rows]
    widths = [max(len(str(r[i])) for r in rows) for i in range(len(table.columns))]
    lines = ["  ".join(str(v).ljust(w) for v, w in zip(r, widths, strict=True)).rstrip() for r in rows]
    lines.insert(1, "  ".join("-" * w for w in widths))
    return "\n".join([table.title, *lines, *([table.note] if table.note else [])])


def text(comparison: Comparison) -> str:
    """The comparison for the terminal: one block per table."""
    return "\n\n".join(text_table(t) for t in tables(comparison))


def _header(comparison: Comparison) -> list[str]:
    first = next(iter(comparison.runs.values()))
    lines = [f"Data {md_code(first.manifest.get('data'))} (n={first.manifest.get('n_samples')}), seed "
             f"{comparison.seed}; runs:"]
    lines += [f"- **{md_text(name)}**: {md_code(comparison.specs[name])} → {md_code(run.root)}"
              for name, run in comparison.runs.items()]
    return lines


def markdown(comparison: Comparison) -> str:
    """compare.md: the runs, then each table with its title and note."""
    out = ["## Compressed models side by side", "", *_header(comparison), ""]
    for table in tables(comparison):
        out += [f"### {md_text(table.title)}", "", md_table(table), "", md_text(table.note), ""]
    return "\n".join(out)


def csv_frame(comparison: Comparison) -> pd.DataFrame:
    """compare.csv: one tidy row per (model, section, condition, metric): the metric changes, then the models'
    size, parameters, sparsity and latency (condition: the batch size), with the original's value beside."""
    rows = [{**{k: v for k, v in asdict(c).items() if k != "suite"}, "section": c.suite} for c in comparison.changes]
    by_name = {f.name: f for f in comparison.facts}
    original = comparison.original
    for f in comparison.facts:
        for field, _, _ in FACTS:
            value, base = getattr(f, field), getattr(by_name[original], field)
            rows.append({"model": f.name, "section": FACTS_SECTION, "condition": "", "metric": field,
                         "higher_is_better": None, "original": base, "value": value,
                         "change": None if value is None or base is None else value - base})
    latency = {(t.model, t.batch_size): t.ms_per_image for t in comparison.latency}
    for (name, size), ms in latency.items():
        base = latency[(original, size)]
        rows.append({"model": name, "section": FACTS_SECTION, "condition": f"batch {size}",
                     "metric": "latency_ms_per_image", "higher_is_better": None, "original": base, "value": ms,
                     "change": ms - base})
    return pd.DataFrame(rows, columns=CSV_COLUMNS).astype({"n": "Int64"})


def to_json(comparison: Comparison) -> str:
    """compare.json: the runs, the metric changes, the models' facts and every latency repetition."""
    setup = comparison.latency_setup
    doc = {"original": comparison.original, "seed": comparison.seed,
           "runs": {name: {"spec": comparison.specs[name], "run_dir": str(run.root)}
                    for name, run in comparison.runs.items()},
           "changes": [asdict(c) for c in comparison.changes],
           "models": [asdict(f) for f in comparison.facts],
           "latency": None if setup is None else {**asdict(setup), "description": setup.describe(),
                                                  "results": [asdict(t) for t in comparison.latency]}}
    return json.dumps(doc, indent=1, default=str)
