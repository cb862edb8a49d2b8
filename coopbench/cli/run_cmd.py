"""`coopbench run`: episodes of one env and planner over seeds, into a run directory."""

from __future__ import annotations

from pathlib import Path

import typer
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeRemainingColumn

from coopbench import envs, planners
from coopbench.cli._common import console, err_console
from coopbench.runner.single import EpisodeTask, build_llm, parse_seeds, pending_tasks, run_task
from coopbench.runner.store import RunStore


def run(
    env: str = typer.Option(..., "--env", help="Env id, e.g. overcooked/cramped_room-v0."),
    planner: str = typer.Option(..., "--planner", help="Planner id, e.g. read-j-v0."),
    llm: str = typer.Option("local", "--llm", help="LLM spec: local, openai:<model>, sim:expert"),
    seeds: str = typer.Option("0", "--seeds", help="Seeds: a range 0-9 or a list 0,3,7."),
    episodes: int = typer.Option(1, "--episodes", min=1, help="Episodes per seed."),
    out: Path = typer.Option(..., "--out", help="Run directory (created; re-running resumes)."),
) -> None:
    """Run episodes of one env with one planner; finished episodes are skipped on re-run."""
    env_spec = envs.registry.spec(env)
    planner_spec = planners.registry.spec(planner)
    llm_spec = llm if planner_spec.flags.get("needs_llm", True) else "none"
    seed_list = parse_seeds(seeds)
    tasks = [
        EpisodeTask(env_spec.id, planner_spec.id, llm_spec, s, e)
        for s in seed_list
        for e in range(episodes)
    ]
    store = RunStore(out).create()
    if store.repair_torn_tail():
        err_console.print("[yellow]cut a torn last line off episodes.jsonl (kept in .torn)")
    store.write_manifest(
        {
            "command": "run",
            "env": env_spec.to_json(),
            "planner": planner_spec.to_json(),
            "llm": llm_spec,
            "seeds": seed_list,
            "episodes_per_seed": episodes,
        }
    )
    todo = pending_tasks(tasks, store)
    if len(todo) < len(tasks):
        console.print(f"[dim]{len(tasks) - len(todo)} of {len(tasks)} episodes already done")
    model = build_llm(planner_spec.id, llm_spec, store) if todo else None
    successes = errors = 0
    with Progress(
        TextColumn("[bold]{task.description}"), BarColumn(), MofNCompleteColumn(),
        TextColumn("{task.fields[status]}"), TimeRemainingColumn(), console=err_console,
        transient=True,
    ) as progress:
        bar = progress.add_task(f"{env_spec.id} × {planner_spec.id}", total=len(todo), status="")
        for n, task in enumerate(todo, start=1):
            result = run_task(task, store, llm=model)
            store.append_episode(result)
            successes += result.success
            errors += result.error is not None
            progress.update(bar, advance=1, status=f"success {successes}/{n}")
    done, _ = store.read_episodes()
    rate = sum(e.success for e in done) / max(len(done), 1)
    console.print(
        f"{len(done)} episodes in {out} · success rate {rate:.2f}"
        + (f" · [red]{errors} errors" if errors else "")
    )
