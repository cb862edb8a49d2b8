"""`coopbench run`: episodes of one env and planner over seeds, into a run directory.

Everything the user typed is checked before anything is written; the run directory is then
locked for the whole run (one writer at a time), repaired if an earlier run left bad lines,
and a full disk stops the run at once with the manifest marked `interrupted`.
"""

from __future__ import annotations

import contextlib
import time
from pathlib import Path

import typer
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeRemainingColumn

from coopbench import envs, planners
from coopbench.cli._common import console, err_console, shown
from coopbench.cli.kwargs import (
    ENV_KWARG_OPTION,
    PLANNER_KWARG_OPTION,
    STRICT_CRITIC_OPTION,
    build,
    check_env_kwargs,
    check_planner_kwargs,
    kwargs_changed,
    parse_kwargs,
)
from coopbench.core.errors import CoopbenchError, StorageFull
from coopbench.runner.critics import prepare_critics
from coopbench.runner.lock import run_lock, started
from coopbench.runner.single import (
    EpisodeTask,
    build_llm,
    check_episode_count,
    parse_seeds,
    pending_tasks,
    run_task,
)
from coopbench.runner.store import RunStore


def run(
    env: str = typer.Option(..., "--env", help="Env id, e.g. overcooked/cramped_room-v0."),
    planner: str = typer.Option(..., "--planner", help="Planner id, e.g. read-j-v0."),
    llm: str = typer.Option("local", "--llm", help="LLM spec: local, openai:<model>, sim:expert"),
    seeds: str = typer.Option("0", "--seeds", help="Seeds: a range 0-9 or a list 0,3,7 "
                              "(at most 1,000,000)."),
    episodes: int = typer.Option(1, "--episodes", min=1, help="Episodes per seed."),
    out: Path | None = typer.Option(
        None, "--out", help="Run directory (created; re-running resumes). Default: "
        "results/runs/<UTC time>-<env name>."),
    env_kwarg: list[str] | None = ENV_KWARG_OPTION,
    planner_kwarg: list[str] | None = PLANNER_KWARG_OPTION,
    strict_critic: bool = STRICT_CRITIC_OPTION,
) -> None:
    """Run episodes of one env with one planner; finished episodes are skipped on re-run."""
    from coopbench.llm.config import register_keys

    env_spec = envs.registry.spec(env)
    planner_spec = planners.registry.spec(planner)
    env_kwargs = parse_kwargs(env_kwarg, "--env-kwarg")
    planner_kwargs = parse_kwargs(planner_kwarg, "--planner-kwarg")
    check_env_kwargs(env_spec.id, env_kwargs)
    check_planner_kwargs(planner_spec.id, planner_kwargs)
    build("env", env_spec.id, envs.make, env_kwargs).close()  # a refused value: one line, now
    build("planner", planner_spec.id, planners.make, planner_kwargs)
    llm_spec = "none"
    if planner_spec.caps.needs_llm:
        from coopbench import llm as llm_layer

        llm_spec = llm_layer.parse(llm).canonical()  # a refused spec never reaches a file
    seed_list = parse_seeds(seeds)
    check_episode_count(len(seed_list) * episodes, f"--seeds {seeds} x --episodes {episodes}")
    register_keys()
    tasks = [
        EpisodeTask(env_spec.id, planner_spec.id, llm_spec, s, e, env_kwargs=env_kwargs or None,
                    planner_kwargs=planner_kwargs or None)
        for s in seed_list
        for e in range(episodes)
    ]
    if out is None:
        stamp = time.strftime("%Y%m%d-%H%M%S", time.gmtime())
        out = Path("results", "runs", f"{stamp}-{env_spec.name}")
        console.print(f"run directory: {out}", highlight=False, soft_wrap=True)
    store = RunStore(out).create()
    with run_lock(store.root, "coopbench run"):
        earlier = store.read_manifest()  # a damaged one is one line, before any repair
        if earlier is not None and earlier.get("kind") == "matrix":
            raise CoopbenchError(f"{store.root} is a `coopbench matrix` directory; run the "
                                 "matrix again to resume it, or use a new --out")
        if earlier is not None and earlier["spec"].get("command") == "run":
            _check_same_kwargs(store.root, earlier["spec"], env_kwargs, planner_kwargs)
        for note in store.repair():
            err_console.print(f"[yellow]{note}", highlight=False, soft_wrap=True)
        todo = pending_tasks(tasks, store)
        critics = prepare_critics(todo, in_process=True, strict=strict_critic)
        model = build_llm(planner_spec.id, llm_spec, store) if todo else None
        manifest = store.write_manifest(
            {
                "command": "run",
                "env": env_spec.to_json(),
                "planner": planner_spec.to_json(),
                "llm": llm_spec,
                "seeds": seed_list,
                "episodes_per_seed": episodes,
                "env_kwargs": env_kwargs,
                "planner_kwargs": planner_kwargs,
            },
            extra={"status": "running",
                   "critics": critics or (earlier or {}).get("critics", [])},
        )
        if len(todo) < len(tasks):
            console.print(f"[dim]{len(tasks) - len(todo)} of {len(tasks)} episodes already done")
        started(store.root)
        with store.room_reserved():
            try:
                errors = _play(todo, store, model, shown(f"{env_spec.id} × {planner_spec.id}"))
            except StorageFull as exc:
                with contextlib.suppress(StorageFull):  # then it stays `running`: resumable
                    _set_status(store, manifest, "interrupted", str(exc))
                raise StorageFull(f"{exc}; stopped: free some space and run the same command "
                                  "again to resume") from None
            except KeyboardInterrupt:
                _set_status(store, manifest, "interrupted", "stopped by the user")
                raise
            _set_status(store, manifest, "complete", "")
    done, _ = store.read_episodes()
    rate = sum(e.success for e in done) / max(len(done), 1)
    console.print(
        f"{len(done)} episodes in {out} · success rate {rate:.2f}"
        + (f" · [red]{errors} errors" if errors else "")
    )


def _check_same_kwargs(root: Path, spec: dict, env_kwargs: dict, planner_kwargs: dict) -> None:
    """Refuse a resume with other kwargs: episode keys do not name them, so finished episodes
    of the old options would be skipped as if done with the new ones."""
    changes = [
        f"{option} {diff}"
        for option, old, new in (("--env-kwarg", spec.get("env_kwargs"), env_kwargs),
                                 ("--planner-kwarg", spec.get("planner_kwargs"), planner_kwargs))
        if (diff := kwargs_changed(old if isinstance(old, dict) else {}, new))
    ]
    if changes:
        raise CoopbenchError(f"{root} was run with other options ({'; '.join(changes)}); its "
                             "episodes would not be comparable: give the same options or a new "
                             "--out")


def _play(todo: list[EpisodeTask], store: RunStore, model: object, title: str) -> int:
    """Play and record `todo`; returns how many ended in an error."""
    successes = errors = 0
    with Progress(
        TextColumn("[bold]{task.description}"), BarColumn(), MofNCompleteColumn(),
        TextColumn("{task.fields[status]}"), TimeRemainingColumn(), console=err_console,
        transient=True, disable=not err_console.is_terminal,  # no stray line in logs
    ) as progress:
        bar = progress.add_task(title, total=len(todo), status="")
        for n, task in enumerate(todo, start=1):
            result = run_task(task, store, llm=model)
            store.append_episode(result)
            successes += result.success
            errors += result.error is not None
            progress.update(bar, advance=1, status=f"success {successes}/{n}")
    return errors


def _set_status(store: RunStore, manifest: dict, status: str, detail: str) -> None:
    """Say how the run ended; on a full disk, the reserve makes room for it first."""
    store.free_reserve()
    manifest.update(status=status, status_detail=detail)
    store.save_manifest(manifest)
