"""The static results viewer: one folder of HTML pages per run (`coopbench report --format
html`, `coopbench view`).

    model.py  cells, episodes and their steps from a run directory (no HTML)
    calls.py  per-model ids, decoding and latency from llm_calls.jsonl
    site.py   renders the pages with jinja2 (autoescaped) into `<run>/report/`
    build.py  the whole build: summary, plots, optional frames, pages; staleness
    frames.py optional GIFs of episodes, replayed from their recorded joint actions
    browser.py headless Chromium over the DevTools protocol (checks and screenshots)
"""
