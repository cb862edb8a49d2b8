"""Check report pages in a real browser: clean console, images drawn, links resolve, and the
numbers shown equal `summary.json` and `episodes.jsonl`.

Pages mark each number they show with where it comes from: `data-sum="cells.3.success_rate"`
(a path into summary.json) or `data-ep="<cell>#<episode>" data-field="llm_queries"` (an
episode line), with `data-digits` for how it is rounded. A check formats the source value
the same way and compares it with the text the browser shows.
"""

from __future__ import annotations

import json
import math
import re
from pathlib import Path
from typing import Any
from urllib.parse import unquote, urlsplit

from coopbench.core.manifest import EPISODES
from coopbench.reporting.viewer.browser import Chromium
from coopbench.reporting.viewer.site import num

_PAGE_FACTS = """(() => ({
  images: Array.from(document.images).map(i => [i.getAttribute("src"),
                                                 i.complete ? i.naturalWidth : 0]),
  links: Array.from(document.querySelectorAll("a[href]")).map(a => a.getAttribute("href")),
  sums: Array.from(document.querySelectorAll("[data-sum]")).map(
    e => [e.dataset.sum, Number(e.dataset.digits), e.textContent.trim()]),
  eps: Array.from(document.querySelectorAll("[data-ep]")).map(
    e => [e.dataset.ep, e.dataset.field, Number(e.dataset.digits), e.textContent.trim()]),
  scripts: Array.from(document.scripts).map(s => s.getAttribute("src")),
  end: document.getElementById("page-end") !== null,
}))()"""
_IDS = re.compile(r"""\bid=["']([^"']+)["']""")


def lookup(data: Any, path: str) -> Any:
    """`cells.3.success_ci.0` -> data["cells"][3]["success_ci"][0]."""
    for part in path.split("."):
        data = data[int(part)] if isinstance(data, list) else data[part]
    return data


def expected_text(value: Any, digits: int) -> str:
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return "—"
    if digits == 0 and isinstance(value, int | bool):
        return str(int(value))
    return num(float(value), digits)


def episode_records(run_dir: Path) -> dict[str, dict[str, Any]]:
    """`<cell>#<episode>` -> the episode line the report shows (a finished one wins)."""
    out: dict[str, dict[str, Any]] = {}
    for raw in (Path(run_dir) / EPISODES).read_text().splitlines():
        if not raw.strip():
            continue
        line = json.loads(raw)
        key = f"{line['cell']}#{line.get('episode', 0)}"
        if key not in out or (out[key].get("error") and not line.get("error")):
            out[key] = line
    return out


def _link_problems(page: Path, links: list[str]) -> list[str]:
    problems = []
    for href in links:
        parts = urlsplit(href)
        if parts.scheme or parts.netloc:
            problems.append(f"external link {href}")
            continue
        target = (page.parent / unquote(parts.path)).resolve() if parts.path else page
        if not target.is_file():
            problems.append(f"broken link {href}")
        elif parts.fragment and parts.fragment not in set(_IDS.findall(target.read_text())):
            problems.append(f"link {href}: no element with id {parts.fragment!r}")
    return problems


def check_page(browser: Chromium, page: Path, summary: dict[str, Any],
               episodes: dict[str, dict[str, Any]]) -> list[str]:
    """Everything wrong with `page` as Chromium shows it (an empty list: nothing)."""
    page = Path(page).resolve()
    mark = len(browser.events)
    browser.open(page.as_uri())
    facts = browser.evaluate(_PAGE_FACTS)
    problems = [f"{page.name}: {p}" for p in browser.problems(mark)]
    if not facts["end"]:
        problems.append(f"{page.name}: the page ends early (no footer): markup broke it")
    for src, width in facts["images"]:
        if not width:
            problems.append(f"{page.name}: image {src} did not render")
    problems += [f"{page.name}: {p}" for p in _link_problems(page, facts["links"])]
    for src in facts["scripts"]:
        if not src or urlsplit(src).scheme:
            problems.append(f"{page.name}: a script that is not the viewer's: {src!r}")
    for path, digits, shown in facts["sums"]:
        try:
            want = expected_text(lookup(summary, path), int(digits))
        except (KeyError, IndexError, ValueError, TypeError):
            problems.append(f"{page.name}: {path} is not in summary.json")
            continue
        if shown != want:
            problems.append(f"{page.name}: {path} shows {shown!r}, summary.json has {want!r}")
    for key, field, digits, shown in facts["eps"]:
        record = episodes.get(key)
        if record is None:
            problems.append(f"{page.name}: episode {key} is not in episodes.jsonl")
            continue
        value = record.get(field)
        want = ("yes" if value else "no") if field == "success" else expected_text(
            value, 0 if digits != digits else int(digits))  # NaN digits: an integer field
        if shown != want:
            problems.append(f"{page.name}: {key} {field} shows {shown!r}, "
                            f"episodes.jsonl has {want!r}")
    return problems
