"""Reports of run directories: what `coopbench report` and `coopbench compare` print and write.

    summary.py  read run directories (through runner.store) into per-cell numbers, aggregates
                across tasks, probability of improvement, and the marl-eval export
    stats.py    Wilson intervals, mean ± SE, IQM, stratified bootstrap, P(improvement)
    tables.py   a summary as text: rich tables, Markdown, HTML, CSV, JSON (`format_*`)
    plots.py    a summary as PNG plots (matplotlib, Agg)
    labels.py   how results are named (algorithm labels, the simulated-LLM mark)

Reporting reads what the runner wrote and imports it; the runner never imports reporting.
This file imports nothing, so `reporting.labels` stays light (no numpy or scipy).
"""
