"""Renderings of gate verdicts: a terminal/Markdown table and JUnit XML for CI systems."""
from __future__ import annotations

import xml.etree.ElementTree as ET

from robustbench_local.gate import Verdict

from .render_md import md_text


def _fmt(x: float | None) -> str:
    return "—" if x is None else f"{x:.4f}"


def verdict_rows(verdicts: list[Verdict]) -> list[tuple[str, ...]]:
    """(status, rule, where, baseline, candidate, change [90% two-sided], method) per verdict."""
    rows = []
    for v in verdicts:
        if v.change is None:
            measured = f"value {v.candidate:.4f} [95% CI {v.low:.4f}, {v.high:.4f}]"
        else:
            measured = f"{v.rule.kind.split('_')[1]} {v.change:+.4f} (one-sided 95% bound {v.low:+.4f})"
        rows.append(("PASS" if v.passed else "FAIL", str(v.rule), f"{v.suite}/{v.condition}", _fmt(v.baseline),
                     _fmt(v.candidate), measured, v.method))
    return rows


HEADER = ("status", "rule", "suite/condition", "baseline", "candidate", "measured", "method")


def text_table(verdicts: list[Verdict]) -> str:
    rows = [HEADER, *verdict_rows(verdicts)]
    widths = [max(len(r[i]) for r in rows) for i in range(len(HEADER))]
    return "\n".join("  ".join(c.ljust(w) for c, w in zip(r, widths, strict=True)).rstrip() for r in rows)


def markdown(verdicts: list[Verdict]) -> str:
    failed = sum(not v.passed for v in verdicts)
    title = f"### Robustness gate: {'FAILED' if failed else 'passed'} ({failed} of {len(verdicts)} checks failed)"
    lines = [title, "", "| " + " | ".join(HEADER) + " |", "|" + "---|" * len(HEADER)]
    lines += ["| " + " | ".join(md_text(c) for c in r) + " |" for r in verdict_rows(verdicts)]
    return "\n".join(lines) + "\n"


def junit_xml(verdicts: list[Verdict]) -> bytes:
    failed = sum(not v.passed for v in verdicts)
    suite = ET.Element("testsuite", name="rbl gate", tests=str(len(verdicts)), failures=str(failed), errors="0")
    for v, row in zip(verdicts, verdict_rows(verdicts), strict=True):
        case = ET.SubElement(suite, "testcase", classname=f"{v.suite}.{v.condition}", name=str(v.rule))
        if not v.passed:
            ET.SubElement(case, "failure", message=f"{v.rule} on {v.suite}/{v.condition}: {row[5]}").text = row[6]
    return ET.tostring(ET.ElementTree(suite).getroot(), encoding="utf-8", xml_declaration=True)
