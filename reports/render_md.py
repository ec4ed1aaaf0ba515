"""Markdown rendering (fits a pull-request comment): tables, and links to the PNGs written next to it."""
from __future__ import annotations

from .glossary import GLOSSARY
from .table import Table


def _escape(text: str) -> str:
    return text.replace("|", "\\|").replace("\n", " ")


def md_table(table: Table) -> str:
    lines = ["| " + " | ".join(_escape(c) for c in table.columns) + " |",
             "|" + "|".join("---" if i < table.label_columns else "--:" for i in range(len(table.columns))) + "|"]
    lines += ["| " + " | ".join(_escape(v) for v in row) + " |" for row in table.text_rows()]
    return "\n".join(lines)


def render_md(report, figure_dir: str) -> str:
    """The report as Markdown; figures are linked as `figure_dir/<key>.png`."""
    out = ["## Robustness report", ""]
    out += [f"- **{r['label']}**: `{r['run_dir']}` — data {r['data']} (n={r['n_samples']}), seed {r['seed']}, "
            f"temperature {r['temperature'] if r['temperature'] is None else format(r['temperature'], '.3f')}"
            for r in report.run_info()]
    out += ["", "### Summary", "", md_table(report.summary), "", f"_{report.summary.note}_", ""]
    for section in report.sections:  # folded, so that a pull-request comment shows the summary first
        out += [f"<details><summary><b>{section.title}</b></summary>", ""]
        for table in section.tables:
            out += ([] if table.title == section.title else [f"**{table.title}**", ""]) + [md_table(table), ""]
            if table.note:
                out += [f"_{table.note}_", ""]
        for key, title, _ in section.figures:
            out += [f"![{title}]({figure_dir}/{key}.png)", ""]
        out += ["</details>", ""]
    out += ["<details><summary>Metric definitions</summary>", ""]
    out += [f"- `{name}`: {text}" for name, text in GLOSSARY]
    out += ["", "</details>", ""]
    return "\n".join(out)
