"""The static results viewer: one folder of HTML pages per run (`coopbench report --format
html`, `coopbench view`).

    model.py  cells, episodes and their steps from a run directory (no HTML)
    calls.py  per-model ids, decoding and latency from llm_calls.jsonl
    site.py   renders the pages with jinja2 (autoescaped) into `<run>/report/`
    build.py  the build from a summary and its plots (and GIFs the runner replayed); staleness
    browser.py headless Chromium over the DevTools protocol (checks, screenshots, load time)
    check.py  what a page must be in the browser: clean console, images, links, numbers

Episode GIFs (`--frames`) are replayed by `coopbench.runner.replay`: reporting runs no env.
"""
