"""HTML rendering: one self-contained file (inline CSS, PNGs as base64 data URIs, no script, no network)."""
from __future__ import annotations

import base64
import math
from html import escape

from .glossary import GLOSSARY
from .table import MISSING, Cell, Table, fmt

CSS = """
body{font:14px/1.45 system-ui,-apple-system,"Segoe UI",Roboto,sans-serif;color:#1d2330;background:#f5f6f8;margin:0}
main{max-width:1320px;margin:0 auto;padding:18px 28px 40px}
header{background:#1d2330;color:#fff;padding:16px 28px}
header h1{margin:0;font-size:22px;font-weight:600}
header p{margin:4px 0 0;color:#c5cad6;font-size:13px}
nav{margin-top:8px}nav a{color:#9fc3ff;margin-right:16px;text-decoration:none;font-size:13px}
section{background:#fff;border:1px solid #e1e4ea;border-radius:8px;padding:14px 20px 18px;margin:18px 0}
h2{font-size:18px;margin:4px 0 10px}h3{font-size:15px;margin:16px 0 6px;color:#3a4254}
.scroll{overflow-x:auto}
.flow{display:flex;flex-wrap:wrap;gap:6px 28px;align-items:flex-start}
.flow>div{max-width:100%}.flow>.wide{flex:1 1 100%}
.wide th,.wide td{padding:5px 6px}
#t-summary th{white-space:normal;min-width:60px;max-width:96px;vertical-align:bottom;padding:5px 6px}
#t-summary td{padding:5px 6px}
table{border-collapse:collapse;font-size:13px;margin:4px 0}
th,td{padding:5px 9px;border-bottom:1px solid #eceef2;vertical-align:top}
th{background:#f0f2f6;text-align:left;font-weight:600;white-space:nowrap;position:sticky;top:0}
td.num{text-align:right;font-variant-numeric:tabular-nums;white-space:nowrap}
td.lab{white-space:nowrap}
tr:hover td{background:#fafbfd}
.ci{display:block;color:#7a8294;font-size:11px}
.flag{color:#b3261e;font-weight:600}
.note{color:#5b6372;font-size:12px;margin:4px 0 10px}
figure{margin:8px 0;max-width:100%}
figure img{max-width:100%;height:auto;border:1px solid #eceef2;border-radius:4px}
figcaption{font-size:12px;color:#5b6372;margin-top:2px}
dl{display:grid;grid-template-columns:max-content 1fr;gap:4px 14px;font-size:13px}
dt{font-family:ui-monospace,Menlo,monospace;color:#24406e}dd{margin:0}
.runs td{font-size:12px}
"""


def _cell(value, label: bool) -> str:
    if isinstance(value, Cell):
        ci = "" if math.isnan(value.low) else f'<span class="ci">[{fmt(value.low)}, {fmt(value.high)}]</span>'
        main = MISSING if math.isnan(value.value) else fmt(value.value)
        return f'<td class="num">{main}{ci}</td>'
    text = escape(str(value))
    if label or text == "none":
        return f'<td class="lab">{text}</td>'
    return f'<td class="num">{text}</td>' if text == MISSING else f'<td class="lab flag">{text}</td>'


def html_table(table: Table, heading: bool = True) -> str:
    head = "".join(f"<th>{escape(c)}</th>" for c in table.columns)
    body = "".join("<tr>" + "".join(_cell(v, i < table.label_columns) for i, v in enumerate(row)) + "</tr>"
                   for row in table.rows)
    note = f'<p class="note">{escape(table.note)}</p>' if table.note else ""
    title = f"<h3>{escape(table.title)}</h3>" if heading else ""
    wide = " wide" if len(table.columns) > 8 else ""
    return (f'<div class="block{wide}">{title}<div class="scroll"><table id="t-{escape(table.key)}">'
            f"<thead><tr>{head}</tr></thead><tbody>{body}</tbody></table></div>{note}</div>")


def _figure(key: str, title: str, png: bytes) -> str:
    data = base64.b64encode(png).decode()
    return (f'<figure id="f-{escape(key)}"><img alt="{escape(title)}" src="data:image/png;base64,{data}">'
            f"<figcaption>{escape(title)}</figcaption></figure>")


def _runs(report) -> str:
    head = "<tr><th>model</th><th>run dir</th><th>data</th><th>n</th><th>seed</th><th>temperature</th></tr>"
    rows = "".join(f"<tr><td>{escape(r['label'])}</td><td>{escape(r['run_dir'])}</td><td>{escape(str(r['data']))}"
                   f"</td><td>{escape(str(r['n_samples']))}</td><td>{escape(str(r['seed']))}</td><td>"
                   f"{MISSING if r['temperature'] is None else fmt(r['temperature'])}</td></tr>" for r in report.run_info())
    return f'<div class="scroll"><table class="runs">{head}{rows}</table></div><h3>Headline figures</h3>'


def render_html(report) -> str:
    """The whole report as one HTML document."""
    nav = "".join(f'<a href="#{s.key}">{escape(s.title)}</a>' for s in [*report.sections])
    labels = ", ".join(r.label for r in report.runs)
    parts = [f'<section id="summary"><h2>Summary</h2>{_runs(report)}{html_table(report.summary, False)}</section>']
    for s in report.sections:
        blocks = [html_table(t, t.title != s.title) for t in s.tables] + [_figure(*f) for f in s.figures]
        parts.append(f'<section id="{escape(s.key)}"><h2>{escape(s.title)}</h2><div class="flow">'
                     + "".join(blocks) + "</div></section>")
    gloss = "".join(f"<dt>{escape(k)}</dt><dd>{escape(v)}</dd>" for k, v in GLOSSARY)
    parts.append(f'<section id="glossary"><h2>Metric definitions</h2><dl>{gloss}</dl></section>')
    return ('<!DOCTYPE html><html lang="en"><head><meta charset="utf-8">'
            '<meta name="viewport" content="width=device-width,initial-scale=1">'
            f"<title>Robustness report: {escape(labels)}</title><style>{CSS}</style></head><body>"
            f'<header><h1>Robustness report</h1><p>{escape(labels)}</p><nav><a href="#summary">Summary</a>{nav}'
            '<a href="#glossary">Definitions</a></nav></header><main>' + "".join(parts) + "</main></body></html>\n")
