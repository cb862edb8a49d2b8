"""Format a summary (see `summary.summarise`) as rich tables, Markdown, HTML, CSV or JSON.

The public functions are `format_*` (a whole report in one format) and `paper_grid` (the
cells of the paper layout, which plots.py draws too). Nothing here is called "render": in
coopbench that word means drawing an env frame (`env.render()`, `core/animation.py`).
"""

from __future__ import annotations

import csv
import html
import io
import json
import math
from collections.abc import Callable
from typing import Any

from rich.console import Group
from rich.markup import escape
from rich.table import Table
from rich.text import Text

from coopbench.core.metrics import Metric
from coopbench.core.metrics import reported as reported_metrics
from coopbench.reporting.labels import IDENTICAL_MARK

FORMATS = ("table", "md", "html", "json", "csv")


def _num(x: float | None, digits: int = 1) -> str:
    if x is None or (isinstance(x, float) and math.isnan(x)):
        return "—"
    return f"{x:.{digits}f}"


def _pm(metric: dict[str, float], digits: int = 1) -> str:
    return f"{_num(metric['mean'], digits)} ± {_num(metric['se'], digits)}"


def _rate_ci(rate: float, low: float, high: float) -> str:
    return f"{_num(rate, 2)} [{_num(low, 2)}, {_num(high, 2)}]"


def _metric_cell(metric: Metric) -> Callable[[dict], str]:
    """How a cell row shows one metric of the metrics table."""
    if metric.aggregate == "wilson":
        return lambda r: _rate_ci(r[metric.report], *r[f"{metric.name}_ci"])
    return lambda r: _pm(r[metric.report], metric.digits)


CELL_COLUMNS: list[tuple[str, Callable[[dict], str]]] = [
    ("task", lambda r: r["env"]),
    ("algorithm", lambda r: r["algorithm"]),
    ("seeds", lambda r: f"{r['seeds']} {IDENTICAL_MARK}" if r.get("identical_episodes")
     else str(r["seeds"])),
    *((m.label, _metric_cell(m)) for m in reported_metrics()),
    ("errors", lambda r: str(r["errors"])),
]

AGG_COLUMNS: list[tuple[str, Callable[[dict], str]]] = [
    ("algorithm", lambda r: r["algorithm"]),
    ("tasks", lambda r: str(r["tasks"])),
    ("seeds", lambda r: str(r["seeds"])),
    ("IQM success [95% CI]", lambda r: f"{_num(r['iqm_success']['point'], 2)} "
     f"[{_num(r['iqm_success']['low'], 2)}, {_num(r['iqm_success']['high'], 2)}]"),
    ("mean success", lambda r: _num(r["mean_success"], 2)),
    ("mean queries", lambda r: _num(r["mean_llm_queries"], 1)),
]

POI_COLUMNS: list[tuple[str, Callable[[dict], str]]] = [
    ("X", lambda r: r["x"]),
    ("Y", lambda r: r["y"]),
    ("tasks", lambda r: str(r["tasks"])),
    ("P(X > Y) [95% CI]", lambda r: f"{_num(r['p'], 2)} [{_num(r['low'], 2)}, "
                                    f"{_num(r['high'], 2)}]"),
]


def _sections(summary: dict[str, Any]) -> list[tuple[str, list, list[dict]]]:
    return [
        ("Per cell (seed = unit; ± = standard error)", CELL_COLUMNS, summary["cells"]),
        ("Across tasks (IQM, stratified bootstrap)", AGG_COLUMNS, summary["aggregates"]),
        ("Probability of improvement", POI_COLUMNS, summary["improvement"]),
    ]


def _status_lines(summary: dict[str, Any]) -> list[str]:
    lines = []
    for run in summary["runs"]:
        if run["status"] != "complete":
            detail = f": {run['status_detail']}" if run.get("status_detail") else ""
            lines.append(f"run {run['name']} is {run['status']}{detail}")
    return lines


def _skipped_lines(summary: dict[str, Any]) -> list[str]:
    return [f"skipped {s['env']} × {s['planner']}: {s['reason']}" for s in summary["skipped"]]


def format_rich(summary: dict[str, Any]) -> Group:
    parts: list[Any] = []
    for line in summary["notes"] + _status_lines(summary):
        parts.append(Text(line, style="yellow"))  # Text: never parsed as markup
    for title, columns, rows in _sections(summary):
        if not rows:
            continue
        table = Table(title=title, title_justify="left")
        for name, _ in columns:
            table.add_column(name, overflow="fold")
        for row in rows:
            style = "magenta" if row.get("simulated") else None
            table.add_row(*(escape(fn(row)) for _, fn in columns), style=style)
        parts.append(table)
    parts.extend(Text(line, style="dim") for line in _skipped_lines(summary))
    return Group(*parts)


def format_markdown(summary: dict[str, Any], paper: bool = False) -> str:
    names = ", ".join(r["name"] for r in summary["runs"])
    out = [f"# Results: {names}", ""]
    for line in summary["notes"] + _status_lines(summary):
        out += [f"> {line}", ""]
    for title, columns, rows in _sections(summary):
        if not rows:
            continue
        out += [f"## {title}", "", "| " + " | ".join(n for n, _ in columns) + " |",
                "|" + "---|" * len(columns)]
        out += ["| " + " | ".join(fn(r).replace("|", "\\|") for _, fn in columns) + " |"
                for r in rows]
        out.append("")
    if paper:
        out += ["## Paper layout (SR / NQ / ES per task)", "", format_paper_markdown(summary),
                ""]
    if summary["skipped"]:
        out += ["## Skipped cells", ""] + [f"- {line}" for line in _skipped_lines(summary)] + [""]
    out += ["## Statistics", ""] + [f"- {k}: {v}" for k, v in summary["statistics"].items()]
    return "\n".join(out) + "\n"


def paper_grid(summary: dict[str, Any]) -> tuple[list[str], list[str], list[list[str]]]:
    """(tasks, algorithms, cells 'SR/NQ/ES') as in the ReAd paper's Tables 4-5, plus Avg."""
    tasks = sorted({r["env"] for r in summary["cells"]})
    algos = sorted({r["algorithm"] for r in summary["cells"]})
    by = {(r["env"], r["algorithm"]): r for r in summary["cells"]}
    grid = []
    for task in tasks:
        row = []
        for algo in algos:
            r = by.get((task, algo))
            row.append("—" if r is None else
                       f"{_num(r['success_rate'], 1)}/{_num(r['llm_queries']['mean'], 1)}/"
                       f"{_num(r['interaction_steps']['mean'], 1)}")
        grid.append(row)
    avg = []
    for algo in algos:
        rows = [by[(t, algo)] for t in tasks if (t, algo) in by]
        sr = sum(r["success_rate"] for r in rows) / len(rows)
        nq = sum(r["llm_queries"]["mean"] for r in rows) / len(rows)
        es = sum(r["interaction_steps"]["mean"] for r in rows) / len(rows)
        avg.append(f"{sr:.2f}/{nq:.2f}/{es:.2f}")
    return tasks + ["Avg"], algos, grid + [avg]


def format_paper_markdown(summary: dict[str, Any]) -> str:
    tasks, algos, grid = paper_grid(summary)
    lines = ["| Task | " + " | ".join(algos) + " |", "|---|" + "---|" * len(algos)]
    lines += [f"| {t} | " + " | ".join(row) + " |" for t, row in zip(tasks, grid, strict=True)]
    return "\n".join(lines)


def format_html(summary: dict[str, Any], paper: bool = False) -> str:
    esc = html.escape
    names = ", ".join(r["name"] for r in summary["runs"])
    out = ["<!doctype html><html><head><meta charset='utf-8'>",
           f"<title>coopbench: {esc(names)}</title>",
           "<style>body{font-family:sans-serif}table{border-collapse:collapse;margin:1em 0}"
           "td,th{border:1px solid #ccc;padding:2px 8px}tr.sim{background:#f7e8fb}</style>",
           f"</head><body><h1>Results: {esc(names)}</h1>"]
    out += [f"<p><em>{esc(line)}</em></p>" for line in summary["notes"] + _status_lines(summary)]
    for title, columns, rows in _sections(summary):
        if not rows:
            continue
        out.append(f"<h2>{esc(title)}</h2><table><tr>"
                   + "".join(f"<th>{esc(n)}</th>" for n, _ in columns) + "</tr>")
        for r in rows:
            cls = " class='sim'" if r.get("simulated") else ""
            out.append(f"<tr{cls}>" + "".join(f"<td>{esc(fn(r))}</td>" for _, fn in columns)
                       + "</tr>")
        out.append("</table>")
    if paper:
        tasks, algos, grid = paper_grid(summary)
        out.append("<h2>Paper layout (SR / NQ / ES)</h2><table><tr><th>Task</th>"
                   + "".join(f"<th>{esc(a)}</th>" for a in algos) + "</tr>")
        out += ["<tr><td>" + esc(t) + "</td>" + "".join(f"<td>{esc(c)}</td>" for c in row)
                + "</tr>" for t, row in zip(tasks, grid, strict=True)]
        out.append("</table>")
    if summary["skipped"]:
        out.append("<h2>Skipped cells</h2><ul>"
                   + "".join(f"<li>{esc(x)}</li>" for x in _skipped_lines(summary)) + "</ul>")
    out.append("</body></html>")
    return "\n".join(out) + "\n"


def format_csv(summary: dict[str, Any]) -> str:
    buf = io.StringIO()
    writer = csv.writer(buf, lineterminator="\n")
    metrics = reported_metrics()
    budgets = any("critic_data" in r for r in summary["cells"])  # a column only with the axis
    writer.writerow(["env", "planner", "llm", *(["critic_data"] if budgets else []),
                     "simulated", "seeds", "episodes", "errors",
                     *(name for m in metrics for name in _csv_names(m))])
    for r in summary["cells"]:
        writer.writerow([
            r["env"], r["planner"], r["llm"], *([r.get("critic_data", "")] if budgets else []),
            r["simulated"], r["seeds"], r["episodes"],
            r["errors"], *(value for m in metrics for value in _csv_values(m, r)),
        ])
    return buf.getvalue()


def _csv_names(metric: Metric) -> list[str]:
    if metric.aggregate == "wilson":
        return [str(metric.report), f"{metric.name}_low", f"{metric.name}_high"]
    prefix = metric.csv or metric.name
    return [f"{prefix}_mean", f"{prefix}_se"]


def _csv_values(metric: Metric, row: dict[str, Any]) -> list[Any]:
    if metric.aggregate == "wilson":
        return [row[metric.report], *row[f"{metric.name}_ci"]]
    return [row[metric.report]["mean"], row[metric.report]["se"]]


def _finite(value: Any) -> Any:
    """NaN -> None, recursively, so the JSON is standard (no bare NaN)."""
    if isinstance(value, float) and math.isnan(value):
        return None
    if isinstance(value, dict):
        return {k: _finite(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_finite(v) for v in value]
    return value


def format_json(summary: dict[str, Any]) -> str:
    return json.dumps(_finite(summary), indent=2, sort_keys=True, default=str) + "\n"
