"""Untrusted text in the report: a model whose replies carry `<script>`, `</textarea>`, markup,
template syntax and control characters, and a spec whose name and description do too. The
pages show all of it as text: nothing executes, no element is injected, the page is whole."""

from __future__ import annotations

import json
import os
from html.parser import HTMLParser
from pathlib import Path

import pytest
from fake_openai import FakeServer, isolate
from typer.testing import CliRunner

from coopbench.cli import app
from coopbench.reporting.summary import load_runs
from coopbench.reporting.viewer import model
from coopbench.reporting.viewer.browser import Chromium, find_chromium
from coopbench.reporting.viewer.check import check_page, episode_records
from coopbench.runner.matrix import run_matrix
from coopbench.runner.spec import parse_spec

HOSTILE = ("EXECUTE\nNAME Alice ACTION <script>window.__pwned = 1</script></textarea></pre>"
           '<img src=x onerror="window.__pwned = 2"><b>bold</b><a href="https://example.com">x'
           "</a> {{ 7 * 7 }} {% if %} <!-- ]]> \x00\x07\x1b[31mred\x7f end")
NAME = "<script>window.__pwned = 3</script>"
SHOWN = "<script>window.__pwned = 1</script></textarea></pre>"  # as text, verbatim


class Tags(HTMLParser):
    """Every start tag and its attributes, as a parser (and so a browser) reads the page."""

    def __init__(self) -> None:
        super().__init__()
        self.tags: list[tuple[str, dict[str, str | None]]] = []

    def handle_starttag(self, tag, attrs):
        self.tags.append((tag, dict(attrs)))


@pytest.fixture
def hostile_run(tmp_path: Path, monkeypatch: pytest.MonkeyPatch):
    isolate(tmp_path, monkeypatch)
    server = FakeServer()
    server.script.extend([f"reply:{HOSTILE}"] * 40)
    try:
        spec = parse_spec({
            "name": NAME, "description": f"desc {NAME} \x1b[0m",
            "envs": ["roco/sort-level1-v0"], "planners": ["llm/central-v0"],
            "llms": [f"openai-compat:{server.base_url}#m1"], "seeds": [0],
            "caps": {"max_steps": 2}, "llm_cache": False,
        })
        out = tmp_path / "run"
        run_matrix(spec, out)
    finally:
        server.close()
    result = CliRunner().invoke(app, ["report", str(out), "--format", "html"])
    assert result.exit_code == 0, result.stderr
    return out


def test_hostile_replies_and_names_are_shown_as_text(hostile_run):
    [episode] = load_runs([hostile_run]).episodes
    assert episode.parse_failures > 0  # the planner saw the hostile replies
    root = hostile_run / "report"
    page = root / "episodes" / f"{model.episode_slug(episode)}.html"
    for path in (root / "index.html", page):
        text = path.read_text()
        parser = Tags()
        parser.feed(text)
        scripts = [a.get("src") for tag, a in parser.tags if tag == "script"]
        assert len(scripts) == 1 and scripts[0].endswith("static/viewer.js"), path
        assert not any(k.startswith("on") for _, a in parser.tags for k in a), path
        assert not any(t in ("textarea", "b") or a.get("src") == "x" for t, a in parser.tags)
        assert "&lt;script&gt;window.__pwned = 3&lt;/script&gt;" in text
        assert "\x00" not in text and "\x1b" not in text and "\x07" not in text
    text = page.read_text()
    assert "&lt;script&gt;window.__pwned = 1&lt;/script&gt;&lt;/textarea&gt;" in text
    assert "{{ 7 * 7 }}" in text and "{% if %}" in text  # data, never template code
    assert "␀␇␛[31mred␡" in text  # control characters made visible


@pytest.mark.skipif(find_chromium() is None and not os.environ.get("CI"),
                    reason="headless Chromium is not installed (make test installs it)")
def test_nothing_executes_and_the_page_is_whole_in_chromium(hostile_run):
    [episode] = load_runs([hostile_run]).episodes
    root = hostile_run / "report"
    page = root / "episodes" / f"{model.episode_slug(episode)}.html"
    summary = json.loads((root / "summary.json").read_text())
    with Chromium() as browser:
        for path in (root / "index.html", page):
            assert check_page(browser, path, summary, episode_records(hostile_run)) == []
            assert browser.evaluate("typeof window.__pwned") == "undefined"
            assert browser.evaluate("document.querySelectorAll('img[src=x], b').length") == 0
        steps = browser.evaluate("document.querySelectorAll('li.step').length")
        replies = browser.evaluate(
            "Array.from(document.querySelectorAll('pre.reply')).map(p => p.textContent)")
        title = browser.evaluate("document.title")
    assert steps == episode.interaction_steps == 2
    assert any(SHOWN in r and "{{ 7 * 7 }}" in r and "␀␇␛[31mred␡ end" in r for r in replies)
    assert NAME in title
