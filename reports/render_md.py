"""Markdown rendering (fits a pull-request comment): tables, and links to the PNGs written next to it."""
from __future__ import annotations

import html
import re

from .glossary import GLOSSARY
from .table import Cell, Table


def md_text(value: object) -> str:
    """`value` as literal Markdown text, also inside a table cell: HTML is shown, not interpreted (&, <, >
    become entities), `|` does not end a cell, `[`/`]` start no link, and line breaks become spaces."""
    text = html.escape(str(value), quote=False)
    text = re.sub(r"([\\|\[\]])", r"\\\1", text)
    return re.sub(r"[\r\n]+", " ", text)


def md_code(value: object) -> str:
    """`value` as an inline code span (shown verbatim): fenced by more backticks than any run inside it."""
    text = re.sub(r"[\r\n]+", " ", str(value))
    fence = "`" * (max((len(run) for run in re.findall("`+", text)), default=0) + 1)
    pad = " " if text.startswith("`") or text.endswith("`") else ""
    return f"{fence}{pad}{text}{pad}{fence}"


def md_table(table: Table) -> str:
    lines = ["| " + " | ".join(md_text(c) for c in table.columns) + " |",
             "|" + "|".join("---" if i < table.label_columns else "--:" for i in range(len(table.columns))) + "|"]
    lines += ["| " + " | ".join(v.text if isinstance(v, Cell) else md_text(v) for v in row) + " |"
              for row in table.rows]
    return "\n".join(lines)


def render_md(report, figure_dir: str) -> str:
    """The report as Markdown; figures are linked as `figure_dir/<key>.png`."""
    out = ["## Robustness report", ""]
    out += [f"- **{md_text(r['label'])}**: {md_code(r['run_dir'])} — data {md_text(r['data'])} "
            f"(n={md_text(r['n_samples'])}), seed {md_text(r['seed'])}, "
            f"temperature {r['temperature'] if r['temperature'] is None else format(r['temperature'], '.3f')}"
            for r in report.run_info()]
    out += ["", "### Summary", "", md_table(report.summary), "", f"_{md_text(report.summary.note)}_", ""]
    for section in report.sections:  # folded, so that a pull-request comment shows the summary first
        out += [f"<details><summary><b>{html.escape(section.title)}</b></summary>", ""]
        for table in section.tables:
            out += ([] if table.title == section.title else [f"**{md_text(table.title)}**", ""]) + [md_table(table), ""]
            if table.note:
                out += [f"_{md_text(table.note)}_", ""]
        for key, title, _ in section.figures:
            out += [f"![{md_text(title)}]({figure_dir}/{key}.png)", ""]
        out += ["</details>", ""]
    out += ["<details><summary>Metric definitions</summary>", ""]
    out += [f"- `{name}`: {text}" for name, text in GLOSSARY]
    out += ["", "</details>", ""]
    return "\n".join(out)
