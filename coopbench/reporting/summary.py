"""Summaries of run directories: per-cell numbers, aggregates across tasks, comparisons.

The seed is the unit: episodes of one seed are averaged first, then
- per cell (env × planner × llm): success rate with a Wilson 95% interval over seeds, and
  mean ± SE over seeds of interaction steps, LLM query rounds, tokens and cost;
- per algorithm (planner × llm) across tasks (envs): IQM of per-seed success with a
  stratified-bootstrap 95% CI, and the probability of improvement between algorithms.

Results from simulated LLMs (`sim:`) are marked in every label, table and export.
The summary holds no timestamps or wall times, so two runs with the same seeds give the same
summary whatever interrupted them.
"""

from __future__ import annotations

import math
from collections import defaultdict
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from coopbench.core.errors import CoopbenchError
from coopbench.core.metrics import Metric
from coopbench.core.metrics import exported as exported_metrics
from coopbench.core.metrics import reported as reported_metrics
from coopbench.core.types import EpisodeResult
from coopbench.reporting import stats
from coopbench.reporting.labels import (
    IDENTICAL_MARK,
    SIM_NOTE,
    algorithm_label,
    critic_data_of,
    is_simulated,
    model_label,
    model_of,
)
from coopbench.runner.store import RunStore

BOOTSTRAP_REPS = 5000
POI_REPS = 2000
RANDOM_STATE = 0


@dataclass
class RunData:
    """Episodes of one or more run directories, one record per (cell, episode)."""

    runs: list[dict[str, Any]] = field(default_factory=list)
    episodes: list[EpisodeResult] = field(default_factory=list)
    skipped: list[dict[str, str]] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)


def load_runs(dirs: list[Path | str]) -> RunData:
    """Read run directories; a cell appearing in two of them is an error (ambiguous)."""
    data = RunData()
    owner: dict[tuple[str, int], str] = {}
    for d in dirs:
        store = RunStore(d)
        if not store.root.is_dir():
            raise CoopbenchError(f"no run directory at {store.root}")
        manifest = store.read_manifest()
        if manifest is None:
            raise CoopbenchError(f"{store.root} has no manifest.json: not a run directory")
        lines = store.episode_lines()
        lines.check(store.episodes_path)  # a damaged line is an error, a crash's torn tail not
        episodes = lines.records
        if lines.torn:
            data.notes.append(f"{store.root}: skipped a torn last line (line {lines.torn.number})")
        chosen: dict[tuple[str, int], EpisodeResult] = {}
        for e in episodes:  # a finished record wins over an errored attempt of the same episode
            key = (e.cell, e.episode)
            if key not in chosen or (chosen[key].error is not None and e.error is None):
                chosen[key] = e
        for key, e in chosen.items():
            if key in owner:
                raise CoopbenchError(
                    f"episode {key[0]} #{key[1]} is in both {owner[key]} and {store.root}; "
                    "compare runs of different cells"
                )
            owner[key] = str(store.root)
            data.episodes.append(e)
        spec = manifest.get("spec", {})
        data.runs.append({
            "dir": str(store.root),
            "name": spec.get("name") or store.root.name,
            "status": manifest.get("status", "complete"),
            "status_detail": manifest.get("status_detail", ""),
        })
        data.skipped.extend(manifest.get("plan", {}).get("skipped", []))
    return data


def _per_seed(episodes: list[EpisodeResult], value: Any) -> list[float]:
    by_seed: dict[int, list[float]] = defaultdict(list)
    for e in episodes:
        by_seed[e.seed].append(float(value(e)))
    return [float(np.mean(by_seed[s])) for s in sorted(by_seed)]


def _metric(values: list[float]) -> dict[str, float]:
    mean, se = stats.mean_se(values)
    return {"mean": mean, "se": se}


# What two episodes of one cell may differ in and still be the same episode.
_NOT_THE_EPISODE = ("cell", "seed", "episode", "wall_s", "cache_hits")


def identical_episodes(episodes: list[EpisodeResult]) -> int:
    """n if a cell's n >= 2 finished episodes over >= 2 seeds are one and the same, else 0.

    Same in every recorded number and in the trajectory digest (start state, actions, states;
    older records without one compare on the numbers): the seeds did not vary the episode, so
    its n episodes measure one episode n times.
    """
    ok = [e for e in episodes if e.error is None]
    if len(ok) < 2 or len({e.seed for e in ok}) < 2:
        return 0
    signatures = set()
    for e in ok:
        record = e.to_json()
        signatures.add(tuple(sorted((k, str(v)) for k, v in record.items()
                                    if k not in _NOT_THE_EPISODE)))
    return len(ok) if len(signatures) == 1 else 0


def identical_note(row: dict[str, Any]) -> str:
    return (f"{IDENTICAL_MARK} {row['env']} × {row['algorithm']}: {row['identical_episodes']} "
            "episodes identical: seeds may not vary the episode")


def cell_rows(episodes: list[EpisodeResult]) -> list[dict[str, Any]]:
    groups: dict[tuple[str, str, str, str, str], list[EpisodeResult]] = defaultdict(list)
    for e in episodes:
        groups[(e.env, e.planner, e.llm, e.decoding, critic_data_of(e.cell))].append(e)
    rows = []
    for (env, planner, llm, decoding, data), eps in sorted(groups.items(), key=_cell_order):
        ok = [e for e in eps if e.error is None]
        successes = sum(e.success for e in ok)
        row = {
            "env": env, "planner": planner, "llm": llm, **({"decoding": decoding} if decoding
                                                           else {}),
            **({"critic_data": data} if data else {}),
            "algorithm": algorithm_label(planner, model_label(llm, decoding, data)),
            "simulated": is_simulated(llm),
            "seeds": len({e.seed for e in ok}), "episodes": len(ok),
            "errors": len(eps) - len(ok),
        }
        for metric in reported_metrics():  # each as the metrics table says
            row.update(_aggregate(metric, _per_seed(ok, metric.of)))
        row["queries_per_success"] = (sum(e.llm_queries for e in ok) / successes
                                      if successes else None)
        row["identical_episodes"] = identical_episodes(ok)
        rows.append(row)
    return rows


def _cell_order(item: tuple[tuple[str, ...], Any]) -> tuple:
    """Cells sorted by their key, a critic data budget's transitions as a number."""
    key = item[0]
    label = key[4]
    source, _, n = label.rpartition(",n=")
    return (*key[:4], source, int(n) if n.isdigit() else 0)


def _aggregate(metric: Metric, per_seed: list[float]) -> dict[str, Any]:
    """A cell's figures for one metric over its seeds (`metric.aggregate` says how)."""
    if metric.aggregate == "wilson":
        k, n = sum(per_seed), len(per_seed)
        return {metric.report: k / n if n else math.nan,
                f"{metric.name}_ci": list(stats.wilson(k, n))}
    return {metric.report: _metric(per_seed)}


def _seed_scores(episodes: list[EpisodeResult]) -> dict[tuple[str, str], dict[str, np.ndarray]]:
    """algorithm (planner, llm as `model_of` labels it) -> env -> per-seed success."""
    groups: dict[tuple[str, str], dict[str, list[EpisodeResult]]] = defaultdict(
        lambda: defaultdict(list)
    )
    for e in episodes:
        if e.error is None:
            groups[(e.planner, model_of(e))][e.env].append(e)
    return {
        algo: {env: np.array(_per_seed(eps, lambda e: e.success)) for env, eps in by_env.items()}
        for algo, by_env in groups.items()
    }


def aggregates(episodes: list[EpisodeResult]) -> tuple[list[dict], list[dict]]:
    """(per-algorithm IQM rows, probability-of-improvement rows)."""
    scores = _seed_scores(episodes)
    queries: dict[tuple[str, str], list[float]] = defaultdict(list)
    parts: dict[str, tuple[str, str, str]] = {}  # a label's (llm, decoding, critic data)
    for e in episodes:
        if e.error is None:
            queries[(e.planner, model_of(e))].append(e.llm_queries)
            parts[model_of(e)] = (e.llm, e.decoding, critic_data_of(e.cell))
    rows = []
    for algo in sorted(scores):
        per_task = [scores[algo][env] for env in sorted(scores[algo])]
        point, low, high = stats.stratified_bootstrap(
            per_task, reps=BOOTSTRAP_REPS, random_state=RANDOM_STATE
        )
        llm, decoding, data = parts[algo[1]]
        rows.append({
            "planner": algo[0], "llm": llm,
            **({"decoding": decoding} if decoding and llm not in ("", "none") else {}),
            **({"critic_data": data} if data else {}),
            "algorithm": algorithm_label(*algo),
            "simulated": is_simulated(algo[1]), "tasks": len(per_task),
            "seeds": int(sum(len(t) for t in per_task)),
            "iqm_success": {"point": point, "low": low, "high": high},
            "mean_success": float(np.mean(np.concatenate(per_task))),
            "mean_llm_queries": float(np.mean(queries[algo])) if queries[algo] else math.nan,
        })
    improvement = []
    algos = sorted(scores)
    for i, x in enumerate(algos):
        for y in algos[i + 1:]:
            common = sorted(set(scores[x]) & set(scores[y]))
            if not common:
                continue
            p, low, high = stats.probability_of_improvement(
                [scores[x][t] for t in common], [scores[y][t] for t in common],
                reps=POI_REPS, random_state=RANDOM_STATE,
            )
            improvement.append({"x": algorithm_label(*x), "y": algorithm_label(*y),
                                "tasks": len(common), "p": p, "low": low, "high": high})
    return rows, improvement


def solved_by(episodes: list[EpisodeResult]) -> dict[str, dict[str, Any]]:
    """Per algorithm: the steps and queries each successful episode needed (sorted), for
    "fraction solved within k steps / q queries" curves (all tasks and seeds pooled)."""
    groups: dict[str, list[EpisodeResult]] = defaultdict(list)
    for e in episodes:
        if e.error is None:
            groups[algorithm_label(e.planner, model_of(e))].append(e)
    return {
        algo: {
            "episodes": len(eps),
            "steps": sorted(e.interaction_steps for e in eps if e.success),
            "queries": sorted(e.llm_queries for e in eps if e.success),
        }
        for algo, eps in sorted(groups.items())
    }


def profiles(episodes: list[EpisodeResult]) -> dict[str, dict[str, list[float]]]:
    """Per algorithm label: rliable's performance profile of per-seed success."""
    scores = _seed_scores(episodes)
    return stats.performance_profiles(
        {algorithm_label(*algo): [by_env[env] for env in sorted(by_env)]
         for algo, by_env in scores.items()},
        reps=POI_REPS, random_state=RANDOM_STATE)


def critic_budget_curves(episodes: list[EpisodeResult]) -> list[dict[str, Any]]:
    """Success and query rounds per success against critic data transitions: one panel per
    (env, data source), one line per planner × model, one point per budget. Success has the
    cells' Wilson 95% interval over seeds; query rounds per success a seed-bootstrap 95%
    interval (`stats.ratio_interval`; none where no episode succeeded)."""
    groups: dict[tuple[str, str], dict[str, dict[int, list[EpisodeResult]]]] = defaultdict(
        lambda: defaultdict(lambda: defaultdict(list)))
    for e in episodes:
        label = critic_data_of(e.cell)
        if e.error is not None or not label:
            continue
        source, _, n = label.rpartition(",n=")
        line = algorithm_label(e.planner, model_label(e.llm, e.decoding))
        groups[(e.env, source)][line][int(n)].append(e)
    panels = []
    for (env, source), lines in sorted(groups.items()):
        curves = {}
        for line, by_budget in sorted(lines.items()):
            points = []
            for n, eps in sorted(by_budget.items()):
                success = _per_seed(eps, lambda e: e.success)
                seeds = sorted({e.seed for e in eps})
                queries = [sum(e.llm_queries for e in eps if e.seed == s) for s in seeds]
                wins = [sum(bool(e.success) for e in eps if e.seed == s) for s in seeds]
                k = sum(success)
                points.append({
                    "transitions": n, "seeds": len(seeds),
                    "success": k / len(success), "success_ci": list(stats.wilson(k, len(success))),
                    "queries_per_success": sum(queries) / sum(wins) if sum(wins) else None,
                    "queries_per_success_ci": stats.ratio_interval(
                        queries, wins, reps=BOOTSTRAP_REPS, random_state=RANDOM_STATE),
                })
            curves[line] = points
        panels.append({"env": env, "source": source, "lines": curves})
    return panels


def summarise(data: RunData) -> dict[str, Any]:
    cells = cell_rows(data.episodes)
    agg, improvement = aggregates(data.episodes)
    simulated = sorted({e.llm for e in data.episodes if is_simulated(e.llm)})
    notes = list(data.notes)
    if simulated:
        notes.insert(0, SIM_NOTE)
    notes += [identical_note(row) for row in cells if row["identical_episodes"]]
    budget = critic_budget_curves(data.episodes)
    return {
        **({"critic_budget": budget} if budget else {}),  # only runs with the critic_data axis
        "runs": data.runs,
        "simulated_llms": simulated,
        "cells": cells,
        "aggregates": agg,
        "improvement": improvement,
        "solved_by": solved_by(data.episodes),
        "profiles": profiles(data.episodes),
        "skipped": data.skipped,
        "notes": notes,
        "statistics": {
            "unit": "seed (episodes of a seed averaged first)",
            "success_ci": "Wilson score 95% interval over seeds",
            "plus_minus": "standard error of the mean over seeds",
            "aggregate": f"IQM over tasks x seeds, stratified bootstrap 95% CI (rliable "
                         f"{BOOTSTRAP_REPS} reps, percentile, random_state={RANDOM_STATE}; "
                         "unequal seed counts: the first n of each task)",
            "improvement": f"P(X > Y), Mann-Whitney U / (n_x n_y) averaged over common tasks, "
                           f"stratified bootstrap 95% CI (rliable, {POI_REPS} reps)",
            "profiles": f"performance profiles: fraction of seed x task runs with success "
                        f"above tau, stratified bootstrap 95% band (rliable, {POI_REPS} reps)",
        },
    }


def marl_eval_json(data: RunData) -> dict[str, Any]:
    """marl-eval's raw shape: env -> task -> algorithm -> seed_<n> -> step_0 / absolute_metrics.

    env is the id's family (`roco`), task the rest of the id. Each metric list holds one value
    per evaluation episode of that seed. marl-eval forbids commas in algorithm names.
    """
    out: dict[str, Any] = {}
    for e in sorted(data.episodes,
                    key=lambda e: (e.env, e.planner, model_of(e), e.seed, e.episode)):
        if e.error is not None:
            continue
        family, _, task = e.env.partition("/")
        algo = algorithm_label(e.planner, model_of(e)).replace(",", ";")
        run = out.setdefault(family, {}).setdefault(task, {}).setdefault(algo, {}).setdefault(
            f"seed_{e.seed}", {"step_0": {"step_count": 0}, "absolute_metrics": {}}
        )
        for metric in exported_metrics():
            value = metric.of(e)
            value = float(value) if isinstance(value, bool) else value
            run["step_0"].setdefault(metric.marl_eval, []).append(value)
            run["absolute_metrics"].setdefault(metric.marl_eval, []).append(value)
    return out
