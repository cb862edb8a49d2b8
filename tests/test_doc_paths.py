"""Every repository file or folder the docs name exists (a rename must update its docs).

Paths are taken from backticks and Markdown links in README.md and docs/*.md when they start at
a top-level folder of the repository; run-directory examples (`results/runs/...`) and
placeholders (`<...>`, `*`) are not files of the repository.
"""

from __future__ import annotations

import re
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
DOCS = [ROOT / "README.md", *sorted((ROOT / "docs").glob("*.md"))]
TOP = ("coopbench/", "tests/", "docs/", "benchmarks/", "results/", ".ci/")
CANDIDATE = re.compile(r"`([^`\s]+)`|\]\(([^)\s#]+)")


def mentioned(doc: Path) -> set[str]:
    paths = set()
    for match in CANDIDATE.finditer(doc.read_text()):
        text = (match[1] or match[2]).rstrip(".,:;")
        if match[2] and not text.startswith(("http", "mailto")):
            text = str((doc.parent / text).resolve().relative_to(ROOT))
        if not text.startswith(TOP) or text.startswith("results/runs/"):
            continue
        if any(c in text for c in "<>*{}$") or "(" in text:
            continue
        paths.add(text.split(":")[0])
    for block in re.split(r"\n\s*\n|\n(?=\|)", doc.read_text()):  # paragraphs, table rows
        first = re.search(r"`([^`]+)`", block)  # "`coopbench/x/` — `a.py`, `b.py`": a block
        if first and first[1].endswith("/") and first[1].startswith(TOP):  # led by a folder
            paths |= {first[1] + name for name in re.findall(r"`(\w+\.py)`", block)}
    return paths


def test_the_scan_finds_paths():
    assert "coopbench/core/metrics.py" in mentioned(ROOT / "docs" / "runner.md")
    assert "coopbench/runner/single.py" in mentioned(ROOT / "docs" / "runner.md")  # a table row
    assert "coopbench/envs/overcooked/upstream.py" in mentioned(ROOT / "docs" / "overcooked.md")


def test_every_path_the_docs_name_exists():
    missing = [f"{doc.relative_to(ROOT)}: {path}" for doc in DOCS
               for path in sorted(mentioned(doc)) if not (ROOT / path).exists()]
    assert not missing, "\n".join(missing)
