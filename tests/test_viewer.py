"""The static report viewer: the folder `report --format html` writes, `view`, and the pages
as headless Chromium shows them (clean console, images drawn, links resolve, numbers equal
summary.json and episodes.jsonl), including that the check fails on a removed image and a
changed number."""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
from typer.testing import CliRunner

from coopbench.cli import app
from coopbench.reporting.summary import load_runs
from coopbench.reporting.viewer import model
from coopbench.reporting.viewer.browser import Chromium, find_chromium
from coopbench.reporting.viewer.check import check_page, episode_records
from coopbench.runner.matrix import run_matrix
from coopbench.runner.spec import parse_spec

SIM = "sim:expert?noise=0.3"
# `make test` installs Chromium; a developer without it skips, CI (CI=true) never does.
needs_chromium = pytest.mark.skipif(find_chromium() is None and not os.environ.get("CI"),
                                    reason="headless Chromium is not installed (Debian: chromium)")


def invoke(*args: str):
    result = CliRunner().invoke(app, list(args))
    return result.exit_code, result.stdout, result.stderr


@pytest.fixture(scope="module")
def run(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A small simulated-LLM matrix (scored ReAd-J, Central, random) and its report folder."""
    out = tmp_path_factory.mktemp("viewer") / "run"
    spec = parse_spec({
        "name": "viewer", "envs": ["roco/sort-level1-v0"],
        "planners": ["baseline/random-v0", "llm/central-v0", "read/read-j-scored-v0"],
        "llms": [SIM], "seeds": [0, 1], "caps": {"max_steps": 5},
    })
    run_matrix(spec, out)
    status, stdout, _ = invoke("report", str(out), "--format", "html")
    assert status == 0 and "<table>" in stdout  # the one-page HTML on stdout, as before
    return out


def pages(run: Path) -> dict[str, list[Path]]:
    root = run / "report"
    return {d: sorted((root / d).glob("*.html")) for d in ("cells", "episodes", "compare")}


def test_report_html_writes_one_self_contained_folder(run):
    root = run / "report"
    found = pages(run)
    assert (root / "index.html").is_file() and (root / "summary.json").is_file()
    assert len(found["cells"]) == 3 and len(found["episodes"]) == 6
    assert len(found["compare"]) == 2 * 3  # per seed: 3 planners -> 3 pairs
    plots = sorted(p.name for p in (root / "plots").glob("*.png"))
    assert "performance_profiles.png" in plots and "per_task_success.png" in plots
    index = (root / "index.html").read_text()
    for png in plots:
        assert f'src="plots/{png}"' in index
    for page in [root / "index.html", *found["cells"], *found["episodes"], *found["compare"]]:
        text = page.read_text()
        assert not re.search(r"""(src|href)=["'](https?:)?//""", text), page  # offline
        assert text.count("<script") == 1, page
        assert 'src="../static/viewer.js"' in text or 'src="static/viewer.js"' in text
    summary = json.loads((run / "summary.json").read_text())
    assert json.loads((root / "summary.json").read_text()) == summary
    assert "Run" in index and "fingerprint" in index and "Statistics" in index
    assert "rliable" in index and "sim:expert?garble=0.0&amp;noise=0.3&amp;seed=0" in index


def episode_page(run: Path, planner: str, seed: int) -> Path:
    [e] = [e for e in load_runs([run]).episodes if e.planner == planner and e.seed == seed]
    return run / "report" / "episodes" / f"{model.episode_slug(e)}.html"


def test_an_episode_page_shows_the_scored_candidates_and_what_was_chosen(run):
    text = episode_page(run, "read/read-j-scored-v0", 0).read_text()
    assert "state the planner saw" in text and "[Current State]" not in text.split("<h3>")[0]
    assert text.count("✓ executed") >= 1 and "log μ" in text and "combined" in text
    assert "LLM call" in text and "not cached" in text and "<h4>reply</h4>" in text
    assert 'id="step-0"' in text
    assert "compare" in text  # same task and seed, other planners


def test_chosen_candidates_and_first_differences_are_found():
    step = {"joint": {"Alice": "pick a", "Bob": "wait"}}
    entry = {"type": "scored", "candidates": [
        {"plan": "EXECUTE\nNAME Bob ACTION wait\nNAME Alice ACTION pick a", "log_mu": -1.0},
        {"plan": "EXECUTE\nNAME Alice ACTION pick a\nNAME Bob ACTION pick a", "log_mu": -0.5}]}
    assert [c["chosen"] for c in model.mark_chosen(step, entry)] == [True, False]
    own = {"type": "scored", "agent": "Bob", "candidates": [{"action": "pick a"},
                                                            {"action": "wait"}]}
    assert [c["chosen"] for c in model.mark_chosen(step, own)] == [False, True]
    a = [{"joint": {"x": "1"}}, {"joint": {"x": "2"}}]
    assert model.first_difference(a, a) is None
    assert model.first_difference(a, [{"joint": {"x": "1"}}, {"joint": {"x": "3"}}]) == 1
    assert model.first_difference(a, a[:1]) == 1
    prompt = ("[Task]\nsort\n\n[Current State]\nblock on table\n\n[Available Actions Now]\n"
              "Alice: wait")
    step = {"transcript": [{"type": "query", "prompt": [{"role": "system", "content": prompt}]}]}
    assert model.state_texts(step) == [("Current State", "block on table")]


def test_view_builds_when_stale_and_prints_the_path_without_a_display(run, monkeypatch):
    monkeypatch.delenv("DISPLAY", raising=False)
    monkeypatch.delenv("WAYLAND_DISPLAY", raising=False)
    status, stdout, stderr = invoke("view", str(run))
    index = run / "report" / "index.html"
    assert status == 0 and str(index) in stdout and index.resolve().as_uri() in stdout
    assert "up to date" in stderr
    with open(run / "episodes.jsonl", "a") as f:  # a changed input makes the folder stale
        f.write("\n")
    status, stdout, stderr = invoke("view", str(run), "--no-open")
    assert status == 0 and "built" in stderr and str(index) in stdout
    assert invoke("view", str(run))[2].strip().endswith("is up to date")


def cli(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "coopbench", *args], capture_output=True,
                          text=True, timeout=300)


def test_view_refuses_bad_input_in_one_line(tmp_path):
    (tmp_path / "empty").mkdir()
    for target, why in (("missing", "no run directory"), ("empty", "no manifest.json")):
        done = cli("view", str(tmp_path / target))
        assert done.returncode == 2 and why in done.stderr, done.stderr
        assert "Traceback" not in done.stderr and len(done.stderr.strip().splitlines()) == 1


@needs_chromium
def test_pages_load_clean_in_chromium_and_match_the_numbers(run):
    root = run / "report"
    summary = json.loads((root / "summary.json").read_text())
    episodes = episode_records(run)
    found = pages(run)
    chosen = [root / "index.html", found["cells"][0], found["episodes"][0],
              episode_page(run, "read/read-j-scored-v0", 1),
              found["compare"][0]]
    with Chromium() as browser:
        for page in chosen:
            assert check_page(browser, page, summary, episodes) == [], page
        facts = browser.evaluate("document.querySelectorAll('[data-sum]').length")
    assert facts == 0  # the compare page shows no summary numbers; the others do:
    assert (root / "index.html").read_text().count("data-sum=") > 40


@needs_chromium
def test_the_browser_check_fails_on_a_removed_image_and_a_changed_number(run, tmp_path):
    copy = tmp_path / "run"
    shutil.copytree(run, copy)
    root = copy / "report"
    summary = json.loads((root / "summary.json").read_text())
    episodes = episode_records(copy)
    (root / "plots" / "per_task_success.png").unlink()
    index = root / "index.html"
    text = index.read_text()
    shown = re.search(r'data-sum="cells\.1\.success_rate" data-digits="2">([0-9.]+)<', text)
    changed = "0.01" if shown.group(1) != "0.01" else "0.02"
    index.write_text(text.replace(shown.group(0), shown.group(0).replace(
        f">{shown.group(1)}<", f">{changed}<")))
    [cell] = [p for p in (root / "cells").glob("*.html") if "central" in p.name]
    cell_text = cell.read_text()
    cell.write_text(re.sub(r'(data-field="llm_queries" data-digits="0">)(\d+)<',
                           lambda m: f"{m.group(1)}{int(m.group(2)) + 1}<", cell_text, count=1))
    with Chromium() as browser:
        problems = check_page(browser, index, summary, episodes)
        cell_problems = check_page(browser, cell, summary, episodes)
    assert any("per_task_success.png did not render" in p for p in problems)
    assert any("ERR_FILE_NOT_FOUND" in p for p in problems)  # the console saw it too
    assert any(f"cells.1.success_rate shows '{changed}'" in p for p in problems)
    assert any("llm_queries shows" in p for p in cell_problems)


@needs_chromium
def test_sorting_a_table_in_the_browser_reorders_its_rows(run):
    [cell] = [p for p in pages(run)["cells"] if "central" in p.name]
    with Chromium() as browser:
        browser.open(cell.resolve().as_uri())
        order = ("Array.from(document.querySelectorAll('#episodes tbody tr'))"
                 ".map(r => r.cells[0].textContent.trim())")
        before = browser.evaluate(order)
        browser.evaluate("document.querySelector('#episodes th').click()")
        browser.evaluate("document.querySelector('#episodes th').click()")  # descending
        after = browser.evaluate(order)
        assert browser.problems() == []
    assert before == ["seed 0", "seed 1"] and after == ["seed 1", "seed 0"]


def test_frames_are_replayed_from_the_recorded_actions_on_request(run, tmp_path, monkeypatch):
    copy = tmp_path / "run"
    shutil.copytree(run, copy)
    monkeypatch.delenv("DISPLAY", raising=False)
    status, _, stderr = invoke("view", str(copy), "--frames", "--no-open")
    assert status == 0 and "replayed 6 of 6 episodes" in stderr
    gifs = sorted((copy / "report" / "frames").glob("*.gif"))
    assert len(gifs) == 6 and all(g.read_bytes()[:6] == b"GIF89a" for g in gifs)
    page = episode_page(copy, "llm/central-v0", 1)
    assert f'src="../frames/{page.stem}.gif"' in page.read_text()
    if find_chromium() is not None:
        with Chromium() as browser:
            assert check_page(browser, page, json.loads((copy / "summary.json").read_text()),
                              episode_records(copy)) == []
    invoke("view", str(copy), "--rebuild", "--no-open")  # without --frames: none left over
    assert not list((copy / "report" / "frames").glob("*.gif"))
