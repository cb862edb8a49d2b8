"""Write the static report folder of a run: overview, cell, episode and compare pages.

Every page is rendered by jinja2 with autoescaping on, and every value passes `visible()`
first, so text from models, prompts and specs is shown as text: markup is escaped and control
characters become visible symbols. Pages link each other relatively and load only files
of the folder (no server, no network), so the folder works from `file://` and can be copied.
Episode pages are separate files, so the overview stays small whatever the run's size.
"""

from __future__ import annotations

import json
import math
import re
import shutil
from collections.abc import Iterable
from importlib import resources
from pathlib import Path
from typing import Any

import jinja2
from markupsafe import Markup

from coopbench.core.errors import CoopbenchError
from coopbench.core.manifest import EPISODES, LLM_CALLS, MANIFEST, TRANSCRIPTS
from coopbench.reporting.labels import SIM_MARK
from coopbench.reporting.viewer import calls, model
from coopbench.reporting.viewer.model import Episode

REPORT_DIR = "report"
STAMP = "build.json"
FORMAT = 1  # bump when pages change shape, so `coopbench view` rebuilds old folders
PAGE_DIRS = ("cells", "episodes", "compare")
_CONTROL = re.compile(r"[\x00-\x08\x0b-\x1f\x7f]")


def visible(value: Any) -> Any:
    """Control characters (but newline and tab) as their Unicode control pictures."""
    if isinstance(value, str) and not isinstance(value, Markup):  # Markup: already escaped
        return _CONTROL.sub(lambda m: chr(0x2400 + ord(m.group()) if m.group() != "\x7f"
                                          else 0x2421), value)
    return value


def num(value: Any, digits: int = 2) -> str:
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return "—"
    return f"{value:.{digits}f}"


def _env() -> jinja2.Environment:
    env = jinja2.Environment(
        loader=jinja2.PackageLoader("coopbench.reporting.viewer", "templates"),
        autoescape=True, finalize=visible, trim_blocks=True, lstrip_blocks=True,
        undefined=jinja2.StrictUndefined,
    )
    env.filters["num"] = num
    env.filters["visible"] = visible
    env.globals["SIM_MARK"] = SIM_MARK
    return env


class Writer:
    """Writes pages in place and remembers them, so that a rebuild overwrites files (far
    cheaper than creating them anew on ext4) and then removes only what it did not write."""

    def __init__(self, root: Path) -> None:
        self.root = root
        self.written: set[Path] = set()

    def text(self, path: Path, text: str) -> None:
        path.write_text(text, encoding="utf-8")
        self.written.add(path)

    def copy(self, source: Path | str, path: Path) -> None:
        shutil.copyfile(source, path)
        self.written.add(path)

    def remove_leftovers(self, folders: Iterable[str]) -> None:
        for name in folders:
            for path in (self.root / name).glob("*"):
                if path.is_file() and path not in self.written:
                    path.unlink()


def report_dir(run_dir: Path) -> Path:
    return Path(run_dir) / REPORT_DIR


def inputs_stamp(run_dir: Path) -> dict[str, Any]:
    """Size and mtime of every input, and the page format: what makes a folder stale."""
    out: dict[str, Any] = {"format": FORMAT}
    for name in (MANIFEST, EPISODES, TRANSCRIPTS, LLM_CALLS):
        path = Path(run_dir) / name
        if path.exists():
            st = path.stat()
            out[name] = [st.st_size, st.st_mtime_ns]
    return out


def is_stale(run_dir: Path) -> bool:
    stamp = report_dir(run_dir) / STAMP
    if not (report_dir(run_dir) / "index.html").exists() or not stamp.exists():
        return True
    try:
        return json.loads(stamp.read_text()) != inputs_stamp(run_dir)
    except (OSError, ValueError):
        return True


def build_site(run_dir: Path, summary: dict[str, Any], data: Any, manifest: dict[str, Any],
               plots: Iterable[Path], frames: dict[str, str] | None = None) -> Path:
    """Write `<run>/report/` and return its index.html. `frames`: episode slug -> GIF path."""
    run_dir = Path(run_dir)
    out = report_dir(run_dir)
    try:
        return _build(run_dir, out, summary, data, manifest, list(plots), frames or {})
    except OSError as exc:
        raise CoopbenchError(f"cannot write the report into {out}: "
                             f"{exc.strerror or exc}") from None


def _build(run_dir: Path, out: Path, summary: dict[str, Any], data: Any,
           manifest: dict[str, Any], plots: list[Path], frames: dict[str, str]) -> Path:
    stamp = inputs_stamp(run_dir)
    folders = (*PAGE_DIRS, "plots", "static", "frames")
    for name in folders:
        (out / name).mkdir(parents=True, exist_ok=True)
    write = Writer(out)
    _copy_static(write, out / "static")
    shown_plots = []
    for png in plots:
        write.copy(png, out / "plots" / png.name)
        shown_plots.append(f"plots/{png.name}")
    for slug, gif in frames.items():
        write.copy(gif, out / "frames" / f"{slug}.gif")
    write.copy(run_dir / "summary.json", out / "summary.json")

    cells = model.build_cells(summary, data.episodes)
    notes = model.attach_steps(run_dir, cells)
    specs = list(manifest.get("spec", {}).get("llms") or [])
    specs += sorted({e.llm for e in data.episodes} - set(specs))
    models, logged = calls.model_table(run_dir, specs)
    groups = model.same_start_groups(cells)
    env = _env()
    page = {"run": summary["runs"][0]["name"] if summary["runs"] else run_dir.name}

    overview = env.get_template("overview.html").render(
        **page, root="", title=page["run"], summary=summary, manifest=manifest,
        cells=cells, models=models, calls_logged=logged, plots=shown_plots,
        viewer_notes=notes, critics=manifest.get("critics") or [],
    )
    write.text(out / "index.html", overview)

    cell_t = env.get_template("cell.html")
    episode_t = env.get_template("episode.html")
    compare_t = env.get_template("compare.html")
    for cell in cells:
        write.text(out / "cells" / f"{cell.slug}.html",
               cell_t.render(**page, root="../", title=cell.row["algorithm"], cell=cell))
        for ep in cell.episodes:
            others = _others(groups, ep)
            write.text(out / "episodes" / f"{ep.slug}.html", episode_t.render(
                **page, root="../", title=f"{cell.row['algorithm']} · seed {ep.result.seed}",
                cell=cell, ep=ep, steps=_steps(ep), others=others,
                frame=f"../frames/{ep.slug}.gif" if ep.slug in frames else None,
            ))
    for members in groups.values():
        for i, a in enumerate(members):
            for b in members[i + 1:]:
                write.text(out / "compare" / f"{model.compare_slug(a, b)}.html",
                       compare_t.render(**page, root="../", title="compare", a=a, b=b,
                                        rows=_compare_rows(a, b)))
    write.remove_leftovers(folders)
    (out / STAMP).write_text(json.dumps(stamp, indent=2) + "\n")
    return out / "index.html"


def _copy_static(write: Writer, dest: Path) -> None:
    for item in resources.files("coopbench.reporting.viewer").joinpath("static").iterdir():
        if item.is_file():
            write.text(dest / item.name, item.read_text(encoding="utf-8"))


def _others(groups: dict, ep: Episode) -> list[tuple[Episode, str]]:
    """The other algorithms' episodes of the same (task, seed, episode), with compare pages."""
    members = groups[(ep.result.env, ep.result.seed, ep.result.episode)]
    out = []
    for i, other in enumerate(members):
        if other is ep:
            continue
        mine = members.index(ep)
        a, b = (ep, other) if mine < i else (other, ep)
        out.append((other, model.compare_slug(a, b)))
    return out


def _steps(ep: Episode) -> list[dict[str, Any]]:
    """Each step with what the template needs: state texts, and scored candidates marked."""
    out = []
    for step in ep.steps:
        entries = []
        for entry in step.get("transcript") or []:
            if not isinstance(entry, dict):
                continue
            if entry.get("type") == "scored":
                entry = {**entry, "candidates": model.mark_chosen(step, entry)}
            entries.append(entry)
        out.append({**step, "entries": entries, "states": model.state_texts(step)})
    return out


def _chosen_score(step: dict[str, Any]) -> str:
    for entry in step.get("transcript") or []:
        if isinstance(entry, dict) and entry.get("type") == "scored":
            for cand in model.mark_chosen(step, entry):
                if cand["chosen"]:
                    parts = [f"log μ {num(cand.get('log_mu'))}",
                             f"A {num(cand.get('advantage'))}"]
                    if "total" in cand:
                        parts.append(f"score {num(cand.get('total'))}")
                    return " · ".join(parts)
    return ""


def _compare_rows(a: Episode, b: Episode) -> list[dict[str, Any]]:
    first = model.first_difference(a.steps, b.steps)
    rows = []
    for i in range(max(len(a.steps), len(b.steps))):
        sa = a.steps[i] if i < len(a.steps) else None
        sb = b.steps[i] if i < len(b.steps) else None
        rows.append({"index": i, "a": sa, "b": sb, "first_diff": i == first,
                     "differs": first is not None and i >= first,
                     "a_score": _chosen_score(sa) if sa else "",
                     "b_score": _chosen_score(sb) if sb else ""})
    return rows
