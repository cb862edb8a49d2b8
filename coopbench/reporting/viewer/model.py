"""What the viewer shows, read from a run directory: metadata, cells, episodes, their steps.

Numbers come from the reporting summary (`summary.summarise`) and from `episodes.jsonl`; the
step timeline from `transcripts.jsonl` (prompts, replies, scored candidates, feedback). Nothing
here formats HTML: `site.py` does, through templates with autoescaping.
"""

from __future__ import annotations

import hashlib
import re
from collections import defaultdict
from dataclasses import dataclass, field
from functools import cached_property
from pathlib import Path
from typing import Any

from coopbench.core.io import read_lines
from coopbench.core.types import EpisodeResult
from coopbench.reporting.labels import algorithm_label, model_label, model_of
from coopbench.runner import readback
from coopbench.runner.store import RunStore

_UNSAFE = re.compile(r"[^A-Za-z0-9._-]+")
# the state sections of a prompt (agents/prompts.py: `[Current State]`, `[What X sees now]`)
_STATE = re.compile(r"^\[(Current State|What [^\]\n]+ sees now)\]\n(.*?)(?=\n\n\[[^\]\n]+\]\n|\Z)",
                    re.S | re.M)


def slug(*parts: str) -> str:
    """A file name for `parts`: readable, short, unique (a hash of the whole key)."""
    key = "|".join(parts)
    readable = _UNSAFE.sub("_", "-".join(parts)).strip("_")[:60]
    return f"{readable}-{hashlib.sha1(key.encode()).hexdigest()[:8]}"


@dataclass
class Episode:
    """One episode line and where its page lives."""

    result: EpisodeResult
    slug: str
    steps: list[dict[str, Any]] = field(default_factory=list)

    @cached_property
    def record(self) -> dict[str, Any]:
        """The episode line as a dict (`return` spelled as in the file), built once."""
        return self.result.to_json()

    @property
    def algorithm(self) -> str:
        return algorithm_label(self.result.planner, model_of(self.result))

    @property
    def group(self) -> tuple[str, str, str]:
        return (self.result.env, self.result.planner, model_of(self.result))


@dataclass
class Cell:
    """One summary cell (env x planner x llm): its summary row and its episodes."""

    index: int  # position in summary["cells"]
    row: dict[str, Any]
    slug: str
    episodes: list[Episode] = field(default_factory=list)


def episode_slug(e: EpisodeResult) -> str:
    return slug(e.env, e.planner, model_of(e), f"s{e.seed}", f"e{e.episode}")


def cell_slug(env: str, planner: str, llm: str) -> str:
    return slug(env, planner, llm)


def build_cells(summary: dict[str, Any], episodes: list[EpisodeResult]) -> list[Cell]:
    """Summary cells with their episodes, in the summary's order."""
    cells = {}
    for i, r in enumerate(summary["cells"]):
        model = model_label(r["llm"], r.get("decoding", ""), r.get("critic_data", ""))
        cells[(r["env"], r["planner"], model)] = Cell(i, r, cell_slug(r["env"], r["planner"],
                                                                      model))
    for e in sorted(episodes, key=lambda e: (e.seed, e.episode)):
        cell = cells.get((e.env, e.planner, model_of(e)))
        if cell is not None:
            cell.episodes.append(Episode(e, episode_slug(e)))
    return list(cells.values())


def attach_steps(run_dir: Path, cells: list[Cell]) -> list[str]:
    """Fill each episode's steps from transcripts.jsonl; returns notes on unusable lines.

    A step number that does not grow starts a new attempt of the episode (an errored try
    before a resume): only the last attempt is kept.
    """
    by_key = {(ep.result.cell, ep.result.episode): ep for c in cells for ep in c.episodes}
    lines = read_lines(RunStore(run_dir).transcripts_path, readback.transcript)
    for record in lines.records:
        ep = by_key.get((record["cell"], record["episode"]))
        if ep is None:
            continue
        if ep.steps and record.get("step", 0) <= ep.steps[-1].get("step", 0):
            ep.steps = []
        ep.steps.append(record)
    notes = []
    if lines.bad:
        notes.append(f"transcripts.jsonl: skipped {len(lines.bad)} unreadable line(s)")
    if lines.torn:
        notes.append("transcripts.jsonl: skipped a torn last line")
    return notes


def state_texts(step: dict[str, Any]) -> list[tuple[str, str]]:
    """(title, text) of the state the planner saw at this step, from its first prompts.

    Each distinct view once (a joint planner's global state; each agent's own view).
    """
    seen: dict[str, str] = {}
    for entry in step.get("transcript", []):
        if entry.get("type") != "query":
            continue
        for message in entry.get("prompt") or []:
            content = message.get("content", "") if isinstance(message, dict) else ""
            for title, text in _STATE.findall(str(content)):
                if title not in seen and "(hidden)" not in text:
                    seen[title] = text.strip()
    return list(seen.items())


def _plan_lines(text: str) -> set[str]:
    return {line.strip() for line in str(text).splitlines() if line.strip().startswith("NAME ")}


def mark_chosen(step: dict[str, Any], entry: dict[str, Any]) -> list[dict[str, Any]]:
    """A `scored` entry's candidates, each with `chosen` set when it is what was executed.

    ReAd-J candidates are whole plans (`NAME a ACTION t` lines); ReAd-S candidates are one
    agent's `action`.
    """
    joint = step.get("joint") or {}
    executed = {f"NAME {a} ACTION {t}" for a, t in joint.items()}
    agent = entry.get("agent")
    out = []
    for cand in entry.get("candidates") or []:
        if not isinstance(cand, dict):
            continue
        if "plan" in cand:
            chosen = _plan_lines(cand["plan"]) == executed
        else:
            chosen = agent is not None and joint.get(agent) == cand.get("action")
        out.append({**cand, "chosen": chosen})
    return out


def first_difference(a: list[dict[str, Any]], b: list[dict[str, Any]]) -> int | None:
    """Index of the first step whose joint action differs (or where one episode ended)."""
    for i in range(max(len(a), len(b))):
        if i >= len(a) or i >= len(b) or a[i].get("joint") != b[i].get("joint"):
            return i
    return None


def all_steps(cells: list[Cell]) -> list[dict[str, Any]]:
    return [s for c in cells for ep in c.episodes for s in ep.steps]


def same_start_groups(cells: list[Cell]) -> dict[tuple[str, int, int], list[Episode]]:
    """(env, seed, episode) -> the episodes of every algorithm that played it."""
    groups: dict[tuple[str, int, int], list[Episode]] = defaultdict(list)
    for c in cells:
        for ep in c.episodes:
            groups[(ep.result.env, ep.result.seed, ep.result.episode)].append(ep)
    return groups


def compare_slug(a: Episode, b: Episode) -> str:
    return slug(a.slug, b.slug)
